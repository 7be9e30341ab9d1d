/* Corpus write bandwidth: collective row writes into one parallel-HDF5 file,
 * against a plain sequential fwrite of the same bytes by one rank (the disk's
 * bandwidth).
 *
 *   mpirun -n N bench_corpus [--rows 200000] [--cols 233] [--params 10]
 *                            [--batch 4096] [--mark-every 1] [--dir /tmp]
 *
 * Rows go to the three splits (80/10/10, sequentially) as in a real run: in
 * every batch each rank writes its block of each split with sbi_corpus_write_rows,
 * then sbi_corpus_mark_progress flushes every --mark-every batches.  Both
 * timings include the final flush to the disk (fsync), so page-cache speed is
 * not mistaken for disk speed.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exosbi/corpus.h"

static int64_t arg_i64(int argc, char **argv, const char *name, int64_t def)
{
    for (int i = 1; i + 1 < argc; ++i)
        if (!strcmp(argv[i], name)) return atoll(argv[i + 1]);
    return def;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; ++i)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    SBI_CHECK(fd >= 0, SBI_ERR_IO, "%s: cannot open", path);
    fsync(fd);
    close(fd);
    return 0;
}

static int bench(const sbi_comm *c, int argc, char **argv)
{
    const int64_t N = arg_i64(argc, argv, "--rows", 200000), C = arg_i64(argc, argv, "--cols", 233);
    const int P = (int)arg_i64(argc, argv, "--params", 10);
    const int64_t B = arg_i64(argc, argv, "--batch", 4096), every = arg_i64(argc, argv, "--mark-every", 1);
    const char *dir = arg_str(argc, argv, "--dir", "/tmp");
    const int64_t split_n[3] = {N * 8 / 10, N / 10, N - N * 8 / 10 - N / 10};
    const int64_t row_bytes = C * 4 + 3 * P * 8 + 8;
    char path[1024], raw[1024], *pnames[64], pn[64][16], *dname = "x";
    double *theta, *unc, *none = NULL;
    float *x;
    int64_t *idx, sizes[1] = {C}, batches = 0;
    double t0, t_write, t_mark = 0, t_total, t_fwrite, io_s;
    sbi_corpus_desc d;
    sbi_corpus k;

    SBI_CHECK(P <= 64 && P > 0 && C > 0 && N > 0 && B > 0, SBI_ERR_INPUT, "bad sizes");
    snprintf(path, sizeof path, "%s/bench_corpus_np%d.h5", dir, c->size);
    snprintf(raw, sizeof raw, "%s/bench_corpus_raw.bin", dir);
    for (int i = 0; i < P; ++i) {
        snprintf(pn[i], sizeof pn[i], "p%d", i);
        pnames[i] = pn[i];
    }
    SBI_MALLOC(unc, C);
    for (int64_t j = 0; j < C; ++j) unc[j] = 0.01;
    memset(&d, 0, sizeof d);
    d.n_params = P;
    d.param_names = pnames;
    d.n_datasets = 1;
    d.dataset_names = &dname;
    d.dataset_sizes = sizes;
    d.coordinates = &none;
    d.uncertainties = &unc;
    d.n_outputs = C;
    d.n_simulations = N;
    memcpy(d.split_rows, split_n, sizeof d.split_rows);
    d.batch_size = (int)B;
    d.task_json = "{}";
    snprintf(d.fingerprint, sizeof d.fingerprint, "bench");
    d.index_end = N;

    /* Buffers for the largest block a rank writes. */
    {
        int64_t cap = B / c->size + 1;
        SBI_MALLOC(theta, cap * P);
        SBI_MALLOC(x, cap * C);
        SBI_MALLOC(idx, cap);
        for (int64_t i = 0; i < cap * P; ++i) theta[i] = 0.001 * (double)i;
        for (int64_t i = 0; i < cap * C; ++i) x[i] = (float)i;
        for (int64_t i = 0; i < cap; ++i) idx[i] = i;
    }

    MPI_Barrier(c->comm);
    t0 = sbi_wtime();
    SBI_CALL(sbi_corpus_create(c, path, &d, &k));
    for (int64_t lo = 0; lo < N; lo += B, ++batches) {
        int64_t hi = lo + B < N ? lo + B : N;
        sbi_shard blk = sbi_shard_block(hi - lo, c->rank, c->size);
        int64_t a = lo + blk.offset, b = a + blk.count, split_lo = 0, used = 0;
        for (int s = 0; s < 3; ++s) {
            int64_t s_hi = split_lo + split_n[s];
            int64_t ra = a > split_lo ? a : split_lo, rb = b < s_hi ? b : s_hi;
            int64_t cnt = rb > ra ? rb - ra : 0;
            SBI_CALL(sbi_corpus_write_rows(k, s, cnt ? ra - split_lo : 0, cnt, theta + used * P, theta + used * P,
                                           theta + used * P, x + used * C, idx + used));
            used += cnt;
            split_lo = s_hi;
        }
        if ((batches + 1) % every == 0 || hi == N) {
            double tm = sbi_wtime();
            SBI_CALL(sbi_corpus_mark_progress(k, batches + 1, 0));
            t_mark += sbi_wtime() - tm;
        }
    }
    sbi_corpus_io_stats(k, &io_s, NULL);
    t_write = sbi_wtime() - t0;
    SBI_CALL(sbi_corpus_close(&k));
    MPI_Barrier(c->comm);
    if (c->rank == 0) {
        char partial[1100];
        snprintf(partial, sizeof partial, "%s.partial", path);
        SBI_CALL(fsync_path(partial));
        unlink(partial);
    }
    MPI_Barrier(c->comm);
    t_total = sbi_wtime() - t0;

    /* The same bytes, written sequentially by one rank. */
    t_fwrite = 0;
    if (c->rank == 0) {
        const size_t chunk = 8u << 20;
        char *buf = malloc(chunk);
        FILE *f = fopen(raw, "wb");
        int64_t left = N * row_bytes;
        SBI_CHECK(buf && f, SBI_ERR_IO, "%s: cannot write", raw);
        memset(buf, 1, chunk);
        t0 = sbi_wtime();
        while (left > 0) {
            size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
            fwrite(buf, 1, n, f);
            left -= (int64_t)n;
        }
        fflush(f);
        fsync(fileno(f));
        fclose(f);
        t_fwrite = sbi_wtime() - t0;
        unlink(raw);
        free(buf);
    }
    if (c->rank == 0) {
        double mb = (double)(N * row_bytes) / 1e6;
        printf("corpus %lld rows x %lld floats (+%d params x 3 doubles), %.1f MB, %d ranks, batch %lld, flush every "
               "%lld batch(es)\n",
               (long long)N, (long long)C, P, mb, c->size, (long long)B, (long long)every);
        printf("  collective HDF5 write:   %7.3f s  %8.1f MB/s  (in write calls %.3f s, of which progress flushes "
               "%.3f s)\n",
               t_write, mb / t_write, io_s, t_mark);
        printf("  ... including fsync:     %7.3f s  %8.1f MB/s\n", t_total, mb / t_total);
        printf("  sequential fwrite+fsync: %7.3f s  %8.1f MB/s\n", t_fwrite, mb / t_fwrite);
        printf("  ratio (HDF5 incl. fsync / fwrite): %.2f\n", t_fwrite / t_total);
    }
    free(theta);
    free(x);
    free(idx);
    free(unc);
    return 0;
}

int main(int argc, char **argv)
{
    sbi_comm c;
    int st;
    MPI_Init(&argc, &argv);
    sbi_comm_init(&c, MPI_COMM_WORLD);
    st = bench(&c, argc, argv);
    st = sbi_comm_finish(&c, st, "bench_corpus");
    MPI_Finalize();
    return st;
}
