# Observation encoders: double-precision gradient checks, mask invariance
# and the block-structure JSON round trip.
set(_enc ${CMAKE_CURRENT_SOURCE_DIR})

sbi_add_test_exe(test_encoder_gradcheck ${_enc}/gradcheck/test_encoder_gradcheck.c LIB64)
sbi_add_test(NAME nn_encoder_gradcheck TARGET test_encoder_gradcheck LABELS "unit;gradcheck")

sbi_add_test_exe(test_encoder_mask ${_enc}/unit/test_encoder_mask.c)
sbi_add_test(NAME nn_encoder_mask TARGET test_encoder_mask LABELS "unit;nn")

sbi_add_test_exe(test_encoder_config ${_enc}/unit/test_encoder_config.c)
sbi_add_test(NAME nn_encoder_config_json TARGET test_encoder_config LABELS "unit;nn")
