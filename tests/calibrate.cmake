# Calibration and inference reports: TARP, the out-of-distribution diagnostic,
# the posterior-predictive report and local sensitivity.
set(PC ${CMAKE_SOURCE_DIR}/tests/pipeline)

sbi_add_test_exe(test_calibrate_tarp unit/test_calibrate_tarp.c)
sbi_add_test(NAME calibrate_tarp TARGET test_calibrate_tarp LABELS "unit;calibrate")
sbi_add_script_test(NAME calibrate_ood_tarp SCRIPT ${PC}/calibrate_ood.sh ARGS 2 LABELS "mpi;calibrate" PROCESSORS 2)
sbi_add_test_exe(test_calibrate_crps unit/test_calibrate_crps.c)
sbi_add_test(NAME calibrate_crps TARGET test_calibrate_crps LABELS "unit;calibrate")
sbi_add_script_test(NAME calibrate_predictive SCRIPT ${PC}/calibrate_predictive.sh LABELS "mpi;calibrate"
                    PROCESSORS 4)
sbi_add_test_exe(test_calibrate_sensitivity unit/test_calibrate_sensitivity.c)
sbi_add_test(NAME calibrate_sensitivity TARGET test_calibrate_sensitivity LABELS "unit;calibrate")
