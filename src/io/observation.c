/* Text observation files, covariance matrices and flux-conserving rebinning
 * (see include/exosbi/observation.h). */
#include "exosbi/observation.h"

#include <ctype.h>
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int split_fields(char *line, double *vals, int cap, int *count, const char *path, int lineno)
{
    char *p = line, *end;
    int n = 0;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r' || *p == '\n') ++p;
        if (!*p) break;
        SBI_CHECK(n < cap, SBI_ERR_INPUT, "%s:%d: more than %d columns", path, lineno, cap);
        errno = 0;
        vals[n] = strtod(p, &end);
        SBI_CHECK(end != p, SBI_ERR_INPUT, "%s:%d: column %d is not a number: '%.20s'", path, lineno, n + 1, p);
        SBI_CHECK(isfinite(vals[n]), SBI_ERR_INPUT, "%s:%d: column %d is not finite", path, lineno, n + 1);
        SBI_CHECK(*end == '\0' || *end == ' ' || *end == '\t' || *end == ',' || *end == '\r' || *end == '\n',
                  SBI_ERR_INPUT, "%s:%d: column %d is not a number: '%.20s'", path, lineno, n + 1, p);
        ++n;
        p = end;
    }
    *count = n;
    return 0;
}

int sbi_observation_read_text(const char *path, sbi_observation *obs)
{
    char *text = NULL, *line, *next;
    int64_t cap = 0;
    int lineno = 0;
    double v[4];
    double *cols[4] = {NULL, NULL, NULL, NULL};

    memset(obs, 0, sizeof *obs);
    snprintf(obs->path, sizeof obs->path, "%s", path);
    snprintf(obs->source, sizeof obs->source, "%s", path);
    SBI_CALL(sbi_read_file(path, &text, NULL));
    for (line = text; line; line = next) {
        int nf = 0, st;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        ++lineno;
        st = split_fields(line, v, 4, &nf, path, lineno);
        if (st) {
            free(text);
            for (int k = 0; k < 4; ++k) free(cols[k]);
            return st;
        }
        if (nf == 0) continue;
        if (obs->n_columns == 0) obs->n_columns = nf;
        if (nf != obs->n_columns) {
            free(text);
            for (int k = 0; k < 4; ++k) free(cols[k]);
            SBI_RAISE(SBI_ERR_INPUT, "%s:%d: %d columns where earlier rows have %d", path, lineno, nf,
                      obs->n_columns);
        }
        if (obs->n == cap) {
            cap = cap ? 2 * cap : 256;
            for (int k = 0; k < nf; ++k) {
                double *p = realloc(cols[k], (size_t)cap * sizeof(double));
                SBI_CHECK(p, SBI_ERR_INTERNAL, "out of memory reading %s", path);
                cols[k] = p;
            }
        }
        for (int k = 0; k < nf; ++k) cols[k][obs->n] = v[k];
        obs->n++;
    }
    free(text);
    SBI_CHECK(obs->n > 0, SBI_ERR_INPUT, "%s: no data rows", path);
    switch (obs->n_columns) {
    case 1: obs->value = cols[0]; break;
    case 2: obs->value = cols[0]; obs->uncertainty = cols[1]; break;
    case 3: obs->coordinate = cols[0]; obs->value = cols[1]; obs->uncertainty = cols[2]; break;
    default:
        obs->coordinate = cols[0];
        obs->bin_width = cols[1];
        obs->value = cols[2];
        obs->uncertainty = cols[3];
        break;
    }
    if (obs->uncertainty)
        for (int64_t i = 0; i < obs->n; ++i)
            if (!(obs->uncertainty[i] >= 0)) {
                sbi_observation_free(obs);
                SBI_RAISE(SBI_ERR_INPUT, "%s: row %lld: negative uncertainty", path, (long long)i + 1);
            }
    return 0;
}

void sbi_observation_free(sbi_observation *obs)
{
    free(obs->coordinate);
    free(obs->bin_width);
    free(obs->value);
    free(obs->uncertainty);
    free(obs->covariance);
    free(obs->missing);
    memset(obs, 0, sizeof *obs);
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int sbi_observation_read(const char *path, sbi_observation *obs)
{
    size_t n = strlen(path);
    int fits = 0;
    if (n > 1 && path[n - 1] == ']' && strchr(path, '[')) {
        fits = 1;
    } else if (ends_with_ci(path, ".fits") || ends_with_ci(path, ".fit") || ends_with_ci(path, ".fts") ||
               ends_with_ci(path, ".fits.gz") || ends_with_ci(path, ".fit.gz") || ends_with_ci(path, ".fts.gz")) {
        fits = 1;
    } else {
        /* A FITS file starts with the card SIMPLE  = whatever its name. */
        FILE *f = fopen(path, "rb");
        char head[9] = {0};
        if (f) {
            fits = fread(head, 1, 9, f) == 9 && memcmp(head, "SIMPLE  =", 9) == 0;
            fclose(f);
        }
    }
    if (fits) SBI_CALL(sbi_observation_read_fits(path, obs));
    else SBI_CALL(sbi_observation_read_text(path, obs));
    return 0;
}

/* ---- covariance matrices ---- */

int64_t sbi_matrix_not_positive_definite(int64_t n, const double *a)
{
    double *l = malloc((size_t)(n > 0 ? n * n : 1) * sizeof *l);
    lapack_int info;
    if (!l) return 1;
    memcpy(l, a, (size_t)(n * n) * sizeof *l);
    info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, l, (lapack_int)n);
    free(l);
    return info == 0 ? 0 : (info > 0 ? (int64_t)info : 1);
}

int sbi_observation_read_matrix(const char *path, int64_t *n_out, double **matrix)
{
    char *text = NULL, *line, *next;
    double *m = NULL;
    int64_t n = 0, rows = 0, cap = 0, lineno = 0;
    int64_t *row_line = NULL;
    int st = 0;

    *n_out = 0;
    *matrix = NULL;
    SBI_CALL(sbi_read_file(path, &text, NULL));
    for (line = text; line && !st; line = next) {
        char *p, *end, *hash;
        int64_t k = 0;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        ++lineno;
        if ((hash = strchr(line, '#'))) *hash = '\0';
        for (p = line;;) {
            double v;
            while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r') ++p;
            if (!*p) break;
            errno = 0;
            v = strtod(p, &end);
            if (end == p || !(*end == '\0' || *end == ' ' || *end == '\t' || *end == ',' || *end == '\r')) {
                st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                                "%s:%lld: column %lld is not a number: '%.20s'", path, (long long)lineno,
                                (long long)k + 1, p);
                break;
            }
            if (!isfinite(v)) {
                st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__, "%s:%lld: column %lld is not finite",
                                path, (long long)lineno, (long long)k + 1);
                break;
            }
            if (rows == 0) {
                /* The first row fixes the size. */
                if (k == cap) {
                    double *q;
                    cap = cap ? 2 * cap : 64;
                    q = realloc(m, (size_t)cap * sizeof *m);
                    if (!q) {
                        st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory reading %s",
                                        path);
                        break;
                    }
                    m = q;
                }
                m[k] = v;
            } else if (k < n && rows < n) {
                m[rows * n + k] = v;
            }
            ++k;
            p = end;
        }
        if (st || k == 0) continue;
        if (rows == 0) {
            double *q;
            int64_t *rl;
            n = k;
            q = realloc(m, (size_t)(n * n) * sizeof *m);
            rl = malloc((size_t)n * sizeof *rl);
            if (!q || !rl) {
                free(rl);
                if (q) m = q;
                st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory reading %s", path);
                break;
            }
            m = q;
            row_line = rl;
        } else if (k != n) {
            st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                            "%s:%lld: %lld columns where the first row has %lld (the matrix must be square)", path,
                            (long long)lineno, (long long)k, (long long)n);
            break;
        } else if (rows >= n) {
            st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                            "%s:%lld: more than %lld rows (the matrix must be square)", path, (long long)lineno,
                            (long long)n);
            break;
        }
        row_line[rows] = lineno;
        ++rows;
    }
    free(text);
    if (!st && rows == 0) st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__, "%s: no data rows", path);
    if (!st && rows != n)
        st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                        "%s: %lld rows of %lld columns (the matrix must be square)", path, (long long)rows,
                        (long long)n);
    if (!st) {
        double dmax = 0.0;
        for (int64_t i = 0; i < n; ++i) dmax = fmax(dmax, fabs(m[i * n + i]));
        for (int64_t i = 0; i < n && !st; ++i) {
            if (!(m[i * n + i] > 0))
                st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                                "%s:%lld: diagonal element %lld is %g; a covariance needs positive variances", path,
                                (long long)row_line[i], (long long)i + 1, m[i * n + i]);
            for (int64_t j = 0; j < i && !st; ++j)
                if (fabs(m[i * n + j] - m[j * n + i]) > 1e-8 * dmax)
                    st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                                    "%s:%lld: element (%lld, %lld) = %g differs from (%lld, %lld) = %g: the matrix "
                                    "is not symmetric",
                                    path, (long long)row_line[i], (long long)i + 1, (long long)j + 1, m[i * n + j],
                                    (long long)j + 1, (long long)i + 1, m[j * n + i]);
        }
    }
    if (!st) {
        int64_t bad = sbi_matrix_not_positive_definite(n, m);
        if (bad)
            st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                            "%s: the matrix is not positive definite (Cholesky fails at order %lld)", path,
                            (long long)bad);
    }
    free(row_line);
    if (st) {
        free(m);
        return st;
    }
    *n_out = n;
    *matrix = m;
    return 0;
}

/* ---- flux-conserving rebinning ---- */

/* Edges of bins around increasing centres c (n >= 2): half-way between
 * neighbours, the outer ones mirroring the nearest inner ones. */
static void edges_from_centres(int64_t n, const double *c, double *lo, double *hi)
{
    for (int64_t i = 0; i < n; ++i) {
        lo[i] = i > 0 ? 0.5 * (c[i - 1] + c[i]) : c[0] - 0.5 * (c[1] - c[0]);
        hi[i] = i + 1 < n ? 0.5 * (c[i] + c[i + 1]) : c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]);
    }
}

void sbi_rebin_free(sbi_rebin *rb)
{
    free(rb->start);
    free(rb->count);
    free(rb->row);
    free(rb->weight);
    free(rb->coverage);
    memset(rb, 0, sizeof *rb);
}

int sbi_rebin_make(const sbi_observation *obs, int64_t n_out, const double *centres, sbi_rebin *rb)
{
    int64_t n_in = obs->n, m = 0, *ord = NULL, used = 0, cap;
    double *slo = NULL, *shi = NULL, *sc = NULL, *tlo = NULL, *thi = NULL, *clo = NULL, *chi = NULL;
    double reach = 0.0;
    int decreasing;

    memset(rb, 0, sizeof *rb);
    SBI_CHECK(obs->coordinate, SBI_ERR_INCOMPATIBLE,
              "%s: the observation has no wavelength column, so it cannot be rebinned", obs->source);
    SBI_CHECK(n_out >= 2, SBI_ERR_INCOMPATIBLE, "rebinning needs at least two target bins to derive bin edges");
    for (int64_t j = 1; j < n_out; ++j)
        SBI_CHECK(centres[j] > centres[j - 1], SBI_ERR_INPUT,
                  "rebinning: the target coordinates must increase (point %lld: %g after %g)", (long long)j + 1,
                  centres[j], centres[j - 1]);
    /* The source rows with a finite coordinate, in increasing order. */
    SBI_MALLOC(ord, n_in > 0 ? n_in : 1);
    for (int64_t i = 0; i < n_in; ++i)
        if (isfinite(obs->coordinate[i])) ord[m++] = i;
    SBI_CHECK(m >= 2, SBI_ERR_INPUT, "%s: fewer than two points with a finite wavelength: nothing to rebin",
              obs->source);
    decreasing = obs->coordinate[ord[1]] < obs->coordinate[ord[0]];
    if (decreasing)
        for (int64_t a = 0, b = m - 1; a < b; ++a, --b) {
            int64_t t = ord[a];
            ord[a] = ord[b];
            ord[b] = t;
        }
    SBI_MALLOC(sc, m);
    SBI_MALLOC(slo, m);
    SBI_MALLOC(shi, m);
    for (int64_t k = 0; k < m; ++k) {
        sc[k] = obs->coordinate[ord[k]];
        SBI_CHECK(k == 0 || sc[k] > sc[k - 1], SBI_ERR_INPUT,
                  "%s: row %lld: wavelength %.9g breaks the order of the rows (they must strictly increase or "
                  "decrease to be rebinned)",
                  obs->source, (long long)ord[k] + 1, sc[k]);
    }
    /* Coverage is measured on the bins tiled from neighbouring centres, so that the
     * gaps between narrower stated bins do not count as missing data. */
    SBI_MALLOC(clo, m);
    SBI_MALLOC(chi, m);
    edges_from_centres(m, sc, clo, chi);
    if (obs->bin_width) {
        for (int64_t k = 0; k < m; ++k) {
            double w = obs->bin_width[ord[k]];
            SBI_CHECK(w > 0, SBI_ERR_INPUT, "%s: row %lld: bin width %g is not positive", obs->source,
                      (long long)ord[k] + 1, w);
            slo[k] = sc[k] - 0.5 * w;
            shi[k] = sc[k] + 0.5 * w;
        }
    } else {
        memcpy(slo, clo, (size_t)m * sizeof *slo);
        memcpy(shi, chi, (size_t)m * sizeof *shi);
    }
    /* How far below its centre any source bin reaches: bounds the scan of each target. */
    for (int64_t k = 0; k < m; ++k) reach = fmax(reach, sc[k] - fmin(slo[k], clo[k]));
    SBI_MALLOC(tlo, n_out);
    SBI_MALLOC(thi, n_out);
    edges_from_centres(n_out, centres, tlo, thi);

    rb->n_out = n_out;
    rb->n_in = n_in;
    SBI_CALLOC(rb->start, n_out);
    SBI_CALLOC(rb->count, n_out);
    SBI_CALLOC(rb->coverage, n_out);
    cap = m + 2 * n_out;
    SBI_MALLOC(rb->row, cap);
    SBI_MALLOC(rb->weight, cap);
    for (int64_t j = 0, first = 0; j < n_out; ++j) {
        double total = 0.0, covered = 0.0, width = thi[j] - tlo[j];
        rb->start[j] = used;
        /* Source bins are sorted by centre; skip those that end before this target starts. */
        while (first < m && shi[first] <= tlo[j] && chi[first] <= tlo[j]) ++first;
        for (int64_t k = first; k < m && sc[k] - reach < thi[j]; ++k) {
            double o = fmin(shi[k], thi[j]) - fmax(slo[k], tlo[j]);
            double t = fmin(chi[k], thi[j]) - fmax(clo[k], tlo[j]);
            if (obs->missing && obs->missing[ord[k]]) continue;
            if (t > 0) covered += t;
            if (!(o > 0)) continue;
            if (used == cap) {
                int64_t *r2;
                double *w2;
                cap *= 2;
                r2 = realloc(rb->row, (size_t)cap * sizeof *r2);
                SBI_CHECK(r2, SBI_ERR_INTERNAL, "out of memory rebinning %s", obs->source);
                rb->row = r2;
                w2 = realloc(rb->weight, (size_t)cap * sizeof *w2);
                SBI_CHECK(w2, SBI_ERR_INTERNAL, "out of memory rebinning %s", obs->source);
                rb->weight = w2;
            }
            rb->row[used] = ord[k];
            rb->weight[used] = o;
            total += o;
            ++used;
        }
        rb->coverage[j] = covered / width;
        if (rb->coverage[j] < SBI_REBIN_MIN_COVERAGE || !(total > 0)) {
            used = rb->start[j];
            rb->n_missing++;
        } else {
            for (int64_t e = rb->start[j]; e < used; ++e) rb->weight[e] /= total;
        }
        rb->count[j] = used - rb->start[j];
    }
    free(ord);
    free(sc);
    free(slo);
    free(shi);
    free(clo);
    free(chi);
    free(tlo);
    free(thi);
    return 0;
}

void sbi_rebin_apply(const sbi_rebin *rb, const sbi_observation *obs, double *value, double *uncertainty,
                     unsigned char *missing, double *covariance)
{
    for (int64_t j = 0; j < rb->n_out; ++j) {
        double v = 0.0, s2 = 0.0;
        const int64_t *r = rb->row + rb->start[j];
        const double *w = rb->weight + rb->start[j];
        missing[j] = rb->count[j] == 0;
        for (int64_t e = 0; e < rb->count[j]; ++e) {
            v += w[e] * obs->value[r[e]];
            if (obs->uncertainty) s2 += w[e] * w[e] * obs->uncertainty[r[e]] * obs->uncertainty[r[e]];
        }
        value[j] = missing[j] ? NAN : v;
        if (uncertainty) uncertainty[j] = missing[j] ? NAN : sqrt(s2);
    }
    if (covariance && obs->covariance) sbi_rebin_covariance(rb, obs->covariance, covariance);
}

void sbi_rebin_covariance(const sbi_rebin *rb, const double *c_in, double *c_out)
{
    const int64_t n = rb->n_in;
    for (int64_t j = 0; j < rb->n_out; ++j)
        for (int64_t k = 0; k <= j; ++k) {
            double acc = 0.0;
            for (int64_t a = 0; a < rb->count[j]; ++a)
                for (int64_t b = 0; b < rb->count[k]; ++b)
                    acc += rb->weight[rb->start[j] + a] * rb->weight[rb->start[k] + b] *
                           c_in[rb->row[rb->start[j] + a] * n + rb->row[rb->start[k] + b]];
            if (rb->count[j] == 0 || rb->count[k] == 0) acc = NAN;
            c_out[j * rb->n_out + k] = c_out[k * rb->n_out + j] = acc;
        }
}
