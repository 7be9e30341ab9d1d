/* Throughput of the radiative-transfer forward model on one core, in
 * spectra/s, for transmission and emission with line-by-line (lbl) and
 * correlated-k (ck, 16 g-points) opacities, and the share of each stage:
 *   interpolation  the opacity in every layer: tables in (P, T), H2/He
 *                  Rayleigh, H2-H2 and H2-He CIA;
 *   combination    ck only: random overlap of the species (resort, rebin);
 *                  the `product` rows multiply the species' g-mean
 *                  transmissions instead (settings.ck_overlap: product;
 *                  the `(reference)` rows under them time the previous
 *                  kernels, sbi_rt_*_ck_product_ref, right after, on the
 *                  same inputs);
 *                  the `aee` rows keep one major absorber's k(g) per
 *                  (layer, bin) and add the others as gray (adaptive
 *                  equivalent extinction, settings.ck_overlap: aee), which
 *                  is counted under interpolation;
 *   optical depth  transmission: alpha = kappa rho (lbl: made with the
 *                  opacity, under interpolation) and the chord product
 *                  (strmm), block by block of lbl_block wavelengths, on the
 *                  rays above those opaque at every wavelength of the block
 *                  by a lower bound (product and aee: with interpolation and
 *                  transfer, a chunk of bins at a time; resort: one product
 *                  over all W x G columns);
 *   transfer       transmission: absorbed fraction and radius integral (lbl:
 *                  on each block while its optical depths are in cache);
 *                  emission: vertical optical depth and formal solution;
 *   instrument     line-spread convolution and binning.
 * The line-by-line rows interpolate the line tables with weights taken once
 * per layer; lbl_block > 0 takes each block of wavelengths through all
 * layers, so that each table row is read from memory once per spectrum, and
 * sums the species on the table rows the layers use before interpolating
 * (sbi_rt_lines_add_summed: the five tables share one (P, T) grid).
 * Transmission makes the opacity of each block (Rayleigh, CIA, lines) where
 * the chord product uses it, as the transmission family does
 * (sbi_rt_lbl_opacity, sbi_rt_transit_radius2_lbl); emission makes the
 * whole kappa (N, W) first.
 * The tables are synthetic, made in memory on a petitRADTRANS-like grid (10
 * pressures x 13 temperatures): five species with the band structure of the
 * built-in band model, each k-distribution a smooth rising curve in g whose
 * steepness varies with species and wavelength.  It also prints the bytes
 * of table each spectrum touches and the machine's read bandwidth, which
 * bound the interpolation, how far the product and aee transit depths and
 * emission fluxes lie from resort's (relative difference over the model
 * bins, before the instrument), and the product's from its reference
 * kernels'.
 *
 * Usage: bench_rt [n_layers] [n_wavelengths] [repeats] [ck_block] [lbl_block (0: per layer)]
 *                 [ck (0: skip; 2: skip resort's overlap, which takes seconds, and the comparison with it;
 *                      3: only the product kernels, each called `repeats` times back to back)]
 * The rows above time each kernel inside a loop over all of them, so each
 * call finds the caches filled by the others; ck = 3 calls one kernel over
 * and over on the same atmosphere, as a simulate run of that family does,
 * and prints the fastest, median and mean call.
 * Set OPENBLAS_NUM_THREADS=1 for per-core numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exosbi/rt.h"

/* CHUNK: model bins per chunk of the correlated-k transmission with the
 * product or aee, as the families use. */
enum { NS = 5, NP = 10, NT = 13, G = 16, NBINS = 100, CHUNK = 128 };

static const double prt_g[G] = {0.0178695646, 0.0915000852, 0.2135104155, 0.3674544109, 0.5325455891, 0.6864895845,
                                0.8084999148, 0.8821304354, 0.9019855072, 0.9101666761, 0.9237233795, 0.9408282679,
                                0.9591717321, 0.9762766205, 0.9898333239, 0.9980144928};
static const double prt_w[G] = {0.0455528413, 0.1000714655, 0.1411679906, 0.1632077025, 0.1632077025, 0.1411679906,
                                0.1000714655, 0.0455528413, 0.0050614268, 0.0111190517, 0.0156853323, 0.0181341892,
                                0.0181341892, 0.0156853323, 0.0111190517, 0.0050614268};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* per-core cost, even on a shared machine */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_rt: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Read bandwidth of one core: sum a 256 MiB array. */
static double read_bandwidth(void)
{
    const size_t n = (size_t)64 << 20;
    float *a = xmalloc(n * sizeof *a);
    double best = 0, sink = 0;
    for (size_t i = 0; i < n; ++i) a[i] = (float)(i & 1023);
    for (int rep = 0; rep < 3; ++rep) {
        const double t0 = now();
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        sink += s0 + s1 + s2 + s3;
        {
            const double bw = (double)(n * sizeof *a) / (now() - t0);
            if (bw > best) best = bw;
        }
    }
    free(a);
    if (sink == 42.0) printf("(sink)\n");
    return best;
}

/* Distinct (P, T) table rows the layers' bilinear interpolation reads. */
static int rows_touched(int n, const double *p, const double *t, const double *pg, const double *tg)
{
    char used[NP * NT];
    int count = 0;
    memset(used, 0, sizeof used);
    for (int i = 0; i < n; ++i) {
        int ip, it;
        double f;
        sbi_rt_bracket(NP, pg, p[i], &ip, &f);
        sbi_rt_bracket(NT, tg, t[i], &it, &f);
        used[ip * NT + it] = used[ip * NT + it + 1] = used[(ip + 1) * NT + it] = used[(ip + 1) * NT + it + 1] = 1;
    }
    for (int k = 0; k < NP * NT; ++k) count += used[k];
    return count;
}

/* d[0] = max(d[0], max_l |a - b| / |b|), d[1] += sum_l |a - b| / |b|. */
static void relative_difference(int w, const double *a, const double *b, double *d)
{
    for (int l = 0; l < w; ++l) {
        const double e = fabs(a[l] - b[l]) / fabs(b[l]);
        if (e > d[0]) d[0] = e;
        d[1] += e;
    }
}

typedef struct stages {
    double interp, combine, depth, transfer, instrument;
} stages;

/* The fastest, median and mean of ts (n >= 1, sorted here) as spectra/s. */
static void report_calls(const char *what, double *ts, int n)
{
    double sum = 0;
    for (int a = 1; a < n; ++a)
        for (int b = a; b > 0 && ts[b] < ts[b - 1]; --b) {
            const double x = ts[b];
            ts[b] = ts[b - 1];
            ts[b - 1] = x;
        }
    for (int a = 0; a < n; ++a) sum += ts[a];
    printf("  %-26s %d calls back to back: fastest %6.1f, median %6.1f, mean %6.1f spectra/s\n", what, n, 1.0 / ts[0],
           1.0 / ts[n / 2], n / sum);
}

static void report(const char *what, const stages *s, int reps)
{
    const double tot = (s->interp + s->combine + s->depth + s->transfer + s->instrument) / reps;
    printf("  %-18s %8.1f spectra/s  %8.3f ms  interpolation %4.1f%%  combination %4.1f%%  optical depth %4.1f%%  "
           "transfer %4.1f%%  instrument %4.1f%%\n",
           what, 1.0 / tot, 1e3 * tot, 100 * s->interp / reps / tot, 100 * s->combine / reps / tot,
           100 * s->depth / reps / tot, 100 * s->transfer / reps / tot, 100 * s->instrument / reps / tot);
}

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 100, w = argc > 2 ? atoi(argv[2]) : 5000;
    const int reps = argc > 3 ? atoi(argv[3]) : 20, blk = argc > 4 ? atoi(argv[4]) : 32;
    const int blk_lbl = argc > 5 ? atoi(argv[5]) : 512, do_ck = argc > 6 ? atoi(argv[6]) : 1;
    const char *names[NS] = {"H2O", "CO", "CO2", "CH4", "NH3"};
    const double vmr[NS] = {1e-3, 1e-3, 1e-5, 1e-4, 1e-5};
    double pg[NP], tg[NT], c[NS], x_h2, x_he, mu_mol = 0;
    double *p = xmalloc(n * sizeof *p), *t = xmalloc(n * sizeof *t), *mm = xmalloc(n * sizeof *mm);
    double *r = xmalloc(n * sizeof *r), *lam = xmalloc(w * sizeof *lam), *nu = xmalloc(w * sizeof *nu);
    double *nuhz = xmalloc(w * sizeof *nuhz), *tmp = xmalloc(w * sizeof *tmp);
    double *sh2 = xmalloc(w * sizeof *sh2), *she = xmalloc(w * sizeof *she), *spec = xmalloc(w * sizeof *spec);
    double *conv = xmalloc(w * sizeof *conv), *out = xmalloc(NBINS * sizeof *out);
    float *ework = xmalloc(sbi_rt_emission_work(w, 3) * sizeof *ework);
    double *lo = xmalloc(NBINS * sizeof *lo), *hi = xmalloc(NBINS * sizeof *hi), mu[3], wmu[3];
    const int blk_tr = blk_lbl > 0 && blk_lbl < w ? blk_lbl : w; /* lbl transmission block */
    float *kappa = xmalloc((size_t)n * w * sizeof *kappa), *chord = xmalloc((size_t)n * n * sizeof *chord);
    float *tau = xmalloc(sbi_rt_transit_kappa_work(n, w, blk_tr) * sizeof *tau);
    const float **lrows = xmalloc((size_t)n * NS * 4 * sizeof *lrows);
    float *lcoef = xmalloc((size_t)n * NS * 4 * sizeof *lcoef), *lwork;
    int *liwork;
    const sbi_rt_line_table *linep[NS];
    float *kck = xmalloc((size_t)n * w * G * sizeof *kck), *ack = xmalloc((size_t)n * w * G * sizeof *ack);
    float *tck = xmalloc((size_t)n * w * G * sizeof *tck), *gray = xmalloc((size_t)n * w * sizeof *gray), wg[G];
    float *ckwork = xmalloc(sbi_rt_ck_kappa_work(NS, G, blk) * sizeof *ckwork);
    float *ckework = xmalloc(sbi_rt_emission_ck_work(w, G, 3) * sizeof *ckework);
    sbi_rt_line_table lines[NS];
    sbi_rt_ck_table ck[NS];
    const sbi_rt_ck_table *ckp[NS];
    sbi_rt_cia cia[2];
    sbi_rt_ck_mixer mx;
    sbi_rt_binning bin;
    stages lt = {0}, le = {0}, ct = {0}, ce = {0}, cp = {0}, pe = {0}, at = {0}, ae_st = {0}, cpr = {0}, per = {0};
    sbi_rt_ck_aee ae;
    float *tcwork = xmalloc(sbi_rt_transit_ck_work(NS, n, w, G, CHUNK) * sizeof *tcwork);
    float *aeework = xmalloc(sbi_rt_emission_ck_aee_work(NS, n, G, 3, blk) * sizeof *aeework);
    double *ref_t = xmalloc(w * sizeof *ref_t), *ref_e = xmalloc(w * sizeof *ref_e);
    /* product, aee transit depth; aee, product flux: max, sum */
    double diff[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    /* product against its reference kernels: transit depth, flux */
    double diff_ref[2][2] = {{0, 0}, {0, 0}};
    double *prod_e = xmalloc(w * sizeof *prod_e), *prod_t = xmalloc(w * sizeof *prod_t);
    double diff_lbl[2] = {0, 0}, *ref_lbl = xmalloc(w * sizeof *ref_lbl), *cia_scale = xmalloc(2 * n * sizeof *cia_scale);
    sbi_rt_lbl_opacity lop;
    double chord_alone = 0, absorbed_alone = 0;
    double *rhos = xmalloc(n * sizeof *rhos);
    float *pework = xmalloc(sbi_rt_emission_ck_product_work(n, w, G, NS, 3) * sizeof *pework);
    float *prwork = xmalloc(sbi_rt_emission_ck_product_ref_work(n, w, G, NS, 3) * sizeof *prwork);
    double checksum = 0, dlnl, bw;
    long long overlaps = 0, skipped = 0, open_rays = 0, open_blocks = 0;
    double open_work = 0;
    int open_min = n, open_max = 0;
    int rows_lbl = 0;

    /* ---- set-up: grids, tables, instrument ---------------------------- */
    sbi_rt_pressure_grid(n, 1e-6, 100.0, p);
    dlnl = log(11.0) / (w - 1);
    for (int l = 0; l < w; ++l) {
        lam[l] = 0.5 * exp(l * dlnl);
        nu[l] = 1e4 / lam[l];
        nuhz[l] = SBI_RT_C * nu[l];
        sh2[l] = sbi_rt_sigma_rayleigh_h2(lam[l]);
        she[l] = sbi_rt_sigma_rayleigh_he(lam[l]);
    }
    for (int b = 0; b < NBINS; ++b) {
        lo[b] = 0.55 * exp(b * log(9.0) / NBINS);
        hi[b] = 0.55 * exp((b + 1) * log(9.0) / NBINS);
    }
    sbi_rt_binning_create(w, lam, NBINS, lo, hi, &bin);
    sbi_rt_gauss_legendre01(3, mu, wmu);
    sbi_rt_pressure_grid(NP, 1e-6, 1e3, pg);
    for (int q = 0; q < NT; ++q) tg[q] = 81.14 * pow(2995.0 / 81.14, (double)q / (NT - 1));
    for (int q = 0; q < G; ++q) wg[q] = (float)prt_w[q];
    for (int k = 0; k < NS; ++k) {
        const int s = sbi_rt_builtin_index(names[k]);
        sbi_rt_line_table_init(SBI_RT_PT_PRT, NP, pg, NT, tg, w, &lines[k]);
        sbi_rt_ck_table_init(NP, pg, NT, tg, w, G, &ck[k]);
        ckp[k] = &ck[k];
        for (int it = 0; it < NT; ++it) {
            sbi_rt_builtin_sigma(s, tg[it], 1.0, w, nu, tmp);
            for (int ip = 0; ip < NP; ++ip) {
                const double pf = 1.0 + 0.05 * log10(pg[ip] / 1e-6);
                float *ls = lines[k].sigma + ((size_t)ip * NT + it) * w;
                float *ks = ck[k].k + ((size_t)ip * NT + it) * w * G;
                for (int l = 0; l < w; ++l) {
                    /* k(g) = sigma e^{a g} / <e^{a g}>: the mean over g is the
                     * line-by-line value, a between 2 and 12. */
                    const double a = 7.0 + 5.0 * sin(0.37 * l + 1.3 * k + 0.1 * it), sg = tmp[l] * pf;
                    double norm = 0;
                    for (int q = 0; q < G; ++q) norm += prt_w[q] * exp(a * prt_g[q]);
                    ls[l] = (float)sg;
                    for (int q = 0; q < G; ++q) ks[(size_t)l * G + q] = (float)(sg * exp(a * prt_g[q]) / norm);
                }
            }
        }
        mu_mol += vmr[k] * sbi_rt_builtin_mass(s);
        linep[k] = &lines[k];
    }
    lwork = xmalloc(sbi_rt_lines_summed_work(&lines[0], n, blk_lbl) * sizeof *lwork);
    liwork = xmalloc(sbi_rt_lines_summed_iwork(&lines[0], n) * sizeof *liwork);
    {
        /* Synthetic H2-H2 and H2-He CIA: smooth in wavenumber, rising with T. */
        enum { CT = 8, CN = 400 };
        double cia_t[CT], cn[CN], ca[CT * CN];
        for (int q = 0; q < CT; ++q) cia_t[q] = 200.0 + 400.0 * q;
        for (int j = 0; j < CN; ++j) cn[j] = 100.0 + 50.0 * j;
        for (int pair = 0; pair < 2; ++pair) {
            for (int q = 0; q < CT; ++q)
                for (int j = 0; j < CN; ++j)
                    ca[q * CN + j] = (pair ? 3e-47 : 1e-46) * (1.0 + cia_t[q] / 1000.0) * exp(-cn[j] / 3000.0) *
                                     (1.0 + 0.5 * sin(cn[j] / 700.0));
            sbi_rt_cia_setup(CT, cia_t, CN, cn, ca, w, lam, &cia[pair]);
        }
    }
    {
        const double sum = vmr[0] + vmr[1] + vmr[2] + vmr[3] + vmr[4];
        const double v_h2 = (1.0 - sum) / (1.0 + SBI_RT_HE_PER_H2), v_he = SBI_RT_HE_PER_H2 * v_h2;
        mu_mol += v_h2 * SBI_RT_MASS_H2 + v_he * SBI_RT_MASS_HE;
        x_h2 = v_h2 * SBI_RT_MASS_H2 / mu_mol;
        x_he = v_he * SBI_RT_MASS_HE / mu_mol;
        for (int k = 0; k < NS; ++k) c[k] = vmr[k] * sbi_rt_builtin_mass(sbi_rt_builtin_index(names[k])) / mu_mol /
                                            (sbi_rt_builtin_mass(sbi_rt_builtin_index(names[k])) * SBI_RT_AMU);
    }
    for (int i = 0; i < n; ++i) mm[i] = mu_mol;
    {
        const sbi_rt_cia *ciap[2] = {&cia[0], &cia[1]};
        if (sbi_rt_lbl_opacity_init(n, w, blk_tr, NS, linep, 2, ciap, &lop)) {
            fprintf(stderr, "bench_rt: sbi_rt_lbl_opacity_init failed\n");
            return 1;
        }
    }
    sbi_rt_ck_mixer_init(G, prt_g, prt_w, &mx);
    memset(kck, 0, (size_t)n * w * G * sizeof *kck);
    sbi_rt_ck_aee_init(NS, ckp, prt_w, &ae);
    {
        float *cwork = xmalloc(1000 * sizeof *cwork), *ray = xmalloc(w * sizeof *ray);

        for (int rep = 0; rep < reps; ++rep) {
            double t0, t1;
            sbi_rt_temperature_guillot(n, p, 0.01, 0.4, 1000.0, 200.0, 1200.0 + 10.0 * (rep % 7), 0.25, t);
            if (rep == 0) rows_lbl = rows_touched(n, p, t, pg, tg);
            /* H2 and He Rayleigh per unit mass is the same in every layer. */
            t0 = now();
            {
                const double ch2 = x_h2 / (SBI_RT_MASS_H2 * SBI_RT_AMU), che = x_he / (SBI_RT_MASS_HE * SBI_RT_AMU);
                for (int l = 0; l < w; ++l) ray[l] = (float)(ch2 * sh2[l] + che * she[l]);
            }

            /* ---- line-by-line transmission: sbi_rt_transit_radius2_lbl,
             * block by block with its stages timed apart: the opacity of
             * the block and alpha = kappa rho (interpolation), the chord
             * product (optical depth), the absorbed fraction and the radius
             * integral (transfer).  Per spectrum first: the line tables'
             * rows and weights and the CIA values at the tables' points. */
            for (int i = 0; i < n; ++i) {
                const double rho = mu_mol * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
                const double n_h2 = x_h2 * rho / (SBI_RT_MASS_H2 * SBI_RT_AMU), n_he = x_he * rho / (SBI_RT_MASS_HE * SBI_RT_AMU);
                cia_scale[i] = n_h2 * n_h2 / rho;
                cia_scale[n + i] = n_h2 * n_he / rho;
            }
            sbi_rt_lbl_opacity_prepare(&lop, c, p, t, cia_scale);
            t1 = now();
            lt.interp += t1 - t0;
            sbi_rt_hydrostatic_radii(n, p, t, mm, SBI_RT_R_JUP, 1000.0, 0.01, r);
            sbi_rt_chord_matrix(n, r, chord);
            for (int i = 0; i < n; ++i) rhos[i] = mu_mol * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
            t0 = now();
            lt.depth += t0 - t1;
            for (int l0 = 0; l0 < w; l0 += blk_tr) {
                const int l1 = l0 + blk_tr < w ? l0 + blk_tr : w, nb = l1 - l0;
                int n_open;
                sbi_rt_lbl_opacity_block(&lop, ray, 0, rhos, l0, l1, n, lop.tau, (size_t)nb);
                t1 = now();
                lt.interp += t1 - t0;
                n_open = sbi_rt_chord_tau_alpha(n, nb, chord, -1, 0.0f, lop.tau);
                t0 = now();
                lt.depth += t0 - t1;
                sbi_rt_transit_block(n, n_open, nb, lop.tau, r, spec + l0);
                t1 = now();
                lt.transfer += t1 - t0;
                open_rays += n_open;
                open_work += (double)n_open * n_open;
                ++open_blocks;
                open_min = n_open < open_min ? n_open : open_min;
                open_max = n_open > open_max ? n_open : open_max;
                t0 = now();
            }
            memcpy(ref_lbl, spec, (size_t)w * sizeof *spec);
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            lt.instrument += t1 - t0;
            checksum += out[0];

            /* ---- line-by-line emission: the whole kappa (N, W), Rayleigh
             * and CIA layer by layer, then the line tables ---- */
            t0 = now();
            for (int i = 0; i < n; ++i) {
                float *ki = kappa + (size_t)i * w;
                memcpy(ki, ray, (size_t)w * sizeof *ki);
                sbi_rt_cia_add(&cia[0], t[i], cia_scale[i], cwork, ki);
                sbi_rt_cia_add(&cia[1], t[i], cia_scale[n + i], cwork, ki);
                if (do_ck) /* the part that ck overlaps with */
                    memcpy(gray + (size_t)i * w, ki, (size_t)w * sizeof *ki);
                if (blk_lbl > 0) continue;
                /* The layer's (P, T) rows and weights of every line table. */
                for (int k = 0; k < NS; ++k)
                    sbi_rt_line_terms(&lines[k], p[i], t[i], c[k], lrows + ((size_t)i * NS + k) * 4,
                                      lcoef + ((size_t)i * NS + k) * 4);
                sbi_rt_lines_add_block(NS, lrows + (size_t)i * NS * 4, lcoef + (size_t)i * NS * 4, 0, w, ki);
            }
            /* The line tables: per layer over all wavelengths (blk_lbl 0),
             * or blocked so that each table row is read once, the species
             * summed on the rows the layers use (one (P, T) grid). */
            if (blk_lbl > 0) sbi_rt_lines_add_summed(NS, linep, c, n, p, t, blk_lbl, lwork, liwork, kappa);
            t1 = now();
            le.interp += t1 - t0;
            sbi_rt_emission_flux(n, w, p, t, kappa, 1000.0, nuhz, 3, mu, wmu, ework, spec);
            t0 = now();
            le.transfer += t0 - t1;
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            le.instrument += t1 - t0;
            checksum += out[NBINS / 2];
            /* Untimed: the transmission from the whole kappa, the kernel
             * that the block-by-block opacity replaces. */
            sbi_rt_transit_radius2_kappa(n, w, chord, kappa, rhos, -1, 0.0f, r, blk_tr, tau, spec);
            relative_difference(w, ref_lbl, spec, diff_lbl);

            /* ---- correlated-k: interpolation alone, then with overlap ---- */
            if (!do_ck) continue;
            t0 = now();
            for (int l0 = 0; l0 < w; l0 += blk) {
                const int l1 = l0 + blk < w ? l0 + blk : w;
                for (int i = 0; i < n; ++i)
                    for (int k = 0; k < NS; ++k)
                        sbi_rt_ck_interp(&ck[k], p[i], t[i], c[k], l0, l1, ckwork + (size_t)k * blk * G);
            }
            t1 = now();
            ct.interp += t1 - t0;
            ce.interp += t1 - t0;
            {
                /* The opacity kernel interpolates and overlaps; the overlap
                 * is its time less that of the interpolation alone. */
                const double t_interp = t1 - t0;
                mx.n_overlaps = mx.n_skipped = 0;
                if (do_ck == 1) sbi_rt_ck_kappa(&mx, NS, ckp, c, n, w, p, t, gray, blk, ckwork, kck);
                overlaps += mx.n_overlaps;
                skipped += mx.n_skipped;
                t0 = now();
                ct.combine += (t0 - t1) - t_interp;
                ce.combine += (t0 - t1) - t_interp;
            }
            /* ---- correlated-k transmission ---- */
            for (int i = 0; i < n; ++i) {
                const float rho = (float)(mu_mol * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]));
                const float *k = kck + (size_t)i * w * G;
                float *a = ack + (size_t)i * w * G;
                for (size_t m = 0; m < (size_t)w * G; ++m) a[m] = k[m] * rho;
            }
            sbi_rt_chord_tau(n, w * G, chord, ack, tck);
            t1 = now();
            ct.depth += t1 - t0;
            sbi_rt_transit_from_tau(n, w, G, wg, tck, r, spec);
            t0 = now();
            ct.transfer += t0 - t1;
            memcpy(ref_t, spec, (size_t)w * sizeof *spec);
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            ct.instrument += t1 - t0;
            checksum += out[0];
            /* ---- correlated-k transmission, the product of the species'
             * g-mean transmissions (pRT without scattering) ---- */
            for (int i = 0; i < n; ++i) rhos[i] = mu_mol * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
            t0 = now();
            sbi_rt_transit_ck_product(n, w, G, wg, NS, ckp, c, p, t, gray, rhos, -1, 0.0f, chord, r, CHUNK, tcwork,
                                      spec);
            t1 = now();
            cp.depth += t1 - t0;
            if (do_ck == 3) {
                double *ts = xmalloc((size_t)reps * sizeof *ts);
                printf("bench_rt: %d layers x %d wavelengths, 5 species, the product kernels alone, 1 core\n", n, w);
                for (int k = 0; k < reps; ++k) {
                    const double a = now();
                    sbi_rt_transit_ck_product(n, w, G, wg, NS, ckp, c, p, t, gray, rhos, -1, 0.0f, chord, r, CHUNK,
                                              tcwork, spec);
                    ts[k] = now() - a;
                }
                report_calls("ck transmission, product", ts, reps);
                for (int k = 0; k < reps; ++k) {
                    const double a = now();
                    sbi_rt_emission_flux_ck_product(n, w, G, wg, NS, ckp, c, gray, p, t, 1000.0, -1, 0.0f, nuhz, 3, mu,
                                                    wmu, pework, spec);
                    ts[k] = now() - a;
                }
                report_calls("ck emission, product", ts, reps);
                free(ts);
                return 0;
            }
            memcpy(prod_t, spec, (size_t)w * sizeof *spec);
            /* The reference kernel it replaces (interpolated alpha and one
             * triangular chord product per species), alternating with it. */
            sbi_rt_transit_ck_product_ref(n, w, G, wg, NS, ckp, c, p, t, gray, rhos, -1, 0.0f, chord, r, CHUNK,
                                          tcwork, spec);
            t0 = now();
            cpr.depth += t0 - t1;
            relative_difference(w, prod_t, spec, diff_ref[0]);
            memcpy(spec, prod_t, (size_t)w * sizeof *spec);
            t1 = now();
            relative_difference(w, spec, ref_t, diff[0]);
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t0 = now();
            cp.instrument += t0 - t1;
            checksum += out[0];
            /* ---- correlated-k emission, product ---- */
            t1 = now();
            sbi_rt_emission_flux_ck_product(n, w, G, wg, NS, ckp, c, gray, p, t, 1000.0, -1, 0.0f, nuhz, 3, mu, wmu,
                                            pework, spec);
            t0 = now();
            pe.transfer += t0 - t1;
            memcpy(prod_e, spec, (size_t)w * sizeof *spec);
            sbi_rt_emission_flux_ck_product_ref(n, w, G, wg, NS, ckp, c, gray, p, t, 1000.0, -1, 0.0f, nuhz, 3, mu,
                                                wmu, prwork, spec);
            t1 = now();
            per.transfer += t1 - t0;
            relative_difference(w, prod_e, spec, diff_ref[1]);
            memcpy(spec, prod_e, (size_t)w * sizeof *spec);
            t0 = now();
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            pe.instrument += t1 - t0;
            checksum += out[NBINS / 2];
            /* ---- correlated-k emission ---- */
            if (do_ck == 1) sbi_rt_emission_flux_ck(n, w, G, wg, p, t, kck, 1000.0, nuhz, 3, mu, wmu, ckework, spec);
            t0 = now();
            ce.transfer += t0 - t1;
            memcpy(ref_e, spec, (size_t)w * sizeof *spec);
            relative_difference(w, prod_e, ref_e, diff[3]);
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            ce.instrument += t1 - t0;
            checksum += out[NBINS / 2];
            /* ---- correlated-k transmission, adaptive equivalent
             * extinction: alpha of the mixture straight from the tables,
             * one chord product ---- */
            t0 = now();
            sbi_rt_transit_ck_aee(&ae, c, n, w, p, t, gray, rhos, -1, 0.0f, chord, r, CHUNK, tcwork, spec);
            t1 = now();
            at.depth += t1 - t0;
            {
                /* What bounds it: the chord products and absorbed fractions
                 * alone, on the last chunk's alpha repeated over W. */
                float *ca = tcwork + sbi_rt_ck_aee_work(NS, n, CHUNK), *cq = ca + (size_t)n * CHUNK * G;
                float *cc = xmalloc((size_t)n * CHUNK * G * sizeof *cc);
                double ta = 0, tb = 0;
                memcpy(cc, ca, (size_t)n * CHUNK * G * sizeof *cc);
                for (int l0 = 0; l0 < w; l0 += CHUNK) {
                    const int nb = l0 + CHUNK < w ? CHUNK : w - l0;
                    const double u0 = now();
                    sbi_rt_chord_tau(n, nb * G, chord, cc, cq);
                    {
                        const double u1 = now();
                        sbi_rt_ck_absorbed_g(n, nb, G, wg, cq);
                        ta += u1 - u0;
                        tb += now() - u1;
                    }
                }
                chord_alone += ta;
                absorbed_alone += tb;
                free(cc);
            }
            relative_difference(w, spec, ref_t, diff[1]);
            t0 = now();
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            at.instrument += t1 - t0;
            checksum += out[0];
            /* ---- correlated-k emission, aee ---- */
            sbi_rt_emission_flux_ck_aee(&ae, c, gray, n, w, p, t, 1000.0, -1, 0.0f, nuhz, 3, mu, wmu, blk, aeework,
                                        spec);
            t0 = now();
            ae_st.transfer += t0 - t1;
            relative_difference(w, spec, ref_e, diff[2]);
            sbi_rt_convolve(w, dlnl, 200.0, spec, conv);
            sbi_rt_binning_apply(&bin, conv, out);
            t1 = now();
            ae_st.instrument += t1 - t0;
            checksum += out[NBINS / 2];
        }
        free(cwork), free(ray);
    }
    bw = read_bandwidth();
    printf("bench_rt: %d layers x %d wavelengths (%.2f-%.2f um), %d species + H2/He Rayleigh + H2-H2, H2-He CIA, "
           "%d bins, %d repeats, 1 core; ck: %d g-points, blocks of %d bins\n",
           n, w, lam[0], lam[w - 1], NS, NBINS, reps, G, blk);
    report("lbl transmission", &lt, reps);
    report("lbl emission", &le, reps);
    printf("  lbl transmission against the whole-kappa kernel (sbi_rt_transit_radius2_kappa), relative difference "
           "max / mean: %.2e / %.2e\n",
           diff_lbl[0], diff_lbl[1] / ((double)w * (reps > 0 ? reps : 1)));
    {
        const double nbk = open_blocks ? (double)open_blocks : 1.0;
        printf("  lbl transmission: the chord product on the rays above the opaque ones, %.1f of %d per block "
               "(%d to %d), %.1f%% of the full triangle\n",
               (double)open_rays / nbk, n, open_min, open_max, 100.0 * open_work / ((double)n * n * nbk));
    }
    if (do_ck == 1) {
        report("ck transmission", &ct, reps);
        report("ck emission", &ce, reps);
    } else if (do_ck) {
        printf("  ck transmission and emission with resort: skipped (ck = 2)\n");
    }
    if (do_ck) {
        report("ck transm. product", &cp, reps);
        report("ck emiss. product", &pe, reps);
        report("  (reference)", &cpr, reps);
        report("  (reference)", &per, reps);
        report("ck transm. aee", &at, reps);
        report("ck emiss. aee", &ae_st, reps);
    }
    printf("  (ck transmission with the product or aee interpolates, takes the chord product and the absorbed\n"
           "   fraction a chunk of %d bins at a time in one kernel, counted under optical depth; ck emission with\n"
           "   them interpolates layer by layer inside its transfer kernel, counted under transfer)\n", CHUNK);
    if (do_ck && reps > 0)
        printf("  ck chord product alone (strmm over W x %d columns, in chunks of %d bins) %.1f ms, absorbed fraction "
               "alone %.1f ms per pass: aee transmission takes one pass, the product one per species\n",
               G, CHUNK, 1e3 * chord_alone / reps, 1e3 * absorbed_alone / reps);
    if (do_ck && reps > 0)
        printf("  product against its reference kernels (sbi_rt_transit_ck_product_ref, "
               "sbi_rt_emission_flux_ck_product_ref; the rows marked reference), relative difference max / mean: "
               "transit depth %.2e / %.2e, emission flux %.2e / %.2e\n",
               diff_ref[0][0], diff_ref[0][1] / ((double)w * reps), diff_ref[1][0],
               diff_ref[1][1] / ((double)w * reps));
    if (do_ck == 1 && reps > 0)
        printf("  against resort, relative difference max / mean over %d bins x %d repeats: transit depth product "
               "%.2e / %.2e, aee %.2e / %.2e; emission flux product %.2e / %.2e, aee %.2e / %.2e\n",
               w, reps, diff[0][0], diff[0][1] / ((double)w * reps), diff[1][0], diff[1][1] / ((double)w * reps),
               diff[3][0], diff[3][1] / ((double)w * reps), diff[2][0], diff[2][1] / ((double)w * reps));
    {
        const double row_bytes = (double)w * sizeof(float);
        const double lbl_unique = (double)NS * rows_lbl * row_bytes, lbl_reads = (double)NS * n * 4 * row_bytes;
        printf("  overlaps per spectrum: %.0f done, %.0f skipped (pRT's 1e-3 rule) of %d layers x %d bins x %d\n",
               (double)overlaps / reps, (double)skipped / reps, n, w, NS - 1);
        const double lbl_summed = (double)n * 4 * row_bytes, kappa_bytes = (double)n * w * sizeof(float);
        printf("  table bytes per spectrum: lbl %.1f MB distinct rows (%d of %d rows per species), %.1f MB read by "
               "the layer loop; ck %.1f MB distinct, %.1f MB if read layer by layer (the blocked ck kernels read "
               "each row from memory once); one-core read bandwidth %.1f GB/s\n",
               lbl_unique / 1e6, rows_lbl, NP * NT, lbl_reads / 1e6, G * lbl_unique / 1e6, G * lbl_reads / 1e6,
               bw / 1e9);
        printf("  lbl with lbl_block > 0: the distinct rows are read once (%.3f ms at that bandwidth) and summed over "
               "the species; the layer loop reads %.1f MB of summed rows from cache instead of %.1f MB; kappa (N, W) "
               "%.1f MB, %.3f ms at that bandwidth\n",
               1e3 * lbl_unique / bw, lbl_summed / 1e6, lbl_reads / 1e6, kappa_bytes / 1e6, 1e3 * kappa_bytes / bw);
        printf("  (checksum %.6g)\n", checksum);
    }
    sbi_rt_binning_destroy(&bin);
    sbi_rt_ck_mixer_free(&mx);
    sbi_rt_ck_aee_free(&ae);
    free(tcwork), free(aeework), free(ref_t), free(ref_e), free(prod_e), free(prod_t), free(prwork);
    for (int k = 0; k < NS; ++k) {
        sbi_rt_line_table_free(&lines[k]);
        sbi_rt_ck_table_free(&ck[k]);
    }
    sbi_rt_lbl_opacity_free(&lop);
    free(ref_lbl), free(cia_scale);
    sbi_rt_cia_free(&cia[0]);
    sbi_rt_cia_free(&cia[1]);
    free(p), free(t), free(mm), free(r), free(lam), free(nu), free(nuhz), free(tmp), free(sh2), free(she);
    free(spec), free(conv), free(out), free(ework), free(lo), free(hi), free(kappa), free(lrows), free(lcoef);
    free(lwork), free(liwork);
    free(tau), free(chord), free(kck), free(ack), free(tck), free(ckwork), free(ckework), free(gray), free(rhos), free(pework);
    return 0;
}
