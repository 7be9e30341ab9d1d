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

sbi_add_test_exe(test_opacity_ck unit/test_opacity_ck.c)
sbi_add_test(NAME opacity_ck TARGET test_opacity_ck LABELS "unit;opacity;rt" TIMEOUT 120
             ARGS ${EXOSBI_OPACITY_WORK}/ck)
