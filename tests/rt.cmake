# Radiative-transfer forward model (src/forward/rt): kernels against analytic
# limits and the transmission / emission families built from task files.
sbi_add_test_exe(test_rt_physics unit/test_rt_physics.c)
sbi_add_test(NAME rt_physics TARGET test_rt_physics LABELS "unit;rt" TIMEOUT 60
             ARGS ${CMAKE_SOURCE_DIR}/tests/data/rt/guillot_2010_ref.txt)

sbi_add_test_exe(test_rt_family unit/test_rt_family.c)
sbi_add_test(NAME rt_family TARGET test_rt_family LABELS "unit;rt" TIMEOUT 60
             ARGS ${CMAKE_SOURCE_DIR}/inputs/wasp39b_transmission.yaml ${CMAKE_SOURCE_DIR}/inputs/brown_dwarf_emission.yaml)

# Photometric bands: top-hat and filter-curve averages, photon weighting, and
# malformed filter files (written by the test under rt_bands_work/).
sbi_add_test_exe(test_rt_bands unit/test_rt_bands.c)
sbi_add_test(NAME rt_bands TARGET test_rt_bands LABELS "unit;rt" TIMEOUT 60
             ARGS ${CMAKE_CURRENT_BINARY_DIR}/rt_bands_work)
