/* The communicator context: sharding, reductions and agreement on errors.
 * Together with src/io and the stage drivers, this is where rank logic lives. */
#include "exosbi/core.h"

#include <string.h>

int sbi_comm_init(sbi_comm *c, MPI_Comm comm)
{
    c->comm = comm;
    SBI_CALL_MPI(MPI_Comm_rank(comm, &c->rank));
    SBI_CALL_MPI(MPI_Comm_size(comm, &c->size));
    return 0;
}

/* The verdict is the failing code of the lowest failing rank.  The reduction
 * packs (rank, code) into one int: MINLOC over "rank if failed, else size". */
int sbi_comm_agree(const sbi_comm *c, int local_status)
{
    int in[2], out[2];
    if (c->size == 1) return local_status;
    in[0] = local_status ? c->rank : c->size;
    in[1] = c->rank;
    SBI_CALL_MPI(MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MINLOC, c->comm));
    if (out[0] == c->size) return 0;
    int code = local_status & ~SBI_ERR_REMOTE;
    SBI_CALL_MPI(MPI_Bcast(&code, 1, MPI_INT, out[0], c->comm));
    if (local_status) return local_status;
    return SBI_ERR_REMOTE | code;
}

int sbi_comm_finish(const sbi_comm *c, int local_status, const char *prog)
{
    int own = local_status && !(local_status & SBI_ERR_REMOTE);
    int in[2] = {own ? c->rank : c->size, c->rank}, out[2] = {c->size, 0};
    int code = local_status & ~SBI_ERR_REMOTE;
    char msg[4096];

    if (c->size > 1) {
        MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MINLOC, c->comm);
    } else {
        out[0] = own ? 0 : 1;
    }
    if (out[0] >= c->size) {
        /* Nobody raised an error of its own: either all is well, or every rank
         * only followed (cannot happen unless a code path forgot to raise). */
        int any = 0;
        if (c->size > 1) MPI_Allreduce(&code, &any, 1, MPI_INT, MPI_MAX, c->comm);
        else any = code;
        if (any && c->rank == 0) fprintf(stderr, "%s: error: failed with status %d\n", prog, any);
        return any;
    }
    snprintf(msg, sizeof msg, "%s", sbi_error_message());
    if (c->size > 1) {
        MPI_Bcast(&code, 1, MPI_INT, out[0], c->comm);
        MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, out[0], c->comm);
    }
    if (c->rank == 0) {
        if (c->size > 1) fprintf(stderr, "%s: error (rank %d): %s\n", prog, out[0], msg[0] ? msg : "unknown error");
        else fprintf(stderr, "%s: error: %s\n", prog, msg[0] ? msg : "unknown error");
        fflush(stderr);
    }
    return code ? code : SBI_ERR_INTERNAL;
}

sbi_shard sbi_shard_block(int64_t n, int rank, int size)
{
    sbi_shard s;
    int64_t base = n / size, rem = n % size;
    s.count = base + (rank < rem ? 1 : 0);
    s.offset = rank * base + (rank < rem ? rank : rem);
    return s;
}

int sbi_comm_sum_double(const sbi_comm *c, double *v, int n)
{
    if (c->size > 1) SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, c->comm));
    return 0;
}

int sbi_comm_sum_int64(const sbi_comm *c, int64_t *v, int n)
{
    if (c->size > 1) SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, c->comm));
    return 0;
}

int sbi_comm_max_double(const sbi_comm *c, double *v, int n)
{
    if (c->size > 1) SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, c->comm));
    return 0;
}

int sbi_comm_bcast(const sbi_comm *c, void *buf, size_t bytes, int root)
{
    char *p = buf;
    if (c->size == 1) return 0;
    while (bytes > 0) {
        int chunk = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
        SBI_CALL_MPI(MPI_Bcast(p, chunk, MPI_BYTE, root, c->comm));
        p += chunk;
        bytes -= (size_t)chunk;
    }
    return 0;
}
