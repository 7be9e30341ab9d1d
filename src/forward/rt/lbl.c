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
#include <string.h>

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

/* Each layer's four rows of tab and their weights, coef (N, 4) and row
 * (N, 4), and slot (n_p n_t) a place in the block sums for each row some
 * layer uses (-1: none). */
RT_INLINE void summed_weights(const sbi_rt_line_table *tab, int n, const double *p_bar, const double *t,
                              float *coef, int *row, int *slot)
{
    const int n_rows = tab->n_p * tab->n_t;
    int n_used = 0;
    for (int r = 0; r < n_rows; ++r) slot[r] = -1;
    for (int i = 0; i < n; ++i) {
        double wt[4];
        sbi_rt_line_weights(tab, p_bar[i], t[i], row + 4 * i, wt);
        for (int q = 0; q < 4; ++q) {
            coef[4 * i + q] = (float)wt[q];
            if (slot[row[4 * i + q]] < 0) slot[row[4 * i + q]] = n_used++;
        }
    }
}

/* sum (slots, nb): the species' sum of each used row over [l0, l0 + nb). */
RT_INLINE void summed_rows(int n_tabs, const sbi_rt_line_table *const *tabs, const double *c, const int *slot,
                           int l0, int nb, float *sum)
{
    const int w = tabs[0]->w, n_rows = tabs[0]->n_p * tabs[0]->n_t;
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
}

/* out (nb) = scale (out + c . s): add_rows with alpha = kappa rho taken in
 * the same pass. */
__attribute__((noinline)) RT_HOT static void add_rows_scaled(int nb, const float *restrict s0,
                                                             const float *restrict s1, const float *restrict s2,
                                                             const float *restrict s3, const float *c, float scale,
                                                             float *restrict out)
{
    const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    for (int l = 0; l < nb; ++l) out[l] = scale * (out[l] + (c0 * s0[l] + c1 * s1[l] + c2 * s2[l] + c3 * s3[l]));
}

/* out (nb) += layer i's four summed rows. */
RT_INLINE void summed_add(int nb, const float *sum, const int *row, const int *slot, const float *coef, float *out)
{
    add_rows(nb, sum + (size_t)slot[row[0]] * (size_t)nb, sum + (size_t)slot[row[1]] * (size_t)nb,
             sum + (size_t)slot[row[2]] * (size_t)nb, sum + (size_t)slot[row[3]] * (size_t)nb, coef, out);
}

RT_HOT void sbi_rt_lines_add_summed(int n_tabs, const sbi_rt_line_table *const *tabs, const double *c, int n,
                                    const double *p_bar, const double *t, int blk, float *work, int *iwork,
                                    float *kappa)
{
    const int w = tabs[0]->w;
    float *coef = work, *sum = work + 4 * (size_t)n;
    int *row = iwork, *slot = iwork + 4 * (size_t)n;

    if (n_tabs <= 0) return;
    if (blk <= 0) blk = w;
    summed_weights(tabs[0], n, p_bar, t, coef, row, slot);
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int nb = l0 + blk < w ? blk : w - l0;
        /* The species' sum of each used row over the block, then four rows
         * per layer. */
        summed_rows(n_tabs, tabs, c, slot, l0, nb, sum);
        for (int i = 0; i < n; ++i)
            summed_add(nb, sum, row + 4 * i, slot, coef + 4 * i, kappa + (size_t)i * (size_t)w + (size_t)l0);
    }
}

/* ---- the opacity of one block --------------------------------------------------- */

int sbi_rt_lbl_opacity_init(int n, int w, int blk, int n_tabs, const sbi_rt_line_table *const *tabs, int n_cia,
                            const sbi_rt_cia *const *cia, sbi_rt_lbl_opacity *op)
{
    memset(op, 0, sizeof *op);
    SBI_CHECK(n >= 1 && w >= 1 && n_tabs >= 0 && n_tabs <= 64 && n_cia >= 0, SBI_ERR_INTERNAL,
              "sbi_rt_lbl_opacity_init: %d layers, %d wavelengths, %d line tables, %d CIA tables", n, w, n_tabs,
              n_cia);
    if (blk <= 0 || blk > w) blk = w;
    op->n = n;
    op->w = w;
    op->blk = blk;
    op->n_tabs = n_tabs;
    op->n_cia = n_cia;
    SBI_MALLOC(op->tabs, n_tabs > 0 ? n_tabs : 1);
    SBI_MALLOC(op->c, n_tabs > 0 ? n_tabs : 1);
    for (int k = 0; k < n_tabs; ++k) {
        SBI_CHECK(tabs[k]->w == w, SBI_ERR_INTERNAL, "sbi_rt_lbl_opacity_init: line table %d has %d wavelengths", k,
                  tabs[k]->w);
        op->tabs[k] = tabs[k];
    }
    op->summed = n_tabs > 1;
    for (int k = 1; k < n_tabs; ++k)
        if (!sbi_rt_line_tables_same_grid(tabs[0], tabs[k])) op->summed = 0;
    if (op->summed) {
        const size_t n_rows = (size_t)tabs[0]->n_p * (size_t)tabs[0]->n_t;
        SBI_MALLOC(op->coef, 4 * (size_t)n);
        SBI_MALLOC(op->row, 4 * (size_t)n);
        SBI_MALLOC(op->slot, n_rows);
        SBI_MALLOC(op->sum, n_rows * (size_t)blk);
    } else if (n_tabs > 0) {
        SBI_MALLOC(op->rows, 4 * (size_t)n * (size_t)n_tabs);
        SBI_MALLOC(op->coef, 4 * (size_t)n * (size_t)n_tabs);
    }
    SBI_MALLOC(op->cia, n_cia > 0 ? n_cia : 1);
    SBI_MALLOC(op->cia_set, n_cia > 0 ? n_cia : 1);
    SBI_MALLOC(op->set_tab, n_cia > 0 ? n_cia : 1);
    op->cia_stride = 0;
    op->n_sets = 0;
    for (int c = 0; c < n_cia; ++c) {
        int set = 0;
        SBI_CHECK(cia[c]->w == w, SBI_ERR_INTERNAL, "sbi_rt_lbl_opacity_init: CIA table %d has %d wavelengths", c,
                  cia[c]->w);
        op->cia[c] = cia[c];
        if ((size_t)cia[c]->n_nu > op->cia_stride) op->cia_stride = (size_t)cia[c]->n_nu;
        /* Tables on the same wavenumber grid are summed at its points and
         * interpolated once. */
        while (set < op->n_sets && !sbi_rt_cia_same_grid(cia[op->set_tab[set]], cia[c])) ++set;
        if (set == op->n_sets) op->set_tab[op->n_sets++] = c;
        op->cia_set[c] = set;
    }
    op->cia_stride += 8; /* the kernel reads eight values from each group's first */
    SBI_CALLOC(op->cia_val, (size_t)(op->n_sets > 0 ? op->n_sets : 1) * (size_t)n * op->cia_stride);
    SBI_MALLOC(op->cia_tmp, op->cia_stride);
    SBI_MALLOC(op->kblk, (size_t)n * (size_t)blk);
    SBI_MALLOC(op->tau, (size_t)n * (size_t)blk);
    return SBI_OK;
}

void sbi_rt_lbl_opacity_free(sbi_rt_lbl_opacity *op)
{
    if (!op) return;
    free(op->tabs);
    free(op->c);
    free(op->rows);
    free(op->coef);
    free(op->row);
    free(op->slot);
    free(op->sum);
    free(op->cia);
    free(op->cia_set);
    free(op->set_tab);
    free(op->cia_val);
    free(op->cia_tmp);
    free(op->kblk);
    free(op->tau);
    memset(op, 0, sizeof *op);
}

void sbi_rt_lbl_opacity_prepare(sbi_rt_lbl_opacity *op, const double *c, const double *p_bar, const double *t,
                                const double *cia_scale)
{
    const int n = op->n, n_tabs = op->n_tabs;
    for (int k = 0; k < n_tabs; ++k) op->c[k] = c[k];
    if (op->summed) {
        summed_weights(op->tabs[0], n, p_bar, t, op->coef, op->row, op->slot);
    } else {
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n_tabs; ++k) {
                const size_t at = ((size_t)i * (size_t)n_tabs + (size_t)k) * 4;
                sbi_rt_line_terms(op->tabs[k], p_bar[i], t[i], c[k], op->rows + at, op->coef + at);
            }
    }
    /* Each grid's sum of sc alpha / max alpha at its points, layer by layer
     * (zero where no table adds anything). */
    for (size_t m = 0; m < (size_t)op->n_sets * (size_t)n; ++m) {
        float *restrict v = op->cia_val + m * op->cia_stride;
        for (size_t j = 0; j < op->cia_stride; ++j) v[j] = 0.0f;
    }
    for (int q = 0; q < op->n_cia; ++q)
        for (int i = 0; i < n; ++i) {
            const double scale = cia_scale[(size_t)q * (size_t)n + (size_t)i];
            float *restrict v = op->cia_val + ((size_t)op->cia_set[q] * (size_t)n + (size_t)i) * op->cia_stride;
            const float *restrict tmp = op->cia_tmp;
            const int n_nu = op->cia[q]->n_nu;
            const float sc = scale > 0 ? sbi_rt_cia_values(op->cia[q], t[i], scale, op->cia_tmp) : 0.0f;
            if (!(sc > 0)) continue;
            for (int j = 0; j < n_nu; ++j) v[j] += sc * tmp[j];
        }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
typedef float rt_v8f __attribute__((vector_size(32)));
typedef int rt_v8i __attribute__((vector_size(32)));
#define RT_CIA_GROUPS 1
#else
#define RT_CIA_GROUPS 0
#endif

/* out (l1 - l0) = in + the CIA of one grid over [l0, l1) from its values
 * v at the table points (in and out may be the same); the weights and runs
 * are cia's.  Eight model wavelengths at a time, where their table points
 * lie within eight consecutive ones (cia->grp, cia->lane): both values by a
 * permutation of those eight, no short loops over runs, no gathers. */
RT_INLINE void cia_block(const sbi_rt_cia *cia, const float *v, const float *in, int l0, int l1, float *out)
{
    const int *left = cia->left;
    const float *wa = cia->wa, *wb = cia->wt_f;
    int l = l0;
#if RT_CIA_GROUPS
    for (; l < l1 && (l & 7); ++l) {
        const int j = left[l] < 0 ? 0 : left[l];
        out[l - l0] = in[l - l0] + (wa[l] * v[j] + wb[l] * v[j + 1]);
    }
    for (; l + 8 <= l1; l += 8) {
        const int g = l / 8, jb = cia->grp[g];
        if (jb >= 0) {
            rt_v8f x, a, b, o;
            rt_v8i ia;
            memcpy(&x, v + jb, sizeof x);
            memcpy(&ia, cia->lane + 8 * (size_t)g, sizeof ia);
            memcpy(&a, wa + l, sizeof a);
            memcpy(&b, wb + l, sizeof b);
            memcpy(&o, in + (l - l0), sizeof o);
            o += a * __builtin_shuffle(x, ia) + b * __builtin_shuffle(x, ia + 1);
            memcpy(out + (l - l0), &o, sizeof o);
        } else {
            for (int q = l; q < l + 8; ++q) {
                const int j = left[q] < 0 ? 0 : left[q];
                out[q - l0] = in[q - l0] + (wa[q] * v[j] + wb[q] * v[j + 1]);
            }
        }
    }
#endif
    /* Outside the table wa = wb = 0 (and v[0], v[1] are finite). */
    for (; l < l1; ++l) {
        const int j = left[l] < 0 ? 0 : left[l];
        out[l - l0] = in[l - l0] + (wa[l] * v[j] + wb[l] * v[j + 1]);
    }
}

RT_HOT void sbi_rt_lbl_opacity_block(sbi_rt_lbl_opacity *op, const float *base, size_t base_stride, const double *rho,
                                     int l0, int l1, int n_rows, float *kappa, size_t ld)
{
    const int n = op->n, nb = l1 - l0;
    if (op->summed) summed_rows(op->n_tabs, op->tabs, op->c, op->slot, l0, nb, op->sum);
    for (int i = 0; i < n_rows; ++i) {
        float *restrict k = kappa + (size_t)i * ld;
        const float *restrict bi = base + (size_t)i * base_stride + (size_t)l0;
        if (op->n_sets == 0)
            for (int l = 0; l < nb; ++l) k[l] = bi[l];
        for (int set = 0; set < op->n_sets; ++set)
            cia_block(op->cia[op->set_tab[set]], op->cia_val + ((size_t)set * (size_t)n + (size_t)i) * op->cia_stride,
                      set == 0 ? bi : k, l0, l1, k);
        if (op->summed && rho) {
            const int *ri = op->row + 4 * i, *slot = op->slot;
            const float *sum = op->sum;
            add_rows_scaled(nb, sum + (size_t)slot[ri[0]] * (size_t)nb, sum + (size_t)slot[ri[1]] * (size_t)nb,
                            sum + (size_t)slot[ri[2]] * (size_t)nb, sum + (size_t)slot[ri[3]] * (size_t)nb,
                            op->coef + 4 * i, (float)rho[i], k);
            continue;
        }
        if (op->summed)
            summed_add(nb, op->sum, op->row + 4 * i, op->slot, op->coef + 4 * i, k);
        else if (op->n_tabs > 0)
            sbi_rt_lines_add_block(op->n_tabs, op->rows + (size_t)i * (size_t)op->n_tabs * 4,
                                   op->coef + (size_t)i * (size_t)op->n_tabs * 4, l0, l1, k);
        if (rho) {
            const float ri = (float)rho[i];
            for (int l = 0; l < nb; ++l) k[l] *= ri;
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
    for (int i = 0; i < n && !(deck_from >= 0 && i >= deck_from); ++i) {
        const float *restrict k = kappa + (size_t)i * (size_t)w + (size_t)l0;
        float *restrict a = tau + (size_t)i * (size_t)nb;
        const double ri = rho[i];
        for (int l = 0; l < nb; ++l) a[l] = (float)(k[l] * ri);
    }
    return sbi_rt_chord_tau_alpha(n, nb, m, deck_from, deck_alpha, tau);
}

RT_HOT int sbi_rt_chord_tau_alpha(int n, int nb, const float *m, int deck_from, float deck_alpha, float *tau)
{
    int n_open;
    for (int i = deck_from >= 0 ? deck_from : n; i < n; ++i) {
        float *restrict a = tau + (size_t)i * (size_t)nb;
        for (int l = 0; l < nb; ++l) a[l] = deck_alpha;
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
    /* R_T^2 = r_N^2 + sum_i [A_{i-1} r_{i-1} + A_i r_i] (r_{i-1} - r_i) as
     * a constant and one term per ray, A_i w_i with
     * w_i = r_i (r_{i-1} - r_{i+1}) (r_i in place of r_{-1} and r_N), so
     * that each ray's absorbed fraction is added as soon as it is taken.
     * The rays from n_open on absorb 1, and so does a ray opaque at every
     * wavelength of the block (tau > 18: e^-tau below half a float ulp of
     * 1), without the exponentials: theirs go into the constant. */
    double deep = r[n - 1] * r[n - 1];
    for (int i = n - 1; i > n_open; --i) deep += (r[i - 1] + r[i]) * (r[i - 1] - r[i]);
    if (n_open > 0 && n_open < n) deep += r[n_open] * (r[n_open - 1] - r[n_open]);
    for (int l = 0; l < nb; ++l) rt2[l] = 0.0;
    for (int i = 0; i < n_open; ++i) {
        const float *restrict a = tau + (size_t)i * (size_t)nb;
        const double wi = r[i] * ((i > 0 ? r[i - 1] : r[i]) - (i + 1 < n ? r[i + 1] : r[i]));
        int opaque = 0;
        for (int l = 0; l < nb; ++l) opaque += a[l] > 18.0f;
        if (opaque == nb)
            deep += wi;
        else
            for (int l = 0; l < nb; ++l) rt2[l] += wi * (double)sbi__rt_absorbed(a[l]);
    }
    for (int l = 0; l < nb; ++l) rt2[l] += deep;
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

void sbi_rt_transit_radius2_lbl(sbi_rt_lbl_opacity *op, const float *base, size_t base_stride, const float *m,
                                const double *rho, int deck_from, float deck_alpha, const double *r, double *rt2,
                                double *rt2_clear)
{
    const int n = op->n, w = op->w, blk = op->blk;
    const int n_rows = rt2_clear || deck_from < 0 || deck_from > n ? n : deck_from;
    for (int l0 = 0; l0 < w; l0 += blk) {
        const int l1 = l0 + blk < w ? l0 + blk : w, nb = l1 - l0;
        const size_t rows = (size_t)n_rows * (size_t)nb;
        int n_open;
        /* alpha of the block; with two passes kept apart from the product,
         * which overwrites it. */
        sbi_rt_lbl_opacity_block(op, base, base_stride, rho, l0, l1, n_rows, rt2_clear ? op->kblk : op->tau,
                                 (size_t)nb);
        if (rt2_clear) {
            memcpy(op->tau, op->kblk, rows * sizeof *op->tau);
            n_open = sbi_rt_chord_tau_alpha(n, nb, m, -1, deck_alpha, op->tau);
            sbi_rt_transit_block(n, n_open, nb, op->tau, r, rt2_clear + l0);
            memcpy(op->tau, op->kblk, rows * sizeof *op->tau);
        }
        n_open = sbi_rt_chord_tau_alpha(n, nb, m, deck_from, deck_alpha, op->tau);
        sbi_rt_transit_block(n, n_open, nb, op->tau, r, rt2 + l0);
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
 * over angles unrolls and the loop over wavelengths vectorises); k2 (n_mu)
 * is log2 e / mu_a, nim_top -1 / the largest mu.  b holds the Planck
 * function of the layer above, and of the deepest layer at the end. */
RT_INLINE void emission_block(int n, int w, int l0, int l1, const double *p_bar, const double *t,
                              const float *kappa, double g, const int n_mu, const float *k2,
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
                const float e = sbi__rt_exp2_neg(tl * k2[a]);
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
    float k2[RT_MU_MAX]; /* log2 e / mu: exp(-tau / mu) = 2^-(tau k2) */
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
            const float neg_inv_mu = (float)(-1.0 / mu[a0 + a]);
            k2[a] = -neg_inv_mu * SBI__RT_LOG2E;
            nim_top = neg_inv_mu > nim_top ? neg_inv_mu : nim_top;
        }
        if (a0 > 0)
            for (int l = 0; l < w; ++l) tau[l] = 0.0f;
        for (int l0 = 0; l0 < w; l0 += RT_EMISSION_BLOCK) {
            const int l1 = l0 + RT_EMISSION_BLOCK < w ? l0 + RT_EMISSION_BLOCK : w;
            float *tr = trp + (size_t)a0 * (size_t)w, *in = inten + (size_t)a0 * (size_t)w;
            if (na == 3)
                emission_block(n, w, l0, l1, p_bar, t, kappa, g, 3, k2, nim_top, increasing, c1, hk, b, tau,
                               tr, in);
            else
                emission_block(n, w, l0, l1, p_bar, t, kappa, g, na, k2, nim_top, increasing, c1, hk, b,
                               tau, tr, in);
            for (int a = 0; a < na; ++a) {
                const double c = 2.0 * SBI_RT_PI * mu[a0 + a] * w_mu[a0 + a];
                const float *tra = tr + (size_t)a * (size_t)w, *ina = in + (size_t)a * (size_t)w;
                for (int l = l0; l < l1; ++l) flux_nu[l] += c * ((double)ina[l] + (double)b[l] * (double)tra[l]);
            }
        }
    }
}
