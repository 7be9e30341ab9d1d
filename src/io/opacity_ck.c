/* Reader of petitRADTRANS 3 correlated-k tables (`*.ktable.petitRADTRANS.h5`,
 * the layout is in include/exosbi/opacity_io.h).  The grids, g-points and
 * weights are read and checked at open; the k-coefficients a (P, T) row at a
 * time through a hyperslab over the bins a model needs.  A table rebinned
 * onto a model's bins is read by rank 0 of a communicator and broadcast
 * (sbi_ck_table_rebin_on), as src/io/opacity_shared.c does for line and CIA
 * tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5_impl.h"
#include "io/opacity_impl.h"

struct sbi_ck_file_s {
    char path[4096];
    hid_t file, dset;
    sbi_ck_info info;
    double *p, *t, *edges, *g, *w;
    double factor; /* kcoeff units -> cm^2 molecule^-1 */
};

void sbi_ck_file_close(sbi_ck_file *fp)
{
    sbi_ck_file f = *fp;
    if (!f) return;
    *fp = NULL;
    sbi__h5_close(&f->dset);
    sbi__h5_close(&f->file);
    free(f->p);
    free(f->t);
    free(f->edges);
    free(f->g);
    free(f->w);
    free(f);
}

int sbi_opacity_file_is_ck(const char *path)
{
    hid_t file;
    int is;
    sbi__h5_init();
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    if (file < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    is = sbi__opac_h5_has(file, "kcoeff");
    H5Fclose(file);
    return is;
}

/* A 1-D dataset `name` of exactly `n` values (n < 0: any length). */
static int read_vector(sbi_ck_file f, const char *name, int64_t n, double **v, int64_t *count)
{
    int rank;
    int64_t dims[4];
    SBI_CALL(sbi__opac_h5_shape(f->file, f->path, name, &rank, dims));
    SBI_CHECK(rank == 1, SBI_ERR_IO, "%s: dataset '%s' has %d dimensions, expected 1", f->path, name, rank);
    SBI_CHECK(n < 0 || dims[0] == n, SBI_ERR_IO, "%s: dataset '%s' has %lld values, expected %lld", f->path, name,
              (long long)dims[0], (long long)n);
    SBI_CALL(sbi__opac_h5_read_all(f->file, f->path, name, v, count));
    return SBI_OK;
}

/* A grid with its `units` attribute converted and checked. */
static int read_grid(sbi_ck_file f, const char *name, const char *kind, int units_required, double **v, int64_t *n)
{
    char *units = NULL;
    double factor = 1.0;
    int st;
    SBI_CALL(read_vector(f, name, -1, v, n));
    SBI_CALL(sbi__opac_h5_units(f->file, f->path, name, units_required, &units));
    st = sbi__opac_units_factor(f->path, name, kind, units, 1.0, &factor);
    free(units);
    SBI_CALL(st);
    for (int64_t i = 0; i < *n; ++i) (*v)[i] *= factor;
    SBI_CALL(sbi__opac_check_grid(f->path, name, *n, *v));
    return SBI_OK;
}

static int ck_open(sbi_ck_file f)
{
    int64_t n_p, n_t, n_e, n_g, n, dims[4];
    int rank, st;
    char *units = NULL;
    double sum = 0.0, *v = NULL;

    SBI_CALL(sbi__opac_h5_open(f->path, &f->file));
    SBI_CHECK(sbi__opac_h5_has(f->file, "kcoeff"), SBI_ERR_IO,
              "%s: dataset 'kcoeff' is missing (not a correlated-k table)", f->path);
    SBI_CALL(read_grid(f, "p", "pressure", 1, &f->p, &n_p));
    SBI_CALL(read_grid(f, "t", "temperature", 0, &f->t, &n_t));
    SBI_CALL(read_grid(f, "bin_edges", "wavenumber", 0, &f->edges, &n_e));
    SBI_CHECK(n_e >= 2, SBI_ERR_IO, "%s: dataset 'bin_edges' has %lld values; at least 2 edges expected", f->path,
              (long long)n_e);
    SBI_CALL(read_vector(f, "samples", -1, &f->g, &n_g));
    SBI_CHECK(n_g >= 1 && n_g <= SBI_CK_MAX_G, SBI_ERR_IO, "%s: dataset 'samples' has %lld g-points (1 to %d supported)",
              f->path, (long long)n_g, SBI_CK_MAX_G);
    for (int64_t j = 0; j < n_g; ++j)
        SBI_CHECK(isfinite(f->g[j]) && f->g[j] > 0 && f->g[j] < 1 && (j == 0 || f->g[j] > f->g[j - 1]), SBI_ERR_IO,
                  "%s: dataset 'samples'[%lld] = %g: g-points must lie in (0, 1) and increase", f->path,
                  (long long)j, f->g[j]);
    SBI_CALL(read_vector(f, "weights", n_g, &f->w, &n));
    for (int64_t j = 0; j < n_g; ++j) {
        SBI_CHECK(isfinite(f->w[j]) && f->w[j] > 0, SBI_ERR_IO, "%s: dataset 'weights'[%lld] = %g is not positive",
                  f->path, (long long)j, f->w[j]);
        sum += f->w[j];
    }
    SBI_CHECK(fabs(sum - 1.0) <= 1e-4, SBI_ERR_IO, "%s: dataset 'weights' sums to %.9g, not 1", f->path, sum);
    for (int64_t j = 0; j < n_g; ++j) f->w[j] /= sum;
    if (sbi__opac_h5_has(f->file, "ngauss")) {
        SBI_CALL(sbi__opac_h5_read_all(f->file, f->path, "ngauss", &v, &n));
        st = n == 1 && v[0] == (double)n_g ? 0 : SBI_ERR_IO;
        free(v);
        SBI_CHECK(!st, SBI_ERR_IO, "%s: dataset 'ngauss' does not match the %lld g-points of 'samples'", f->path,
                  (long long)n_g);
    }
    SBI_CALL(sbi__opac_h5_shape(f->file, f->path, "kcoeff", &rank, dims));
    SBI_CHECK(rank == 4 && dims[0] == n_p && dims[1] == n_t && dims[2] == n_e - 1 && dims[3] == n_g, SBI_ERR_IO,
              "%s: dataset 'kcoeff' has shape (%lld, %lld, %lld, %lld) with %d dimensions; expected (n_p, n_T, n_nu, "
              "n_g) = (%lld, %lld, %lld, %lld) from datasets 'p', 't', 'bin_edges' and 'samples'",
              f->path, (long long)dims[0], (long long)dims[1], (long long)dims[2], (long long)dims[3], rank,
              (long long)n_p, (long long)n_t, (long long)(n_e - 1), (long long)n_g);
    SBI_CALL(sbi__opac_h5_units(f->file, f->path, "kcoeff", 1, &units));
    st = sbi__opac_units_factor(f->path, "kcoeff", "cross section", units, 1.0, &f->factor);
    free(units);
    SBI_CALL(st);
    if (sbi__opac_h5_has(f->file, "bin_centers")) {
        SBI_CALL(read_vector(f, "bin_centers", n_e - 1, &v, &n));
        for (int64_t j = 0; j < n; ++j)
            if (!(v[j] >= f->edges[j] && v[j] <= f->edges[j + 1])) {
                st = SBI_ERR_IO;
                break;
            }
        free(v);
        SBI_CHECK(!st, SBI_ERR_IO, "%s: dataset 'bin_centers' does not lie inside the bins of 'bin_edges'", f->path);
    }
    SBI_CALL_H5_AT(f->path, f->dset = H5Dopen2(f->file, "kcoeff", H5P_DEFAULT));
    if (sbi__opac_h5_has(f->file, "mol_mass")) {
        SBI_CALL(sbi__opac_h5_read_all(f->file, f->path, "mol_mass", &v, &n));
        st = n >= 1 && v[0] > 0 && v[0] < 1e4 ? 0 : SBI_ERR_IO;
        f->info.mol_mass = n >= 1 ? v[0] : 0;
        free(v);
        SBI_CHECK(!st, SBI_ERR_IO, "%s: dataset 'mol_mass' is not a molar mass in amu", f->path);
    }
    sbi__opac_h5_first_string(f->file, "mol_name", f->info.mol_name, sizeof f->info.mol_name);
    f->info.n_p = (int)n_p;
    f->info.n_t = (int)n_t;
    f->info.n_g = (int)n_g;
    f->info.n_nu = n_e - 1;
    f->info.p = f->p;
    f->info.t = f->t;
    f->info.edges = f->edges;
    f->info.g = f->g;
    f->info.weights = f->w;
    return SBI_OK;
}

int sbi_ck_file_open(const char *path, sbi_ck_file *out, sbi_ck_info *info)
{
    sbi_ck_file f;
    int st;
    *out = NULL;
    SBI_CALLOC(f, 1);
    f->file = f->dset = H5I_INVALID_HID;
    snprintf(f->path, sizeof f->path, "%s", path);
    st = ck_open(f);
    if (st) {
        sbi_ck_file_close(&f);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *info = f->info;
    *out = f;
    return SBI_OK;
}

int sbi_ck_file_read(sbi_ck_file f, int ip, int it, int64_t j0, int64_t count, double *k)
{
    hsize_t start[4], cnt[4], mdim[1];
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    const int n_g = f->info.n_g;
    herr_t st;

    SBI_CHECK(ip >= 0 && ip < f->info.n_p && it >= 0 && it < f->info.n_t && j0 >= 0 && count >= 1 &&
                  j0 + count <= f->info.n_nu,
              SBI_ERR_INTERNAL, "%s: dataset 'kcoeff': row (%d, %d) [%lld, +%lld) is outside the table", f->path, ip,
              it, (long long)j0, (long long)count);
    start[0] = (hsize_t)ip;
    start[1] = (hsize_t)it;
    start[2] = (hsize_t)j0;
    start[3] = 0;
    cnt[0] = cnt[1] = 1;
    cnt[2] = (hsize_t)count;
    cnt[3] = (hsize_t)n_g;
    mdim[0] = (hsize_t)count * (hsize_t)n_g;
    SBI_CALL_H5_AT(f->path, fspace = H5Dget_space(f->dset));
    st = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL);
    if (st >= 0) st = (mspace = H5Screate_simple(1, mdim, NULL)) < 0 ? -1 : 0;
    if (st >= 0) st = H5Dread(f->dset, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, k);
    sbi__h5_close(&mspace);
    sbi__h5_close(&fspace);
    SBI_CALL_H5_AT(f->path, st);
    for (int64_t j = 0; j < count * n_g; ++j) {
        SBI_CHECK(isfinite(k[j]), SBI_ERR_IO,
                  "%s: dataset 'kcoeff'[%d][%d][%lld][%d] = %g (P = %g bar, T = %g K) is not finite", f->path, ip, it,
                  (long long)(j0 + j / n_g), (int)(j % n_g), k[j], f->p[ip], f->t[it]);
        k[j] = k[j] > 0 ? k[j] * f->factor : 0.0;
    }
    return SBI_OK;
}

/* ---- rebinned once per communicator ------------------------------------------ */

void sbi_ck_rebinned_free(sbi_ck_rebinned *r)
{
    if (!r) return;
    free(r->p);
    free(r->t);
    free(r->k);
    memset(r, 0, sizeof *r);
}

/* Rank 0's part: open, read the rows over the table bins that reach the
 * model bins (with half a model bin each side) and rebin them. */
static int ck_rebin_local(const char *path, int w, const double *nu_lo, const double *nu_hi, sbi_ck_rebinned *out)
{
    sbi_ck_file f = NULL;
    sbi_ck_info info;
    double *buf = NULL, lo = INFINITY, hi = -INFINITY;
    int64_t j0 = 0, j1;
    int err = 0;

    SBI_CALL(sbi_ck_file_open(path, &f, &info));
    snprintf(out->mol_name, sizeof out->mol_name, "%s", info.mol_name);
    out->mol_mass = info.mol_mass;
    out->n_p = info.n_p;
    out->n_t = info.n_t;
    out->n_g = info.n_g;
    out->w = w;
    for (int q = 0; q < info.n_g; ++q) {
        out->g[q] = info.g[q];
        out->weights[q] = info.weights[q];
    }
    for (int l = 0; l < w; ++l) {
        lo = fmin(lo, nu_lo[l]);
        hi = fmax(hi, nu_hi[l]);
    }
    while (j0 + 1 < info.n_nu && info.edges[j0 + 1] <= lo) ++j0;
    for (j1 = info.n_nu - 1; j1 > j0 && info.edges[j1] >= hi; --j1) {
    }
    out->p = malloc((size_t)info.n_p * sizeof *out->p);
    out->t = malloc((size_t)info.n_t * sizeof *out->t);
    out->k = malloc((size_t)info.n_p * (size_t)info.n_t * (size_t)w * (size_t)info.n_g * sizeof *out->k);
    buf = malloc((size_t)(j1 - j0 + 1) * (size_t)info.n_g * sizeof *buf);
    if (!out->p || !out->t || !out->k || !buf)
        err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory rebinning %s", path);
    if (!err) {
        memcpy(out->p, info.p, (size_t)info.n_p * sizeof *out->p);
        memcpy(out->t, info.t, (size_t)info.n_t * sizeof *out->t);
    }
    for (int ip = 0; !err && ip < info.n_p; ++ip)
        for (int it = 0; !err && it < info.n_t; ++it) {
            float *dst = out->k + ((size_t)ip * (size_t)info.n_t + (size_t)it) * (size_t)w * (size_t)info.n_g;
            err = sbi_ck_file_read(f, ip, it, j0, j1 - j0 + 1, buf);
            if (!err)
                err = sbi_rt_ck_rebin(info.n_g, info.g, info.weights, j1 - j0 + 1, info.edges + j0, buf, w, nu_lo,
                                      nu_hi, dst);
        }
    free(buf);
    sbi_ck_file_close(&f);
    if (err) {
        sbi_ck_rebinned_free(out);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    return SBI_OK;
}

/* The fixed-size part of a rebinned table, broadcast before its arrays. */
typedef struct ck_head {
    char mol_name[32];
    double mol_mass, g[SBI_CK_MAX_G], weights[SBI_CK_MAX_G];
    int n_p, n_t, n_g, w;
} ck_head;

int sbi_ck_table_rebin_on(const sbi_comm *c, const char *path, int w, const double *nu_lo, const double *nu_hi,
                          sbi_ck_rebinned *out)
{
    ck_head h;
    size_t n_k;
    int st = 0;

    memset(out, 0, sizeof *out);
    SBI_CHECK(w >= 1 && nu_lo && nu_hi, SBI_ERR_INTERNAL, "sbi_ck_table_rebin_on: no model bins");
    if (!c || c->rank == 0) st = ck_rebin_local(path, w, nu_lo, nu_hi, out);
    if (!c || c->size == 1) return st ? sbi__trace(st, __FILE__, __LINE__, __func__) : SBI_OK;
    SBI_AGREE(c, st);
    memset(&h, 0, sizeof h);
    if (c->rank == 0) {
        memcpy(h.mol_name, out->mol_name, sizeof h.mol_name);
        h.mol_mass = out->mol_mass;
        memcpy(h.g, out->g, sizeof h.g);
        memcpy(h.weights, out->weights, sizeof h.weights);
        h.n_p = out->n_p;
        h.n_t = out->n_t;
        h.n_g = out->n_g;
        h.w = out->w;
    }
    SBI_CALL(sbi_comm_bcast(c, &h, sizeof h, 0));
    n_k = (size_t)h.n_p * (size_t)h.n_t * (size_t)h.w * (size_t)h.n_g;
    if (c->rank != 0) {
        memcpy(out->mol_name, h.mol_name, sizeof out->mol_name);
        out->mol_mass = h.mol_mass;
        memcpy(out->g, h.g, sizeof out->g);
        memcpy(out->weights, h.weights, sizeof out->weights);
        out->n_p = h.n_p;
        out->n_t = h.n_t;
        out->n_g = h.n_g;
        out->w = h.w;
    }
    return sbi__opac_bcast_pt_table(c, h.n_p, h.n_t, n_k, &out->p, &out->t, &out->k, "a correlated-k table");
}

int sbi_opacity_file_is_ck_on(const sbi_comm *c, const char *path)
{
    int is = 0;
    if (!c || c->rank == 0) is = sbi_opacity_file_is_ck(path);
    if (c && c->size > 1 && sbi_comm_bcast(c, &is, sizeof is, 0)) return 0;
    return is;
}
