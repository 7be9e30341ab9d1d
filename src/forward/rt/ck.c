/* Correlated-k opacities: tables rebinned onto the model bins, (P, T)
 * interpolation, the random-overlap combination of species with resorting
 * and rebinning, and the transmission and emission integrals over g.  The
 * equations are those of petitRADTRANS 3 (see include/exosbi/rt.h beside
 * each declaration). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/core.h"
#include "exosbi/rt.h"

/* The inner loops over (bin, g) are written to vectorise; the library is
 * built for x86-64-v2, so the hot kernels also get an AVX2/FMA clone chosen
 * at load time, and the loop vectoriser's full cost model. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC optimize("O3", "no-trapping-math")
#define RT_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RT_HOT
#endif

/* After the pragma, so that its inline functions get the same options and
 * are inlined into the kernels. */
#include "forward/rt/rt_fastmath.h"

/* Sum of v (n) in a fixed order over eight lanes, so that the compiler can
 * vectorise it without reassociating a float reduction. */
RT_INLINE float lane_sum(const float *v, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int q = 0;
    for (; q + 8 <= n; q += 8)
        for (int j = 0; j < 8; ++j) acc[j] += v[q + j];
    for (; q < n; ++q) acc[0] += v[q];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* ---- tables ------------------------------------------------------------------ */

int sbi_rt_ck_table_init(int n_p, const double *p_bar, int n_t, const double *t, int w, int n_g,
                         sbi_rt_ck_table *tab)
{
    memset(tab, 0, sizeof *tab);
    SBI_CHECK(n_p >= 1 && n_t >= 1 && w >= 1 && n_g >= 1 && n_g <= SBI_RT_CK_MAX_G, SBI_ERR_INTERNAL,
              "sbi_rt_ck_table_init: empty grid or %d g-points", n_g);
    tab->n_p = n_p;
    tab->n_t = n_t;
    tab->w = w;
    tab->n_g = n_g;
    SBI_MALLOC(tab->p, n_p);
    SBI_MALLOC(tab->t, n_t);
    SBI_CALLOC(tab->k, (size_t)n_p * (size_t)n_t * (size_t)w * (size_t)n_g);
    memcpy(tab->p, p_bar, (size_t)n_p * sizeof *p_bar);
    memcpy(tab->t, t, (size_t)n_t * sizeof *t);
    return SBI_OK;
}

void sbi_rt_ck_table_free(sbi_rt_ck_table *tab)
{
    if (!tab) return;
    free(tab->p);
    free(tab->t);
    free(tab->k);
    memset(tab, 0, sizeof *tab);
}

void sbi_rt_ck_model_bins(int w, const double *lambda_um, double *nu_lo, double *nu_hi)
{
    for (int l = 0; l < w; ++l) {
        const double lo = l > 0 ? sqrt(lambda_um[l - 1] * lambda_um[l])
                                : (w > 1 ? lambda_um[0] * sqrt(lambda_um[0] / lambda_um[1]) : lambda_um[0] * 0.999);
        const double hi = l + 1 < w ? sqrt(lambda_um[l] * lambda_um[l + 1])
                                    : (w > 1 ? lambda_um[w - 1] * sqrt(lambda_um[w - 1] / lambda_um[w - 2])
                                             : lambda_um[0] * 1.001);
        nu_lo[l] = 1e4 / hi;
        nu_hi[l] = 1e4 / lo;
    }
}

/* Put n (k, weight) pairs sorted by k back onto the g-points (pRT
 * `combine_ck_opacities`): pair m sits at the midpoint of its cumulative
 * weight, g = 1 takes the largest k, and the values at the g-points are
 * interpolated linearly (extrapolated from the first interval below the
 * first midpoint, clamped to the smallest k).  x: n + 1 floats of work. */
static void resort_to_g(int n, const float *k, const float *wt, int n_g, const float *g, float *x, float *out)
{
    float total = 0.0f, cum = 0.0f, inv;
    int m = 0;
    const float kmin = k[0], kmax = k[n - 1];
    for (int j = 0; j < n; ++j) total += wt[j];
    inv = 1.0f / total;
    for (int j = 0; j < n; ++j) {
        x[j] = (cum + 0.5f * wt[j]) * inv;
        cum += wt[j];
    }
    x[n] = 1.0f;
    for (int q = 0; q < n_g; ++q) {
        const float gq = g[q];
        float y, x0, x1, y0, y1;
        /* m: the last point at or below gq, kept within [0, n - 1] so that
         * [m, m + 1] is an interval of the n + 1 points. */
        while (m + 1 < n && x[m + 1] <= gq) ++m;
        x0 = x[m];
        x1 = x[m + 1];
        y0 = k[m];
        y1 = m + 1 < n ? k[m + 1] : kmax;
        y = x1 > x0 ? y0 + (y1 - y0) * (gq - x0) / (x1 - x0) : y0;
        out[q] = y < kmin ? kmin : (y > kmax ? kmax : y);
    }
}

static void merge_runs(const float *ka, const float *wa, int na, const float *kb, const float *wb, int nb, float *ko,
                       float *wo);
static void sort_small(int n, float *k, float *w);

/* Sort `total` (k, w) pairs made of sorted runs of length `run` (the last
 * may be shorter) by a bottom-up merge between the buffers 0 and 1; the
 * pairs start in buffer 0.  Returns the buffer that holds the result. */
static int merge_sorted_runs(int total, int run, float *k0, float *w0, float *k1, float *w1)
{
    int src = 0;
    for (int width = run; width < total; width *= 2) {
        const float *ks = src ? k1 : k0, *ws = src ? w1 : w0;
        float *kd = src ? k0 : k1, *wd = src ? w0 : w1;
        for (int lo = 0; lo < total; lo += 2 * width) {
            const int mid = lo + width < total ? lo + width : total;
            const int hi = lo + 2 * width < total ? lo + 2 * width : total;
            merge_runs(ks + lo, ws + lo, mid - lo, ks + mid, ws + mid, hi - mid, kd + lo, wd + lo);
        }
        src = 1 - src;
    }
    return src;
}

int sbi_rt_ck_rebin(int n_g, const double *g, const double *wg, int64_t n_nu, const double *edges, const double *k,
                    int w, const double *nu_lo, const double *nu_hi, float *out)
{
    float *buf = NULL, gf[SBI_RT_CK_MAX_G];
    int64_t cap = 0;

    SBI_CHECK(n_g >= 1 && n_g <= SBI_RT_CK_MAX_G && n_nu >= 1, SBI_ERR_INTERNAL, "sbi_rt_ck_rebin: %d g-points",
              n_g);
    for (int q = 0; q < n_g; ++q) gf[q] = (float)g[q];
    for (int l = 0; l < w; ++l) {
        const double lo = nu_lo[l], hi = nu_hi[l], width = hi - lo;
        int64_t j0, j1;
        int n = 0, src;
        double covered = 0.0;
        float *dst = out + (size_t)l * (size_t)n_g, *k0, *w0, *k1, *w1;
        /* Table bins j0 .. j1 - 1 overlap (lo, hi). */
        {
            int64_t a = 0, b = n_nu;
            while (a < b) {
                const int64_t mid = (a + b) / 2;
                if (edges[mid + 1] <= lo)
                    a = mid + 1;
                else
                    b = mid;
            }
            j0 = a;
        }
        for (j1 = j0; j1 < n_nu && edges[j1] < hi; ++j1) {
        }
        if (j1 == j0 + 1 && edges[j0] <= lo && edges[j0 + 1] >= hi) {
            for (int q = 0; q < n_g; ++q) dst[q] = (float)k[j0 * n_g + q];
            continue;
        }
        if (j1 <= j0) {
            for (int q = 0; q < n_g; ++q) dst[q] = 0.0f;
            continue;
        }
        if ((j1 - j0 + 1) * n_g + 1 > cap) {
            float *grown;
            cap = 2 * ((j1 - j0 + 1) * n_g + 1);
            grown = realloc(buf, 5 * (size_t)cap * sizeof *buf);
            if (!grown) {
                free(buf);
                SBI_RAISE(SBI_ERR_INTERNAL, "out of memory rebinning a correlated-k table");
            }
            buf = grown;
        }
        k0 = buf;
        w0 = k0 + cap;
        k1 = w0 + cap;
        w1 = k1 + cap;
        /* One sorted run of G pairs per table bin, then the uncovered rest
         * (absorbing nothing) as a run of one. */
        for (int64_t j = j0; j < j1; ++j) {
            const double f = (fmin(hi, edges[j + 1]) - fmax(lo, edges[j])) / width;
            if (!(f > 0)) continue;
            covered += f;
            for (int q = 0; q < n_g; ++q) {
                k0[n + q] = (float)k[j * n_g + q];
                w0[n + q] = (float)(f * wg[q]);
            }
            sort_small(n_g, k0 + n, w0 + n);
            n += n_g;
        }
        if (covered < 1.0 - 1e-6) {
            /* A run of G so that the merge widths stay multiples of G. */
            for (int q = 0; q < n_g; ++q) {
                k0[n + q] = 0.0f;
                w0[n + q] = (float)((1.0 - covered) * wg[q]);
            }
            n += n_g;
        }
        src = merge_sorted_runs(n, n_g, k0, w0, k1, w1);
        resort_to_g(n, src ? k1 : k0, src ? w1 : w0, n_g, gf, w1 + cap, dst);
    }
    free(buf);
    return SBI_OK;
}

/* ---- (P, T) interpolation --------------------------------------------------- */

RT_HOT void sbi_rt_ck_interp(const sbi_rt_ck_table *tab, double p_bar, double t, double c, int l0, int l1, float *out)
{
    int ip, it;
    double fp, ft;
    const size_t stride = (size_t)tab->w * (size_t)tab->n_g, off = (size_t)l0 * (size_t)tab->n_g;
    const size_t count = (size_t)(l1 - l0) * (size_t)tab->n_g;
    const float *k00, *k01, *k10, *k11;
    float c00, c01, c10, c11;
    int ip1, it1;

    sbi_rt_bracket(tab->n_p, tab->p, p_bar, &ip, &fp);
    sbi_rt_bracket(tab->n_t, tab->t, t, &it, &ft);
    ip1 = tab->n_p > 1 ? ip + 1 : ip;
    it1 = tab->n_t > 1 ? it + 1 : it;
    k00 = tab->k + ((size_t)ip * (size_t)tab->n_t + (size_t)it) * stride + off;
    k01 = tab->k + ((size_t)ip * (size_t)tab->n_t + (size_t)it1) * stride + off;
    k10 = tab->k + ((size_t)ip1 * (size_t)tab->n_t + (size_t)it) * stride + off;
    k11 = tab->k + ((size_t)ip1 * (size_t)tab->n_t + (size_t)it1) * stride + off;
    c00 = (float)(c * (1.0 - fp) * (1.0 - ft));
    c01 = (float)(c * (1.0 - fp) * ft);
    c10 = (float)(c * fp * (1.0 - ft));
    c11 = (float)(c * fp * ft);
    for (size_t m = 0; m < count; ++m) {
        const float v = c00 * k00[m] + c01 * k01[m] + c10 * k10[m] + c11 * k11[m];
        /* Below 1e-30 cm^2 g^-1 an opacity is nothing (tau < 1e-20 over any
         * atmosphere), and keeping it would leave subnormal floats, which
         * slow the overlap's arithmetic a hundredfold. */
        out[m] = v < 1e-30f ? 0.0f : v;
    }
}

RT_HOT void sbi_rt_line_add_block(const sbi_rt_line_table *tab, double p_bar, double t, double c, int l0, int l1,
                                  float *out)
{
    int row[4];
    double wt[4];
    const size_t w = (size_t)tab->w;
    const float *s0, *s1, *s2, *s3;
    float c0, c1, c2, c3;
    sbi_rt_line_weights(tab, p_bar, t, row, wt);
    s0 = tab->sigma + (size_t)row[0] * w + l0;
    s1 = tab->sigma + (size_t)row[1] * w + l0;
    s2 = tab->sigma + (size_t)row[2] * w + l0;
    s3 = tab->sigma + (size_t)row[3] * w + l0;
    c0 = (float)(c * wt[0]);
    c1 = (float)(c * wt[1]);
    c2 = (float)(c * wt[2]);
    c3 = (float)(c * wt[3]);
    for (int l = 0; l < l1 - l0; ++l) out[l] += c0 * s0[l] + c1 * s1[l] + c2 * s2[l] + c3 * s3[l];
}

/* work (n_nu) = alpha(t) / max alpha(t) at the table's own wavenumbers,
 * ln alpha linear in T; returns scale * max alpha(t), 0 when nothing is left. */
RT_INLINE float cia_work(const sbi_rt_cia *cia, double t, double scale, float *restrict work)
{
    int q;
    double f, top = -INFINITY;
    const double *a0, *a1;
    sbi_rt_bracket(cia->n_t, cia->t, t, &q, &f);
    a0 = cia->ln_alpha + (size_t)q * cia->n_nu;
    a1 = cia->n_t > 1 ? a0 + cia->n_nu : a0;
    for (int j = 0; j < cia->n_nu; ++j) {
        const double v = (1.0 - f) * a0[j] + f * a1[j];
        top = v > top ? v : top;
    }
    /* exp(v - top) in (0, 1]; below e^-87 (the fast exp's floor) it is
     * nothing next to the table's peak, and a floored 1e-300 entry is zero. */
    for (int j = 0; j < cia->n_nu; ++j) {
        const float x = (float)((1.0 - f) * a0[j] + f * a1[j] - top);
        const float keep = (float)(x > -87.0f);
        work[j] = keep * sbi__rt_expf(x);
    }
    return (float)(scale * exp(top));
}

RT_HOT void sbi_rt_cia_add_gather(const sbi_rt_cia *cia, double t, double scale, float *restrict work,
                                  float *restrict out)
{
    const int *restrict left = cia->left;
    const double *restrict wts = cia->wt;
    const float sc = cia_work(cia, t, scale, work);
    if (!(sc > 0)) return;
    /* Branch-free, so that the loop vectorises with gathers: outside the
     * table (left -1) both weights are zero. */
    for (int l = 0; l < cia->w; ++l) {
        const int j = left[l], jl = j < 0 ? 0 : j, jr = j < 0 ? 0 : j + 1; /* in [0, n_nu) */
        const float in = j >= 0 ? sc : 0.0f, wt = (float)wts[l];
        out[l] += in * ((1.0f - wt) * work[jl] + wt * work[jr]);
    }
}

RT_HOT void sbi_rt_cia_add(const sbi_rt_cia *cia, double t, double scale, float *restrict work, float *restrict out)
{
    const float *restrict wts = cia->wt_f;
    const float sc = cia_work(cia, t, scale, work);
    if (!(sc > 0)) return;
    /* Run by run: the two table values are the same for the whole run
     * (about 5 to 60 model wavelengths), so the loop is a broadcast and a
     * contiguous stream, and the arithmetic that of the gather form. */
    for (int k = 0; k < cia->n_runs; ++k) {
        const int *run = cia->run + 3 * k;
        const float a = work[run[2]], b = work[run[2] + 1];
        for (int l = run[0]; l < run[1]; ++l) out[l] += sc * ((1.0f - wts[l]) * a + wts[l] * b);
    }
}

/* ---- random overlap ---------------------------------------------------------- */

int sbi_rt_ck_mixer_init(int n_g, const double *g, const double *w, sbi_rt_ck_mixer *mx)
{
    memset(mx, 0, sizeof *mx);
    SBI_CHECK(n_g >= 1 && n_g <= SBI_RT_CK_MAX_G, SBI_ERR_INTERNAL, "sbi_rt_ck_mixer_init: %d g-points", n_g);
    mx->n_g = n_g;
    mx->threshold = 1e-3f;
    for (int q = 0; q < n_g; ++q) {
        mx->g[q] = (float)g[q];
        mx->w[q] = (float)w[q];
    }
    SBI_MALLOC(mx->ww, (size_t)n_g * (size_t)n_g);
    SBI_MALLOC(mx->buf, 4 * ((size_t)n_g * (size_t)n_g + (size_t)n_g));
    for (int i = 0; i < n_g; ++i)
        for (int j = 0; j < n_g; ++j) mx->ww[i * n_g + j] = (float)(w[i] * w[j]);
    return SBI_OK;
}

void sbi_rt_ck_mixer_free(sbi_rt_ck_mixer *mx)
{
    if (!mx) return;
    free(mx->ww);
    free(mx->buf);
    memset(mx, 0, sizeof *mx);
}

/* Sort (k, w) of n <= SBI_RT_CK_MAX_G by k: insertion sort, as the
 * distributions arrive sorted or nearly so. */
static void sort_small(int n, float *k, float *w)
{
    for (int i = 1; i < n; ++i) {
        const float kv = k[i], wv = w[i];
        int j = i - 1;
        while (j >= 0 && k[j] > kv) {
            k[j + 1] = k[j];
            w[j + 1] = w[j];
            --j;
        }
        k[j + 1] = kv;
        w[j + 1] = wv;
    }
}

static void merge_runs(const float *ka, const float *wa, int na, const float *kb, const float *wb, int nb, float *ko,
                       float *wo)
{
    int i = 0, j = 0, m = 0;
    if (na > 0 && nb > 0 && ka[na - 1] <= kb[0]) {
        /* The runs do not interleave (a species far weaker than the other
         * in this bin): concatenate, as pRT's merge sort shortcuts. */
        memcpy(ko, ka, (size_t)na * sizeof *ko);
        memcpy(wo, wa, (size_t)na * sizeof *wo);
        memcpy(ko + na, kb, (size_t)nb * sizeof *ko);
        memcpy(wo + na, wb, (size_t)nb * sizeof *wo);
        return;
    }
    while (i < na && j < nb) {
        const int ta = ka[i] <= kb[j];
        ko[m] = ta ? ka[i] : kb[j];
        wo[m] = ta ? wa[i] : wb[j];
        i += ta;
        j += 1 - ta;
        ++m;
    }
    while (i < na) {
        ko[m] = ka[i];
        wo[m++] = wa[i++];
    }
    while (j < nb) {
        ko[m] = kb[j];
        wo[m++] = wb[j++];
    }
}

/* The G^2 pairs sorted by k: the rows a_i + b_j (j = 0..G-1) are sorted once
 * a and b are, so a bottom-up merge of the G rows sorts them in
 * O(G^2 log G).  The result lies in k0/w0 or k1/w1; returns which. */
static int overlap_sorted(sbi_rt_ck_mixer *mx, const float *a, const float *b, float *k0, float *w0, float *k1,
                          float *w1)
{
    const int n_g = mx->n_g, total = n_g * n_g;
    float ka[SBI_RT_CK_MAX_G], wa[SBI_RT_CK_MAX_G], kb[SBI_RT_CK_MAX_G], wb[SBI_RT_CK_MAX_G];
    int src = 0;
    for (int q = 0; q < n_g; ++q) {
        ka[q] = a[q];
        kb[q] = b[q];
        wa[q] = wb[q] = mx->w[q];
    }
    sort_small(n_g, ka, wa);
    sort_small(n_g, kb, wb);
    for (int i = 0; i < n_g; ++i) {
        float *kr = k0 + i * n_g, *wr = w0 + i * n_g;
        for (int j = 0; j < n_g; ++j) {
            kr[j] = ka[i] + kb[j];
            wr[j] = wa[i] * wb[j];
        }
    }
    src = merge_sorted_runs(total, n_g, k0, w0, k1, w1);
    return src;
}

void sbi_rt_ck_overlap_pairs(sbi_rt_ck_mixer *mx, const float *a, const float *b, float *k_sorted, float *w_sorted)
{
    const size_t nn = (size_t)mx->n_g * (size_t)mx->n_g, stride = nn + (size_t)mx->n_g;
    float *k0 = mx->buf, *w0 = k0 + stride, *k1 = w0 + stride, *w1 = k1 + stride;
    const int src = overlap_sorted(mx, a, b, k0, w0, k1, w1);
    memcpy(k_sorted, src ? k1 : k0, nn * sizeof *k_sorted);
    memcpy(w_sorted, src ? w1 : w0, nn * sizeof *w_sorted);
}

void sbi_rt_ck_overlap(sbi_rt_ck_mixer *mx, float *a, const float *b)
{
    const int n_g = mx->n_g;
    const size_t stride = (size_t)n_g * (size_t)n_g + (size_t)n_g;
    float *k0 = mx->buf, *w0 = k0 + stride, *k1 = w0 + stride, *w1 = k1 + stride;
    const int src = overlap_sorted(mx, a, b, k0, w0, k1, w1);
    /* The other pair of buffers is free for the midpoints. */
    resort_to_g(n_g * n_g, src ? k1 : k0, src ? w1 : w0, n_g, mx->g, src ? k0 : k1, a);
    ++mx->n_overlaps;
}

void sbi_rt_ck_mix(sbi_rt_ck_mixer *mx, int n_s, const float *const *k_s, float *out)
{
    const int n_g = mx->n_g;
    float thr = 0.0f;
    if (out != k_s[0]) memcpy(out, k_s[0], (size_t)n_g * sizeof *out);
    if (n_s < 2) return;
    for (int s = 0; s < n_s; ++s) thr = k_s[s][0] > thr ? k_s[s][0] : thr;
    thr *= mx->threshold;
    for (int s = 1; s < n_s; ++s) {
        const float *b = k_s[s];
        if (b[n_g - 1] < thr || !(b[n_g - 1] > 0.0f)) {
            ++mx->n_skipped;
            continue;
        }
        sbi_rt_ck_overlap(mx, out, b);
    }
}

size_t sbi_rt_ck_kappa_work(int n_s, int n_g, int blk)
{
    return (size_t)(n_s > 0 ? n_s : 1) * (size_t)blk * (size_t)n_g;
}

void sbi_rt_ck_kappa(sbi_rt_ck_mixer *mx, int n_s, const sbi_rt_ck_table *const *tabs, const double *c, int n,
                     int w, const double *p_bar, const double *t, const float *gray, int blk, float *work,
                     float *kappa)
{
    const int n_g = mx->n_g;
    const size_t sstride = (size_t)blk * (size_t)n_g;
    const float *ptr[64];

    if (n_s <= 0) {
        for (size_t m = 0; m < (size_t)n * (size_t)w; ++m)
            for (int q = 0; q < n_g; ++q) kappa[m * (size_t)n_g + (size_t)q] = gray[m];
        return;
    }
    if (n_s > 64) n_s = 64;
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w, nb = l1 - l0;
        for (int i = 0; i < n; ++i) {
            const float *gr = gray + (size_t)i * (size_t)w + (size_t)l0;
            float *dst = kappa + ((size_t)i * (size_t)w + (size_t)l0) * (size_t)n_g;
            for (int s = 0; s < n_s; ++s) sbi_rt_ck_interp(tabs[s], p_bar[i], t[i], c[s], l0, l1, work + s * sstride);
            for (int l = 0; l < nb; ++l)
                for (int q = 0; q < n_g; ++q) work[(size_t)l * (size_t)n_g + (size_t)q] += gr[l];
            for (int l = 0; l < nb; ++l) {
                for (int s = 0; s < n_s; ++s) ptr[s] = work + s * sstride + (size_t)l * (size_t)n_g;
                sbi_rt_ck_mix(mx, n_s, ptr, dst + (size_t)l * (size_t)n_g);
            }
        }
    }
}

/* ---- transmission ------------------------------------------------------------ */

void sbi_rt_chord_tau(int n, int cols, const float *m, const float *alpha, float *tau)
{
    /* m is lower triangular (ray i crosses layers j <= i only): strmm does
     * half the multiply-adds of sgemm, in place on a copy of alpha. */
    memcpy(tau, alpha, (size_t)n * (size_t)cols * sizeof *tau);
    cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, cols, 1.0f, m, n, tau, cols);
}

RT_HOT void sbi_rt_ck_absorbed(int n, int w, int n_g, const float *wg, float *tau)
{
    if (n_g == 1) {
        const float w0 = wg[0];
        for (size_t m = 0; m < (size_t)n * (size_t)w; ++m) tau[m] = w0 * sbi__rt_absorbed(tau[m]);
        return;
    }
    /* Entry (i, l) goes to i W + l, at or before where its G inputs start. */
    for (size_t m = 0; m < (size_t)n * (size_t)w; ++m) {
        float *tg = tau + m * (size_t)n_g;
        for (int q = 0; q < n_g; ++q) tg[q] = wg[q] * sbi__rt_absorbed(tg[q]);
        tau[m] = lane_sum(tg, n_g);
    }
}

RT_HOT void sbi_rt_transit_from_absorbed(int n, int w, const float *a, const double *r, double *rt2)
{
    for (int l = 0; l < w; ++l) rt2[l] = r[n - 1] * r[n - 1];
    for (int i = 1; i < n; ++i) {
        const float *a0 = a + (size_t)(i - 1) * (size_t)w, *a1 = a + (size_t)i * (size_t)w;
        const double dr = r[i - 1] - r[i], r0 = r[i - 1], r1 = r[i];
        for (int l = 0; l < w; ++l) rt2[l] += ((double)a0[l] * r0 + (double)a1[l] * r1) * dr;
    }
}

void sbi_rt_transit_from_tau(int n, int w, int n_g, const float *wg, float *tau, const double *r, double *rt2)
{
    sbi_rt_ck_absorbed(n, w, n_g, wg, tau);
    sbi_rt_transit_from_absorbed(n, w, tau, r, rt2);
}

void sbi_rt_transit_radius2_ck(int n, int w, int n_g, const float *wg, const float *m, const float *alpha,
                               const double *r, float *tau, double *rt2)
{
    sbi_rt_chord_tau(n, w * n_g, m, alpha, tau);
    sbi_rt_transit_from_tau(n, w, n_g, wg, tau, r, rt2);
}

/* ---- emission ---------------------------------------------------------------- */

size_t sbi_rt_emission_ck_work(int w, int n_g, int n_mu)
{
    return (size_t)w * (size_t)n_g * (size_t)(1 + n_mu) + 2 * (size_t)w + (size_t)n_mu * (size_t)w;
}

RT_HOT void sbi_rt_emission_flux_ck(int n, int w, int n_g, const float *wg, const double *p_bar, const double *t,
                             const float *kappa, double g, const double *nu, int n_mu, const double *mu,
                             const double *w_mu, float *work, double *flux_nu)
{
    const size_t wgn = (size_t)w * (size_t)n_g;
    float *tau = work, *trp = tau + wgn, *b0 = trp + (size_t)n_mu * wgn, *b1 = b0 + w, *inten = b1 + w;

    for (size_t m = 0; m < wgn; ++m) tau[m] = 0.0f;
    for (size_t m = 0; m < (size_t)n_mu * wgn; ++m) trp[m] = 1.0f;
    for (size_t m = 0; m < (size_t)n_mu * (size_t)w; ++m) inten[m] = 0.0f;
    for (int l = 0; l < w; ++l) b0[l] = (float)sbi_rt_planck_nu(nu[l], t[0]);
    for (int i = 1; i < n; ++i) {
        const float dp = (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g));
        const float *k0 = kappa + (size_t)(i - 1) * wgn, *k1 = kappa + (size_t)i * wgn;
        float *tmp;
        for (size_t m = 0; m < wgn; ++m) tau[m] += (k0[m] + k1[m]) * dp;
        for (int l = 0; l < w; ++l) b1[l] = (float)sbi_rt_planck_nu(nu[l], t[i]);
        for (int a = 0; a < n_mu; ++a) {
            const float neg_inv_mu = (float)(-1.0 / mu[a]);
            float *tr = trp + (size_t)a * wgn, *in = inten + (size_t)a * (size_t)w;
            for (int l = 0; l < w; ++l) {
                float *trl = tr + (size_t)l * (size_t)n_g;
                const float *tl = tau + (size_t)l * (size_t)n_g;
                float d[SBI_RT_CK_MAX_G];
                for (int q = 0; q < n_g; ++q) {
                    const float e = sbi__rt_expf(tl[q] * neg_inv_mu);
                    d[q] = wg[q] * (trl[q] - e);
                    trl[q] = e;
                }
                in[l] += 0.5f * (b0[l] + b1[l]) * lane_sum(d, n_g);
            }
        }
        tmp = b0;
        b0 = b1;
        b1 = tmp;
    }
    for (int l = 0; l < w; ++l) flux_nu[l] = 0.0;
    for (int a = 0; a < n_mu; ++a) {
        const double c = 2.0 * SBI_RT_PI * mu[a] * w_mu[a];
        const float *tr = trp + (size_t)a * wgn, *in = inten + (size_t)a * (size_t)w;
        for (int l = 0; l < w; ++l) {
            float d[SBI_RT_CK_MAX_G], s;
            for (int q = 0; q < n_g; ++q) d[q] = wg[q] * tr[(size_t)l * (size_t)n_g + (size_t)q];
            s = lane_sum(d, n_g);
            flux_nu[l] += c * ((double)in[l] + (double)b0[l] * s);
        }
    }
}

/* ---- the product of the species' g-mean transmissions ------------------------ */

RT_HOT void sbi_rt_ck_alpha_species(const sbi_rt_ck_table *tab, double c, int n, int w, const double *p_bar,
                                    const double *t, const double *rho, const float *gray, int blk, float *alpha)
{
    const int n_g = tab->n_g;
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w;
        for (int i = 0; i < n; ++i) {
            float *a = alpha + ((size_t)i * (size_t)w + (size_t)l0) * (size_t)n_g;
            const float r = (float)(rho ? rho[i] : 1.0);
            sbi_rt_ck_interp(tab, p_bar[i], t[i], c, l0, l1, a);
            if (gray) {
                const float *gr = gray + (size_t)i * (size_t)w + (size_t)l0;
                for (int l = 0; l < l1 - l0; ++l)
                    for (int q = 0; q < n_g; ++q) a[l * n_g + q] += gr[l];
            }
            if (rho)
                for (int m = 0; m < (l1 - l0) * n_g; ++m) a[m] *= r;
        }
    }
}

RT_HOT void sbi_rt_emission_flux_ck_product(int n, int w, int n_g, const float *wg, int n_s,
                                            const sbi_rt_ck_table *const *tabs, const double *c, const float *gray,
                                            const double *p_bar, const double *t, double g, int deck_from,
                                            float deck_kappa, const double *nu, int n_mu, const double *mu,
                                            const double *w_mu, float *work, double *flux_nu)
{
    const size_t wgn = (size_t)w * (size_t)n_g, sw = (size_t)n_s * wgn;
    float *tau = work, *kprev = tau + sw, *kcur = kprev + sw, *tprev = kcur + sw, *b0 = tprev + (size_t)n_mu * w;
    float *b1 = b0 + w, *inten = b1 + w;

    for (size_t m = 0; m < sw; ++m) tau[m] = 0.0f;
    for (size_t m = 0; m < (size_t)n_mu * (size_t)w; ++m) {
        tprev[m] = 1.0f;
        inten[m] = 0.0f;
    }
    for (int l = 0; l < w; ++l) b0[l] = (float)sbi_rt_planck_nu(nu[l], t[0]);
    for (int i = 0; i < n; ++i) {
        float *tmp;
        /* kappa of every species in layer i (species 0 with the gray part). */
        for (int s = 0; s < n_s; ++s) {
            float *k = kcur + (size_t)s * wgn;
            sbi_rt_ck_interp(tabs[s], p_bar[i], t[i], c[s], 0, w, k);
            if (s == 0) {
                const float *gr = gray + (size_t)i * (size_t)w;
                for (int l = 0; l < w; ++l)
                    for (int q = 0; q < n_g; ++q) k[(size_t)l * n_g + q] += gr[l];
                if (deck_from >= 0 && i >= deck_from)
                    for (size_t m = 0; m < wgn; ++m) k[m] = deck_kappa;
            }
        }
        if (i > 0) {
            const float dp = (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g));
            for (size_t m = 0; m < sw; ++m) tau[m] += (kprev[m] + kcur[m]) * dp;
            for (int l = 0; l < w; ++l) b1[l] = (float)sbi_rt_planck_nu(nu[l], t[i]);
            for (int a = 0; a < n_mu; ++a) {
                const float neg_inv_mu = (float)(-1.0 / mu[a]);
                float *tp = tprev + (size_t)a * w, *in = inten + (size_t)a * w;
                for (int l = 0; l < w; ++l) {
                    float tr = 1.0f;
                    for (int s = 0; s < n_s; ++s) {
                        const float *tl = tau + (size_t)s * wgn + (size_t)l * n_g;
                        float d[SBI_RT_CK_MAX_G];
                        for (int q = 0; q < n_g; ++q) d[q] = wg[q] * sbi__rt_expf(tl[q] * neg_inv_mu);
                        tr *= lane_sum(d, n_g);
                    }
                    in[l] += 0.5f * (b0[l] + b1[l]) * (tp[l] - tr);
                    tp[l] = tr;
                }
            }
            tmp = b0;
            b0 = b1;
            b1 = tmp;
        }
        tmp = kprev;
        kprev = kcur;
        kcur = tmp;
    }
    for (int l = 0; l < w; ++l) flux_nu[l] = 0.0;
    for (int a = 0; a < n_mu; ++a) {
        const double cm = 2.0 * SBI_RT_PI * mu[a] * w_mu[a];
        const float *tp = tprev + (size_t)a * w, *in = inten + (size_t)a * w;
        for (int l = 0; l < w; ++l) flux_nu[l] += cm * ((double)in[l] + (double)b0[l] * tp[l]);
    }
}

size_t sbi_rt_emission_ck_product_work(int w, int n_g, int n_s, int n_mu)
{
    return 3 * (size_t)n_s * (size_t)w * (size_t)n_g + (size_t)n_mu * (size_t)w * 2 + 2 * (size_t)w;
}
