# Inference on real data: observation readers (text, FITS), flux-conserving
# rebinning, covariance files, petitRADTRANS' example observations, and the
# command-line options of infer (--rebin, --obs-cov, --predictive).
set(PI ${CMAKE_SOURCE_DIR}/tests/pipeline)

sbi_add_test_exe(test_observation_fits unit/test_observation_fits.c)
sbi_add_test(NAME io_observation_fits TARGET test_observation_fits LABELS "unit;io;infer")
sbi_add_test_exe(test_observation_rebin unit/test_observation_rebin.c)
sbi_add_test(NAME io_observation_rebin TARGET test_observation_rebin LABELS "unit;io;infer")
# The shared data directory sits beside the source tree; without it the test is skipped.
sbi_add_test_exe(test_observation_prt unit/test_observation_prt.c)
sbi_add_test(NAME io_observation_prt TARGET test_observation_prt ARGS ${CMAKE_SOURCE_DIR}/../shared/data
             LABELS "unit;io;infer")
set_tests_properties(io_observation_prt PROPERTIES SKIP_RETURN_CODE 77)

sbi_add_script_test(NAME infer_observations SCRIPT ${PI}/infer_observations.sh
                    ARGS 2 $<TARGET_FILE:test_observation_fits> LABELS "mpi;infer;cli" PROCESSORS 2)
