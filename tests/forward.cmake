# Forward models: the registry, linear_gaussian and its exact posterior, plugins.
set(EXOSBI_FORWARD_TEST_COMMON ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_forward_common.c)

# The tests load a copy of the example plugin built inside this build tree, next
# to a copy of inputs/two_moons.yaml.  inputs/plugins/two_moons.so is shared by
# every build tree, and the copy a sanitized tree leaves there cannot be loaded
# by an uninstrumented test (nor is it rebuilt by the other trees).
set(EXOSBI_FORWARD_INPUTS ${CMAKE_CURRENT_BINARY_DIR}/forward_inputs)
add_library(test_forward_two_moons MODULE ${CMAKE_SOURCE_DIR}/inputs/plugins/two_moons.c)
target_include_directories(test_forward_two_moons PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_compile_options(test_forward_two_moons PRIVATE ${EXOSBI_WARNINGS})
set_target_properties(test_forward_two_moons PROPERTIES PREFIX "" OUTPUT_NAME two_moons
                      LIBRARY_OUTPUT_DIRECTORY ${EXOSBI_FORWARD_INPUTS}/plugins)
target_link_libraries(test_forward_two_moons PRIVATE m)
configure_file(${CMAKE_SOURCE_DIR}/inputs/two_moons.yaml ${EXOSBI_FORWARD_INPUTS}/two_moons.yaml COPYONLY)

sbi_add_test_exe(test_forward_linear unit/test_forward_linear.c ${EXOSBI_FORWARD_TEST_COMMON})
sbi_add_test(NAME forward_linear_gaussian TARGET test_forward_linear LABELS "unit;forward" TIMEOUT 60)

sbi_add_test_exe(test_forward_posterior unit/test_forward_posterior.c ${EXOSBI_FORWARD_TEST_COMMON})
sbi_add_test(NAME forward_linear_gaussian_posterior TARGET test_forward_posterior LABELS "unit;forward" TIMEOUT 60)

sbi_add_test_exe(test_forward_plugin unit/test_forward_plugin.c ${EXOSBI_FORWARD_TEST_COMMON})
add_dependencies(test_forward_plugin test_forward_two_moons two_moons)
sbi_add_test(NAME forward_plugin_two_moons TARGET test_forward_plugin LABELS "unit;forward" TIMEOUT 60
             ARGS $<TARGET_FILE:test_forward_two_moons>)

sbi_add_test_exe(test_forward_task unit/test_forward_task.c)
add_dependencies(test_forward_task test_forward_two_moons two_moons)
sbi_add_test(NAME forward_task_files TARGET test_forward_task LABELS "unit;forward" TIMEOUT 60
             ARGS ${EXOSBI_FORWARD_INPUTS}/two_moons.yaml)
