/* Photometric bands: band-averaging weights (a top-hat or a tabulated filter
 * curve, photon-counting or plain weighting) and the settings that describe
 * a photometric dataset's bands, with the reader of filter-curve files.
 *
 * Settings (forward_model.settings.datasets.NAME):
 *   bands: one entry per dataset point, each either [lambda_min, lambda_max]
 *          (a top-hat, um) or {filter: PATH} (a two-column text file of
 *          wavelength [um] and transmission; `#` starts a comment; relative
 *          paths are relative to the task file);
 *   weighting: photon | plain.  photon weights the band by T(l) l, as a
 *          photon-counting detector integrates a flux (the default of the
 *          emission family); plain weights it by T(l) alone (the default of
 *          the transmission family, whose spectrum is a transit depth).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rt.h"
#include "forward/forward_impl.h"
#include "forward/rt/rt_family.h"

/* Transmission of band `bd` at x (linear between tabulated points). */
static double band_trans(const sbi_rt_band *bd, double x)
{
    int a = 0, z;
    double s;
    if (bd->n == 0) return (x >= bd->lo && x <= bd->hi) ? 1.0 : 0.0;
    if (x < bd->lambda[0] || x > bd->lambda[bd->n - 1]) return 0.0;
    z = bd->n - 1;
    while (z - a > 1) {
        const int m = (a + z) / 2;
        if (bd->lambda[m] <= x) a = m;
        else z = m;
    }
    s = (x - bd->lambda[a]) / (bd->lambda[z] - bd->lambda[a]);
    return (1.0 - s) * bd->trans[a] + s * bd->trans[z];
}

/* Add the Gauss-Legendre integral over [x0, x1] (inside model segment k) of
 * F(l) T(l) l^p to the weights of points k and k + 1; returns int T l^p. */
static double band_piece(const sbi_rt_band *bd, int photon, const double *lambda, int k, double x0, double x1,
                         double *wk, double *wk1)
{
    static const double xi[3] = {-0.77459666924148337704, 0.0, 0.77459666924148337704};
    static const double wq[3] = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
    const double mid = 0.5 * (x0 + x1), half = 0.5 * (x1 - x0), h = lambda[k + 1] - lambda[k];
    double norm = 0.0;
    for (int q = 0; q < 3; ++q) {
        const double x = mid + half * xi[q];
        const double g = wq[q] * half * band_trans(bd, x) * (photon ? x : 1.0);
        const double s = (x - lambda[k]) / h;
        *wk += g * (1.0 - s);
        *wk1 += g * s;
        norm += g;
    }
    return norm;
}

int sbi_rt_band_weights(int w, const double *lambda, int b, const sbi_rt_band *bands, int photon,
                        sbi_rt_binning *bin)
{
    int64_t nnz = 0;

    bin->n_bins = b;
    bin->row = NULL;
    bin->col = NULL;
    bin->weight = NULL;
    for (int i = 0; i < b; ++i) {
        SBI_CHECK(bands[i].lo < bands[i].hi, SBI_ERR_INPUT, "band %d: empty or reversed, [%.9g, %.9g] um", i,
                  bands[i].lo, bands[i].hi);
        SBI_CHECK(bands[i].lo >= lambda[0] && bands[i].hi <= lambda[w - 1], SBI_ERR_INPUT,
                  "band %d: [%.9g, %.9g] um reaches outside the model grid [%.9g, %.9g] um", i, bands[i].lo,
                  bands[i].hi, lambda[0], lambda[w - 1]);
    }
    SBI_MALLOC(bin->row, b + 1);
    bin->row[0] = 0;
    for (int i = 0; i < b; ++i) {
        int a = 0, z = w - 1;
        while (a + 1 < w && lambda[a + 1] <= bands[i].lo) ++a;
        while (z - 1 >= 0 && lambda[z - 1] >= bands[i].hi) --z;
        nnz += z - a + 1;
        bin->row[i + 1] = nnz;
    }
    SBI_MALLOC(bin->col, nnz);
    SBI_MALLOC(bin->weight, nnz);
    for (int i = 0; i < b; ++i) {
        const sbi_rt_band *bd = &bands[i];
        const int64_t r0 = bin->row[i];
        double norm = 0.0;
        int a = 0, j = 0;
        while (a + 1 < w && lambda[a + 1] <= bd->lo) ++a;
        for (int64_t q = r0; q < bin->row[i + 1]; ++q) {
            bin->col[q] = a + (int)(q - r0);
            bin->weight[q] = 0.0;
        }
        /* Pieces: each model segment's overlap with [lo, hi], cut again at
         * the filter's own points so that T is linear on every piece. */
        for (int k = a; k + 1 < w && lambda[k] < bd->hi; ++k) {
            double x0 = fmax(bd->lo, lambda[k]);
            const double x1 = fmin(bd->hi, lambda[k + 1]);
            double *wk = &bin->weight[r0 + (k - a)], *wk1 = &bin->weight[r0 + (k + 1 - a)];
            if (x1 <= x0) continue;
            while (j < bd->n && bd->lambda[j] <= x0) ++j;
            for (; j < bd->n && bd->lambda[j] < x1; ++j) {
                norm += band_piece(bd, photon, lambda, k, x0, bd->lambda[j], wk, wk1);
                x0 = bd->lambda[j];
            }
            norm += band_piece(bd, photon, lambda, k, x0, x1, wk, wk1);
        }
        SBI_CHECK(norm > 0, SBI_ERR_INPUT, "band %d: the filter transmits nothing inside [%.9g, %.9g] um", i, bd->lo,
                  bd->hi);
        for (int64_t q = r0; q < bin->row[i + 1]; ++q) bin->weight[q] /= norm;
    }
    return SBI_OK;
}

/* ---- settings --------------------------------------------------------------- */

/* Read a two-column filter curve into (*lambda, *trans) (n points, malloc'd
 * together: trans = lambda + n).  `what` names the settings key. */
static int filter_read(const char *origin, const char *what, const char *path, double **curve, int *count)
{
    char *line = NULL;
    size_t line_cap = 0;
    int n = 0, cap = 0, lineno = 0, err = 0, first = 0, last = -1;
    double *lam = NULL, *tr = NULL;
    FILE *f = fopen(path, "r");

    SBI_CHECK(f, SBI_ERR_INPUT, "%s: forward_model.settings.%s: cannot open '%s': %s", origin, what, path,
              strerror(errno));
    while (!err && getline(&line, &line_cap, f) >= 0) {
        char *hash = strchr(line, '#'), *tok[3], *save = NULL, *end;
        double v[2];
        int nt = 0;
        ++lineno;
        if (hash) *hash = '\0';
        for (char *t = strtok_r(line, " \t\r\n,", &save); t && nt < 3; t = strtok_r(NULL, " \t\r\n,", &save))
            tok[nt++] = t;
        if (nt == 0) continue;
        if (nt < 2) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s:%d: expected two columns (wavelength [um], "
                             "transmission), found one",
                             origin, what, path, lineno);
            break;
        }
        for (int c = 0; c < 2 && !err; ++c) {
            v[c] = strtod(tok[c], &end);
            if (*end || end == tok[c] || !isfinite(v[c]))
                err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                                 "%s: forward_model.settings.%s: %s:%d: '%s' is not a finite number", origin, what,
                                 path, lineno, tok[c]);
        }
        if (err) break;
        if (!(v[0] > 0) || (n > 0 && !(v[0] > lam[n - 1]))) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s:%d: wavelength %.9g: wavelengths must be positive "
                             "and strictly increasing [um]",
                             origin, what, path, lineno, v[0]);
            break;
        }
        if (!(v[1] >= 0)) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s:%d: transmission %.9g is negative", origin, what,
                             path, lineno, v[1]);
            break;
        }
        if (n == cap) {
            const int grown = cap ? 2 * cap : 128;
            double *nl = realloc(lam, (size_t)grown * sizeof *nl), *ntr;
            if (nl) lam = nl;
            ntr = nl ? realloc(tr, (size_t)grown * sizeof *ntr) : NULL;
            if (ntr) tr = ntr;
            if (!nl || !ntr) {
                err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory reading %s", path);
                break;
            }
            cap = grown;
        }
        lam[n] = v[0];
        tr[n] = v[1];
        ++n;
    }
    free(line);
    fclose(f);
    if (!err && n < 2)
        err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                         "%s: forward_model.settings.%s: %s: a filter curve needs at least two points, found %d",
                         origin, what, path, n);
    if (!err) {
        /* Trim the zero padding at both ends, keeping one zero point each side. */
        while (first + 1 < n && tr[first] == 0.0 && tr[first + 1] == 0.0) ++first;
        for (int i = 0; i < n; ++i)
            if (tr[i] > 0) last = i;
        if (last < 0)
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s: the transmission is zero everywhere", origin, what,
                             path);
    }
    if (!err) {
        const int hi = last + 1 < n ? last + 1 : last;
        *count = hi - first + 1;
        *curve = malloc(2 * (size_t)*count * sizeof **curve);
        if (!*curve) {
            err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory reading %s", path);
        } else {
            memcpy(*curve, lam + first, (size_t)*count * sizeof **curve);
            memcpy(*curve + *count, tr + first, (size_t)*count * sizeof **curve);
        }
    }
    free(lam);
    free(tr);
    return err;
}

int sbi__rt_bands_parse(const sbi_task *task, const cJSON *node, const cJSON *weighting, const char *what, int size,
                        int photon_default, sbi__rt_bands *out)
{
    static const char *const fkeys = "filter";
    const char *origin = sbi__forward_origin(task);
    const cJSON *e;
    char sub[256];
    int i = 0;

    memset(out, 0, sizeof *out);
    out->photon = photon_default;
    if (weighting) {
        const char *v = cJSON_IsString(weighting) ? weighting->valuestring : "";
        if (!strcmp(v, "photon"))
            out->photon = 1;
        else if (!strcmp(v, "plain"))
            out->photon = 0;
        else
            SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings.%s.weighting: expected photon or plain", origin,
                      what);
        SBI_CHECK(node, SBI_ERR_INPUT, "%s: forward_model.settings.%s.weighting: only a dataset with bands has one",
                  origin, what);
    }
    SBI_CHECK(cJSON_IsArray(node), SBI_ERR_INPUT,
              "%s: forward_model.settings.%s.bands: expected a list of [lambda_min, lambda_max] or {filter: PATH}",
              origin, what);
    SBI_CHECK(cJSON_GetArraySize(node) == size, SBI_ERR_INPUT,
              "%s: forward_model.settings.%s.bands: has %d bands but the dataset has %d values", origin, what,
              cJSON_GetArraySize(node), size);
    out->n = size;
    SBI_CALLOC(out->band, size > 0 ? size : 1);
    SBI_CALLOC(out->curve, size > 0 ? size : 1);
    cJSON_ArrayForEach(e, node)
    {
        sbi_rt_band *bd = &out->band[i];
        snprintf(sub, sizeof sub, "%s.bands[%d]", what, i);
        if (cJSON_IsArray(e)) {
            const cJSON *a = cJSON_GetArrayItem(e, 0), *z = cJSON_GetArrayItem(e, 1);
            SBI_CHECK(cJSON_GetArraySize(e) == 2 && cJSON_IsNumber(a) && cJSON_IsNumber(z) &&
                          isfinite(a->valuedouble) && isfinite(z->valuedouble),
                      SBI_ERR_INPUT, "%s: forward_model.settings.%s: expected [lambda_min, lambda_max] in um", origin,
                      sub);
            bd->lo = a->valuedouble;
            bd->hi = z->valuedouble;
            SBI_CHECK(bd->lo > 0 && bd->hi > bd->lo, SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s: need 0 < lambda_min < lambda_max [um], got [%.9g, %.9g]", origin,
                      sub, bd->lo, bd->hi);
        } else if (cJSON_IsObject(e)) {
            const cJSON *jf = cJSON_GetObjectItemCaseSensitive(e, "filter"), *k;
            char path[SBI_PATH_MAX], fwhat[300];
            cJSON_ArrayForEach(k, e)
            SBI_CHECK(k->string && !strcmp(k->string, "filter"), SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s.%s: unknown key (known: %s)", origin, sub,
                      k->string ? k->string : "", fkeys);
            SBI_CHECK(cJSON_IsString(jf) && jf->valuestring[0], SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s.filter: expected the path of a filter curve", origin, sub);
            sbi_path_resolve(task->path, jf->valuestring, path, sizeof path);
            snprintf(fwhat, sizeof fwhat, "%s.filter", sub);
            SBI_CALL(filter_read(origin, fwhat, path, &out->curve[i], &bd->n));
            bd->lambda = out->curve[i];
            bd->trans = out->curve[i] + bd->n;
            bd->lo = bd->lambda[0];
            bd->hi = bd->lambda[bd->n - 1];
        } else {
            SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings.%s: expected [lambda_min, lambda_max] or {filter: PATH}",
                      origin, sub);
        }
        ++i;
    }
    return SBI_OK;
}

void sbi__rt_bands_free(sbi__rt_bands *b)
{
    if (!b) return;
    for (int i = 0; i < b->n && b->curve; ++i) free(b->curve[i]);
    free(b->curve);
    free(b->band);
    memset(b, 0, sizeof *b);
}
