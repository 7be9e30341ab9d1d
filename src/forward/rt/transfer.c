/* Radiative transfer: the chord optical depths and transit radius of a
 * transmission spectrum, and the no-scattering emergent flux of an emission
 * spectrum (petitRADTRANS `compute_transit_radii`, `compute_ck_flux`).
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "exosbi/core.h"
#include "exosbi/rt.h"

void sbi_rt_chord_matrix(int n, const double *r, float *m)
{
    memset(m, 0, (size_t)n * (size_t)n * sizeof *m);
    for (int i = 1; i < n; ++i) {
        const double ri2 = r[i] * r[i];
        double s_hi = sqrt(r[0] * r[0] - ri2);
        for (int j = 0; j < i; ++j) {
            /* Half chord between the radii of layers j and j+1 at impact
             * parameter r_i; the trapezoid weights both layers' alpha. */
            const double s_lo = j + 1 == i ? 0.0 : sqrt(r[j + 1] * r[j + 1] - ri2);
            const float ds = (float)(s_hi - s_lo);
            m[(size_t)i * (size_t)n + (size_t)j] += ds;
            m[(size_t)i * (size_t)n + (size_t)j + 1] += ds;
            s_hi = s_lo;
        }
    }
}

void sbi_rt_transit_radius2(int n, int w, const float *m, const float *alpha, const double *r, float *tau,
                            double *rt2)
{
    /* One g-point of weight 1: the chord product (a triangular matrix
     * product) and the absorbed fraction 1 - exp(-tau), kept accurate for
     * small tau, integrated over radius (src/forward/rt/ck.c). */
    const float one = 1.0f;
    sbi_rt_chord_tau(n, w, m, alpha, tau);
    sbi_rt_transit_from_tau(n, w, 1, &one, tau, r, rt2);
}

int sbi_rt_gauss_legendre01(int n_mu, double *mu, double *w)
{
    /* Nodes of P_n by Newton iteration from Tricomi's initial guess, mapped
     * from [-1, 1] to [0, 1]. */
    SBI_CHECK(n_mu >= 1 && n_mu <= 8, SBI_ERR_INPUT, "Gauss-Legendre angles: %d requested, 1 to 8 supported", n_mu);
    for (int i = 0; i < n_mu; ++i) {
        double x = cos(SBI_RT_PI * (i + 0.75) / (n_mu + 0.5)), dp = 1.0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1.0, p1 = x;
            for (int k = 2; k <= n_mu; ++k) {
                const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            dp = n_mu * (x * p1 - p0) / (x * x - 1.0);
            {
                const double dx = p1 / dp;
                x -= dx;
                if (fabs(dx) < 1e-16) break;
            }
        }
        mu[n_mu - 1 - i] = 0.5 * (1.0 + x);
        w[n_mu - 1 - i] = 1.0 / ((1.0 - x * x) * dp * dp);
    }
    return SBI_OK;
}
