/* Dense linear algebra: a singular value decomposition that is serial through
 * LAPACK for small matrices and distributed through ScaLAPACK for large ones.
 * The ScaLAPACK path builds a BLACS grid over the caller's communicator,
 * distributes the replicated input block-cyclically, and replicates the
 * factors again, so callers never see the distribution. */
#include "exosbi/dense.h"

#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Debian ships no BLACS or ScaLAPACK header, so the prototypes are declared here. */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ictxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ictxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ictxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *s, double *u, const int *iu, const int *ju, const int *descu,
              double *vt, const int *ivt, const int *jvt, const int *descvt, double *work, const int *lwork,
              int *info);

/* The largest block edge of the block-cyclic distribution. */
#define DENSE_BLOCK_MAX 32

int sbi_dense_svd_is_distributed(const sbi_comm *c, int m, int n)
{
    const char *force = getenv("EXOSBI_DENSE_FORCE_DISTRIBUTED");
    if (force && atoi(force) != 0) return 1;
    return c->size > 1 && (long)m * (long)n >= SBI_DENSE_DISTRIBUTED_MIN;
}

/* ---- serial path ---------------------------------------------------------- */

/* LAPACKE_dgesvd on every rank.  Every rank computes the same factors, and
 * rank 0's are then broadcast so that the outputs are bitwise identical even
 * when the ranks run BLAS with different thread counts. */
static int svd_lapack(int m, int n, const double *A, double *s, double *U, double *VT)
{
    const int k = m < n ? m : n;
    double *a, *superb;
    int info;
    SBI_MALLOC(a, (size_t)m * n);
    SBI_MALLOC(superb, k > 1 ? k : 1);
    memcpy(a, A, (size_t)m * n * sizeof *a);
    info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, U ? 'S' : 'N', VT ? 'S' : 'N', m, n, a, n, s, U, U ? k : 1, VT, n,
                          superb);
    free(a);
    free(superb);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "dense SVD: LAPACKE_dgesvd failed on a %d x %d matrix (info %d)", m, n,
              info);
    return 0;
}

/* ---- distributed path ----------------------------------------------------- */

/* The block-cyclic layout of A (m x n), U (m x k) and VT (k x n) on this
 * process's place in an nprow x npcol grid; local arrays are column-major. */
typedef struct dense_grid {
    int sys, ctxt, nprow, npcol, myrow, mycol, nb;
    int m, n, k;
    int desca[9], descu[9], descvt[9];
    int mloc_a, nloc_a, nloc_u, mloc_vt;
    double *a;  /* (mloc_a, nloc_a), leading dimension max(1, mloc_a) */
    double *u;  /* (mloc_a, nloc_u), leading dimension max(1, mloc_a) */
    double *vt; /* (mloc_vt, nloc_a), leading dimension max(1, mloc_vt) */
    double *work; /* (lwork) */
    int lwork;
} dense_grid;

/* The near-square grid: nprow is the largest divisor of p not above sqrt(p). */
static void grid_shape(int p, int *nprow, int *npcol)
{
    int r = (int)floor(sqrt((double)p));
    while (r > 1 && p % r) --r;
    *nprow = r < 1 ? 1 : r;
    *npcol = p / *nprow;
}

/* The global index of local index l in a dimension cut into blocks of nb
 * dealt round-robin over np processes, for the process at coordinate me. */
static int global_index(int l, int nb, int me, int np)
{
    return ((l / nb) * np + me) * nb + l % nb;
}

static int desc_init(int *desc, int rows, int cols, const dense_grid *g, int lld, const char *what)
{
    const int izero = 0;
    int info = 0;
    descinit_(desc, &rows, &cols, &g->nb, &g->nb, &izero, &izero, &g->ctxt, &lld, &info);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "dense SVD: descinit_ failed for %s (%d x %d, info %d)", what, rows, cols,
              info);
    return 0;
}

/* Local part of the set-up: descriptors, local arrays, and this process's
 * blocks of A.  No communication, so a failure here is agreed afterwards. */
static int grid_distribute(dense_grid *g, const double *A)
{
    const int izero = 0;
    int lld_a, lld_vt;
    SBI_CHECK(g->myrow >= 0 && g->mycol >= 0, SBI_ERR_INTERNAL,
              "dense SVD: Cblacs_gridinit did not place this rank in the %d x %d grid", g->nprow, g->npcol);
    g->mloc_a = numroc_(&g->m, &g->nb, &g->myrow, &izero, &g->nprow);
    g->nloc_a = numroc_(&g->n, &g->nb, &g->mycol, &izero, &g->npcol);
    g->nloc_u = numroc_(&g->k, &g->nb, &g->mycol, &izero, &g->npcol);
    g->mloc_vt = numroc_(&g->k, &g->nb, &g->myrow, &izero, &g->nprow);
    lld_a = g->mloc_a > 1 ? g->mloc_a : 1;
    lld_vt = g->mloc_vt > 1 ? g->mloc_vt : 1;
    SBI_CALL(desc_init(g->desca, g->m, g->n, g, lld_a, "A"));
    SBI_CALL(desc_init(g->descu, g->m, g->k, g, lld_a, "U"));
    SBI_CALL(desc_init(g->descvt, g->k, g->n, g, lld_vt, "VT"));
    SBI_CALLOC(g->a, (size_t)lld_a * (g->nloc_a > 1 ? g->nloc_a : 1));
    SBI_CALLOC(g->u, (size_t)lld_a * (g->nloc_u > 1 ? g->nloc_u : 1));
    SBI_CALLOC(g->vt, (size_t)lld_vt * (g->nloc_a > 1 ? g->nloc_a : 1));
    for (int lj = 0; lj < g->nloc_a; ++lj) {
        int gj = global_index(lj, g->nb, g->mycol, g->npcol);
        for (int li = 0; li < g->mloc_a; ++li)
            g->a[li + (size_t)lj * lld_a] = A[(size_t)global_index(li, g->nb, g->myrow, g->nprow) * g->n + gj];
    }
    return 0;
}

/* The workspace of pdgesvd_: a query (lwork = -1), then the allocation.  Local;
 * an allocation failure is agreed on before the factorisation starts. */
static int grid_workspace(dense_grid *g, double *s, int want_u, int want_vt)
{
    const int ione = 1;
    const char jobu = want_u ? 'V' : 'N', jobvt = want_vt ? 'V' : 'N';
    double wq = 0.0;
    int lwork = -1, info = 0;
    pdgesvd_(&jobu, &jobvt, &g->m, &g->n, g->a, &ione, &ione, g->desca, s, g->u, &ione, &ione, g->descu, g->vt,
             &ione, &ione, g->descvt, &wq, &lwork, &info);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "dense SVD: pdgesvd_ workspace query failed (info %d)", info);
    SBI_CHECK(wq >= 0 && wq < (double)INT_MAX - 1, SBI_ERR_INTERNAL,
              "dense SVD: pdgesvd_ asks for %g doubles of workspace", wq);
    g->lwork = (int)wq + 1;
    SBI_MALLOC(g->work, g->lwork);
    return 0;
}

/* The factorisation, made by every process of the grid; info is the same on all of them. */
static int grid_svd(dense_grid *g, double *s, int want_u, int want_vt)
{
    const int ione = 1;
    const char jobu = want_u ? 'V' : 'N', jobvt = want_vt ? 'V' : 'N';
    int info = 0;
    pdgesvd_(&jobu, &jobvt, &g->m, &g->n, g->a, &ione, &ione, g->desca, s, g->u, &ione, &ione, g->descu, g->vt,
             &ione, &ione, g->descvt, g->work, &g->lwork, &info);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "dense SVD: pdgesvd_ failed on a %d x %d matrix on a %d x %d grid (info %d)",
              g->m, g->n, g->nprow, g->npcol, info);
    return 0;
}

/* Replicate the factors: every process writes the entries it owns into the
 * zeroed global arrays and one sum over the communicator completes them.  Each
 * entry has exactly one owner, so the sums are exact. */
static int grid_gather(const sbi_comm *c, const dense_grid *g, double *s, double *U, double *VT)
{
    const int lld_a = g->mloc_a > 1 ? g->mloc_a : 1, lld_vt = g->mloc_vt > 1 ? g->mloc_vt : 1;
    if (U) {
        memset(U, 0, (size_t)g->m * g->k * sizeof *U);
        for (int lj = 0; lj < g->nloc_u; ++lj) {
            int gj = global_index(lj, g->nb, g->mycol, g->npcol);
            for (int li = 0; li < g->mloc_a; ++li)
                U[(size_t)global_index(li, g->nb, g->myrow, g->nprow) * g->k + gj] = g->u[li + (size_t)lj * lld_a];
        }
        SBI_CALL(sbi_comm_sum_double(c, U, g->m * g->k));
    }
    if (VT) {
        memset(VT, 0, (size_t)g->k * g->n * sizeof *VT);
        for (int lj = 0; lj < g->nloc_a; ++lj) {
            int gj = global_index(lj, g->nb, g->mycol, g->npcol);
            for (int li = 0; li < g->mloc_vt; ++li)
                VT[(size_t)global_index(li, g->nb, g->myrow, g->nprow) * g->n + gj] = g->vt[li + (size_t)lj * lld_vt];
        }
        SBI_CALL(sbi_comm_sum_double(c, VT, g->k * g->n));
    }
    /* pdgesvd_ returns s on every process; rank 0's copy makes them bitwise equal. */
    SBI_CALL(sbi_comm_bcast(c, s, (size_t)g->k * sizeof *s, 0));
    return 0;
}

/* The ScaLAPACK path.  Every step that can fail on some processes only is
 * followed by an agreement, and every process leaves the grid before returning. */
static int svd_scalapack(const sbi_comm *c, int m, int n, const double *A, double *s, double *U, double *VT)
{
    dense_grid g;
    int st, in_grid;
    memset(&g, 0, sizeof g);
    g.m = m;
    g.n = n;
    g.k = m < n ? m : n;
    g.myrow = g.mycol = -1;
    grid_shape(c->size, &g.nprow, &g.npcol);
    /* Blocks small enough that every process row and column owns part of the
     * smaller dimension, up to DENSE_BLOCK_MAX; pdgesvd_ needs square blocks. */
    g.nb = (g.k + (g.nprow > g.npcol ? g.nprow : g.npcol) - 1) / (g.nprow > g.npcol ? g.nprow : g.npcol);
    if (g.nb > DENSE_BLOCK_MAX) g.nb = DENSE_BLOCK_MAX;
    if (g.nb < 1) g.nb = 1;

    g.sys = Csys2blacs_handle(c->comm);
    g.ctxt = g.sys;
    Cblacs_gridinit(&g.ctxt, "Row", g.nprow, g.npcol);
    Cblacs_gridinfo(g.ctxt, &g.nprow, &g.npcol, &g.myrow, &g.mycol);
    in_grid = g.myrow >= 0 && g.mycol >= 0;

    st = sbi_comm_agree(c, grid_distribute(&g, A));
    if (!st) st = sbi_comm_agree(c, grid_workspace(&g, s, U != NULL, VT != NULL));
    if (!st) st = sbi_comm_agree(c, grid_svd(&g, s, U != NULL, VT != NULL));
    if (!st) st = sbi_comm_agree(c, grid_gather(c, &g, s, U, VT));

    free(g.a);
    free(g.u);
    free(g.vt);
    free(g.work);
    if (in_grid) Cblacs_gridexit(g.ctxt);
    Cfree_blacs_system_handle(g.sys);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}

int sbi_dense_svd(const sbi_comm *c, int m, int n, const double *A, double *s, double *U, double *VT)
{
    const int k = m < n ? m : n;
    int force_local, force = 0;
    SBI_AGREE(c, m >= 0 && n >= 0 && (long)m * (long)n <= INT_MAX
                     ? 0
                     : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                                  "dense SVD: a %d x %d matrix is out of range", m, n));
    if (k == 0) return 0;
    /* The path must be the same on every rank, whatever each rank's environment says. */
    force_local = sbi_dense_svd_is_distributed(c, m, n);
    if (c->size > 1) SBI_CALL_MPI(MPI_Allreduce(&force_local, &force, 1, MPI_INT, MPI_MAX, c->comm));
    else force = force_local;
    if (force) {
        SBI_CALL(svd_scalapack(c, m, n, A, s, U, VT));
        return 0;
    }
    SBI_AGREE(c, svd_lapack(m, n, A, s, U, VT));
    SBI_CALL(sbi_comm_bcast(c, s, (size_t)k * sizeof *s, 0));
    if (U) SBI_CALL(sbi_comm_bcast(c, U, (size_t)m * k * sizeof *U, 0));
    if (VT) SBI_CALL(sbi_comm_bcast(c, VT, (size_t)k * n * sizeof *VT, 0));
    return 0;
}
