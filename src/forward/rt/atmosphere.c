/* The atmosphere: pressure grid, temperature profiles and hydrostatic radii.
 *
 * Pressures are in bar at the interface and converted to dyn cm^-2 where the
 * physics needs cgs; layers are ordered from the top (lowest pressure) down.
 */
#include <math.h>

#include "exosbi/rt.h"

void sbi_rt_pressure_grid(int n, double p_top_bar, double p_bottom_bar, double *p_bar)
{
    const double a = log(p_top_bar), b = log(p_bottom_bar);
    if (n == 1) {
        p_bar[0] = p_top_bar;
        return;
    }
    for (int i = 0; i < n; ++i) p_bar[i] = exp(a + (b - a) * (double)i / (double)(n - 1));
    p_bar[n - 1] = p_bottom_bar;
}

void sbi_rt_temperature_guillot(int n, const double *p_bar, double kappa_ir, double gamma, double g, double t_int,
                                double t_equ, double f, double *t)
{
    const double s3 = sqrt(3.0);
    const double t_irr = sqrt(2.0) * t_equ;
    const double ti4 = t_int * t_int * t_int * t_int, tr4 = t_irr * t_irr * t_irr * t_irr;
    for (int i = 0; i < n; ++i) {
        /* The optical depth in the thermal infrared at pressure P [dyn cm^-2]. */
        const double tau = kappa_ir * p_bar[i] * SBI_RT_BAR / g;
        const double t4 = 0.75 * ti4 * (2.0 / 3.0 + tau) +
                          0.75 * tr4 * f *
                              (2.0 / 3.0 + 1.0 / (gamma * s3) + (gamma / s3 - 1.0 / (gamma * s3)) * exp(-gamma * tau * s3));
        t[i] = pow(t4, 0.25);
    }
}

/* Fritsch-Carlson slopes: harmonic-mean derivatives at the interior nodes,
 * zero where the secant slopes change sign, one-sided three-point slopes at
 * the ends limited to keep monotonicity (the PCHIP recipe of Fritsch &
 * Butland 1984, SIAM J. Sci. Stat. Comput. 5, 300). */
static double pchip_end_slope(double h0, double h1, double d0, double d1)
{
    double m = ((2.0 * h0 + h1) * d0 - h0 * d1) / (h0 + h1);
    if (m * d0 <= 0.0) return 0.0;
    if (d0 * d1 < 0.0 && fabs(m) > fabs(3.0 * d0)) return 3.0 * d0;
    return m;
}

void sbi_rt_temperature_free(int n, const double *p_bar, int k, const double *p_nodes_bar, const double *t_nodes,
                             double *t)
{
    /* Nodes in x = log10 P; at most 64 nodes (the family checks). */
    double x[64], h[64], d[64], m[64];
    for (int j = 0; j < k; ++j) x[j] = log10(p_nodes_bar[j]);
    for (int j = 0; j + 1 < k; ++j) {
        h[j] = x[j + 1] - x[j];
        d[j] = (t_nodes[j + 1] - t_nodes[j]) / h[j];
    }
    if (k == 2) {
        m[0] = m[1] = d[0];
    } else {
        m[0] = pchip_end_slope(h[0], h[1], d[0], d[1]);
        m[k - 1] = pchip_end_slope(h[k - 2], h[k - 3], d[k - 2], d[k - 3]);
        for (int j = 1; j + 1 < k; ++j) {
            if (d[j - 1] * d[j] <= 0.0) {
                m[j] = 0.0;
            } else {
                const double w1 = 2.0 * h[j] + h[j - 1], w2 = h[j] + 2.0 * h[j - 1];
                m[j] = (w1 + w2) / (w1 / d[j - 1] + w2 / d[j]);
            }
        }
    }
    for (int i = 0; i < n; ++i) {
        const double xi = log10(p_bar[i]);
        int j = 0;
        if (xi <= x[0]) {
            t[i] = t_nodes[0];
            continue;
        }
        if (xi >= x[k - 1]) {
            t[i] = t_nodes[k - 1];
            continue;
        }
        while (j + 2 < k && xi > x[j + 1]) ++j;
        {
            const double s = (xi - x[j]) / h[j], s2 = s * s, s3 = s2 * s;
            t[i] = (2 * s3 - 3 * s2 + 1) * t_nodes[j] + (s3 - 2 * s2 + s) * h[j] * m[j] +
                   (-2 * s3 + 3 * s2) * t_nodes[j + 1] + (s3 - s2) * h[j] * m[j + 1];
        }
    }
}

int sbi_rt_hydrostatic_radii(int n, const double *p_bar, const double *t, const double *mmw, double r_pl, double g0,
                             double p_ref_bar, double *r)
{
    /* u = 1/r; du/dlnP = c h with h = k T / (mu amu) [cm^2 s^-2] and
     * c = 1 / (g0 R_pl^2).  r holds the cumulative integral of h first. */
    const double c = 1.0 / (g0 * r_pl * r_pl), x_ref = log(p_ref_bar);
    double integral_ref, h_prev = SBI_RT_KB * t[0] / (mmw[0] * SBI_RT_AMU);
    int k = 0;

    r[0] = 0.0;
    for (int i = 1; i < n; ++i) {
        const double h = SBI_RT_KB * t[i] / (mmw[i] * SBI_RT_AMU);
        r[i] = r[i - 1] + 0.5 * (h + h_prev) * (log(p_bar[i]) - log(p_bar[i - 1]));
        h_prev = h;
    }
    /* The interval holding the reference pressure (the end interval when it
     * lies outside the grid, where h is extrapolated linearly in ln P). */
    while (k + 2 < n && log(p_bar[k + 1]) < x_ref) ++k;
    if (n == 1) {
        integral_ref = (x_ref - log(p_bar[0])) * SBI_RT_KB * t[0] / (mmw[0] * SBI_RT_AMU);
    } else {
        const double x0 = log(p_bar[k]), x1 = log(p_bar[k + 1]);
        const double h0 = SBI_RT_KB * t[k] / (mmw[k] * SBI_RT_AMU), h1 = SBI_RT_KB * t[k + 1] / (mmw[k + 1] * SBI_RT_AMU);
        const double href = h0 + (h1 - h0) * (x_ref - x0) / (x1 - x0);
        integral_ref = r[k] + 0.5 * (h0 + href) * (x_ref - x0);
    }
    for (int i = 0; i < n; ++i) {
        const double u = 1.0 / r_pl + c * (r[i] - integral_ref);
        if (!(u > 0.0)) return -1;
        r[i] = 1.0 / u;
    }
    return 0;
}
