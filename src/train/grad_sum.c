/* The sum of a gradient over the ranks through node shared memory.
 *
 * Open MPI's MPI_Allreduce between ranks of one node goes through its
 * shared-memory transport in fragments, copied in and out (twice when the
 * kernel's single-copy mechanism is unavailable, as in most containers): for
 * the reference model's 1.2 MB of gradient on 2 ranks that is 1.5-2.5 ms
 * against about 0.2 ms for the arithmetic.  Here each rank copies its
 * gradient into its slot of a window shared by the node (MPI-3
 * MPI_Win_allocate_shared), sums its own slice of the slots in rank order
 * into a shared result, and copies the whole result back after a barrier.
 * Across nodes the node leaders add their node sums with MPI_Allreduce on a
 * communicator of their own, so a cluster run costs one inter-node
 * allreduce of the node sums.  The order of every addition is fixed by the
 * rank layout, so a run on the same ranks is deterministic.  Where the
 * window cannot be had on some rank (a small /dev/shm in a container, an
 * MPI without shared windows), every rank falls back to MPI_Allreduce. */
#include <stdlib.h>
#include <string.h>

#include "exosbi/core.h"
#include "exosbi/optim.h"
#include "nn/nn_impl.h"

#ifdef SBI_REAL_DOUBLE
#define SBI_MPI_REAL MPI_DOUBLE
#else
#define SBI_MPI_REAL MPI_FLOAT
#endif

struct sbi_grad_sum {
    const sbi_comm *c;
    size_t n;
    MPI_Comm node;    /* the ranks that share memory with this one */
    MPI_Comm leaders; /* node rank 0 of every node (MPI_COMM_NULL elsewhere) */
    MPI_Win win;
    int node_rank, node_size, multi_node;
    int fallback; /* 1: MPI_Allreduce over c */
    sbi_real **slot; /* (node_size) each rank's copy of its gradient (n) */
    sbi_real *sum;   /* (n) the node's sum, then the total */
};

static void release(sbi_grad_sum *gs)
{
    if (gs->win != MPI_WIN_NULL) MPI_Win_free(&gs->win);
    if (gs->leaders != MPI_COMM_NULL) MPI_Comm_free(&gs->leaders);
    if (gs->node != MPI_COMM_NULL) MPI_Comm_free(&gs->node);
    free(gs->slot);
    gs->slot = NULL;
}

/* node_size > 0 (tests): "nodes" of node_size consecutive ranks, to take
 * the multi-node path on one machine; < 0 (tests): as if no window could be
 * had; 0: the ranks that share memory. */
static int create(const sbi_comm *c, size_t n, int node_size, sbi_grad_sum **out)
{
    sbi_grad_sum *gs;
    MPI_Aint bytes;
    int disp, n_nodes = 0, leader, failed;
    sbi_real *mine = NULL;

    *out = NULL;
    SBI_CALLOC(gs, 1);
    gs->c = c;
    gs->n = n;
    gs->node = gs->leaders = MPI_COMM_NULL;
    gs->win = MPI_WIN_NULL;
    if (c->size == 1) {
        *out = gs;
        return SBI_OK;
    }
    if (node_size < 0) {
        gs->fallback = 1;
        *out = gs;
        return SBI_OK;
    }
    if (node_size > 0)
        SBI_CALL_MPI(MPI_Comm_split(c->comm, c->rank / node_size, c->rank, &gs->node));
    else
        SBI_CALL_MPI(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &gs->node));
    MPI_Comm_rank(gs->node, &gs->node_rank);
    MPI_Comm_size(gs->node, &gs->node_size);
    leader = gs->node_rank == 0;
    SBI_CALL_MPI(MPI_Allreduce(&leader, &n_nodes, 1, MPI_INT, MPI_SUM, c->comm));
    gs->multi_node = n_nodes > 1;
    if (gs->multi_node)
        SBI_CALL_MPI(MPI_Comm_split(c->comm, leader ? 0 : MPI_UNDEFINED, c->rank, &gs->leaders));
    /* Node rank 0 also holds the result. */
    bytes = (MPI_Aint)((gs->node_rank == 0 ? 2 : 1) * n * sizeof(sbi_real));
    failed = MPI_Win_allocate_shared(bytes, (int)sizeof(sbi_real), MPI_INFO_NULL, gs->node, &mine, &gs->win) !=
             MPI_SUCCESS;
    if (failed) gs->win = MPI_WIN_NULL;
    gs->slot = calloc((size_t)gs->node_size, sizeof *gs->slot);
    failed = failed || !gs->slot;
    for (int r = 0; !failed && r < gs->node_size; ++r) {
        MPI_Aint size;
        failed = MPI_Win_shared_query(gs->win, r, &size, &disp, &gs->slot[r]) != MPI_SUCCESS;
    }
    SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_LOR, c->comm));
    if (failed) {
        release(gs);
        gs->fallback = 1;
        sbi_warn(c, "no window of node shared memory for the %zu-weight gradient sum; using MPI_Allreduce", n);
        *out = gs;
        return SBI_OK;
    }
    gs->sum = gs->slot[0] + n;
    /* One passive epoch for the window's life; MPI_Win_sync and the node
     * barrier order the loads and stores (the separate memory model). */
    SBI_CALL_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, gs->win));
    *out = gs;
    return SBI_OK;
}

int sbi_grad_sum_create(const sbi_comm *c, size_t n, sbi_grad_sum **out)
{
    return create(c, n, 0, out);
}

int sbi__grad_sum_create_grouped(const sbi_comm *c, size_t n, int node_size, sbi_grad_sum **out)
{
    return create(c, n, node_size != 0 ? node_size : 1, out);
}

void sbi_grad_sum_free(sbi_grad_sum *gs)
{
    if (!gs) return;
    if (gs->win != MPI_WIN_NULL) MPI_Win_unlock_all(gs->win);
    release(gs);
    free(gs);
}

static int node_barrier(sbi_grad_sum *gs)
{
    MPI_Win_sync(gs->win);
    SBI_CALL_MPI(MPI_Barrier(gs->node));
    MPI_Win_sync(gs->win);
    return SBI_OK;
}

int sbi_grad_sum_run(sbi_grad_sum *gs, sbi_real *g)
{
    const size_t n = gs->n;
    size_t lo, hi, per;
    if (gs->c->size == 1) return SBI_OK;
    if (gs->fallback) {
        SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, g, (int)n, SBI_MPI_REAL, MPI_SUM, gs->c->comm));
        return SBI_OK;
    }
    memcpy(gs->slot[gs->node_rank], g, n * sizeof *g);
    SBI_CALL(node_barrier(gs));
    /* Slices of whole cache lines; node ranks in order in every element. */
    per = (n + (size_t)gs->node_size - 1) / (size_t)gs->node_size;
    per = (per + 15) / 16 * 16;
    lo = (size_t)gs->node_rank * per;
    hi = lo + per;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi > lo) {
        sbi_real *restrict s = gs->sum;
        const sbi_real *restrict a = gs->slot[0], *restrict b = gs->node_size > 1 ? gs->slot[1] : NULL;
        if (b)
            for (size_t i = lo; i < hi; ++i) s[i] = a[i] + b[i];
        else
            memcpy(s + lo, a + lo, (hi - lo) * sizeof *s);
        for (int r = 2; r < gs->node_size; ++r) {
            const sbi_real *restrict q = gs->slot[r];
            for (size_t i = lo; i < hi; ++i) s[i] += q[i];
        }
    }
    SBI_CALL(node_barrier(gs));
    if (gs->multi_node) {
        if (gs->leaders != MPI_COMM_NULL)
            SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, gs->sum, (int)n, SBI_MPI_REAL, MPI_SUM, gs->leaders));
        SBI_CALL(node_barrier(gs));
    }
    memcpy(g, gs->sum, n * sizeof *g);
    return SBI_OK;
}
