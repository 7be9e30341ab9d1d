/* Built-in band-model opacities for H2O, CO, CO2, CH4, NH3, Na and K.
 *
 * These are APPROXIMATE cross sections that let a task run without any
 * opacity file; they are no substitute for line lists.  Each molecular band is
 * represented by its centre and its integrated band strength S [cm molecule^-1]
 * at 296 K, spread over a temperature-dependent rotational envelope:
 *   sigma(nu) = S [ (1 - w) (G(nu - nu0 - D) + G(nu - nu0 + D)) / 2 + w L(nu - nu0) ],
 * G a normalised Gaussian of standard deviation D and L a normalised
 * Lorentzian of half width 3 D (a crude stand-in for the hot bands and line
 * wings that fill the windows between bands), w = 0.1.  D(T) = sqrt(2 B k T / (h c))
 * is the wavenumber offset of the P- and R-branch maxima of a rigid rotor with
 * rotational constant B [cm^-1] (Herzberg 1945, "Infrared and Raman Spectra",
 * ch. IV), so the bands widen as sqrt(T).  Integrated band strengths are
 * almost independent of temperature and are kept fixed.
 *
 * Band centres are the vibrational band origins of Herzberg (1945) and the
 * NIST Chemistry WebBook; the strengths are rounded sums of the HITRAN line
 * intensities at 296 K of the bands named (Gordon et al. 2022, JQSRT 277,
 * 107949).  Expect them to be right to within a factor of about two, and the
 * band shapes only roughly: spectra made with them show the bands of each
 * species at the right wavelengths with plausible relative depths, which is
 * what the quickstart needs.  Point `species` at real tables for science.
 *
 * Na and K are their resonance doublets with exact oscillator strengths and a
 * Lorentzian (pressure plus Doppler) profile, truncated 4500 cm^-1 from the
 * line centre as in Burrows et al. (2000, ApJ 531, 438).
 */
#include <math.h>
#include <string.h>

#include "exosbi/rt.h"

typedef struct rt_band {
    double nu0; /* band origin [cm^-1] */
    double s;   /* integrated band strength at 296 K [cm molecule^-1] */
} rt_band;

typedef struct rt_species {
    const char *name;
    double mass;   /* molar mass [amu] (IUPAC 2013 atomic weights) */
    double b_rot;  /* effective rotational constant [cm^-1]; 0 for the atomic lines */
    int n_bands;
    rt_band bands[8];
} rt_species;

/* Classical line strength per unit oscillator strength: pi e^2 / (m_e c^2)
 * = pi r_e = 8.85282e-13 cm (CODATA 2018 classical electron radius). */
#define RT_PI_RE 8.85282e-13

static const rt_species rt_builtin[SBI_RT_N_BUILTIN] = {
    /* H2O: B ~ (A B C)^(1/3) with A, B, C = 27.9, 14.5, 9.3 cm^-1 (Herzberg 1945). */
    {"H2O", 18.01528, 14.5, 8,
     {{1594.7, 1.05e-17},   /* nu2, 6.3 um */
      {3151.6, 7.5e-20},    /* 2 nu2, 3.2 um */
      {3755.9, 7.2e-18},    /* nu3 + nu1, 2.7 um */
      {5331.3, 8.5e-19},    /* nu2 + nu3, 1.9 um */
      {7249.8, 7.0e-19},    /* nu1 + nu3, 1.4 um */
      {8807.0, 6.0e-20},    /* nu1 + nu2 + nu3, 1.13 um */
      {10613.4, 1.2e-20},   /* 2 nu1 + nu3, 0.94 um */
      {12151.3, 1.5e-21}}}, /* 3 nu1 + nu3 region, 0.82 um */
    /* CO: B = 1.93 cm^-1. */
    {"CO", 28.0101, 1.93, 3,
     {{2143.3, 9.8e-18},   /* 1-0, 4.7 um */
      {4260.1, 7.2e-20},   /* 2-0, 2.35 um */
      {6350.4, 5.0e-22}}}, /* 3-0, 1.57 um */
    /* CO2: B = 0.39 cm^-1. */
    {"CO2", 44.0095, 0.39, 5,
     {{667.4, 8.0e-18},   /* nu2, 15 um */
      {2349.1, 9.5e-17},  /* nu3, 4.3 um */
      {3660.0, 2.5e-18},  /* nu1 + nu3 and 2 nu2 + nu3 Fermi dyad, 2.7 um */
      {4978.0, 1.2e-19},  /* 2 nu1 + nu3 triad, 2.0 um */
      {6300.0, 5.0e-21}}}, /* 3 nu1 + nu3 tetrad, 1.6 um */
    /* CH4: B = 5.24 cm^-1. */
    {"CH4", 16.0425, 5.24, 5,
     {{1306.0, 5.4e-18},  /* nu4, 7.7 um */
      {3019.5, 1.1e-17},  /* nu3, 3.3 um */
      {4300.0, 1.2e-18},  /* nu3 + nu4 region, 2.3 um */
      {6000.0, 1.2e-19},  /* 2 nu3 region, 1.67 um */
      {8600.0, 2.0e-20}}}, /* 3 nu3 region, 1.15 um */
    /* NH3: B = 9.94 cm^-1. */
    {"NH3", 17.0305, 9.94, 6,
     {{950.0, 1.2e-17},   /* nu2, 10.5 um */
      {1627.4, 2.7e-18},  /* nu4, 6.1 um */
      {3400.0, 1.5e-18},  /* nu1 and nu3, 3.0 um */
      {4400.0, 1.0e-19},  /* nu2 + nu3 region, 2.3 um */
      {5000.0, 1.6e-19},  /* nu3 + nu4 region, 2.0 um */
      {6600.0, 1.5e-19}}}, /* 2 nu3 region, 1.5 um */
    /* Na D2 and D1 (vacuum wavenumbers and oscillator strengths from the NIST
     * Atomic Spectra Database, Kramida et al. 2022). */
    {"Na", 22.98977, 0.0, 2, {{16973.37, 0.641 * RT_PI_RE}, {16956.17, 0.320 * RT_PI_RE}}},
    /* K D2 and D1 (NIST ASD). */
    {"K", 39.0983, 0.0, 2, {{13042.90, 0.682 * RT_PI_RE}, {12985.19, 0.340 * RT_PI_RE}}},
};

int sbi_rt_builtin_index(const char *name)
{
    for (int s = 0; s < SBI_RT_N_BUILTIN; ++s)
        if (strcmp(rt_builtin[s].name, name) == 0) return s;
    return -1;
}

const char *sbi_rt_builtin_name(int s) { return rt_builtin[s].name; }
double sbi_rt_builtin_mass(int s) { return rt_builtin[s].mass; }
int sbi_rt_builtin_pressure_dependent(int s) { return rt_builtin[s].b_rot == 0.0; }

/* Alkali line widths: pressure broadening by H2 with a half width of
 * 0.2 cm^-1 bar^-1 at 296 K scaling as T^-0.7 (the order of the impact widths
 * of Allard et al. 2019, A&A 628, A120), combined in quadrature with the
 * Doppler half width. */
#define RT_ALKALI_GAMMA0 0.2
#define RT_ALKALI_CUTOFF 4500.0

static void alkali_sigma(const rt_species *sp, double t, double p_bar, int w, const double *nu, double *sigma)
{
    const double gl = RT_ALKALI_GAMMA0 * p_bar * pow(t / 296.0, -0.7);
    const double vth = sqrt(2.0 * log(2.0) * SBI_RT_KB * t / (sp->mass * SBI_RT_AMU)) / SBI_RT_C;
    for (int b = 0; b < sp->n_bands; ++b) {
        const double nu0 = sp->bands[b].nu0, gd = nu0 * vth;
        const double g = sqrt(gl * gl + gd * gd), a = sp->bands[b].s * g / SBI_RT_PI;
        for (int l = 0; l < w; ++l) {
            const double d = nu[l] - nu0;
            if (fabs(d) < RT_ALKALI_CUTOFF) sigma[l] += a / (d * d + g * g);
        }
    }
}

void sbi_rt_builtin_sigma(int s, double t, double p_bar, int w, const double *nu, double *sigma)
{
    const rt_species *sp = &rt_builtin[s];
    const double wing = 0.1;
    double d;

    for (int l = 0; l < w; ++l) sigma[l] = 0.0;
    if (sp->b_rot == 0.0) {
        alkali_sigma(sp, t, p_bar, w, nu, sigma);
        return;
    }
    d = sqrt(2.0 * sp->b_rot * SBI_RT_KB * t / (SBI_RT_H * SBI_RT_C));
    for (int b = 0; b < sp->n_bands; ++b) {
        const double nu0 = sp->bands[b].nu0, sb = sp->bands[b].s;
        const double gnorm = (1.0 - wing) * sb * 0.5 / (d * sqrt(2.0 * SBI_RT_PI));
        const double gam = 3.0 * d, lnorm = wing * sb * gam / SBI_RT_PI;
        for (int l = 0; l < w; ++l) {
            const double x = nu[l] - nu0, xm = (x - d) / d, xp = (x + d) / d;
            double v = lnorm / (x * x + gam * gam);
            if (fabs(x) < 10.0 * d) v += gnorm * (exp(-0.5 * xm * xm) + exp(-0.5 * xp * xp));
            sigma[l] += v;
        }
    }
}
