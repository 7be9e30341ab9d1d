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
#pragma GCC optimize("O3", "no-trapping-math", "fp-contract=fast")
#define RT_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#define RT_NOINLINE __attribute__((noinline))
#else
#define RT_HOT
#define RT_NOINLINE
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

/* How many of v (n) are above `above` and how many below `below`: integer
 * counts of comparisons, which vectorise (a float min/max reduction does
 * not without -ffinite-math-only). */
RT_INLINE void lane_counts(const float *v, int n, float above, float below, int *n_above, int *n_below)
{
    int a = 0, b = 0;
    for (int m = 0; m < n; ++m) {
        a += v[m] > above;
        b += v[m] < below;
    }
    *n_above = a;
    *n_below = b;
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

RT_HOT float sbi_rt_cia_values(const sbi_rt_cia *cia, double t, double scale, float *restrict work)
{
    return cia_work(cia, t, scale, work);
}

int sbi_rt_cia_same_grid(const sbi_rt_cia *a, const sbi_rt_cia *b)
{
    return a->w == b->w && a->n_nu == b->n_nu && !memcmp(a->left, b->left, (size_t)a->w * sizeof *a->left) &&
           !memcmp(a->wt_f, b->wt_f, (size_t)a->w * sizeof *a->wt_f);
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

/* v (n) = 1 - exp(-v), and the same where every v < 1e-3 (the series
 * alone, without the exponential).
 * Functions of their own: GCC does not vectorise these loops inside a
 * branch of the caller's loop ("control flow in loop"); the calls go to
 * the same clone. */
static RT_HOT RT_NOINLINE void absorbed_all(float *v, size_t n)
{
    for (size_t m = 0; m < n; ++m) v[m] = sbi__rt_absorbed(v[m]);
}

static RT_HOT RT_NOINLINE void absorbed_all_thin(float *v, size_t n)
{
    for (size_t m = 0; m < n; ++m) {
        const float ts = v[m];
        v[m] = ts * (1.0f - ts * (0.5f - ts * 0.166666667f));
    }
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

/* One layer's (or ray's) row ti (w, G) of optical depths: the absorbed
 * fractions sum_g w_g (1 - exp(-tau)) (w), written over the front of ti;
 * returns 1 where every tau exceeds 18 (each fraction rounds to 1:
 * exp(-18) = 1.5e-8 is below half a float ulp of 1) and the row is wsum. */
RT_INLINE int absorbed_row(float *ti, int w, int n_g, const float *wg, float wsum)
{
    const size_t row = (size_t)w * (size_t)n_g;
    int n_opaque, n_thin;
    /* One long loop over the W G values (no call per bin), then the
     * weighted sums over g. */
    lane_counts(ti, (int)row, 18.0f, 1e-3f, &n_opaque, &n_thin);
    if ((size_t)n_opaque == row) {
        for (int l = 0; l < w; ++l) ti[l] = wsum;
        return 1;
    }
    if ((size_t)n_thin == row)
        absorbed_all_thin(ti, row);
    else
        absorbed_all(ti, row);
    for (int l = 0; l < w; ++l) {
        float d[SBI_RT_CK_MAX_G];
        for (int q = 0; q < n_g; ++q) d[q] = wg[q] * ti[(size_t)l * (size_t)n_g + (size_t)q];
        ti[l] = lane_sum(d, n_g);
    }
    return 0;
}

RT_HOT void sbi_rt_ck_absorbed_g(int n, int w, int n_g, const float *wg, float *tau)
{
    const float wsum = lane_sum(wg, n_g);
    const size_t row = (size_t)w * (size_t)n_g;
    /* Entry (i, l) goes to i W + l, at or before where its G inputs start. */
    for (int i = 0; i < n; ++i) {
        float *ti = tau + (size_t)i * row;
        absorbed_row(ti, w, n_g, wg, wsum);
        if (i > 0) memmove(tau + (size_t)i * (size_t)w, ti, (size_t)w * sizeof *ti);
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
    sbi_rt_ck_absorbed_g(n, w, n_g, wg, tau);
    sbi_rt_transit_from_absorbed(n, w, tau, r, rt2);
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
            const float k2 = (float)(1.0 / mu[a]) * SBI__RT_LOG2E; /* exp(-tau / mu) = 2^-(tau k2) */
            float *tr = trp + (size_t)a * wgn, *in = inten + (size_t)a * (size_t)w;
            for (int l = 0; l < w; ++l) {
                float *trl = tr + (size_t)l * (size_t)n_g;
                const float *tl = tau + (size_t)l * (size_t)n_g;
                float d[SBI_RT_CK_MAX_G];
                for (int q = 0; q < n_g; ++q) {
                    const float e = sbi__rt_exp2_neg(tl[q] * k2);
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


/* ---- adaptive equivalent extinction ----------------------------------------- */

void sbi_rt_ck_aee_free(sbi_rt_ck_aee *ae)
{
    if (!ae) return;
    for (int s = 0; s < ae->n_s; ++s) {
        if (ae->mean) free(ae->mean[s]);
        if (ae->dev) free(ae->dev[s]);
    }
    free(ae->mean);
    free(ae->dev);
    free(ae->tabs);
    memset(ae, 0, sizeof *ae);
}

int sbi_rt_ck_aee_init(int n_s, const sbi_rt_ck_table *const *tabs, const double *wg, sbi_rt_ck_aee *ae)
{
    memset(ae, 0, sizeof *ae);
    SBI_CHECK(n_s >= 1, SBI_ERR_INTERNAL, "sbi_rt_ck_aee_init: no species");
    for (int s = 1; s < n_s; ++s)
        SBI_CHECK(tabs[s]->n_g == tabs[0]->n_g && tabs[s]->w == tabs[0]->w, SBI_ERR_INTERNAL,
                  "sbi_rt_ck_aee_init: table %d has %d g-points and %d bins, table 0 %d and %d", s, tabs[s]->n_g,
                  tabs[s]->w, tabs[0]->n_g, tabs[0]->w);
    ae->n_g = tabs[0]->n_g;
    for (int q = 0; q < ae->n_g; ++q) ae->wg[q] = (float)wg[q];
    SBI_CALLOC(ae->tabs, n_s);
    SBI_CALLOC(ae->mean, n_s);
    SBI_CALLOC(ae->dev, n_s);
    ae->n_s = n_s;
    for (int s = 0; s < n_s; ++s) {
        const sbi_rt_ck_table *tab = tabs[s];
        const size_t rows = (size_t)tab->n_p * (size_t)tab->n_t * (size_t)tab->w;
        const int n_g = tab->n_g;
        ae->tabs[s] = tab;
        SBI_MALLOC(ae->mean[s], rows);
        SBI_MALLOC(ae->dev[s], rows);
        for (size_t m = 0; m < rows; ++m) {
            const float *k = tab->k + m * (size_t)n_g;
            double mean = 0.0, dev = 0.0;
            for (int q = 0; q < n_g; ++q) mean += wg[q] * k[q];
            for (int q = 0; q < n_g; ++q) dev += wg[q] * fabs(k[q] - mean);
            ae->mean[s][m] = (float)mean;
            ae->dev[s][m] = (float)dev;
        }
    }
    return SBI_OK;
}

/* Bilinear weights of (p_bar, t) in a table's grid, times c, and the
 * offsets of the four (P, T) rows, in bins (times G for k). */
typedef struct aee_corner {
    size_t row[4];
    float c[4];
} aee_corner;

/* Floats of work that hold the corners of n layers x S species. */
static size_t aee_corner_floats(int n_s, int n)
{
    const size_t per = (sizeof(aee_corner) + sizeof(float) - 1) / sizeof(float);
    return per * (size_t)(n_s > 0 ? n_s : 1) * (size_t)(n > 0 ? n : 1);
}

size_t sbi_rt_ck_aee_work(int n_s, int n, int blk)
{
    /* Corners; then the g-means and mean deviations of a block (2 S blk),
     * and per bin the largest deviation, the gray sum and the major. */
    return aee_corner_floats(n_s, n) + (2 * (size_t)(n_s > 0 ? n_s : 1) + 3) * (size_t)blk;
}

static void aee_bracket(const sbi_rt_ck_table *tab, double p_bar, double t, double c, aee_corner *k)
{
    int ip, it;
    double fp, ft;
    sbi_rt_bracket(tab->n_p, tab->p, p_bar, &ip, &fp);
    sbi_rt_bracket(tab->n_t, tab->t, t, &it, &ft);
    {
        const int ip1 = tab->n_p > 1 ? ip + 1 : ip, it1 = tab->n_t > 1 ? it + 1 : it;
        const size_t w = (size_t)tab->w, nt = (size_t)tab->n_t;
        k->row[0] = ((size_t)ip * nt + (size_t)it) * w;
        k->row[1] = ((size_t)ip * nt + (size_t)it1) * w;
        k->row[2] = ((size_t)ip1 * nt + (size_t)it) * w;
        k->row[3] = ((size_t)ip1 * nt + (size_t)it1) * w;
    }
    /* As sbi_rt_ck_interp, so that a single species is interpolated alike. */
    k->c[0] = (float)(c * (1.0 - fp) * (1.0 - ft));
    k->c[1] = (float)(c * (1.0 - fp) * ft);
    k->c[2] = (float)(c * fp * (1.0 - ft));
    k->c[3] = (float)(c * fp * ft);
}

/* The corners (N, S) of every layer, at the front of work; returns the
 * rest of work. */
static float *aee_corners(const sbi_rt_ck_aee *ae, const double *c, int n, const double *p_bar, const double *t,
                          float *work, aee_corner **cn)
{
    aee_corner *k = (aee_corner *)(void *)work;
    for (int i = 0; i < n; ++i)
        for (int s = 0; s < ae->n_s; ++s) aee_bracket(ae->tabs[s], p_bar[i], t[i], c[s], k + (size_t)i * ae->n_s + s);
    *cn = k;
    return work + aee_corner_floats(ae->n_s, n);
}

/* out (nb) = the bilinear interpolation of the rows of v (bins). */
RT_INLINE void aee_bilinear(const aee_corner *k, const float *v, int nb, float *restrict out)
{
    const float c0 = k->c[0], c1 = k->c[1], c2 = k->c[2], c3 = k->c[3];
    const float *restrict v0 = v + k->row[0], *restrict v1 = v + k->row[1];
    const float *restrict v2 = v + k->row[2], *restrict v3 = v + k->row[3];
    for (int l = 0; l < nb; ++l) out[l] = c0 * v0[l] + c1 * v1[l] + c2 * v2[l] + c3 * v3[l];
}

/* out (l1 - l0, G) = scale (kappa_g of the mixture) in one layer over the
 * bins [l0, l1), cn the layer's corners (S): the species' g-means and mean
 * deviations interpolated into work ((2 S + 3) (l1 - l0)), the major absorber
 * picked per bin, its G values interpolated and the others' g-means added
 * to gray (l1 - l0; NULL: none). */
RT_INLINE void aee_layer(const sbi_rt_ck_aee *ae, const aee_corner *cn, int l0, int l1, const float *gray,
                         float scale, float *work, float *out)
{
    const int n_s = ae->n_s, n_g = ae->n_g, nb = l1 - l0;
    float *mean = work, *dev = work + (size_t)n_s * (size_t)nb;
    for (int s = 0; s < n_s; ++s) {
        aee_bilinear(cn + s, ae->mean[s] + l0, nb, mean + (size_t)s * (size_t)nb);
        aee_bilinear(cn + s, ae->dev[s] + l0, nb, dev + (size_t)s * (size_t)nb);
    }
    /* The major absorber of each bin and the gray sum of the others, as
     * selects over the bins (vectorised); then the major's G values. */
    {
        float *restrict top = dev + (size_t)n_s * (size_t)nb, *restrict grey = top + nb;
        int *restrict major = (int *)(void *)(grey + nb);
        for (int l = 0; l < nb; ++l) {
            top[l] = dev[l];
            major[l] = 0;
        }
        for (int s = 1; s < n_s; ++s) {
            const float *restrict ds = dev + (size_t)s * (size_t)nb;
            for (int l = 0; l < nb; ++l) {
                const int up = ds[l] > top[l];
                top[l] = up ? ds[l] : top[l];
                major[l] = up ? s : major[l];
            }
        }
        for (int l = 0; l < nb; ++l) grey[l] = gray ? gray[l] : 0.0f;
        for (int s = 0; s < n_s; ++s) {
            const float *restrict ms = mean + (size_t)s * (size_t)nb;
            for (int l = 0; l < nb; ++l) grey[l] += major[l] != s ? ms[l] : 0.0f;
        }
        for (int l = 0; l < nb; ++l) {
            const aee_corner *k = cn + major[l];
            const float *kt = ae->tabs[major[l]]->k + (size_t)(l0 + l) * (size_t)n_g;
            const float *restrict k00 = kt + k->row[0] * (size_t)n_g, *restrict k01 = kt + k->row[1] * (size_t)n_g;
            const float *restrict k10 = kt + k->row[2] * (size_t)n_g, *restrict k11 = kt + k->row[3] * (size_t)n_g;
            const float c00 = k->c[0], c01 = k->c[1], c10 = k->c[2], c11 = k->c[3], gl = grey[l];
            float *restrict o = out + (size_t)l * (size_t)n_g;
            for (int q = 0; q < n_g; ++q) {
                const float v = c00 * k00[q] + c01 * k01[q] + c10 * k10[q] + c11 * k11[q];
                const float keep = (float)(v >= 1e-30f); /* as sbi_rt_ck_interp */
                o[q] = (keep * v + gl) * scale;
            }
        }
    }
}

RT_HOT void sbi_rt_ck_kappa_aee(const sbi_rt_ck_aee *ae, const double *c, int n, int w, const double *p_bar,
                                const double *t, const float *gray, const double *rho, int blk, float *work,
                                float *out)
{
    const int n_g = ae->n_g;
    aee_corner *cn;
    float *lw = aee_corners(ae, c, n, p_bar, t, work, &cn);
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w;
        for (int i = 0; i < n; ++i)
            aee_layer(ae, cn + (size_t)i * ae->n_s, l0, l1, gray ? gray + (size_t)i * (size_t)w + (size_t)l0 : NULL,
                      rho ? (float)rho[i] : 1.0f, lw, out + ((size_t)i * (size_t)w + (size_t)l0) * (size_t)n_g);
    }
}

size_t sbi_rt_emission_ck_aee_work(int n_s, int n, int n_g, int n_mu, int blk)
{
    const size_t bg = (size_t)blk * (size_t)n_g;
    return sbi_rt_ck_aee_work(n_s, n, blk) + (3 + 2 * (size_t)n_mu) * bg + 5 * (size_t)blk;
}

RT_HOT void sbi_rt_emission_flux_ck_aee(const sbi_rt_ck_aee *ae, const double *c, const float *gray, int n, int w,
                                        const double *p_bar, const double *t, double g, int deck_from,
                                        float deck_kappa, const double *nu, int n_mu, const double *mu,
                                        const double *w_mu, int blk, float *work, double *flux_nu)
{
    const int n_g = ae->n_g;
    const size_t bg = (size_t)blk * (size_t)n_g;
    aee_corner *cn;
    float *lw = aee_corners(ae, c, n, p_bar, t, work, &cn);
    float *kprev = lw + (2 * (size_t)ae->n_s + 3) * (size_t)blk, *kcur = kprev + bg, *tau = kcur + bg;
    float *trp = tau + bg, *inq = trp + (size_t)n_mu * bg, *c1 = inq + (size_t)n_mu * bg;
    float *hk = c1 + blk, *b0 = hk + blk, *b1 = b0 + blk;
    int *live = (int *)(void *)(b1 + blk); /* (blk) g-points [0, live) not yet dark */
    float inv_mu_min = INFINITY;
    for (int a = 0; a < n_mu; ++a) inv_mu_min = fminf(inv_mu_min, (float)(1.0 / mu[a]));

    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w, nb = l1 - l0;
        const size_t nbg = (size_t)nb * (size_t)n_g;
        int n_dark = 0;
        for (int l = 0; l < nb; ++l) {
            c1[l] = (float)(2.0 * SBI_RT_H * nu[l0 + l] * nu[l0 + l] * nu[l0 + l] / (SBI_RT_C * SBI_RT_C));
            hk[l] = (float)(SBI_RT_H * nu[l0 + l] / SBI_RT_KB);
            live[l] = n_g;
        }
        for (size_t m = 0; m < nbg; ++m) tau[m] = 0.0f;
        for (size_t m = 0; m < (size_t)n_mu * bg; ++m) {
            trp[m] = 1.0f;
            inq[m] = 0.0f;
        }
        for (int i = 0; i < n; ++i) {
            const float inv_t = (float)(1.0 / t[i]);
            float *tmp;
            if (n_dark == nb) {
                /* Every bin of the block is dark: nothing below adds to the
                 * intensities, and the bottom's B multiplies a floor
                 * transmission; only that B is still wanted. */
                const float inv_tn = (float)(1.0 / t[n - 1]);
                for (int l = 0; l < nb; ++l) b0[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_tn);
                break;
            }
            if (deck_from >= 0 && i >= deck_from)
                for (size_t m = 0; m < nbg; ++m) kcur[m] = deck_kappa;
            else
                aee_layer(ae, cn + (size_t)i * ae->n_s, l0, l1, gray + (size_t)i * (size_t)w + (size_t)l0, 1.0f, lw,
                          kcur);
            for (int l = 0; l < nb; ++l) b1[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_t);
            if (i > 0) {
                const float dp = (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g));
                for (size_t m = 0; m < nbg; ++m) tau[m] += (kprev[m] + kcur[m]) * dp;
                /* Per g-point intensities: the layer source does not depend
                 * on g, so the sum over g waits until the bottom. */
                for (int a = 0; a < n_mu; ++a) {
                    const float k2 = (float)(1.0 / mu[a]) * SBI__RT_LOG2E; /* exp(-tau / mu) = 2^-(tau k2) */
                    float *restrict tr = trp + (size_t)a * bg, *restrict in = inq + (size_t)a * bg;
                    for (int l = 0; l < nb; ++l) {
                        const float src = 0.5f * (b0[l] + b1[l]);
                        const float *restrict tl = tau + (size_t)l * (size_t)n_g;
                        float *restrict trl = tr + (size_t)l * (size_t)n_g;
                        float *restrict inl = in + (size_t)l * (size_t)n_g;
                        const int nq = live[l];
                        if (n_g % 8 == 0) {
                            /* Whole groups of eight g-points: a dark one
                             * among them changes nothing (its transmission
                             * and exp are the same floor), and the groups
                             * are full vectors. */
                            for (int q0 = 0; q0 < nq; q0 += 8)
                                for (int j = 0; j < 8; ++j) {
                                    const float e = sbi__rt_exp2_neg(tl[q0 + j] * k2);
                                    inl[q0 + j] += src * (trl[q0 + j] - e);
                                    trl[q0 + j] = e;
                                }
                        } else {
                            for (int q = 0; q < nq; ++q) {
                                const float e = sbi__rt_exp2_neg(tl[q] * k2);
                                inl[q] += src * (trl[q] - e);
                                trl[q] = e;
                            }
                        }
                    }
                }
                /* A g-point is dark once every exp(-tau / mu) is at the fast
                 * exp's floor exp(-87): the layers below change nothing
                 * there (transmission and floor are equal), so they skip
                 * it, with the same result.  tau grows with g, so the dark
                 * g-points are the top ones: live[l] counts the others. */
                for (int l = 0; l < nb; ++l) {
                    const float *tl = tau + (size_t)l * (size_t)n_g;
                    int nq = live[l];
                    if (nq == 0) continue;
                    while (nq > 0 && tl[nq - 1] * inv_mu_min > 87.0f) --nq;
                    live[l] = nq;
                    n_dark += nq == 0;
                }
            }
            tmp = b0;
            b0 = b1;
            b1 = tmp;
            tmp = kprev;
            kprev = kcur;
            kcur = tmp;
        }
        for (int l = 0; l < nb; ++l) flux_nu[l0 + l] = 0.0;
        for (int a = 0; a < n_mu; ++a) {
            const double cm = 2.0 * SBI_RT_PI * mu[a] * w_mu[a];
            const float *tr = trp + (size_t)a * bg, *in = inq + (size_t)a * bg;
            for (int l = 0; l < nb; ++l) {
                float d[SBI_RT_CK_MAX_G];
                for (int q = 0; q < n_g; ++q) {
                    const size_t m = (size_t)l * (size_t)n_g + (size_t)q;
                    d[q] = ae->wg[q] * (in[m] + b0[l] * tr[m]);
                }
                flux_nu[l0 + l] += cm * (double)lane_sum(d, n_g);
            }
        }
    }
}

/* ---- emission with the product of the species' g-mean transmissions ------- */

/* Bins per block of the product's formal solution: the S G bins of
 * optical depth stay in cache across the layers. */
#define RT_PRODUCT_BLOCK 32

/* A block's fluxes (nb) from the intensities in (n_mu, stride) that the
 * layers added and what the bottom adds, B (b_bottom) times the
 * transmission down to it (tr, (n_mu, stride)): 2 pi sum_a mu_a w_a
 * (I_a + B T_a). */
static void block_flux(int nb, int stride, int n_mu, const double *mu, const double *w_mu, const float *in,
                       const float *tr, const float *b_bottom, double *flux)
{
    for (int l = 0; l < nb; ++l) flux[l] = 0.0;
    for (int a = 0; a < n_mu; ++a) {
        const double cm = 2.0 * SBI_RT_PI * mu[a] * w_mu[a];
        const float *tp = tr + (size_t)a * (size_t)stride, *ia = in + (size_t)a * (size_t)stride;
        for (int l = 0; l < nb; ++l) flux[l] += cm * ((double)ia[l] + (double)b_bottom[l] * tp[l]);
    }
}

size_t sbi_rt_emission_ck_product_ref_work(int n, int w, int n_g, int n_s, int n_mu)
{
    const size_t b = RT_PRODUCT_BLOCK, sgb = (size_t)(n_s > 0 ? n_s : 1) * (size_t)n_g * b;
    (void)w;
    return aee_corner_floats(n_s, n) + (size_t)n_g * b + 3 * sgb + 2 * (size_t)n_mu * b + 6 * b +
           (size_t)(n_s > 0 ? n_s : 1);
}

RT_HOT void sbi_rt_emission_flux_ck_product_ref(int n, int w, int n_g, const float *wg, int n_s,
                                                const sbi_rt_ck_table *const *tabs, const double *c,
                                                const float *gray, const double *p_bar, const double *t, double g,
                                                int deck_from, float deck_kappa, const double *nu, int n_mu,
                                                const double *mu, const double *w_mu, float *work, double *flux_nu)
{
    const int blk = RT_PRODUCT_BLOCK;
    const size_t gb = (size_t)n_g * (size_t)blk, sgb = (size_t)n_s * gb;
    aee_corner *cn = (aee_corner *)(void *)work;
    float *kq = work + aee_corner_floats(n_s, n), *kprev = kq + gb, *kcur = kprev + sgb, *tau = kcur + sgb;
    float *tprev = tau + sgb, *inten = tprev + (size_t)n_mu * (size_t)blk, *acc = inten + (size_t)n_mu * (size_t)blk;
    float *tr = acc + blk, *c1 = tr + blk, *hk = c1 + blk, *b0 = hk + blk, *b1 = b0 + blk;
    int *live = (int *)(void *)(b1 + blk); /* (S) g-rows [0, live) of the block not yet dark */
    float inv_mu_min = INFINITY;

    for (int a = 0; a < n_mu; ++a) inv_mu_min = fminf(inv_mu_min, (float)(1.0 / mu[a]));
    for (int i = 0; i < n; ++i)
        for (int s = 0; s < n_s; ++s) aee_bracket(tabs[s], p_bar[i], t[i], c[s], cn + (size_t)i * n_s + s);
    /* Blocks of bins, the layers inside, so that the table rows of a block
     * are read once per spectrum and the optical depths stay in cache.  The
     * optical depths are g-major in a block (S, G, blk), so that the g-sum
     * of each species is a loop over bins with no reduction. */
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int nb = l0 + blk < w ? blk : w - l0;
        for (int l = 0; l < nb; ++l) {
            const double v = nu[l0 + l];
            c1[l] = (float)(2.0 * SBI_RT_H * v * v * v / (SBI_RT_C * SBI_RT_C));
            hk[l] = (float)(SBI_RT_H * v / SBI_RT_KB);
        }
        for (size_t m = 0; m < sgb; ++m) tau[m] = 0.0f;
        /* A last, partial block leaves columns [nb, blk) of the g-rows
         * unwritten; they go through the optical-depth sums, so they start
         * at zero rather than at whatever the work held. */
        for (size_t m = 0; nb < blk && m < sgb; ++m) kprev[m] = kcur[m] = 0.0f;
        for (size_t m = 0; m < (size_t)n_mu * (size_t)blk; ++m) {
            tprev[m] = 1.0f;
            inten[m] = 0.0f;
        }
        for (int s = 0; s < n_s; ++s) live[s] = n_g;
        for (int i = 0; i < n; ++i) {
            const float inv_t = (float)(1.0 / t[i]);
            float *tmp;
            /* kappa of every species in layer i (species 0 with the gray
             * part and the deck), transposed to (G, blk). */
            for (int s = 0; s < n_s; ++s) {
                const aee_corner *k = cn + (size_t)i * n_s + s;
                const float *kt = tabs[s]->k + (size_t)l0 * (size_t)n_g;
                const float *restrict k00 = kt + k->row[0] * (size_t)n_g, *restrict k01 = kt + k->row[1] * (size_t)n_g;
                const float *restrict k10 = kt + k->row[2] * (size_t)n_g, *restrict k11 = kt + k->row[3] * (size_t)n_g;
                const float c00 = k->c[0], c01 = k->c[1], c10 = k->c[2], c11 = k->c[3];
                float *restrict ks = kcur + (size_t)s * gb;
                for (size_t m = 0; m < (size_t)nb * (size_t)n_g; ++m) {
                    const float v = c00 * k00[m] + c01 * k01[m] + c10 * k10[m] + c11 * k11[m];
                    kq[m] = v < 1e-30f ? 0.0f : v; /* as sbi_rt_ck_interp */
                }
                if (s == 0) {
                    const float *gr = gray + (size_t)i * (size_t)w + (size_t)l0;
                    for (int l = 0; l < nb; ++l)
                        for (int q = 0; q < n_g; ++q) kq[(size_t)l * n_g + q] += gr[l];
                    if (deck_from >= 0 && i >= deck_from)
                        for (size_t m = 0; m < (size_t)nb * (size_t)n_g; ++m) kq[m] = deck_kappa;
                }
                for (int q = 0; q < n_g; ++q)
                    for (int l = 0; l < nb; ++l) ks[(size_t)q * blk + l] = kq[(size_t)l * n_g + q];
            }
            for (int l = 0; l < nb; ++l) b1[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_t);
            if (i > 0) {
                const float dp = (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g));
                for (int s = 0; s < n_s; ++s)
                    for (size_t m = 0; m < (size_t)live[s] * (size_t)blk; ++m) {
                        const size_t o = (size_t)s * gb + m;
                        tau[o] += (kprev[o] + kcur[o]) * dp;
                    }
                for (int a = 0; a < n_mu; ++a) {
                    const float neg_inv_mu = (float)(-1.0 / mu[a]);
                    float *tp = tprev + (size_t)a * blk, *in = inten + (size_t)a * blk;
                    for (int l = 0; l < nb; ++l) tr[l] = 1.0f;
                    for (int s = 0; s < n_s; ++s) {
                        for (int l = 0; l < nb; ++l) acc[l] = 0.0f;
                        for (int q = 0; q < live[s]; ++q) {
                            const float wq = wg[q];
                            const float *restrict tq = tau + (size_t)s * gb + (size_t)q * blk;
                            for (int l = 0; l < nb; ++l) acc[l] += wq * sbi__rt_expf(tq[l] * neg_inv_mu);
                        }
                        for (int l = 0; l < nb; ++l) tr[l] *= acc[l];
                    }
                    for (int l = 0; l < nb; ++l) {
                        in[l] += 0.5f * (b0[l] + b1[l]) * (tp[l] - tr[l]);
                        tp[l] = tr[l];
                    }
                }
                /* A g-row is dark once exp(-tau / mu) is at the fast exp's
                 * floor, exp(-87), in every bin of the block and for every
                 * angle: it adds below 2e-38 to its species' transmission
                 * from then on, and is dropped. */
                for (int s = 0; s < n_s; ++s)
                    while (live[s] > 0) {
                        const float *tq = tau + (size_t)s * gb + (size_t)(live[s] - 1) * blk;
                        float lo = tq[0];
                        for (int l = 1; l < nb; ++l) lo = tq[l] < lo ? tq[l] : lo;
                        if (!(lo * inv_mu_min > 87.0f)) break;
                        --live[s];
                    }
            }
            tmp = b0;
            b0 = b1;
            b1 = tmp;
            tmp = kprev;
            kprev = kcur;
            kcur = tmp;
        }
        block_flux(nb, blk, n_mu, mu, w_mu, inten, tprev, b0, flux_nu + l0);
    }
}

/* ---- transmission, chunked over wavelength ---------------------------------- */

/* Bins per sub-block of a chunk whose alpha is made layer by layer. */
#define RT_SUB_BLOCK 32

/* Floats of work for the product's table-row factors of S species over N
 * layers (ck_rows_build): per species up to N row offsets (size_t), the
 * rows used down to each layer (N), the (N, 4) map of layer corners to rows
 * and the (N, N) factor matrix; then the gray optical depths of a chunk
 * (N, cb) and its absorbed fractions of one ray (cb). */
static size_t ck_rows_species_floats(int n)
{
    const size_t nn = (size_t)(n > 0 ? n : 1);
    return nn * (sizeof(size_t) / sizeof(float)) + 5 * nn + nn * nn;
}

static size_t ck_rows_floats(int n_s, int n, int cb)
{
    const size_t ns = (size_t)(n_s > 0 ? n_s : 1), nn = (size_t)(n > 0 ? n : 1);
    return 1 + ns * ck_rows_species_floats(n) + (nn + 1) * (size_t)cb;
}

size_t sbi_rt_transit_ck_work(int n_s, int n, int w, int n_g, int cb)
{
    const size_t chunk = (size_t)(n > 0 ? n : 1) * (size_t)cb * (size_t)n_g;
    return sbi_rt_ck_aee_work(n_s, n, cb) + ck_rows_floats(n_s, n, cb) + 2 * chunk +
           (size_t)(n > 0 ? n : 1) * (size_t)w;
}

/* The absorbed fraction of a chunk, alpha (N, nb, G) -> A (N, nb), put into
 * a_out (N, W) at bin l0, or with `combine` folded into it as another
 * species' (1 - (1 - a)(1 - A), written a + A (1 - a): no cancellation where
 * both are small). */
static void transit_chunk_tau(int n, int nb, int n_g, const float *wg, const float *chord, float *alpha, float *tau,
                              float *a_out, int w, int l0, int combine)
{
    /* The chunk is (N, nb G) contiguous: one chord product for it. */
    sbi_rt_chord_tau(n, nb * n_g, chord, alpha, tau);
    sbi_rt_ck_absorbed_g(n, nb, n_g, wg, tau);
    for (int i = 0; i < n; ++i) {
        const float *ai = tau + (size_t)i * (size_t)nb;
        float *dst = a_out + (size_t)i * (size_t)w + (size_t)l0;
        if (combine)
            for (int l = 0; l < nb; ++l) dst[l] += ai[l] * (1.0f - dst[l]);
        else
            for (int l = 0; l < nb; ++l) dst[l] = ai[l];
    }
}

RT_HOT void sbi_rt_transit_ck_aee(const sbi_rt_ck_aee *ae, const double *c, int n, int w, const double *p_bar,
                                  const double *t, const float *gray, const double *rho, int deck_from,
                                  float deck_alpha, const float *chord, const double *r, int cb, float *work,
                                  double *rt2)
{
    const int n_g = ae->n_g;
    const size_t chunk = (size_t)n * (size_t)cb * (size_t)n_g;
    aee_corner *cn;
    float *lw = aee_corners(ae, c, n, p_bar, t, work, &cn);
    float *alpha = lw + (2 * (size_t)ae->n_s + 3) * (size_t)cb, *tau = alpha + chunk, *a = tau + chunk;
    for (int l0 = 0; l0 < w; l0 += cb) {
        const int nb = l0 + cb < w ? cb : w - l0;
        /* Sub-blocks of the chunk with the layers inside, so that their
         * table rows stay in cache across the layers. */
        for (int b0 = 0; b0 < nb; b0 += RT_SUB_BLOCK) {
            const int b1 = b0 + RT_SUB_BLOCK < nb ? b0 + RT_SUB_BLOCK : nb;
            for (int i = 0; i < n; ++i) {
                float *dst = alpha + ((size_t)i * (size_t)nb + (size_t)b0) * (size_t)n_g;
                if (deck_from >= 0 && i >= deck_from)
                    for (size_t m = 0; m < (size_t)(b1 - b0) * (size_t)n_g; ++m) dst[m] = deck_alpha;
                else
                    aee_layer(ae, cn + (size_t)i * ae->n_s, l0 + b0, l0 + b1,
                              gray + (size_t)i * (size_t)w + (size_t)(l0 + b0), (float)rho[i], lw, dst);
            }
        }
        transit_chunk_tau(n, nb, n_g, ae->wg, chord, alpha, tau, a, w, l0, 0);
    }
    sbi_rt_transit_from_absorbed(n, w, a, r, rt2);
}

RT_HOT void sbi_rt_transit_ck_product_ref(int n, int w, int n_g, const float *wg, int n_s,
                                          const sbi_rt_ck_table *const *tabs, const double *c, const double *p_bar,
                                          const double *t, const float *gray, const double *rho, int deck_from,
                                          float deck_alpha, const float *chord, const double *r, int cb,
                                          float *work, double *rt2)
{
    const size_t chunk = (size_t)n * (size_t)cb * (size_t)n_g;
    aee_corner *cn = (aee_corner *)(void *)work;
    float *alpha = work + sbi_rt_ck_aee_work(n_s, n, cb), *tau = alpha + chunk, *a = tau + chunk;
    for (int i = 0; i < n; ++i)
        for (int s = 0; s < n_s; ++s) aee_bracket(tabs[s], p_bar[i], t[i], c[s], cn + (size_t)i * n_s + s);
    for (int l0 = 0; l0 < w; l0 += cb) {
        const int nb = l0 + cb < w ? cb : w - l0;
        const size_t cols = (size_t)nb * (size_t)n_g;
        for (int s = 0; s < n_s; ++s) {
            for (int b0 = 0; b0 < nb; b0 += RT_SUB_BLOCK)
            for (int i = 0; i < n; ++i) {
                const int b1 = b0 + RT_SUB_BLOCK < nb ? b0 + RT_SUB_BLOCK : nb;
                const size_t sc = (size_t)(b1 - b0) * (size_t)n_g;
                const aee_corner *k = cn + (size_t)i * n_s + s;
                const float *kt = tabs[s]->k + (size_t)(l0 + b0) * (size_t)n_g;
                const float *restrict k00 = kt + k->row[0] * (size_t)n_g, *restrict k01 = kt + k->row[1] * (size_t)n_g;
                const float *restrict k10 = kt + k->row[2] * (size_t)n_g, *restrict k11 = kt + k->row[3] * (size_t)n_g;
                const float c00 = k->c[0], c01 = k->c[1], c10 = k->c[2], c11 = k->c[3], rh = (float)rho[i];
                float *restrict dst = alpha + (size_t)i * cols + (size_t)b0 * (size_t)n_g;
                if (s == 0 && deck_from >= 0 && i >= deck_from) {
                    for (size_t m = 0; m < sc; ++m) dst[m] = deck_alpha;
                    continue;
                }
                for (size_t m = 0; m < sc; ++m) {
                    const float v = c00 * k00[m] + c01 * k01[m] + c10 * k10[m] + c11 * k11[m];
                    dst[m] = v < 1e-30f ? 0.0f : v; /* as sbi_rt_ck_interp */
                }
                if (s == 0) {
                    const float *gr = gray + (size_t)i * (size_t)w + (size_t)(l0 + b0);
                    for (int l = 0; l < b1 - b0; ++l)
                        for (int q = 0; q < n_g; ++q) dst[(size_t)l * n_g + q] += gr[l];
                }
                for (size_t m = 0; m < sc; ++m) dst[m] *= rh;
            }
            transit_chunk_tau(n, nb, n_g, wg, chord, alpha, tau, a, w, l0, s > 0);
        }
    }
    sbi_rt_transit_from_absorbed(n, w, a, r, rt2);
}

/* ---- transmission with the product, on the tables' rows ----------------------- */

/* The chord optical depth of species s is linear in the table rows that its
 * layers interpolate: with alpha_j = rho_j sum_c coef_jc k[row_jc] (four
 * (P, T) corners per layer),
 *   tau_i = sum_{j <= i} m_ij alpha_j = sum_R F_iR k[R],
 *   F_iR = sum_{j <= i} sum_{c: row_jc = R} m_ij rho_j coef_jc,
 * so a chunk's (N, G nb) optical depths are one sgemm of F (N, R) by the R
 * distinct rows (R, G nb), R about 20 for 100 layers on petitRADTRANS's
 * 10 x 13 grid, in place of the triangular product over N layers of the
 * interpolated alpha (N / 2 multiply-adds per value on average) and of the
 * interpolation itself.  With the rows ordered by first use, the rays down
 * to layer i need only the rows of layers 0..i (12 of 22 on average on the
 * benchmark).  The rows are copied with g outermost (G, nb), so that each
 * g-point's bins are contiguous: its absorbed fractions are taken, or
 * skipped where opaque, over whole vectors, and the sum over g is a sum of
 * rows.  The same sums in another order: equal to float rounding, except
 * that interpolated values below 1e-30 cm^2 g^-1 (which sbi_rt_ck_interp
 * zeroes, tau < 1e-20) are kept. */
typedef struct ck_rows {
    int n_rows;  /* R, or -1: more than N distinct rows (no factor made) */
    size_t *row; /* (R) offsets of the rows in the table, in bins, in the order of first use */
    int *upto;   /* (N) rows used by the layers 0..i: the rays 0..i need F's first upto[i] columns */
    int *idx;    /* (N, 4) row of each layer's corner */
    float *f;    /* (N, R) the factor F above, rows from deck_from on skipped */
} ck_rows;

/* cr's arrays laid out in base, ck_rows_species_floats(n) floats with room
 * for size_t at its start. */
static void ck_rows_at(float *base, int n, ck_rows *cr)
{
    const size_t offs = (size_t)n * (sizeof(size_t) / sizeof(float));
    cr->row = (size_t *)(void *)base;
    cr->upto = (int *)(void *)(base + offs);
    cr->idx = cr->upto + n;
    cr->f = base + offs + 5 * (size_t)n;
}

/* The distinct rows of one species' corners cn (N, stride n_s), in the
 * order the layers first use them, and its factor F (chord NULL: none);
 * layers from deck_from on (-1: none) are left out of F. */
static void ck_rows_build(int n, const aee_corner *cn, int n_s, const float *chord, const double *rho,
                          int deck_from, ck_rows *cr)
{
    const int nl = deck_from >= 0 && deck_from < n ? deck_from : n;
    int nr = 0;
    cr->n_rows = -1;
    for (int j = 0; j < n; ++j) {
        for (int k = 0; k < 4; ++k) {
            const size_t v = cn[(size_t)j * n_s].row[k];
            int m = nr - 1;
            /* Back to front: a layer's rows are mostly its neighbour's. */
            while (m >= 0 && cr->row[m] != v) --m;
            if (m < 0) {
                if (nr == n) return;
                m = nr;
                cr->row[nr++] = v;
            }
            cr->idx[4 * j + k] = m;
        }
        cr->upto[j] = nr;
    }
    cr->n_rows = nr;
    if (!chord) return;
    for (size_t m = 0; m < (size_t)n * (size_t)nr; ++m) cr->f[m] = 0.0f;
    for (int j = 0; j < nl; ++j)
        for (int k = 0; k < 4; ++k) {
            const double v = rho[j] * (double)cn[(size_t)j * n_s].c[k];
            const int col = cr->idx[4 * j + k];
            if (v == 0.0) continue;
            for (int i = j; i < n; ++i)
                cr->f[(size_t)i * (size_t)nr + (size_t)col] += (float)(chord[(size_t)i * n + j] * v);
        }
}

/* The first ray from which every ray has tau > 18 (its absorbed fraction
 * rounds to 1) in all cols values of its row of tau (n, cols). */
static int ck_opaque_from(int n, int cols, const float *tau)
{
    int i = n;
    while (i > 0) {
        int n_opaque, n_thin;
        lane_counts(tau + (size_t)(i - 1) * (size_t)cols, cols, 18.0f, 1e-3f, &n_opaque, &n_thin);
        if (n_opaque < cols) break;
        --i;
    }
    return i;
}

/* dst (G, nb) = src (nb, G): a chunk of a table row with g outermost, so
 * that each g-point's bins are contiguous. */
#if defined(__GNUC__) && !defined(__clang__)
typedef float rt_v8 __attribute__((vector_size(32)));
typedef float rt_v8u __attribute__((vector_size(32), aligned(4), may_alias)); /* unaligned loads, stores */
typedef int rt_v8i __attribute__((vector_size(32)));

/* The 8 x 8 tile at src (rows of stride ss) transposed to dst (stride sd):
 * three rounds of two-vector shuffles (24 in all), GCC's vector extension,
 * so that the default clone gets SSE pairs. */
RT_INLINE void transpose8(const float *src, size_t ss, float *dst, size_t sd)
{
    const rt_v8i lo1 = {0, 8, 1, 9, 4, 12, 5, 13}, hi1 = {2, 10, 3, 11, 6, 14, 7, 15};
    const rt_v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const rt_v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    rt_v8 r[8], t[8], u[8];
    for (int j = 0; j < 8; ++j) r[j] = *(const rt_v8u *)(const void *)(src + (size_t)j * ss);
    for (int j = 0; j < 8; j += 2) {
        t[j] = __builtin_shuffle(r[j], r[j + 1], lo1);
        t[j + 1] = __builtin_shuffle(r[j], r[j + 1], hi1);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = __builtin_shuffle(t[j], t[j + 2], lo2);
        u[j + 1] = __builtin_shuffle(t[j], t[j + 2], hi2);
        u[j + 2] = __builtin_shuffle(t[j + 1], t[j + 3], lo2);
        u[j + 3] = __builtin_shuffle(t[j + 1], t[j + 3], hi2);
    }
    for (int j = 0; j < 4; ++j) {
        *(rt_v8u *)(void *)(dst + (size_t)j * sd) = __builtin_shuffle(u[j], u[j + 4], lo4);
        *(rt_v8u *)(void *)(dst + (size_t)(j + 4) * sd) = __builtin_shuffle(u[j], u[j + 4], hi4);
    }
}
#endif

RT_INLINE void transpose_gb(int nb, int n_g, const float *restrict src, float *restrict dst)
{
#if defined(__GNUC__) && !defined(__clang__)
    if (n_g % 8 == 0 && nb % 8 == 0) {
        for (int l0 = 0; l0 < nb; l0 += 8)
            for (int q0 = 0; q0 < n_g; q0 += 8)
                transpose8(src + (size_t)l0 * (size_t)n_g + (size_t)q0, (size_t)n_g,
                           dst + (size_t)q0 * (size_t)nb + (size_t)l0, (size_t)nb);
        return;
    }
#endif
    for (int l = 0; l < nb; ++l)
        for (int q = 0; q < n_g; ++q) dst[(size_t)q * (size_t)nb + (size_t)l] = src[(size_t)l * (size_t)n_g + (size_t)q];
}

/* 1 - exp(-x) for 0 <= x <= 0.35 by its Taylor series to x^7 (relative
 * remainder below x^7 / 8! = 1.6e-8), without the exponential's range
 * reduction or the cancellation of 1 - exp(-x). */
RT_INLINE float absorbed_thin(float x)
{
    return x * (1.0f - x * (0.5f - x * (0.166666667f - x * (0.0416666667f -
                x * (0.00833333333f - x * (0.00138888889f - x * 0.000198412698f))))));
}

/* The absorbed fractions acc (nb) = sum_g w_g (1 - exp(-tau_g)) of one
 * ray's optical depths ti (G, nb), g-point by g-point: a g-point whose
 * every tau exceeds 18 adds w_g (1 - exp(-18) rounds to 1), one whose every
 * tau is below 0.35 the series alone.  Returns 1 where every g-point is so
 * opaque (acc is then wsum, as sbi_rt_ck_absorbed_g). */
RT_INLINE int absorbed_gb(const float *ti, int nb, int n_g, const float *wg, float wsum, float *restrict acc)
{
    int n_opaque_g = 0;
    for (int l = 0; l < nb; ++l) acc[l] = 0.0f;
    for (int q = 0; q < n_g; ++q) {
        const float *restrict tq = ti + (size_t)q * (size_t)nb, wq = wg[q];
        int n_opaque, n_thin;
        lane_counts(tq, nb, 18.0f, 0.35f, &n_opaque, &n_thin);
        if (n_opaque == nb) {
            for (int l = 0; l < nb; ++l) acc[l] += wq;
            ++n_opaque_g;
        } else if (n_thin == nb)
            for (int l = 0; l < nb; ++l) acc[l] += wq * absorbed_thin(tq[l]);
        else
            for (int l = 0; l < nb; ++l) acc[l] += wq * sbi__rt_absorbed(tq[l]);
    }
    if (n_opaque_g < n_g) return 0;
    for (int l = 0; l < nb; ++l) acc[l] = wsum;
    return 1;
}

/* Rays per sgemm of the product's optical depths. */
#define RT_RAY_BLOCK 16

RT_HOT void sbi_rt_transit_ck_product(int n, int w, int n_g, const float *wg, int n_s,
                                      const sbi_rt_ck_table *const *tabs, const double *c, const double *p_bar,
                                      const double *t, const float *gray, const double *rho, int deck_from,
                                      float deck_alpha, const float *chord, const double *r, int cb, float *work,
                                      double *rt2)
{
    const size_t chunk = (size_t)n * (size_t)cb * (size_t)n_g;
    const size_t per_rows = ck_rows_species_floats(n);
    const float wsum = lane_sum(wg, n_g);
    const int nl_deck = deck_from >= 0 && deck_from < n ? deck_from : n;
    aee_corner *cn = (aee_corner *)(void *)work;
    float *rw = work + ((sbi_rt_ck_aee_work(n_s, n, cb) + 1) & ~(size_t)1); /* size_t-aligned: even */
    float *tg = rw + (size_t)n_s * per_rows, *acc = tg + (size_t)n * (size_t)cb, *kb = acc + cb, *tau = kb + chunk;
    float *a = tau + chunk;
    ck_rows cr[64];

    if (n_s > 64) n_s = 64;
    for (int i = 0; i < n; ++i)
        for (int s = 0; s < n_s; ++s) aee_bracket(tabs[s], p_bar[i], t[i], c[s], cn + (size_t)i * n_s + s);
    for (int s = 0; s < n_s; ++s) {
        ck_rows_at(rw + (size_t)s * per_rows, n, &cr[s]);
        ck_rows_build(n, cn + s, n_s, chord, rho, s == 0 ? deck_from : -1, &cr[s]);
    }
    for (int l0 = 0; l0 < w; l0 += cb) {
        const int nb = l0 + cb < w ? cb : w - l0;
        const size_t cols = (size_t)nb * (size_t)n_g;
        int n_live;
        /* The gray part and the deck (species 0's, the same at every g):
         * their chord optical depths bound species 0's from below, so the
         * rays opaque in them at every bin of the chunk absorb 1 whatever
         * the species add, and the rest of the chunk leaves them out. */
        for (int i = 0; i < n; ++i) {
            float *ti = tg + (size_t)i * (size_t)nb;
            const float *gr = gray ? gray + (size_t)i * (size_t)w + (size_t)l0 : NULL;
            const float rh = (float)rho[i];
            if (i >= nl_deck)
                for (int l = 0; l < nb; ++l) ti[l] = deck_alpha;
            else if (gr)
                for (int l = 0; l < nb; ++l) ti[l] = gr[l] * rh;
            else
                for (int l = 0; l < nb; ++l) ti[l] = 0.0f;
        }
        cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, nb, 1.0f, chord, n, tg,
                    nb);
        n_live = ck_opaque_from(n, nb, tg);
        for (int i = n_live; i < n; ++i)
            for (int l = 0; l < nb; ++l) a[(size_t)i * (size_t)w + (size_t)(l0 + l)] = wsum;
        for (int s = 0; s < n_s && n_live > 0; ++s) {
            const int nr = cr[s].n_rows, rows = nr >= 0 && nr <= n_live / 2 + 4;
            int n_a = 0;
            if (rows)
                for (int k = 0; k < nr; ++k)
                    transpose_gb(nb, n_g, tabs[s]->k + (cr[s].row[k] + (size_t)l0) * (size_t)n_g,
                                 kb + (size_t)k * cols);
            else {
                /* Many rows: interpolate alpha in the layers above n_live
                 * and take its triangular product (the reference's way). */
                for (int i = 0; i < n_live; ++i) {
                    const aee_corner *k = cn + (size_t)i * n_s + s;
                    const float *kt = tabs[s]->k + (size_t)l0 * (size_t)n_g;
                    const float *restrict k00 = kt + k->row[0] * (size_t)n_g, *restrict k01 = kt + k->row[1] * (size_t)n_g;
                    const float *restrict k10 = kt + k->row[2] * (size_t)n_g, *restrict k11 = kt + k->row[3] * (size_t)n_g;
                    const float c00 = k->c[0], c01 = k->c[1], c10 = k->c[2], c11 = k->c[3], rh = (float)rho[i];
                    float *restrict dst = tau + (size_t)i * cols;
                    if (s == 0 && i >= nl_deck) {
                        for (size_t m = 0; m < cols; ++m) dst[m] = deck_alpha;
                        continue;
                    }
                    for (size_t m = 0; m < cols; ++m) {
                        const float v = c00 * k00[m] + c01 * k01[m] + c10 * k10[m] + c11 * k11[m];
                        kb[m] = v < 1e-30f ? 0.0f : v;
                    }
                    transpose_gb(nb, n_g, kb, dst);
                    for (int q = 0; q < n_g; ++q) {
                        float *restrict dq = dst + (size_t)q * (size_t)nb;
                        const float *gr = s == 0 && gray ? gray + (size_t)i * (size_t)w + (size_t)l0 : NULL;
                        if (gr)
                            for (int l = 0; l < nb; ++l) dq[l] = (dq[l] + gr[l]) * rh;
                        else
                            for (int l = 0; l < nb; ++l) dq[l] *= rh;
                    }
                }
                cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n_live, (int)cols,
                            1.0f, chord, n, tau, (int)cols);
            }
            /* Blocks of rays: their optical depths (with the rows their
             * layers use: the top rays cross fewer (P, T) rows), then their
             * absorbed fractions while those are in cache. */
            for (int i0 = 0; i0 < n_live; i0 += RT_RAY_BLOCK) {
                const int i1 = i0 + RT_RAY_BLOCK < n_live ? i0 + RT_RAY_BLOCK : n_live;
                if (rows) {
                    /* Species 0 starts from the gray optical depths at every
                     * g, the others from zero (beta = 1: the sgemm adds). */
                    for (int i = i0; i < i1; ++i) {
                        const float *gi = tg + (size_t)i * (size_t)nb;
                        for (int q = 0; q < n_g; ++q) {
                            float *restrict tq = tau + (size_t)i * cols + (size_t)q * (size_t)nb;
                            if (s == 0)
                                memcpy(tq, gi, (size_t)nb * sizeof *tq);
                            else
                                memset(tq, 0, (size_t)nb * sizeof *tq);
                        }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, (int)cols, cr[s].upto[i1 - 1],
                                1.0f, cr[s].f + (size_t)i0 * (size_t)nr, nr, kb, (int)cols, 1.0f,
                                tau + (size_t)i0 * cols, (int)cols);
                }
                for (int i = i0; i < i1; ++i) {
                    float *dst = a + (size_t)i * (size_t)w + (size_t)l0;
                    /* Rays opaque in this species at every (bin, g) absorb
                     * its whole weight sum, and 1 in the product: from the
                     * last ray that is not on, the species after it leave
                     * them out. */
                    if (!absorbed_gb(tau + (size_t)i * cols, nb, n_g, wg, wsum, acc)) n_a = i + 1;
                    if (s == 0)
                        for (int l = 0; l < nb; ++l) dst[l] = acc[l];
                    else
                        for (int l = 0; l < nb; ++l) dst[l] += acc[l] * (1.0f - dst[l]);
                }
            }
            /* Rays whose combined absorbed fraction is already 1 at every
             * bin stay 1 (a + A (1 - a) = a): the species after leave them
             * out too. */
            while (n_a > 0) {
                const float *ai = a + (size_t)(n_a - 1) * (size_t)w + (size_t)l0;
                int n_one = 0;
                for (int l = 0; l < nb; ++l) n_one += ai[l] == 1.0f;
                if (n_one < nb) break;
                --n_a;
            }
            n_live = n_a;
        }
    }
    sbi_rt_transit_from_absorbed(n, w, a, r, rt2);
}

/* ---- emission with the product, on the tables' rows ---------------------------- */

/* The degree-5 polynomial sum_k thin_c[k] x^k for exp(-x), 0 <= x <= 0.35
 * (the Chebyshev interpolant on [0, 0.35]: 9e-8 relative in float), of
 * exp_thin and of the moments' polynomial in thin_lanes. */
static const float thin_c[6] = {1.0f, -0.9999997616f, 0.4999926090f, -0.1665758044f, 0.04115870595f,
                                -0.007003130391f};

/* exp(-x) for 0 <= x <= 0.35 by thin_c's polynomial, without the range
 * reduction of the full exponential. */
RT_INLINE float exp_thin(float x)
{
    return thin_c[0] + x * (thin_c[1] + x * (thin_c[2] + x * (thin_c[3] + x * (thin_c[4] + x * thin_c[5]))));
}

/* The smallest and largest of v (n >= 1), all >= 0 (optical depths): the
 * bit patterns of non-negative floats order as the floats do, and an
 * integer min/max reduction vectorises. */
RT_INLINE void lane_range_nonneg(const float *v, int n, float *lo, float *hi)
{
    int32_t a = INT32_MAX, b = 0;
    for (int m = 0; m < n; ++m) {
        int32_t x;
        memcpy(&x, v + m, sizeof x);
        a = x < a ? x : a;
        b = x > b ? x : b;
    }
    memcpy(lo, &a, sizeof a);
    memcpy(hi, &b, sizeof b);
}

/* acc (nb) += w exp(-x), x = tau (nb) / mu, tau within [lo, hi]: nothing
 * where every x exceeds 87 (below the fast exp's floor, 2e-38), a series
 * where every x is below 0.35 (to x^3 below 0.01), else the fast exp. */
RT_INLINE void add_transmission(const float *restrict tau, int nb, float lo, float hi, float inv_mu, float w,
                                float *restrict acc)
{
    if (lo * inv_mu > 87.0f) return;
    if (hi * inv_mu < 0.01f)
        /* Remainder below x^4 / 24 = 4e-10. */
        for (int l = 0; l < nb; ++l) {
            const float x = tau[l] * inv_mu;
            acc[l] += w * (1.0f - x * (1.0f - x * (0.5f - x * 0.166666667f)));
        }
    else if (hi * inv_mu < 0.35f)
        for (int l = 0; l < nb; ++l) acc[l] += w * exp_thin(tau[l] * inv_mu);
    else {
        const float k2 = inv_mu * SBI__RT_LOG2E; /* exp(-tau / mu) = 2^-(tau k2) */
        for (int l = 0; l < nb; ++l) acc[l] += w * sbi__rt_exp2_neg(tau[l] * k2);
    }
}

/* One g-row's optical depths tq (nb) += the rows rp[e] + rq (nrw of them,
 * 4 or 8) times rw[e], plus d (nb); returns the largest new tq.  Inlined
 * with a constant nb where the block is whole, so that the loops have no
 * remainders. */
RT_INLINE float row_update(int nb, float *restrict tq, int nrw, const float *const *rp, const float *rw, size_t rq,
                           const float *restrict d)
{
    const float w0 = rw[0], w1 = rw[1], w2 = rw[2], w3 = rw[3];
    const float *restrict r0 = rp[0] + rq, *restrict r1 = rp[1] + rq, *restrict r2 = rp[2] + rq;
    const float *restrict r3 = rp[3] + rq;
    int32_t b = 0;
    float hi;
    if (nrw == 4)
        for (int l = 0; l < nb; ++l) {
            const float v = (tq[l] + (w0 * r0[l] + w1 * r1[l] + w2 * r2[l] + w3 * r3[l])) + d[l];
            int32_t x;
            tq[l] = v;
            memcpy(&x, &v, sizeof x);
            b = x > b ? x : b;
        }
    else {
        const float w4 = rw[4], w5 = rw[5], w6 = rw[6], w7 = rw[7];
        const float *restrict r4 = rp[4] + rq, *restrict r5 = rp[5] + rq, *restrict r6 = rp[6] + rq;
        const float *restrict r7 = rp[7] + rq;
        for (int l = 0; l < nb; ++l) {
            const float v = ((tq[l] + (w0 * r0[l] + w1 * r1[l] + w2 * r2[l] + w3 * r3[l])) +
                             (w4 * r4[l] + w5 * r5[l] + w6 * r6[l] + w7 * r7[l])) +
                            d[l];
            int32_t x;
            tq[l] = v;
            memcpy(&x, &v, sizeof x);
            b = x > b ? x : b;
        }
    }
    memcpy(&hi, &b, sizeof b);
    return hi;
}

/* Lanes off..off + nl (nl <= 8) of acc (n_mu, nb) = sum over the thin
 * g-rows of w_q exp_thin(tau_q / mu_a): w_thin (their weights' sum) +
 * sum_k kc[5 a + k - 1] m_k, with the moments m_k = sum_q w_q tau_q^k
 * (k = 1..5; rows q3 to k = 3, as there every tau / mu < 0.01 and
 * x^4 / 24 < 4.2e-10) summed in registers, lane by lane, and kc[5 a + k -
 * 1] = thin_c[k] / mu_a^k. */
RT_INLINE void thin_lanes(int nl, size_t nb, size_t off, const float *tau, const int *q5, int n5, const int *q3,
                          int n3, const float *wg, float w_thin, int n_mu, const float *kc, float *acc)
{
    float m1[8] = {0}, m2[8] = {0}, m3[8] = {0}, m4[8] = {0}, m5[8] = {0};
    for (int r = 0; r < n5; ++r) {
        const float *restrict x = tau + (size_t)q5[r] * nb + off;
        const float w = wg[q5[r]];
        for (int v = 0; v < nl; ++v) {
            const float p1 = w * x[v], p2 = p1 * x[v], p3 = p2 * x[v], p4 = p3 * x[v];
            m1[v] += p1;
            m2[v] += p2;
            m3[v] += p3;
            m4[v] += p4;
            m5[v] += p4 * x[v];
        }
    }
    for (int r = 0; r < n3; ++r) {
        const float *restrict x = tau + (size_t)q3[r] * nb + off;
        const float w = wg[q3[r]];
        for (int v = 0; v < nl; ++v) {
            const float p1 = w * x[v], p2 = p1 * x[v];
            m1[v] += p1;
            m2[v] += p2;
            m3[v] += p2 * x[v];
        }
    }
    for (int a = 0; a < n_mu; ++a) {
        const float *c = kc + 5 * (size_t)a;
        float *restrict y = acc + (size_t)a * nb + off;
        for (int v = 0; v < nl; ++v)
            y[v] = w_thin + c[0] * m1[v] + c[1] * m2[v] + c[2] * m3[v] + c[3] * m4[v] + c[4] * m5[v];
    }
}

/* thin_lanes on 8 lanes, in eight-float vectors, so that the moments stay
 * in registers across the rows (the scalar loops above, unrolled, do not). */
#if defined(__GNUC__) && !defined(__clang__)
RT_INLINE void thin_lanes8(size_t nb, size_t off, const float *tau, const int *q5, int n5, const int *q3, int n3,
                           const float *wg, float w_thin, int n_mu, const float *kc, float *acc)
{
    rt_v8 m1 = {0}, m2 = m1, m3 = m1, m4 = m1, m5 = m1;
    for (int r = 0; r < n5; ++r) {
        const rt_v8 x = *(const rt_v8u *)(const void *)(tau + (size_t)q5[r] * nb + off);
        rt_v8 p = wg[q5[r]] * x;
        m1 += p;
        p *= x;
        m2 += p;
        p *= x;
        m3 += p;
        p *= x;
        m4 += p;
        m5 += p * x;
    }
    for (int r = 0; r < n3; ++r) {
        const rt_v8 x = *(const rt_v8u *)(const void *)(tau + (size_t)q3[r] * nb + off);
        rt_v8 p = wg[q3[r]] * x;
        m1 += p;
        p *= x;
        m2 += p;
        m3 += p * x;
    }
    for (int a = 0; a < n_mu; ++a) {
        const float *c = kc + 5 * (size_t)a;
        *(rt_v8u *)(void *)(acc + (size_t)a * nb + off) = w_thin + c[0] * m1 + c[1] * m2 + c[2] * m3 + c[3] * m4 +
                                                           c[4] * m5;
    }
}
#else
#define thin_lanes8(...) thin_lanes(8, __VA_ARGS__)
#endif

/* acc (n_mu, nb) = sum_q wg_q exp(-tau_q / mu_a) over one species' g-rows
 * q < n_live of tau (n_live, nb), whose largest values are hi (n_live).
 * Rows with every tau / mu below 0.35 (inv_mu_max: the largest 1 / mu) are
 * thin: their moments give exp_thin's polynomial at every angle at once
 * (thin_lanes); the others go angle by angle (add_transmission), with their
 * smallest tau looked for only where some angle may find every tau above
 * 87 mu.  list: room for 3 n_live ints. */
RT_INLINE void species_transmission(int nb, const float *tau, int n_live, const float *hi, const float *wg,
                                    int n_mu, const float *inv_mu, float inv_mu_max, const float *kc, int *list,
                                    float *acc)
{
    int *q5 = list, *q3 = list + n_live, *qo = list + 2 * (size_t)n_live;
    int n5 = 0, n3 = 0, no = 0, l = 0;
    float w_thin = 0.0f;
    for (int q = 0; q < n_live; ++q) {
        const float x = hi[q] * inv_mu_max;
        if (x < 0.01f)
            q3[n3++] = q;
        else if (x < 0.35f)
            q5[n5++] = q;
        else {
            qo[no++] = q;
            continue;
        }
        w_thin += wg[q];
    }
    if (n5 + n3 > 0) {
        for (; l + 8 <= nb; l += 8) thin_lanes8((size_t)nb, (size_t)l, tau, q5, n5, q3, n3, wg, w_thin, n_mu, kc, acc);
        if (l < nb)
            thin_lanes(nb - l, (size_t)nb, (size_t)l, tau, q5, n5, q3, n3, wg, w_thin, n_mu, kc, acc);
    } else
        for (size_t m = 0; m < (size_t)n_mu * (size_t)nb; ++m) acc[m] = 0.0f;
    for (int r = 0; r < no; ++r) {
        const float *tq = tau + (size_t)qo[r] * (size_t)nb, h = hi[qo[r]];
        float lo = 0.0f, lo_hi;
        if (h * inv_mu_max > 87.0f) lane_range_nonneg(tq, nb, &lo, &lo_hi);
        for (int a = 0; a < n_mu; ++a) add_transmission(tq, nb, lo, h, inv_mu[a], wg[qo[r]], acc + (size_t)a * nb);
    }
}

/* Bins per block of the product's emission: long enough loops over the
 * bins of a g-row for the exponentials to pipeline, short enough that the
 * species' rows (S, R, G, block) stay in L2. */
#define RT_EMISSION_BLOCK 64

/* The rows of one layer's optical-depth increment for one species: the
 * (P, T) rows of the layer and the one above, with the weights dp c (rows
 * the two share merged), padded with weight 0 to 4 or 8. */
typedef struct layer_rows {
    int n;
    int row[8]; /* in the species' rows of the block, ck_rows order */
    float w[8];
} layer_rows;

/* lr (N, stride n_s) of species s for the layers 1..N-1: the layers'
 * trapezoids dp_i (kappa_{i-1} + kappa_i) as sums over their rows. */
static void layer_rows_build(int n, int n_s, int s, const aee_corner *cn, const ck_rows *cr, const float *dp,
                             int deck_from, layer_rows *lr)
{
    for (int i = 1; i < n; ++i) {
        layer_rows *lq = lr + (size_t)i * n_s + s;
        int nrw = 0;
        for (int j = i - 1; j <= i; ++j) {
            const aee_corner *kj = cn + (size_t)j * n_s + s;
            if (s == 0 && deck_from >= 0 && j >= deck_from) continue;
            for (int m = 0; m < 4; ++m) {
                const int row = cr->idx[4 * j + m];
                const float v = dp[i] * kj->c[m];
                int e = 0;
                if (v == 0.0f) continue;
                while (e < nrw && lq->row[e] != row) ++e;
                if (e == nrw) {
                    lq->row[nrw] = row;
                    lq->w[nrw++] = 0.0f;
                }
                lq->w[e] += v;
            }
        }
        /* Whole groups of four rows: padded with weight 0. */
        if (nrw == 0) lq->row[0] = 0;
        while (nrw == 0 || nrw % 4 != 0) {
            lq->row[nrw] = lq->row[0];
            lq->w[nrw++] = 0.0f;
        }
        lq->n = nrw;
    }
}

size_t sbi_rt_emission_ck_product_work(int n, int w, int n_g, int n_s, int n_mu)
{
    const size_t b = RT_EMISSION_BLOCK, ns = (size_t)(n_s > 0 ? n_s : 1), sgb = ns * (size_t)n_g * b;
    const size_t nn = (size_t)(n > 0 ? n : 1);
    (void)w;
    return aee_corner_floats(n_s, n) + ck_rows_floats(n_s, n, 1) + ns * nn * (size_t)n_g * b + (size_t)n_g * b +
           3 * sgb + 4 * (size_t)n_mu * b + 6 * (size_t)n_mu + 7 * b + 2 * nn + ns + 4 * (size_t)n_g +
           nn * ns * (sizeof(layer_rows) / sizeof(float));
}

RT_HOT void sbi_rt_emission_flux_ck_product(int n, int w, int n_g, const float *wg, int n_s,
                                            const sbi_rt_ck_table *const *tabs, const double *c, const float *gray,
                                            const double *p_bar, const double *t, double g, int deck_from,
                                            float deck_kappa, const double *nu, int n_mu, const double *mu,
                                            const double *w_mu, float *work, double *flux_nu)
{
    const int blk = RT_EMISSION_BLOCK;
    const size_t per_rows = ck_rows_species_floats(n);
    const size_t kstride = (size_t)n * (size_t)n_g * (size_t)blk; /* floats of one species' rows */
    const size_t sgb = (size_t)n_s * (size_t)n_g * (size_t)blk;
    aee_corner *cn = (aee_corner *)(void *)work;
    float *rw = work + aee_corner_floats(n_s, n);
    float *kr = rw + ck_rows_floats(n_s, n, 1), *kq = kr + (size_t)n_s * kstride, *kprev = kq + (size_t)n_g * blk;
    float *kcur = kprev + sgb, *tau = kcur + sgb, *tprev = tau + sgb, *inten = tprev + (size_t)n_mu * (size_t)blk;
    float *acc = inten + (size_t)n_mu * (size_t)blk, *tr = acc + (size_t)n_mu * (size_t)blk;
    float *inv_mu = tr + (size_t)n_mu * (size_t)blk, *thin_k = inv_mu + n_mu, *c1 = thin_k + 5 * (size_t)n_mu;
    float *hk = c1 + blk, *b0 = hk + blk, *b1 = b0 + blk, *dg = b1 + blk, *bm = dg + blk, *zero = bm + blk;
    float *inv_tmax = zero + blk, *dp = inv_tmax + n; /* dp (N): (p_i - p_{i-1}) / 2 g, 0 at i = 0 */
    int *live = (int *)(void *)(dp + n); /* (S) g-rows [0, live) of the block not yet dark */
    float *hq = (float *)(void *)(live + n_s); /* (G) the largest tau of each g-row */
    int *list = (int *)(void *)(hq + n_g);     /* (3 G) species_transmission's row lists */
    layer_rows *lr = (layer_rows *)(void *)(list + 3 * (size_t)n_g);
    float inv_mu_min = INFINITY, inv_mu_max = 0.0f;
    ck_rows cr[64];
    int n_copied[64]; /* rows of each species copied for the block */

    if (n_s > 64) n_s = 64;
    for (int l = 0; l < blk; ++l) zero[l] = 0.0f;
    for (int a = 0; a < n_mu; ++a) {
        inv_mu[a] = (float)(1.0 / mu[a]);
        inv_mu_min = fminf(inv_mu_min, inv_mu[a]);
        inv_mu_max = fmaxf(inv_mu_max, inv_mu[a]);
    }
    /* exp_thin's coefficients at each angle: thin_c[k] / mu_a^k, k = 1..5. */
    for (int a = 0; a < n_mu; ++a) {
        const float k = inv_mu[a];
        float *ka = thin_k + 5 * (size_t)a;
        ka[0] = thin_c[1] * k;
        ka[1] = thin_c[2] * k * k;
        ka[2] = thin_c[3] * k * k * k;
        ka[3] = thin_c[4] * k * k * k * k;
        ka[4] = thin_c[5] * k * k * k * k * k;
    }
    for (int i = 0; i < n; ++i)
        for (int s = 0; s < n_s; ++s) aee_bracket(tabs[s], p_bar[i], t[i], c[s], cn + (size_t)i * n_s + s);
    /* 1 / the hottest temperature of layers i.. (B grows with T at every
     * frequency). */
    for (int i = n - 1; i >= 0; --i) {
        const float v = (float)(1.0 / t[i]);
        inv_tmax[i] = i + 1 < n && inv_tmax[i + 1] < v ? inv_tmax[i + 1] : v;
    }
    for (int i = 0; i < n; ++i) dp[i] = i > 0 ? (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g)) : 0.0f;
    for (int s = 0; s < n_s; ++s) {
        ck_rows_at(rw + (size_t)s * per_rows, n, &cr[s]);
        ck_rows_build(n, cn + s, n_s, NULL, NULL, -1, &cr[s]); /* no factor */
        if (cr[s].n_rows >= 0) layer_rows_build(n, n_s, s, cn, &cr[s], dp, deck_from, lr);
    }
    /* Blocks of bins, the layers inside.  Each species' distinct (P, T)
     * rows of the block are copied once with g outermost (R, G, nb), so
     * that a layer's optical-depth update from the rows, the optical
     * depths (S, G, nb) and the g-sums are loops over contiguous bins with
     * no transposition. */
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int nb = l0 + blk < w ? blk : w - l0;
        const size_t gb = (size_t)n_g * (size_t)nb;
        for (int l = 0; l < nb; ++l) {
            const double v = nu[l0 + l];
            c1[l] = (float)(2.0 * SBI_RT_H * v * v * v / (SBI_RT_C * SBI_RT_C));
            hk[l] = (float)(SBI_RT_H * v / SBI_RT_KB);
        }
        for (int s = 0; s < n_s; ++s) n_copied[s] = 0;
        for (size_t m = 0; m < (size_t)n_s * gb; ++m) tau[m] = 0.0f;
        for (size_t m = 0; m < (size_t)n_mu * (size_t)nb; ++m) {
            tprev[m] = 1.0f;
            inten[m] = 0.0f;
        }
        for (int s = 0; s < n_s; ++s) live[s] = n_g;
        for (int i = 0; i < n; ++i) {
            const float inv_t = (float)(1.0 / t[i]);
            int dead = 0;
            float *tmp;
            /* The rows that layer i is the first to use (rows are in the
             * order of first use): rows of layers below the block's last
             * are never copied. */
            for (int s = 0; s < n_s; ++s)
                for (; n_copied[s] < (cr[s].n_rows >= 0 ? cr[s].upto[i] : 0); ++n_copied[s])
                    transpose_gb(nb, n_g, tabs[s]->k + (cr[s].row[n_copied[s]] + (size_t)l0) * (size_t)n_g,
                                 kr + (size_t)s * kstride + (size_t)n_copied[s] * gb);
            /* The optical depths of every species' g-rows not yet dark
             * (species 0 with the gray part and the deck), layer i's
             * trapezoid dp (kappa_{i-1} + kappa_i) added as a sum over the
             * (P, T) rows of the two layers, with the weights dp c
             * (rows the layers share merged), not by interpolating kappa
             * (so interpolated values below 1e-30, which sbi_rt_ck_interp
             * zeroes, are kept: tau changes by below 1e-20). */
            const float dpi = dp[i];
            const int deck_prev = deck_from >= 0 && i - 1 >= deck_from, deck_cur = deck_from >= 0 && i >= deck_from;
            if (i > 0 && gray) {
                /* The gray and deck part of species 0's increment (nb). */
                const float *g0 = gray + (size_t)(i - 1) * (size_t)w + (size_t)l0, *g1 = g0 + w;
                const float fd = deck_kappa * dpi * (float)(deck_prev + deck_cur);
                const float f0 = deck_prev ? 0.0f : dpi, f1 = deck_cur ? 0.0f : dpi;
                for (int l = 0; l < nb; ++l) dg[l] = f0 * g0[l] + f1 * g1[l] + fd;
            } else if (i > 0) {
                const float fd = deck_kappa * dpi * (float)(deck_prev + deck_cur);
                for (int l = 0; l < nb; ++l) dg[l] = fd;
            }
            /* The species' g-mean transmissions at every angle (n_mu,
             * nb), multiplied: each g-row's terms are added right after
             * its optical depths, while in cache. */
            for (size_t m = 0; m < (size_t)n_mu * (size_t)nb; ++m) tr[m] = 1.0f;
            for (int s = 0; s < n_s; ++s) {
                const aee_corner *k = cn + (size_t)i * n_s + s;
                const float c00 = k->c[0], c01 = k->c[1], c10 = k->c[2], c11 = k->c[3];
                const size_t o = (size_t)s * gb;
                const int deck = s == 0 && deck_from >= 0 && i >= deck_from;
                const float *gr = s == 0 && gray ? gray + (size_t)i * (size_t)w + (size_t)l0 : NULL;
                dead |= live[s] == 0;
                if (cr[s].n_rows >= 0) {
                    const float *ksr = kr + (size_t)s * kstride, *d = s == 0 ? dg : zero;
                    const layer_rows *lq = lr + (size_t)i * n_s + s;
                    const float *rp[8];
                    if (i == 0) continue;
                    for (int e = 0; e < lq->n; ++e) rp[e] = ksr + (size_t)lq->row[e] * gb;
                    if (nb == blk) {
                        for (int q = 0; q < live[s]; ++q)
                            hq[q] = row_update(RT_EMISSION_BLOCK, tau + o + (size_t)q * nb, lq->n, rp, lq->w,
                                               (size_t)q * nb, d);
                        species_transmission(RT_EMISSION_BLOCK, tau + o, live[s], hq, wg, n_mu, inv_mu, inv_mu_max,
                                             thin_k, list, acc);
                    } else {
                        for (int q = 0; q < live[s]; ++q)
                            hq[q] = row_update(nb, tau + o + (size_t)q * nb, lq->n, rp, lq->w, (size_t)q * nb, d);
                        species_transmission(nb, tau + o, live[s], hq, wg, n_mu, inv_mu, inv_mu_max, thin_k, list, acc);
                    }
                    for (size_t m = 0; m < (size_t)n_mu * (size_t)nb; ++m) tr[m] *= acc[m];
                    continue;
                }
                /* More distinct rows than layers: kappa of the layer's own
                 * four rows, transposed here, and the trapezoid from it. */
                {
                    const float *kt = tabs[s]->k + (size_t)l0 * (size_t)n_g;
                    const float cc[4] = {c00, c01, c10, c11};
                    for (size_t m = 0; m < gb; ++m) kcur[o + m] = 0.0f;
                    for (int m = 0; m < 4; ++m) {
                        transpose_gb(nb, n_g, kt + k->row[m] * (size_t)n_g, kq);
                        for (size_t e = 0; e < gb; ++e) kcur[o + e] += cc[m] * kq[e];
                    }
                }
                for (int q = 0; q < live[s]; ++q) {
                    const size_t r0 = o + (size_t)q * nb;
                    float *restrict kc = kcur + r0, *restrict tq = tau + r0;
                    const float *restrict kp = kprev + r0;
                    for (int l = 0; l < nb; ++l) kc[l] = kc[l] < 1e-30f ? 0.0f : kc[l];
                    if (deck)
                        for (int l = 0; l < nb; ++l) kc[l] = deck_kappa;
                    else if (gr)
                        for (int l = 0; l < nb; ++l) kc[l] += gr[l];
                    if (i > 0) {
                        float lo, hi;
                        for (int l = 0; l < nb; ++l) tq[l] += (kp[l] + kc[l]) * dpi;
                        lane_range_nonneg(tq, nb, &lo, &hi);
                        hq[q] = hi;
                    }
                }
                if (i > 0) {
                    species_transmission(nb, tau + o, live[s], hq, wg, n_mu, inv_mu, inv_mu_max, thin_k, list, acc);
                    for (size_t m = 0; m < (size_t)n_mu * (size_t)nb; ++m) tr[m] *= acc[m];
                }
            }
            for (int l = 0; l < nb; ++l) b1[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_t);
            if (i > 0) {
                for (int a = 0; a < n_mu; ++a) {
                    float *tp = tprev + (size_t)a * nb, *in = inten + (size_t)a * nb;
                    const float *tr_a = tr + (size_t)a * nb;
                    for (int l = 0; l < nb; ++l) {
                        in[l] += 0.5f * (b0[l] + b1[l]) * (tp[l] - tr_a[l]);
                        tp[l] = tr_a[l];
                    }
                }
                /* A species with every g-row dark made the transmission
                 * zero in this layer: the layers below add nothing, and the
                 * bottom's B multiplies zero. */
                if (dead) break;
                /* The layers below add sum_{j > i} B_j (T_{j-1} - T_j) +
                 * B_N T_N to an intensity, between B_i T_i and its largest
                 * B (the hottest layer below) times T_i: where the latter
                 * is below 1e-8 of every intensity so far (bins and
                 * angles), B_i T_i stands for them, to 1e-8 relative. */
                if (i + 1 < n) {
                    int deep = 1;
                    for (int l = 0; l < nb; ++l) bm[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_tmax[i + 1]);
                    for (int a = 0; a < n_mu && deep; ++a) {
                        const float *tp = tprev + (size_t)a * nb, *in = inten + (size_t)a * nb;
                        int n_lit = 0;
                        for (int l = 0; l < nb; ++l) n_lit += tp[l] * bm[l] > 1e-8f * in[l];
                        deep = n_lit == 0;
                    }
                    if (deep) {
                        tmp = b0;
                        b0 = b1;
                        b1 = tmp;
                        break;
                    }
                }
                /* A g-row is dark once exp(-tau / mu) is at the fast exp's
                 * floor, exp(-87), in every bin of the block and for every
                 * angle: it adds below 2e-38 to its species' transmission
                 * from then on, and is dropped. */
                for (int s = 0; s < n_s; ++s)
                    while (live[s] > 0) {
                        const float *tq = tau + (size_t)s * gb + (size_t)(live[s] - 1) * nb;
                        int n_dark, n_thin;
                        lane_counts(tq, nb, 87.0f / inv_mu_min, 0.0f, &n_dark, &n_thin);
                        if (n_dark < nb) break;
                        --live[s];
                    }
            }
            tmp = b0;
            b0 = b1;
            b1 = tmp;
            tmp = kprev;
            kprev = kcur;
            kcur = tmp;
        }
        block_flux(nb, nb, n_mu, mu, w_mu, inten, tprev, b0, flux_nu + l0);
    }
}
