/* The instrument: Gaussian line-spread convolution at a resolving power and
 * flux-conserving binning of the model spectrum onto a dataset's bins.
 */
#include <math.h>
#include <stdlib.h>

#include "exosbi/core.h"
#include "exosbi/rt.h"

/* The convolution's interior loop is vectorised by the full loop vectoriser
 * (-O2 takes only loops whose trip count the vector width divides). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/* out[l] for the model points whose window the grid edge cuts: the kernel
 * over the points that exist, renormalised. */
static void convolve_edge(int w, int h, const double *kern, const double *in, int l, double *out)
{
    const int k0 = l - h < 0 ? -l : -h, k1 = l + h >= w ? w - 1 - l : h;
    double s = 0.0, norm = 0.0;
    for (int k = k0; k <= k1; ++k) {
        s += kern[k + h] * in[l + k];
        norm += kern[k + h];
    }
    out[l] = s / norm;
}

void sbi_rt_convolve(int w, double dlnl, double resolution, const double *restrict in, double *restrict out)
{
    enum { CHUNK = 256 };
    const double sigma = (1.0 / resolution) / (2.0 * sqrt(2.0 * log(2.0))) / dlnl; /* [pixels] */
    const int half = (int)ceil(4.0 * sigma);
    double kern[513], norm = 0.0;
    int h = half > 256 ? 256 : half;

    if (sigma < 0.05) {
        for (int l = 0; l < w; ++l) out[l] = in[l];
        return;
    }
    for (int k = -h; k <= h; ++k) kern[k + h] = exp(-0.5 * (k / sigma) * (k / sigma));
    if (2 * h >= w) {
        for (int l = 0; l < w; ++l) convolve_edge(w, h, kern, in, l, out);
        return;
    }
    for (int k = -h; k <= h; ++k) norm += kern[k + h];
    for (int l = 0; l < h; ++l) convolve_edge(w, h, kern, in, l, out);
    for (int l = w - h; l < w; ++l) convolve_edge(w, h, kern, in, l, out);
    /* The interior, where every window is whole: tap by tap over a chunk of
     * points (a vectorised loop), each point summing its taps in the same
     * order as at the edges, and the one normalisation. */
    for (int c0 = h; c0 < w - h; c0 += CHUNK) {
        const int c1 = c0 + CHUNK < w - h ? c0 + CHUNK : w - h;
        for (int l = c0; l < c1; ++l) out[l] = 0.0;
        for (int k = -h; k <= h; ++k) {
            const double kk = kern[k + h];
            const double *src = in + k;
            for (int l = c0; l < c1; ++l) out[l] += kk * src[l];
        }
        for (int l = c0; l < c1; ++l) out[l] /= norm;
    }
}

int sbi_rt_binning_create(int w, const double *lambda, int b, const double *lo, const double *hi,
                          sbi_rt_binning *bin)
{
    int64_t nnz = 0;
    int k = 0;

    bin->n_bins = b;
    bin->row = NULL;
    bin->col = NULL;
    bin->weight = NULL;
    for (int i = 0; i < b; ++i) {
        SBI_CHECK(lo[i] < hi[i], SBI_ERR_INPUT, "bin %d: empty or reversed, [%.9g, %.9g] um", i, lo[i], hi[i]);
        SBI_CHECK(lo[i] >= lambda[0] && hi[i] <= lambda[w - 1], SBI_ERR_INPUT,
                  "bin %d: [%.9g, %.9g] um reaches outside the model grid [%.9g, %.9g] um", i, lo[i], hi[i],
                  lambda[0], lambda[w - 1]);
    }
    /* Each bin touches the model points from the one at or below lo to the
     * one at or above hi. */
    SBI_MALLOC(bin->row, b + 1);
    bin->row[0] = 0;
    for (int i = 0; i < b; ++i) {
        int a = 0, z = w - 1;
        while (a + 1 < w && lambda[a + 1] <= lo[i]) ++a;
        while (z - 1 >= 0 && lambda[z - 1] >= hi[i]) --z;
        nnz += z - a + 1;
        bin->row[i + 1] = nnz;
    }
    SBI_MALLOC(bin->col, nnz);
    SBI_MALLOC(bin->weight, nnz);
    for (int i = 0; i < b; ++i) {
        const int64_t r0 = bin->row[i];
        const double width = hi[i] - lo[i];
        int a = 0;
        while (a + 1 < w && lambda[a + 1] <= lo[i]) ++a;
        for (int64_t q = r0; q < bin->row[i + 1]; ++q) {
            bin->col[q] = a + (int)(q - r0);
            bin->weight[q] = 0.0;
        }
        /* The exact integral of the linear interpolant over each model
         * segment's overlap with the bin, split between its two ends. */
        for (k = a; k + 1 < w && lambda[k] < hi[i]; ++k) {
            const double x0 = fmax(lo[i], lambda[k]), x1 = fmin(hi[i], lambda[k + 1]);
            const double h = lambda[k + 1] - lambda[k];
            double s0, s1;
            if (x1 <= x0) continue;
            s0 = (x0 - lambda[k]) / h;
            s1 = (x1 - lambda[k]) / h;
            bin->weight[r0 + (k - a)] += 0.5 * (x1 - x0) * ((1.0 - s0) + (1.0 - s1)) / width;
            bin->weight[r0 + (k + 1 - a)] += 0.5 * (x1 - x0) * (s0 + s1) / width;
        }
    }
    return SBI_OK;
}

void sbi_rt_binning_apply(const sbi_rt_binning *bin, const double *model, double *out)
{
    for (int i = 0; i < bin->n_bins; ++i) {
        double s = 0.0;
        for (int64_t q = bin->row[i]; q < bin->row[i + 1]; ++q) s += bin->weight[q] * model[bin->col[q]];
        out[i] = s;
    }
}

void sbi_rt_binning_destroy(sbi_rt_binning *bin)
{
    if (!bin) return;
    free(bin->row);
    free(bin->col);
    free(bin->weight);
    bin->row = NULL;
    bin->col = NULL;
    bin->weight = NULL;
}
