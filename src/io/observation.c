/* Text observation files (see include/exosbi/observation.h). */
#include "exosbi/observation.h"

#include <errno.h>
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
    memset(obs, 0, sizeof *obs);
}
