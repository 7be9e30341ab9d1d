/* Finding tables in a petitRADTRANS 3 `input_data` directory by species
 * name, the way petitRADTRANS lays it out:
 *   input_data/<category path>/<base name>/<isotopologue>/<file>
 * e.g. opacities/lines/line_by_line/H2O/1H2-16O/
 *      1H2-16O__POKAZATEL.R1e6_0.3-28mu.xsec.petitRADTRANS.h5
 * (petitRADTRANS `config/configuration.py: get_input_data_subpaths`,
 * `opacities/opacities.py: Opacity.get_species_directory`).
 *
 * A species name is [isotopes]formula[-NatAbund][__source][.spectral info].
 * Its base name drops the isotope numbers (1H2-16O -> H2O, H2--He-NatAbund ->
 * H2--He) and picks the directory; the isotopologue, source and spectral
 * info, when given, narrow the files found there.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "exosbi/opacity_io.h"

#define PRT_MAX_CANDIDATES 256
#define PRT_NAME 256

static const char *const prt_subpath[] = {"opacities/lines/line_by_line", "opacities/lines/correlated_k",
                                          "opacities/continuum/collision_induced_absorptions"};
static const char *const prt_extension[] = {".xsec.petitRADTRANS.h5", ".ktable.petitRADTRANS.h5",
                                            ".ciatable.petitRADTRANS.h5"};

const char *sbi_prt_category_name(sbi_prt_category category)
{
    switch (category) {
    case SBI_PRT_LINE_BY_LINE: return "line_by_line";
    case SBI_PRT_CORRELATED_K: return "correlated_k";
    case SBI_PRT_CIA: return "collision_induced_absorptions";
    default: return "?";
    }
}

/* ---- the input_data directory ------------------------------------------------ */

static void trim(char *s)
{
    size_t n = strlen(s);
    char *p = s;
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    while (*p && isspace((unsigned char)*p)) ++p;
    memmove(s, p, strlen(p) + 1);
}

/* The value of `key` in `section` of petitRADTRANS' configuration file
 * (Python configparser: section and key case-insensitive, `=` or `:`). */
static int config_value(const char *ini, const char *section, const char *key, char *out, size_t cap)
{
    FILE *f = fopen(ini, "r");
    char line[4096];
    int in_section = 0, found = 0;
    const size_t ns = strlen(section);
    if (!f) return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *sep;
        trim(line);
        if (line[0] == '#' || line[0] == ';' || !line[0]) continue;
        if (line[0] == '[') {
            in_section = !strncasecmp(line + 1, section, ns) && line[ns + 1] == ']';
            continue;
        }
        if (!in_section || !(sep = strpbrk(line, "=:"))) continue;
        *sep = '\0';
        trim(line);
        trim(sep + 1);
        if (!strcasecmp(line, key) && sep[1]) {
            snprintf(out, cap, "%s", sep + 1);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* petitRADTRANS' configuration file, into out[cap]; 0 when $HOME is unset. */
static int config_file(char *out, size_t cap)
{
    const char *home = getenv("HOME");
    if (!home || !home[0]) return 0;
    snprintf(out, cap, "%s/.petitradtrans/petitradtrans_config_file.ini", home);
    return 1;
}

int sbi_prt_input_data_dir(const char *setting, char *out, size_t cap, const char **source)
{
    const char *env = getenv("pRT_input_data_path");
    char ini[4096] = "~/.petitradtrans/petitradtrans_config_file.ini";
    if (setting && setting[0]) {
        snprintf(out, cap, "%s", setting);
        if (source) *source = "forward_model.settings.input_data";
        return SBI_OK;
    }
    if (env && env[0]) {
        snprintf(out, cap, "%s", env);
        if (source) *source = "$pRT_input_data_path";
        return SBI_OK;
    }
    if (config_file(ini, sizeof ini) && config_value(ini, "Paths", "prt_input_data_path", out, cap)) {
        if (source) *source = "~/.petitradtrans/petitradtrans_config_file.ini";
        return SBI_OK;
    }
    SBI_RAISE(SBI_ERR_INPUT,
              "no petitRADTRANS input_data directory: set forward_model.settings.input_data, the environment "
              "variable pRT_input_data_path, or prt_input_data_path in [Paths] of %s",
              ini);
}

/* ---- species names ------------------------------------------------------------- */

/* The most abundant isotope of the elements petitRADTRANS species are made
 * of (petitRADTRANS adds these numbers to a name given without them). */
static int main_isotope(const char *el)
{
    static const struct {
        const char *el;
        int a;
    } tab[] = {{"H", 1},   {"He", 4},  {"Li", 7},  {"Be", 9},  {"B", 11},  {"C", 12},  {"N", 14},  {"O", 16},
               {"F", 19},  {"Na", 23}, {"Mg", 24}, {"Al", 27}, {"Si", 28}, {"P", 31},  {"S", 32},  {"Cl", 35},
               {"K", 39},  {"Ca", 40}, {"Sc", 45}, {"Ti", 48}, {"V", 51},  {"Cr", 52}, {"Mn", 55}, {"Fe", 56},
               {"Co", 59}, {"Ni", 58}, {"Cu", 63}, {"Zn", 64}, {"Rb", 85}, {"Sr", 88}, {"Y", 89},  {"Zr", 90},
               {"Cs", 133}, {"Ba", 138}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; ++i)
        if (!strcmp(tab[i].el, el)) return tab[i].a;
    return 0;
}

/* The pieces of a species name. */
typedef struct prt_name {
    char iso[PRT_NAME];    /* "1H2-16O", "H2O", "H2--He-NatAbund" */
    char source[PRT_NAME]; /* after "__" */
    char spec[PRT_NAME];   /* after the first "." */
    char base[PRT_NAME];   /* the directory: isotopes and NatAbund removed */
    char main_iso[PRT_NAME]; /* main isotopologue when iso has no isotopes ("" when unknown) */
    int has_iso;           /* iso carries isotope numbers or NatAbund */
} prt_name;

/* One collider or molecule without isotopes: "1H2-16O" -> "H2O". */
static void strip_isotopes(const char *in, size_t len, char *out, size_t cap, int *has_iso)
{
    size_t o = 0, i = 0;
    out[0] = '\0';
    while (i < len) {
        size_t j = i;
        while (j < len && in[j] != '-') ++j;
        if (j - i == 8 && !strncmp(in + i, "NatAbund", 8)) {
            *has_iso = 1;
        } else {
            size_t k = i;
            if (k < j && isdigit((unsigned char)in[k])) *has_iso = 1;
            while (k < j && isdigit((unsigned char)in[k])) ++k;
            while (k < j && o + 1 < cap) out[o++] = in[k++];
            out[o] = '\0';
        }
        i = j + 1;
    }
}

/* "H2O" -> "1H2-16O"; "" when an element is not in the table. */
static void add_main_isotopes(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = in; *p;) {
        char el[4] = {0};
        int a, n;
        if (!isupper((unsigned char)*p)) {
            out[0] = '\0';
            return;
        }
        el[0] = *p++;
        if (islower((unsigned char)*p)) el[1] = *p++;
        if (!(a = main_isotope(el))) {
            out[0] = '\0';
            return;
        }
        n = snprintf(out + o, cap - o, "%s%d%s", o ? "-" : "", a, el);
        if (n < 0 || (size_t)n >= cap - o) {
            out[0] = '\0';
            return;
        }
        o += (size_t)n;
        while (isdigit((unsigned char)*p) && o + 1 < cap) out[o++] = *p++;
        out[o] = '\0';
    }
}

static int parse_name(const char *species, int cia, prt_name *nm)
{
    const char *dot = strchr(species, '.'), *src;
    size_t len = dot ? (size_t)(dot - species) : strlen(species);
    memset(nm, 0, sizeof *nm);
    SBI_CHECK(species[0] && len < PRT_NAME && strlen(species) < PRT_NAME, SBI_ERR_INPUT,
              "petitRADTRANS species name '%s': empty or too long", species);
    if (dot) snprintf(nm->spec, sizeof nm->spec, "%s", dot + 1);
    snprintf(nm->iso, sizeof nm->iso, "%.*s", (int)len, species);
    if ((src = strstr(nm->iso, "__"))) {
        snprintf(nm->source, sizeof nm->source, "%s", src + 2);
        nm->iso[src - nm->iso] = '\0';
    }
    SBI_CHECK(nm->iso[0] && !strchr(nm->iso, '/'), SBI_ERR_INPUT, "petitRADTRANS species name '%s': no species",
              species);
    if (cia) {
        const char *pair = strstr(nm->iso, "--");
        char a[PRT_NAME / 2 - 2], b[PRT_NAME / 2 - 2];
        SBI_CHECK(pair && pair != nm->iso && pair[2], SBI_ERR_INPUT,
                  "petitRADTRANS collision pair '%s': expected A--B (H2--H2, H2--He)", species);
        strip_isotopes(nm->iso, (size_t)(pair - nm->iso), a, sizeof a, &nm->has_iso);
        strip_isotopes(pair + 2, strlen(pair + 2), b, sizeof b, &nm->has_iso);
        snprintf(nm->base, sizeof nm->base, "%s--%s", a, b);
    } else {
        strip_isotopes(nm->iso, strlen(nm->iso), nm->base, sizeof nm->base, &nm->has_iso);
        if (!nm->has_iso) add_main_isotopes(nm->iso, nm->main_iso, sizeof nm->main_iso);
    }
    SBI_CHECK(nm->base[0], SBI_ERR_INPUT, "petitRADTRANS species name '%s': no species", species);
    return SBI_OK;
}

/* a == b ignoring the '-' separators between isotopes. */
static int same_isotopologue(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-') ++a;
        while (*b == '-') ++b;
        if (*a != *b) return 0;
        if (!*a) return 1;
        ++a;
        ++b;
    }
}

/* ---- the search ------------------------------------------------------------------ */

typedef struct candidate {
    char rel[2 * PRT_NAME + 2]; /* isotopologue/file, or file */
    char iso[PRT_NAME];         /* the isotopologue directory ("" for a file in the base directory) */
    int tier;                   /* 0: main isotopologue, 1: NatAbund, 2: other */
} candidate;

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_candidate(const void *a, const void *b)
{
    return strcmp(((const candidate *)a)->rel, ((const candidate *)b)->rel);
}

/* Does file `name` in isotopologue directory `iso` match the species? */
static int matches(const prt_name *nm, const char *iso, const char *name, const char *ext)
{
    char key[PRT_NAME + 4];
    if (!ends_with(name, ext)) return 0;
    if (nm->has_iso && !(iso[0] ? same_isotopologue(iso, nm->iso) : !strncmp(name, nm->iso, strlen(nm->iso))))
        return 0;
    if (nm->source[0]) {
        snprintf(key, sizeof key, "__%s.", nm->source);
        if (!strstr(name, key)) return 0;
    }
    if (nm->spec[0]) {
        snprintf(key, sizeof key, ".%s", nm->spec);
        if (!strstr(name, key)) return 0;
    }
    return 1;
}

/* The first entries of directory `dir` (for a message). */
static void list_dir(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t used = 0;
    int n = 0;
    out[0] = '\0';
    if (!d) return;
    while ((e = readdir(d)) && used + 1 < cap) {
        int w;
        if (e->d_name[0] == '.') continue;
        w = n < 12 ? snprintf(out + used, cap - used, "%s%s", n ? ", " : "", e->d_name)
                   : snprintf(out + used, cap - used, ", ...");
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
        if (++n > 12) break;
    }
    closedir(d);
}

int sbi_prt_find_table(const char *input_data, sbi_prt_category category, const char *species, char *out,
                       size_t cap)
{
    const char *ext;
    prt_name nm;
    char dir[4096], sub[4096 + 3 * PRT_NAME + 8], listing[1024], msg[3072];
    candidate *cand;
    DIR *d;
    struct dirent *e;
    int n = 0, best = 3, n_best = 0, pick = -1, err = 0;
    size_t used = 0;

    SBI_CHECK(category >= SBI_PRT_LINE_BY_LINE && category <= SBI_PRT_CIA, SBI_ERR_INTERNAL,
              "sbi_prt_find_table: unknown category %d", (int)category);
    ext = prt_extension[category];
    SBI_CALL(parse_name(species, category == SBI_PRT_CIA, &nm));
    SBI_CHECK(is_dir(input_data), SBI_ERR_INPUT, "petitRADTRANS input_data '%s' is not a directory", input_data);
    snprintf(dir, sizeof dir, "%s/%s/%s", input_data, prt_subpath[category], nm.base);
    if (!is_dir(dir)) {
        snprintf(sub, sizeof sub, "%s/%s", input_data, prt_subpath[category]);
        list_dir(sub, listing, sizeof listing);
        SBI_RAISE(SBI_ERR_INPUT, "%s '%s': no directory %s (%s holds: %s)", sbi_prt_category_name(category), species,
                  dir, sub, listing[0] ? listing : "nothing");
    }
    SBI_CALLOC(cand, PRT_MAX_CANDIDATES);
    d = opendir(dir);
    if (!d) {
        free(cand);
        SBI_RAISE(SBI_ERR_INPUT, "%s '%s': cannot read directory %s", sbi_prt_category_name(category), species, dir);
    }
    /* Files in the base directory itself and one level of isotopologue
     * directories below it. */
    while ((e = readdir(d)) && n < PRT_MAX_CANDIDATES) {
        if (e->d_name[0] == '.') continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (is_dir(sub)) {
            DIR *d2 = opendir(sub);
            struct dirent *f;
            if (!d2) continue;
            while ((f = readdir(d2)) && n < PRT_MAX_CANDIDATES) {
                if (f->d_name[0] == '.' || !matches(&nm, e->d_name, f->d_name, ext)) continue;
                snprintf(cand[n].rel, sizeof cand[n].rel, "%s/%s", e->d_name, f->d_name);
                snprintf(cand[n].iso, sizeof cand[n].iso, "%s", e->d_name);
                ++n;
            }
            closedir(d2);
        } else if (matches(&nm, "", e->d_name, ext)) {
            snprintf(cand[n].rel, sizeof cand[n].rel, "%s", e->d_name);
            ++n;
        }
    }
    closedir(d);
    qsort(cand, (size_t)n, sizeof *cand, cmp_candidate);
    /* A name without isotopes means the main isotopologue, else the
     * natural-abundance one, when the directory has them. */
    for (int i = 0; i < n; ++i) {
        cand[i].tier = 2;
        if (!nm.has_iso && nm.main_iso[0] && cand[i].iso[0] && same_isotopologue(cand[i].iso, nm.main_iso))
            cand[i].tier = 0;
        else if (!nm.has_iso && ends_with(cand[i].iso, "NatAbund"))
            cand[i].tier = 1;
        if (cand[i].tier < best) best = cand[i].tier;
    }
    for (int i = 0; i < n; ++i)
        if (cand[i].tier == best) {
            ++n_best;
            pick = i;
        }
    if (n_best > 1) {
        /* Several: the one petitRADTRANS was told to use by default in that
         * isotopologue directory ([Default files] of its configuration file,
         * keyed by the directory relative to input_data), if any. */
        char ini[4096], key[4096 + PRT_NAME], value[PRT_NAME];
        int n_default = 0, chosen = -1;
        for (int i = 0; i < n && config_file(ini, sizeof ini); ++i) {
            if (cand[i].tier != best || !cand[i].iso[0]) continue;
            snprintf(key, sizeof key, "%s/%s/%s", prt_subpath[category], nm.base, cand[i].iso);
            if (config_value(ini, "Default files", key, value, sizeof value) &&
                !strcmp(cand[i].rel + strlen(cand[i].iso) + 1, value)) {
                ++n_default;
                chosen = i;
            }
        }
        if (n_default == 1) {
            n_best = 1;
            pick = chosen;
        }
    }
    if (n_best == 1) {
        snprintf(sub, sizeof sub, "%s/%s", dir, cand[pick].rel);
        if (strlen(sub) >= cap)
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__, "%s: path longer than %zu characters", sub,
                             cap - 1);
        else
            snprintf(out, cap, "%s", sub);
        free(cand);
        return err;
    }
    msg[0] = '\0';
    for (int i = 0, k = 0; i < n && used + 1 < sizeof msg; ++i) {
        int w;
        if (cand[i].tier != best) continue;
        w = snprintf(msg + used, sizeof msg - used, "%s%s", k++ ? ", " : "", cand[i].rel);
        if (w < 0 || (size_t)w >= sizeof msg - used) break;
        used += (size_t)w;
    }
    free(cand);
    if (n_best == 0) {
        list_dir(dir, listing, sizeof listing);
        SBI_RAISE(SBI_ERR_INPUT, "%s '%s': no *%s file matches in %s (it holds: %s)", sbi_prt_category_name(category),
                  species, ext, dir, listing[0] ? listing : "nothing");
    }
    SBI_RAISE(SBI_ERR_INPUT,
              "%s '%s': %d tables match in %s: %s; name one with its isotopologue, __source or .spectral info "
              "(e.g. %s__SOURCE.R1e6)",
              sbi_prt_category_name(category), species, n_best, dir, msg, nm.iso);
}
