# The neural autoregressive flow ("naf") and flow matching ("fmpe") families.
# Gradient checks and the bijection checks link the double-precision library (LIB64).
set(_fl2 ${CMAKE_CURRENT_SOURCE_DIR})

sbi_add_test_exe(test_flow_naf_gradcheck ${_fl2}/gradcheck/test_flow_naf_gradcheck.c LIB64)
sbi_add_test(NAME flow_naf_gradcheck TARGET test_flow_naf_gradcheck LABELS "unit;gradcheck")

sbi_add_test_exe(test_flow_naf64 ${_fl2}/unit/test_flow_naf.c LIB64)
sbi_add_test(NAME flow_naf_bijection TARGET test_flow_naf64 ARGS bijection LABELS "unit;nn")
sbi_add_test_exe(test_flow_naf ${_fl2}/unit/test_flow_naf.c)
sbi_add_test(NAME flow_naf_fit_gaussian TARGET test_flow_naf ARGS fit LABELS "unit;nn;slow" TIMEOUT 240)

sbi_add_test_exe(test_flow_fmpe_gradcheck ${_fl2}/gradcheck/test_flow_fmpe_gradcheck.c LIB64)
sbi_add_test(NAME flow_fmpe_gradcheck TARGET test_flow_fmpe_gradcheck LABELS "unit;gradcheck")

sbi_add_test_exe(test_flow_fmpe64 ${_fl2}/unit/test_flow_fmpe.c LIB64)
sbi_add_test(NAME flow_fmpe_ode_linear TARGET test_flow_fmpe64 ARGS ode LABELS "unit;nn")
sbi_add_test_exe(test_flow_fmpe ${_fl2}/unit/test_flow_fmpe.c)
sbi_add_test(NAME flow_fmpe_fit_conditional TARGET test_flow_fmpe ARGS fit LABELS "unit;nn;slow" TIMEOUT 240)
