/* Continuum cross sections that need no data: H2 and He Rayleigh scattering,
 * H- bound-free and free-free absorption, and the Planck function.
 */
#include <math.h>

#include "exosbi/rt.h"

double sbi_rt_sigma_rayleigh_h2(double lambda_um)
{
    /* Dalgarno & Williams (1962, ApJ 136, 690) eq. 3, lambda in Angstrom. */
    const double l = lambda_um * 1e4, l2 = l * l, l4 = l2 * l2;
    return 8.14e-13 / l4 + 1.28e-6 / (l4 * l2) + 1.61 / (l4 * l4);
}

double sbi_rt_sigma_rayleigh_he(double lambda_um)
{
    /* Polarizability of He in units of 1.482e-25 cm^3 (= a0^3), fit of
     * petitRADTRANS `he_rayleigh` to Chan & Dalgarno (1965, Proc. Phys. Soc.
     * 85, 227); constant beyond 0.911 um. */
    const double alpha = lambda_um < 0.911 ? 2.265983321 - 3.721350022 * lambda_um + 3.016150391 * lambda_um * lambda_um
                                           : 1.379;
    const double a = alpha * 1.482e-25, l = lambda_um * 1e-4, l2 = l * l;
    return 128.0 * pow(SBI_RT_PI, 5) / (3.0 * l2 * l2) * a * a;
}

/* John (1988, A&A 193, 189) eq. 4 and its coefficients C_n (Table 1 fit). */
static const double hminus_lambda0 = 1.6419; /* photodetachment threshold [um] */
static const double hminus_bf_c[6] = {152.519, 49.534, -118.858, 92.536, -34.194, 4.982};

double sbi_rt_sigma_hminus_bf(double lambda_um)
{
    double x, s = 0.0, xp = 1.0, sx;
    if (lambda_um <= 0.125 || lambda_um >= hminus_lambda0) return 0.0;
    x = 1.0 / lambda_um - 1.0 / hminus_lambda0;
    sx = sqrt(x);
    for (int k = 0; k < 6; ++k) {
        s += hminus_bf_c[k] * xp;
        xp *= sx;
    }
    return 1e-18 * lambda_um * lambda_um * lambda_um * x * sx * s;
}

/* John (1988) Table 3: columns A..F per n = 1..6, for lambda >= 0.3645 um and
 * for 0.1823 um < lambda < 0.3645 um. */
static const double hminus_ff_long[6][6] = {
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},
    {2483.3460, 285.8270, -2054.2910, 2827.7760, -1341.5370, 208.9520},
    {-3449.8890, -1158.3820, 8746.5230, -11485.6320, 5303.6090, -812.9390},
    {2200.0400, 2427.7190, -13651.1050, 16755.5240, -7510.4940, 1132.7380},
    {-696.2710, -1841.4000, 8624.9700, -10051.5300, 4400.0670, -655.0200},
    {88.2830, 444.5170, -1863.8640, 2095.2880, -901.7880, 132.9850},
};
static const double hminus_ff_short[6][6] = {
    {518.1021, -734.8666, 1021.1775, -479.0721, 93.1373, -6.4285},
    {473.2636, 1443.4137, -1977.3395, 922.3575, -178.9275, 12.3600},
    {-482.2089, -737.1616, 1096.8827, -521.1341, 101.7963, -7.0571},
    {115.5291, 169.6374, -245.6490, 114.2430, -21.9972, 1.5097},
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},
};

void sbi_rt_hminus_ff_poly(double lambda_um, double poly[6])
{
    const double (*c)[6];
    const double l = lambda_um;
    if (l <= 0.1823) {
        for (int k = 0; k < 6; ++k) poly[k] = 0.0;
        return;
    }
    c = l >= 0.3645 ? hminus_ff_long : hminus_ff_short;
    for (int k = 0; k < 6; ++k)
        poly[k] = c[k][0] * l * l + c[k][1] + c[k][2] / l + c[k][3] / (l * l) + c[k][4] / (l * l * l) +
                  c[k][5] / (l * l * l * l);
}

double sbi_rt_k_hminus_ff(double lambda_um, double t)
{
    const double theta = 5040.0 / t;
    double poly[6], s = 0.0;
    sbi_rt_hminus_ff_poly(lambda_um, poly);
    for (int k = 0; k < 6; ++k) s += pow(theta, 0.5 * (double)(k + 2)) * poly[k];
    return 1e-29 * s;
}

double sbi_rt_planck_nu(double nu_hz, double t)
{
    const double x = SBI_RT_H * nu_hz / (SBI_RT_KB * t);
    return 2.0 * SBI_RT_H * nu_hz * nu_hz * nu_hz / (SBI_RT_C * SBI_RT_C) / expm1(x);
}
