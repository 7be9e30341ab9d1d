# Forward models: the registry, linear_gaussian and its exact posterior, plugins.
set(EXOSBI_FORWARD_TEST_COMMON ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_forward_common.c)

sbi_add_test_exe(test_forward_linear unit/test_forward_linear.c ${EXOSBI_FORWARD_TEST_COMMON})
sbi_add_test(NAME forward_linear_gaussian TARGET test_forward_linear LABELS "unit;forward" TIMEOUT 60)

sbi_add_test_exe(test_forward_posterior unit/test_forward_posterior.c ${EXOSBI_FORWARD_TEST_COMMON})
sbi_add_test(NAME forward_linear_gaussian_posterior TARGET test_forward_posterior LABELS "unit;forward" TIMEOUT 60)

sbi_add_test_exe(test_forward_plugin unit/test_forward_plugin.c ${EXOSBI_FORWARD_TEST_COMMON})
add_dependencies(test_forward_plugin two_moons)
sbi_add_test(NAME forward_plugin_two_moons TARGET test_forward_plugin LABELS "unit;forward" TIMEOUT 60
             ARGS ${CMAKE_SOURCE_DIR}/inputs/plugins/two_moons.so)

sbi_add_test_exe(test_forward_task unit/test_forward_task.c)
add_dependencies(test_forward_task two_moons)
sbi_add_test(NAME forward_task_files TARGET test_forward_task LABELS "unit;forward" TIMEOUT 60
             ARGS ${CMAKE_SOURCE_DIR}/inputs/two_moons.yaml)
