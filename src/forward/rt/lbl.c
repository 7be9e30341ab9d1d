/* Line-by-line kernels blocked over wavelength: the line tables of all
 * species interpolated with weights taken once per layer, the transmission
 * chain (alpha = kappa rho, chord product, absorbed fraction, radius
 * integral) on one block of wavelengths at a time, so that what a block
 * writes is still in cache when the next step reads it, and the emission
 * formal solution block by block.  The tests keep the unblocked kernels as
 * oracles (sbi_rt_line_add_block, sbi_rt_transit_radius2, a double-precision
 * formal solution); the per-wavelength arithmetic is theirs, in float with
 * fused multiply-adds. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "exosbi/core.h"
#include "exosbi/rt.h"

/* As in src/forward/rt/ck.c: the full loop vectoriser, and an AVX2/FMA clone
 * chosen at load time for the library built for x86-64-v2; here also fused
 * multiply-adds (the fast exponential's polynomial and the interpolation
 * sums are chains of them: a quarter to a third less time). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC optimize("O3", "no-trapping-math", "fp-contract=fast")
#define RT_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RT_HOT
#endif

#include "forward/rt/rt_fastmath.h"

/* ---- line tables --------------------------------------------------------------- */

void sbi_rt_line_terms(const sbi_rt_line_table *tab, double p_bar, double t, double c, const float **rows,
                       float *coef)
{
    int row[4];
    double wt[4];
    sbi_rt_line_weights(tab, p_bar, t, row, wt);
    for (int k = 0; k < 4; ++k) {
        rows[k] = tab->sigma + (size_t)row[k] * (size_t)tab->w;
        coef[k] = (float)(c * wt[k]);
    }
}

/* One table's four rows; not inlined, as GCC otherwise vectorises the loop
 * over tables with gathers. */
__attribute__((noinline)) RT_HOT static void add_rows(int nb, const float *restrict s0, const float *restrict s1,
                                                      const float *restrict s2, const float *restrict s3,
                                                      const float *c, float *restrict out)
{
    const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    for (int l = 0; l < nb; ++l) out[l] += c0 * s0[l] + c1 * s1[l] + c2 * s2[l] + c3 * s3[l];
}

void sbi_rt_lines_add_block(int n_tabs, const float *const *rows, const float *coef, int l0, int l1, float *out)
{
    for (int k = 0; k < n_tabs; ++k)
        add_rows(l1 - l0, rows[4 * k] + l0, rows[4 * k + 1] + l0, rows[4 * k + 2] + l0, rows[4 * k + 3] + l0,
                 coef + 4 * k, out);
}

int sbi_rt_line_tables_same_grid(const sbi_rt_line_table *a, const sbi_rt_line_table *b)
{
    if (a->scheme != b->scheme || a->n_p != b->n_p || a->n_t != b->n_t || a->w != b->w) return 0;
    for (int i = 0; i < a->n_p; ++i)
        if (a->p[i] != b->p[i]) return 0;
    for (int i = 0; i < a->n_t; ++i)
        if (a->t[i] != b->t[i]) return 0;
    return 1;
}

size_t sbi_rt_lines_summed_work(const sbi_rt_line_table *tab, int n, int blk)
{
    return 4 * (size_t)n + (size_t)tab->n_p * (size_t)tab->n_t * (size_t)(blk > 0 ? blk : tab->w);
}

size_t sbi_rt_lines_summed_iwork(const sbi_rt_line_table *tab, int n)
{
    return 4 * (size_t)n + (size_t)tab->n_p * (size_t)tab->n_t;
}

RT_HOT void sbi_rt_lines_add_summed(int n_tabs, const sbi_rt_line_table *const *tabs, const double *c, int n,
                                    const double *p_bar, const double *t, int blk, float *work, int *iwork,
                                    float *kappa)
{
    const sbi_rt_line_table *tab = tabs[0];
    const int w = tab->w, n_rows = tab->n_p * tab->n_t;
    float *coef = work, *sum = work + 4 * (size_t)n;
    int *row = iwork, *slot = iwork + 4 * (size_t)n, n_used = 0;

    if (n_tabs <= 0) return;
    if (blk <= 0) blk = w;
    /* Each layer's four rows and weights, and the rows any layer uses. */
    for (int r = 0; r < n_rows; ++r) slot[r] = -1;
    for (int i = 0; i < n; ++i) {
        double wt[4];
        sbi_rt_line_weights(tab, p_bar[i], t[i], row + 4 * i, wt);
        for (int q = 0; q < 4; ++q) {
            coef[4 * i + q] = (float)wt[q];
            if (slot[row[4 * i + q]] < 0) slot[row[4 * i + q]] = n_used++;
        }
    }
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int nb = l0 + blk < w ? blk : w - l0;
        /* The species' sum of each used row over the block... */
        for (int r = 0; r < n_rows; ++r) {
            if (slot[r] < 0) continue;
            float *restrict dst = sum + (size_t)slot[r] * (size_t)nb;
            for (int l = 0; l < nb; ++l) dst[l] = 0.0f;
            for (int k = 0; k < n_tabs; ++k) {
                const float *restrict src = tabs[k]->sigma + (size_t)r * (size_t)w + (size_t)l0;
                const float cc = (float)c[k];
                for (int l = 0; l < nb; ++l) dst[l] += cc * src[l];
            }
        }
        /* ... then four rows per layer. */
        for (int i = 0; i < n; ++i) {
            const int *ri = row + 4 * i;
            add_rows(nb, sum + (size_t)slot[ri[0]] * (size_t)nb, sum + (size_t)slot[ri[1]] * (size_t)nb,
                     sum + (size_t)slot[ri[2]] * (size_t)nb, sum + (size_t)slot[ri[3]] * (size_t)nb, coef + 4 * i,
                     kappa + (size_t)i * (size_t)w + (size_t)l0);
        }
    }
}

/* ---- transmission ------------------------------------------------------------- */

size_t sbi_rt_transit_kappa_work(int n, int w, int blk)
{
    return (size_t)n * (size_t)(blk > 0 && blk < w ? blk : w > 0 ? w : 1);
}

/* Rays from the bottom up whose chord optical depth is above 18 at every
 * wavelength of the block (e^-18 is below half a float ulp of 1: they absorb
 * exactly 1) by a lower bound: the terms m[i][j] alpha_j are all >= 0, so
 * the sum over some of the deepest layers the ray crosses (the longest
 * segments, the densest layers), at most RT_BOUND_LAYERS + 1 of them, is at
 * most tau_i.  Returns n_open, the ray from which on all are opaque by
 * this bound (n if the deepest is not).  On the benchmark's column (100
 * layers, blocks of 256 wavelengths) 9 layers find all but 0.3 of the 46
 * opaque rays per block that the whole sum finds, and the deepest layer
 * alone 39 of them, so the terms after the deepest are added only while
 * some wavelength of a chunk is still below 18. */
enum { RT_BOUND_LAYERS = 8, RT_BOUND_CHUNK = 64 };

RT_INLINE int opaque_from(int n, int nb, const float *m, const float *alpha)
{
    int i = n - 1;
    for (; i > 0; --i) {
        const float *restrict mi = m + (size_t)i * (size_t)n;
        const int j0 = i > RT_BOUND_LAYERS ? i - RT_BOUND_LAYERS : 0;
        int c0 = 0;
        /* Chunk by chunk, the deepest layer first, the next ones only while
         * some wavelength of the chunk is below 18. */
        for (; c0 < nb; c0 += RT_BOUND_CHUNK) {
            const int nc = nb - c0 < RT_BOUND_CHUNK ? nb - c0 : RT_BOUND_CHUNK;
            float lb[RT_BOUND_CHUNK];
            int opaque = 0;
            for (int l = 0; l < nc; ++l) lb[l] = 0.0f;
            for (int j = i; j >= j0 && opaque < nc; --j) {
                const float *restrict a = alpha + (size_t)j * (size_t)nb + (size_t)c0;
                const float mij = mi[j];
                opaque = 0;
                for (int l = 0; l < nc; ++l) {
                    lb[l] += mij * a[l];
                    opaque += lb[l] > 18.0f;
                }
            }
            if (opaque < nc) break;
        }
        if (c0 < nb) break;
    }
    return i + 1;
}

RT_HOT int sbi_rt_chord_tau_kappa(int n, int w, const float *m, const float *kappa, const double *rho,
                                  int deck_from, float deck_alpha, int l0, int l1, float *tau)
{
    const int nb = l1 - l0;
    int n_open;
    for (int i = 0; i < n; ++i) {
        const float *restrict k = kappa + (size_t)i * (size_t)w + (size_t)l0;
        float *restrict a = tau + (size_t)i * (size_t)nb;
        if (deck_from >= 0 && i >= deck_from) {
            for (int l = 0; l < nb; ++l) a[l] = deck_alpha;
        } else {
            const double ri = rho[i];
            for (int l = 0; l < nb; ++l) a[l] = (float)(k[l] * ri);
        }
    }
    /* m is lower triangular (ray i crosses layers j <= i only), so the rays
     * above n_open need only the top n_open x n_open part of it. */
    n_open = n > 0 ? opaque_from(n, nb, m, tau) : 0;
    if (n_open > 0)
        cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n_open, nb, 1.0f, m, n, tau,
                    nb);
    return n_open;
}

RT_HOT void sbi_rt_transit_block(int n, int n_open, int nb, float *tau, const double *r, double *rt2)
{
    double deep = r[n - 1] * r[n - 1];
    /* A ray opaque at every wavelength of the block (tau > 18: e^-tau below
     * half a float ulp of 1) absorbs exactly 1, without the exponentials. */
    for (int i = 0; i < n_open; ++i) {
        float *restrict a = tau + (size_t)i * (size_t)nb;
        int opaque = 0;
        for (int l = 0; l < nb; ++l) opaque += a[l] > 18.0f;
        if (opaque == nb)
            for (int l = 0; l < nb; ++l) a[l] = 1.0f;
        else
            for (int l = 0; l < nb; ++l) a[l] = sbi__rt_absorbed(a[l]);
    }
    /* The rays from n_open on absorb 1: between two of them the integrand is
     * the same at every wavelength. */
    for (int i = n - 1; i > n_open; --i) deep += (r[i - 1] + r[i]) * (r[i - 1] - r[i]);
    for (int l = 0; l < nb; ++l) rt2[l] = deep;
    for (int i = 1; i < n_open; ++i) {
        const float *restrict a0 = tau + (size_t)(i - 1) * (size_t)nb, *restrict a1 = a0 + nb;
        const double dr = r[i - 1] - r[i], r0 = r[i - 1], r1 = r[i];
        for (int l = 0; l < nb; ++l) rt2[l] += ((double)a0[l] * r0 + (double)a1[l] * r1) * dr;
    }
    if (n_open > 0 && n_open < n) {
        const float *restrict a0 = tau + (size_t)(n_open - 1) * (size_t)nb;
        const double dr = r[n_open - 1] - r[n_open], r0 = r[n_open - 1], r1 = r[n_open];
        for (int l = 0; l < nb; ++l) rt2[l] += ((double)a0[l] * r0 + r1) * dr;
    }
}

void sbi_rt_transit_radius2_kappa(int n, int w, const float *m, const float *kappa, const double *rho,
                                  int deck_from, float deck_alpha, const double *r, int blk, float *work,
                                  double *rt2)
{
    if (blk <= 0) blk = w;
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w;
        const int n_open = sbi_rt_chord_tau_kappa(n, w, m, kappa, rho, deck_from, deck_alpha, l0, l1, work);
        sbi_rt_transit_block(n, n_open, l1 - l0, work, r, rt2 + l0);
    }
}

/* ---- emission ---------------------------------------------------------------- */

size_t sbi_rt_emission_work(int w, int n_mu)
{
    return (size_t)(4 + 2 * n_mu) * (size_t)w;
}

/* One block of wavelengths [l0, l1) of sbi_rt_emission_flux through all the
 * layers, each layer's optical depth, Planck function and n_mu angles in one
 * pass over the block (inlined with n_mu = 3 a constant, so that the loop
 * over angles unrolls and the loop over wavelengths vectorises).  b holds
 * the Planck function of the layer above, and of the deepest layer at the
 * end. */
RT_INLINE void emission_block(int n, int w, int l0, int l1, const double *p_bar, const double *t,
                              const float *kappa, double g, const int n_mu, const float *neg_inv_mu,
                              float nim_top, int deeper_thicker,
                              const float *restrict c1, const float *restrict hk, float *restrict b,
                              float *restrict tau, float *restrict trp, float *restrict inten)
{
    {
        const float inv_t = (float)(1.0 / t[0]);
        for (int l = l0; l < l1; ++l) b[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_t);
    }
    /* Layer by layer: vertical optical depth (trapezoid in P [dyn cm^-2],
     * constant g), then each angle's transmission and intensity. */
    for (int i = 1; i < n; ++i) {
        const float dp = (float)((p_bar[i] - p_bar[i - 1]) * SBI_RT_BAR / (2.0 * g));
        const float inv_t = (float)(1.0 / t[i]);
        const float *restrict k0 = kappa + (size_t)(i - 1) * (size_t)w, *restrict k1 = kappa + (size_t)i * (size_t)w;
        int thick = 0;
        for (int l = l0; l < l1; ++l) {
            const float tl = tau[l] + (k0[l] + k1[l]) * dp, b1 = sbi__rt_planck_f(c1[l], hk[l] * inv_t);
            const float bm = 0.5f * (b[l] + b1);
            tau[l] = tl;
            for (int a = 0; a < n_mu; ++a) {
                const float e = sbi__rt_expf(tl * neg_inv_mu[a]);
                float *restrict tr = trp + (size_t)a * (size_t)w, *restrict in = inten + (size_t)a * (size_t)w;
                in[l] += bm * (tr[l] - e);
                tr[l] = e;
            }
            b[l] = b1;
            thick += tl * nim_top < -87.0f;
        }
        /* Where every angle of every wavelength in the block is at the fast
         * exponential's floor e^-87, it stays there below (tau only grows),
         * so the deeper layers add exactly nothing but the deepest layer's
         * B_nu, which the surface term takes. */
        if (deeper_thicker && thick == l1 - l0 && i + 1 < n) {
            const float inv_tn = (float)(1.0 / t[n - 1]);
            for (int l = l0; l < l1; ++l) b[l] = sbi__rt_planck_f(c1[l], hk[l] * inv_tn);
            break;
        }
    }
}

RT_HOT void sbi_rt_emission_flux(int n, int w, const double *p_bar, const double *t, const float *kappa, double g,
                                 const double *nu, int n_mu, const double *mu, const double *w_mu, float *work,
                                 double *flux_nu)
{
    /* Blocks of RT_EMISSION_BLOCK wavelengths, each taken through all the
     * layers, so that the block's work rows stay in L1 and only kappa
     * streams from memory; the arithmetic per wavelength is the same. */
    enum { RT_EMISSION_BLOCK = 256, RT_MU_MAX = 8 };
    float *restrict c1 = work, *restrict hk = c1 + w, *restrict b = hk + w;
    float *restrict tau = b + w, *restrict trp = tau + w, *restrict inten = trp + (size_t)n_mu * (size_t)w;
    float neg_inv_mu[RT_MU_MAX];
    int increasing = g > 0; /* pressure, and so tau, grows downwards (kappa >= 0) */

    for (int i = 1; i < n; ++i)
        if (!(p_bar[i] >= p_bar[i - 1])) increasing = 0;

    for (int l = 0; l < w; ++l) {
        c1[l] = (float)(2.0 * SBI_RT_H * nu[l] * nu[l] * nu[l] / (SBI_RT_C * SBI_RT_C));
        hk[l] = (float)(SBI_RT_H * nu[l] / SBI_RT_KB);
        tau[l] = 0.0f;
    }
    for (size_t m = 0; m < (size_t)n_mu * (size_t)w; ++m) {
        trp[m] = 1.0f; /* tau_1 = 0 */
        inten[m] = 0.0f;
    }
    for (int l = 0; l < w; ++l) flux_nu[l] = 0.0;
    /* At most RT_MU_MAX angles at a time; more (beyond Gauss-Legendre's 8)
     * repeat the optical depth and Planck function per group. */
    for (int a0 = 0; a0 < n_mu; a0 += RT_MU_MAX) {
        const int na = n_mu - a0 < RT_MU_MAX ? n_mu - a0 : RT_MU_MAX;
        float nim_top = -INFINITY; /* of the largest mu, the least attenuated angle */
        for (int a = 0; a < na; ++a) {
            neg_inv_mu[a] = (float)(-1.0 / mu[a0 + a]);
            nim_top = neg_inv_mu[a] > nim_top ? neg_inv_mu[a] : nim_top;
        }
        if (a0 > 0)
            for (int l = 0; l < w; ++l) tau[l] = 0.0f;
        for (int l0 = 0; l0 < w; l0 += RT_EMISSION_BLOCK) {
            const int l1 = l0 + RT_EMISSION_BLOCK < w ? l0 + RT_EMISSION_BLOCK : w;
            float *tr = trp + (size_t)a0 * (size_t)w, *in = inten + (size_t)a0 * (size_t)w;
            if (na == 3)
                emission_block(n, w, l0, l1, p_bar, t, kappa, g, 3, neg_inv_mu, nim_top, increasing, c1, hk, b, tau,
                               tr, in);
            else
                emission_block(n, w, l0, l1, p_bar, t, kappa, g, na, neg_inv_mu, nim_top, increasing, c1, hk, b,
                               tau, tr, in);
            for (int a = 0; a < na; ++a) {
                const double c = 2.0 * SBI_RT_PI * mu[a0 + a] * w_mu[a0 + a];
                const float *tra = tr + (size_t)a * (size_t)w, *ina = in + (size_t)a * (size_t)w;
                for (int l = l0; l < l1; ++l) flux_nu[l] += c * ((double)ina[l] + (double)b[l] * (double)tra[l]);
            }
        }
    }
}
