/* Readers of collision-induced absorption tables: petitRADTRANS 3 HDF5
 * `alpha` tables, HITRAN `.cia` files and the sectioned text tables of
 * pyratbay (the Borysow H2-H2 and H2-He tables of shared/data/opacity/cia).
 * Formats: include/exosbi/opacity_io.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rt.h"
#include "io/h5_impl.h"
#include "io/opacity_impl.h"

const char *sbi_cia_format_name(sbi_cia_format format)
{
    switch (format) {
    case SBI_CIA_PRT_HDF5: return "petitRADTRANS HDF5";
    case SBI_CIA_HITRAN: return "HITRAN";
    case SBI_CIA_SECTIONED: return "sectioned text";
    default: return "auto";
    }
}

void sbi_cia_table_free(sbi_cia_table *tab)
{
    if (!tab) return;
    free(tab->t);
    free(tab->nu);
    free(tab->alpha);
    tab->t = tab->nu = tab->alpha = NULL;
    tab->n_t = tab->n_nu = 0;
}

/* Split "H2-He" (or "H2--He", pRT's file-name spelling) into the pair. */
static void split_pair(const char *text, char species[2][16])
{
    const char *dash = strchr(text, '-');
    species[0][0] = species[1][0] = '\0';
    if (!dash) return;
    snprintf(species[0], 16, "%.*s", (int)(dash - text), text);
    while (*dash == '-') ++dash;
    snprintf(species[1], 16, "%s", dash);
}

/* ---- text helpers --------------------------------------------------------- */

/* Next line of text[] starting at *pos, NUL-terminated in place; NULL at the end. */
static char *next_line(char *text, size_t len, size_t *pos)
{
    char *line;
    if (*pos >= len) return NULL;
    line = text + *pos;
    while (*pos < len && text[*pos] != '\n') ++*pos;
    if (*pos < len) text[(*pos)++] = '\0';
    return line;
}

/* Parse up to `max` numbers from line; returns the count, or -1 when a token
 * is not a number. */
static int parse_numbers(char *line, double *v, int max)
{
    char *save = NULL, *tok, *end;
    int n = 0;
    for (tok = strtok_r(line, " \t\r,", &save); tok; tok = strtok_r(NULL, " \t\r,", &save)) {
        double d = strtod(tok, &end);
        if (end == tok || *end) return -1;
        if (n < max) v[n] = d;
        ++n;
    }
    return n;
}

static int grow(double **v, int64_t *cap, int64_t need)
{
    if (need <= *cap) return SBI_OK;
    {
        int64_t c = *cap ? *cap : 256;
        double *g;
        while (c < need) c *= 2;
        g = realloc(*v, (size_t)c * sizeof *g);
        SBI_CHECK(g, SBI_ERR_INTERNAL, "out of memory reading a CIA table");
        *v = g;
        *cap = c;
    }
    return SBI_OK;
}

/* ---- sectioned text (pyratbay) ------------------------------------------- */

enum { SECTION_NONE, SECTION_SPECIES, SECTION_TEMPERATURES, SECTION_DATA };

/* Sections `@SPECIES` (the pair), `@TEMPERATURES` (n_T values, possibly over
 * several lines) and `@DATA` (rows: wavenumber then n_T coefficients in
 * cm^-1 amagat^-2), `#` starting a comment (pyratbay
 * `pyratbay/io/io.py: read_cs`, which writes them). */
static int read_sectioned(const char *path, char *text, size_t len, sbi_cia_table *tab)
{
    size_t pos = 0;
    int64_t cap_t = 0, cap_nu = 0, cap_a = 0, n_t = 0, n_nu = 0;
    int section = SECTION_NONE, lineno = 0, n_species = 0, st = 0;
    double *row = NULL;
    char *line;

    while (!st && (line = next_line(text, len, &pos))) {
        char *hash = strchr(line, '#'), *p = line;
        ++lineno;
        if (hash) *hash = '\0';
        while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
        if (!*p) continue;
        if (*p == '@') {
            if (!strncmp(p, "@SPECIES", 8))
                section = SECTION_SPECIES;
            else if (!strncmp(p, "@TEMPERATURES", 13))
                section = SECTION_TEMPERATURES;
            else if (!strncmp(p, "@DATA", 5))
                section = SECTION_DATA;
            else
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s:%d: unknown section '%s'", path,
                                lineno, p);
            if (section == SECTION_DATA && n_t == 0)
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                                "%s:%d: @DATA before any @TEMPERATURES", path, lineno);
            if (section == SECTION_DATA && !st) {
                row = malloc((size_t)(n_t + 2) * sizeof *row);
                if (!row) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
            }
            continue;
        }
        if (section == SECTION_SPECIES) {
            char *save = NULL, *tok;
            for (tok = strtok_r(p, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save))
                if (n_species < 2) snprintf(tab->species[n_species++], 16, "%s", tok);
        } else if (section == SECTION_TEMPERATURES) {
            double v[256];
            int k = parse_numbers(p, v, 256);
            if (k < 0 || k > 256) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                                "%s:%d: @TEMPERATURES: expected at most 256 numbers", path, lineno);
                break;
            }
            if ((st = grow(&tab->t, &cap_t, n_t + k))) break;
            memcpy(tab->t + n_t, v, (size_t)k * sizeof *v);
            n_t += k;
        } else if (section == SECTION_DATA) {
            int k = parse_numbers(p, row, (int)n_t + 2);
            if (k != n_t + 1) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                                "%s:%d: @DATA: a row has %d value(s), expected a wavenumber and %lld coefficients",
                                path, lineno, k, (long long)n_t);
                break;
            }
            if ((st = grow(&tab->nu, &cap_nu, n_nu + 1)) || (st = grow(&tab->alpha, &cap_a, (n_nu + 1) * n_t))) break;
            tab->nu[n_nu] = row[0];
            /* Rows are stored wavenumber-major while reading; transposed below. */
            memcpy(tab->alpha + n_nu * n_t, row + 1, (size_t)n_t * sizeof *row);
            ++n_nu;
        } else {
            st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s:%d: data outside any @ section", path,
                            lineno);
        }
    }
    free(row);
    SBI_CALL(st);
    SBI_CHECK(n_t > 0 && n_nu > 0, SBI_ERR_IO, "%s: no @TEMPERATURES or no @DATA rows", path);
    SBI_CHECK(n_species == 2, SBI_ERR_IO, "%s: @SPECIES: expected the two colliding species", path);
    tab->n_t = (int)n_t;
    tab->n_nu = (int)n_nu;
    SBI_CALL(sbi__opac_check_grid(path, "@TEMPERATURES", n_t, tab->t));
    SBI_CALL(sbi__opac_check_grid(path, "@DATA (wavenumbers)", n_nu, tab->nu));
    SBI_CALL(sbi__opac_check_table(path, "@DATA (coefficients)", n_nu * n_t, tab->alpha));
    {
        double *a;
        SBI_MALLOC(a, n_t * n_nu);
        for (int64_t j = 0; j < n_nu; ++j)
            for (int64_t q = 0; q < n_t; ++q) a[q * n_nu + j] = tab->alpha[j * n_t + q] * CIA_AMAGAT_FACTOR;
        free(tab->alpha);
        tab->alpha = a;
    }
    return SBI_OK;
}

/* ---- HITRAN .cia ------------------------------------------------------------ */

typedef struct hitran_block {
    double t;
    int64_t start, n; /* rows in the flat nu / sigma arrays */
} hitran_block;

/* Blocks of a header line (pair, nu_min, nu_max, npts, T, ...; HITRAN CIA
 * format of Richard et al. 2012, split at blanks as exojax and TauREx read
 * it) and npts lines `nu sigma`. */
static int read_hitran(const char *path, char *text, size_t len, sbi_cia_table *tab)
{
    size_t pos = 0;
    int64_t cap_nu = 0, cap_s = 0, n_rows = 0;
    int n_blocks = 0, cap_b = 0, lineno = 0, st = 0;
    double *nu = NULL, *sig = NULL;
    hitran_block *blocks = NULL;
    char *line;

    while (!st && (line = next_line(text, len, &pos))) {
        char copy[512], *save = NULL, *tok[8];
        int ntok = 0;
        ++lineno;
        snprintf(copy, sizeof copy, "%s", line);
        for (char *t = strtok_r(copy, " \t\r", &save); t && ntok < 8; t = strtok_r(NULL, " \t\r", &save))
            tok[ntok++] = t;
        if (ntok == 0) continue;
        if (ntok != 2) {
            hitran_block *b;
            char *end1, *end2;
            double npts, t;
            if (ntok < 5) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                                "%s:%d: expected a block header (pair nu_min nu_max npts T ...)", path, lineno);
                break;
            }
            npts = strtod(tok[3], &end1);
            t = strtod(tok[4], &end2);
            if (*end1 || *end2 || !(npts >= 1) || npts != floor(npts) || !isfinite(t) || !(t > 0)) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                                "%s:%d: block header: npts '%s' or temperature '%s' is not valid", path, lineno,
                                tok[3], tok[4]);
                break;
            }
            if (n_blocks == cap_b) {
                hitran_block *g = realloc(blocks, (size_t)(cap_b ? 2 * cap_b : 16) * sizeof *g);
                if (!g) {
                    st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
                    break;
                }
                blocks = g;
                cap_b = cap_b ? 2 * cap_b : 16;
            }
            if (n_blocks == 0) split_pair(tok[0], tab->species);
            b = &blocks[n_blocks++];
            b->t = t;
            b->start = n_rows;
            b->n = (int64_t)npts;
            continue;
        }
        if (n_blocks == 0 || n_rows >= blocks[n_blocks - 1].start + blocks[n_blocks - 1].n) {
            st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                            "%s:%d: a data line outside a block (more lines than the header's npts?)", path, lineno);
            break;
        }
        if ((st = grow(&nu, &cap_nu, n_rows + 1)) || (st = grow(&sig, &cap_s, n_rows + 1))) break;
        {
            char *e1, *e2;
            nu[n_rows] = strtod(tok[0], &e1);
            sig[n_rows] = strtod(tok[1], &e2);
            if (*e1 || *e2 || !isfinite(nu[n_rows]) || !isfinite(sig[n_rows])) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s:%d: '%s %s' is not two finite numbers",
                                path, lineno, tok[0], tok[1]);
                break;
            }
            /* HITRAN marks missing values with negative numbers; they count as no absorption. */
            if (sig[n_rows] < 0) sig[n_rows] = 0;
        }
        ++n_rows;
    }
    if (!st && n_blocks == 0) st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s: no CIA block", path);
    for (int b = 0; !st && b < n_blocks; ++b) {
        const int64_t have = (b + 1 < n_blocks ? blocks[b + 1].start : n_rows) - blocks[b].start;
        char what[64];
        if (have != blocks[b].n)
            st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                            "%s: block %d (T = %g K) has %lld data lines, its header says %lld", path, b + 1,
                            blocks[b].t, (long long)have, (long long)blocks[b].n);
        snprintf(what, sizeof what, "block %d wavenumbers", b + 1);
        if (!st) st = sbi__opac_check_grid(path, what, blocks[b].n, nu + blocks[b].start);
    }
    if (!st) {
        /* Union grids: the distinct temperatures and wavenumbers of all blocks. */
        double *tt = malloc((size_t)n_blocks * sizeof *tt), *uu = malloc((size_t)n_rows * sizeof *uu);
        int64_t nt = 0, nn = 0;
        if (!tt || !uu) {
            free(tt);
            free(uu);
            st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
        } else {
            for (int b = 0; b < n_blocks; ++b) tt[b] = blocks[b].t;
            memcpy(uu, nu, (size_t)n_rows * sizeof *uu);
            qsort(tt, (size_t)n_blocks, sizeof *tt, sbi_cmp_double);
            qsort(uu, (size_t)n_rows, sizeof *uu, sbi_cmp_double);
            for (int b = 0; b < n_blocks; ++b)
                if (nt == 0 || tt[b] != tt[nt - 1]) tt[nt++] = tt[b];
            for (int64_t j = 0; j < n_rows; ++j)
                if (nn == 0 || uu[j] != uu[nn - 1]) uu[nn++] = uu[j];
            tab->t = tt;
            tab->nu = uu;
            tab->n_t = (int)nt;
            tab->n_nu = (int)nn;
            tab->alpha = calloc((size_t)(nt * nn), sizeof *tab->alpha);
            if (!tab->alpha) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
        }
        /* Each block fills its temperature row where it reaches, linearly in
         * wavenumber between its own points. */
        for (int b = 0; !st && b < n_blocks; ++b) {
            const double *bn = nu + blocks[b].start, *bs = sig + blocks[b].start;
            const int64_t m = blocks[b].n;
            int64_t q = 0, k = 0;
            while (tab->t[q] != blocks[b].t) ++q;
            for (int64_t j = 0; j < nn; ++j) {
                const double x = tab->nu[j];
                if (x < bn[0] || x > bn[m - 1]) continue;
                while (k + 1 < m && bn[k + 1] < x) ++k;
                if (m == 1 || x == bn[k])
                    tab->alpha[q * nn + j] = bs[k];
                else
                    tab->alpha[q * nn + j] = bs[k] + (bs[k + 1] - bs[k]) * (x - bn[k]) / (bn[k + 1] - bn[k]);
            }
        }
    }
    free(nu);
    free(sig);
    free(blocks);
    SBI_CALL(st);
    return SBI_OK;
}

/* ---- petitRADTRANS 3 HDF5 ----------------------------------------------------- */

/* `alpha` (n_T, n_nu), `wavenumbers` (n_nu), `t` (n_T), `mol_name` (2)
 * (petitRADTRANS `opacities/opacities.py: CIAOpacity.write`, read by
 * `radtrans.py: load_cia`). */
static int read_prt_hdf5(const char *path, sbi_cia_table *tab)
{
    hid_t file;
    int st = 0, rank = 0, n_names = 0;
    int64_t dims[4], n_a = 0, n_nu = 0, n_t = 0;
    char *units = NULL;
    double f_alpha = 1, f_nu = 1, f_t = 1;

    SBI_CALL(sbi__opac_h5_open(path, &file));
    st = sbi__opac_h5_shape(file, path, "alpha", &rank, dims);
    if (!st) st = sbi__opac_h5_read_all(file, path, "wavenumbers", &tab->nu, &n_nu);
    if (!st) st = sbi__opac_h5_read_all(file, path, "t", &tab->t, &n_t);
    if (!st && (rank != 2 || dims[0] != n_t || dims[1] != n_nu))
        st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                        "%s: dataset 'alpha' has shape (%lld, %lld) with rank %d; expected (n_t, n_nu) = (%lld, %lld) "
                        "from datasets 't' and 'wavenumbers'",
                        path, (long long)dims[0], (long long)dims[1], rank, (long long)n_t, (long long)n_nu);
    if (!st) st = sbi__opac_h5_read_all(file, path, "alpha", &tab->alpha, &n_a);
    if (!st) st = sbi__opac_h5_units(file, path, "alpha", 0, &units);
    if (!st) st = sbi__opac_units_factor(path, "alpha", "cia", units, CIA_AMAGAT_FACTOR, &f_alpha);
    free(units);
    units = NULL;
    if (!st) st = sbi__opac_h5_units(file, path, "wavenumbers", 0, &units);
    if (!st) st = sbi__opac_units_factor(path, "wavenumbers", "wavenumber", units, 1.0, &f_nu);
    free(units);
    units = NULL;
    if (!st) st = sbi__opac_h5_units(file, path, "t", 0, &units);
    if (!st) st = sbi__opac_units_factor(path, "t", "temperature", units, 1.0, &f_t);
    free(units);
    if (!st && sbi__opac_h5_has(file, "mol_name"))
        st = sbi__opac_h5_strings(file, path, "mol_name", 2, tab->species, &n_names);
    sbi__h5_close(&file);
    SBI_CALL(st);
    if (n_names < 2) tab->species[0][0] = tab->species[1][0] = '\0';
    tab->n_t = (int)n_t;
    tab->n_nu = (int)n_nu;
    for (int64_t i = 0; i < n_nu; ++i) tab->nu[i] *= f_nu;
    for (int64_t i = 0; i < n_t; ++i) tab->t[i] *= f_t;
    SBI_CALL(sbi__opac_check_grid(path, "t", n_t, tab->t));
    SBI_CALL(sbi__opac_check_grid(path, "wavenumbers", n_nu, tab->nu));
    SBI_CALL(sbi__opac_check_table(path, "alpha", n_a, tab->alpha));
    for (int64_t i = 0; i < n_a; ++i) tab->alpha[i] *= f_alpha;
    return SBI_OK;
}

/* ---- dispatch --------------------------------------------------------------- */

static sbi_cia_format detect(const char *path, const char *text, size_t len)
{
    static const unsigned char magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const char *dot = strrchr(path, '.');
    if (len >= 8 && !memcmp(text, magic, 8)) return SBI_CIA_PRT_HDF5;
    if (dot && !strcmp(dot, ".cia")) return SBI_CIA_HITRAN;
    /* A sectioned file names its sections; HITRAN files never contain '@'. */
    if (memchr(text, '@', len)) return SBI_CIA_SECTIONED;
    return SBI_CIA_HITRAN;
}

int sbi_cia_table_read(const char *path, sbi_cia_format format, sbi_cia_table *tab)
{
    char *text = NULL;
    size_t len = 0;
    int st;

    memset(tab, 0, sizeof *tab);
    SBI_CHECK(sbi_file_exists(path), SBI_ERR_IO, "%s: CIA table not found", path);
    if (format != SBI_CIA_PRT_HDF5) {
        SBI_CALL(sbi_read_file(path, &text, &len));
        if (format == SBI_CIA_AUTO) format = detect(path, text, len);
    }
    tab->format = format;
    if (format == SBI_CIA_PRT_HDF5)
        st = read_prt_hdf5(path, tab);
    else if (format == SBI_CIA_HITRAN)
        st = read_hitran(path, text, len, tab);
    else
        st = read_sectioned(path, text, len, tab);
    free(text);
    if (st) {
        sbi_cia_table_free(tab);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    tab->format = format;
    return SBI_OK;
}
