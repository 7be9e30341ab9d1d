# The neural autoregressive flow ("naf") and flow matching ("fmpe") families.
# Gradient checks and the bijection checks link the double-precision library (LIB64).
set(_fl2 ${CMAKE_CURRENT_SOURCE_DIR})

sbi_add_test_exe(test_flow_naf_gradcheck ${_fl2}/gradcheck/test_flow_naf_gradcheck.c LIB64)
sbi_add_test(NAME flow_naf_gradcheck TARGET test_flow_naf_gradcheck LABELS "unit;gradcheck")
