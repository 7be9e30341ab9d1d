/* Throughput of the radiative-transfer forward model on one core: spectra/s
 * for transmission and emission on 100 layers x ~1000 model wavelengths with
 * five built-in band species plus H2/He Rayleigh, and the time per stage
 * (opacity, chord product or formal solution, binning).
 *
 * Usage: bench_rt [n_layers] [n_wavelengths] [repeats]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exosbi/rt.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 100, w = argc > 2 ? atoi(argv[2]) : 1000;
    const int reps = argc > 3 ? atoi(argv[3]) : 200, n_species = 5, nt = 64, n_bins = 100;
    const char *names[5] = {"H2O", "CO", "CO2", "CH4", "NH3"};
    double *p = malloc(n * sizeof *p), *t = malloc(n * sizeof *t), *mm = malloc(n * sizeof *mm);
    double *r = malloc(n * sizeof *r), *lam = malloc(w * sizeof *lam), *nu = malloc(w * sizeof *nu);
    double *nuhz = malloc(w * sizeof *nuhz), *tmp = malloc(w * sizeof *tmp), *row = malloc(w * sizeof *row);
    double *sh2 = malloc(w * sizeof *sh2), *spec = malloc(w * sizeof *spec), *out = malloc(n_bins * sizeof *out);
    double *ework = malloc((2 * (size_t)n * w + 2 * (size_t)w) * sizeof *ework);
    double *lo = malloc(n_bins * sizeof *lo), *hi = malloc(n_bins * sizeof *hi), tg[64], mu[3], wmu[3];
    float *tab = malloc((size_t)n_species * nt * w * sizeof *tab), *kappa = malloc((size_t)n * w * sizeof *kappa);
    float *alpha = malloc((size_t)n * w * sizeof *alpha), *tau = malloc((size_t)n * w * sizeof *tau);
    float *chord = malloc((size_t)n * n * sizeof *chord);
    double t_opac = 0, t_chord = 0, t_emis = 0, t_bin = 0, checksum = 0;
    sbi_rt_binning bin;

    sbi_rt_pressure_grid(n, 1e-6, 100.0, p);
    for (int l = 0; l < w; ++l) {
        lam[l] = 0.5 * exp(l * log(11.0) / (w - 1));
        nu[l] = 1e4 / lam[l];
        nuhz[l] = SBI_RT_C * nu[l];
        sh2[l] = sbi_rt_sigma_rayleigh_h2(lam[l]);
    }
    for (int b = 0; b < n_bins; ++b) {
        lo[b] = 0.55 * exp(b * log(9.0) / n_bins);
        hi[b] = 0.55 * exp((b + 1) * log(9.0) / n_bins);
    }
    sbi_rt_binning_create(w, lam, n_bins, lo, hi, &bin);
    sbi_rt_gauss_legendre01(3, mu, wmu);
    for (int q = 0; q < nt; ++q) tg[q] = 100.0 * pow(60.0, (double)q / (nt - 1));
    for (int k = 0; k < n_species; ++k)
        for (int q = 0; q < nt; ++q) {
            sbi_rt_builtin_sigma(sbi_rt_builtin_index(names[k]), tg[q], 1.0, w, nu, tmp);
            for (int l = 0; l < w; ++l) tab[((size_t)k * nt + q) * w + l] = (float)tmp[l];
        }
    for (int i = 0; i < n; ++i) mm[i] = 2.33;

    for (int rep = 0; rep < reps; ++rep) {
        double t0 = now(), t1;
        sbi_rt_temperature_guillot(n, p, 0.01, 0.4, 1000.0, 200.0, 1200.0 + rep % 7, 0.25, t);
        /* Opacity: linear-in-T interpolation of each species' table plus Rayleigh. */
        for (int i = 0; i < n; ++i) {
            const double lt = log(t[i] / 100.0) / log(60.0) * (nt - 1);
            const int q = lt < 0 ? 0 : (lt > nt - 2 ? nt - 2 : (int)lt);
            const double f = (t[i] - tg[q]) / (tg[q + 1] - tg[q]);
            for (int l = 0; l < w; ++l) row[l] = 0.74 / (2.016 * SBI_RT_AMU) * sh2[l];
            for (int k = 0; k < n_species; ++k) {
                const float *a = tab + ((size_t)k * nt + q) * w, *b = a + w;
                const double c = 1e-4 / (18.0 * SBI_RT_AMU);
                for (int l = 0; l < w; ++l) row[l] += c * ((1 - f) * a[l] + f * b[l]);
            }
            for (int l = 0; l < w; ++l) kappa[(size_t)i * w + l] = (float)row[l];
        }
        t1 = now();
        t_opac += t1 - t0;
        /* Transmission: radii, chord matrix, sgemm, transit radius. */
        sbi_rt_hydrostatic_radii(n, p, t, mm, SBI_RT_R_JUP, 1000.0, 0.01, r);
        sbi_rt_chord_matrix(n, r, chord);
        for (int i = 0; i < n; ++i) {
            const double rho = 2.33 * SBI_RT_AMU * p[i] * SBI_RT_BAR / (SBI_RT_KB * t[i]);
            for (int l = 0; l < w; ++l) alpha[(size_t)i * w + l] = (float)(kappa[(size_t)i * w + l] * rho);
        }
        sbi_rt_transit_radius2(n, w, chord, alpha, r, tau, spec);
        t0 = now();
        t_chord += t0 - t1;
        sbi_rt_binning_apply(&bin, spec, out);
        t1 = now();
        t_bin += t1 - t0;
        checksum += out[0];
        sbi_rt_emission_flux(n, w, p, t, kappa, 1000.0, nuhz, 3, mu, wmu, ework, spec);
        t0 = now();
        t_emis += t0 - t1;
        checksum += spec[w / 2];
    }
    {
        const double tr = (t_opac + t_chord + t_bin) / reps, em = (t_opac + t_emis + t_bin) / reps;
        printf("bench_rt: %d layers x %d wavelengths, %d band species + H2 Rayleigh, %d bins, %d repeats, 1 core\n", n,
               w, n_species, n_bins, reps);
        printf("  transmission: %8.1f spectra/s  (%.3f ms: opacity %.0f%%, chord product %.0f%%, binning %.0f%%)\n",
               1.0 / tr, 1e3 * tr, 100 * t_opac / reps / tr, 100 * t_chord / reps / tr, 100 * t_bin / reps / tr);
        printf("  emission:     %8.1f spectra/s  (%.3f ms: opacity %.0f%%, formal solution %.0f%%, binning %.0f%%)\n",
               1.0 / em, 1e3 * em, 100 * t_opac / reps / em, 100 * t_emis / reps / em, 100 * t_bin / reps / em);
        printf("  per stage [ms]: opacity %.3f, chord product %.3f, emission %.3f, binning %.4f (checksum %.6g)\n",
               1e3 * t_opac / reps, 1e3 * t_chord / reps, 1e3 * t_emis / reps, 1e3 * t_bin / reps, checksum);
    }
    sbi_rt_binning_destroy(&bin);
    free(p), free(t), free(mm), free(r), free(lam), free(nu), free(nuhz), free(tmp), free(row), free(sh2);
    free(spec), free(out), free(ework), free(lo), free(hi), free(tab), free(kappa), free(alpha), free(tau), free(chord);
    return 0;
}
