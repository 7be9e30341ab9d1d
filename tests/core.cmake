# Core: RNG, error agreement, sharding, and the data-parallel gradient identity.
sbi_add_test_exe(test_rng unit/test_rng.c)
target_include_directories(test_rng PRIVATE ${RANDOM123_INCLUDE_DIR})
sbi_add_test(NAME core_rng TARGET test_rng LABELS "unit")
sbi_add_test_exe(test_comm_agree mpi/test_comm_agree.c)
sbi_add_test(NAME core_comm_agree NP 1 2 4 TARGET test_comm_agree LABELS "unit")
sbi_add_test_exe(test_grad_allreduce mpi/test_grad_allreduce.c LIB64)
sbi_add_test(NAME train_grad_allreduce NP 1 2 4 TARGET test_grad_allreduce LABELS "unit;gradcheck")
