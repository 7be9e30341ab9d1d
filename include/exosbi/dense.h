/* Dense linear algebra shared by the reports: a singular value decomposition
 * that runs through LAPACK on every rank for small matrices and through
 * ScaLAPACK on a process grid over the whole communicator for large ones.
 *
 * The size threshold: a matrix with m * n >= SBI_DENSE_DISTRIBUTED_MIN
 * (2^20 entries, 8 MiB of doubles) on a communicator of more than one rank
 * goes to ScaLAPACK; anything smaller, or any matrix on a single rank, goes
 * to LAPACKE_dgesvd.  Setting the environment variable
 * EXOSBI_DENSE_FORCE_DISTRIBUTED=1 sends every call to ScaLAPACK, whatever the
 * size and the number of ranks (the tests use it).
 */
#ifndef EXOSBI_DENSE_H
#define EXOSBI_DENSE_H

#include "exosbi/core.h"

/* The number of matrix entries from which sbi_dense_svd distributes the work. */
#define SBI_DENSE_DISTRIBUTED_MIN (1L << 20)

/* Whether sbi_dense_svd would take the ScaLAPACK path for an m x n matrix on c
 * (the threshold above, or the environment override).  Local; no communication. */
int sbi_dense_svd_is_distributed(const sbi_comm *c, int m, int n);

/* Thin singular value decomposition A = U diag(s) VT, with k = min(m, n).
 * Collective over c->comm: every rank calls it with the same m, n and A.
 *   A:  (m, n) row-major, identical on every rank; not modified.
 *   s:  (k) singular values in descending order.
 *   U:  (m, k) row-major left singular vectors, or NULL when not wanted.
 *   VT: (k, n) row-major right singular vectors (as rows), or NULL.
 * The outputs are bitwise identical on every rank.  A failure of LAPACK,
 * BLACS or ScaLAPACK is SBI_ERR_INTERNAL naming the routine and its info, and
 * every rank returns the agreed status (see sbi_comm_agree). */
int sbi_dense_svd(const sbi_comm *c, int m, int n, const double *A, double *s, double *U, double *VT);

#endif
