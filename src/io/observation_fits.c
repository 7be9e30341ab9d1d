/* FITS observation tables through CFITSIO: JWST x1d (EXTRACT1D) and
 * petitRADTRANS' SPECTRUM extension (see include/exosbi/observation.h). */
#include <ctype.h>
#include <fitsio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/observation.h"

/* CFITSIO's description of a status code, with its most recent detailed message. */
static const char *fits_text(int status, char *buf, size_t cap)
{
    char brief[FLEN_STATUS] = "", detail[FLEN_ERRMSG] = "";
    fits_get_errstatus(status, brief);
    if (fits_read_errmsg(detail) && detail[0]) snprintf(buf, cap, "%s: %s", brief, detail);
    else snprintf(buf, cap, "%s", brief);
    fits_clear_errmsg();
    return buf;
}

/* Column number of `name` (case-insensitive), 0 when the table has none. */
static int find_column(fitsfile *f, const char *name)
{
    int col = 0, st = 0;
    char tmpl[FLEN_VALUE];
    snprintf(tmpl, sizeof tmpl, "%s", name);
    fits_get_colnum(f, CASEINSEN, tmpl, &col, &st);
    if (st) {
        fits_clear_errmsg();
        return 0;
    }
    return col;
}

static void read_unit(fitsfile *f, int col, char *out)
{
    char key[FLEN_KEYWORD], val[FLEN_VALUE] = "";
    int st = 0;
    snprintf(key, sizeof key, "TUNIT%d", col);
    fits_read_key(f, TSTRING, key, val, NULL, &st);
    if (st) {
        fits_clear_errmsg();
        val[0] = '\0';
    }
    snprintf(out, SBI_OBS_UNIT_MAX, "%s", val);
}

/* Factor from a length unit to micrometres; 0 when the unit is not recognised. */
static double to_micron(const char *unit)
{
    static const struct { const char *name; double factor; } known[] = {
        {"um", 1.0},       {"micron", 1.0},   {"microns", 1.0}, {"micrometer", 1.0}, {"micrometers", 1.0},
        {"micrometre", 1.0}, {"micrometres", 1.0}, {"mum", 1.0}, {"nm", 1e-3},      {"nanometer", 1e-3},
        {"angstrom", 1e-4}, {"angstroms", 1e-4}, {"aa", 1e-4},   {"a", 1e-4},         {"m", 1e6},
        {"meter", 1e6},     {"cm", 1e4},        {"mm", 1e3}};
    char u[SBI_OBS_UNIT_MAX];
    size_t n = 0;
    for (const char *p = unit; *p && n + 1 < sizeof u; ++p)
        if (!isspace((unsigned char)*p)) u[n++] = (char)tolower((unsigned char)*p);
    u[n] = '\0';
    for (size_t k = 0; k < sizeof known / sizeof known[0]; ++k)
        if (!strcmp(u, known[k].name)) return known[k].factor;
    return 0.0;
}

typedef struct table_cols {
    int wave, flux, err, cov;
    const char *err_name;
} table_cols;

static void find_columns(fitsfile *f, table_cols *t)
{
    memset(t, 0, sizeof *t);
    t->wave = find_column(f, "WAVELENGTH");
    t->flux = find_column(f, "FLUX");
    t->err = find_column(f, "FLUX_ERROR");
    t->err_name = "FLUX_ERROR";
    if (!t->err) {
        t->err = find_column(f, "ERROR");
        t->err_name = "ERROR";
    }
    t->cov = find_column(f, "COVARIANCE");
}

/* Name of the current HDU for messages: "HDU n EXTNAME" (n counts from 1 for the primary). */
static void hdu_label(fitsfile *f, char *out, size_t cap)
{
    int num = 0, st = 0;
    char name[FLEN_VALUE] = "";
    fits_get_hdu_num(f, &num);
    fits_read_key(f, TSTRING, "EXTNAME", name, NULL, &st);
    if (st) {
        fits_clear_errmsg();
        name[0] = '\0';
    }
    if (name[0]) snprintf(out, cap, "HDU %d %s", num, name);
    else snprintf(out, cap, "HDU %d", num);
}

/* Read column col as n doubles, checking that it holds n numbers in all. */
static int read_column(fitsfile *f, const char *where, const char *name, int col, LONGLONG nrows, int64_t n,
                       double *out)
{
    int type = 0, st = 0;
    LONGLONG repeat = 0, width = 0;
    char msg[FLEN_ERRMSG + FLEN_STATUS + 8];
    fits_get_coltypell(f, col, &type, &repeat, &width, &st);
    SBI_CHECK(!st, SBI_ERR_INPUT, "%s: column %s: %s", where, name, fits_text(st, msg, sizeof msg));
    SBI_CHECK(type > 0 && type != TSTRING && type != TLOGICAL && type != TBIT, SBI_ERR_INPUT,
              "%s: column %s is not a numeric column", where, name);
    SBI_CHECK(nrows * repeat == n, SBI_ERR_INPUT, "%s: column %s holds %lld numbers where WAVELENGTH holds %lld",
              where, name, (long long)(nrows * repeat), (long long)n);
    fits_read_col(f, TDOUBLE, col, 1, 1, (LONGLONG)n, NULL, out, NULL, &st);
    SBI_CHECK(!st, SBI_ERR_INPUT, "%s: column %s cannot be read: %s", where, name, fits_text(st, msg, sizeof msg));
    return 0;
}

static int read_table(fitsfile *f, const table_cols *t, const char *where, sbi_observation *obs)
{
    LONGLONG nrows = 0, repeat = 0, width = 0;
    int type = 0, st = 0;
    int64_t n;
    char msg[FLEN_ERRMSG + FLEN_STATUS + 8];
    double factor;

    fits_get_num_rowsll(f, &nrows, &st);
    SBI_CHECK(!st, SBI_ERR_INPUT, "%s: %s", where, fits_text(st, msg, sizeof msg));
    fits_get_coltypell(f, t->wave, &type, &repeat, &width, &st);
    SBI_CHECK(!st, SBI_ERR_INPUT, "%s: column WAVELENGTH: %s", where, fits_text(st, msg, sizeof msg));
    /* One point per row (x1d), or one row holding the whole spectrum in vector cells. */
    n = (int64_t)(nrows * (repeat > 0 ? repeat : 1));
    SBI_CHECK(n > 0, SBI_ERR_INPUT, "%s: the table has no rows", where);
    SBI_MALLOC(obs->coordinate, n);
    SBI_MALLOC(obs->value, n);
    SBI_CALL(read_column(f, where, "WAVELENGTH", t->wave, nrows, n, obs->coordinate));
    SBI_CALL(read_column(f, where, "FLUX", t->flux, nrows, n, obs->value));
    read_unit(f, t->wave, obs->coordinate_unit_original);
    read_unit(f, t->flux, obs->value_unit);
    if (t->err) {
        SBI_MALLOC(obs->uncertainty, n);
        SBI_CALL(read_column(f, where, t->err_name, t->err, nrows, n, obs->uncertainty));
        read_unit(f, t->err, obs->uncertainty_unit);
    }
    if (t->cov) {
        SBI_CHECK(nrows == n, SBI_ERR_INPUT,
                  "%s: column COVARIANCE needs one row per point (the spectrum is stored in vector cells)", where);
        SBI_MALLOC(obs->covariance, n * n);
        SBI_CALL(read_column(f, where, "COVARIANCE", t->cov, nrows, n * n, obs->covariance));
        if (!t->err) {
            SBI_MALLOC(obs->uncertainty, n);
            for (int64_t i = 0; i < n; ++i) {
                double v = obs->covariance[i * n + i];
                obs->uncertainty[i] = v >= 0 ? sqrt(v) : NAN;
                SBI_CHECK(!(v < 0), SBI_ERR_INPUT, "%s: column COVARIANCE: row %lld: negative variance %g", where,
                          (long long)i + 1, v);
            }
            read_unit(f, t->cov, obs->uncertainty_unit);
        }
    }
    obs->n = n;
    obs->n_columns = t->cov ? 4 : 3;
    /* Wavelengths in micrometres when the unit is known. */
    factor = to_micron(obs->coordinate_unit_original);
    if (factor > 0) {
        for (int64_t i = 0; i < n; ++i) obs->coordinate[i] *= factor;
        snprintf(obs->coordinate_unit, sizeof obs->coordinate_unit, "um");
    } else {
        snprintf(obs->coordinate_unit, sizeof obs->coordinate_unit, "%s", obs->coordinate_unit_original);
    }
    /* Missing points: any non-finite number of the row. */
    for (int64_t i = 0; i < n; ++i) {
        int bad = !isfinite(obs->coordinate[i]) || !isfinite(obs->value[i]) ||
                  (obs->uncertainty && !isfinite(obs->uncertainty[i]));
        if (!bad && obs->uncertainty)
            SBI_CHECK(obs->uncertainty[i] >= 0, SBI_ERR_INPUT, "%s: column %s: row %lld: negative uncertainty %g",
                      where, t->err ? t->err_name : "COVARIANCE", (long long)i + 1, obs->uncertainty[i]);
        if (!bad) continue;
        if (!obs->missing) SBI_CALLOC(obs->missing, n);
        obs->missing[i] = 1;
        obs->n_missing++;
        obs->value[i] = NAN;
        if (obs->uncertainty) obs->uncertainty[i] = NAN;
    }
    return 0;
}

static int read_fits(fitsfile *f, const char *path, int explicit_hdu, sbi_observation *obs)
{
    table_cols t;
    int type = 0, st = 0, n_hdu = 0;
    char where[4200], msg[FLEN_ERRMSG + FLEN_STATUS + 8], label[FLEN_VALUE + 16];
    char lacking[FLEN_VALUE + 64] = "";

    if (explicit_hdu) {
        fits_get_hdu_type(f, &type, &st);
        hdu_label(f, label, sizeof label);
        snprintf(where, sizeof where, "%s (%s)", path, label);
        SBI_CHECK(!st, SBI_ERR_INPUT, "%s: %s", where, fits_text(st, msg, sizeof msg));
        SBI_CHECK(type == BINARY_TBL || type == ASCII_TBL, SBI_ERR_INPUT,
                  "%s: not a table; the spectrum must be a table with WAVELENGTH and FLUX columns", where);
        find_columns(f, &t);
        SBI_CHECK(t.wave, SBI_ERR_INPUT, "%s: no column WAVELENGTH", where);
        SBI_CHECK(t.flux, SBI_ERR_INPUT, "%s: no column FLUX", where);
    } else {
        int found = 0;
        fits_get_num_hdus(f, &n_hdu, &st);
        SBI_CHECK(!st, SBI_ERR_INPUT, "%s: %s", path, fits_text(st, msg, sizeof msg));
        for (int h = 1; h <= n_hdu && !found; ++h) {
            fits_movabs_hdu(f, h, &type, &st);
            SBI_CHECK(!st, SBI_ERR_INPUT, "%s: HDU %d: %s", path, h, fits_text(st, msg, sizeof msg));
            if (type != BINARY_TBL && type != ASCII_TBL) continue;
            find_columns(f, &t);
            if (t.wave && t.flux) {
                found = 1;
            } else if (!lacking[0] && (t.wave || t.flux)) {
                hdu_label(f, label, sizeof label);
                snprintf(lacking, sizeof lacking, "; %s has no column %s", label, t.wave ? "FLUX" : "WAVELENGTH");
            }
        }
        SBI_CHECK(found, SBI_ERR_INPUT, "%s: no table HDU with columns WAVELENGTH and FLUX%s", path, lacking);
        hdu_label(f, label, sizeof label);
        snprintf(where, sizeof where, "%s (%s)", path, label);
    }
    snprintf(obs->source, sizeof obs->source, "%s", where);
    SBI_CALL(read_table(f, &t, where, obs));
    return 0;
}

int sbi_observation_read_fits(const char *path, sbi_observation *obs)
{
    fitsfile *f = NULL;
    int st = 0, rc, cst = 0;
    size_t len = strlen(path);
    int explicit_hdu = len > 1 && path[len - 1] == ']' && strchr(path, '[') != NULL;
    char msg[FLEN_ERRMSG + FLEN_STATUS + 8];

    memset(obs, 0, sizeof *obs);
    snprintf(obs->path, sizeof obs->path, "%s", path);
    snprintf(obs->source, sizeof obs->source, "%s", path);
    obs->is_fits = 1;
    fits_open_file(&f, path, READONLY, &st);
    SBI_CHECK(!st, SBI_ERR_INPUT, "%s: cannot be read as a FITS file: %s", path, fits_text(st, msg, sizeof msg));
    rc = read_fits(f, path, explicit_hdu, obs);
    fits_close_file(f, &cst);
    fits_clear_errmsg();
    if (rc) {
        sbi_observation_free(obs);
        return rc;
    }
    return 0;
}
