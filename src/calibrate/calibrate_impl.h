/* Helpers shared by the calibration reports (SBC, predictive, sensitivity). */
#ifndef EXOSBI_CALIBRATE_IMPL_H
#define EXOSBI_CALIBRATE_IMPL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "exosbi/core.h"

/* Gather `count` rows of `width` items per rank to rank 0, in rank order,
 * into all (rank 0 only; the total of rows times width items).  Collective. */
int sbi__gather_rows(const sbi_comm *c, const void *mine, int64_t count, int width, MPI_Datatype type,
                     size_t item_bytes, void *all);

#endif
