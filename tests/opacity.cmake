# Tabulated opacities: readers of CIA and line tables (src/io/opacity_*.c),
# their interpolation kernels (src/forward/rt/opacity_interp.c) and the
# settings that bring them into the transmission and emission families.
# Fixtures are written by the tests under opacity_work/; the checks against
# ../shared/data skip (exit 77) when it is absent.
set(EXOSBI_OPACITY_WORK ${CMAKE_CURRENT_BINARY_DIR}/opacity_work)
set(EXOSBI_SHARED_DATA ${CMAKE_SOURCE_DIR}/../shared/data)
file(MAKE_DIRECTORY ${EXOSBI_OPACITY_WORK})

sbi_add_test_exe(test_opacity_cia unit/test_opacity_cia.c)
sbi_add_test(NAME opacity_cia TARGET test_opacity_cia LABELS "unit;opacity" TIMEOUT 60
             ARGS ${EXOSBI_OPACITY_WORK}/cia)
sbi_add_test(NAME opacity_cia_shared TARGET test_opacity_cia LABELS "unit;opacity" TIMEOUT 60
             ARGS ${EXOSBI_OPACITY_WORK}/cia_shared ${EXOSBI_SHARED_DATA})
set_tests_properties(opacity_cia_shared PROPERTIES SKIP_RETURN_CODE 77)

sbi_add_test_exe(test_opacity_lines unit/test_opacity_lines.c)
sbi_add_test(NAME opacity_lines TARGET test_opacity_lines LABELS "unit;opacity" TIMEOUT 60
             ARGS ${EXOSBI_OPACITY_WORK}/lines)

# Tables found by species name in a fake petitRADTRANS input_data tree.
sbi_add_test_exe(test_opacity_prt_input_data unit/test_opacity_prt_input_data.c)
sbi_add_test(NAME opacity_prt_input_data TARGET test_opacity_prt_input_data LABELS "unit;opacity" TIMEOUT 60
             ARGS ${EXOSBI_OPACITY_WORK}/prt_input_data)

# One reader per table: rank 0 reads, the others receive identical copies;
# a malformed table gives every rank the same status (1, 2 and 4 ranks).
sbi_add_test_exe(test_opacity_shared mpi/test_opacity_shared.c)
foreach(np 1 2 4)
  sbi_add_test(NAME opacity_shared_np${np} NP ${np} TARGET test_opacity_shared LABELS "opacity;io" TIMEOUT 120
               ARGS ${EXOSBI_OPACITY_WORK}/shared_np${np})
endforeach()

sbi_add_test_exe(test_opacity_ck unit/test_opacity_ck.c)
sbi_add_test(NAME opacity_ck TARGET test_opacity_ck LABELS "unit;opacity;rt" TIMEOUT 120
             ARGS ${EXOSBI_OPACITY_WORK}/ck)
