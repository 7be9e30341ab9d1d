# Task module: YAML loading and validation, fingerprints, priors and parameter spaces.
set(SBI_TASK_FIXTURES ${CMAKE_SOURCE_DIR}/tests/data/tasks)
foreach(subject load errors fingerprint)
  sbi_add_test_exe(test_task_${subject} unit/test_task_${subject}.c)
  sbi_add_test(NAME task_${subject} TARGET test_task_${subject} LABELS "unit;task" TIMEOUT 60
               ARGS ${SBI_TASK_FIXTURES})
endforeach()
sbi_add_test_exe(test_task_spaces unit/test_task_spaces.c)
sbi_add_test(NAME task_spaces TARGET test_task_spaces LABELS "unit;task" TIMEOUT 60)
