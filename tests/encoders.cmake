# Observation encoders: double-precision gradient checks, mask invariance
# and the block-structure JSON round trip.
set(_enc ${CMAKE_CURRENT_SOURCE_DIR})

sbi_add_test_exe(test_encoder_gradcheck ${_enc}/gradcheck/test_encoder_gradcheck.c LIB64)
sbi_add_test(NAME nn_encoder_gradcheck TARGET test_encoder_gradcheck LABELS "unit;gradcheck")
