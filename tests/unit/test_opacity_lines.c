/* Line cross-section tables: petitRADTRANS 3 line-by-line and ExoMolOP /
 * TauREx HDF5 fixtures written here with known values; (P, T) interpolation
 * and resampling against hand computation; malformed files; and the
 * transmission family with a table species and a CIA table, checked against
 * the built-in opacity the table was made from.
 * Usage: test_opacity_lines WORK_DIR */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

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

/* The fixture's cross sections: sigma[ip][it][j] = (1 + ip) * (1 + 2 it) * (j + 1) * 1e-22. */
static double fixture_sigma(int ip, int it, int j) { return (1.0 + ip) * (1.0 + 2.0 * it) * (j + 1.0) * 1e-22; }

static const double fx_p[2] = {1e-3, 1e-1}, fx_t[2] = {500.0, 1000.0}, fx_nu[4] = {1000.0, 2000.0, 3000.0, 4000.0};
static double fx_xsec[16];
static const double fx_mass[1] = {18.01528};
static const char *fx_date_prt[1] = {"petitRADTRANS-v3.2.0_2025-01-01T00:00:00+00:00"};
static const char *fx_name[1] = {"H2O"};

/* Datasets of a fixture: [0] xsecarr, [1] p, [2] t, [3] bin_edges, [4] mol_mass, [5] mol_name, [6] Date_ID. */
static void fixture(sbi_opacity_h5_dataset ds[7])
{
    const sbi_opacity_h5_dataset d[7] = {
        {"xsecarr", 3, {2, 2, 4}, fx_xsec, NULL, "cm^2/molecule"},
        {"p", 1, {2}, fx_p, NULL, "bar"},
        {"t", 1, {2}, fx_t, NULL, "K"},
        {"bin_edges", 1, {4}, fx_nu, NULL, "cm^-1"},
        {"mol_mass", 1, {1}, fx_mass, NULL, "AMU"},
        {"mol_name", 1, {1}, NULL, fx_name, NULL},
        {"Date_ID", 1, {1}, NULL, fx_date_prt, NULL},
    };
    for (int ip = 0; ip < 2; ++ip)
        for (int it = 0; it < 2; ++it)
            for (int j = 0; j < 4; ++j) fx_xsec[(ip * 2 + it) * 4 + j] = fixture_sigma(ip, it, j);
    memcpy(ds, d, sizeof d);
}

/* Open a fixture and resample it onto model wavelengths lambda (2). */
static int load_table(const char *path, const double *lambda, sbi_rt_line_table *tab, sbi_line_format *format)
{
    sbi_line_file f;
    sbi_line_info info;
    double nu_model[2] = {1e4 / lambda[0], 1e4 / lambda[1]}, row[4], out[2];
    int st = sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info);
    if (st) return st;
    *format = info.format;
    SBI_ASSERT_EQ_INT(info.n_p, 2);
    SBI_ASSERT_EQ_INT(info.n_t, 2);
    SBI_ASSERT_EQ_INT(info.n_nu, 4);
    SBI_ASSERT_NEAR(info.mol_mass, 18.01528, 1e-12, 0);
    SBI_ASSERT(!strcmp(info.mol_name, "H2O"));
    st = sbi_rt_line_table_init(info.format == SBI_LINE_TAUREX ? SBI_RT_PT_TAUREX : SBI_RT_PT_PRT, info.n_p, info.p,
                                info.n_t, info.t, 2, tab);
    for (int ip = 0; !st && ip < 2; ++ip)
        for (int it = 0; !st && it < 2; ++it) {
            st = sbi_line_file_read(f, ip, it, 0, 4, row);
            sbi_rt_resample_linear(4, info.nu, row, 2, nu_model, out);
            tab->sigma[(ip * 2 + it) * 2 + 0] = (float)out[0];
            tab->sigma[(ip * 2 + it) * 2 + 1] = (float)out[1];
        }
    /* A partial row through the hyperslab. */
    if (!st) {
        st = sbi_line_file_read(f, 1, 0, 1, 2, row);
        SBI_ASSERT_NEAR(row[0], fixture_sigma(1, 0, 1), 1e-15, 0);
        SBI_ASSERT_NEAR(row[1], fixture_sigma(1, 0, 2), 1e-15, 0);
    }
    sbi_line_file_close(&f);
    return st;
}

static double table_sigma(const sbi_rt_line_table *tab, double p, double t, int l)
{
    double out[2] = {0, 0};
    sbi_rt_line_add(tab, p, t, 1.0, out);
    return out[l];
}

static void test_prt_and_taurex(void)
{
    char path[2300];
    sbi_opacity_h5_dataset ds[7];
    sbi_rt_line_table tab;
    sbi_line_format format;
    /* Model wavelengths at nu = 1500 (halfway 1000-2000) and 3000 cm^-1. */
    const double lambda[2] = {1e4 / 1500.0, 1e4 / 3000.0};

    fixture(ds);
    snprintf(path, sizeof path, "%s/H2O.xsec.petitRADTRANS.h5", work);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 7, ds));
    if (!load_table(path, lambda, &tab, &format)) {
        /* petitRADTRANS: linear in P and in T. */
        const double p = 0.05, t = 750.0, fp = (p - 1e-3) / (1e-1 - 1e-3), ft = 0.5;
        double expect[2];
        SBI_ASSERT_EQ_INT(format, SBI_LINE_PRT_LBL);
        for (int l = 0; l < 2; ++l) {
            /* Column factor: (j+1) at 3000 cm^-1 is 3; at 1500 the mean of 1 and 2. */
            const double col = l == 0 ? 1.5 : 3.0;
            expect[l] = 0;
            for (int ip = 0; ip < 2; ++ip)
                for (int it = 0; it < 2; ++it)
                    expect[l] += (ip ? fp : 1 - fp) * (it ? ft : 1 - ft) * (1.0 + ip) * (1.0 + 2.0 * it) * col * 1e-22;
            SBI_ASSERT_NEAR(table_sigma(&tab, p, t, l), expect[l], 1e-6, 0);
        }
        /* Clamped at the grid edges. */
        SBI_ASSERT_NEAR(table_sigma(&tab, 10.0, 100.0, 1), fixture_sigma(1, 0, 2), 1e-6, 0);
        SBI_ASSERT_NEAR(table_sigma(&tab, 1e-6, 5000.0, 1), fixture_sigma(0, 1, 2), 1e-6, 0);
        sbi_rt_line_table_free(&tab);
    } else {
        SBI_ASSERT_OK(1);
    }

    /* The same table as ExoMolOP / TauREx writes it (no Date_ID). */
    snprintf(path, sizeof path, "%s/H2O.xsec.TauREx.h5", work);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    if (!load_table(path, lambda, &tab, &format)) {
        /* TauREx: linear in log10 P and in T; zero when both lie below the grid. */
        const double p = 0.01, t = 600.0, fp = (log10(p) + 3.0) / 2.0, ft = 0.2;
        double expect = 0;
        SBI_ASSERT_EQ_INT(format, SBI_LINE_TAUREX);
        for (int ip = 0; ip < 2; ++ip)
            for (int it = 0; it < 2; ++it)
                expect += (ip ? fp : 1 - fp) * (it ? ft : 1 - ft) * (1.0 + ip) * (1.0 + 2.0 * it) * 3.0 * 1e-22;
        SBI_ASSERT_NEAR(table_sigma(&tab, p, t, 1), expect, 1e-6, 0);
        SBI_ASSERT_NEAR(table_sigma(&tab, 1e-5, 100.0, 1), 0.0, 0, 0);
        SBI_ASSERT_NEAR(table_sigma(&tab, 1e-5, 1000.0, 1), fixture_sigma(0, 1, 2), 1e-6, 0);
        sbi_rt_line_table_free(&tab);
    } else {
        SBI_ASSERT_OK(1);
    }
}

static void test_malformed(void)
{
    char path[2300];
    sbi_opacity_h5_dataset ds[7];
    sbi_line_file f = NULL;
    sbi_line_info info;
    double row[4];
    const double t_bad[2] = {1000.0, 500.0};

    snprintf(path, sizeof path, "%s/bad.xsec.TauREx.h5", work);
    fixture(ds);
    ds[1].units = NULL; /* p without units */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    expect_error(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'p'");
    fixture(ds);
    ds[0].dims[2] = 2; /* xsecarr (2, 2, 2) against 4 wavenumbers */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    expect_error(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'xsecarr'");
    fixture(ds);
    ds[2].data = t_bad; /* temperatures decreasing */
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    expect_error(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'t'");
    fixture(ds);
    ds[1].units = "furlongs";
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    expect_error(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'p'");
    fixture(ds);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 5, ds + 1)); /* no xsecarr */
    expect_error(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'xsecarr'");
    /* A NaN is found when its row is read, naming the (P, T) point. */
    fixture(ds);
    fx_xsec[(1 * 2 + 1) * 4 + 2] = NAN;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));
    SBI_ASSERT_OK(sbi_line_file_open(path, SBI_LINE_AUTO, &f, &info));
    if (f) {
        SBI_ASSERT_OK(sbi_line_file_read(f, 0, 1, 0, 4, row));
        expect_error(sbi_line_file_read(f, 1, 1, 0, 4, row), SBI_ERR_IO, "bad.xsec.TauREx.h5", "'xsecarr'[1][1][2]");
        sbi_line_file_close(&f);
    }
    expect_error(sbi_line_file_open("/nonexistent/none.h5", SBI_LINE_AUTO, &f, &info), SBI_ERR_IO, "none.h5", NULL);
}

/* ---- the transmission family with tables ---------------------------------- */

static const char *task_fmt =
    "name: opacity-tables\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: transmission\n"
    "  settings:\n"
    "    pressure: {n_layers: 40}\n"
    "    species: [%s]\n"
    "%s"
    "    model_resolution: 200\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.0, 1.15, 1.4, 1.6, 2.0, 2.7, 3.5], uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

/* The task is written to WORK/task.yaml, so table paths resolve against WORK. */
static int spectrum_task(const char *species, const char *extra, double t_iso, double out[7])
{
    char text[8192], path[2300];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    FILE *f;
    int st;
    snprintf(path, sizeof path, "%s/task.yaml", work);
    snprintf(text, sizeof text, task_fmt, species, extra);
    for (int i = 0; i < 7; ++i) out[i] = NAN;
    f = fopen(path, "w");
    if (!f) return SBI_ERR_IO;
    fputs(text, f);
    fclose(f);
    st = sbi_task_load(path, &t);
    if (!st) st = sbi_forward_create(t, &fw);
    if (!st) st = sbi_forward_simulate(fw, 1, &t_iso, idx, 1, out);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return st;
}

/* extra: more settings lines, beside the default `fixed` line. */
static int spectrum(const char *species, const char *extra, double t_iso, double out[7])
{
    char settings[2048];
    snprintf(settings, sizeof settings, "%s    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0}\n", extra);
    return spectrum_task(species, settings, t_iso, out);
}

/* The same task with the `fixed` line given by the caller. */
static int spectrum_fixed(const char *species, const char *fixed, double t_iso, double out[7])
{
    return spectrum_task(species, fixed, t_iso, out);
}

static void test_family(void)
{
    enum { NNU = 6000, NT = 3 };
    char path[2300];
    static double nu[NNU], xsec[2 * NT * NNU];
    const double p[2] = {1e-7, 1e3}, t[NT] = {800.0, 1000.0, 1200.0};
    double *sig = malloc(NNU * sizeof *sig), builtin[7], table[7], cia[7];
    const int h2o = sbi_rt_builtin_index("H2O");
    const double mass[1] = {18.01528};
    const char *name[1] = {"H2O"};
    sbi_opacity_h5_dataset ds[6] = {
        {"xsecarr", 3, {2, NT, NNU}, xsec, NULL, "cm^2/molecule"},
        {"p", 1, {2}, p, NULL, "bar"},
        {"t", 1, {NT}, t, NULL, "K"},
        {"bin_edges", 1, {NNU}, nu, NULL, "cm^-1"},
        {"mol_mass", 1, {1}, mass, NULL, "AMU"},
        {"mol_name", 1, {1}, NULL, name, NULL},
    };
    if (!sig) return;
    /* The built-in H2O cross sections, sampled at R ~ 2500 over 0.4-7 um. */
    for (int j = 0; j < NNU; ++j) nu[j] = 1e4 / 7.0 * exp(log(7.0 / 0.4) * j / (NNU - 1.0));
    for (int q = 0; q < NT; ++q) {
        sbi_rt_builtin_sigma(h2o, t[q], 1.0, NNU, nu, sig);
        for (int ip = 0; ip < 2; ++ip) memcpy(xsec + ((size_t)ip * NT + q) * NNU, sig, NNU * sizeof *sig);
    }
    free(sig);
    snprintf(path, sizeof path, "%s/H2O_builtin.xsec.TauREx.h5", work);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 6, ds));

    SBI_ASSERT_OK(spectrum("H2O", "", 1000.0, builtin));
    SBI_ASSERT_OK(spectrum("{name: H2O, opacity: H2O_builtin.xsec.TauREx.h5}", "", 1000.0, table));
    {
        /* Same opacity, read from the table: the band contrast agrees to the
         * resampling and the built-in's own temperature interpolation. */
        double lo_b = builtin[0], hi_b = builtin[0], lo_t = table[0], hi_t = table[0];
        for (int i = 0; i < 7; ++i) {
            SBI_ASSERT_NEAR(table[i], builtin[i], 1e-4, 0);
            lo_b = fmin(lo_b, builtin[i]);
            hi_b = fmax(hi_b, builtin[i]);
            lo_t = fmin(lo_t, table[i]);
            hi_t = fmax(hi_t, table[i]);
        }
        SBI_ASSERT(hi_b - lo_b > 1e-5);
        SBI_ASSERT_NEAR(hi_t - lo_t, hi_b - lo_b, 0.03, 0);
    }

    /* Two species on one table grid (summed on the table rows before the
     * interpolation) against one species with the two abundances together:
     * the same opacity and mean molecular weight. */
    {
        double two[7], one[7];
        const char *fixed_two = "    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0, log_X_HDO: -3.0}\n";
        SBI_ASSERT_OK(spectrum_fixed("{name: H2O, opacity: H2O_builtin.xsec.TauREx.h5}, "
                                     "{name: HDO, opacity: H2O_builtin.xsec.TauREx.h5}",
                                     fixed_two, 1000.0, two));
        SBI_ASSERT_OK(spectrum_fixed("{name: H2O, opacity: H2O_builtin.xsec.TauREx.h5}",
                                     "    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -2.698970004336}\n",
                                     1000.0, one));
        for (int i = 0; i < 7; ++i) SBI_ASSERT_NEAR(two[i], one[i], 1e-5, 0);
    }

    /* H2-H2 CIA from a sectioned table raises the depths at the bottom of the windows. */
    snprintf(path, sizeof path, "%s/H2H2.dat", work);
    {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("@SPECIES\nH2 H2\n@TEMPERATURES\n 500 1500\n@DATA\n", f);
            for (int j = 0; j <= 100; ++j) fprintf(f, "%g 1e-4 2e-4\n", 1000.0 + 100.0 * j);
            fclose(f);
        }
    }
    SBI_ASSERT_OK(spectrum("{name: H2O, opacity: H2O_builtin.xsec.TauREx.h5}", "    cia: [{pair: H2-H2, file: H2H2.dat}]\n",
                           1000.0, cia));
    for (int i = 0; i < 7; ++i) SBI_ASSERT(cia[i] > table[i]);

    /* Settings errors name the entry. */
    SBI_ASSERT_EQ_INT(spectrum("{name: H2O, opacity: missing.h5}", "", 1000.0, table), SBI_ERR_IO);
    SBI_ASSERT(strstr(sbi_error_message(), "species[0] (H2O)") && strstr(sbi_error_message(), "missing.h5"));
    sbi_error_clear();
    SBI_ASSERT_EQ_INT(spectrum("H2O", "    cia: [{pair: H2-CO, file: H2H2.dat}]\n", 1000.0, table), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "collider 'CO'") != NULL);
    sbi_error_clear();
    SBI_ASSERT_EQ_INT(spectrum("H2O", "    cia: [{pair: H2-He, file: H2H2.dat}]\n", 1000.0, table), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "H2H2.dat") && strstr(sbi_error_message(), "cia[0] (H2-He)"));
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
    test_prt_and_taurex();
    test_malformed();
    test_family();
    MPI_Finalize();
    rc = SBI_TEST_REPORT("opacity_lines");
    return rc;
}
