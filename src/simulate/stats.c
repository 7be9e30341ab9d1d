/* Normalisation statistics of the training split.
 *
 * Work is split by columns: rank r owns the output columns
 * sbi_shard_block(n_outputs, r, size) and the parameter columns
 * sbi_shard_block(n_params, r, size), reads those columns of the training
 * rows, and the results are gathered so that every rank holds all of them.
 * Each column is reduced by one rank, in row order, so the statistics are
 * bitwise the same for any number of ranks (a sum split across ranks would
 * round differently).
 *
 * median and IQR (q75 - q25) use linear interpolation between order
 * statistics (NumPy's default), found exactly by radix selection.  mean and std
 * (population, ddof = 0) are accumulated in double, shifted by the column's
 * first value to keep the variance accurate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simulate/simulate_impl.h"

/* Rows read per call when streaming a column block. */
#define STREAM_ROWS ((int64_t)1 << 16)
/* Floats held in memory for one block of columns (256 MiB). */
#define BLOCK_FLOATS ((int64_t)1 << 26)

/* Order statistics of float data by radix selection on order-preserving
 * keys: a histogram of the top 16 bits finds the bucket of the k-th smallest
 * value, a histogram of the low 16 bits inside that bucket finds the value.
 * Linear, exact, and with few branches to mispredict. */
static uint32_t float_key(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static double key_value(uint32_t key)
{
    uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
    float v;
    memcpy(&v, &u, sizeof v);
    return (double)v;
}

typedef struct radix_sel {
    int64_t hi[65537]; /* hi[b]: keys whose top 16 bits are below b */
    int64_t lo[65536]; /* counts of the low 16 bits inside bucket `bucket` */
    int64_t bucket;    /* -1: lo not filled */
} radix_sel;

static void radix_prepare(radix_sel *s, const uint32_t *key, int64_t n)
{
    memset(s->hi, 0, sizeof s->hi);
    for (int64_t i = 0; i < n; ++i) s->hi[(key[i] >> 16) + 1]++;
    for (int b = 0; b < 65536; ++b) s->hi[b + 1] += s->hi[b];
    s->bucket = -1;
}

/* The k-th smallest key (0-based) of key[0..n). */
static uint32_t radix_select(radix_sel *s, const uint32_t *key, int64_t n, int64_t k)
{
    int64_t a = 0, b = 65536, r;
    while (b - a > 1) { /* the bucket: hi[a] <= k < hi[a + 1] */
        int64_t m = (a + b) / 2;
        if (s->hi[m] <= k) a = m;
        else b = m;
    }
    if (s->bucket != a) {
        memset(s->lo, 0, sizeof s->lo);
        for (int64_t i = 0; i < n; ++i)
            if ((int64_t)(key[i] >> 16) == a) s->lo[key[i] & 0xffffu]++;
        s->bucket = a;
    }
    r = k - s->hi[a];
    for (int64_t j = 0; j < 65536; ++j) {
        if (r < s->lo[j]) return ((uint32_t)a << 16) | (uint32_t)j;
        r -= s->lo[j];
    }
    return ((uint32_t)a << 16) | 0xffffu; /* not reached: the bucket holds k */
}

/* Quantile q of the n keys, with linear interpolation (NumPy's "linear"). */
static double quantile(radix_sel *s, const uint32_t *key, int64_t n, double q)
{
    double h = (double)(n - 1) * q, v0, v1;
    int64_t k = (int64_t)floor(h);
    double f = h - (double)k;
    v0 = key_value(radix_select(s, key, n, k));
    if (f == 0.0 || k + 1 >= n) return v0;
    v1 = key_value(radix_select(s, key, n, k + 1));
    return v0 + f * (v1 - v0);
}

/* Shifted sums of one column: s1 = sum(v - shift), s2 = sum((v - shift)^2). */
typedef struct col_sums {
    double shift, s1, s2;
} col_sums;

static void finish_sums(const col_sums *s, int64_t n, double *mean, double *std)
{
    double m = s->s1 / (double)n, var = s->s2 / (double)n - m * m;
    *mean = s->shift + m;
    *std = sqrt(var > 0 ? var : 0);
}

/* Columns transposed at a time from a row-major block into key arrays. */
#define TILE 8

/* Statistics of output columns [c0, c0 + w) over the n training rows. */
static int x_block_stats(sbi_corpus corpus, int64_t n, int64_t c0, int64_t w, double *median, double *iqr,
                         double *mean, double *std)
{
    int64_t cap = n < SBI__STATS_MAX_ROWS ? n : SBI__STATS_MAX_ROWS;
    int64_t sw = BLOCK_FLOATS / (cap > 0 ? cap : 1);
    float *buf = NULL;
    uint32_t *keys = NULL;
    col_sums *sums = NULL;
    radix_sel *sel = NULL;
    int st = 0;

    if (w == 0) return 0;
    if (sw < 1) sw = 1;
    if (sw > w) sw = w;
    buf = malloc((size_t)cap * (size_t)sw * sizeof *buf);
    keys = malloc((size_t)cap * TILE * sizeof *keys);
    sums = malloc((size_t)sw * sizeof *sums);
    sel = malloc(sizeof *sel);
    if (!buf || !keys || !sums || !sel) {
        free(buf);
        free(keys);
        free(sums);
        free(sel);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory for the normalisation statistics");
    }
    for (int64_t b0 = 0; !st && b0 < w; b0 += sw) {
        int64_t bw = w - b0 < sw ? w - b0 : sw;
        for (int64_t r0 = 0; !st && r0 < n; r0 += cap) {
            int64_t m = n - r0 < cap ? n - r0 : cap;
            st = sbi_corpus_read_x_columns(corpus, SBI_SPLIT_TRAIN, r0, m, c0 + b0, bw, buf);
            if (st) break;
            if (r0 == 0) {
                for (int64_t j = 0; j < bw; ++j) {
                    sums[j].shift = (double)buf[j];
                    sums[j].s1 = sums[j].s2 = 0;
                }
            }
            /* Sums in row order, whatever the block sizes. */
            for (int64_t r = 0; r < m; ++r) {
                const float *row = buf + r * bw;
                for (int64_t j = 0; j < bw; ++j) {
                    double v = (double)row[j] - sums[j].shift;
                    sums[j].s1 += v;
                    sums[j].s2 += v * v;
                }
            }
            if (r0 > 0) continue;
            /* Quantiles of the first `cap` rows, TILE columns at a time. */
            for (int64_t t0 = 0; t0 < bw; t0 += TILE) {
                int64_t tw = bw - t0 < TILE ? bw - t0 : TILE;
                for (int64_t r = 0; r < m; ++r)
                    for (int64_t t = 0; t < tw; ++t) keys[t * cap + r] = float_key(buf[r * bw + t0 + t]);
                for (int64_t t = 0; t < tw; ++t) {
                    const uint32_t *k = keys + t * cap;
                    radix_prepare(sel, k, m);
                    median[b0 + t0 + t] = quantile(sel, k, m, 0.5);
                    iqr[b0 + t0 + t] = quantile(sel, k, m, 0.75) - quantile(sel, k, m, 0.25);
                }
            }
        }
        for (int64_t j = 0; !st && j < bw; ++j) finish_sums(&sums[j], n, &mean[b0 + j], &std[b0 + j]);
    }
    free(buf);
    free(keys);
    free(sums);
    free(sel);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}

/* mean and std of unconstrained parameter columns [p0, p0 + w). */
static int theta_block_stats(sbi_corpus corpus, int64_t n, int P, int64_t p0, int64_t w, double *mean, double *std)
{
    int64_t chunk = n < STREAM_ROWS ? n : STREAM_ROWS;
    double *buf;
    col_sums *sums;
    int st = 0;
    if (w == 0) return 0;
    buf = malloc((size_t)chunk * (size_t)P * sizeof *buf);
    sums = calloc((size_t)w, sizeof *sums);
    if (!buf || !sums) {
        free(buf);
        free(sums);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory for the normalisation statistics");
    }
    for (int64_t r0 = 0; !st && r0 < n; r0 += chunk) {
        int64_t m = n - r0 < chunk ? n - r0 : chunk;
        st = sbi_corpus_read_rows(corpus, SBI_SPLIT_TRAIN, r0, m, SBI_SPACE_UNCONSTRAINED, buf, NULL, NULL);
        if (st) break;
        if (r0 == 0)
            for (int64_t j = 0; j < w; ++j) sums[j].shift = buf[p0 + j];
        for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < w; ++j) {
                double v = buf[r * P + p0 + j] - sums[j].shift;
                sums[j].s1 += v;
                sums[j].s2 += v * v;
            }
    }
    for (int64_t j = 0; !st && j < w; ++j) finish_sums(&sums[j], n, &mean[j], &std[j]);
    free(buf);
    free(sums);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}

/* Gather the blocks sbi_shard_block(n, r, size) of arrays[k] from every rank. */
static int gather_blocks(const sbi_comm *c, int64_t n, int n_arrays, double **arrays)
{
    int *counts, *displs;
    int st = 0;
    if (c->size == 1) return 0;
    SBI_CHECK(n <= 0x7fffffff, SBI_ERR_INTERNAL, "too many columns to gather (%lld)", (long long)n);
    SBI_MALLOC(counts, c->size);
    displs = malloc((size_t)c->size * sizeof *displs);
    if (!displs) {
        free(counts);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory");
    }
    for (int r = 0; r < c->size; ++r) {
        sbi_shard b = sbi_shard_block(n, r, c->size);
        counts[r] = (int)b.count;
        displs[r] = (int)b.offset;
    }
    for (int k = 0; !st && k < n_arrays; ++k) {
        int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arrays[k], counts, displs, MPI_DOUBLE, c->comm);
        if (e != MPI_SUCCESS) st = sbi__mpi_error(e, __FILE__, __LINE__, __func__, "MPI_Allgatherv");
    }
    free(counts);
    free(displs);
    return st;
}

static int local_stats(const sbi_comm *c, sbi_corpus corpus, double *const *x_stats, double *const *t_stats)
{
    const sbi_corpus_desc *d = sbi_corpus_get_desc(corpus);
    int64_t n = d->split_rows[SBI_SPLIT_TRAIN];
    sbi_shard xb = sbi_shard_block(d->n_outputs, c->rank, c->size);
    sbi_shard pb = sbi_shard_block(d->n_params, c->rank, c->size);
    if (n == 0) {
        for (int k = 0; k < 4; ++k)
            for (int64_t j = 0; j < d->n_outputs; ++j) x_stats[k][j] = NAN;
        for (int k = 0; k < 2; ++k)
            for (int64_t j = 0; j < d->n_params; ++j) t_stats[k][j] = NAN;
        return 0;
    }
    SBI_CALL(x_block_stats(corpus, n, xb.offset, xb.count, x_stats[0] + xb.offset, x_stats[1] + xb.offset,
                           x_stats[2] + xb.offset, x_stats[3] + xb.offset));
    SBI_CALL(theta_block_stats(corpus, n, d->n_params, pb.offset, pb.count, t_stats[0] + pb.offset,
                               t_stats[1] + pb.offset));
    return 0;
}

int sbi__simulate_write_stats(const sbi_comm *c, sbi_corpus corpus)
{
    const sbi_corpus_desc *d = sbi_corpus_get_desc(corpus);
    double *x_stats[4] = {NULL, NULL, NULL, NULL}, *t_stats[2] = {NULL, NULL};
    int st = 0;
    for (int k = 0; k < 4; ++k) {
        x_stats[k] = calloc((size_t)d->n_outputs, sizeof(double));
        if (!x_stats[k]) st = SBI_ERR_INTERNAL;
    }
    for (int k = 0; k < 2; ++k) {
        t_stats[k] = calloc((size_t)d->n_params, sizeof(double));
        if (!t_stats[k]) st = SBI_ERR_INTERNAL;
    }
    if (st) st = sbi__raise(st, __FILE__, __LINE__, __func__, "out of memory for the normalisation statistics");
    if (!st) st = local_stats(c, corpus, x_stats, t_stats);
    st = sbi_comm_agree(c, st);
    if (!st && d->split_rows[SBI_SPLIT_TRAIN] > 0) {
        st = gather_blocks(c, d->n_outputs, 4, x_stats);
        if (!st) st = gather_blocks(c, d->n_params, 2, t_stats);
        st = sbi_comm_agree(c, st);
    }
    if (!st) st = sbi_corpus_write_stats(corpus, x_stats[0], x_stats[1], x_stats[2], x_stats[3], t_stats[0], t_stats[1]);
    for (int k = 0; k < 4; ++k) free(x_stats[k]);
    for (int k = 0; k < 2; ++k) free(t_stats[k]);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}
