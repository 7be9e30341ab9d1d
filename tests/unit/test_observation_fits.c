/* FITS observation tables: a JWST x1d-like file written here with CFITSIO
 * and read back (NaN rows as missing points, TUNITn kept, nm converted to um,
 * explicit extensions), petitRADTRANS' SPECTRUM extension with a COVARIANCE
 * column, one-row vector tables, and the errors for files without FLUX.
 *
 * With arguments it only writes a file for the command-line tests:
 *   test_observation_fits --write OUT.fits SPEC.txt [--no-flux]
 * SPEC.txt has rows `wavelength[um] flux error` (nan allowed); OUT.fits gets
 * a primary HDU and an EXTRACT1D table in um and Jy. */
#include <fitsio.h>
#include <string.h>
#include <unistd.h>

#include "exosbi/observation.h"
#include "testutil.h"

static char dir[] = "/tmp/exosbi-fits-XXXXXX";

typedef struct table {
    const char *extname;
    int n_cols;
    const char *names[5], *forms[5], *units[5];
    int64_t nrows;
    const double *data[5]; /* each column's numbers, row after row */
} table;

/* A FITS file with an empty primary array and the given binary tables. */
static int write_fits(const char *path, int n_tables, const table *t)
{
    fitsfile *f = NULL;
    int st = 0;
    char bang[600];
    snprintf(bang, sizeof bang, "!%s", path);
    fits_create_file(&f, bang, &st);
    fits_create_img(f, 8, 0, NULL, &st);
    for (int k = 0; k < n_tables; ++k) {
        char *names[5], *forms[5], *units[5];
        for (int c = 0; c < t[k].n_cols; ++c) {
            names[c] = (char *)t[k].names[c];
            forms[c] = (char *)t[k].forms[c];
            units[c] = (char *)t[k].units[c];
        }
        fits_create_tbl(f, BINARY_TBL, t[k].nrows, t[k].n_cols, names, forms, units, t[k].extname, &st);
        for (int c = 0; c < t[k].n_cols; ++c) {
            long repeat = atol(t[k].forms[c]);
            if (repeat < 1) repeat = 1;
            fits_write_col(f, TDOUBLE, c + 1, 1, 1, t[k].nrows * repeat, (void *)t[k].data[c], &st);
        }
    }
    fits_close_file(f, &st);
    if (st) fits_report_error(stderr, st);
    return st;
}

static const char *tmp(const char *name)
{
    static char path[8][256];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static int contains(const char *msg, const char *want)
{
    if (strstr(msg, want)) return 1;
    fprintf(stderr, "message '%s' lacks '%s'\n", msg, want);
    return 0;
}

static int write_from_text(const char *out, const char *spec, int no_flux)
{
    double w[4096], v[4096], e[4096];
    int64_t n = 0;
    char line[512];
    FILE *f = fopen(spec, "r");
    if (!f) return 1;
    while (n < 4096 && fgets(line, sizeof line, f)) {
        char *p = line, *end;
        if (line[0] == '#' || line[0] == '\n') continue;
        w[n] = strtod(p, &end);
        v[n] = strtod(end, &end);
        e[n] = strtod(end, &end);
        ++n;
    }
    fclose(f);
    {
        table t = {"EXTRACT1D", 3, {"WAVELENGTH", no_flux ? "SURF_BRIGHT" : "FLUX", "FLUX_ERROR"},
                   {"1D", "1D", "1D"}, {"um", "Jy", "Jy"}, n, {w, v, e}};
        return write_fits(out, 1, &t);
    }
}

int main(int argc, char **argv)
{
    sbi_observation o;
    const double wave[6] = {1.0, 1.1, 1.2, 1.3, 1.4, 1.5};
    const double flux[6] = {10, 11, NAN, 13, 14, 15};
    const double ferr[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    const double dq[6] = {0, 0, 1, 0, 0, 0};

    if (argc >= 4 && !strcmp(argv[1], "--write"))
        return write_from_text(argv[2], argv[3], argc >= 5 && !strcmp(argv[4], "--no-flux"));
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) return 1;

    /* A JWST x1d-like file: a table without FLUX first, then EXTRACT1D. */
    {
        table t[2] = {{"OTHER", 2, {"WAVELENGTH", "SURF_BRIGHT"}, {"1D", "1D"}, {"um", "MJy/sr"}, 6, {wave, flux}},
                      {"EXTRACT1D", 4, {"WAVELENGTH", "FLUX", "FLUX_ERROR", "DQ"}, {"1D", "1D", "1D", "1D"},
                       {"um", "Jy", "Jy", ""}, 6, {wave, flux, ferr, dq}}};
        SBI_ASSERT_EQ_INT(write_fits(tmp("x1d.fits"), 2, t), 0);
    }
    SBI_ASSERT_OK(sbi_observation_read_fits(tmp("x1d.fits"), &o));
    SBI_ASSERT_EQ_INT(o.n, 6);
    SBI_ASSERT_EQ_INT(o.is_fits, 1);
    SBI_ASSERT_EQ_INT(o.n_missing, 1);
    SBI_ASSERT(o.missing && o.missing[2] == 1 && o.missing[1] == 0);
    SBI_ASSERT(isnan(o.value[2]) && isnan(o.uncertainty[2]));
    SBI_ASSERT_NEAR(o.value[3], 13, 0, 0);
    SBI_ASSERT_NEAR(o.uncertainty[5], 0.6, 0, 0);
    SBI_ASSERT_NEAR(o.coordinate[4], 1.4, 0, 0);
    SBI_ASSERT(!strcmp(o.coordinate_unit, "um") && !strcmp(o.value_unit, "Jy") && !strcmp(o.uncertainty_unit, "Jy"));
    SBI_ASSERT(contains(o.source, "HDU 3 EXTRACT1D"));
    SBI_ASSERT(o.covariance == NULL && o.bin_width == NULL);
    sbi_observation_free(&o);

    /* The same table chosen by name and by number, and through the generic reader. */
    {
        char p[300];
        snprintf(p, sizeof p, "%s[EXTRACT1D]", tmp("x1d.fits"));
        SBI_ASSERT_OK(sbi_observation_read(p, &o));
        SBI_ASSERT_EQ_INT(o.n, 6);
        SBI_ASSERT_EQ_INT(o.n_missing, 1);
        sbi_observation_free(&o);
        snprintf(p, sizeof p, "%s[2]", tmp("x1d.fits"));
        SBI_ASSERT_OK(sbi_observation_read(p, &o));
        SBI_ASSERT(contains(o.source, "EXTRACT1D"));
        sbi_observation_free(&o);
        /* Extension 1 has no FLUX column. */
        snprintf(p, sizeof p, "%s[OTHER]", tmp("x1d.fits"));
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read(p, &o), SBI_ERR_INPUT);
        SBI_ASSERT(contains(sbi_error_message(), "x1d.fits") && contains(sbi_error_message(), "no column FLUX"));
        /* A FITS file under another name is recognised by its header. */
        if (symlink(tmp("x1d.fits"), tmp("x1d.dat")) == 0) {
            SBI_ASSERT_OK(sbi_observation_read(tmp("x1d.dat"), &o));
            SBI_ASSERT_EQ_INT(o.is_fits, 1);
            sbi_observation_free(&o);
        }
    }

    /* Wavelengths in nm become um; the file's unit is kept. */
    {
        const double nm[3] = {1000, 1500, 2000}, v[3] = {1, 2, 3}, e[3] = {0.1, 0.1, 0.1};
        table t = {"EXTRACT1D", 3, {"wavelength", "flux", "flux_error"}, {"1D", "1D", "1D"}, {"nm", "W/m2/um", ""},
                   3, {nm, v, e}};
        SBI_ASSERT_EQ_INT(write_fits(tmp("nm.fits"), 1, &t), 0);
        SBI_ASSERT_OK(sbi_observation_read(tmp("nm.fits"), &o));
        SBI_ASSERT_NEAR(o.coordinate[1], 1.5, 1e-15, 0);
        SBI_ASSERT(!strcmp(o.coordinate_unit, "um") && !strcmp(o.coordinate_unit_original, "nm"));
        SBI_ASSERT(!strcmp(o.value_unit, "W/m2/um") && o.uncertainty_unit[0] == '\0');
        SBI_ASSERT_EQ_INT(o.n_missing, 0);
        SBI_ASSERT(o.missing == NULL);
        sbi_observation_free(&o);
    }

    /* petitRADTRANS' SPECTRUM extension with a COVARIANCE column and no ERROR. */
    {
        const double w[3] = {1, 2, 3}, v[3] = {5, 6, 7};
        const double cov[9] = {4, 1, 0, 1, 9, 0, 0, 0, 16};
        table t = {"SPECTRUM", 3, {"WAVELENGTH", "FLUX", "COVARIANCE"}, {"1D", "1D", "3D"}, {"micron", "", ""}, 3,
                   {w, v, cov}};
        SBI_ASSERT_EQ_INT(write_fits(tmp("prt.fits"), 1, &t), 0);
        SBI_ASSERT_OK(sbi_observation_read(tmp("prt.fits"), &o));
        SBI_ASSERT_EQ_INT(o.n, 3);
        SBI_ASSERT(o.covariance != NULL);
        SBI_ASSERT_NEAR(o.covariance[1], 1, 0, 0);
        SBI_ASSERT_NEAR(o.covariance[8], 16, 0, 0);
        SBI_ASSERT_NEAR(o.uncertainty[1], 3, 0, 0);
        SBI_ASSERT(!strcmp(o.coordinate_unit, "um"));
        sbi_observation_free(&o);
    }

    /* One row holding the whole spectrum in vector cells. */
    {
        const double w[4] = {1, 2, 3, 4}, v[4] = {1, 2, 3, 4}, e[4] = {1, 1, 1, 1};
        table t = {"SCI", 3, {"WAVELENGTH", "FLUX", "ERROR"}, {"4D", "4D", "4D"}, {"Angstrom", "", ""}, 1,
                   {w, v, e}};
        SBI_ASSERT_EQ_INT(write_fits(tmp("vec.fits"), 1, &t), 0);
        SBI_ASSERT_OK(sbi_observation_read(tmp("vec.fits"), &o));
        SBI_ASSERT_EQ_INT(o.n, 4);
        SBI_ASSERT_NEAR(o.coordinate[3], 4e-4, 1e-15, 0);
        SBI_ASSERT_NEAR(o.value[2], 3, 0, 0);
        sbi_observation_free(&o);
    }

    /* Errors: no FLUX anywhere, a negative uncertainty, a file that is not FITS. */
    {
        const double neg[6] = {0.1, -0.2, 0.3, 0.4, 0.5, 0.6};
        table t = {"EXTRACT1D", 3, {"WAVELENGTH", "SURF_BRIGHT", "FLUX_ERROR"}, {"1D", "1D", "1D"},
                   {"um", "MJy/sr", "MJy/sr"}, 6, {wave, flux, ferr}};
        table tn = {"EXTRACT1D", 3, {"WAVELENGTH", "FLUX", "FLUX_ERROR"}, {"1D", "1D", "1D"}, {"um", "Jy", "Jy"}, 6,
                    {wave, flux, neg}};
        FILE *f;
        SBI_ASSERT_EQ_INT(write_fits(tmp("noflux.fits"), 1, &t), 0);
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read(tmp("noflux.fits"), &o), SBI_ERR_INPUT);
        SBI_ASSERT(contains(sbi_error_message(), "noflux.fits") && contains(sbi_error_message(), "FLUX") &&
                   contains(sbi_error_message(), "has no column FLUX"));
        SBI_ASSERT_EQ_INT(write_fits(tmp("neg.fits"), 1, &tn), 0);
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read(tmp("neg.fits"), &o), SBI_ERR_INPUT);
        SBI_ASSERT(contains(sbi_error_message(), "neg.fits") && contains(sbi_error_message(), "FLUX_ERROR") &&
                   contains(sbi_error_message(), "row 2"));
        f = fopen(tmp("text.fits"), "w");
        fputs("1 2 3\n", f);
        fclose(f);
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read(tmp("text.fits"), &o), SBI_ERR_INPUT);
        SBI_ASSERT(contains(sbi_error_message(), "text.fits"));
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read("/nonexistent/x1d.fits", &o), SBI_ERR_INPUT);
        SBI_ASSERT(contains(sbi_error_message(), "/nonexistent/x1d.fits"));
        sbi_error_clear();
    }
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    }
    {
        int rc = SBI_TEST_REPORT("io_observation_fits");
        MPI_Finalize();
        return rc;
    }
}
