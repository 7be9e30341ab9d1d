# Vectorised posterior sampling of several observations in one call.
sbi_add_test_exe(test_flow_batch64 ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_flow_batch.c LIB64)
sbi_add_test(NAME flow_sample_batch TARGET test_flow_batch64 LABELS "unit;nn")
