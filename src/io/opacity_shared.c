/* Opacity tables read once per communicator: rank 0 of the communicator
 * reads (and, for line tables, resamples onto the model wavenumbers), the
 * ranks agree on the reader's status, and the result is broadcast, so every
 * rank holds an identical copy and the file system sees one reader per
 * table however many ranks simulate.
 *
 * Why a broadcast and not an MPI-3 shared-memory window per node: what is
 * held is the table already resampled onto the model grid (n_p n_t W floats,
 * typically tens of MB per species), not the file; and a forward model is a
 * serial object after creation that each rank destroys on its own, whereas
 * freeing a shared window (MPI_Win_free) is collective.  A window per node
 * is the step to take when resampled tables outgrow the memory of a node's
 * ranks; the readers below are the one place that would change.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/opacity_io.h"
#include "io/opacity_impl.h"

static int is_root(const sbi_comm *c) { return !c || c->rank == 0; }
static int is_shared(const sbi_comm *c) { return c && c->size > 1; }

/* ---- CIA ------------------------------------------------------------------- */

/* The fixed-size part of a CIA table, broadcast before its arrays. */
typedef struct cia_head {
    char species[2][16];
    int format, n_t, n_nu;
} cia_head;

int sbi_cia_table_read_on(const sbi_comm *c, const char *path, sbi_cia_format format, sbi_cia_table *tab)
{
    cia_head h;
    int st = 0;

    memset(tab, 0, sizeof *tab);
    if (is_root(c)) st = sbi_cia_table_read(path, format, tab);
    if (!is_shared(c)) return st ? sbi__trace(st, __FILE__, __LINE__, __func__) : SBI_OK;
    SBI_AGREE(c, st);
    memset(&h, 0, sizeof h);
    if (c->rank == 0) {
        memcpy(h.species, tab->species, sizeof h.species);
        h.format = (int)tab->format;
        h.n_t = tab->n_t;
        h.n_nu = tab->n_nu;
    }
    SBI_CALL(sbi_comm_bcast(c, &h, sizeof h, 0));
    if (c->rank != 0) {
        memcpy(tab->species, h.species, sizeof h.species);
        tab->format = (sbi_cia_format)h.format;
        tab->n_t = h.n_t;
        tab->n_nu = h.n_nu;
        st = 0;
        tab->t = malloc((size_t)h.n_t * sizeof *tab->t);
        tab->nu = malloc((size_t)h.n_nu * sizeof *tab->nu);
        tab->alpha = malloc((size_t)h.n_t * (size_t)h.n_nu * sizeof *tab->alpha);
        if (!tab->t || !tab->nu || !tab->alpha)
            st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                            "out of memory for a CIA table of %d x %d values", h.n_t, h.n_nu);
    }
    SBI_AGREE(c, st);
    SBI_CALL(sbi_comm_bcast(c, tab->t, (size_t)h.n_t * sizeof *tab->t, 0));
    SBI_CALL(sbi_comm_bcast(c, tab->nu, (size_t)h.n_nu * sizeof *tab->nu, 0));
    SBI_CALL(sbi_comm_bcast(c, tab->alpha, (size_t)h.n_t * (size_t)h.n_nu * sizeof *tab->alpha, 0));
    return SBI_OK;
}

/* ---- line tables ------------------------------------------------------------- */

void sbi_line_sampled_free(sbi_line_sampled *s)
{
    if (!s) return;
    free(s->p);
    free(s->t);
    free(s->sigma);
    memset(s, 0, sizeof *s);
}

/* y_dst (m) at x_dst from (x_src, y_src) (n, x_src increasing), linear
 * between points, zero outside; x_dst in any order. */
static void resample(int64_t n, const double *x_src, const double *y_src, int m, const double *x_dst, float *y_dst)
{
    for (int l = 0; l < m; ++l) {
        const double v = x_dst[l];
        int64_t a = 0, z = n - 1;
        double f;
        if (n < 1 || v < x_src[0] || v > x_src[n - 1]) {
            y_dst[l] = 0.0f;
            continue;
        }
        if (n == 1) {
            y_dst[l] = (float)y_src[0];
            continue;
        }
        while (z - a > 1) {
            const int64_t mid = (a + z) / 2;
            if (x_src[mid] <= v) a = mid;
            else z = mid;
        }
        f = (v - x_src[a]) / (x_src[z] - x_src[a]);
        y_dst[l] = (float)((1.0 - f) * y_src[a] + f * y_src[z]);
    }
}

/* Rank 0's part: open, read the rows over the wavenumbers nu reaches (plus
 * one point each side) and resample them. */
static int line_sample_local(const char *path, sbi_line_format format, int w, const double *nu,
                             sbi_line_sampled *out)
{
    sbi_line_file f = NULL;
    sbi_line_info info;
    double nu_lo = INFINITY, nu_hi = -INFINITY, *buf = NULL;
    int64_t j0, j1;
    int err = 0;

    for (int l = 0; l < w; ++l) {
        nu_lo = fmin(nu_lo, nu[l]);
        nu_hi = fmax(nu_hi, nu[l]);
    }
    SBI_CALL(sbi_line_file_open(path, format, &f, &info));
    out->format = info.format;
    snprintf(out->mol_name, sizeof out->mol_name, "%s", info.mol_name);
    out->mol_mass = info.mol_mass;
    out->n_p = info.n_p;
    out->n_t = info.n_t;
    out->w = w;
    for (j0 = 0; j0 + 1 < info.n_nu && info.nu[j0 + 1] <= nu_lo; ++j0) {
    }
    for (j1 = info.n_nu - 1; j1 > 0 && info.nu[j1 - 1] >= nu_hi; --j1) {
    }
    if (j1 < j0) j1 = j0;
    out->p = malloc((size_t)info.n_p * sizeof *out->p);
    out->t = malloc((size_t)info.n_t * sizeof *out->t);
    out->sigma = malloc((size_t)info.n_p * (size_t)info.n_t * (size_t)w * sizeof *out->sigma);
    buf = malloc((size_t)(j1 - j0 + 1) * sizeof *buf);
    if (!out->p || !out->t || !out->sigma || !buf)
        err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory resampling %s", path);
    if (!err) {
        memcpy(out->p, info.p, (size_t)info.n_p * sizeof *out->p);
        memcpy(out->t, info.t, (size_t)info.n_t * sizeof *out->t);
    }
    for (int ip = 0; !err && ip < info.n_p; ++ip)
        for (int it = 0; !err && it < info.n_t; ++it) {
            err = sbi_line_file_read(f, ip, it, j0, j1 - j0 + 1, buf);
            if (!err)
                resample(j1 - j0 + 1, info.nu + j0, buf, w, nu,
                         out->sigma + ((size_t)ip * (size_t)info.n_t + (size_t)it) * (size_t)w);
        }
    free(buf);
    sbi_line_file_close(&f);
    if (err) {
        sbi_line_sampled_free(out);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    return SBI_OK;
}

/* The fixed-size part of a resampled line table. */
typedef struct line_head {
    char mol_name[32];
    double mol_mass;
    int format, n_p, n_t, w;
} line_head;

int sbi_line_table_sample_on(const sbi_comm *c, const char *path, sbi_line_format format, int w, const double *nu,
                             sbi_line_sampled *out)
{
    line_head h;
    size_t n_sigma;
    int st = 0;

    memset(out, 0, sizeof *out);
    SBI_CHECK(w >= 1 && nu, SBI_ERR_INTERNAL, "sbi_line_table_sample_on: no wavenumbers");
    if (is_root(c)) st = line_sample_local(path, format, w, nu, out);
    if (!is_shared(c)) return st ? sbi__trace(st, __FILE__, __LINE__, __func__) : SBI_OK;
    SBI_AGREE(c, st);
    memset(&h, 0, sizeof h);
    if (c->rank == 0) {
        memcpy(h.mol_name, out->mol_name, sizeof h.mol_name);
        h.mol_mass = out->mol_mass;
        h.format = (int)out->format;
        h.n_p = out->n_p;
        h.n_t = out->n_t;
        h.w = out->w;
    }
    SBI_CALL(sbi_comm_bcast(c, &h, sizeof h, 0));
    n_sigma = (size_t)h.n_p * (size_t)h.n_t * (size_t)h.w;
    if (c->rank != 0) {
        memcpy(out->mol_name, h.mol_name, sizeof out->mol_name);
        out->mol_mass = h.mol_mass;
        out->format = (sbi_line_format)h.format;
        out->n_p = h.n_p;
        out->n_t = h.n_t;
        out->w = h.w;
    }
    return sbi__opac_bcast_pt_table(c, h.n_p, h.n_t, n_sigma, &out->p, &out->t, &out->sigma, "a line table");
}

int sbi__opac_bcast_pt_table(const sbi_comm *c, int n_p, int n_t, size_t n_v, double **p, double **t, float **v,
                             const char *what)
{
    int st = 0;
    if (c->rank != 0) {
        *p = malloc((size_t)n_p * sizeof **p);
        *t = malloc((size_t)n_t * sizeof **t);
        *v = malloc(n_v * sizeof **v);
        if (!*p || !*t || !*v)
            st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory for %s of %zu values",
                            what, n_v);
    }
    SBI_AGREE(c, st);
    SBI_CALL(sbi_comm_bcast(c, *p, (size_t)n_p * sizeof **p, 0));
    SBI_CALL(sbi_comm_bcast(c, *t, (size_t)n_t * sizeof **t, 0));
    SBI_CALL(sbi_comm_bcast(c, *v, n_v * sizeof **v, 0));
    return SBI_OK;
}

/* ---- petitRADTRANS input_data ------------------------------------------------ */

int sbi_prt_find_table_on(const sbi_comm *c, const char *input_data, sbi_prt_category category,
                          const char *species, char *out, size_t cap)
{
    int st = 0;
    out[0] = '\0';
    if (is_root(c)) st = sbi_prt_find_table(input_data, category, species, out, cap);
    if (!is_shared(c)) return st ? sbi__trace(st, __FILE__, __LINE__, __func__) : SBI_OK;
    SBI_AGREE(c, st);
    SBI_CALL(sbi_comm_bcast(c, out, cap, 0));
    return SBI_OK;
}
