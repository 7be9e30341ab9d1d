/* CIA tables: small fixtures written here in each supported format (sectioned
 * text, HITRAN .cia, petitRADTRANS 3 HDF5) with known values, the
 * interpolation in temperature and wavelength against hand computation,
 * malformed files, and, when shared/data is present, the Borysow H2-H2 table
 * and the HITRAN excerpt.
 * Usage: test_opacity_cia WORK_DIR (the fixtures)
 *        test_opacity_cia WORK_DIR SHARED_DATA_DIR (the shared tables; exit 77
 *        when they are absent) */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "exosbi/opacity_io.h"
#include "exosbi/rt.h"
#include "testutil.h"

static const double L02 = SBI_RT_LOSCHMIDT * SBI_RT_LOSCHMIDT;
static char work[2048];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A status and a message that names the given parts. */
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

static void test_sectioned(void)
{
    char path[2300];
    sbi_cia_table tab;
    sbi_rt_cia cia;
    /* Model wavelengths: 5 um (nu = 2000, a table point), 4 um (nu = 2500,
     * between 2000 and 3000), 20 um and 1 um (outside the table). */
    const double lambda[4] = {1.0, 4.0, 5.0, 20.0};
    double work_buf[8], alpha[4];

    snprintf(path, sizeof path, "%s/fixture.dat", work);
    write_text(path, "# a fixture in the layout of pyratbay's CIA files\n"
                     "@SPECIES\nH2 He\n\n@TEMPERATURES\n  100  400\n   1600\n"
                     "# Wavenumber in cm-1, CIA coefficients in cm-1 amagat-2:\n@DATA\n"
                     " 1000.0 1.0e-6 4.0e-6 9.0e-6\n 2000.0 2.0e-6 8.0e-6 1.0e-5\n 3000.0 3.0e-6 2.7e-5 1.0e-5\n");
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT_EQ_INT(tab.format, SBI_CIA_SECTIONED);
    SBI_ASSERT_EQ_INT(tab.n_t, 3);
    SBI_ASSERT_EQ_INT(tab.n_nu, 3);
    SBI_ASSERT(!strcmp(tab.species[0], "H2") && !strcmp(tab.species[1], "He"));
    if (tab.n_t != 3 || tab.n_nu != 3) return;
    SBI_ASSERT_NEAR(tab.t[2], 1600, 0, 0);
    /* alpha[T][nu] in cm^5 molecule^-2. */
    SBI_ASSERT_NEAR(tab.alpha[0 * 3 + 1], 2.0e-6 / L02, 1e-14, 0);
    SBI_ASSERT_NEAR(tab.alpha[1 * 3 + 2], 2.7e-5 / L02, 1e-14, 0);
    SBI_ASSERT_NEAR(tab.alpha[2 * 3 + 0], 9.0e-6 / L02, 1e-14, 0);

    SBI_ASSERT_OK(sbi_rt_cia_setup(tab.n_t, tab.t, tab.n_nu, tab.nu, tab.alpha, 4, lambda, &cia));
    /* T = 200 K: log-linear between 100 and 400 K with f = 1/3. */
    sbi_rt_cia_alpha(&cia, 200.0, work_buf, alpha);
    {
        const double a2000 = pow(2.0e-6, 2.0 / 3.0) * pow(8.0e-6, 1.0 / 3.0) / L02;
        const double a3000 = pow(3.0e-6, 2.0 / 3.0) * pow(2.7e-5, 1.0 / 3.0) / L02;
        /* 4 um lies between 5 um (nu 2000) and 3.333 um (nu 3000): linear in
         * wavelength, weight (4 - 5) / (3.3333 - 5) = 0.6 on nu = 3000. */
        const double wt = (4.0 - 5.0) / (1e4 / 3000.0 - 5.0);
        SBI_ASSERT_NEAR(alpha[0], 0.0, 0, 0);
        SBI_ASSERT_NEAR(alpha[1], (1 - wt) * a2000 + wt * a3000, 1e-12, 0);
        SBI_ASSERT_NEAR(alpha[2], a2000, 1e-12, 0);
        SBI_ASSERT_NEAR(alpha[3], 0.0, 0, 0);
    }
    /* Clamped at the end temperatures. */
    sbi_rt_cia_alpha(&cia, 50.0, work_buf, alpha);
    SBI_ASSERT_NEAR(alpha[2], 2.0e-6 / L02, 1e-12, 0);
    sbi_rt_cia_alpha(&cia, 5000.0, work_buf, alpha);
    SBI_ASSERT_NEAR(alpha[2], 1.0e-5 / L02, 1e-12, 0);
    /* The float kernel adds scale * alpha to what is there, equal to the
     * double one to float rounding, zero outside the table; the scale brings
     * alpha ~ 1e-46 to a float-sized opacity. */
    {
        const double temps[4] = {50.0, 200.0, 999.0, 5000.0}, scale = 1e45;
        float fwork[8], out[4];
        for (int q = 0; q < 4; ++q) {
            sbi_rt_cia_alpha(&cia, temps[q], work_buf, alpha);
            for (int l = 0; l < 4; ++l) out[l] = 1.0f;
            sbi_rt_cia_add(&cia, temps[q], scale, fwork, out);
            for (int l = 0; l < 4; ++l) SBI_ASSERT_NEAR(out[l], 1.0 + scale * alpha[l], 1e-6, 0);
        }
    }
    sbi_rt_cia_free(&cia);
    sbi_cia_table_free(&tab);

    /* A row one value short names the file and the line. */
    write_text(path, "@SPECIES\nH2 H2\n@TEMPERATURES\n100 200\n@DATA\n1000 1e-6 2e-6\n2000 1e-6\n");
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "fixture.dat:7", "@DATA");
    write_text(path, "@SPECIES\nH2 H2\n@TEMPERATURES\n100 200\n@DATA\n1000 1e-6 nan\n");
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "fixture.dat", "coefficients");
    write_text(path, "@SPECIES\nH2 H2\n@TEMPERATURES\n200 100\n@DATA\n1000 1e-6 2e-6\n");
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "fixture.dat", "@TEMPERATURES");
}

static void test_hitran(void)
{
    char path[2300];
    sbi_cia_table tab;
    snprintf(path, sizeof path, "%s/fixture.cia", work);
    /* Two temperatures; the 300 K one in two blocks over different ranges. */
    write_text(path, "               H2-H2    100.000  103.000      4  200.0 4.000E-45 -.999  fixture  1\n"
                     "  100.0000  1.000E-45\n  101.0000  2.000E-45\n  102.0000  3.000E-45\n  103.0000  4.000E-45\n"
                     "               H2-H2    100.000  102.000      2  300.0 4.000E-45 -.999  fixture  1\n"
                     "  100.0000  5.000E-45\n  102.0000  7.000E-45\n"
                     "               H2-H2    103.000  104.000      2  300.0 4.000E-45 -.999  fixture  1\n"
                     "  103.0000  8.000E-45\n  104.0000  9.000E-45\n");
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT_EQ_INT(tab.format, SBI_CIA_HITRAN);
    SBI_ASSERT_EQ_INT(tab.n_t, 2);
    SBI_ASSERT_EQ_INT(tab.n_nu, 5);
    SBI_ASSERT(!strcmp(tab.species[0], "H2") && !strcmp(tab.species[1], "H2"));
    if (tab.n_t == 2 && tab.n_nu == 5) {
        /* 200 K: as given, zero at 104 cm^-1 where its block does not reach. */
        SBI_ASSERT_NEAR(tab.alpha[1], 2.0e-45, 1e-14, 0);
        SBI_ASSERT_NEAR(tab.alpha[4], 0.0, 0, 0);
        /* 300 K at 101 cm^-1: halfway between 100 and 102 of its first block. */
        SBI_ASSERT_NEAR(tab.alpha[5 + 1], 6.0e-45, 1e-14, 0);
        SBI_ASSERT_NEAR(tab.alpha[5 + 4], 9.0e-45, 1e-14, 0);
    }
    sbi_cia_table_free(&tab);

    write_text(path, "               H2-H2    100.000  103.000      4  200.0 4.000E-45 -.999  fixture  1\n"
                     "  100.0000  1.000E-45\n  101.0000  2.000E-45\n  102.0000  3.000E-45\n");
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "fixture.cia", "block 1");
}

static void test_prt_hdf5(void)
{
    char path[2300];
    sbi_cia_table tab;
    const double t[2] = {100.0, 1000.0}, nu[3] = {500.0, 1000.0, 1500.0};
    double alpha[6] = {1e-7, 2e-7, 3e-7, 4e-7, 5e-7, 6e-7};
    const char *names[2] = {"H2", "H2"};
    sbi_opacity_h5_dataset ds[4] = {
        {"alpha", 2, {2, 3}, alpha, NULL, "cm^-1"},
        {"wavenumbers", 1, {3}, nu, NULL, "cm^-1"},
        {"t", 1, {2}, t, NULL, "K"},
        {"mol_name", 1, {2}, NULL, names, NULL},
    };
    snprintf(path, sizeof path, "%s/fixture.ciatable.petitRADTRANS.h5", work);
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 4, ds));
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT_EQ_INT(tab.format, SBI_CIA_PRT_HDF5);
    SBI_ASSERT_EQ_INT(tab.n_t, 2);
    SBI_ASSERT_EQ_INT(tab.n_nu, 3);
    SBI_ASSERT(!strcmp(tab.species[0], "H2") && !strcmp(tab.species[1], "H2"));
    if (tab.n_t == 2 && tab.n_nu == 3) SBI_ASSERT_NEAR(tab.alpha[4], 5e-7 / L02, 1e-14, 0);
    sbi_cia_table_free(&tab);

    /* Per-molecule units are taken as they are. */
    ds[0].units = "cm^5/molecule^2";
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 4, ds));
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    if (tab.alpha) SBI_ASSERT_NEAR(tab.alpha[4], 5e-7, 1e-14, 0);
    sbi_cia_table_free(&tab);

    /* Malformed: unknown units, wrong shape, NaN, a missing dataset. */
    ds[0].units = "furlongs";
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 4, ds));
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "petitRADTRANS.h5", "'alpha'");
    ds[0].units = "cm^-1";
    ds[0].dims[0] = 3;
    ds[0].dims[1] = 2;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 4, ds));
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "petitRADTRANS.h5", "'alpha'");
    ds[0].dims[0] = 2;
    ds[0].dims[1] = 3;
    alpha[2] = NAN;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 4, ds));
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "petitRADTRANS.h5", "'alpha'");
    alpha[2] = 3e-7;
    SBI_ASSERT_OK(sbi_opacity_h5_write(path, 3, ds + 1));
    expect_error(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab), SBI_ERR_IO, "petitRADTRANS.h5", "'alpha'");
    expect_error(sbi_cia_table_read("/nonexistent/none.cia", SBI_CIA_AUTO, &tab), SBI_ERR_IO, "none.cia", NULL);
}

/* The tables in shared/data/opacity/cia (README there). */
static int test_shared(const char *data)
{
    char path[2300];
    sbi_cia_table tab;
    struct stat st;
    snprintf(path, sizeof path, "%s/opacity/cia/CIA_Borysow_H2H2_0060-7000K_0.6-500um.dat", data);
    if (stat(path, &st) != 0) return 0;
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT_EQ_INT(tab.n_t, 20);
    SBI_ASSERT(!strcmp(tab.species[0], "H2") && !strcmp(tab.species[1], "H2"));
    if (tab.n_t == 20 && tab.n_nu > 10) {
        sbi_rt_cia cia;
        const double lambda[2] = {1e4 / 200.0, 1e4 / 20.0};
        double *wk = malloc((size_t)tab.n_nu * sizeof *wk), alpha[2];
        /* First data row: nu = 20 cm^-1, 3.878e-08 at 60 K, 3.515e-09 at 6000 K,
         * 3.867e-09 at 7000 K. */
        SBI_ASSERT_NEAR(tab.nu[0], 20.0, 0, 0);
        SBI_ASSERT_NEAR(tab.t[0], 60.0, 0, 0);
        SBI_ASSERT_NEAR(tab.t[18], 6000.0, 0, 0);
        SBI_ASSERT_NEAR(tab.t[19], 7000.0, 0, 0);
        SBI_ASSERT_NEAR(tab.alpha[19 * tab.n_nu] * L02, 3.867e-09, 1e-12, 0);
        SBI_ASSERT_NEAR(tab.alpha[0] * L02, 3.878e-08, 1e-12, 0);
        SBI_ASSERT_NEAR(tab.alpha[18 * tab.n_nu] * L02, 3.515e-09, 1e-12, 0);
        /* nu = 200 cm^-1 (row 10) at 1000 K (column 14): 3.165e-07. */
        SBI_ASSERT_NEAR(tab.nu[9], 200.0, 0, 0);
        SBI_ASSERT_NEAR(tab.alpha[13 * tab.n_nu + 9] * L02, 3.165e-07, 1e-12, 0);
        /* The interpolation returns tabulated values at tabulated points. */
        SBI_ASSERT_OK(sbi_rt_cia_setup(tab.n_t, tab.t, tab.n_nu, tab.nu, tab.alpha, 2, lambda, &cia));
        if (wk) {
            sbi_rt_cia_alpha(&cia, 1000.0, wk, alpha);
            SBI_ASSERT_NEAR(alpha[0] * L02, 3.165e-07, 1e-10, 0);
            SBI_ASSERT_NEAR(alpha[1] * L02, 4.538e-09, 1e-10, 0);
        }
        free(wk);
        sbi_rt_cia_free(&cia);
    }
    sbi_cia_table_free(&tab);

    snprintf(path, sizeof path, "%s/opacity/cia/H2-H2_TEST_HITRANformat_4300-4400cm-1_200K.cia", data);
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT_EQ_INT(tab.n_t, 1);
    SBI_ASSERT_EQ_INT(tab.n_nu, 100);
    if (tab.n_nu == 100) {
        SBI_ASSERT_NEAR(tab.t[0], 200.0, 0, 0);
        SBI_ASSERT_NEAR(tab.nu[0], 4300.0, 0, 0);
        SBI_ASSERT_NEAR(tab.alpha[0], 3.243e-45, 1e-12, 0);
        SBI_ASSERT_NEAR(tab.alpha[99], 2.477e-45, 1e-12, 0);
    }
    sbi_cia_table_free(&tab);

    snprintf(path, sizeof path, "%s/opacity/cia/CIA_Borysow_H2He_0050-7000K_0.5-031um.dat", data);
    SBI_ASSERT_OK(sbi_cia_table_read(path, SBI_CIA_AUTO, &tab));
    SBI_ASSERT(!strcmp(tab.species[0], "H2") && !strcmp(tab.species[1], "He"));
    sbi_cia_table_free(&tab);
    return 1;
}

/* The run-by-run float kernel against the gather form it replaced, on a
 * model grid that runs out of the table at both ends and back (runs that
 * break and resume) and over the whole temperature range. */
static void test_runs(void)
{
    enum { NT = 5, NN = 60, W = 900 };
    static double t[NT], nu[NN], alpha[NT * NN], lam[W];
    static float work_a[NN], work_b[NN], a[W], b[W];
    sbi_rt_cia cia;
    for (int q = 0; q < NT; ++q) t[q] = 100.0 + 700.0 * q;
    for (int j = 0; j < NN; ++j) nu[j] = 1000.0 + 150.0 * j + 20.0 * sin(j);
    for (int q = 0; q < NT; ++q)
        for (int j = 0; j < NN; ++j)
            alpha[q * NN + j] = j == 7 ? 0.0 : 1e-46 * (1.0 + q) * exp(-nu[j] / 4000.0) * (1.2 + sin(0.3 * j + q));
    for (int l = 0; l < W; ++l) lam[l] = l < 600 ? 0.8 * exp(l * log(14.0) / 599) : 12.0 - 0.02 * (l - 600);
    SBI_ASSERT_OK(sbi_rt_cia_setup(NT, t, NN, nu, alpha, W, lam, &cia));
    SBI_ASSERT(cia.n_runs > 2 && cia.n_runs < W);
    for (int c = 0; c < 6; ++c) {
        const double temp = c == 0 ? 50.0 : c == 5 ? 4000.0 : 150.0 + 600.0 * c;
        for (int l = 0; l < W; ++l) a[l] = b[l] = (float)(0.5 + 1e-3 * l);
        sbi_rt_cia_add(&cia, temp, 3e45, work_a, a);
        sbi_rt_cia_add_gather(&cia, temp, 3e45, work_b, b);
        for (int l = 0; l < W; ++l) SBI_ASSERT_NEAR(a[l], b[l], 1e-6, 0);
    }
    sbi_rt_cia_free(&cia);
}

int main(int argc, char **argv)
{
    int rc;
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORK_DIR [SHARED_DATA_DIR]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    mkdir(work, 0755);
    if (argc > 2) {
        /* The shared-data checks alone; without ../shared/data ctest reports a skip. */
        if (!test_shared(argv[2])) {
            printf("%s: no shared opacity data, skipped\n", argv[2]);
            MPI_Finalize();
            return 77;
        }
    } else {
        test_sectioned();
        test_hitran();
        test_prt_hdf5();
        test_runs();
    }
    MPI_Finalize();
    rc = SBI_TEST_REPORT("opacity_cia");
    return rc;
}
