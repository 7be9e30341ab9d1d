# Command-line tests of train, sbc, infer and run, and the unit tests of their statistics.
set(P ${CMAKE_SOURCE_DIR}/tests/pipeline)

sbi_add_test_exe(test_observation unit/test_observation.c)
sbi_add_test(NAME io_observation_text TARGET test_observation LABELS "unit;io")
sbi_add_test_exe(test_sbc_stats unit/test_sbc_stats.c)
sbi_add_test(NAME calibrate_sbc_stats TARGET test_sbc_stats LABELS "unit")

sbi_add_script_test(NAME train_sync SCRIPT ${P}/train_sync.sh LABELS "mpi;train" PROCESSORS 4)
sbi_add_script_test(NAME train_resume_np1 SCRIPT ${P}/train_resume.sh ARGS 1 LABELS "train" PROCESSORS 1)
sbi_add_script_test(NAME train_resume_np2 SCRIPT ${P}/train_resume.sh ARGS 2 LABELS "mpi;train" PROCESSORS 2)
sbi_add_script_test(NAME train_resume_cosine_noise_np2 SCRIPT ${P}/train_resume.sh
                    ARGS 2 --lr-schedule cosine --warmup-epochs 1 --noise-multiplier 0.5 --parameter-noise-floor 0.01
                    LABELS "mpi;train" PROCESSORS 2)
sbi_add_script_test(NAME train_streaming SCRIPT ${P}/train_streaming.sh LABELS "mpi;train" PROCESSORS 2)
sbi_add_script_test(NAME train_fmpe_validation SCRIPT ${P}/train_fmpe_validation.sh LABELS "mpi;train" PROCESSORS 2)
sbi_add_script_test(NAME sbc_infer_ranks SCRIPT ${P}/sbc_ranks.sh LABELS "mpi;calibrate" PROCESSORS 4)
foreach(np 1 2 4)
  set(labels cli)
  if(np GREATER 1)
    list(APPEND labels mpi)
  endif()
  sbi_add_script_test(NAME cli_bad_inputs_np${np} SCRIPT ${P}/bad_inputs.sh ARGS ${np} LABELS "${labels}"
                      PROCESSORS ${np})
endforeach()
sbi_add_script_test(NAME cli_run_pipeline SCRIPT ${P}/run_pipeline.sh LABELS "cli;slow" PROCESSORS 2)

# SBC coverage per family on the linear-Gaussian and two-moons tasks (one
# rank each, so that two run side by side on two cores; minutes each).
foreach(case affine:linear_gaussian nsf:linear_gaussian maf:linear_gaussian naf:linear_gaussian
                fmpe:linear_gaussian affine:two_moons nsf:two_moons maf:two_moons naf:two_moons fmpe:two_moons)
  string(REPLACE ":" ";" args ${case})
  string(REPLACE ":" "_" name ${case})
  sbi_add_script_test(NAME calibration_${name} SCRIPT ${P}/calibration.sh ARGS ${args}
                      LABELS "slow;calibration" PROCESSORS 1 TIMEOUT 1800)
endforeach()

sbi_add_test_exe(lg_accuracy regression/lg_accuracy.c)
sbi_add_script_test(NAME regression_linear_gaussian_accuracy SCRIPT ${P}/linear_gaussian_accuracy.sh
                    ARGS $<TARGET_FILE:lg_accuracy> LABELS "regression;slow" PROCESSORS 2 TIMEOUT 900)
