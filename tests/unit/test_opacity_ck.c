/* Correlated-k tables: a petitRADTRANS-3 k-table fixture written here with
 * known values; the reader, rebinning and (P, T) interpolation against hand
 * computation; the random-overlap combination against analytic cases; the
 * g-integrated transmission and emission against the line-by-line kernels
 * for k constant in g; the adaptive equivalent extinction (aee) in its
 * exact limits and against the random overlap on bench-like tables; the
 * product's kernels on the tables' rows against the reference kernels;
 * malformed files; and the transmission and emission families with a
 * k-table species against the same opacity as a line-by-line table.
 * Usage: test_opacity_ck WORK_DIR */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exosbi/forward.h"
#include "exosbi/opacity_io.h"
#include "exosbi/rt.h"
#include "exosbi/task.h"
#include "testutil.h"

static char work[2048];

static void expect_error(int status, int code, const char *part1, const char *part2)
{
    const char *msg = sbi_error_message();
    SBI_ASSERT_EQ_INT(status, code);
    SBI_ASSERT(strstr(msg, part1) != NULL);
    if (part2) SBI_ASSERT(strstr(msg, part2) != NULL);
    if (status != code || !strstr(msg, part1) || (part2 && !strstr(msg, part2)))
        fprintf(stderr, "  message was: %s\n", msg);
    sbi_error_clear();
}

/* pRT's default 16 g-points and weights (two 8-point Gauss-Legendre sets on
 * [0, 0.9] and [0.9, 1]). */
static const double prt_g[16] = {0.0178695646, 0.0915000852, 0.2135104155, 0.3674544109, 0.5325455891, 0.6864895845,
                                 0.8084999148, 0.8821304354, 0.9019855072, 0.9101666761, 0.9237233795, 0.9408282679,
                                 0.9591717321, 0.9762766205, 0.9898333239, 0.9980144928};
static const double prt_w[16] = {0.0455528413, 0.1000714655, 0.1411679906, 0.1632077025, 0.1632077025, 0.1411679906,
                                 0.1000714655, 0.0455528413, 0.0050614268, 0.0111190517, 0.0156853323, 0.0181341892,
                                 0.0181341892, 0.0156853323, 0.0111190517, 0.0050614268};

/* ---- fixture: 2 pressures x 2 temperatures x 4 bins x 4 g-points --------- */

enum { FG = 4, FNU = 4 };
static double fixture_k(int ip, int it, int j, int q) { return (1.0 + ip) * (1.0 + 2.0 * it) * (j + 1.0) * (q + 1.0) * 1e-22; }

static const double fx_p[2] = {1e-3, 1e-1}, fx_t[2] = {500.0, 1000.0};
static const double fx_edges[FNU + 1] = {1000.0, 2000.0, 3000.0, 4000.0, 5000.0};
static const double fx_centers[FNU] = {1500.0, 2500.0, 3500.0, 4500.0};
static const double fx_g[FG] = {0.1, 0.35, 0.65, 0.9}, fx_w[FG] = {0.2, 0.3, 0.3, 0.2}, fx_ngauss[1] = {FG};
static double fx_k[2 * 2 * FNU * FG];
static const double fx_mass[1] = {18.01528};
static const char *fx_name[1] = {"H2O"};

/* [0] kcoeff [1] p [2] t [3] bin_edges [4] bin_centers [5] samples [6] weights [7] ngauss [8] mol_mass [9] mol_name */
static void fixture(sbi_opacity_h5_dataset ds[10])
{
    const sbi_opacity_h5_dataset d[10] = {
        {"kcoeff", 4, {2, 2, FNU, FG}, fx_k, NULL, "cm^2/molecule"},
        {"p", 1, {2}, fx_p, NULL, "bar"},
        {"t", 1, {2}, fx_t, NULL, "K"},
        {"bin_edges", 1, {FNU + 1}, fx_edges, NULL, "cm^-1"},
        {"bin_centers", 1, {FNU}, fx_centers, NULL, "cm^-1"},
        {"samples", 1, {FG}, fx_g, NULL, NULL},
        {"weights", 1, {FG}, fx_w, NULL, NULL},
        {"ngauss", 1, {1}, fx_ngauss, NULL, NULL},
        {"mol_mass", 1, {1}, fx_mass, NULL, "AMU"},
        {"mol_name", 1, {1}, NULL, fx_name, NULL},
    };
    for (int ip = 0; ip < 2; ++ip)
        for (int it = 0; it < 2; ++it)
            for (int j = 0; j < FNU; ++j)
                for (int q = 0; q < FG; ++q) fx_k[((ip * 2 + it) * FNU + j) * FG + q] = fixture_k(ip, it, j, q);
    memcpy(ds, d, sizeof d);
}

static void test_reader_and_interp(void)
{
    char path[2300];
    sbi_opacity_h5_dataset ds[10];
    sbi_ck_file f = NULL;
    sbi_ck_info info;
    double row[FNU * FG];
    /* Model bins = the table's bins 1 and 2 (2000-3000, 3000-4000 cm^-1),
     * and a third spanning half of bin 2 and half of bin 3. */
    const double nu_lo[3] = {2000.0, 3000.0, 3500.0}, nu_hi[3] = {3000.0, 4000.0, 4500.0};
    sbi_rt_ck_table tab;

    fixture(ds);
    snprintf(path, sizeof path, "%s/H2O.R1000.ktable.petitRADTRANS.h5", work);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    SBI_ASSERT(sbi_opacity_file_is_ck(path));
    SBI_ASSERT_OK(sbi_ck_file_open(path, &f, &info));
    if (!f) return;
    SBI_ASSERT_EQ_INT(info.n_p, 2);
    SBI_ASSERT_EQ_INT(info.n_t, 2);
    SBI_ASSERT_EQ_INT(info.n_g, FG);
    SBI_ASSERT_EQ_INT(info.n_nu, FNU);
    SBI_ASSERT_NEAR(info.mol_mass, 18.01528, 1e-12, 0);
    SBI_ASSERT(!strcmp(info.mol_name, "H2O"));
    SBI_ASSERT_NEAR(info.weights[1], 0.3, 1e-12, 0);
    SBI_ASSERT_NEAR(info.edges[4], 5000.0, 0, 0);
    /* A partial row through the hyperslab. */
    SBI_ASSERT_OK(sbi_ck_file_read(f, 1, 0, 1, 2, row));
    SBI_ASSERT_NEAR(row[0], fixture_k(1, 0, 1, 0), 1e-15, 0);
    SBI_ASSERT_NEAR(row[FG + 3], fixture_k(1, 0, 2, 3), 1e-15, 0);

    SBI_ASSERT_OK(sbi_rt_ck_table_init(2, info.p, 2, info.t, 3, FG, &tab));
    for (int ip = 0; ip < 2; ++ip)
        for (int it = 0; it < 2; ++it) {
            SBI_ASSERT_OK(sbi_ck_file_read(f, ip, it, 0, FNU, row));
            SBI_ASSERT_OK(sbi_rt_ck_rebin(FG, info.g, info.weights, FNU, info.edges, row, 3, nu_lo, nu_hi,
                                          tab.k + (size_t)(ip * 2 + it) * 3 * FG));
        }
    sbi_ck_file_close(&f);
    {
        /* Model bins on a table bin take its distribution; interpolation is
         * bilinear in P and T (pRT), clamped at the grid edges. */
        const double p = 0.05, t = 750.0, fp = (p - 1e-3) / (1e-1 - 1e-3), ft = 0.5, c = 2.0;
        float out[3 * FG];
        sbi_rt_ck_interp(&tab, p, t, c, 0, 2, out);
        for (int l = 0; l < 2; ++l)
            for (int q = 0; q < FG; ++q) {
                double expect = 0;
                for (int ip = 0; ip < 2; ++ip)
                    for (int it = 0; it < 2; ++it)
                        expect += (ip ? fp : 1 - fp) * (it ? ft : 1 - ft) * fixture_k(ip, it, l + 1, q);
                SBI_ASSERT_NEAR(out[l * FG + q], c * expect, 1e-6, 0);
            }
        sbi_rt_ck_interp(&tab, 10.0, 100.0, 1.0, 1, 2, out);
        SBI_ASSERT_NEAR(out[2], fixture_k(1, 0, 2, 2), 1e-6, 0);
        sbi_rt_ck_interp(&tab, 1e-6, 5000.0, 1.0, 1, 2, out);
        SBI_ASSERT_NEAR(out[3], fixture_k(0, 1, 2, 3), 1e-6, 0);
        /* The bin over two table bins: the mixture of both distributions,
         * sorted in g, within their range, its mean the mean of the two. */
        sbi_rt_ck_interp(&tab, 1e-3, 500.0, 1.0, 2, 3, out);
        {
            double mean = 0, expect = 0;
            for (int q = 0; q < FG; ++q) {
                mean += fx_w[q] * out[q];
                expect += fx_w[q] * 0.5 * (fixture_k(0, 0, 2, q) + fixture_k(0, 0, 3, q));
                if (q) SBI_ASSERT(out[q] >= out[q - 1]);
            }
            SBI_ASSERT(out[0] >= fixture_k(0, 0, 2, 0) * (1 - 1e-6));
            SBI_ASSERT(out[FG - 1] <= fixture_k(0, 0, 3, FG - 1) * (1 + 1e-6));
            SBI_ASSERT_NEAR(mean, expect, 0.1, 0);
        }
    }
    sbi_rt_ck_table_free(&tab);
}

/* ---- random overlap ------------------------------------------------------ */

static int pair_compare(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_overlap(void)
{
    sbi_rt_ck_mixer mx;
    float a[16], b[16], z[16], out[16], ks[256], ws[256];
    const float *ptr[3];
    double brute[256], wsum = 0, mean_a = 0, mean_b = 0, mean_out = 0;

    SBI_ASSERT_OK(sbi_rt_ck_mixer_init(16, prt_g, prt_w, &mx));
    for (int q = 0; q < 16; ++q) {
        a[q] = (float)(1e-3 * exp(8.0 * prt_g[q]));     /* a line-rich distribution */
        b[q] = (float)(2e-3 * (1.0 + 20.0 * pow(prt_g[q], 4)));
        z[q] = 0.0f;
        mean_a += prt_w[q] * a[q];
        mean_b += prt_w[q] * b[q];
    }
    /* The G^2 sorted pairs: sorted, the weights sum to 1, and the sums are
     * those of a brute-force sort. */
    sbi_rt_ck_overlap_pairs(&mx, a, b, ks, ws);
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) brute[i * 16 + j] = (double)(a[i] + b[j]);
    qsort(brute, 256, sizeof *brute, pair_compare);
    for (int m = 0; m < 256; ++m) {
        wsum += ws[m];
        if (m) SBI_ASSERT(ks[m] >= ks[m - 1]);
        SBI_ASSERT_NEAR(ks[m], brute[m], 1e-7, 0);
    }
    SBI_ASSERT_NEAR(wsum, 1.0, 1e-6, 0);

    /* a (+) b: sorted in g, between the extreme sums, and the mean over g
     * (the g-integrated absorption in the optically thin limit) is
     * conserved to the resorting error. */
    memcpy(out, a, sizeof out);
    sbi_rt_ck_overlap(&mx, out, b);
    for (int q = 0; q < 16; ++q) {
        mean_out += prt_w[q] * out[q];
        if (q) SBI_ASSERT(out[q] >= out[q - 1]);
    }
    SBI_ASSERT(out[0] >= a[0] + b[0] - 1e-9f && out[15] <= a[15] + b[15] + 1e-9f);
    SBI_ASSERT_NEAR(mean_out, mean_a + mean_b, 0.02, 0);

    /* One species with zero opacity leaves the other unchanged. */
    memcpy(out, a, sizeof out);
    sbi_rt_ck_overlap(&mx, out, z);
    for (int q = 0; q < 16; ++q) SBI_ASSERT_NEAR(out[q], a[q], 1e-5, 0);
    memcpy(out, z, sizeof out);
    sbi_rt_ck_overlap(&mx, out, a);
    for (int q = 0; q < 16; ++q) SBI_ASSERT_NEAR(out[q], a[q], 1e-5, 0);

    /* Two gray species (k constant in g) combine to their sum. */
    {
        float g1[16], g2[16];
        for (int q = 0; q < 16; ++q) {
            g1[q] = 2.5f;
            g2[q] = 0.75f;
        }
        sbi_rt_ck_overlap(&mx, g1, g2);
        for (int q = 0; q < 16; ++q) SBI_ASSERT_NEAR(g1[q], 3.25, 1e-6, 0);
    }

    /* A gray species shifts the other by a constant. */
    {
        float g1[16], sh[16];
        for (int q = 0; q < 16; ++q) {
            g1[q] = 0.5f;
            sh[q] = a[q];
        }
        sbi_rt_ck_overlap(&mx, sh, g1);
        for (int q = 0; q < 16; ++q) SBI_ASSERT_NEAR(sh[q], a[q] + 0.5f, 1e-5, 0);
    }

    /* Mixing three: a species below 1e-3 of the largest k(g_0) is skipped
     * (pRT), and the mix equals the pairwise overlap of the others. */
    {
        float tiny[16], ref[16];
        for (int q = 0; q < 16; ++q) tiny[q] = 1e-9f * a[q];
        memcpy(ref, a, sizeof ref);
        sbi_rt_ck_overlap(&mx, ref, b);
        ptr[0] = a;
        ptr[1] = tiny;
        ptr[2] = b;
        mx.n_skipped = 0;
        sbi_rt_ck_mix(&mx, 3, ptr, out);
        SBI_ASSERT_EQ_INT(mx.n_skipped, 1);
        for (int q = 0; q < 16; ++q) SBI_ASSERT_NEAR(out[q], ref[q], 1e-6, 0);
    }
    sbi_rt_ck_mixer_free(&mx);
}

/* ---- radiative transfer over g for k constant in g equals line-by-line -- */

static void test_rt_gray_in_g(void)
{
    enum { N = 30, W = 7, G = 16 };
    double p[N], t[N], mmw[N], r[N], lam[W], nu_hz[W], rt2_lbl[W], rt2_ck[W], f_lbl[W], f_ck[W], mu[3], wmu[3];
    float chord[N * N], alpha[N * W], tau[N * W], alpha_ck[N * W * G], tau_ck[N * W * G], kappa[N * W],
        kappa_ck[N * W * G], wg[G];
    float *ework = malloc(sbi_rt_emission_work(W, 3) * sizeof *ework);
    float *fwork = malloc(sbi_rt_emission_ck_work(W, G, 3) * sizeof *fwork);

    SBI_ASSERT(ework != NULL && fwork != NULL);
    if (!ework || !fwork) return;
    for (int q = 0; q < G; ++q) wg[q] = (float)prt_w[q];
    sbi_rt_pressure_grid(N, 1e-6, 100.0, p);
    for (int i = 0; i < N; ++i) {
        t[i] = 900.0 + 10.0 * i;
        mmw[i] = 2.33;
    }
    for (int l = 0; l < W; ++l) {
        lam[l] = 1.0 + 0.3 * l;
        nu_hz[l] = SBI_RT_C * 1e4 / lam[l];
    }
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(N, p, t, mmw, SBI_RT_R_JUP, 1000.0, 0.01, r), 0);
    sbi_rt_chord_matrix(N, r, chord);
    for (int i = 0; i < N; ++i) {
        const double rho = 2.33 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
        for (int l = 0; l < W; ++l) {
            kappa[i * W + l] = (float)(1e-2 * (1.0 + l) * (1.0 + 0.1 * i));
            alpha[i * W + l] = (float)(kappa[i * W + l] * rho);
            for (int q = 0; q < G; ++q) {
                kappa_ck[(i * W + l) * G + q] = kappa[i * W + l];
                alpha_ck[(i * W + l) * G + q] = alpha[i * W + l];
            }
        }
    }
    sbi_rt_transit_radius2(N, W, chord, alpha, r, tau, rt2_lbl);
    sbi_rt_transit_radius2_ck(N, W, G, wg, chord, alpha_ck, r, tau_ck, rt2_ck);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt2_ck[l], rt2_lbl[l], 1e-7, 0);
    SBI_ASSERT_OK(sbi_rt_gauss_legendre01(3, mu, wmu));
    sbi_rt_emission_flux(N, W, p, t, kappa, 1000.0, nu_hz, 3, mu, wmu, ework, f_lbl);
    sbi_rt_emission_flux_ck(N, W, G, wg, p, t, kappa_ck, 1000.0, nu_hz, 3, mu, wmu, fwork, f_ck);
    for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(f_ck[l], f_lbl[l], 2e-5, 0);
    free(ework);
    free(fwork);
}

/* ---- adaptive equivalent extinction ---------------------------------------- */

/* S tables on a 2 x 2 (P, T) grid over W bins, k_s(g) = scale_s sigma
 * e^{a g} / <e^{a g}> with a varying by species, bin and row (a = 0: gray
 * in g), as the benchmark's tables. */
static void aee_tables(int n_s, int w, const double *scale, const double *a_amp, sbi_rt_ck_table *tabs)
{
    const double p[2] = {1e-4, 1.0}, t[2] = {600.0, 1500.0};
    for (int s = 0; s < n_s; ++s) {
        SBI_ASSERT_OK(sbi_rt_ck_table_init(2, p, 2, t, w, 16, &tabs[s]));
        for (int row = 0; row < 4; ++row)
            for (int l = 0; l < w; ++l) {
                const double a = a_amp[s] * (1.0 + 0.5 * sin(0.37 * l + 1.3 * s + 0.4 * row));
                const double sg = 1e-22 * (1.0 + 0.3 * row) * (1.0 + 0.8 * sin(0.21 * l + s));
                double norm = 0;
                for (int q = 0; q < 16; ++q) norm += prt_w[q] * exp(a * prt_g[q]);
                for (int q = 0; q < 16; ++q)
                    tabs[s].k[((size_t)row * w + l) * 16 + q] = (float)(scale[s] * sg * exp(a * prt_g[q]) / norm);
            }
    }
}

static void test_aee(void)
{
    enum { N = 40, W = 24, G = 16, S = 5, BLK = 8 };
    const double vmr_c[S] = {1e21, 1e21, 1e19, 1e20, 1e19}; /* c_s: mass fraction / (molar mass amu) */
    double p[N], t[N], mmw[N], r[N], rho[N], nu_hz[W], mu[3], wmu[3], c[S];
    double rt_res[W], rt_aee[W], f_res[W], f_aee[W];
    float *gray = malloc(N * W * sizeof *gray), *k_res = malloc((size_t)N * W * G * sizeof *k_res);
    float *k_aee = malloc((size_t)N * W * G * sizeof *k_aee), *tau = malloc((size_t)N * W * G * sizeof *tau);
    float *alpha = malloc((size_t)N * W * G * sizeof *alpha), chord[N * N], wg[G];
    float *rwork = malloc(sbi_rt_ck_kappa_work(S, G, BLK) * sizeof *rwork);
    float *awork = malloc(sbi_rt_ck_aee_work(S, N, BLK) * sizeof *awork);
    float *ework = malloc(sbi_rt_emission_ck_work(W, G, 3) * sizeof *ework);
    float *aework = malloc(sbi_rt_emission_ck_aee_work(S, N, G, 3, BLK) * sizeof *aework);
    sbi_rt_ck_table tabs[S];
    const sbi_rt_ck_table *tp[S];
    sbi_rt_ck_mixer mx;
    sbi_rt_ck_aee ae;

    SBI_ASSERT(gray && k_res && k_aee && tau && alpha && rwork && awork && ework && aework);
    if (!gray || !k_res || !k_aee || !tau || !alpha || !rwork || !awork || !ework || !aework) return;
    for (int q = 0; q < G; ++q) wg[q] = (float)prt_w[q];
    sbi_rt_pressure_grid(N, 1e-6, 10.0, p);
    for (int i = 0; i < N; ++i) {
        t[i] = 700.0 + 15.0 * i;
        mmw[i] = 2.33;
        rho[i] = 2.33 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
        for (int l = 0; l < W; ++l) gray[i * W + l] = (float)(1e-3 * (1.0 + 0.05 * l));
    }
    for (int l = 0; l < W; ++l) nu_hz[l] = SBI_RT_C * 1e4 / (1.0 + 0.1 * l);
    for (int s = 0; s < S; ++s) {
        c[s] = vmr_c[s];
        tp[s] = &tabs[s];
    }
    SBI_ASSERT_OK(sbi_rt_gauss_legendre01(3, mu, wmu));
    SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(N, p, t, mmw, SBI_RT_R_JUP, 1000.0, 0.01, r), 0);
    sbi_rt_chord_matrix(N, r, chord);
    SBI_ASSERT_OK(sbi_rt_ck_mixer_init(G, prt_g, prt_w, &mx));

    /* One species: its own interpolated distribution on top of the gray
     * opacity, bit for bit what the random-overlap kernel gives. */
    {
        const double sc[1] = {1.0}, am[1] = {8.0};
        aee_tables(1, W, sc, am, tabs);
        SBI_ASSERT_OK(sbi_rt_ck_aee_init(1, tp, prt_w, &ae));
        sbi_rt_ck_kappa(&mx, 1, tp, c, N, W, p, t, gray, BLK, rwork, k_res);
        sbi_rt_ck_kappa_aee(&ae, c, N, W, p, t, gray, NULL, BLK, awork, k_aee);
        SBI_ASSERT(memcmp(k_res, k_aee, (size_t)N * W * G * sizeof *k_res) == 0);
        /* With rho: alpha = rho kappa. */
        sbi_rt_ck_kappa_aee(&ae, c, N, W, p, t, gray, rho, BLK, awork, alpha);
        for (size_t m = 0; m < (size_t)N * W * G; m += 37)
            SBI_ASSERT_NEAR(alpha[m], (float)rho[m / (W * G)] * k_res[m], 1e-6, 0);
        sbi_rt_ck_aee_free(&ae);
        sbi_rt_ck_table_free(&tabs[0]);
    }

    /* A species gray in g (a = 0) added to another shifts that one's
     * distribution by its k exactly: the gray one is never the major
     * absorber, even where its k is the larger. */
    {
        const double sc[2] = {1.0, 30.0}, am[2] = {8.0, 0.0};
        float one[G];
        aee_tables(2, W, sc, am, tabs);
        SBI_ASSERT_OK(sbi_rt_ck_aee_init(2, tp, prt_w, &ae));
        sbi_rt_ck_kappa_aee(&ae, c, N, W, p, t, gray, NULL, BLK, awork, k_aee);
        for (int i = 0; i < N; i += 7)
            for (int l = 0; l < W; l += 5) {
                sbi_rt_ck_interp(&tabs[0], p[i], t[i], c[0], l, l + 1, one);
                {
                    float gk[G];
                    sbi_rt_ck_interp(&tabs[1], p[i], t[i], c[1], l, l + 1, gk);
                    for (int q = 0; q < G; ++q)
                        SBI_ASSERT_NEAR(k_aee[((size_t)i * W + l) * G + q], one[q] + gk[0] + gray[i * W + l], 1e-6, 0);
                }
            }
        sbi_rt_ck_aee_free(&ae);
        for (int s = 0; s < 2; ++s) sbi_rt_ck_table_free(&tabs[s]);
    }

    /* A major absorber with minor species 1e-9 as strong: the random
     * overlap skips them (pRT's 1e-3 rule), aee adds their g-means, which
     * are up to 1e-9 of the major's mean and so up to ~1e-6 of the smallest
     * k(g) (plus gray) here. */
    {
        const double sc[3] = {1.0, 1e-9, 1e-9}, am[3] = {8.0, 10.0, 4.0};
        aee_tables(3, W, sc, am, tabs);
        SBI_ASSERT_OK(sbi_rt_ck_aee_init(3, tp, prt_w, &ae));
        sbi_rt_ck_kappa(&mx, 3, tp, c, N, W, p, t, gray, BLK, rwork, k_res);
        sbi_rt_ck_kappa_aee(&ae, c, N, W, p, t, gray, NULL, BLK, awork, k_aee);
        for (size_t m = 0; m < (size_t)N * W * G; ++m) SBI_ASSERT_NEAR(k_aee[m], k_res[m], 1e-5, 0);
        /* The emission kernel that makes the opacity inside the formal
         * solution equals the flux of that opacity (B_nu in float there). */
        sbi_rt_emission_flux_ck(N, W, G, wg, p, t, k_aee, 1000.0, nu_hz, 3, mu, wmu, ework, f_res);
        sbi_rt_emission_flux_ck_aee(&ae, c, gray, N, W, p, t, 1000.0, -1, 0.0f, nu_hz, 3, mu, wmu, BLK, aework,
                                    f_aee);
        for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(f_aee[l], f_res[l], 1e-4, 0);
        /* The deck: kappa from layer 30 on. */
        for (int i = 30; i < N; ++i)
            for (int m = 0; m < W * G; ++m) k_aee[(size_t)i * W * G + m] = 1e5f;
        sbi_rt_emission_flux_ck(N, W, G, wg, p, t, k_aee, 1000.0, nu_hz, 3, mu, wmu, ework, f_res);
        sbi_rt_emission_flux_ck_aee(&ae, c, gray, N, W, p, t, 1000.0, 30, 1e5f, nu_hz, 3, mu, wmu, BLK, aework,
                                    f_aee);
        for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(f_aee[l], f_res[l], 1e-4, 0);
        sbi_rt_ck_aee_free(&ae);
        for (int s = 0; s < 3; ++s) sbi_rt_ck_table_free(&tabs[s]);
    }

    /* Five species with the benchmark's abundance ratios and shapes (k
     * rising e^3.5 to e^10.5 over g): aee against the random overlap with
     * resorting.  These tables give a transit depth within 0.9% (0.4% on
     * average) and an emission flux within 40% (15% on average): the minor
     * species, gray, absorb too much in the major's windows (README,
     * ck_overlap).  The tolerances, 2% (1%) and 60% (25%), guard that. */
    {
        const double sc[S] = {1.0, 1.0, 1.0, 1.0, 1.0}, am[S] = {7.0, 7.0, 7.0, 7.0, 7.0};
        double e_max = 0, e_sum = 0, f_max = 0, f_sum = 0;
        aee_tables(S, W, sc, am, tabs);
        SBI_ASSERT_OK(sbi_rt_ck_aee_init(S, tp, prt_w, &ae));
        sbi_rt_ck_kappa(&mx, S, tp, c, N, W, p, t, gray, BLK, rwork, k_res);
        for (int i = 0; i < N; ++i)
            for (int m = 0; m < W * G; ++m)
                alpha[(size_t)i * W * G + m] = (float)(k_res[(size_t)i * W * G + m] * rho[i]);
        sbi_rt_transit_radius2_ck(N, W, G, wg, chord, alpha, r, tau, rt_res);
        sbi_rt_emission_flux_ck(N, W, G, wg, p, t, k_res, 1000.0, nu_hz, 3, mu, wmu, ework, f_res);
        sbi_rt_ck_kappa_aee(&ae, c, N, W, p, t, gray, rho, BLK, awork, alpha);
        sbi_rt_transit_radius2_ck(N, W, G, wg, chord, alpha, r, tau, rt_aee);
        sbi_rt_emission_flux_ck_aee(&ae, c, gray, N, W, p, t, 1000.0, -1, 0.0f, nu_hz, 3, mu, wmu, BLK, aework,
                                    f_aee);
        for (int l = 0; l < W; ++l) {
            const double e = fabs(rt_aee[l] - rt_res[l]) / rt_res[l], f = fabs(f_aee[l] - f_res[l]) / f_res[l];
            e_max = fmax(e_max, e);
            e_sum += e;
            f_max = fmax(f_max, f);
            f_sum += f;
        }
        printf("  aee vs resort: transit depth max %.2e mean %.2e; emission flux max %.2e mean %.2e\n", e_max,
               e_sum / W, f_max, f_sum / W);
        /* The chunked transmission kernels (chunks of 7 bins: a partial
         * last one) give the whole-grid spectra: aee, and the product
         * against one chord product per species over the whole grid. */
        {
            float *cwork = malloc(sbi_rt_transit_ck_work(S, N, W, G, 7) * sizeof *cwork);
            float *a_sum = malloc((size_t)N * W * sizeof *a_sum);
            double rt_chunk[W], rt_prod[W];
            SBI_ASSERT(cwork != NULL && a_sum != NULL);
            if (cwork && a_sum) {
                sbi_rt_transit_ck_aee(&ae, c, N, W, p, t, gray, rho, -1, 0.0f, chord, r, 7, cwork, rt_chunk);
                for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt_chunk[l], rt_aee[l], 1e-6, 0);
                for (int s = 0; s < S; ++s) {
                    sbi_rt_ck_alpha_species(&tabs[s], c[s], N, W, p, t, rho, s == 0 ? gray : NULL, BLK, alpha);
                    sbi_rt_chord_tau(N, W * G, chord, alpha, tau);
                    sbi_rt_ck_absorbed(N, W, G, wg, tau);
                    for (int m = 0; m < N * W; ++m) a_sum[m] = s ? a_sum[m] + tau[m] * (1.0f - a_sum[m]) : tau[m];
                }
                sbi_rt_transit_from_absorbed(N, W, a_sum, r, rt_prod);
                sbi_rt_transit_ck_product(N, W, G, wg, S, tp, c, p, t, gray, rho, -1, 0.0f, chord, r, 7, cwork,
                                          rt_chunk);
                for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(rt_chunk[l], rt_prod[l], 1e-6, 0);
            }
            free(cwork);
            free(a_sum);
        }
        SBI_ASSERT(e_max < 2e-2 && e_sum / W < 1e-2);
        SBI_ASSERT(f_max < 0.6 && f_sum / W < 0.25);
        sbi_rt_ck_aee_free(&ae);
        for (int s = 0; s < S; ++s) sbi_rt_ck_table_free(&tabs[s]);
    }
    sbi_rt_ck_mixer_free(&mx);
    free(gray), free(k_res), free(k_aee), free(tau), free(alpha), free(rwork), free(awork), free(ework), free(aework);
}

/* The product's kernels on the tables' rows (sbi_rt_transit_ck_product,
 * sbi_rt_emission_flux_ck_product) against the reference kernels that
 * interpolate every layer (sbi_rt_transit_ck_product_ref,
 * sbi_rt_emission_flux_ck_product_ref): the same sums in another order, so
 * transit depths within 1e-6 and fluxes within 1e-5 (float rounding; the
 * benchmark's differ by 4e-9 and 1e-7).  Three species on a 6 x 5 (P, T)
 * grid; 60 layers (about 20 distinct rows: the sgemm on the rows) and 6
 * layers spread over the grid (more rows than layers: the fallbacks that
 * interpolate each layer); W = 150 (chunks and blocks of 64 with a partial
 * last one of 22, whose transposes take the scalar path) and W = 20 (less
 * than a chunk); no deck, a high deck (from layer N / 4), and patchy clouds (the
 * family's mix of a cloudy and a clear call sharing one work buffer). */
static void product_tables(int n_s, int w, sbi_rt_ck_table *tabs)
{
    enum { TP = 6, TT = 5 };
    double pg[TP], tg[TT];
    sbi_rt_pressure_grid(TP, 1e-6, 1e3, pg);
    for (int q = 0; q < TT; ++q) tg[q] = 300.0 + 500.0 * q;
    for (int s = 0; s < n_s; ++s) {
        SBI_ASSERT_OK(sbi_rt_ck_table_init(TP, pg, TT, tg, w, 16, &tabs[s]));
        for (int row = 0; row < TP * TT; ++row)
            for (int l = 0; l < w; ++l) {
                const double a = (4.0 + 3.0 * s) * (1.0 + 0.5 * sin(0.37 * l + 1.3 * s + 0.4 * row));
                const double sg = 1e-22 * (1.0 + 0.1 * row) * (1.0 + 0.9 * sin(0.21 * l + s));
                double norm = 0;
                for (int q = 0; q < 16; ++q) norm += prt_w[q] * exp(a * prt_g[q]);
                for (int q = 0; q < 16; ++q)
                    tabs[s].k[((size_t)row * w + l) * 16 + q] = (float)(sg * exp(a * prt_g[q]) / norm);
            }
    }
}

static void test_product_kernels(void)
{
    enum { NMAX = 60, WMAX = 150, G = 16, S = 3, CB = 64 };
    const double c[S] = {3e21, 1e21, 1e20};
    const int ns[2] = {60, 6}, ws[2] = {150, 20};
    double p[NMAX], t[NMAX], mmw[NMAX], r[NMAX], rho[NMAX], nu_hz[WMAX], mu[3], wmu[3];
    double a_new[WMAX], a_ref[WMAX], b_new[WMAX], b_ref[WMAX];
    float chord[NMAX * NMAX], wg[G], *gray = malloc((size_t)NMAX * WMAX * sizeof *gray);
    float *tw = malloc(sbi_rt_transit_ck_work(S, NMAX, WMAX, G, CB) * sizeof *tw);
    float *ew = malloc(sbi_rt_emission_ck_product_work(NMAX, WMAX, G, S, 3) * sizeof *ew);
    float *ewr = malloc(sbi_rt_emission_ck_product_ref_work(NMAX, WMAX, G, S, 3) * sizeof *ewr);
    double e_t = 0, e_f = 0;
    SBI_ASSERT(gray && tw && ew && ewr);
    if (!gray || !tw || !ew || !ewr) return;
    for (int q = 0; q < G; ++q) wg[q] = (float)prt_w[q];
    SBI_ASSERT_OK(sbi_rt_gauss_legendre01(3, mu, wmu));
    for (int iw = 0; iw < 2; ++iw) {
        const int w = ws[iw];
        sbi_rt_ck_table tabs[S];
        const sbi_rt_ck_table *tp[S];
        product_tables(S, w, tabs);
        for (int s = 0; s < S; ++s) tp[s] = &tabs[s];
        for (int l = 0; l < w; ++l) nu_hz[l] = SBI_RT_C * 1e4 / (0.6 + 0.03 * l);
        for (int in = 0; in < 2; ++in) {
            const int n = ns[in];
            sbi_rt_pressure_grid(n, 1e-6, 100.0, p);
            for (int i = 0; i < n; ++i) {
                /* Hot and rising with depth: the 6-layer column crosses
                 * every temperature of the grid. */
                t[i] = 400.0 + 1800.0 * i / (n - 1) + 150.0 * sin(0.7 * i);
                mmw[i] = 2.33;
                rho[i] = 2.33 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
                for (int l = 0; l < w; ++l) gray[i * w + l] = (float)(2e-3 * (1.0 + 0.5 * sin(0.05 * l)));
            }
            SBI_ASSERT_EQ_INT(sbi_rt_hydrostatic_radii(n, p, t, mmw, SBI_RT_R_JUP, 1000.0, 0.01, r), 0);
            sbi_rt_chord_matrix(n, r, chord);
            for (int deck = 0; deck < 2; ++deck) {
                const int deck_from = deck ? n / 4 : -1;
                /* Cloudy, then clear with the same work (the family's
                 * patchy clouds), mixed half and half. */
                sbi_rt_transit_ck_product(n, w, G, wg, S, tp, c, p, t, gray, rho, deck_from, 1e20f, chord, r, CB,
                                          tw, a_new);
                sbi_rt_transit_ck_product(n, w, G, wg, S, tp, c, p, t, gray, rho, -1, 1e20f, chord, r, CB, tw,
                                          b_new);
                sbi_rt_transit_ck_product_ref(n, w, G, wg, S, tp, c, p, t, gray, rho, deck_from, 1e20f, chord, r,
                                              CB, tw, a_ref);
                sbi_rt_transit_ck_product_ref(n, w, G, wg, S, tp, c, p, t, gray, rho, -1, 1e20f, chord, r, CB, tw,
                                              b_ref);
                for (int l = 0; l < w; ++l) {
                    const double pn = 0.5 * sqrt(a_new[l]) + 0.5 * sqrt(b_new[l]);
                    const double pr = 0.5 * sqrt(a_ref[l]) + 0.5 * sqrt(b_ref[l]);
                    SBI_ASSERT_NEAR(a_new[l], a_ref[l], 1e-6, 0);
                    SBI_ASSERT_NEAR(b_new[l], b_ref[l], 1e-6, 0);
                    SBI_ASSERT_NEAR(pn, pr, 1e-6, 0);
                    e_t = fmax(e_t, fabs(a_new[l] - a_ref[l]) / a_ref[l]);
                }
                /* The deck raises the transit radius where the column above
                 * it is not already opaque: the kernels do see it. */
                if (deck) {
                    int raised = 0;
                    for (int l = 0; l < w; ++l) {
                        SBI_ASSERT(a_new[l] >= b_new[l]);
                        raised += a_new[l] > b_new[l] * (1.0 + 1e-4);
                    }
                    SBI_ASSERT(raised > w / 2);
                }
                sbi_rt_emission_flux_ck_product(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, deck_from, 1e20f, nu_hz,
                                                3, mu, wmu, ew, a_new);
                sbi_rt_emission_flux_ck_product(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, -1, 1e20f, nu_hz, 3, mu,
                                                wmu, ew, b_new);
                sbi_rt_emission_flux_ck_product_ref(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, deck_from, 1e20f,
                                                    nu_hz, 3, mu, wmu, ewr, a_ref);
                sbi_rt_emission_flux_ck_product_ref(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, -1, 1e20f, nu_hz, 3,
                                                    mu, wmu, ewr, b_ref);
                for (int l = 0; l < w; ++l) {
                    SBI_ASSERT(a_new[l] > 0 && b_new[l] > 0);
                    SBI_ASSERT_NEAR(a_new[l], a_ref[l], 1e-5, 0);
                    SBI_ASSERT_NEAR(b_new[l], b_ref[l], 1e-5, 0);
                    SBI_ASSERT_NEAR(0.5 * a_new[l] + 0.5 * b_new[l], 0.5 * a_ref[l] + 0.5 * b_ref[l], 1e-5, 0);
                    e_f = fmax(e_f, fabs(a_new[l] - a_ref[l]) / a_ref[l]);
                }
            }
            /* A column opaque high up (gray x 100): the product's descent
             * stops where the layers below can add no more than 1e-8 of
             * the intensities, and the fluxes stay those of the reference. */
            for (int m = 0; m < n * w; ++m) gray[m] *= 100.0f;
            sbi_rt_emission_flux_ck_product(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, -1, 1e20f, nu_hz, 3, mu, wmu,
                                            ew, a_new);
            sbi_rt_emission_flux_ck_product_ref(n, w, G, wg, S, tp, c, gray, p, t, 1000.0, -1, 1e20f, nu_hz, 3, mu,
                                                wmu, ewr, a_ref);
            for (int l = 0; l < w; ++l) {
                SBI_ASSERT(a_new[l] > 0);
                SBI_ASSERT_NEAR(a_new[l], a_ref[l], 1e-5, 0);
                e_f = fmax(e_f, fabs(a_new[l] - a_ref[l]) / a_ref[l]);
            }
        }
        for (int s = 0; s < S; ++s) sbi_rt_ck_table_free(&tabs[s]);
    }
    printf("  product kernels vs reference: transit depth max %.2e, emission flux max %.2e\n", e_t, e_f);
    free(gray), free(tw), free(ew), free(ewr);
}

/* sbi_rt_ck_absorbed_g gives sbi_rt_ck_absorbed's result bit for bit, on
 * opaque, thin and mixed (layer, bin) entries. */
static void test_absorbed_g(void)
{
    enum { N = 6, W = 5, G = 16 };
    float a[N * W * G], b[N * W * G], wg[G];
    for (int q = 0; q < G; ++q) wg[q] = (float)prt_w[q];
    for (int m = 0; m < N * W * G; ++m) {
        const int e = m / G;
        a[m] = b[m] = (float)(e % 3 == 0 ? 20.0 + m : e % 3 == 1 ? 1e-5 * (1 + m % G) : 1e-4 * pow(3.0, m % G));
    }
    sbi_rt_ck_absorbed(N, W, G, wg, a);
    sbi_rt_ck_absorbed_g(N, W, G, wg, b);
    SBI_ASSERT(memcmp(a, b, N * W * sizeof *a) == 0);
}

/* ---- malformed tables ------------------------------------------------------ */

static void test_malformed(void)
{
    char path[2300];
    sbi_opacity_h5_dataset ds[10];
    sbi_ck_file f = NULL;
    sbi_ck_info info;
    double row[FNU * FG];
    const double t_bad[2] = {1000.0, 500.0}, g_bad[FG] = {0.0, 0.35, 0.65, 0.9}, w_bad[FG] = {0.2, 0.3, 0.3, 0.3};
    const double p_bad[2] = {1e-3, NAN}, ngauss_bad[1] = {16};

    snprintf(path, sizeof path, "%s/bad.ktable.petitRADTRANS.h5", work);
    fixture(ds);
    ds[0].units = NULL; /* kcoeff without units */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'kcoeff'");
    fixture(ds);
    ds[1].units = NULL; /* p without units */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'p'");
    fixture(ds);
    ds[0].dims[3] = 2; /* kcoeff (2, 2, 4, 2) against 4 g-points */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'kcoeff'");
    fixture(ds);
    ds[0].rank = 3; /* a cross-section shape */
    ds[0].dims[2] = FNU * FG;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'kcoeff'");
    fixture(ds);
    ds[2].data = t_bad;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'t'");
    fixture(ds);
    ds[1].data = p_bad;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'p'");
    fixture(ds);
    ds[5].data = g_bad;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'samples'");
    fixture(ds);
    ds[6].data = w_bad;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'weights'");
    fixture(ds);
    ds[7].data = ngauss_bad;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'ngauss'");
    fixture(ds);
    ds[1].units = "furlongs";
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'p'");
    fixture(ds);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 9, ds + 1)); /* no kcoeff */
    SBI_ASSERT(!sbi_opacity_file_is_ck(path));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", "'kcoeff'");
    /* A NaN is found when its row is read, naming the index and (P, T). */
    fixture(ds);
    fx_k[((1 * 2 + 1) * FNU + 2) * FG + 1] = NAN;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    SBI_ASSERT_OK(sbi_ck_file_open(path, &f, &info));
    if (f) {
        SBI_ASSERT_OK(sbi_ck_file_read(f, 0, 1, 0, FNU, row));
        expect_error(sbi_ck_file_read(f, 1, 1, 0, FNU, row), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5",
                     "'kcoeff'[1][1][2][1]");
        sbi_ck_file_close(&f);
    }
    expect_error(sbi_ck_file_open("/nonexistent/none.h5", &f, &info), SBI_ERR_IO, "none.h5", NULL);
    /* A valid table cut to half its bytes, and a text file with the name of one. */
    fixture(ds);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    {
        FILE *fp = fopen(path, "rb");
        long size = 0;
        SBI_ASSERT(fp != NULL);
        if (fp) {
            fseek(fp, 0, SEEK_END);
            size = ftell(fp);
            fclose(fp);
        }
        SBI_ASSERT(size > 0 && truncate(path, size / 2) == 0);
    }
    SBI_ASSERT(!sbi_opacity_file_is_ck(path));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", NULL);
    SBI_ASSERT(f == NULL);
    {
        FILE *fp = fopen(path, "w");
        SBI_ASSERT(fp != NULL);
        if (fp) {
            fputs("kcoeff 1 2 3\n", fp);
            fclose(fp);
        }
    }
    SBI_ASSERT(!sbi_opacity_file_is_ck(path));
    expect_error(sbi_ck_file_open(path, &f, &info), SBI_ERR_IO, "bad.ktable.petitRADTRANS.h5", NULL);
    SBI_ASSERT(f == NULL);
}

/* ---- the families with a k-table ------------------------------------------ */

static const char *task_fmt =
    "name: ck-tables\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: %s, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: %s\n"
    "  settings:\n"
    "    pressure: {n_layers: 40}\n"
    "%s"
    "    species: [%s]\n"
    "%s"
    "    model_resolution: 200\n"
    "    fixed: {R_pl: 1.2, log_g: 3.0%s%s}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.0, 1.15, 1.4, 1.6, 2.0, 2.7, 3.5], uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

/* Extra settings lines for the next spectra (the overlap treatment):
 * resort until the tests of the others. */
static const char *extra_settings = "    ck_overlap: resort\n";

static int spectrum(const char *family, const char *species, const char *extra_fixed, double theta, double out[7])
{
    char text[8192], path[2300];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    const int emission = !strcmp(family, "emission");
    FILE *f;
    int st;
    snprintf(path, sizeof path, "%s/task.yaml", work);
    snprintf(text, sizeof text, task_fmt, emission ? "T_int" : "T_iso", family,
             emission ? "    temperature: {profile: guillot}\n" : "", species, extra_settings, emission ? ", distance: 10.0" : ", R_star: 1.0",
             extra_fixed);
    for (int i = 0; i < 7; ++i) out[i] = NAN;
    f = fopen(path, "w");
    if (!f) return SBI_ERR_IO;
    fputs(text, f);
    fclose(f);
    st = sbi_task_load(path, &t);
    if (!st) st = sbi_forward_create(t, &fw);
    if (!st) st = sbi_forward_simulate(fw, 1, &theta, idx, 1, out);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return st;
}

/* sigma(T) [cm^2 molecule^-1] of the family fixtures: constant in
 * wavenumber (and in g), varying with temperature and pressure. */
static double family_sigma(int ip, int it) { return 3e-22 * (1.0 + 0.5 * it) * (1.0 + 0.2 * ip); }

static void test_family(void)
{
    static const char *const X3 = ", log_X_H2O: -3.0";
    enum { NP = 2, NT = 3, NNU = 50, G = 16 };
    char path[2300];
    static double nu_pts[NNU], edges[NNU + 1], centers[NNU], xsec[NP * NT * NNU], kco[NP * NT * NNU * G];
    const double p[NP] = {1e-7, 1e3}, t[NT] = {500.0, 1000.0, 2000.0}, ngauss[1] = {G};
    const double mass[1] = {18.01528};
    const char *name[1] = {"H2O"}, *date[1] = {"petitRADTRANS-v3.2.0"};
    double lbl[7], ck[7], ck_t[7];

    for (int j = 0; j <= NNU; ++j) edges[j] = 1000.0 * pow(20.0, (double)j / NNU);
    for (int j = 0; j < NNU; ++j) {
        centers[j] = sqrt(edges[j] * edges[j + 1]);
        nu_pts[j] = j == 0 ? edges[0] : (j == NNU - 1 ? edges[NNU] : centers[j]);
    }
    for (int ip = 0; ip < NP; ++ip)
        for (int it = 0; it < NT; ++it)
            for (int j = 0; j < NNU; ++j) {
                xsec[(ip * NT + it) * NNU + j] = family_sigma(ip, it);
                for (int q = 0; q < G; ++q) kco[((ip * NT + it) * NNU + j) * G + q] = family_sigma(ip, it);
            }
    {
        const sbi_opacity_h5_dataset lds[7] = {
            {"xsecarr", 3, {NP, NT, NNU}, xsec, NULL, "cm^2/molecule"},
            {"p", 1, {NP}, p, NULL, "bar"},
            {"t", 1, {NT}, t, NULL, "K"},
            {"bin_edges", 1, {NNU}, nu_pts, NULL, "cm^-1"},
            {"mol_mass", 1, {1}, mass, NULL, "AMU"},
            {"mol_name", 1, {1}, NULL, name, NULL},
            {"Date_ID", 1, {1}, NULL, date, NULL},
        };
        const sbi_opacity_h5_dataset kds[10] = {
            {"kcoeff", 4, {NP, NT, NNU, G}, kco, NULL, "cm^2/molecule"},
            {"p", 1, {NP}, p, NULL, "bar"},
            {"t", 1, {NT}, t, NULL, "K"},
            {"bin_edges", 1, {NNU + 1}, edges, NULL, "cm^-1"},
            {"bin_centers", 1, {NNU}, centers, NULL, "cm^-1"},
            {"samples", 1, {G}, prt_g, NULL, NULL},
            {"weights", 1, {G}, prt_w, NULL, NULL},
            {"ngauss", 1, {1}, ngauss, NULL, NULL},
            {"mol_mass", 1, {1}, mass, NULL, "AMU"},
            {"mol_name", 1, {1}, NULL, name, NULL},
        };
        snprintf(path, sizeof path, "%s/H2O_gray.xsec.petitRADTRANS.h5", work);
        SBI_ASSERT_OK(sbi_opacity_h5_write(path, 7, lds));
        snprintf(path, sizeof path, "%s/H2O_gray.ktable.petitRADTRANS.h5", work);
        SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, kds));
    }
    /* k constant in g: the correlated-k spectrum is the line-by-line one. */
    SBI_ASSERT_OK(spectrum("transmission", "{name: H2O, opacity: H2O_gray.xsec.petitRADTRANS.h5}", X3, 1000.0, lbl));
    SBI_ASSERT_OK(spectrum("transmission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}", X3, 1000.0, ck));
    for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(ck[i], lbl[i], 1e-5, 0);
    /* Between table temperatures both interpolate alike. */
    SBI_ASSERT_OK(spectrum("transmission", "{name: H2O, opacity: H2O_gray.xsec.petitRADTRANS.h5}", X3, 1234.5, lbl));
    SBI_ASSERT_OK(spectrum("transmission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}", X3, 1234.5, ck_t));
    for (int i = 0; i < 7; ++i) {
        SBI_ASSERT_NEAR(ck_t[i], lbl[i], 1e-5, 0);
        SBI_ASSERT(ck_t[i] != ck[i]);
    }
    SBI_ASSERT_OK(spectrum("emission", "{name: H2O, opacity: H2O_gray.xsec.petitRADTRANS.h5}",
                           ", log_X_H2O: -3.0, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5", 300.0, lbl));
    SBI_ASSERT_OK(spectrum("emission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}",
                           ", log_X_H2O: -3.0, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5", 300.0, ck));
    for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(ck[i], lbl[i], 1e-4, 0);

    /* Two k-table species (the same gray table as H2O and CO) add up: the
     * overlap of two gray distributions is their sum, so the spectrum equals
     * that of H2O alone at twice the abundance in mass. */
    SBI_ASSERT_OK(spectrum("transmission",
                           "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}, "
                           "{name: CO, opacity: H2O_gray.ktable.petitRADTRANS.h5, mass: 18.01528}",
                           ", log_X_H2O: -3.0, log_X_CO: -3.0", 1000.0, ck));
    SBI_ASSERT_OK(spectrum("transmission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}",
                           ", log_X_H2O: -2.698970004336019", 1000.0, lbl));
    for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(ck[i], lbl[i], 1e-6, 0);

    /* The product of the species' g-mean transmissions (pRT without
     * scattering) and the adaptive equivalent extinction agree in the same
     * limits: one species constant in g is the line-by-line spectrum, and
     * two gray species add up. */
    for (int mode = 0; mode < 4; ++mode) {
        const char *fam = mode % 2 ? "emission" : "transmission";
        const char *overlap = mode < 2 ? "    ck_overlap: product\n" : "    ck_overlap: aee\n";
        const char *fx = mode % 2 ? ", log_X_H2O: -3.0, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5" : X3;
        const double theta = mode % 2 ? 300.0 : 1000.0;
        double one[7], two[7];
        extra_settings = "";
        SBI_ASSERT_OK(spectrum(fam, "{name: H2O, opacity: H2O_gray.xsec.petitRADTRANS.h5}", fx, theta, lbl));
        extra_settings = overlap;
        SBI_ASSERT_OK(spectrum(fam, "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}", fx, theta, one));
        for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(one[i], lbl[i], 1e-4, 0);
        SBI_ASSERT_OK(spectrum(fam,
                               "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}, "
                               "{name: CO, opacity: H2O_gray.ktable.petitRADTRANS.h5, mass: 18.01528}",
                               mode % 2 ? ", log_X_H2O: -3.0, log_X_CO: -3.0, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5"
                                        : ", log_X_H2O: -3.0, log_X_CO: -3.0",
                               theta, two));
        extra_settings = "";
        SBI_ASSERT_OK(spectrum(fam, "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}",
                               mode % 2 ? ", log_X_H2O: -2.698970004336019, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5"
                                        : ", log_X_H2O: -2.698970004336019",
                               theta, one));
        for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(two[i], one[i], 1e-4, 0);
    }
    /* Without ck_overlap the species combine by the product (pRT without
     * scattering): the same bits as naming it, not those of resort. */
    for (int fam = 0; fam < 2; ++fam) {
        static const char *const overlaps[3] = {"", "    ck_overlap: product\n", "    ck_overlap: resort\n"};
        double by[3][7];
        for (int m = 0; m < 3; ++m) {
            extra_settings = overlaps[m];
            SBI_ASSERT_OK(spectrum(fam ? "emission" : "transmission",
                                   "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}, "
                                   "{name: CO, opacity: H2O_gray.ktable.petitRADTRANS.h5, mass: 18.01528}",
                                   fam ? ", log_X_H2O: -3.0, log_X_CO: -3.0, T_eq: 1200, log_kappa_IR: -2, log_gamma: -0.5"
                                       : ", log_X_H2O: -3.0, log_X_CO: -3.0",
                                   fam ? 300.0 : 1000.0, by[m]));
        }
        SBI_ASSERT(!memcmp(by[0], by[1], sizeof by[0]));
        SBI_ASSERT(memcmp(by[0], by[2], sizeof by[0]) != 0);
    }
    extra_settings = "    ck_overlap: mixed\n";
    SBI_ASSERT_EQ_INT(spectrum("transmission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}", X3, 1000.0,
                               ck),
                      SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "ck_overlap") != NULL &&
               strstr(sbi_error_message(), "resort, product or aee") != NULL);
    sbi_error_clear();
    extra_settings = "    ck_overlap: [product]\n";
    SBI_ASSERT_EQ_INT(spectrum("transmission", "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}", X3, 1000.0,
                               ck),
                      SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "ck_overlap: expected a string") != NULL);
    sbi_error_clear();
    extra_settings = "";

    /* Errors name the species entry and the file. */
    SBI_ASSERT_EQ_INT(spectrum("transmission",
                               "{name: H2O, opacity: H2O_gray.ktable.petitRADTRANS.h5}, "
                               "{name: CO, opacity: H2O_gray.xsec.petitRADTRANS.h5, mass: 28.0}",
                               ", log_X_H2O: -3.0, log_X_CO: -3.0", 1000.0, ck),
                      SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "species[1] (CO)") && strstr(sbi_error_message(), "correlated-k"));
    if (!strstr(sbi_error_message(), "species[1] (CO)")) fprintf(stderr, "  message was: %s\n", sbi_error_message());
    sbi_error_clear();
    snprintf(path, sizeof path, "%s/bad.ktable.petitRADTRANS.h5", work);
    {
        sbi_opacity_h5_dataset ds[10];
        fixture(ds);
        ds[0].units = NULL;
        SBI_ASSERT_OK(sbi_opacity_h5_write(path, 10, ds));
    }
    SBI_ASSERT_EQ_INT(spectrum("transmission", "{name: H2O, opacity: bad.ktable.petitRADTRANS.h5}", X3, 1000.0, ck),
                      SBI_ERR_IO);
    SBI_ASSERT(strstr(sbi_error_message(), "species[0] (H2O)") && strstr(sbi_error_message(), "'kcoeff'") &&
               strstr(sbi_error_message(), "bad.ktable.petitRADTRANS.h5"));
    sbi_error_clear();
}

int main(int argc, char **argv)
{
    int rc;
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    mkdir(work, 0755);
    test_reader_and_interp();
    test_overlap();
    test_rt_gray_in_g();
    test_aee();
    test_absorbed_g();
    test_product_kernels();
    test_malformed();
    test_family();
    MPI_Finalize();
    rc = SBI_TEST_REPORT("opacity_ck");
    return rc;
}
