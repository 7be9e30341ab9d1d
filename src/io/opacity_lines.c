/* Readers of molecular cross-section tables: petitRADTRANS 3 line-by-line
 * HDF5 (`xsecarr`; writer `opacities/opacities.py`, reader `radtrans.py`)
 * and ExoMolOP / TauREx 3 HDF5 (reader `taurex/opacity/hdf5opacity.py`).
 * Both hold `xsecarr` (n_p, n_T, n_nu) [cm^2 molecule^-1] over `p`, `t` and
 * `bin_edges`; the grids are read at open, the cross sections a row at a
 * time through a hyperslab so that only the wavenumbers a model needs are
 * ever in memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_impl.h"
#include "io/opacity_impl.h"

struct sbi_line_file_s {
    char path[4096];
    hid_t file, dset;
    sbi_line_info info;
    double *p, *t, *nu;
    double factor; /* xsecarr units -> cm^2 molecule^-1 */
};

const char *sbi_line_format_name(sbi_line_format format)
{
    switch (format) {
    case SBI_LINE_PRT_LBL: return "petitRADTRANS line-by-line";
    case SBI_LINE_TAUREX: return "ExoMolOP/TauREx";
    default: return "auto";
    }
}

void sbi_line_file_close(sbi_line_file *fp)
{
    sbi_line_file f = *fp;
    if (!f) return;
    *fp = NULL;
    sbi__h5_close(&f->dset);
    sbi__h5_close(&f->file);
    free(f->p);
    free(f->t);
    free(f->nu);
    free(f);
}

/* Read 1-D grid `name`, convert it with its `units` attribute and check it. */
static int read_grid(sbi_line_file f, const char *name, const char *kind, int units_required, double **v, int64_t *n)
{
    char *units = NULL;
    double factor = 1.0;
    int rank, st;
    int64_t dims[4];
    SBI_CALL(sbi__opac_h5_shape(f->file, f->path, name, &rank, dims));
    SBI_CHECK(rank == 1, SBI_ERR_IO, "%s: dataset '%s' has %d dimensions, expected 1", f->path, name, rank);
    SBI_CALL(sbi__opac_h5_units(f->file, f->path, name, units_required, &units));
    st = sbi__opac_units_factor(f->path, name, kind, units, 1.0, &factor);
    free(units);
    SBI_CALL(st);
    SBI_CALL(sbi__opac_h5_read_all(f->file, f->path, name, v, n));
    for (int64_t i = 0; i < *n; ++i) (*v)[i] *= factor;
    SBI_CALL(sbi__opac_check_grid(f->path, name, *n, *v));
    return SBI_OK;
}

static int line_open(sbi_line_file f, sbi_line_format format)
{
    int64_t n_p = 0, n_t = 0, n_nu = 0, dims[4];
    int rank;
    char *units = NULL, date[64];
    int st;

    SBI_CALL(sbi__opac_h5_open(f->path, &f->file));
    if (format == SBI_LINE_AUTO) {
        sbi__opac_h5_first_string(f->file, "Date_ID", date, sizeof date);
        format = (!strncmp(date, "petitRADTRANS", 13) || strstr(f->path, ".petitRADTRANS.")) ? SBI_LINE_PRT_LBL
                                                                                              : SBI_LINE_TAUREX;
    }
    f->info.format = format;
    SBI_CHECK(!sbi__opac_h5_has(f->file, "kcoeff") || sbi__opac_h5_has(f->file, "xsecarr"), SBI_ERR_IO,
              "%s: a correlated-k table (dataset 'kcoeff'); this reader takes cross sections ('xsecarr')", f->path);
    /* Both formats store the pressure grid in bar; TauREx refuses a `p`
     * without a `units` attribute and so does this reader, for both. */
    SBI_CALL(read_grid(f, "p", "pressure", 1, &f->p, &n_p));
    SBI_CALL(read_grid(f, "t", "temperature", 0, &f->t, &n_t));
    SBI_CALL(read_grid(f, "bin_edges", "wavenumber", 0, &f->nu, &n_nu));
    SBI_CALL(sbi__opac_h5_shape(f->file, f->path, "xsecarr", &rank, dims));
    SBI_CHECK(rank == 3 && dims[0] == n_p && dims[1] == n_t && dims[2] == n_nu, SBI_ERR_IO,
              "%s: dataset 'xsecarr' has shape (%lld, %lld, %lld) with %d dimensions; expected (n_p, n_T, n_nu) = "
              "(%lld, %lld, %lld) from datasets 'p', 't' and 'bin_edges'",
              f->path, (long long)dims[0], (long long)dims[1], (long long)dims[2], rank, (long long)n_p,
              (long long)n_t, (long long)n_nu);
    SBI_CALL(sbi__opac_h5_units(f->file, f->path, "xsecarr", 0, &units));
    st = sbi__opac_units_factor(f->path, "xsecarr", "cross section", units, 1.0, &f->factor);
    free(units);
    SBI_CALL(st);
    SBI_CALL_H5_AT(f->path, f->dset = H5Dopen2(f->file, "xsecarr", H5P_DEFAULT));
    if (sbi__opac_h5_has(f->file, "mol_mass")) {
        double *m = NULL;
        int64_t n = 0;
        SBI_CALL(sbi__opac_h5_read_all(f->file, f->path, "mol_mass", &m, &n));
        st = n >= 1 && m[0] > 0 && m[0] < 1e4 ? 0 : SBI_ERR_IO;
        f->info.mol_mass = n >= 1 ? m[0] : 0;
        free(m);
        SBI_CHECK(!st, SBI_ERR_IO, "%s: dataset 'mol_mass' is not a molar mass in amu", f->path);
    }
    sbi__opac_h5_first_string(f->file, "mol_name", f->info.mol_name, sizeof f->info.mol_name);
    f->info.n_p = (int)n_p;
    f->info.n_t = (int)n_t;
    f->info.n_nu = n_nu;
    f->info.p = f->p;
    f->info.t = f->t;
    f->info.nu = f->nu;
    return SBI_OK;
}

int sbi_line_file_open(const char *path, sbi_line_format format, sbi_line_file *out, sbi_line_info *info)
{
    sbi_line_file f;
    int st;
    *out = NULL;
    SBI_CALLOC(f, 1);
    f->file = f->dset = H5I_INVALID_HID;
    snprintf(f->path, sizeof f->path, "%s", path);
    st = line_open(f, format);
    if (st) {
        sbi_line_file_close(&f);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *info = f->info;
    *out = f;
    return SBI_OK;
}

int sbi_line_file_read(sbi_line_file f, int ip, int it, int64_t j0, int64_t count, double *sigma)
{
    hsize_t start[3], cnt[3], mdim[1];
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    herr_t st;

    SBI_CHECK(ip >= 0 && ip < f->info.n_p && it >= 0 && it < f->info.n_t && j0 >= 0 && count >= 1 &&
                  j0 + count <= f->info.n_nu,
              SBI_ERR_INTERNAL, "%s: dataset 'xsecarr': row (%d, %d) [%lld, +%lld) is outside the table", f->path, ip,
              it, (long long)j0, (long long)count);
    start[0] = (hsize_t)ip;
    start[1] = (hsize_t)it;
    start[2] = (hsize_t)j0;
    cnt[0] = cnt[1] = 1;
    cnt[2] = (hsize_t)count;
    mdim[0] = (hsize_t)count;
    SBI_CALL_H5_AT(f->path, fspace = H5Dget_space(f->dset));
    st = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL);
    if (st >= 0) st = (mspace = H5Screate_simple(1, mdim, NULL)) < 0 ? -1 : 0;
    if (st >= 0) st = H5Dread(f->dset, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, sigma);
    sbi__h5_close(&mspace);
    sbi__h5_close(&fspace);
    SBI_CALL_H5_AT(f->path, st);
    for (int64_t j = 0; j < count; ++j) {
        SBI_CHECK(isfinite(sigma[j]), SBI_ERR_IO,
                  "%s: dataset 'xsecarr'[%d][%d][%lld] = %g (P = %g bar, T = %g K) is not finite", f->path, ip, it,
                  (long long)(j0 + j), sigma[j], f->p[ip], f->t[it]);
        /* Negative values (interpolation noise of the table makers) count as
         * zero, as petitRADTRANS's loader sets them. */
        sigma[j] = sigma[j] > 0 ? sigma[j] * f->factor : 0.0;
    }
    return SBI_OK;
}
