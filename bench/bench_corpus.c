/* Corpus write bandwidth: collective row writes into one parallel-HDF5 file,
 * against a plain sequential fwrite of the same bytes by one rank (the disk's
 * bandwidth).
 *
 *   mpirun -n N bench_corpus [--rows 200000] [--cols 233] [--params 10]
 *                            [--batch 16384] [--mark-every 1] [--reps 5] [--dir /tmp]
 *
 * Rows go to the three splits (80/10/10, sequentially) as in a real run: in
 * every batch each rank writes its block of each split with sbi_corpus_write_rows,
 * then sbi_corpus_mark_progress flushes every --mark-every batches.  Each
 * is timed to the close (data in the page cache) and to the end of an fsync
 * (data on the disk), alternating the two writers --reps times and reporting
 * medians, since a shared disk's speed drifts (BENCH_VERBOSE=1 prints every run).
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

typedef struct bench_cfg {
    int64_t N, C, B, every, split_n[3], row_bytes;
    int P;
    char path[1024], raw[1024];
} bench_cfg;

/* One collective write of the whole corpus: *t_write to the close, *t_sync
 * including the fsync, *t_io inside the write calls (rank 0). */
static int hdf5_once(const sbi_comm *c, const bench_cfg *g, const sbi_corpus_desc *d, double *theta, float *x,
                     int64_t *idx, double *t_write, double *t_sync, double *t_io)
{
    sbi_corpus k;
    int64_t batches = 0;
    double t0;
    MPI_Barrier(c->comm);
    t0 = sbi_wtime();
    SBI_CALL(sbi_corpus_create(c, g->path, d, &k));
    for (int64_t lo = 0; lo < g->N; lo += g->B, ++batches) {
        int64_t hi = lo + g->B < g->N ? lo + g->B : g->N;
        sbi_shard blk = sbi_shard_block(hi - lo, c->rank, c->size);
        int64_t a = lo + blk.offset, b = a + blk.count, split_lo = 0, used = 0;
        for (int s = 0; s < 3; ++s) {
            int64_t s_hi = split_lo + g->split_n[s];
            int64_t ra = a > split_lo ? a : split_lo, rb = b < s_hi ? b : s_hi;
            int64_t cnt = rb > ra ? rb - ra : 0;
            SBI_CALL(sbi_corpus_write_rows(k, s, cnt ? ra - split_lo : 0, cnt, theta + used * g->P,
                                           theta + used * g->P, theta + used * g->P, x + used * g->C, idx + used));
            used += cnt;
            split_lo = s_hi;
        }
        if ((batches + 1) % g->every == 0 || hi == g->N) SBI_CALL(sbi_corpus_mark_progress(k, batches + 1, 0));
    }
    sbi_corpus_io_stats(k, t_io, NULL);
    SBI_CALL(sbi_corpus_close(&k));
    MPI_Barrier(c->comm);
    *t_write = sbi_wtime() - t0;
    if (c->rank == 0) {
        char partial[1100];
        snprintf(partial, sizeof partial, "%s.partial", g->path);
        SBI_CALL(fsync_path(partial));
        unlink(partial);
    }
    MPI_Barrier(c->comm);
    *t_sync = sbi_wtime() - t0;
    return 0;
}

/* The same bytes written sequentially with fwrite by one rank. */
static int fwrite_once(const bench_cfg *g, double *t_write, double *t_sync)
{
    const size_t chunk = 8u << 20;
    char *buf = malloc(chunk);
    FILE *f = fopen(g->raw, "wb");
    int64_t left = g->N * g->row_bytes;
    double t0;
    if (!buf || !f) {
        free(buf);
        if (f) fclose(f);
        SBI_RAISE(SBI_ERR_IO, "%s: cannot write", g->raw);
    }
    memset(buf, 1, chunk);
    t0 = sbi_wtime();
    while (left > 0) {
        size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
        if (fwrite(buf, 1, n, f) != n) break;
        left -= (int64_t)n;
    }
    fflush(f);
    *t_write = sbi_wtime() - t0;
    fsync(fileno(f));
    fclose(f);
    *t_sync = sbi_wtime() - t0;
    unlink(g->raw);
    free(buf);
    SBI_CHECK(left == 0, SBI_ERR_IO, "%s: short write", g->raw);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int bench(const sbi_comm *c, int argc, char **argv)
{
    bench_cfg g;
    const int reps = (int)arg_i64(argc, argv, "--reps", 5);
    const char *dir = arg_str(argc, argv, "--dir", "/tmp");
    char *pnames[64], pn[64][16], *dname = "x";
    double *theta, *unc, *none = NULL;
    float *x;
    int64_t *idx, sizes[1];
    double hw[64], hs[64], hio[64], fw[64], fs[64];
    sbi_corpus_desc d;

    memset(&g, 0, sizeof g);
    g.N = arg_i64(argc, argv, "--rows", 200000);
    g.C = arg_i64(argc, argv, "--cols", 233);
    g.P = (int)arg_i64(argc, argv, "--params", 10);
    g.B = arg_i64(argc, argv, "--batch", 16384);
    g.every = arg_i64(argc, argv, "--mark-every", 1);
    SBI_CHECK(g.P <= 64 && g.P > 0 && g.C > 0 && g.N > 0 && g.B > 0 && g.every > 0 && reps > 0 && reps <= 64,
              SBI_ERR_INPUT, "bad sizes");
    g.split_n[0] = g.N * 8 / 10;
    g.split_n[1] = g.N / 10;
    g.split_n[2] = g.N - g.split_n[0] - g.split_n[1];
    g.row_bytes = g.C * 4 + 3 * g.P * 8 + 8;
    sizes[0] = g.C;
    snprintf(g.path, sizeof g.path, "%s/bench_corpus_np%d.h5", dir, c->size);
    snprintf(g.raw, sizeof g.raw, "%s/bench_corpus_raw.bin", dir);
    for (int i = 0; i < g.P; ++i) {
        snprintf(pn[i], sizeof pn[i], "p%d", i);
        pnames[i] = pn[i];
    }
    SBI_MALLOC(unc, g.C);
    for (int64_t j = 0; j < g.C; ++j) unc[j] = 0.01;
    memset(&d, 0, sizeof d);
    d.n_params = g.P;
    d.param_names = pnames;
    d.n_datasets = 1;
    d.dataset_names = &dname;
    d.dataset_sizes = sizes;
    d.coordinates = &none;
    d.uncertainties = &unc;
    d.n_outputs = g.C;
    d.n_simulations = g.N;
    memcpy(d.split_rows, g.split_n, sizeof d.split_rows);
    d.batch_size = (int)g.B;
    d.task_json = "{}";
    snprintf(d.fingerprint, sizeof d.fingerprint, "bench");
    d.index_end = g.N;

    /* Buffers for the largest block a rank writes. */
    {
        int64_t cap = g.B / c->size + 1;
        SBI_MALLOC(theta, cap * g.P);
        SBI_MALLOC(x, cap * g.C);
        SBI_MALLOC(idx, cap);
        for (int64_t i = 0; i < cap * g.P; ++i) theta[i] = 0.001 * (double)i;
        for (int64_t i = 0; i < cap * g.C; ++i) x[i] = (float)i;
        for (int64_t i = 0; i < cap; ++i) idx[i] = i;
    }

    /* Alternate the two, so that both see the same state of a shared disk. */
    for (int r = 0; r < reps; ++r) {
        SBI_CALL(hdf5_once(c, &g, &d, theta, x, idx, &hw[r], &hs[r], &hio[r]));
        if (c->rank == 0) SBI_CALL(fwrite_once(&g, &fw[r], &fs[r]));
        if (c->rank == 0 && getenv("BENCH_VERBOSE"))
            printf("  run %d: HDF5 %.3f s (%.3f s with fsync), fwrite %.3f s (%.3f s with fsync)\n", r, hw[r], hs[r],
                   fw[r], fs[r]);
        MPI_Barrier(c->comm);
    }
    if (c->rank == 0) {
        double mb = (double)(g.N * g.row_bytes) / 1e6;
        double mhw = median_of(hw, reps), mhs = median_of(hs, reps), mio = median_of(hio, reps);
        double mfw = median_of(fw, reps), mfs = median_of(fs, reps);
        printf("corpus %lld rows x %lld floats (+%d params x 3 doubles + index) = %.1f MB, %d ranks, %lld rows per "
               "collective write, progress flushed every %lld write(s); medians of %d runs\n",
               (long long)g.N, (long long)g.C, g.P, mb, c->size, (long long)g.B, (long long)g.every, reps);
        printf("  collective HDF5, to close:      %7.3f s  %8.1f MB/s  (inside write calls %.3f s)\n", mhw, mb / mhw,
               mio);
        printf("  sequential fwrite, to fflush:   %7.3f s  %8.1f MB/s\n", mfw, mb / mfw);
        printf("  collective HDF5 + fsync:        %7.3f s  %8.1f MB/s\n", mhs, mb / mhs);
        printf("  sequential fwrite + fsync:      %7.3f s  %8.1f MB/s\n", mfs, mb / mfs);
        printf("  HDF5 / fwrite bandwidth: %.2f (page cache), %.2f (to disk)\n", mfw / mhw, mfs / mhs);
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
