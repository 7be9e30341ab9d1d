/* HDF5 helpers of the opacity readers, shared checks of grids and tables,
 * units, and the small writer that tests use to make fixture tables in the
 * layouts of petitRADTRANS 3 (`opacities/opacities.py` writers) and
 * ExoMolOP / TauREx 3. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exosbi/rt.h"
#include "io/h5_impl.h"
#include "io/opacity_impl.h"

int sbi__opac_h5_open(const char *path, hid_t *file)
{
    struct stat st;
    char msg[640];
    sbi__h5_init();
    *file = H5I_INVALID_HID;
    SBI_CHECK(stat(path, &st) == 0, SBI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    SBI_CHECK(S_ISREG(st.st_mode), SBI_ERR_IO, "%s: not a regular file", path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) {
        sbi__h5_message(msg, sizeof msg);
        SBI_RAISE(SBI_ERR_IO, "%s: not a readable HDF5 file: %s", path, msg);
    }
    return SBI_OK;
}

int sbi__opac_h5_has(hid_t file, const char *name)
{
    htri_t e = H5Lexists(file, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

int sbi__opac_h5_shape(hid_t file, const char *path, const char *name, int *rank, int64_t dims[4])
{
    hid_t dset, space;
    hsize_t hd[H5S_MAX_RANK];
    int nd;
    SBI_CHECK(sbi__opac_h5_has(file, name), SBI_ERR_IO, "%s: dataset '%s' is missing", path, name);
    SBI_CALL_H5_AT(path, dset = H5Dopen2(file, name, H5P_DEFAULT));
    space = H5Dget_space(dset);
    nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (nd >= 0 && nd <= 4) H5Sget_simple_extent_dims(space, hd, NULL);
    sbi__h5_close(&space);
    H5Dclose(dset);
    SBI_CHECK(nd >= 0 && nd <= 4, SBI_ERR_IO, "%s: dataset '%s' has %d dimensions (at most 4 expected)", path, name,
              nd);
    *rank = nd;
    for (int i = 0; i < 4; ++i) dims[i] = i < nd ? (int64_t)hd[i] : 1;
    return SBI_OK;
}

int sbi__opac_h5_read_all(hid_t file, const char *path, const char *name, double **data, int64_t *n)
{
    hid_t dset, type;
    H5T_class_t cls;
    int rank;
    int64_t dims[4], count;
    double *buf;
    herr_t st;

    *data = NULL;
    *n = 0;
    SBI_CALL(sbi__opac_h5_shape(file, path, name, &rank, dims));
    count = dims[0] * dims[1] * dims[2] * dims[3];
    SBI_CALL_H5_AT(path, dset = H5Dopen2(file, name, H5P_DEFAULT));
    type = H5Dget_type(dset);
    cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    sbi__h5_close(&type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        H5Dclose(dset);
        SBI_RAISE(SBI_ERR_IO, "%s: dataset '%s' is not numeric", path, name);
    }
    buf = malloc((size_t)(count > 0 ? count : 1) * sizeof *buf);
    if (!buf) {
        H5Dclose(dset);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory reading %s: dataset '%s'", path, name);
    }
    st = count > 0 ? H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    H5Dclose(dset);
    if (st < 0) {
        free(buf);
        return sbi__h5_error(path, __FILE__, __LINE__, __func__, name);
    }
    *data = buf;
    *n = count;
    return SBI_OK;
}

int sbi__opac_h5_units(hid_t file, const char *path, const char *name, int required, char **units)
{
    hid_t dset;
    htri_t has;
    char where[1200];
    int st;

    *units = NULL;
    SBI_CHECK(sbi__opac_h5_has(file, name), SBI_ERR_IO, "%s: dataset '%s' is missing", path, name);
    SBI_CALL_H5_AT(path, dset = H5Dopen2(file, name, H5P_DEFAULT));
    has = H5Aexists(dset, "units");
    if (has <= 0) {
        H5Dclose(dset);
        H5Eclear2(H5E_DEFAULT);
        SBI_CHECK(!required, SBI_ERR_IO, "%s: dataset '%s' has no 'units' attribute", path, name);
        return SBI_OK;
    }
    snprintf(where, sizeof where, "%s: dataset '%s'", path, name);
    st = sbi__h5_attr_get_string(dset, where, "units", units);
    H5Dclose(dset);
    SBI_CALL(st);
    return SBI_OK;
}

void sbi__opac_h5_first_string(hid_t file, const char *name, char *out, size_t cap)
{
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    out[0] = '\0';
    if (!sbi__opac_h5_has(file, name)) return;
    dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (dset < 0) goto done;
    type = H5Dget_type(dset);
    space = H5Dget_space(dset);
    if (type < 0 || space < 0 || H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) < 1) goto done;
    if (H5Tis_variable_str(type) > 0) {
        hssize_t n = H5Sget_simple_extent_npoints(space);
        char **tmp = calloc((size_t)n, sizeof *tmp);
        mtype = H5Tcopy(H5T_C_S1);
        if (tmp && mtype >= 0 && H5Tset_size(mtype, H5T_VARIABLE) >= 0 &&
            H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) >= 0) {
            snprintf(out, cap, "%s", tmp[0] ? tmp[0] : "");
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, tmp);
        }
        free(tmp);
    } else {
        size_t width = H5Tget_size(type);
        hssize_t n = H5Sget_simple_extent_npoints(space);
        char *buf = calloc((size_t)n * width + 1, 1);
        mtype = H5Tcopy(type);
        if (buf && mtype >= 0 && H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0)
            snprintf(out, cap, "%.*s", (int)(width < cap ? width : cap - 1), buf);
        free(buf);
    }
done:
    sbi__h5_close(&mtype);
    sbi__h5_close(&space);
    sbi__h5_close(&type);
    sbi__h5_close(&dset);
    H5Eclear2(H5E_DEFAULT);
}

int sbi__opac_h5_strings(hid_t file, const char *path, const char *name, int max, char out[][16], int *n)
{
    hid_t dset;
    char **s = NULL, where[1200];
    int count = 0, st;
    *n = 0;
    SBI_CHECK(sbi__opac_h5_has(file, name), SBI_ERR_IO, "%s: dataset '%s' is missing", path, name);
    SBI_CALL_H5_AT(path, dset = H5Dopen2(file, name, H5P_DEFAULT));
    snprintf(where, sizeof where, "%s: dataset '%s'", path, name);
    st = sbi__h5_read_strings(dset, where, H5P_DEFAULT, &count, &s);
    H5Dclose(dset);
    SBI_CALL(st);
    for (int i = 0; i < count; ++i) {
        if (i < max) snprintf(out[i], 16, "%s", s[i]);
        free(s[i]);
    }
    free(s);
    *n = count < max ? count : max;
    return SBI_OK;
}

/* Lower case without blanks, so that "cm^2 / molecule" matches "cm^2/molecule". */
static void normalise_units(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    for (; *in && k + 1 < cap; ++in)
        if (!isspace((unsigned char)*in)) out[k++] = (char)tolower((unsigned char)*in);
    out[k] = '\0';
}

typedef struct unit_entry {
    const char *kind, *name;
    double factor;
} unit_entry;

static const unit_entry units_known[] = {
    {"pressure", "bar", 1.0},
    {"pressure", "mbar", 1e-3},
    {"pressure", "pa", 1e-5},
    {"pressure", "atm", 1.01325},
    {"pressure", "dyn/cm^2", 1e-6},
    {"pressure", "dyncm^-2", 1e-6},
    {"pressure", "ba", 1e-6},
    {"temperature", "k", 1.0},
    {"wavenumber", "cm^-1", 1.0},
    {"wavenumber", "cm-1", 1.0},
    {"wavenumber", "1/cm", 1.0},
    {"cross section", "cm^2/molecule", 1.0},
    {"cross section", "cm^2molecule^-1", 1.0},
    {"cross section", "cm2/molecule", 1.0},
    {"cross section", "cm^2", 1.0},
    {"cia", "cm^-1", CIA_AMAGAT_FACTOR},
    {"cia", "cm-1", CIA_AMAGAT_FACTOR},
    {"cia", "cm^-1amagat^-2", CIA_AMAGAT_FACTOR},
    {"cia", "cm-1amagat-2", CIA_AMAGAT_FACTOR},
    {"cia", "cm^-1/amagat^2", CIA_AMAGAT_FACTOR},
    {"cia", "cm^5/molecule^2", 1.0},
    {"cia", "cm^5molecule^-2", 1.0},
    {"cia", "cm5/molecule2", 1.0},
};

int sbi__opac_units_factor(const char *path, const char *name, const char *kind, const char *units, double fallback,
                           double *factor)
{
    char norm[64];
    if (!units) {
        *factor = fallback;
        return SBI_OK;
    }
    normalise_units(units, norm, sizeof norm);
    for (size_t i = 0; i < sizeof units_known / sizeof units_known[0]; ++i)
        if (!strcmp(units_known[i].kind, kind) && !strcmp(units_known[i].name, norm)) {
            *factor = units_known[i].factor;
            return SBI_OK;
        }
    SBI_RAISE(SBI_ERR_IO, "%s: dataset '%s': unknown %s units '%s'", path, name, kind, units);
}

int sbi__opac_check_grid(const char *path, const char *name, int64_t n, const double *v)
{
    SBI_CHECK(n >= 1, SBI_ERR_IO, "%s: dataset '%s' is empty", path, name);
    for (int64_t i = 0; i < n; ++i) {
        SBI_CHECK(isfinite(v[i]) && v[i] > 0, SBI_ERR_IO, "%s: dataset '%s'[%lld] = %g is not a finite positive value",
                  path, name, (long long)i, v[i]);
        SBI_CHECK(i == 0 || v[i] > v[i - 1], SBI_ERR_IO, "%s: dataset '%s' is not strictly increasing at [%lld]", path,
                  name, (long long)i);
    }
    return SBI_OK;
}

int sbi__opac_check_table(const char *path, const char *name, int64_t n, double *v)
{
    for (int64_t i = 0; i < n; ++i) {
        SBI_CHECK(isfinite(v[i]), SBI_ERR_IO, "%s: dataset '%s'[%lld] = %g is not finite", path, name, (long long)i,
                  v[i]);
        if (v[i] < 0) v[i] = 0.0;
    }
    return SBI_OK;
}

/* ---- writer ---------------------------------------------------------------- */

static int write_one(hid_t file, const char *path, const sbi_opacity_h5_dataset *d)
{
    hsize_t hd[4];
    hid_t space = H5I_INVALID_HID, dset = H5I_INVALID_HID, type = H5I_INVALID_HID;
    char *packed = NULL;
    herr_t st;

    SBI_CHECK(d->name && d->rank >= 1 && d->rank <= 4, SBI_ERR_INTERNAL, "%s: dataset '%s': rank %d", path,
              d->name ? d->name : "", d->rank);
    for (int i = 0; i < d->rank; ++i) hd[i] = (hsize_t)d->dims[i];
    SBI_CALL_H5_AT(path, space = H5Screate_simple(d->rank, hd, NULL));
    if (d->strings) {
        int n = (int)d->dims[0];
        if (sbi__h5_string_type(n, d->strings, &type) || sbi__h5_pack_strings(n, d->strings, H5Tget_size(type), &packed)) {
            sbi__h5_close(&type);
            sbi__h5_close(&space);
            return sbi__trace(SBI_ERR_IO, __FILE__, __LINE__, __func__);
        }
    } else {
        type = H5Tcopy(H5T_IEEE_F64LE);
    }
    dset = type >= 0 ? H5Dcreate2(file, d->name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    sbi__h5_close(&space);
    if (dset < 0) {
        free(packed);
        sbi__h5_close(&type);
        return sbi__h5_error(path, __FILE__, __LINE__, __func__, d->name);
    }
    if (d->strings)
        st = H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed);
    else
        st = H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->data);
    free(packed);
    sbi__h5_close(&type);
    if (st >= 0 && d->units && sbi__h5_attr_put_string(dset, "units", d->units)) st = -1;
    H5Dclose(dset);
    SBI_CALL_H5_AT(path, st);
    return SBI_OK;
}

int sbi_opacity_h5_write(const char *path, int n, const sbi_opacity_h5_dataset *datasets)
{
    hid_t file;
    int st = 0;
    sbi__h5_init();
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) return sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Fcreate");
    for (int i = 0; i < n && !st; ++i) st = write_one(file, path, &datasets[i]);
    if (H5Fclose(file) < 0 && !st) st = sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Fclose");
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return SBI_OK;
}
