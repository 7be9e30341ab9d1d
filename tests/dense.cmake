# Dense algebra: the distributed SVD against LAPACK, at 1, 2 and 4 ranks.
sbi_add_test_exe(test_dense_svd mpi/test_dense_svd.c)
target_include_directories(test_dense_svd PRIVATE ${LAPACKE_INCLUDE_DIR})
sbi_add_test(NAME dense_svd NP 1 2 4 TARGET test_dense_svd LABELS "unit")
