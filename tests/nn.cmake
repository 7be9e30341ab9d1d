# Neural-network kernels, flows and the optimiser.  Gradient checks and the
# flow bijection checks link the double-precision library (LIB64).
set(_nn ${CMAKE_CURRENT_SOURCE_DIR})

sbi_add_test_exe(test_nn_linear ${_nn}/unit/test_nn_linear.c)
sbi_add_test(NAME nn_linear_ref TARGET test_nn_linear LABELS "unit;nn")

sbi_add_test_exe(test_nn_activation ${_nn}/unit/test_nn_activation.c)
sbi_add_test(NAME nn_activation_ref TARGET test_nn_activation LABELS "unit;nn")

sbi_add_test_exe(test_nn_gradcheck ${_nn}/gradcheck/test_nn_gradcheck.c LIB64)
sbi_add_test(NAME nn_layers_gradcheck TARGET test_nn_gradcheck LABELS "unit;gradcheck")

sbi_add_test_exe(test_flow_gradcheck ${_nn}/gradcheck/test_flow_gradcheck.c LIB64)
sbi_add_test(NAME flow_estimator_gradcheck TARGET test_flow_gradcheck LABELS "unit;gradcheck")

sbi_add_test_exe(test_flow_bijection ${_nn}/unit/test_flow_bijection.c LIB64)
sbi_add_test(NAME flow_bijection TARGET test_flow_bijection LABELS "unit;nn")

sbi_add_test_exe(test_flow_config ${_nn}/unit/test_flow_config.c)
sbi_add_test(NAME flow_config_json TARGET test_flow_config LABELS "unit;nn")

sbi_add_test_exe(test_flow_fit ${_nn}/unit/test_flow_fit.c)
sbi_add_test(NAME flow_fit_gaussian TARGET test_flow_fit ARGS gaussian LABELS "unit;nn" TIMEOUT 120)
sbi_add_test(NAME flow_fit_conditional TARGET test_flow_fit ARGS conditional LABELS "unit;nn" TIMEOUT 120)
# Every family on the three 2-D densities (NLL against the exact entropy and
# two-sample tests; 10 to 60 s each); flow_fit_gaussian is the affine one.
foreach(fam affine nsf maf naf fmpe)
  foreach(target gaussian banana mixture)
    if(NOT (fam STREQUAL "affine" AND target STREQUAL "gaussian"))
      sbi_add_test(NAME flow_fit_${target}_${fam} TARGET test_flow_fit ARGS ${target} ${fam}
                   LABELS "unit;nn;slow" TIMEOUT 300)
    endif()
  endforeach()
endforeach()

sbi_add_test_exe(test_optim ${_nn}/unit/test_optim.c)
sbi_add_test(NAME optim_adamw TARGET test_optim LABELS "unit;nn")

# The vectorised spline inverse against its element-at-a-time oracle.
sbi_add_test_exe(test_flow_spline ${_nn}/unit/test_flow_spline.c)
sbi_add_test(NAME flow_spline_inverse_ref TARGET test_flow_spline LABELS "unit;nn")

# The fused convolution forward (direct kernel and gemm form) against the direct loops.
sbi_add_test_exe(test_nn_conv1d ${_nn}/unit/test_nn_conv1d.c)
sbi_add_test(NAME nn_conv1d_pool_ref TARGET test_nn_conv1d LABELS "unit;nn")
