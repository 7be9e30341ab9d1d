# sbi_add_test(NAME n [NP 1|2|4 ...] [TARGET exe] [LABELS l...] [ARGS a...] [TIMEOUT s]
#              [WILL_FAIL] [PASS_REGEX r] [WORKDIR d])
# Runs `mpiexec -n NP TARGET ARGS` once per NP value (tests named n_npN when several
# are given).  The root-safe, oversubscribing Open MPI environment is set on the
# test, never in the user's shell.
set(EXOSBI_TEST_ENV OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_MCA_hwloc_base_binding_policy=none
    EXOSBI_SOURCE_DIR=${CMAKE_SOURCE_DIR} EXOSBI_BINARY_DIR=${CMAKE_BINARY_DIR}
    EXOSBI_EXE=$<TARGET_FILE:exosbi>)
if(EXOSBI_TEST_ROOT_ENV)
  list(APPEND EXOSBI_TEST_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
       OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
       OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_odls_base_sigkill_timeout=0)
endif()
if(EXOSBI_SANITIZE)
  list(APPEND EXOSBI_TEST_ENV
       "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=60"
       "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan-mpi.supp:print_suppressions=0")
endif()

function(sbi_add_test)
  cmake_parse_arguments(T "WILL_FAIL" "NAME;TARGET;TIMEOUT;PASS_REGEX;WORKDIR" "NP;LABELS;ARGS" ${ARGN})
  if(NOT T_NP)
    set(T_NP 1)
  endif()
  if(NOT T_TARGET)
    set(T_TARGET ${T_NAME})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_WORKDIR)
    set(T_WORKDIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  list(LENGTH T_NP n_np)
  foreach(np IN LISTS T_NP)
    if(n_np GREATER 1)
      set(name ${T_NAME}_np${np})
    else()
      set(name ${T_NAME})
    endif()
    if(TARGET ${T_TARGET})
      set(exe $<TARGET_FILE:${T_TARGET}>)
    else()
      set(exe ${T_TARGET})
    endif()
    add_test(NAME ${name}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS} ${exe}
              ${MPIEXEC_POSTFLAGS} ${T_ARGS}
      WORKING_DIRECTORY ${T_WORKDIR})
    set(labels ${T_LABELS})
    if(np GREATER 1)
      list(APPEND labels mpi)
    endif()
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${EXOSBI_TEST_ENV}" PROCESSORS ${np}
      LABELS "${labels}" TIMEOUT ${T_TIMEOUT})
    if(T_WILL_FAIL)
      set_tests_properties(${name} PROPERTIES WILL_FAIL TRUE)
    endif()
    if(T_PASS_REGEX)
      set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${T_PASS_REGEX}")
    endif()
  endforeach()
endfunction()

# sbi_add_test_exe(name src... [LIB64]): a test executable linked to libexosbi
# (or to its double-precision twin with LIB64).
function(sbi_add_test_exe name)
  cmake_parse_arguments(E "LIB64" "" "" ${ARGN})
  add_executable(${name} ${E_UNPARSED_ARGUMENTS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src ${CBLAS_INCLUDE_DIR})
  target_compile_options(${name} PRIVATE ${EXOSBI_WARNINGS})
  if(E_LIB64)
    target_link_libraries(${name} PRIVATE exosbi_lib64)
  else()
    target_link_libraries(${name} PRIVATE exosbi_lib)
  endif()
endfunction()

# sbi_add_script_test(NAME n SCRIPT path [ARGS a...] [LABELS l...] [PROCESSORS p] [TIMEOUT s])
# A bash script that launches exosbi itself (through mpiexec); it gets the same
# environment as the MPI tests, with EXOSBI_EXE pointing at the binary.
function(sbi_add_script_test)
  cmake_parse_arguments(T "" "NAME;SCRIPT;PROCESSORS;TIMEOUT" "ARGS;LABELS" ${ARGN})
  if(NOT T_PROCESSORS)
    set(T_PROCESSORS 2)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND /bin/bash ${T_SCRIPT} ${T_ARGS} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${EXOSBI_TEST_ENV}" PROCESSORS ${T_PROCESSORS}
    LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
