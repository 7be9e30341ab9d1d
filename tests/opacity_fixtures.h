/* Tiny opacity tables for tests: petitRADTRANS 3 line-by-line, correlated-k
 * and CIA tables with known values, and a `mkdir -p`. */
#ifndef EXOSBI_TEST_OPACITY_FIXTURES_H
#define EXOSBI_TEST_OPACITY_FIXTURES_H

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "exosbi/opacity_io.h"

enum { FX_NP = 2, FX_NT = 3, FX_NNU = 400 };

/* sigma[ip][it][j] [cm^2 molecule^-1] of the line fixture, over 1000-25000
 * cm^-1 (0.4-10 um): bands that move with j, scaled by P and T. */
static inline double fx_line_sigma(int ip, int it, int j)
{
    return 1e-22 * (1.0 + 0.5 * ip) * (1.0 + 0.3 * it) * (1.0 + 0.9 * sin(0.07 * j) * sin(0.07 * j));
}

/* Write the line fixture; `bad` puts a NaN in the last row at 5025 cm^-1 (j = 200). */
static inline int fx_write_line(const char *path, int bad)
{
    static double nu[FX_NNU], xsec[FX_NP * FX_NT * FX_NNU];
    static const double p[FX_NP] = {1e-6, 1e3}, t[FX_NT] = {500.0, 1000.0, 2000.0}, mass[1] = {18.01528};
    static const char *name[1] = {"H2O"}, *date[1] = {"petitRADTRANS-v3.2.0_2025-01-01T00:00:00+00:00"};
    const sbi_opacity_h5_dataset ds[7] = {
        {"xsecarr", 3, {FX_NP, FX_NT, FX_NNU}, xsec, NULL, "cm^2/molecule"},
        {"p", 1, {FX_NP}, p, NULL, "bar"},
        {"t", 1, {FX_NT}, t, NULL, "K"},
        {"bin_edges", 1, {FX_NNU}, nu, NULL, "cm^-1"},
        {"mol_mass", 1, {1}, mass, NULL, "AMU"},
        {"mol_name", 1, {1}, NULL, name, NULL},
        {"Date_ID", 1, {1}, NULL, date, NULL},
    };
    for (int j = 0; j < FX_NNU; ++j) nu[j] = 1000.0 * exp(log(25.0) * j / (FX_NNU - 1.0));
    for (int ip = 0; ip < FX_NP; ++ip)
        for (int it = 0; it < FX_NT; ++it)
            for (int j = 0; j < FX_NNU; ++j) xsec[(ip * FX_NT + it) * FX_NNU + j] = fx_line_sigma(ip, it, j);
    if (bad) xsec[(FX_NP * FX_NT - 1) * FX_NNU + 200] = NAN;
    return sbi_opacity_h5_write(path, 7, ds);
}

/* Write an H2-H2 CIA fixture in petitRADTRANS 3 HDF5 [cm^-1 amagat^-2]. */
static inline int fx_write_cia(const char *path)
{
    static const double t[2] = {300.0, 3000.0};
    static double nu[50], alpha[2 * 50];
    static const char *names[2] = {"H2", "H2"};
    const sbi_opacity_h5_dataset ds[4] = {
        {"alpha", 2, {2, 50}, alpha, NULL, "cm^-1"},
        {"wavenumbers", 1, {50}, nu, NULL, "cm^-1"},
        {"t", 1, {2}, t, NULL, "K"},
        {"mol_name", 1, {2}, NULL, names, NULL},
    };
    for (int j = 0; j < 50; ++j) {
        nu[j] = 500.0 + 500.0 * j;
        alpha[j] = 1e-7 * exp(-nu[j] / 5000.0);
        alpha[50 + j] = 3e-7 * exp(-nu[j] / 8000.0);
    }
    return sbi_opacity_h5_write(path, 4, ds);
}

/* Write a petitRADTRANS 3 correlated-k fixture over the line fixture's range:
 * 40 bins from 1000 to 25000 cm^-1, 4 g-points, k rising with g; `bad` puts
 * a NaN in the last row at bin 20. */
static inline int fx_write_ck_table(const char *path, int bad)
{
    enum { NB = 40, NG = 4 };
    static double edges[NB + 1], centers[NB], k[FX_NP * FX_NT * NB * NG];
    static const double p[FX_NP] = {1e-6, 1e3}, t[FX_NT] = {500.0, 1000.0, 2000.0}, mass[1] = {18.01528};
    static const double g[NG] = {0.1, 0.35, 0.65, 0.9}, w[NG] = {0.2, 0.3, 0.3, 0.2}, ngauss[1] = {NG};
    static const char *name[1] = {"H2O"};
    const sbi_opacity_h5_dataset ds[10] = {
        {"kcoeff", 4, {FX_NP, FX_NT, NB, NG}, k, NULL, "cm^2/molecule"},
        {"p", 1, {FX_NP}, p, NULL, "bar"},
        {"t", 1, {FX_NT}, t, NULL, "K"},
        {"bin_edges", 1, {NB + 1}, edges, NULL, "cm^-1"},
        {"bin_centers", 1, {NB}, centers, NULL, "cm^-1"},
        {"samples", 1, {NG}, g, NULL, NULL},
        {"weights", 1, {NG}, w, NULL, NULL},
        {"ngauss", 1, {1}, ngauss, NULL, NULL},
        {"mol_mass", 1, {1}, mass, NULL, "AMU"},
        {"mol_name", 1, {1}, NULL, name, NULL},
    };
    for (int j = 0; j <= NB; ++j) edges[j] = 1000.0 * exp(log(25.0) * j / NB);
    for (int j = 0; j < NB; ++j) centers[j] = 0.5 * (edges[j] + edges[j + 1]);
    for (int ip = 0; ip < FX_NP; ++ip)
        for (int it = 0; it < FX_NT; ++it)
            for (int j = 0; j < NB; ++j)
                for (int q = 0; q < NG; ++q)
                    k[((ip * FX_NT + it) * NB + j) * NG + q] = fx_line_sigma(ip, it, 10 * j) * (0.5 + q);
    if (bad) k[((FX_NP * FX_NT - 1) * NB + 20) * NG + 1] = NAN;
    return sbi_opacity_h5_write(path, 10, ds);
}
static inline int fx_write_ck(const char *path) { return fx_write_ck_table(path, 0); }

/* mkdir -p; 0 on success. */
static inline int fx_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; ++i)
        if (buf[i] == '/' || buf[i] == '\0') {
            const char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            buf[i] = c;
        }
    return 0;
}

#endif
