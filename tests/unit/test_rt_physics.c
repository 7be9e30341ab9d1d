/* Radiative-transfer kernels against analytic limits: gray and Rayleigh
 * transit radii, isothermal emission, continuum cross sections, hydrostatic
 * radii against a direct integration, the Guillot profile against the
 * petitRADTRANS reference (argv[1]), binning and convolution; and the
 * blocked line-by-line kernels against the plain ones they replace. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rt.h"
#include "testutil.h"
#include "../../src/forward/rt/rt_fastmath.h"

/* Isothermal column: returns the radii (N) and chord matrix for temperature t,
 * mean molar mass mu [amu], g0 at r_pl, anchored at 10 bar. */
static void isothermal_column(int n, double p_top, double p_bot, double t, double mu, double r_pl, double g0,
                              double *p, double *tt, double *mm, double *r, float *chord)
{
    sbi_rt_pressure_grid(n, p_top, p_bot, p);
    for (int i = 0; i < n; ++i) {
        tt[i] = t;
        mm[i] = mu;
    }
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(n, p, tt, mm, r_pl, g0, 10.0, r), 0);
    sbi_rt_chord_matrix(n, r, chord);
}

/* The scale height at radius r with g(r) = g0 (R_pl / r)^2. */
static double scale_height(double t, double mu, double g0, double r_pl, double r)
{
    return SBI_RT_KB * t / (mu * SBI_RT_AMU * g0 * (r_pl / r) * (r_pl / r));
}

static void test_gray_transit(void)
{
    enum { N = 400, W = 2 };
    static double p[N], t[N], mm[N], r[N], rt2[W];
    static float chord[N * N], alpha[N * W], tau[N * W];
    const double temp = 500.0, mu = 2.33, r_pl = SBI_RT_R_JUP, g0 = 3000.0, kap[W] = {0.01, 1.0};

    isothermal_column(N, 1e-12, 1e3, temp, mu, r_pl, g0, p, t, mm, r, chord);
    for (int i = 0; i < N; ++i) {
        const double rho = mu * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * temp);
        for (int l = 0; l < W; ++l) alpha[i * W + l] = (float)(kap[l] * rho);
    }
    sbi_rt_transit_radius2(N, W, chord, alpha, r, tau, rt2);
    {
        const double r1 = sqrt(rt2[0]), r2 = sqrt(rt2[1]);
        const double h = scale_height(temp, mu, g0, r_pl, 0.5 * (r1 + r2));
        SBI_ASSERT_NEAR(r2 - r1, h * log(kap[1] / kap[0]), 5e-3, 0);
    }
}

static void test_rayleigh_slope(void)
{
    enum { N = 400, W = 2 };
    static double p[N], t[N], mm[N], r[N], rt2[W];
    static float chord[N * N], alpha[N * W], tau[N * W];
    const double temp = 800.0, mu = SBI_RT_MASS_H2, r_pl = SBI_RT_R_JUP, g0 = 2000.0;
    const double l0 = 2.0, dlnl = 0.02, lam[W] = {l0 * exp(-0.5 * dlnl), l0 * exp(0.5 * dlnl)};
    double slope_sigma;

    isothermal_column(N, 1e-12, 1e3, temp, mu, r_pl, g0, p, t, mm, r, chord);
    for (int i = 0; i < N; ++i) {
        const double rho = mu * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * temp);
        for (int l = 0; l < W; ++l)
            alpha[i * W + l] = (float)(sbi_rt_sigma_rayleigh_h2(lam[l]) / (SBI_RT_MASS_H2 * SBI_RT_AMU) * rho);
    }
    sbi_rt_transit_radius2(N, W, chord, alpha, r, tau, rt2);
    slope_sigma = log(sbi_rt_sigma_rayleigh_h2(lam[1]) / sbi_rt_sigma_rayleigh_h2(lam[0])) / dlnl;
    {
        const double r1 = sqrt(rt2[0]), r2 = sqrt(rt2[1]);
        const double h = scale_height(temp, mu, g0, r_pl, 0.5 * (r1 + r2));
        const double slope = (r2 - r1) / dlnl;
        SBI_ASSERT_NEAR(slope, h * slope_sigma, 5e-3, 0);
        SBI_ASSERT_NEAR(slope, -4.0 * h, 1e-2, 0);
    }
}

static void test_isothermal_emission(void)
{
    enum { N = 60, W = 5 };
    static double p[N], t[N], flux[W], nu[W], mu[3], wmu[3];
    static float kappa[N * W], work[(5 + 2 * 3) * W];
    sbi_rt_pressure_grid(N, 1e-6, 100.0, p);
    SBI_ASSERT_OK(sbi_rt_gauss_legendre01(3, mu, wmu));
    SBI_ASSERT_NEAR(mu[0], 0.1127016654, 1e-9, 0);
    SBI_ASSERT_NEAR(wmu[1], 0.4444444444, 1e-9, 0);
    for (int i = 0; i < N; ++i) t[i] = 1234.5;
    for (int l = 0; l < W; ++l) nu[l] = SBI_RT_C * 1e4 / (0.5 + l);
    for (int i = 0; i < N; ++i)
        for (int l = 0; l < W; ++l) kappa[i * W + l] = (float)(1e-3 * pow(10.0, l) * (1.0 + 0.5 * sin(i)));
    sbi_rt_emission_flux(N, W, p, t, kappa, 3000.0, nu, 3, mu, wmu, work, flux);
    /* The formal solution telescopes to B exactly; in float (B_nu from a
     * float exponential, intensities summed over 60 layers) that leaves a
     * few float roundings, well inside 1e-5. */
    SBI_ASSERT(sbi_rt_emission_work(W, 3) <= sizeof work / sizeof *work);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(flux[l], SBI_RT_PI * sbi_rt_planck_nu(nu[l], 1234.5), 1e-5, 0);
}

static void test_cross_sections(void)
{
    /* Wavelengths [um] at which the formulas are tabulated in the sources. */
    static const double lam[] = {0.2, 0.3, 0.35, 0.4, 0.5, 0.7, 0.9, 1.0, 1.2, 1.5, 2.0, 5.0};
    const int n = (int)(sizeof lam / sizeof *lam);
    static const double c_bf[6] = {152.519, 49.534, -118.858, 92.536, -34.194, 4.982};
    for (int i = 0; i < n; ++i) {
        const double l = lam[i], la = l * 1e4;
        /* Dalgarno & Williams (1962): sigma = 8.14e-13/L^4 + 1.28e-6/L^6 + 1.61/L^8, L [A]. */
        SBI_ASSERT_NEAR(sbi_rt_sigma_rayleigh_h2(l), 8.14e-13 * pow(la, -4) + 1.28e-6 * pow(la, -6) + 1.61 * pow(la, -8),
                        1e-6, 0);
        {
            const double ap = l < 0.911 ? 2.265983321 - 3.721350022 * l + 3.016150391 * l * l : 1.379;
            const double lcm = l * 1e-4;
            SBI_ASSERT_NEAR(sbi_rt_sigma_rayleigh_he(l),
                            128.0 * pow(M_PI, 5) / (3.0 * pow(lcm, 4)) * pow(ap * 1.482e-25, 2), 1e-6, 0);
        }
        {
            double ref = 0.0;
            if (l > 0.125 && l < 1.6419) {
                const double x = 1.0 / l - 1.0 / 1.6419;
                for (int k = 0; k < 6; ++k) ref += c_bf[k] * pow(x, 0.5 * k);
                ref *= 1e-18 * pow(l, 3) * pow(x, 1.5);
            }
            SBI_ASSERT_NEAR(sbi_rt_sigma_hminus_bf(l), ref, 1e-6, 1e-40);
        }
    }
    /* The H- bound-free cross section peaks near 0.85 um at about 4e-17 cm^2
     * (John 1988, Fig. 1). */
    SBI_ASSERT(sbi_rt_sigma_hminus_bf(0.85) > 3.5e-17 && sbi_rt_sigma_hminus_bf(0.85) < 4.5e-17);
    /* Free-free at theta = 1 (T = 5040 K), lambda = 1 um: 1e-29 times the sum
     * of all coefficients of the long-wavelength table (John 1988, Table 3). */
    {
        const double sum = (2483.3460 + 285.8270 - 2054.2910 + 2827.7760 - 1341.5370 + 208.9520) +
                           (-3449.8890 - 1158.3820 + 8746.5230 - 11485.6320 + 5303.6090 - 812.9390) +
                           (2200.0400 + 2427.7190 - 13651.1050 + 16755.5240 - 7510.4940 + 1132.7380) +
                           (-696.2710 - 1841.4000 + 8624.9700 - 10051.5300 + 4400.0670 - 655.0200) +
                           (88.2830 + 444.5170 - 1863.8640 + 2095.2880 - 901.7880 + 132.9850);
        SBI_ASSERT_NEAR(sbi_rt_k_hminus_ff(1.0, 5040.0), 1e-29 * sum, 1e-6, 0);
        /* Short-wavelength table at lambda = 0.25 um, T = 2520 K (theta = 2). */
        {
            static const double c[4][6] = {{518.1021, -734.8666, 1021.1775, -479.0721, 93.1373, -6.4285},
                                           {473.2636, 1443.4137, -1977.3395, 922.3575, -178.9275, 12.3600},
                                           {-482.2089, -737.1616, 1096.8827, -521.1341, 101.7963, -7.0571},
                                           {115.5291, 169.6374, -245.6490, 114.2430, -21.9972, 1.5097}};
            const double l = 0.25;
            double ref = 0.0;
            for (int k = 0; k < 4; ++k)
                ref += pow(2.0, 0.5 * (k + 2)) * (c[k][0] * l * l + c[k][1] + c[k][2] / l + c[k][3] / (l * l) +
                                                   c[k][4] / pow(l, 3) + c[k][5] / pow(l, 4));
            SBI_ASSERT_NEAR(sbi_rt_k_hminus_ff(l, 2520.0), 1e-29 * ref, 1e-6, 0);
        }
    }
}

/* Guillot temperature at one pressure, for the direct integration. */
static double guillot_t(double p_bar)
{
    double t;
    sbi_rt_temperature_guillot(1, &p_bar, 0.01, 0.4, 1500.0, 300.0, 1400.0, 0.25, &t);
    return t;
}

/* dr/dlnP = -P / (rho g(r)) = -k T r^2 / (mu amu g0 R^2). */
static double drdlnp(double lnp, double r, double mu, double g0, double r_pl)
{
    return -SBI_RT_KB * guillot_t(exp(lnp)) * r * r / (mu * SBI_RT_AMU * g0 * r_pl * r_pl);
}

static void test_hydrostatic(void)
{
    enum { N = 100 };
    static double p[N], t[N], mm[N], r[N];
    const double mu = 2.3, g0 = 1500.0, r_pl = 1.3 * SBI_RT_R_JUP, p_ref = 0.01;
    sbi_rt_pressure_grid(N, 1e-6, 100.0, p);
    for (int i = 0; i < N; ++i) mm[i] = mu;
    sbi_rt_temperature_guillot(N, p, 0.01, 0.4, 1500.0, 300.0, 1400.0, 0.25, t);
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(N, p, t, mm, r_pl, g0, p_ref, r), 0);
    /* RK4 in ln P from the reference pressure to each layer, 2000 steps. */
    for (int i = 0; i < N; i += 9) {
        const int steps = 2000;
        const double x0 = log(p_ref), h = (log(p[i]) - x0) / steps;
        double rr = r_pl, x = x0;
        for (int k = 0; k < steps; ++k) {
            const double k1 = drdlnp(x, rr, mu, g0, r_pl), k2 = drdlnp(x + 0.5 * h, rr + 0.5 * h * k1, mu, g0, r_pl);
            const double k3 = drdlnp(x + 0.5 * h, rr + 0.5 * h * k2, mu, g0, r_pl);
            const double k4 = drdlnp(x + h, rr + h * k3, mu, g0, r_pl);
            rr += h * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0;
            x += h;
        }
        /* Altitudes above R_pl to 0.1%, radii to 5e-6. */
        SBI_ASSERT_NEAR(r[i] - r_pl, rr - r_pl, 1e-3, 1.0);
        SBI_ASSERT_NEAR(r[i], rr, 5e-6, 0);
    }
    /* An isothermal column has the closed form 1/r = 1/R + kT ln(P/P0) / (mu amu g0 R^2). */
    for (int i = 0; i < N; ++i) t[i] = 1100.0;
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(N, p, t, mm, r_pl, g0, p_ref, r), 0);
    for (int i = 0; i < N; i += 11) {
        const double u = 1.0 / r_pl + SBI_RT_KB * 1100.0 * log(p[i] / p_ref) / (mu * SBI_RT_AMU * g0 * r_pl * r_pl);
        SBI_ASSERT_NEAR(r[i], 1.0 / u, 1e-12, 0);
    }
    /* Too little gravity: the column is not bound. */
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(N, p, t, mm, r_pl, 1e-2, p_ref, r), -1);
}

static void test_guillot_reference(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int n = 0;
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        SBI_ASSERT(0);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        double p, tref, t;
        if (line[0] == '#' || sscanf(line, "%lf %lf", &p, &tref) != 2) continue;
        sbi_rt_temperature_guillot(1, &p, 0.01, 0.4, pow(10.0, 2.45), 200.0, 1500.0, 0.25, &t);
        SBI_ASSERT_NEAR(t, tref, 1e-12, 0);
        ++n;
    }
    fclose(f);
    SBI_ASSERT_EQ_INT(n, 27);
}

static void test_free_profile(void)
{
    enum { N = 50 };
    double p[N], t[N];
    const double pn[4] = {1e-6, 1e-3, 1.0, 100.0}, tn[4] = {800.0, 900.0, 1500.0, 1550.0};
    sbi_rt_pressure_grid(N, 1e-6, 100.0, p);
    sbi_rt_temperature_free(N, p, 4, pn, tn, t);
    SBI_ASSERT_NEAR(t[0], 800.0, 1e-12, 0);
    SBI_ASSERT_NEAR(t[N - 1], 1550.0, 1e-12, 0);
    for (int i = 1; i < N; ++i) SBI_ASSERT(t[i] >= t[i - 1] - 1e-9);
    {
        double pm = 1e-3, tm;
        sbi_rt_temperature_free(1, &pm, 4, pn, tn, &tm);
        SBI_ASSERT_NEAR(tm, 900.0, 1e-12, 0);
    }
}

static void test_instrument(void)
{
    enum { W = 500, B = 7 };
    static double lam[W], f[W], g[W], out[B];
    const double lo[B] = {0.61, 0.7, 1.0, 1.0005, 2.0, 3.3, 4.9}, hi[B] = {0.62, 0.9, 1.0005, 1.2, 2.01, 3.6, 4.99};
    sbi_rt_binning bin;
    for (int l = 0; l < W; ++l) lam[l] = 0.6 * exp(l * log(5.0 / 0.6) / (W - 1));
    SBI_ASSERT_OK(sbi_rt_binning_create(W, lam, B, lo, hi, &bin));
    /* A linear spectrum bins exactly to its value at the bin centre. */
    for (int l = 0; l < W; ++l) f[l] = 3.0 + 2.0 * lam[l];
    sbi_rt_binning_apply(&bin, f, out);
    for (int b = 0; b < B; ++b) SBI_ASSERT_NEAR(out[b], 3.0 + (lo[b] + hi[b]), 1e-12, 0);
    /* Adjacent bins conserve the integral of any piecewise-linear spectrum. */
    for (int l = 0; l < W; ++l) f[l] = sin(7.0 * lam[l]) + 2.0;
    sbi_rt_binning_apply(&bin, f, out);
    {
        sbi_rt_binning one;
        const double l1 = 1.0, h1 = 1.2;
        double whole;
        SBI_ASSERT_OK(sbi_rt_binning_create(W, lam, 1, &l1, &h1, &one));
        sbi_rt_binning_apply(&one, f, &whole);
        SBI_ASSERT_NEAR(out[2] * 0.0005 + out[3] * 0.1995, whole * 0.2, 1e-12, 0);
        sbi_rt_binning_destroy(&one);
    }
    sbi_rt_binning_destroy(&bin);
    {
        const double bad_lo = 0.5, bad_hi = 0.7;
        SBI_ASSERT_EQ_INT(sbi_rt_binning_create(W, lam, 1, &bad_lo, &bad_hi, &bin), SBI_ERR_INPUT);
        sbi_rt_binning_destroy(&bin);
        sbi_error_clear();
    }
    /* Convolution keeps a constant and the integral of a narrow line. */
    for (int l = 0; l < W; ++l) f[l] = 5.0;
    sbi_rt_convolve(W, log(5.0 / 0.6) / (W - 1), 50.0, f, g);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(g[l], 5.0, 1e-12, 0);
    for (int l = 0; l < W; ++l) f[l] = l == 250 ? 1.0 : 0.0;
    sbi_rt_convolve(W, log(5.0 / 0.6) / (W - 1), 50.0, f, g);
    {
        double s = 0.0;
        for (int l = 0; l < W; ++l) s += g[l];
        SBI_ASSERT_NEAR(s, 1.0, 1e-12, 0);
        SBI_ASSERT(g[250] < 0.2 && g[250] > g[252]);
    }
}

/* The former convolution, point by point with its own normalisation: the
 * oracle of the vectorised sbi_rt_convolve. */
static void convolve_ref(int w, double dlnl, double resolution, const double *in, double *out)
{
    const double sigma = (1.0 / resolution) / (2.0 * sqrt(2.0 * log(2.0))) / dlnl;
    const int half = (int)ceil(4.0 * sigma), h = half > 256 ? 256 : half;
    double kern[513];
    if (sigma < 0.05) {
        for (int l = 0; l < w; ++l) out[l] = in[l];
        return;
    }
    for (int k = -h; k <= h; ++k) kern[k + h] = exp(-0.5 * (k / sigma) * (k / sigma));
    for (int l = 0; l < w; ++l) {
        const int k0 = l - h < 0 ? -l : -h, k1 = l + h >= w ? w - 1 - l : h;
        double s = 0.0, norm = 0.0;
        for (int k = k0; k <= k1; ++k) {
            s += kern[k + h] * in[l + k];
            norm += kern[k + h];
        }
        out[l] = s / norm;
    }
}

/* Emergent flux in double, layer by layer as documented in rt.h: the oracle
 * of the blocked float sbi_rt_emission_flux. */
static void emission_ref(int n, int w, const double *p, const double *t, const float *kappa, double g,
                         const double *nu, int n_mu, const double *mu, const double *w_mu, double *flux)
{
    for (int l = 0; l < w; ++l) {
        double f = 0.0;
        for (int a = 0; a < n_mu; ++a) {
            double tau = 0.0, tr = 1.0, in = 0.0, b0 = sbi_rt_planck_nu(nu[l], t[0]);
            for (int i = 1; i < n; ++i) {
                const double b1 = sbi_rt_planck_nu(nu[l], t[i]);
                double e;
                tau += ((double)kappa[(size_t)(i - 1) * w + l] + kappa[(size_t)i * w + l]) * (p[i] - p[i - 1]) *
                       SBI_RT_BAR / (2.0 * g);
                e = exp(-tau / mu[a]);
                in += 0.5 * (b0 + b1) * (tr - e);
                tr = e;
                b0 = b1;
            }
            f += 2.0 * SBI_RT_PI * mu[a] * w_mu[a] * (in + b0 * tr);
        }
        flux[l] = f;
    }
}

static void test_lbl_kernels(void)
{
    enum { N = 60, W = 700, NS = 3, NP = 4, NT = 5 };
    static double p[N], t[N], mm[N], r[N], rho[N], rt_a[W], rt_b[W], nu[W], fa[W], fb[W], f[W], g[W];
    static float chord[N * N], kappa[N * W], alpha[N * W], tau[N * W], ka[N * W], kb[N * W];
    static float ework[(5 + 2 * 3) * W];
    double mu[3], wmu[3], pg[NP], tg[NT];
    sbi_rt_line_table tab[NS];
    const float *rows[4 * NS];
    float coef[4 * NS];

    /* Transmission: the blocked kernel from kappa and rho against alpha =
     * kappa rho through sbi_rt_transit_radius2, with and without a deck,
     * for a ragged last block, one block, and blocks of one wavelength. */
    isothermal_column(N, 1e-8, 1e2, 900.0, 2.3, SBI_RT_R_JUP, 2500.0, p, t, mm, r, chord);
    for (int i = 0; i < N; ++i) {
        t[i] = 700.0 + 10.0 * i;
        rho[i] = 2.3 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
        for (int l = 0; l < W; ++l) kappa[i * W + l] = (float)(1e-3 * pow(10.0, 4.0 * sin(0.05 * l + 0.1 * i) + 0.5));
    }
    /* Cases: 0 as is, 1 with a deck from layer 45, 2 a thousand times more
     * opaque, so that the deep rays are opaque at every wavelength and the
     * chord product stops above them, but for one wavelength that stays
     * transparent in the first block, 3 an opaque haze in layers 10 to 14
     * over transparent layers: the rays below it are opaque through the
     * haze alone, above the few deepest layers that the lower bound sums,
     * and none may be taken as opaque. */
    for (int c = 0; c < 4; ++c) {
        const int deck = c == 1 ? 45 : -1;
        for (int i = 0; i < N; ++i)
            for (int l = 0; l < W; ++l) {
                const float k = kappa[i * W + l];
                ka[i * W + l] = c == 2 ? (l == 100 ? 1e-12f : 1e3f * k)
                                : c == 3 ? (i >= 10 && i < 15 ? 1e8f : 1e-12f)
                                         : k;
                alpha[i * W + l] = deck >= 0 && i >= deck ? 1e20f : (float)(ka[i * W + l] * rho[i]);
            }
        /* The rays from n_open on of a block are opaque at all its
         * wavelengths; those above, the full product. */
        sbi_rt_chord_tau(N, W, chord, alpha, tau);
        for (int l0 = 0; l0 < 512; l0 += 256) {
            const int n_open = sbi_rt_chord_tau_kappa(N, W, chord, ka, rho, deck, 1e20f, l0, l0 + 256, kb);
            for (int i = 0; i < N; ++i)
                for (int l = 0; l < 256; ++l) {
                    if (i < n_open)
                        SBI_ASSERT_NEAR(kb[i * 256 + l], tau[i * W + l0 + l], 1e-5, 1e-30);
                    else
                        SBI_ASSERT(tau[i * W + l0 + l] > 17.99f);
                }
            if (c == 1) SBI_ASSERT(n_open <= deck);
            if (c == 2) SBI_ASSERT(l0 == 0 ? n_open == N : n_open < N - 5);
            if (c == 3) SBI_ASSERT_EQ_INT(n_open, N);
        }
        sbi_rt_transit_radius2(N, W, chord, alpha, r, tau, rt_a);
        for (int b = 0; b < 4; ++b) {
            const int blk = b == 0 ? 256 : b == 1 ? 0 : b == 2 ? W : 1;
            SBI_ASSERT(sbi_rt_transit_kappa_work(N, W, blk) <= (size_t)N * W);
            sbi_rt_transit_radius2_kappa(N, W, chord, ka, rho, deck, 1e20f, r, blk, tau, rt_b);
            for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt_b[l], rt_a[l], 1e-7, 0);
        }
    }

    /* Line tables: all species at once with the layer's weights against one
     * species at a time, over blocks. */
    sbi_rt_pressure_grid(NP, 1e-6, 1e2, pg);
    for (int q = 0; q < NT; ++q) tg[q] = 200.0 * (q + 1);
    for (int k = 0; k < NS; ++k) {
        SBI_ASSERT_OK(sbi_rt_line_table_init(k == 2 ? SBI_RT_PT_TAUREX : SBI_RT_PT_PRT, NP, pg, NT, tg, W, &tab[k]));
        for (size_t m = 0; m < (size_t)NP * NT * W; ++m)
            tab[k].sigma[m] = (float)(1e-22 * (1.5 + sin(0.37 * (double)m + k)));
    }
    memset(ka, 0, sizeof ka);
    memset(kb, 0, sizeof kb);
    for (int i = 0; i < N; ++i) {
        const double pi = 1e-7 * pow(10.0, 10.0 * i / (N - 1)), ti = 150.0 + 20.0 * i; /* both off the grid too */
        for (int k = 0; k < NS; ++k) {
            sbi_rt_line_add_block(&tab[k], pi, ti, 1e20 * (k + 1), 0, W, ka + i * W);
            sbi_rt_line_terms(&tab[k], pi, ti, 1e20 * (k + 1), rows + 4 * k, coef + 4 * k);
        }
        for (int l0 = 0; l0 < W; l0 += 256)
            sbi_rt_lines_add_block(NS, rows, coef, l0, l0 + 256 < W ? l0 + 256 : W, kb + i * W + l0);
    }
    for (int m = 0; m < N * W; ++m) SBI_ASSERT_NEAR(kb[m], ka[m], 1e-6, 1e-30);
    /* The species summed on the used rows first, for the two tables on one
     * grid and scheme (the third, TauREx's, is not). */
    SBI_ASSERT(sbi_rt_line_tables_same_grid(&tab[0], &tab[1]));
    SBI_ASSERT(!sbi_rt_line_tables_same_grid(&tab[0], &tab[2]));
    {
        const sbi_rt_line_table *two[2] = {&tab[0], &tab[1]};
        const double c2[2] = {1e20, 2e20};
        double pl[N], tl[N];
        float *lw = malloc(sbi_rt_lines_summed_work(&tab[0], N, 256) * sizeof *lw);
        int *liw = malloc(sbi_rt_lines_summed_iwork(&tab[0], N) * sizeof *liw);
        for (int blk = 0; blk <= 256; blk += 256) {
            memset(ka, 0, sizeof ka);
            for (int i = 0; i < N; ++i) {
                pl[i] = 1e-7 * pow(10.0, 10.0 * i / (N - 1));
                tl[i] = 150.0 + 20.0 * i;
                for (int k = 0; k < 2; ++k) sbi_rt_line_add_block(&tab[k], pl[i], tl[i], c2[k], 0, W, ka + i * W);
            }
            /* It adds to what is there: zero, then the sum itself. */
            for (int m = 0; m < N * W; ++m) kb[m] = blk == 0 ? 0.0f : ka[m];
            if (blk == 0) {
                free(lw);
                lw = malloc(sbi_rt_lines_summed_work(&tab[0], N, 0) * sizeof *lw);
            }
            sbi_rt_lines_add_summed(2, two, c2, N, pl, tl, blk, lw, liw, kb);
            for (int m = 0; m < N * W; ++m) SBI_ASSERT_NEAR(kb[m], (blk == 0 ? 1.0 : 2.0) * ka[m], 1e-6, 1e-30);
        }
        free(lw);
        free(liw);
    }
    for (int k = 0; k < NS; ++k) sbi_rt_line_table_free(&tab[k]);

    /* Emission, several wavelength blocks, against the formal solution in
     * double. */
    SBI_ASSERT_OK(sbi_rt_gauss_legendre01(3, mu, wmu));
    sbi_rt_pressure_grid(N, 1e-6, 100.0, p);
    for (int l = 0; l < W; ++l) nu[l] = SBI_RT_C * 1e4 / (0.5 + 0.01 * l);
    sbi_rt_emission_flux(N, W, p, t, kappa, 2500.0, nu, 3, mu, wmu, ework, fa);
    emission_ref(N, W, p, t, kappa, 2500.0, nu, 3, mu, wmu, fb);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(fa[l], fb[l], 1e-4, 0);
    /* Opaque from mid-atmosphere down, so that the blocks stop early. */
    for (int m = 0; m < N * W; ++m) ka[m] = 1.0f + 1e3f * kappa[m];
    sbi_rt_emission_flux(N, W, p, t, ka, 2500.0, nu, 3, mu, wmu, ework, fa);
    emission_ref(N, W, p, t, ka, 2500.0, nu, 3, mu, wmu, fb);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(fa[l], fb[l], 1e-4, 0);

    /* Convolution: the vectorised interior and the edges against the
     * point-by-point form, also where the kernel is wider than the grid. */
    for (int l = 0; l < W; ++l) f[l] = 2.0 + sin(0.1 * l) + (l % 17 == 0 ? 5.0 : 0.0);
    for (int c = 0; c < 4; ++c) {
        const double res = c == 0 ? 200.0 : c == 1 ? 20.0 : c == 2 ? 1.0 : 1e6;
        const int w = c == 2 ? 50 : W;
        convolve_ref(w, 4.8e-4, res, f, g);
        sbi_rt_convolve(w, 4.8e-4, res, f, fa);
        for (int l = 0; l < w; ++l) SBI_ASSERT_NEAR(fa[l], g[l], 1e-14, 0);
    }
}

/* The opacity made block by block (sbi_rt_lbl_opacity) against the whole
 * rows it replaces as the test oracle: the base, sbi_rt_cia_add for each
 * CIA table and the line tables (sbi_rt_lines_add_summed on one grid, else
 * sbi_rt_line_add_block per table); then the transmission from it
 * (sbi_rt_transit_radius2_lbl) against sbi_rt_transit_radius2_kappa on the
 * oracle's kappa, with and without a deck and both at once.  Two CIA tables
 * share a grid and are summed at its points, a third has its own; the model
 * grid leaves the tables at both ends and turns back (CIA runs that break
 * and resume), and the first tables' points are dense enough that some
 * groups of eight model wavelengths span more than eight of them. */
static void test_lbl_opacity(void)
{
    enum { N = 50, W = 700, NP = 4, NT = 5, NS = 3, CT = 4, CN1 = 300, CN2 = 90 };
    static double p[N], t[N], mm[N], r[N], rho[N], lam[W], scale[3 * N], rt_a[W], rt_b[W], rt_c[W], rt_d[W];
    static double pg[NP], tg[NT], ct[CT], cn1[CN1], cn2[CN2], ca1[CT * CN1], ca2[CT * CN2], base_d[N * W];
    static float chord[N * N], base[N * W], ka[N * W], kb[N * W], tau[N * W], cwork[CN1];
    sbi_rt_line_table tab[NS];
    sbi_rt_cia cia[3];
    const sbi_rt_cia *ciap[3] = {&cia[0], &cia[1], &cia[2]};
    const sbi_rt_line_table *tabp[NS] = {&tab[0], &tab[1], &tab[2]};
    const double c[NS] = {3e20, 1e20, 2e19};

    isothermal_column(N, 1e-7, 1e2, 1000.0, 2.3, SBI_RT_R_JUP, 2500.0, p, t, mm, r, chord);
    for (int l = 0; l < W; ++l) lam[l] = l < 500 ? 0.5 * exp(l * log(11.0) / 499) : 5.5 - 0.02 * (l - 500);
    for (int q = 0; q < CT; ++q) ct[q] = 300.0 + 600.0 * q;
    for (int j = 0; j < CN1; ++j) cn1[j] = 2500.0 + 40.0 * j; /* 0.68-4 um */
    for (int j = 0; j < CN2; ++j) cn2[j] = 1000.0 + 230.0 * j + 30.0 * sin(j);
    for (int q = 0; q < CT; ++q) {
        for (int j = 0; j < CN1; ++j)
            ca1[q * CN1 + j] = j == 11 ? 0.0 : 1e-46 * (1.0 + q) * exp(-cn1[j] / 5000.0) * (1.2 + sin(0.2 * j + q));
        for (int j = 0; j < CN2; ++j) ca2[q * CN2 + j] = 4e-47 * (1.0 + 0.5 * q) * (1.1 + cos(0.3 * j));
    }
    SBI_ASSERT_OK(sbi_rt_cia_setup(CT, ct, CN1, cn1, ca1, W, lam, &cia[0]));
    for (int m = 0; m < CT * CN1; ++m) ca1[m] *= 0.3 + 0.1 * sin((double)m);
    SBI_ASSERT_OK(sbi_rt_cia_setup(CT, ct, CN1, cn1, ca1, W, lam, &cia[1]));
    SBI_ASSERT_OK(sbi_rt_cia_setup(CT, ct, CN2, cn2, ca2, W, lam, &cia[2]));
    SBI_ASSERT(sbi_rt_cia_same_grid(&cia[0], &cia[1]) && !sbi_rt_cia_same_grid(&cia[0], &cia[2]));
    {
        int wide = 0, outside = 0;
        for (int g = 0; g < W / 8; ++g) wide += cia[0].grp[g] < 0;
        for (int l = 0; l < W; ++l) outside += cia[0].left[l] < 0;
        SBI_ASSERT(wide > 0 && wide < W / 8 && outside > 0);
    }
    sbi_rt_pressure_grid(NP, 1e-8, 1e3, pg);
    for (int q = 0; q < NT; ++q) tg[q] = 300.0 * (q + 1);
    for (int k = 0; k < NS; ++k) {
        SBI_ASSERT_OK(sbi_rt_line_table_init(k == 2 ? SBI_RT_PT_TAUREX : SBI_RT_PT_PRT, NP, pg, NT, tg, W, &tab[k]));
        for (size_t m = 0; m < (size_t)NP * NT * W; ++m)
            tab[k].sigma[m] = (float)(1e-24 * (1.5 + sin(0.37 * (double)m + k)) * (m % 97 == 0 ? 1e3 : 1.0));
    }
    for (int i = 0; i < N; ++i) {
        t[i] = 250.0 + 50.0 * i; /* below, across and above the tables' temperatures */
        rho[i] = 2.3 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
        for (int q = 0; q < 3; ++q) scale[q * N + i] = q == 1 && i % 7 == 3 ? 0.0 : 1e46 * (1.0 + q) * rho[i];
        for (int l = 0; l < W; ++l) base_d[i * W + l] = 1e-4 * (1.0 + 0.5 * sin(0.01 * l + 0.2 * i));
    }
    /* Cases: line tables 0 and 1 (one grid: summed), all three (not), none;
     * the base per layer or one row; blocks of 256, 100 (not a multiple of
     * eight), one and all wavelengths. */
    for (int cs = 0; cs < 6; ++cs) {
        const int n_tabs = cs % 3 == 0 ? 2 : cs % 3 == 1 ? 3 : 0, per_layer = cs < 3;
        const int blk = cs == 0 ? 256 : cs == 1 ? 100 : cs == 2 ? 1 : cs == 3 ? 0 : cs == 4 ? 256 : 64;
        const size_t stride = per_layer ? W : 0;
        sbi_rt_lbl_opacity op;
        for (int i = 0; i < N; ++i)
            for (int l = 0; l < W; ++l) base[i * W + l] = (float)base_d[(per_layer ? i : 0) * W + l];
        /* The oracle: whole rows. */
        for (int i = 0; i < N; ++i) {
            float *k = ka + (size_t)i * W;
            memcpy(k, base + (size_t)i * stride, W * sizeof *k);
            for (int q = 0; q < 3; ++q)
                if (scale[q * N + i] > 0) sbi_rt_cia_add(&cia[q], t[i], scale[q * N + i], cwork, k);
            if (n_tabs == 3)
                for (int k2 = 0; k2 < NS; ++k2) sbi_rt_line_add_block(&tab[k2], p[i], t[i], c[k2], 0, W, k);
        }
        if (n_tabs == 2) {
            float *lw = malloc(sbi_rt_lines_summed_work(&tab[0], N, 0) * sizeof *lw);
            int *liw = malloc(sbi_rt_lines_summed_iwork(&tab[0], N) * sizeof *liw);
            sbi_rt_lines_add_summed(2, tabp, c, N, p, t, 0, lw, liw, ka);
            free(lw);
            free(liw);
        }
        SBI_ASSERT_OK(sbi_rt_lbl_opacity_init(N, W, blk, n_tabs, tabp, 3, ciap, &op));
        SBI_ASSERT_EQ_INT(op.n_sets, 2);
        SBI_ASSERT_EQ_INT(op.summed, n_tabs == 2);
        sbi_rt_lbl_opacity_prepare(&op, c, p, t, scale);
        /* kappa block by block into the whole array, and alpha = kappa rho. */
        for (int a = 0; a < 2; ++a) {
            for (int l0 = 0; l0 < W; l0 += op.blk) {
                const int l1 = l0 + op.blk < W ? l0 + op.blk : W;
                sbi_rt_lbl_opacity_block(&op, base, stride, a ? rho : NULL, l0, l1, N, kb + l0, W);
            }
            for (int i = 0; i < N; ++i)
                for (int l = 0; l < W; ++l)
                    SBI_ASSERT_NEAR(kb[i * W + l], a ? ka[i * W + l] * rho[i] : ka[i * W + l], 2e-6, 1e-36);
        }
        /* Transmission: no deck, a deck from layer 35 (its layers are not
         * made), and both at once (patchy clouds). */
        for (int d = 0; d < 3; ++d) {
            const int deck = d == 0 ? -1 : 35;
            sbi_rt_transit_radius2_kappa(N, W, chord, ka, rho, deck, 1e20f, r, 256, tau, rt_a);
            sbi_rt_transit_radius2_lbl(&op, base, stride, chord, rho, deck, 1e20f, r, rt_b, d == 2 ? rt_d : NULL);
            for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt_b[l], rt_a[l], 1e-7, 0);
            if (d == 2) {
                sbi_rt_transit_radius2_kappa(N, W, chord, ka, rho, -1, 1e20f, r, 256, tau, rt_c);
                for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt_d[l], rt_c[l], 1e-7, 0);
            }
        }
        sbi_rt_lbl_opacity_free(&op);
        sbi_rt_lbl_opacity_free(&op); /* idempotent */
    }
    for (int k = 0; k < NS; ++k) sbi_rt_line_table_free(&tab[k]);
    for (int q = 0; q < 3; ++q) sbi_rt_cia_free(&cia[q]);
}

/* The kernels' exponentials against libm in double: 2^-y, exp(-x) and
 * 1 - exp(-x) to their documented relative errors over the whole range,
 * the floor above it (a normal float, also for inf and NaN), and the
 * absorbed fraction without cancellation at small x. */
static void test_fastmath(void)
{
    double e2 = 0, e1 = 0, ea = 0;
    for (long k = 0; k <= 2000000; ++k) {
        const float y = (float)(125.0 * (double)k / 2000000.0);
        const float x = (float)(86.0 * (double)k / 2000000.0);
        const double r2 = fabs(sbi__rt_exp2_neg(y) / exp2(-(double)y) - 1.0);
        /* exp(-x) as the kernels take it, x log2 e formed in float: 6e-8 x
         * of argument rounding */
        const double r1 = fabs(sbi__rt_exp2_neg(x * SBI__RT_LOG2E) / exp(-(double)x) - 1.0) / (2.4e-7 + 1.2e-7 * x);
        e2 = r2 > e2 ? r2 : e2;
        e1 = r1 > e1 ? r1 : e1;
    }
    for (long k = 0; k <= 2000000; ++k) {
        const float x = (float)pow(10.0, -30.0 + 32.0 * (double)k / 2000000.0); /* 1e-30 .. 100 */
        const double r = fabs(sbi__rt_absorbed(x) / -expm1(-(double)x) - 1.0);
        ea = r > ea ? r : ea;
    }
    {
        /* B / c1 = 1 / (e^x - 1), x = h nu / k T, from 1e-6 to 86 */
        double eb = 0;
        for (long k = 0; k <= 2000000; ++k) {
            const float x = (float)pow(10.0, -6.0 + 7.934 * (double)k / 2000000.0);
            /* x log2 e is rounded as x = h nu / k T was: 6e-8 x */
            const double r = fabs(sbi__rt_planck_f(1.0f, x) * expm1((double)x) - 1.0) / (4e-7 + 1.2e-7 * x);
            eb = r > eb ? r : eb;
        }
        printf("fast exponentials: 2^-y %.2e, exp(-x) %.2f of its bound, 1 - exp(-x) %.2e relative, Planck %.2f of its "
               "bound\n",
               e2, e1, ea, eb);
        SBI_ASSERT(eb <= 1.0);
        SBI_ASSERT(sbi__rt_planck_f(1.0f, 87.5f) == 0.0f && sbi__rt_planck_f(1.0f, INFINITY) == 0.0f);
    }
    SBI_ASSERT(e2 <= 3.0e-7);
    SBI_ASSERT(e1 <= 1.0);
    SBI_ASSERT(ea <= 2.5e-7);
    {
        const float big[] = {125.5f, 126.0f, 1e30f, INFINITY, NAN};
        for (int k = 0; k < 5; ++k) {
            const float e = sbi__rt_exp2_neg(big[k]);
            SBI_ASSERT(e >= 1.17549435e-38f && e < 2e-38f);
            SBI_ASSERT(sbi__rt_absorbed(big[k]) == 1.0f);
        }
        SBI_ASSERT(sbi__rt_exp2_neg(87.0f * SBI__RT_LOG2E) < 2e-38f);
        SBI_ASSERT(sbi__rt_exp2_neg(0.0f) == 1.000000119f && sbi__rt_absorbed(0.0f) == 0.0f);
    }
}

int main(int argc, char **argv)
{
    test_fastmath();
    test_gray_transit();
    test_rayleigh_slope();
    test_isothermal_emission();
    test_cross_sections();
    test_hydrostatic();
    test_free_profile();
    test_instrument();
    test_lbl_kernels();
    test_lbl_opacity();
    if (argc > 1) test_guillot_reference(argv[1]);
    return SBI_TEST_REPORT("test_rt_physics");
}
