/* Interpolation of tabulated opacities: bracketing, linear resampling onto
 * the model grid, CIA coefficients in temperature and wavelength, and line
 * cross sections in (P, T).  The schemes follow the source codes named in
 * include/exosbi/rt.h beside each declaration. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/core.h"
#include "exosbi/rt.h"

int sbi_rt_bracket(int n, const double *x, double v, int *i0, double *f)
{
    int lo = 0, hi = n - 1;
    if (n <= 1) {
        *i0 = 0;
        *f = 0.0;
        return n == 1 ? (v < x[0] ? -1 : v > x[0] ? 1 : 0) : 0;
    }
    if (!(v > x[0])) {
        *i0 = 0;
        *f = 0.0;
        return v < x[0] ? -1 : 0;
    }
    if (!(v < x[n - 1])) {
        *i0 = n - 2;
        *f = 1.0;
        return v > x[n - 1] ? 1 : 0;
    }
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    *i0 = lo;
    *f = (v - x[lo]) / (x[lo + 1] - x[lo]);
    return 0;
}

void sbi_rt_resample_linear(int n, const double *x_src, const double *y_src, int m, const double *x_dst,
                            double *y_dst)
{
    for (int l = 0; l < m; ++l) {
        const double v = x_dst[l];
        int j;
        double f;
        if (n < 1 || v < x_src[0] || v > x_src[n - 1]) {
            y_dst[l] = 0.0;
            continue;
        }
        sbi_rt_bracket(n, x_src, v, &j, &f);
        y_dst[l] = n == 1 ? y_src[0] : (1.0 - f) * y_src[j] + f * y_src[j + 1];
    }
}

/* ---- CIA ------------------------------------------------------------------- */

void sbi_rt_cia_free(sbi_rt_cia *cia)
{
    if (!cia) return;
    free(cia->t);
    free(cia->ln_alpha);
    free(cia->left);
    free(cia->wt);
    free(cia->wt_f);
    free(cia->run);
    free(cia->wa);
    free(cia->grp);
    free(cia->lane);
    memset(cia, 0, sizeof *cia);
}

int sbi_rt_cia_setup(int n_t, const double *t, int n_nu_all, const double *nu, const double *alpha, int w,
                     const double *lambda_um, sbi_rt_cia *cia)
{
    int j_lo = n_nu_all, j_hi = -1;

    memset(cia, 0, sizeof *cia);
    SBI_CHECK(n_t >= 1 && n_nu_all >= 1 && w >= 1, SBI_ERR_INTERNAL, "sbi_rt_cia_setup: empty table or grid");
    cia->w = w;
    cia->n_t = n_t;
    SBI_MALLOC(cia->left, w);
    SBI_MALLOC(cia->wt, w);
    /* Wavelength lambda_j = 1e4 / nu_j decreases with j, so the model
     * wavelength lambda sits between nu_j <= 1e4/lambda <= nu_{j+1}; the
     * weight is linear in wavelength, as pRT's interp1d over `lambda`. */
    for (int l = 0; l < w; ++l) {
        const double v = 1e4 / lambda_um[l];
        int j;
        double f;
        cia->left[l] = -1;
        cia->wt[l] = 0.0;
        if (n_nu_all < 2 || v < nu[0] || v > nu[n_nu_all - 1]) continue;
        sbi_rt_bracket(n_nu_all, nu, v, &j, &f);
        {
            const double lj = 1e4 / nu[j], lj1 = 1e4 / nu[j + 1];
            cia->left[l] = j;
            cia->wt[l] = (lambda_um[l] - lj) / (lj1 - lj);
        }
        if (j < j_lo) j_lo = j;
        if (j + 1 > j_hi) j_hi = j + 1;
    }
    if (j_hi < 0) j_lo = j_hi = 0;
    cia->n_nu = j_hi - j_lo + 1;
    for (int l = 0; l < w; ++l)
        if (cia->left[l] >= 0) cia->left[l] -= j_lo;
    SBI_MALLOC(cia->wt_f, w);
    SBI_MALLOC(cia->run, (size_t)3 * (size_t)w);
    /* Runs of consecutive model wavelengths between the same two table
     * points, so that the float kernel reads them once per run. */
    for (int l = 0; l < w; ++l) {
        int *last = cia->n_runs > 0 ? cia->run + 3 * (cia->n_runs - 1) : NULL;
        cia->wt_f[l] = (float)cia->wt[l];
        if (cia->left[l] < 0) continue;
        if (last && last[1] == l && last[2] == cia->left[l]) {
            last[1] = l + 1;
        } else {
            int *run = cia->run + 3 * cia->n_runs++;
            run[0] = l;
            run[1] = l + 1;
            run[2] = cia->left[l];
        }
    }
    /* Groups of eight model wavelengths [8 g, 8 g + 8): where their table
     * points left and left + 1 lie within eight consecutive ones from grp,
     * the float kernel picks both values by a permutation of those eight. */
    {
        const int n_grp = (w + 7) / 8;
        SBI_MALLOC(cia->wa, w);
        SBI_MALLOC(cia->grp, n_grp);
        SBI_CALLOC(cia->lane, (size_t)8 * (size_t)n_grp);
        for (int l = 0; l < w; ++l) cia->wa[l] = cia->left[l] < 0 ? 0.0f : 1.0f - cia->wt_f[l];
        for (int g = 0; g < n_grp; ++g) {
            int lo = INT_MAX, hi = -1;
            for (int l = 8 * g; l < 8 * g + 8 && l < w; ++l)
                if (cia->left[l] >= 0) {
                    lo = cia->left[l] < lo ? cia->left[l] : lo;
                    hi = cia->left[l] + 1 > hi ? cia->left[l] + 1 : hi;
                }
            if (hi < 0) lo = hi = 0;
            cia->grp[g] = hi - lo < 8 ? lo : -1;
            for (int l = 8 * g; l < 8 * g + 8 && l < w && cia->grp[g] >= 0; ++l)
                cia->lane[8 * g + (l - 8 * g)] = cia->left[l] >= 0 ? cia->left[l] - lo : 0;
        }
    }
    SBI_MALLOC(cia->t, n_t);
    memcpy(cia->t, t, (size_t)n_t * sizeof *t);
    SBI_MALLOC(cia->ln_alpha, (size_t)n_t * (size_t)cia->n_nu);
    for (int q = 0; q < n_t; ++q)
        for (int j = 0; j < cia->n_nu; ++j)
            cia->ln_alpha[(size_t)q * cia->n_nu + j] = log(fmax(alpha[(size_t)q * n_nu_all + j_lo + j], 1e-300));
    return SBI_OK;
}

void sbi_rt_cia_alpha(const sbi_rt_cia *cia, double t, double *work, double *alpha)
{
    int q;
    double f;
    const double *a0, *a1;
    sbi_rt_bracket(cia->n_t, cia->t, t, &q, &f);
    a0 = cia->ln_alpha + (size_t)q * cia->n_nu;
    a1 = cia->n_t > 1 ? a0 + cia->n_nu : a0;
    for (int j = 0; j < cia->n_nu; ++j) work[j] = exp((1.0 - f) * a0[j] + f * a1[j]);
    for (int l = 0; l < cia->w; ++l) {
        const int j = cia->left[l];
        alpha[l] = j < 0 ? 0.0 : (1.0 - cia->wt[l]) * work[j] + cia->wt[l] * work[j + 1];
    }
}

/* ---- line tables ------------------------------------------------------------ */

int sbi_rt_line_table_init(sbi_rt_pt_scheme scheme, int n_p, const double *p_bar, int n_t, const double *t, int w,
                           sbi_rt_line_table *tab)
{
    memset(tab, 0, sizeof *tab);
    SBI_CHECK(n_p >= 1 && n_t >= 1 && w >= 1, SBI_ERR_INTERNAL, "sbi_rt_line_table_init: empty grid");
    tab->scheme = scheme;
    tab->n_p = n_p;
    tab->n_t = n_t;
    tab->w = w;
    SBI_MALLOC(tab->p, n_p);
    SBI_MALLOC(tab->t, n_t);
    SBI_CALLOC(tab->sigma, (size_t)n_p * (size_t)n_t * (size_t)w);
    for (int i = 0; i < n_p; ++i) tab->p[i] = scheme == SBI_RT_PT_TAUREX ? log10(p_bar[i]) : p_bar[i];
    memcpy(tab->t, t, (size_t)n_t * sizeof *t);
    return SBI_OK;
}

void sbi_rt_line_table_free(sbi_rt_line_table *tab)
{
    if (!tab) return;
    free(tab->p);
    free(tab->t);
    free(tab->sigma);
    memset(tab, 0, sizeof *tab);
}

void sbi_rt_line_weights(const sbi_rt_line_table *tab, double p_bar, double t, int row[4], double wt[4])
{
    const double pv = tab->scheme == SBI_RT_PT_TAUREX ? log10(p_bar) : p_bar;
    int ip, it;
    double fp, ft;
    const int below_p = sbi_rt_bracket(tab->n_p, tab->p, pv, &ip, &fp) < 0;
    const int below_t = sbi_rt_bracket(tab->n_t, tab->t, t, &it, &ft) < 0;
    const int ip1 = tab->n_p > 1 ? ip + 1 : ip, it1 = tab->n_t > 1 ? it + 1 : it;
    row[0] = ip * tab->n_t + it;
    row[1] = ip * tab->n_t + it1;
    row[2] = ip1 * tab->n_t + it;
    row[3] = ip1 * tab->n_t + it1;
    wt[0] = (1.0 - fp) * (1.0 - ft);
    wt[1] = (1.0 - fp) * ft;
    wt[2] = fp * (1.0 - ft);
    wt[3] = fp * ft;
    if (tab->scheme == SBI_RT_PT_TAUREX && below_p && below_t) wt[0] = wt[1] = wt[2] = wt[3] = 0.0;
}

void sbi_rt_line_add(const sbi_rt_line_table *tab, double p_bar, double t, double c, double *out)
{
    int row[4];
    double wt[4];
    const size_t w = (size_t)tab->w;
    const float *s0, *s1, *s2, *s3;
    double c0, c1, c2, c3;
    sbi_rt_line_weights(tab, p_bar, t, row, wt);
    s0 = tab->sigma + (size_t)row[0] * w;
    s1 = tab->sigma + (size_t)row[1] * w;
    s2 = tab->sigma + (size_t)row[2] * w;
    s3 = tab->sigma + (size_t)row[3] * w;
    c0 = c * wt[0];
    c1 = c * wt[1];
    c2 = c * wt[2];
    c3 = c * wt[3];
    for (size_t l = 0; l < w; ++l) out[l] += c0 * s0[l] + c1 * s1[l] + c2 * s2[l] + c3 * s3[l];
}
