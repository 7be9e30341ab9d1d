# HDF5 files, the parallel corpus, the simulator and the simulate/merge
# commands.  Every test writes under its own directory of io_work/, so tests
# may run in parallel.
set(EXOSBI_IO_WORK ${CMAKE_CURRENT_BINARY_DIR}/io_work)

sbi_add_test_exe(test_io_h5file io/test_h5file.c)
sbi_add_test(NAME io_h5file_roundtrip TARGET test_io_h5file LABELS "unit;io" TIMEOUT 60
             ARGS ${EXOSBI_IO_WORK}/h5file)

sbi_add_test_exe(test_io_simulate io/test_simulate.c)
sbi_add_test(NAME io_simulate_rows_splits TARGET test_io_simulate LABELS "unit;io" TIMEOUT 60)

# A hand-built descriptor written and read back collectively at 1, 2 and 4 ranks.
sbi_add_test_exe(test_corpus mpi/test_corpus.c)
foreach(np 1 2 4)
  sbi_add_test(NAME io_corpus_roundtrip_np${np} NP ${np} TARGET test_corpus LABELS "io" TIMEOUT 120
               ARGS ${EXOSBI_IO_WORK}/corpus_np${np})
endforeach()

# End to end through the command line.  The scripts launch mpiexec themselves
# (Open MPI refuses an mpiexec inside another).
foreach(script ranks resume shards errors tables)
  sbi_add_script_test(NAME io_corpus_cli_${script} SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_corpus_${script}.sh
                      ARGS ${MPIEXEC_EXECUTABLE} ${EXOSBI_IO_WORK}/cli_${script} LABELS "io;mpi" PROCESSORS 4
                      TIMEOUT 300)
endforeach()
