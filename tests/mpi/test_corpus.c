/* The parallel corpus with a hand-built descriptor: collective writes at any
 * number of ranks, independent reads back, progress and resume, refusal of
 * incompatible resumes and incomplete files, and agreement on an error raised
 * by one rank only.  Usage: test_corpus OUTPUT_DIR */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exosbi/corpus.h"
#include "testutil.h"

enum { N = 1000, BATCH = 128, P = 2, D0 = 3, D1 = 5, O = D0 + D1 };
static const int64_t split_rows[3] = {700, 200, 100}; /* sequential: train, validation, test */

static sbi_comm comm;
static char dir[1024];

/* The value of every cell, a function of the simulation index alone. */
static double theta_value(int64_t i, int space, int j) { return (double)i * 0.5 + j * 1e-3 + space * 1e6; }
static float x_value(int64_t i, int col) { return (float)i + (float)col / 16.0f; }

static int split_of(int64_t i) { return i < split_rows[0] ? 0 : i < split_rows[0] + split_rows[1] ? 1 : 2; }
static int64_t split_start(int s) { return s == 0 ? 0 : s == 1 ? split_rows[0] : split_rows[0] + split_rows[1]; }

static char *pnames[P] = {"alpha", "beta"};
static char *dnames[2] = {"spec", "aux"};
static int64_t dsizes[2] = {D0, D1};
static double coords0[D0] = {1.0, 2.0, 3.5};
static double unc0[D0] = {0.1, 0.2, 0.3}, unc1[D1] = {1, 2, 3, 4, 5};
static double *coords[2] = {coords0, NULL}, *uncs[2] = {unc0, unc1};

static void make_desc(sbi_corpus_desc *d, const char *fingerprint)
{
    memset(d, 0, sizeof *d);
    d->n_params = P;
    d->param_names = pnames;
    d->n_datasets = 2;
    d->dataset_names = dnames;
    d->dataset_sizes = dsizes;
    d->coordinates = coords;
    d->uncertainties = uncs;
    d->n_outputs = O;
    d->n_simulations = N;
    memcpy(d->split_rows, split_rows, sizeof d->split_rows);
    d->batch_size = BATCH;
    d->seed = 0xfedcba9876543210ull;
    d->task_json = "{\"name\": \"hand-built\"}";
    snprintf(d->fingerprint, sizeof d->fingerprint, "%s", fingerprint);
    d->index_end = N;
}

/* Write batches [b0, b1): each rank its block of each batch, per split. */
static int write_batches(sbi_corpus k, int64_t b0, int64_t b1)
{
    double *t[3];
    float *x;
    int64_t *idx;
    int st = 0;
    for (int s = 0; s < 3; ++s) t[s] = malloc(BATCH * P * sizeof(double));
    x = malloc(BATCH * O * sizeof(float));
    idx = malloc(BATCH * sizeof(int64_t));
    for (int64_t b = b0; !st && b < b1; ++b) {
        int64_t lo = b * BATCH, hi = lo + BATCH < N ? lo + BATCH : N;
        sbi_shard blk = sbi_shard_block(hi - lo, comm.rank, comm.size);
        for (int s = 0; !st && s < 3; ++s) {
            int64_t a = lo + blk.offset, e = a + blk.count, n = 0, row0 = 0;
            for (int64_t i = a; i < e; ++i) {
                if (split_of(i) != s) continue;
                if (n == 0) row0 = i - split_start(s);
                for (int sp = 0; sp < 3; ++sp)
                    for (int j = 0; j < P; ++j) t[sp][n * P + j] = theta_value(i, sp, j);
                for (int c = 0; c < O; ++c) x[n * O + c] = x_value(i, c);
                idx[n++] = i;
            }
            st = sbi_corpus_write_rows(k, s, row0, n, t[0], t[1], t[2], x, idx);
        }
        if (!st) st = sbi_corpus_mark_progress(k, b + 1, 3 * (b + 1));
    }
    for (int s = 0; s < 3; ++s) free(t[s]);
    free(x);
    free(idx);
    return st;
}

static void stats_arrays(double *a)
{
    for (int i = 0; i < 4 * O + 2 * P; ++i) a[i] = 0.25 * i - 3;
}

static int write_stats(sbi_corpus k)
{
    double a[4 * O + 2 * P];
    stats_arrays(a);
    return sbi_corpus_write_stats(k, a, a + O, a + 2 * O, a + 3 * O, a + 4 * O, a + 4 * O + P);
}

/* Read everything back and compare with the formulas.  Ranks read different
 * amounts, in different orders: reads are independent. */
static void verify(const char *path)
{
    sbi_corpus k = NULL;
    const sbi_corpus_desc *d;
    SBI_ASSERT_OK(sbi_corpus_open(&comm, path, &k));
    if (!k) return;
    d = sbi_corpus_get_desc(k);
    SBI_ASSERT_EQ_INT(d->n_params, P);
    SBI_ASSERT_EQ_INT(d->n_datasets, 2);
    SBI_ASSERT(!strcmp(d->dataset_names[0], "spec") && !strcmp(d->dataset_names[1], "aux"));
    SBI_ASSERT(!strcmp(d->param_names[0], "alpha") && !strcmp(d->param_names[1], "beta"));
    SBI_ASSERT_EQ_INT(d->dataset_sizes[0], D0);
    SBI_ASSERT_EQ_INT(d->dataset_sizes[1], D1);
    SBI_ASSERT(d->coordinates[0] && d->coordinates[0][2] == 3.5);
    SBI_ASSERT(d->coordinates[1] == NULL);
    SBI_ASSERT(d->uncertainties[1] && d->uncertainties[1][4] == 5.0);
    SBI_ASSERT_EQ_INT(d->n_outputs, O);
    SBI_ASSERT_EQ_INT(d->n_simulations, N);
    SBI_ASSERT(d->seed == 0xfedcba9876543210ull);
    SBI_ASSERT(!strcmp(d->task_json, "{\"name\": \"hand-built\"}"));
    SBI_ASSERT(!strcmp(d->fingerprint, "fp-one"));
    SBI_ASSERT_EQ_INT(d->batch_size, BATCH);
    for (int s = 0; s < 3; ++s) SBI_ASSERT_EQ_INT(d->split_rows[s], split_rows[s]);
    SBI_ASSERT_EQ_INT(d->index_begin, 0);
    SBI_ASSERT_EQ_INT(d->index_end, N);
    SBI_ASSERT_EQ_INT(sbi_corpus_invalid_redrawn(k), 3 * ((N + BATCH - 1) / BATCH));
    SBI_ASSERT_EQ_INT(sbi_corpus_batches_done(k), (N + BATCH - 1) / BATCH);
    SBI_ASSERT(sbi_corpus_has_stats(k));

    for (int s = 0; s < 3; ++s) {
        int64_t rows = split_rows[s], chunk = 37 + 11 * comm.rank, bad = 0;
        double *t = malloc((size_t)chunk * P * sizeof *t);
        float *x = malloc((size_t)chunk * O * sizeof *x);
        int64_t *idx = malloc((size_t)chunk * sizeof *idx);
        for (int sp = 0; sp < 3; ++sp) {
            for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
                int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
                int st = sbi_corpus_read_rows(k, s, r0, n, sp, t, sp == 0 ? x : NULL, sp == 0 ? idx : NULL);
                SBI_ASSERT_OK(st);
                if (st) break;
                for (int64_t r = 0; r < n; ++r) {
                    int64_t i = split_start(s) + r0 + r;
                    if (sp == 0 && idx[r] != i) ++bad;
                    for (int j = 0; j < P; ++j)
                        if (t[r * P + j] != theta_value(i, sp, j)) ++bad;
                    for (int c = 0; sp == 0 && c < O; ++c)
                        if (x[r * O + c] != x_value(i, c)) ++bad;
                }
            }
        }
        SBI_ASSERT_EQ_INT(bad, 0);
        free(t);
        free(x);
        free(idx);
    }
    /* Columns 1..5 span both datasets. */
    {
        float cols[50 * 5];
        int64_t bad = 0;
        SBI_ASSERT_OK(sbi_corpus_read_x_columns(k, 1, 20, 50, 1, 5, cols));
        for (int r = 0; r < 50; ++r)
            for (int c = 0; c < 5; ++c)
                if (cols[r * 5 + c] != x_value(split_start(1) + 20 + r, 1 + c)) ++bad;
        SBI_ASSERT_EQ_INT(bad, 0);
    }
    {
        double want[4 * O + 2 * P], got[4 * O + 2 * P];
        stats_arrays(want);
        memset(got, 0, sizeof got);
        SBI_ASSERT_OK(sbi_corpus_read_stats(k, got, got + O, got + 2 * O, got + 3 * O, got + 4 * O, got + 4 * O + P));
        SBI_ASSERT(memcmp(want, got, sizeof got) == 0);
    }
    /* Out-of-range reads are refused without touching the file. */
    sbi_error_clear();
    SBI_ASSERT(sbi_corpus_read_rows(k, 2, 90, 20, 0, NULL, NULL, NULL) != 0);
    SBI_ASSERT(sbi_corpus_read_x_columns(k, 0, 0, 1, 6, 3, NULL) != 0);
    sbi_error_clear();
    SBI_ASSERT_OK(sbi_corpus_close(&k));
    SBI_ASSERT(k == NULL);
}

static void test_write_read(const char *path)
{
    sbi_corpus_desc d;
    sbi_corpus k = NULL;
    char partial[1200];
    make_desc(&d, "fp-one");
    snprintf(partial, sizeof partial, "%s.partial", path);
    if (comm.rank == 0) unlink(path);
    MPI_Barrier(comm.comm);
    SBI_ASSERT_OK(sbi_corpus_create(&comm, path, &d, &k));
    SBI_ASSERT_OK(write_batches(k, 0, (N + BATCH - 1) / BATCH));
    SBI_ASSERT_OK(write_stats(k));
    SBI_ASSERT(access(path, F_OK) != 0);
    SBI_ASSERT_OK(sbi_corpus_commit(&k));
    SBI_ASSERT(k == NULL);
    SBI_ASSERT(access(path, F_OK) == 0);
    SBI_ASSERT(access(partial, F_OK) != 0);
    verify(path);
}

static void test_resume(const char *path)
{
    sbi_corpus_desc d;
    sbi_corpus k = NULL;
    char partial[1200];
    int64_t done = -1;
    int st;
    make_desc(&d, "fp-one");
    snprintf(partial, sizeof partial, "%s.partial", path);
    if (comm.rank == 0) unlink(path);
    MPI_Barrier(comm.comm);
    SBI_ASSERT_OK(sbi_corpus_create(&comm, path, &d, &k));
    SBI_ASSERT_OK(write_batches(k, 0, 3));
    /* Rows of batch 3 are written, but its progress is not marked. */
    SBI_ASSERT_OK(sbi_corpus_close(&k));
    SBI_ASSERT(access(partial, F_OK) == 0);
    SBI_ASSERT(access(path, F_OK) != 0);

    /* A reader refuses the unfinished file. */
    sbi_error_clear();
    st = sbi_corpus_open(&comm, partial, &k);
    SBI_ASSERT_EQ_INT(st & ~SBI_ERR_REMOTE, SBI_ERR_IO);
    SBI_ASSERT(k == NULL);
    if (!(st & SBI_ERR_REMOTE)) SBI_ASSERT(strstr(sbi_error_message(), "is incomplete; resume it with exosbi simulate --resume"));
    sbi_error_clear();

    /* Another task, or another size, cannot resume it. */
    make_desc(&d, "fp-two");
    st = sbi_corpus_resume(&comm, path, &d, &k, &done);
    SBI_ASSERT_EQ_INT(st & ~SBI_ERR_REMOTE, SBI_ERR_INCOMPATIBLE);
    SBI_ASSERT(k == NULL);
    sbi_error_clear();
    make_desc(&d, "fp-one");
    d.n_simulations = N + 1;
    d.index_end = N + 1;
    d.split_rows[2] += 1;
    st = sbi_corpus_resume(&comm, path, &d, &k, &done);
    SBI_ASSERT_EQ_INT(st & ~SBI_ERR_REMOTE, SBI_ERR_INCOMPATIBLE);
    sbi_error_clear();
    make_desc(&d, "fp-one");
    d.shard_count = 2;
    d.shard_index = 0;
    st = sbi_corpus_resume(&comm, path, &d, &k, &done);
    SBI_ASSERT_EQ_INT(st & ~SBI_ERR_REMOTE, SBI_ERR_INCOMPATIBLE);
    sbi_error_clear();

    make_desc(&d, "fp-one");
    SBI_ASSERT_OK(sbi_corpus_resume(&comm, path, &d, &k, &done));
    SBI_ASSERT_EQ_INT(done, 3);
    if (!k) return;
    SBI_ASSERT_EQ_INT(sbi_corpus_invalid_redrawn(k), 9);
    SBI_ASSERT_OK(write_batches(k, done, (N + BATCH - 1) / BATCH));
    SBI_ASSERT_OK(write_stats(k));
    SBI_ASSERT_OK(sbi_corpus_commit(&k));
    verify(path);
}

/* One rank passes a bad row range: every rank gets an error, none hangs. */
static void test_agreement(const char *path)
{
    sbi_corpus_desc d;
    sbi_corpus k = NULL;
    double t[P] = {0, 0};
    float x[O] = {0};
    int64_t idx[1] = {0};
    int st;
    make_desc(&d, "fp-one");
    SBI_ASSERT_OK(sbi_corpus_create(&comm, path, &d, &k));
    if (!k) return;
    st = sbi_corpus_write_rows(k, 0, comm.rank == comm.size - 1 ? split_rows[0] : 0, 1, t, t, t, x, idx);
    SBI_ASSERT(st != 0);
    if (comm.rank == comm.size - 1) SBI_ASSERT_EQ_INT(st, SBI_ERR_INTERNAL);
    else SBI_ASSERT(st & SBI_ERR_REMOTE);
    sbi_error_clear();
    /* The file is still usable afterwards. */
    SBI_ASSERT_OK(sbi_corpus_write_rows(k, 0, 0, comm.rank == 0 ? 1 : 0, t, t, t, x, idx));
    SBI_ASSERT_OK(sbi_corpus_close(&k));
    if (comm.rank == 0) {
        char partial[1200];
        snprintf(partial, sizeof partial, "%s.partial", path);
        unlink(partial);
    }
}

static void test_missing(const char *path)
{
    sbi_corpus k = NULL;
    int st;
    sbi_error_clear();
    st = sbi_corpus_open(&comm, path, &k);
    SBI_ASSERT_EQ_INT(st & ~SBI_ERR_REMOTE, SBI_ERR_IO);
    if (!(st & SBI_ERR_REMOTE)) SBI_ASSERT(strstr(sbi_error_message(), path) != NULL);
    SBI_ASSERT(k == NULL);
    sbi_error_clear();
}

/* mkdir -p */
static void make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

int main(int argc, char **argv)
{
    char a[1100], b[1100], c[1100], m[1100];
    int provided, fails;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    sbi_comm_init(&comm, MPI_COMM_WORLD);
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    if (comm.rank == 0) make_dirs(dir);
    MPI_Barrier(comm.comm);
    snprintf(a, sizeof a, "%s/corpus_np%d.h5", dir, comm.size);
    snprintf(b, sizeof b, "%s/corpus_resumed_np%d.h5", dir, comm.size);
    snprintf(c, sizeof c, "%s/corpus_agree_np%d.h5", dir, comm.size);
    snprintf(m, sizeof m, "%s/no_such_corpus_np%d.h5", dir, comm.size);
    test_write_read(a);
    test_resume(b);
    test_agreement(c);
    test_missing(m);
    fails = sbi_test_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_SUM, comm.comm);
    sbi_test_failures = fails;
    MPI_Finalize();
    if (comm.rank == 0) return SBI_TEST_REPORT("test_corpus");
    return fails ? 1 : 0;
}
