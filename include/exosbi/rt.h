/* Radiative transfer: the serial kernels of the `transmission` and `emission`
 * forward-model families (src/forward/rt).
 *
 * Every kernel works on contiguous arrays, never sees MPI, HDF5 or a file,
 * and uses cgs units unless a name says otherwise (`_bar`, `_um`).
 *
 * Dims: N = atmospheric layers, ordered top (low pressure) to bottom;
 *       W = model wavelengths (a grid uniform in ln lambda, increasing lambda);
 *       B = instrument bins of one dataset.
 * Arrays of per-layer, per-wavelength quantities are (N, W) row-major.
 *
 * The equations follow petitRADTRANS 3.2 (Molliere et al. 2019, A&A 627, A67;
 * source `fortran_src/fortran_radtrans_core.f90`), gathered in
 * shared/FORWARD_MODEL.md.
 */
#ifndef EXOSBI_RT_H
#define EXOSBI_RT_H

#include <stddef.h>
#include <stdint.h>

/* ---- constants ------------------------------------------------------------
 * The physical constants are the ones of petitRADTRANS' Fortran module
 * `physics` (CODATA 2010), so that spectra agree with it to rounding. */
#define SBI_RT_C 2.99792458e10       /* speed of light [cm s^-1] */
#define SBI_RT_KB 1.3806488e-16      /* Boltzmann constant [erg K^-1] */
#define SBI_RT_H 6.62606957e-27      /* Planck constant [erg s] */
#define SBI_RT_AMU 1.66053892e-24    /* atomic mass unit [g] */
#define SBI_RT_LOSCHMIDT 2.6867811e19 /* Loschmidt number at 0 C, 1 atm [cm^-3] (pRT `L0`) */
#define SBI_RT_BAR 1.0e6             /* 1 bar in dyn cm^-2 */
#define SBI_RT_R_JUP 7.1492e9        /* nominal equatorial Jupiter radius [cm] (IAU 2015 Resolution B3) */
#define SBI_RT_R_SUN 6.957e10        /* nominal solar radius [cm] (IAU 2015 Resolution B3) */
#define SBI_RT_PARSEC 3.0856775814913673e18 /* parsec [cm] (IAU 2015 Resolution B2) */
#define SBI_RT_PI 3.14159265358979323846

/* Molar masses [amu] of the filler gas (IUPAC 2013 standard atomic weights). */
#define SBI_RT_MASS_H2 2.01588
#define SBI_RT_MASS_HE 4.002602
#define SBI_RT_MASS_H 1.00794
/* Solar He/H2 number ratio: He/H = 10^(10.93 - 12) = 0.0851 (Asplund et al.
 * 2009, ARA&A 47, 481, Table 1), two H atoms per H2 molecule. */
#define SBI_RT_HE_PER_H2 0.17022

/* ---- atmosphere -------------------------------------------------------- */

/* p_bar (N): log-spaced pressures from p_top to p_bottom [bar]. */
void sbi_rt_pressure_grid(int n, double p_top_bar, double p_bottom_bar, double *p_bar);

/* Guillot (2010, A&A 520, A27) eq. 29 as petitRADTRANS writes it
 * (`physics.py: temperature_profile_function_guillot`):
 *   tau = kappa_ir P / g, T_irr = sqrt(2) T_equ,
 *   T^4 = 3/4 T_int^4 (2/3 + tau)
 *       + 3/4 T_irr^4 f [2/3 + 1/(gamma sqrt3) + (gamma/sqrt3 - 1/(gamma sqrt3)) exp(-gamma tau sqrt3)].
 * kappa_ir [cm^2 g^-1], gamma = kappa_vis/kappa_ir, g [cm s^-2], f = 1/4 for
 * the planet average.  t (N) [K]. */
void sbi_rt_temperature_guillot(int n, const double *p_bar, double kappa_ir, double gamma, double g, double t_int,
                                double t_equ, double f, double *t);

/* Free profile: K >= 2 nodes at increasing pressures p_nodes_bar (K) with
 * temperatures t_nodes (K), interpolated in log10 P by the monotone cubic
 * Hermite scheme of Fritsch & Carlson (1980, SIAM J. Numer. Anal. 17, 238),
 * so no overshoot between nodes; constant beyond the end nodes. */
void sbi_rt_temperature_free(int n, const double *p_bar, int k, const double *p_nodes_bar, const double *t_nodes,
                             double *t);

/* Hydrostatic radii r (N) [cm] with gravity g(r) = g0 (R_pl / r)^2:
 *   d(1/r) = dP / (rho g0 R_pl^2) = (k T / (mu amu g0 R_pl^2)) d ln P,
 * integrated by the trapezoid rule in ln P (exact for an isothermal layer),
 * anchored at r(p_ref) = r_pl.  mmw (N) [amu].  Returns 0, or -1 when 1/r
 * reaches zero (the atmosphere is not bound at this gravity); no message is
 * recorded, the caller decides. */
int sbi_rt_hydrostatic_radii(int n, const double *p_bar, const double *t, const double *mmw, double r_pl, double g0,
                             double p_ref_bar, double *r);

/* ---- continuum cross sections (per particle) -------------------------- */

/* H2 Rayleigh, Dalgarno & Williams (1962, ApJ 136, 690), as pRT `h2_rayleigh`:
 * sigma = 8.14e-13 L^-4 + 1.28e-6 L^-6 + 1.61 L^-8 [cm^2], L in Angstrom. */
double sbi_rt_sigma_rayleigh_h2(double lambda_um);
/* He Rayleigh from the polarizability fit of Chan & Dalgarno (1965, Proc.
 * Phys. Soc. 85, 227) as pRT `he_rayleigh` [cm^2]. */
double sbi_rt_sigma_rayleigh_he(double lambda_um);
/* H- bound-free cross section per H- ion [cm^2], John (1988, A&A 193, 189)
 * eq. 4; zero outside 0.125 um < lambda < 1.6419 um. */
double sbi_rt_sigma_hminus_bf(double lambda_um);
/* H- free-free absorption per H atom and unit electron pressure
 * [cm^4 dyn^-1], John (1988) eq. 6 and Table 3; zero below 0.1823 um. */
double sbi_rt_k_hminus_ff(double lambda_um, double t);
/* The six wavelength polynomials of that fit, so that
 * k_ff = 1e-29 sum_{n=1}^{6} theta^((n+1)/2) poly[n-1], theta = 5040 K / T. */
void sbi_rt_hminus_ff_poly(double lambda_um, double poly[6]);
/* Planck function B_nu(T) [erg s^-1 cm^-2 Hz^-1 sr^-1]. */
double sbi_rt_planck_nu(double nu_hz, double t);

/* ---- built-in band-model opacities ---------------------------------------
 * Approximate cross sections for H2O, CO, CO2, CH4, NH3, Na and K that need
 * no data files (src/forward/rt/bands.c says where each number comes from). */

enum { SBI_RT_N_BUILTIN = 7 };
/* Index of a built-in species by name ("H2O", ...), or -1. */
int sbi_rt_builtin_index(const char *name);
const char *sbi_rt_builtin_name(int s);
double sbi_rt_builtin_mass(int s); /* molar mass [amu] */
/* Whether the species' cross section depends on pressure (the alkali lines). */
int sbi_rt_builtin_pressure_dependent(int s);
/* sigma (W) [cm^2 per molecule] at temperature t [K] and pressure p_bar on the
 * wavenumbers nu (W) [cm^-1]. */
void sbi_rt_builtin_sigma(int s, double t, double p_bar, int w, const double *nu, double *sigma);

/* ---- tabulated opacities (src/forward/rt/opacity_interp.c) ----------------
 * Kernels on tables already read (include/exosbi/opacity_io.h reads them);
 * nothing here opens a file. */

/* Bracket v in the increasing grid x (n >= 1): x[*i0] <= v <= x[*i0 + 1]
 * with weight *f of x[*i0 + 1], clamped to the ends (f = 0 or 1 there; i0 =
 * 0 and f = 0 when n = 1).  Returns -1 below the grid, +1 above, 0 inside. */
int sbi_rt_bracket(int n, const double *x, double v, int *i0, double *f);

/* y_dst (m) = y_src (n) interpolated linearly in x at x_dst (m), zero outside
 * [x_src[0], x_src[n-1]]; x_src strictly increasing, x_dst in any order. */
void sbi_rt_resample_linear(int n, const double *x_src, const double *y_src, int m, const double *x_dst,
                            double *y_dst);

/* A CIA table prepared for one model grid.  petitRADTRANS 3
 * (`radtrans.py: Radtrans._interpolate_cia`) interpolates log10 alpha
 * linearly in T, clamped to the end temperatures, and then alpha linearly in
 * wavelength onto the model grid, zero outside the table; this does the
 * same in that order, on the table's own wavenumbers that the model grid
 * reaches (n_nu of them), so the cost per layer is n_nu exponentials plus
 * two multiply-adds per model wavelength. */
typedef struct sbi_rt_cia {
    int n_t, n_nu, w;
    double *t;         /* (n_t) [K] */
    double *ln_alpha;  /* (n_t, n_nu) ln alpha [cm^5 molecule^-2], floored at 1e-300 */
    int *left;         /* (W) table index of the shorter-wavelength neighbour, -1 outside the table */
    double *wt;        /* (W) weight of the longer-wavelength neighbour left + 1 */
    float *wt_f;       /* (W) wt in float */
    int n_runs;        /* runs of consecutive model wavelengths with the same left >= 0 */
    int *run;          /* (n_runs, 3) first wavelength, one past the last, left */
    float *wa;         /* (W) 1 - wt_f, 0 outside the table */
    int *grp;          /* (ceil(W / 8)) first table point that the group of model wavelengths
                        * [8 g, 8 g + 8) reads, -1 where its points span more than eight */
    int *lane;         /* (ceil(W / 8), 8) left - grp of each wavelength of the group, 0 outside */
} sbi_rt_cia;

/* nu (n_nu_all) [cm^-1] increasing, alpha (n_t, n_nu_all) [cm^5 molecule^-2],
 * lambda_um (W) the model wavelengths. */
int sbi_rt_cia_setup(int n_t, const double *t, int n_nu_all, const double *nu, const double *alpha, int w,
                     const double *lambda_um, sbi_rt_cia *cia);
/* alpha (W) [cm^5 molecule^-2] at temperature t [K]; work (n_nu). */
void sbi_rt_cia_alpha(const sbi_rt_cia *cia, double t, double *work, double *alpha);
/* out (W) += scale * alpha(t) in float, the same interpolation as
 * sbi_rt_cia_alpha to float rounding (src/forward/rt/ck.c): the n_nu
 * exponentials are taken relative to the largest, so that alpha ~ 1e-46 stays
 * in float range, and values below 1e-38 of it count as zero; work (n_nu). */
void sbi_rt_cia_add(const sbi_rt_cia *cia, double t, double scale, float *work, float *out);
/* The same sum, model wavelength by wavelength with two gathers each: the
 * former kernel, kept as the test oracle of sbi_rt_cia_add (which walks the
 * runs of wavelengths between the same two table points, gather-free). */
void sbi_rt_cia_add_gather(const sbi_rt_cia *cia, double t, double scale, float *work, float *out);
/* The first step of sbi_rt_cia_add, for kernels that interpolate block by
 * block of model wavelengths (sbi_rt_lbl_opacity): work (n_nu) = alpha(t) /
 * max alpha(t) at the table's points; returns sc = scale max alpha(t) (not
 * > 0: nothing to add). */
float sbi_rt_cia_values(const sbi_rt_cia *cia, double t, double scale, float *work);
/* 1 when a and b put the model grid between the same table points with the
 * same weights. */
int sbi_rt_cia_same_grid(const sbi_rt_cia *a, const sbi_rt_cia *b);
void sbi_rt_cia_free(sbi_rt_cia *cia);

/* How a line table is interpolated in (P, T):
 *   PRT:    bilinear in P and T, clamped to the grid edges (petitRADTRANS
 *           `fortran_inputs.f90: interpolate_line_opacities`,
 *           shared/FORWARD_MODEL.md 1(e));
 *   TAUREX: bilinear in log10 P and T, clamped above the grid, zero when both
 *           P and T lie below it (TauREx 3 `taurex/opacity/
 *           interpolateopacity.py`, its default `linear` temperature mode). */
typedef enum { SBI_RT_PT_PRT = 0, SBI_RT_PT_TAUREX = 1 } sbi_rt_pt_scheme;

/* A line cross-section table resampled onto the model grid. */
typedef struct sbi_rt_line_table {
    sbi_rt_pt_scheme scheme;
    int n_p, n_t, w;
    double *p;    /* (n_p) [bar] */
    double *t;    /* (n_t) [K] */
    float *sigma; /* (n_p, n_t, W) [cm^2 molecule^-1] */
} sbi_rt_line_table;

int sbi_rt_line_table_init(sbi_rt_pt_scheme scheme, int n_p, const double *p_bar, int n_t, const double *t, int w,
                           sbi_rt_line_table *tab);
void sbi_rt_line_table_free(sbi_rt_line_table *tab);
/* The (up to) four table rows and weights of (p_bar, t): sigma(p, t) =
 * sum_k wt[k] sigma[row[k]]; row[k] indexes (n_p, n_t) as ip * n_t + it. */
void sbi_rt_line_weights(const sbi_rt_line_table *tab, double p_bar, double t, int row[4], double wt[4]);
/* out (W) += c * sigma(p_bar, t). */
void sbi_rt_line_add(const sbi_rt_line_table *tab, double p_bar, double t, double c, double *out);

/* ---- correlated-k (src/forward/rt/ck.c) ----------------------------------
 * G = g-points.  A k-distribution is G coefficients on the g-points g (G)
 * with quadrature weights w_g (G, summing to 1), non-decreasing in g.
 * Arrays of per-layer, per-bin distributions are (N, W, G) row-major, so one
 * layer is a row of W * G floats and the chord sum stays one sgemm. */

#define SBI_RT_CK_MAX_G 64

/* A correlated-k table rebinned onto the model bins. */
typedef struct sbi_rt_ck_table {
    int n_p, n_t, w, n_g;
    double *p; /* (n_p) [bar] */
    double *t; /* (n_t) [K] */
    float *k;  /* (n_p, n_t, W, G) [cm^2 molecule^-1] */
} sbi_rt_ck_table;

int sbi_rt_ck_table_init(int n_p, const double *p_bar, int n_t, const double *t, int w, int n_g,
                         sbi_rt_ck_table *tab);
void sbi_rt_ck_table_free(sbi_rt_ck_table *tab);

/* The model bins around the model wavelengths lambda (W, increasing): bin l
 * reaches from the geometric mean of lambda_{l-1} and lambda_l to that of
 * lambda_l and lambda_{l+1} (half a step beyond the end points), given in
 * wavenumber: nu_lo (W) < nu_hi (W) [cm^-1]. */
void sbi_rt_ck_model_bins(int w, const double *lambda_um, double *nu_lo, double *nu_hi);

/* Rebin one (P, T) row of a table, k (n_nu, G) on the bins edges (n_nu + 1)
 * [cm^-1], onto the model bins: out (W, G).  A model bin inside one table
 * bin takes its distribution; a model bin over several takes their mixture
 * (the k-distribution of the wider bin: every (k_jg, f_j w_g) pair, f_j the
 * fraction of the model bin that table bin j covers and the uncovered rest
 * at k = 0, sorted by k and put back on the g-points as
 * sbi_rt_ck_overlap does), which is how exo-k and petitRADTRANS
 * (`rebin_ck_line_opacities`) bin k-tables down. */
int sbi_rt_ck_rebin(int n_g, const double *g, const double *wg, int64_t n_nu, const double *edges, const double *k,
                    int w, const double *nu_lo, const double *nu_hi, float *out);

/* k (W, G) = c * k_tab(p_bar, t) over model bins [l0, l1) (out holds
 * (l1 - l0, G)), bilinear in P and T and clamped to the grid edges, as
 * petitRADTRANS interpolates its c-k and line tables
 * (`fortran_inputs.f90: interpolate_line_opacities`). */
void sbi_rt_ck_interp(const sbi_rt_ck_table *tab, double p_bar, double t, double c, int l0, int l1, float *out);

/* Random overlap with resorting and rebinning (Lacis & Oinas 1991;
 * Amundsen et al. 2017, A&A 598, A97), as petitRADTRANS
 * `fortran_radtrans_core.f90: combine_ck_opacities` does it: for two
 * distributions a and b, the G^2 sums a_i + b_j with weights w_i w_j are
 * sorted by k, each is placed at the midpoint of its cumulative weight
 * (g = 0 and g = 1 taking the smallest and largest sum) and the result is
 * interpolated linearly back onto the g-points (clamped to [min, max] where
 * pRT would extrapolate below its first point).  A species whose largest k
 * is below `threshold` (pRT: 1e-3) times the largest smallest-g k of all
 * species in that bin is skipped, as pRT skips it. */
typedef struct sbi_rt_ck_mixer {
    int n_g;
    float threshold;
    float g[SBI_RT_CK_MAX_G], w[SBI_RT_CK_MAX_G];
    float *ww;          /* (G, G) w_i w_j */
    float *buf;         /* merge buffers: 4 (G^2 + G) */
    long long n_overlaps, n_skipped; /* statistics, for the benchmark */
} sbi_rt_ck_mixer;

int sbi_rt_ck_mixer_init(int n_g, const double *g, const double *w, sbi_rt_ck_mixer *mx);
void sbi_rt_ck_mixer_free(sbi_rt_ck_mixer *mx);
/* The G^2 pairs of a and b (G each) sorted by k: k_sorted, w_sorted (G^2). */
void sbi_rt_ck_overlap_pairs(sbi_rt_ck_mixer *mx, const float *a, const float *b, float *k_sorted, float *w_sorted);
/* a (G) = the random overlap of a and b (G). */
void sbi_rt_ck_overlap(sbi_rt_ck_mixer *mx, float *a, const float *b);
/* out (G) = random overlap of the S distributions k_s[s] (G each), species
 * 0 first (it carries the gray continuum); out may alias k_s[0]. */
void sbi_rt_ck_mix(sbi_rt_ck_mixer *mx, int n_s, const float *const *k_s, float *out);

/* Opacity kappa (N, W, G) [cm^2 g^-1] of a layered atmosphere: per layer i
 * and model bin l, gray[i][l] (the continuum and every opacity that does not
 * depend on g) plus c[0] k_0(P_i, T_i), overlapped with c[s] k_s(P_i, T_i)
 * for s = 1 .. S-1; c = mass fraction / (molar mass amu).  The wavelength
 * loop is blocked (`blk` bins at a time) so that the table rows a spectrum
 * needs are read from memory once, not once per layer.  work: at least
 * sbi_rt_ck_kappa_work(n_s, n_g, blk) floats. */
size_t sbi_rt_ck_kappa_work(int n_s, int n_g, int blk);
void sbi_rt_ck_kappa(sbi_rt_ck_mixer *mx, int n_s, const sbi_rt_ck_table *const *tabs, const double *c, int n,
                     int w, const double *p_bar, const double *t, const float *gray, int blk, float *work,
                     float *kappa);

/* tau (N, cols) = m alpha (N, cols), m the lower-triangular chord matrix. */
void sbi_rt_chord_tau(int n, int cols, const float *m, const float *alpha, float *tau);
/* Transit radius squared rt2 (W) from chord optical depths tau (N, W, G):
 * petitRADTRANS averages the chord transmission over g before the radius
 * integral (`compute_transit_radii`: T_i = sum_g w_g exp(-tau_ig)), so the
 * absorbed fraction is A_i = sum_g w_g (1 - exp(-tau_ig)) and
 *   R_T^2 = r_N^2 + sum_{i=2}^{N} [A_{i-1} r_{i-1} + A_i r_i] (r_{i-1} - r_i).
 * tau is overwritten.  G = 1, wg = {1} is the line-by-line case. */
void sbi_rt_transit_from_tau(int n, int w, int n_g, const float *wg, float *tau, const double *r, double *rt2);
/* The two halves of sbi_rt_transit_from_tau: the absorbed fraction A (N, W)
 * written over the front of tau (N, W, G), and the radius integral of A. */
void sbi_rt_ck_absorbed(int n, int w, int n_g, const float *wg, float *tau);
void sbi_rt_transit_from_absorbed(int n, int w, const float *a, const double *r, double *rt2);
/* sbi_rt_ck_absorbed for G > 1, with the same result, faster where a
 * (layer, bin) is opaque (every tau > 18: A = sum_g w_g) or thin (every
 * tau < 1e-3: the series alone, no exponential). */
void sbi_rt_ck_absorbed_g(int n, int w, int n_g, const float *wg, float *tau);
/* Both steps: alpha (N, W, G) [cm^-1], tau (N, W, G) workspace. */
void sbi_rt_transit_radius2_ck(int n, int w, int n_g, const float *wg, const float *m, const float *alpha,
                               const double *r, float *tau, double *rt2);

/* Emergent flux F_nu (W) as sbi_rt_emission_flux, for kappa (N, W, G): the
 * flux of each g-point weighted by w_g (pRT `compute_ck_flux` with one
 * species: the g-mean transmission enters the formal solution linearly).
 * work: sbi_rt_emission_ck_work(w, n_g, n_mu) floats. */
size_t sbi_rt_emission_ck_work(int w, int n_g, int n_mu);
void sbi_rt_emission_flux_ck(int n, int w, int n_g, const float *wg, const double *p_bar, const double *t,
                             const float *kappa, double g, const double *nu, int n_mu, const double *mu,
                             const double *w_mu, float *work, double *flux_nu);

/* out (l1 - l0) += c * sigma(p_bar, t) over model wavelengths [l0, l1), in
 * float: the blocked form of sbi_rt_line_add (src/forward/rt/ck.c), so that a
 * wavelength loop over blocks reads each table row once per spectrum. */
void sbi_rt_line_add_block(const sbi_rt_line_table *tab, double p_bar, double t, double c, int l0, int l1,
                           float *out);
/* The same sum for several tables at once, with the bracketing done once
 * per layer rather than once per block (src/forward/rt/lbl.c):
 * sbi_rt_line_terms writes the four rows (pointers to the start of each
 * table row) and their weights times c; sbi_rt_lines_add_block adds
 * out (l1 - l0) += sum_k coef[k] rows[k][l0..l1) for n_tabs tables, four
 * terms each, in the order of sbi_rt_line_add_block (with fused
 * multiply-adds: equal to float rounding). */
void sbi_rt_line_terms(const sbi_rt_line_table *tab, double p_bar, double t, double c, const float **rows,
                       float *coef);
void sbi_rt_lines_add_block(int n_tabs, const float *const *rows, const float *coef, int l0, int l1, float *out);
/* kappa (N, W) += sum_k c_k sigma_k(p_i, t_i) for line tables on one (P, T)
 * grid and scheme (sbi_rt_line_tables_same_grid) with the abundances c_k
 * the same in every layer: over blocks of blk wavelengths (0: all), the
 * species are summed on each table row that a layer uses, and each layer
 * then interpolates four summed rows rather than four rows per species
 * (src/forward/rt/lbl.c).  Equal to the per-species sum to float rounding.
 * work: sbi_rt_lines_summed_work(tabs[0], n, blk) floats, iwork:
 * sbi_rt_lines_summed_iwork(tabs[0], n) ints; at most 64 tables. */
int sbi_rt_line_tables_same_grid(const sbi_rt_line_table *a, const sbi_rt_line_table *b);
size_t sbi_rt_lines_summed_work(const sbi_rt_line_table *tab, int n, int blk);
size_t sbi_rt_lines_summed_iwork(const sbi_rt_line_table *tab, int n);
void sbi_rt_lines_add_summed(int n_tabs, const sbi_rt_line_table *const *tabs, const double *c, int n,
                             const double *p_bar, const double *t, int blk, float *work, int *iwork, float *kappa);

/* The other way to combine species, petitRADTRANS's own without scattering
 * (`compute_transit_radii`, `compute_ck_flux`, the "mean transmission
 * method"): each species' transmission is averaged over g and the species'
 * transmissions are multiplied, T = prod_s sum_g w_g exp(-tau_sg), the
 * continuum riding with species 0.  It is the random overlap without the
 * resorting step, at S times the transfer cost.
 *
 * alpha (N, W, G) = rho_i (c k_tab(P_i, T_i) + gray[i][l]) for one species,
 * in wavelength blocks; gray and rho may be NULL (none; rho = 1). */
void sbi_rt_ck_alpha_species(const sbi_rt_ck_table *tab, double c, int n, int w, const double *p_bar,
                             const double *t, const double *rho, const float *gray, int blk, float *alpha);
/* Emergent flux with the product of the species' g-mean transmissions in
 * the formal solution of sbi_rt_emission_flux; species 0 carries gray (N, W)
 * and, from layer deck_from on (-1: none), the deck opacity deck_kappa.
 * Blocked in wavelength with the layers inside, as the aee kernel; g-rows
 * whose exp(-tau / mu) reached the fast exp's floor (2e-38) in a whole
 * block are dropped.  Each species' distinct (P, T) table rows of a block
 * are copied once with g outermost, so that the layers' interpolation, the
 * optical depths and the g-sums run over contiguous bins; the g-rows whose
 * tau / mu is below 0.35 in the whole block take a polynomial instead of
 * the exponential, from their moments summed over the rows, at every angle
 * at once.  work: sbi_rt_emission_ck_product_work floats.  The
 * _ref kernel (work: sbi_rt_emission_ck_product_ref_work floats) is the
 * previous one, which interpolates (bin, g) rows and transposes them in
 * every layer: the oracle of the tests and the benchmark; the two agree to
 * float rounding (4e-7 relative on the benchmark).  At most 64 species. */
size_t sbi_rt_emission_ck_product_work(int n, int w, int n_g, int n_s, int n_mu);
void sbi_rt_emission_flux_ck_product(int n, int w, int n_g, const float *wg, int n_s,
                                     const sbi_rt_ck_table *const *tabs, const double *c, const float *gray,
                                     const double *p_bar, const double *t, double g, int deck_from,
                                     float deck_kappa, const double *nu, int n_mu, const double *mu,
                                     const double *w_mu, float *work, double *flux_nu);
size_t sbi_rt_emission_ck_product_ref_work(int n, int w, int n_g, int n_s, int n_mu);
void sbi_rt_emission_flux_ck_product_ref(int n, int w, int n_g, const float *wg, int n_s,
                                         const sbi_rt_ck_table *const *tabs, const double *c, const float *gray,
                                         const double *p_bar, const double *t, double g, int deck_from,
                                         float deck_kappa, const double *nu, int n_mu, const double *mu,
                                         const double *w_mu, float *work, double *flux_nu);

/* Adaptive equivalent extinction (Amundsen et al. 2017, A&A 598, A97, the
 * equivalent extinction of Edwards 1996, J. Atmos. Sci. 53, 1921, with the
 * major gas chosen adaptively): in each layer and model bin one species,
 * the major absorber, keeps its k-distribution and every other species
 * enters as a gray (equivalent) extinction: its k-distribution replaced by
 * the g-mean sum_g w_g k_g, the optically thin limit of Edwards' mean
 * weighted by the minor gas's own g-point fluxes, sum_g w_g k_g F_g /
 * sum_g w_g F_g, which would cost one more solution per minor species.  So
 * the mixture is one k(g) per (layer, bin),
 *   kappa_g = c_M k_M,g + sum_{s != M} c_s sum_g' w_g' k_s,g' + gray,
 * with one chord product (transmission) or one formal solution (emission),
 * as for a single species.  The major absorber is chosen adaptively, per
 * layer and bin, as the species whose treatment as gray would cost most:
 * the largest c_s sum_g w_g |k_s,g - mean_s| (a gray species is never major,
 * so a gray species added to another shifts that one's distribution
 * exactly).  The g-means and mean deviations are tabulated per (P, T) row
 * at init and interpolated like k, so only the major species' G values
 * are interpolated per (layer, bin). */
typedef struct sbi_rt_ck_aee {
    int n_s, n_g;
    float wg[SBI_RT_CK_MAX_G];    /* (G) quadrature weights */
    const sbi_rt_ck_table **tabs; /* (S), borrowed: valid until free */
    float **mean;                 /* (S) x (n_p, n_t, W): sum_g w_g k_g */
    float **dev;                  /* (S) x (n_p, n_t, W): sum_g w_g |k_g - mean| */
} sbi_rt_ck_aee;

/* The tables must share n_g and w (every k-table of a model does). */
int sbi_rt_ck_aee_init(int n_s, const sbi_rt_ck_table *const *tabs, const double *wg, sbi_rt_ck_aee *ae);
void sbi_rt_ck_aee_free(sbi_rt_ck_aee *ae);
/* out (N, W, G) = rho_i kappa_g of the mixture above (rho NULL: kappa
 * itself), c (S) = mass fraction / (molar mass amu), gray (N, W): what does
 * not depend on g.  Blocked in wavelength like sbi_rt_ck_kappa.  work:
 * sbi_rt_ck_aee_work(n_s, n, blk) floats. */
size_t sbi_rt_ck_aee_work(int n_s, int n, int blk);
void sbi_rt_ck_kappa_aee(const sbi_rt_ck_aee *ae, const double *c, int n, int w, const double *p_bar,
                         const double *t, const float *gray, const double *rho, int blk, float *work, float *out);
/* Emergent flux F_nu (W) of sbi_rt_emission_flux_ck for that mixture, with
 * the opacity made layer by layer inside the formal solution, a block of
 * `blk` bins at a time (table rows read once per spectrum, nothing of size
 * N W G stored); from layer deck_from on (-1: none) kappa = deck_kappa.
 * work: sbi_rt_emission_ck_aee_work floats. */
size_t sbi_rt_emission_ck_aee_work(int n_s, int n, int n_g, int n_mu, int blk);
void sbi_rt_emission_flux_ck_aee(const sbi_rt_ck_aee *ae, const double *c, const float *gray, int n, int w,
                                 const double *p_bar, const double *t, double g, int deck_from, float deck_kappa,
                                 const double *nu, int n_mu, const double *mu, const double *w_mu, int blk,
                                 float *work, double *flux_nu);

/* Transit radius squared rt2 (W) of the aee mixture or of the product of
 * the species' g-mean transmissions, made a chunk of `cb` bins at a time:
 * alpha (N, cb, G) from the tables, its chord product (sbi_rt_chord_tau),
 * the absorbed fraction over g, so that nothing of size N W G is stored or
 * read from memory.  rho (N) [g cm^-3]; from layer deck_from on (-1: none)
 * alpha = deck_alpha (the product: species 0's).  The spectra of the
 * whole-grid kernels above, to float rounding.  work:
 * sbi_rt_transit_ck_work floats.
 * The product's chord optical depths are linear in the table rows its
 * layers interpolate: per species, F (N, R) = the chord matrix times rho and
 * the bilinear weights, summed onto the R distinct (P, T) rows (about 20
 * for 100 layers on pRT's grid), and a chunk's optical depths are one sgemm
 * of F by those rows (g outermost), per block of rays with the rows its
 * layers use, in place of interpolating alpha and its triangular product;
 * with more rows than half the rays, the interpolation and strmm.  Rays
 * opaque (tau > 18) at every bin in the gray part (species 0's lower bound)
 * or at every (bin, g) of a species absorb 1 and are left out of the
 * species after.  sbi_rt_transit_ck_product_ref is the previous kernel
 * (interpolated alpha, one strmm per species over all rays), the oracle of
 * the tests and the benchmark; the two agree to float rounding (4e-9
 * relative on the benchmark; the product keeps interpolated k below 1e-30
 * cm^2 g^-1, which the reference zeroes).  At most 64 species, as
 * sbi_rt_ck_kappa (the family allows 32). */
size_t sbi_rt_transit_ck_work(int n_s, int n, int w, int n_g, int cb);
void sbi_rt_transit_ck_aee(const sbi_rt_ck_aee *ae, const double *c, int n, int w, const double *p_bar,
                           const double *t, const float *gray, const double *rho, int deck_from, float deck_alpha,
                           const float *chord, const double *r, int cb, float *work, double *rt2);
void sbi_rt_transit_ck_product(int n, int w, int n_g, const float *wg, int n_s, const sbi_rt_ck_table *const *tabs,
                               const double *c, const double *p_bar, const double *t, const float *gray,
                               const double *rho, int deck_from, float deck_alpha, const float *chord,
                               const double *r, int cb, float *work, double *rt2);
void sbi_rt_transit_ck_product_ref(int n, int w, int n_g, const float *wg, int n_s,
                                   const sbi_rt_ck_table *const *tabs, const double *c, const double *p_bar,
                                   const double *t, const float *gray, const double *rho, int deck_from,
                                   float deck_alpha, const float *chord, const double *r, int cb, float *work,
                                   double *rt2);

/* ---- transmission ------------------------------------------------------- */

/* Chord path-length matrix m (N, N), float, so that the chord optical depth
 * of the ray grazing layer i is tau_i = sum_j m[i][j] alpha_j (pRT's
 * trapezoid: tau_i = sum_{j<i} (alpha_j + alpha_{j+1}) ds_{j,i},
 * ds_{j,i} = sqrt(r_j^2 - r_i^2) - sqrt(r_{j+1}^2 - r_i^2)).  r (N) decreasing. */
void sbi_rt_chord_matrix(int n, const double *r, float *m);

/* Transit radius squared rt2 (W) [cm^2] from the extinction alpha (N, W)
 * [cm^-1] (kappa rho).  tau (N, W) is workspace.  tau = m alpha is one sgemm;
 * then, with T_i = exp(-tau_i) and r_N the deepest radius (pRT
 * `compute_transit_radii`),
 *   R_T^2 = r_N^2 + sum_{i=2}^{N} [(1 - T_{i-1}) r_{i-1} + (1 - T_i) r_i] (r_{i-1} - r_i). */
void sbi_rt_transit_radius2(int n, int w, const float *m, const float *alpha, const double *r, float *tau,
                            double *rt2);
/* The same R_T^2 (W) from kappa (N, W) [cm^2 g^-1] and rho (N) [g cm^-3]
 * (src/forward/rt/lbl.c): alpha = kappa rho (in double, rounded to float),
 * the chord product and the radius integral over blocks of blk wavelengths
 * (0: all), so that alpha, tau and the absorbed fraction of a block stay in
 * cache.  Layers from deck_from on (-1: none) take alpha = deck_alpha (an
 * opaque deck).  work: sbi_rt_transit_kappa_work(n, w, blk) floats. */
size_t sbi_rt_transit_kappa_work(int n, int w, int blk);
/* Its two steps on the block of wavelengths [l0, l1): tau (N, l1 - l0) =
 * m alpha for the rays above the returned n_open, the rays from n_open on
 * being opaque (tau > 18) at every wavelength of the block by a lower bound
 * of their optical depth, the sum over their few deepest layers (their rows
 * hold alpha); then R_T^2 (l1 - l0) from tau, which is overwritten, with
 * those rays absorbing 1. */
int sbi_rt_chord_tau_kappa(int n, int w, const float *m, const float *kappa, const double *rho, int deck_from,
                           float deck_alpha, int l0, int l1, float *tau);
void sbi_rt_transit_block(int n, int n_open, int nb, float *tau, const double *r, double *rt2);
/* The product step alone, tau (N, nb) holding alpha on entry in the layers
 * above deck_from (-1: none; the deck's rows are set here). */
int sbi_rt_chord_tau_alpha(int n, int nb, const float *m, int deck_from, float deck_alpha, float *tau);
void sbi_rt_transit_radius2_kappa(int n, int w, const float *m, const float *kappa, const double *rho,
                                  int deck_from, float deck_alpha, const double *r, int blk, float *work,
                                  double *rt2);

/* The line-by-line opacity of one spectrum made a block of wavelengths at a
 * time, where it is used (src/forward/rt/lbl.c), rather than as a whole
 * kappa (N, W), which does not fit in L2 (2 MB at 100 x 5,000):
 *   kappa[i][l] = base[i][l] + sum_c CIA_c(t_i)[l] scale_c[i]
 *                 + sum_k c_k sigma_k(p_i, t_i)[l],
 * equal to float rounding to sbi_rt_cia_add and sbi_rt_lines_add_summed
 * (line tables on one (P, T) grid; else sbi_rt_lines_add_block) on the
 * whole rows.  CIA tables on the same wavenumber grid are summed at its
 * points (sc alpha / max alpha), then interpolated once, eight model
 * wavelengths at a time by a permutation of eight consecutive table values
 * (sbi_rt_cia grp, lane): no short loops over the runs between two table
 * points, no gathers.  _init takes what does not change between spectra
 * (the tables, which CIA tables share a grid); _prepare what does not change
 * between blocks: each layer's line-table rows and weights and the CIA
 * values at the tables' points (the exponentials). */
typedef struct sbi_rt_lbl_opacity {
    int n, w, blk;                       /* layers, model wavelengths, block */
    int n_tabs, summed;                  /* line tables; 1: on one (P, T) grid, summed on the rows */
    const sbi_rt_line_table **tabs;      /* (n_tabs) borrowed */
    int n_cia;
    const sbi_rt_cia **cia;              /* (n_cia) borrowed */
    int *cia_set;                        /* (n_cia) the table's grid: tables on one grid are summed */
    int n_sets, *set_tab;                /* grids, and a table on each */
    size_t cia_stride;                   /* max n_nu + 8 */
    float *cia_val;                      /* (n_sets, N, cia_stride) per spectrum: sum of sc alpha / max */
    float *cia_tmp;                      /* (cia_stride) */
    double *c;                           /* (n_tabs) per spectrum */
    const float **rows;                  /* (N, n_tabs, 4) per spectrum, unsummed */
    float *coef;                         /* (N, n_tabs, 4) or (N, 4) summed */
    int *row, *slot;                     /* (N, 4), (n_p n_t) summed */
    float *sum;                          /* (n_p n_t, blk) summed */
    float *kblk, *tau;                   /* (N, blk) each: the block's alpha and optical depths */
} sbi_rt_lbl_opacity;

/* tabs, cia: borrowed until _free; at most 64 line tables. */
int sbi_rt_lbl_opacity_init(int n, int w, int blk, int n_tabs, const sbi_rt_line_table *const *tabs, int n_cia,
                            const sbi_rt_cia *const *cia, sbi_rt_lbl_opacity *op);
void sbi_rt_lbl_opacity_free(sbi_rt_lbl_opacity *op);
/* c (n_tabs) the line tables' abundances [molecule g^-1], the same in every
 * layer; cia_scale (n_cia, N) each CIA term's factor n_a n_b / rho (not > 0:
 * none). */
void sbi_rt_lbl_opacity_prepare(sbi_rt_lbl_opacity *op, const double *c, const double *p_bar, const double *t,
                                const double *cia_scale);
/* kappa[i][0 .. l1 - l0) for the layers i < n_rows, row i at kappa + i ld:
 * base + CIA + lines over [l0, l1), a block of _init's blk (the last one
 * shorter); base row i at base + i base_stride + l0 (base_stride 0: one
 * row for all layers).  With rho (N) [g cm^-3] not NULL, alpha = kappa rho
 * instead, the product in float. */
void sbi_rt_lbl_opacity_block(sbi_rt_lbl_opacity *op, const float *base, size_t base_stride, const double *rho,
                              int l0, int l1, int n_rows, float *kappa, size_t ld);
/* sbi_rt_transit_radius2_kappa with the kappa of each block made by
 * sbi_rt_lbl_opacity_block in op's block workspace: R_T^2 (W) with the deck
 * from layer deck_from on (-1: none), and, when rt2_clear is not NULL, also
 * without it (patchy clouds) from the same kappa.  Without rt2_clear the
 * layers under the deck are not made.  alpha = kappa rho is taken in float
 * (sbi_rt_transit_radius2_kappa: in double, rounded to float), which
 * changes it by at most a float rounding. */
void sbi_rt_transit_radius2_lbl(sbi_rt_lbl_opacity *op, const float *base, size_t base_stride, const float *m,
                                const double *rho, int deck_from, float deck_alpha, const double *r, double *rt2,
                                double *rt2_clear);

/* ---- emission ----------------------------------------------------------- */

/* Gauss-Legendre nodes and weights on [0, 1] (n_mu <= 8). */
int sbi_rt_gauss_legendre01(int n_mu, double *mu, double *w);

/* Emergent flux F_nu (W) [erg s^-1 cm^-2 Hz^-1] at the top of the atmosphere
 * without scattering (pRT `compute_optical_depths` + `compute_ck_flux`, one
 * g-point): tau_1 = 0, tau_i = tau_{i-1} + (kappa_i + kappa_{i-1}) (P_i - P_{i-1}) / (2 g);
 * I(mu) = sum_{i<N} (B_i + B_{i+1})/2 (T_i - T_{i+1}) + B_N T_N, T_i = exp(-tau_i/mu);
 * F = 2 pi sum_mu mu w_mu I(mu).  kappa (N, W) [cm^2 g^-1], nu (W) [Hz].
 * In float (src/forward/rt/lbl.c), in blocks of wavelengths taken layer by
 * layer, with B_nu in float; the sum over angles in double.  work:
 * sbi_rt_emission_work(W, n_mu) floats. */
size_t sbi_rt_emission_work(int w, int n_mu);
void sbi_rt_emission_flux(int n, int w, const double *p_bar, const double *t, const float *kappa, double g,
                          const double *nu, int n_mu, const double *mu, const double *w_mu, float *work,
                          double *flux_nu);

/* ---- instrument --------------------------------------------------------- */

/* Flux-conserving binning as a sparse (B, W) matrix: row b holds the weights
 * of the exact integral of the piecewise-linear model spectrum over
 * [lo_b, hi_b] divided by hi_b - lo_b (pRT `rebin_spectrum_bin`). */
typedef struct sbi_rt_binning {
    int n_bins;
    int64_t *row; /* (B + 1) offsets into col / weight */
    int *col;     /* model wavelength indices */
    double *weight;
} sbi_rt_binning;

/* lambda (W) increasing; lo, hi (B) with lo < hi, inside [lambda_0, lambda_{W-1}].
 * SBI_ERR_INPUT naming the bin otherwise. */
int sbi_rt_binning_create(int w, const double *lambda, int b, const double *lo, const double *hi,
                          sbi_rt_binning *bin);
/* out (B) = bin * model (W). */
void sbi_rt_binning_apply(const sbi_rt_binning *bin, const double *model, double *out);
void sbi_rt_binning_destroy(sbi_rt_binning *bin);

/* A photometric band: a top-hat on [lo, hi] (n = 0) or a filter curve
 * tabulated at n >= 2 points, linear between them and zero outside; lo and
 * hi then bound the part of the curve where it is not zero. */
typedef struct sbi_rt_band {
    double lo, hi;        /* [um] */
    int n;                /* tabulated points; 0 for a top-hat */
    const double *lambda; /* (n) [um], strictly increasing */
    const double *trans;  /* (n) transmission, >= 0 */
} sbi_rt_band;

/* Band averages as a sparse (B, W) matrix in `bin` (free with
 * sbi_rt_binning_destroy): row b holds the weights of
 *   <F>_b = int F(l) T_b(l) l^p dl / int T_b(l) l^p dl,
 * F the piecewise-linear model spectrum on lambda (W), p = 1 when `photon`
 * (a photon-counting detector, the convention for band fluxes) and p = 0
 * otherwise (a plain transmission-weighted mean, used for transit depths).
 * The integrals are exact: each piece between consecutive model and filter
 * points is a cubic at most, integrated by 3-point Gauss-Legendre.
 * SBI_ERR_INPUT naming the band when it reaches outside the model grid or
 * its curve is zero everywhere. */
int sbi_rt_band_weights(int w, const double *lambda, int b, const sbi_rt_band *bands, int photon,
                        sbi_rt_binning *bin);

/* Gaussian line-spread convolution at resolving power R on a grid uniform in
 * ln lambda with step dlnl: sigma = (1/R)/(2 sqrt(2 ln 2)) in ln lambda
 * (pRT `Data.convolve`), kernel truncated at 4 sigma and renormalised at the
 * grid edges.  in, out (W) must not alias. */
void sbi_rt_convolve(int w, double dlnl, double resolution, const double *in, double *out);

#endif
