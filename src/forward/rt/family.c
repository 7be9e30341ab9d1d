/* The `transmission` and `emission` forward-model families: task settings,
 * the mapping of task parameters onto model inputs, and the per-row pipeline
 *   temperature -> composition -> hydrostatic radii -> opacity kappa (N, W)
 *   -> transit depth or emergent flux on the model grid (W)
 *   -> per dataset: line-spread convolution and flux-conserving binning.
 *
 * Units of the model inputs: R_pl [R_jup], R_star [R_sun], distance [pc],
 * log_g = log10 g [cm s^-2] at R_pl, pressures [bar], temperatures [K],
 * log_kappa_IR and log_kappa_haze = log10 [cm^2 g^-1], abundances log10 of a
 * volume mixing ratio or a mass fraction (settings.abundances).
 * Outputs: transmission, the transit depth (R_T / R_*)^2; emission, the
 * planet flux at the observer [W m^-2 um^-1] or the contrast F_p / F_*.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/opacity_io.h"
#include "exosbi/rt.h"
#include "forward/forward_impl.h"
#include "forward/rt/rt_family.h"

#define RT_MAX_INPUTS 128
#define RT_MAX_NODES 64
#define RT_MAX_SPECIES 32
#define RT_MAX_CIA 16
/* Temperature grid of the tabulated built-in molecular cross sections. */
#define RT_NT 64
#define RT_T_MIN 100.0
#define RT_T_MAX 6000.0
/* Extinction [cm^-1] standing for the opaque cloud deck (pRT adds 1e99
 * cm^2 g^-1; a finite value keeps the float chord product free of inf * 0). */
#define RT_DECK_ALPHA 1.0e20f
#define RT_DECK_KAPPA 1.0e20f

typedef enum { RT_TRANSMISSION = 0, RT_EMISSION = 1 } rt_mode;
typedef enum { RT_T_ISOTHERMAL = 0, RT_T_GUILLOT, RT_T_FREE } rt_profile;
typedef enum { RT_OUT_FLUX = 0, RT_OUT_CONTRAST } rt_output;

/* How a model input gets its value: a task parameter, a fixed number, or
 * (for an optional input) nothing, which switches its feature off. */
typedef struct rt_input {
    char name[SBI_NAME_MAX];
    int param;      /* task parameter index, or -1 */
    int optional;   /* may stay unset */
    int set;        /* has a parameter or a value */
    double value;   /* fixed value or default */
} rt_input;

/* A CIA pair: each collider is H2, He or a listed species. */
enum { RT_COLLIDER_H2 = -1, RT_COLLIDER_HE = -2 };
typedef struct rt_cia_pair {
    char name[2 * SBI_NAME_MAX + 2]; /* "H2-H2" */
    char path[SBI_PATH_MAX];   /* resolved against the task file; "" until found in input_data */
    char prt_name[2 * SBI_NAME_MAX + 2]; /* petitRADTRANS pair name when taken from input_data, else "" */
    int collider[2];           /* RT_COLLIDER_* or a species index */
    double mass[2];            /* [amu] */
    sbi_rt_cia tab;
} rt_cia_pair;

typedef struct rt_dataset {
    int size;
    int64_t offset;
    double resolution; /* line-spread resolving power; 0: none */
    sbi__rt_bands bands; /* photometric bands (n = 0: spectral bins) */
    sbi_rt_binning bin;
} rt_dataset;

typedef struct rt_state {
    rt_mode mode;
    int n_params;
    int64_t n_outputs;

    /* inputs */
    int n_inputs;
    rt_input in[RT_MAX_INPUTS];
    int i_r_pl, i_log_g, i_p_ref, i_r_star, i_t_star, i_distance;
    int i_t_iso, i_t_int, i_t_eq, i_log_kappa_ir, i_log_gamma, i_t_node0;
    int i_log_p_cloud, i_log_kappa_haze, i_gamma_haze, i_haze_factor, i_cloud_fraction;
    int i_x_hm, i_x_e, i_x_h, i_x0;

    /* atmosphere */
    int n;              /* layers */
    double *p_bar;      /* (N) */
    rt_profile profile;
    double guillot_f;
    int n_nodes;
    double p_nodes[RT_MAX_NODES];
    int mass_fractions; /* 1: log_X are mass fractions; 0: volume mixing ratios */
    int n_species;
    int species[RT_MAX_SPECIES]; /* built-in index, or -1 for a species read from a table */
    char species_name[RT_MAX_SPECIES][SBI_NAME_MAX];
    double species_mass[RT_MAX_SPECIES];              /* [amu] */
    char *species_path[RT_MAX_SPECIES];               /* line table, resolved; NULL for built-in */
    double species_mass_setting[RT_MAX_SPECIES];      /* settings `mass`, 0 when not given */
    sbi_rt_line_table *lines[RT_MAX_SPECIES];         /* NULL for built-in */
    char *species_prt[RT_MAX_SPECIES];                /* petitRADTRANS name when from input_data, else NULL */
    int species_ck[RT_MAX_SPECIES];                   /* 1: correlated-k table from input_data */
    char input_data[SBI_PATH_MAX];                    /* petitRADTRANS input_data directory, "" when unused */
    const sbi_comm *comm;                             /* the creating communicator, during creation only */
    sbi_rt_ck_table *ck[RT_MAX_SPECIES];              /* correlated-k table, or NULL */
    int n_cia;
    rt_cia_pair *cia;                                 /* (n_cia) */
    int rayleigh_h2, rayleigh_he, hminus;

    /* model wavelength grid */
    int w;
    double dlnl;
    double *lambda_um, *nu_cm, *nu_hz; /* (W) */
    double *sig_h2, *sig_he, *ln_haze; /* (W): Rayleigh cross sections [cm^2], ln(lambda / 0.35 um) */
    double *sig_bf, *ff_poly;          /* (W) and (6, W): H- */
    float *mol_tab;                    /* (S, NT, W) built-in cross sections [cm^2 molecule^-1] */
    double t_grid[RT_NT];

    /* emission */
    rt_output output;
    int n_mu;
    double mu[8], w_mu[8];

    /* instrument */
    int n_datasets;
    rt_dataset *ds;

    /* correlated-k: the tables' species in order (the first carries the
     * gray opacity), their shared g-points, and (N, W, G) work arrays */
    int n_ck, n_g, ck_species[RT_MAX_SPECIES];
    double ck_g[SBI_RT_CK_MAX_G], ck_w[SBI_RT_CK_MAX_G];
    float ck_wf[SBI_RT_CK_MAX_G];
    char ck_first[SBI_PATH_MAX];
    const sbi_rt_ck_table *ck_tabs[RT_MAX_SPECIES];
    int ck_product;  /* settings.ck_overlap: product of the species' g-mean transmissions */
    int ck_aee;      /* settings.ck_overlap: adaptive equivalent extinction (neither: resort) */
    sbi_rt_ck_mixer mixer;
    sbi_rt_ck_aee aee;
    float *ck_kappa, *ck_alpha, *ck_tau, *ck_work, *ck_ework;
    double *ck_c;          /* (S) per spectrum */

    /* workspace */
    double *t, *mmw, *r, *row, *sig, *spec, *spec2, *conv; /* */
    float *ework; /* (sbi_rt_emission_work) */
    float *cia_work; /* (max n_nu of the CIA tables) */
    float *kappa, *chord;
    const float **line_rows; /* (N, RT_MAX_SPECIES, 4) each layer's line-table rows */
    float *line_coef;        /* (N, RT_MAX_SPECIES, 4) and their weights */
    const sbi_rt_line_table *line_tabs[RT_MAX_SPECIES];
    int n_lines, lines_summed; /* line tables; all on one (P, T) grid */
    float *lines_work;         /* (sbi_rt_lines_summed_work) */
    int *lines_iwork;          /* (sbi_rt_lines_summed_iwork) */
    /* Line-by-line transmission: the lines and CIA of each wavelength block
     * are made where the chord product uses them (sbi_rt_lbl_opacity); kappa
     * then holds the rest, per layer, or one row for all layers when
     * nothing of it depends on the layer (base_per_layer 0). */
    int lbl_blocks, base_per_layer;
    sbi_rt_lbl_opacity lbl;
    double *cia_scale;         /* (n_cia, N) n_a n_b / rho, 0: none */
    double *rho;             /* (N) [g cm^-3] */
} rt_state;

/* ---- settings ------------------------------------------------------------ */

static int rt_wrap(int err, const char *origin, const char *what);

static int rt_number(const sbi_task *task, const cJSON *item, const char *what, double *v)
{
    SBI_CHECK(cJSON_IsNumber(item) && isfinite(item->valuedouble), SBI_ERR_INPUT,
              "%s: forward_model.settings.%s: expected a finite number", sbi__forward_origin(task), what);
    *v = item->valuedouble;
    return SBI_OK;
}

static int rt_integer(const sbi_task *task, const cJSON *item, const char *what, int lo, int hi, int *v)
{
    double d;
    SBI_CALL(rt_number(task, item, what, &d));
    SBI_CHECK(d == floor(d) && d >= lo && d <= hi, SBI_ERR_INPUT,
              "%s: forward_model.settings.%s: expected an integer from %d to %d, got %.17g", sbi__forward_origin(task),
              what, lo, hi, d);
    *v = (int)d;
    return SBI_OK;
}

static int rt_check_keys(const sbi_task *task, const cJSON *obj, const char *what, const char *const *known,
                         const char *known_text)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        int ok = 0;
        for (int k = 0; known[k]; ++k)
            if (item->string && strcmp(item->string, known[k]) == 0) ok = 1;
        SBI_CHECK(ok, SBI_ERR_INPUT, "%s: forward_model.settings%s%s.%s: unknown key (known: %s)",
                  sbi__forward_origin(task), what[0] ? "." : "", what, item->string ? item->string : "", known_text);
    }
    return SBI_OK;
}

static int rt_add_input(rt_state *s, const char *name, int optional, int has_default, double def, int *index)
{
    rt_input *in;
    SBI_CHECK(s->n_inputs < RT_MAX_INPUTS, SBI_ERR_INPUT, "forward_model: more than %d model inputs",
              RT_MAX_INPUTS);
    in = &s->in[s->n_inputs];
    snprintf(in->name, sizeof in->name, "%s", name);
    in->param = -1;
    in->optional = optional;
    in->set = has_default;
    in->value = def;
    *index = s->n_inputs++;
    return SBI_OK;
}

/* Column `column` (from 0) of a whitespace- or comma-separated text file,
 * `#` starting a comment, resolved against the task file. */
static int rt_read_column(const sbi_task *task, const char *what, const char *file, int column, double **values,
                          int *count)
{
    char resolved[SBI_PATH_MAX];
    char *line = NULL;
    size_t line_cap = 0, cap = 0;
    int n = 0, lineno = 0, err = 0;
    FILE *f;

    sbi_path_resolve(task->path, file, resolved, sizeof resolved);
    f = fopen(resolved, "r");
    SBI_CHECK(f, SBI_ERR_INPUT, "%s: forward_model.settings.%s: cannot open '%s': %s", sbi__forward_origin(task),
              what, resolved, strerror(errno));
    *values = NULL;
    while (!err && getline(&line, &line_cap, f) >= 0) {
        char *hash = strchr(line, '#'), *tok, *save = NULL, *end;
        int field = 0;
        ++lineno;
        if (hash) *hash = '\0';
        for (tok = strtok_r(line, " \t\r\n,", &save); tok; tok = strtok_r(NULL, " \t\r\n,", &save), ++field)
            if (field == column) break;
        if (field == 0 && !tok) continue;
        if (!tok) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s:%d: has %d column(s), column %d requested",
                             sbi__forward_origin(task), what, resolved, lineno, field, column);
            break;
        }
        if ((size_t)n == cap) {
            double *grown = realloc(*values, (cap ? 2 * cap : 64) * sizeof **values);
            if (!grown) {
                err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory reading %s", resolved);
                break;
            }
            *values = grown;
            cap = cap ? 2 * cap : 64;
        }
        (*values)[n] = strtod(tok, &end);
        if (*end || end == tok || !isfinite((*values)[n])) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s:%d: '%s' is not a finite number",
                             sbi__forward_origin(task), what, resolved, lineno, tok);
            break;
        }
        ++n;
    }
    free(line);
    fclose(f);
    *count = n;
    return err;
}

/* A list of numbers or {file, column}: exactly `size` values. */
static int rt_values(const sbi_task *task, const cJSON *node, const char *what, int size, double *out)
{
    const char *origin = sbi__forward_origin(task);
    if (cJSON_IsArray(node)) {
        int i = 0;
        const cJSON *e;
        char sub[160];
        SBI_CHECK(cJSON_GetArraySize(node) == size, SBI_ERR_INPUT,
                  "%s: forward_model.settings.%s: has %d values but the dataset has %d", origin, what,
                  cJSON_GetArraySize(node), size);
        cJSON_ArrayForEach(e, node)
        {
            snprintf(sub, sizeof sub, "%s[%d]", what, i);
            SBI_CALL(rt_number(task, e, sub, &out[i]));
            ++i;
        }
        return SBI_OK;
    }
    if (cJSON_IsObject(node)) {
        const cJSON *jf = cJSON_GetObjectItemCaseSensitive(node, "file");
        const cJSON *jc = cJSON_GetObjectItemCaseSensitive(node, "column");
        double *v = NULL;
        int count = 0, column = 0, err;
        SBI_CHECK(cJSON_IsString(jf), SBI_ERR_INPUT, "%s: forward_model.settings.%s.file: expected a path", origin,
                  what);
        if (jc) SBI_CALL(rt_integer(task, jc, "column", 0, 1000, &column));
        err = rt_read_column(task, what, jf->valuestring, column, &v, &count);
        if (!err && count != size)
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: forward_model.settings.%s: %s has %d values but the dataset has %d", origin, what,
                             jf->valuestring, count, size);
        if (!err) memcpy(out, v, (size_t)size * sizeof *out);
        free(v);
        return err;
    }
    SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings.%s: expected a list of numbers or {file: PATH, column: K}",
              origin, what);
}

static int rt_parse_atmosphere(const sbi_task *task, const cJSON *st, rt_state *s)
{
    static const char *const pkeys[] = {"n_layers", "top", "bottom", NULL};
    static const char *const tkeys[] = {"profile", "nodes", "guillot_f", NULL};
    const char *origin = sbi__forward_origin(task);
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(st, "pressure");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(st, "temperature");
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(st, "abundances");
    double top = 1e-6, bottom = 100.0;

    s->n = 100;
    if (jp) {
        const cJSON *e;
        SBI_CHECK(cJSON_IsObject(jp), SBI_ERR_INPUT,
                  "%s: forward_model.settings.pressure: expected {n_layers, top, bottom}", origin);
        SBI_CALL(rt_check_keys(task, jp, "pressure", pkeys, "n_layers, top, bottom"));
        if ((e = cJSON_GetObjectItemCaseSensitive(jp, "n_layers")))
            SBI_CALL(rt_integer(task, e, "pressure.n_layers", 3, 10000, &s->n));
        if ((e = cJSON_GetObjectItemCaseSensitive(jp, "top"))) SBI_CALL(rt_number(task, e, "pressure.top", &top));
        if ((e = cJSON_GetObjectItemCaseSensitive(jp, "bottom")))
            SBI_CALL(rt_number(task, e, "pressure.bottom", &bottom));
    }
    SBI_CHECK(top > 0 && bottom > top, SBI_ERR_INPUT,
              "%s: forward_model.settings.pressure: need 0 < top < bottom [bar], got top %.9g, bottom %.9g", origin,
              top, bottom);
    SBI_MALLOC(s->p_bar, s->n);
    sbi_rt_pressure_grid(s->n, top, bottom, s->p_bar);

    s->profile = RT_T_ISOTHERMAL;
    s->guillot_f = 0.25;
    if (jt) {
        const cJSON *e;
        SBI_CHECK(cJSON_IsObject(jt), SBI_ERR_INPUT,
                  "%s: forward_model.settings.temperature: expected {profile: isothermal | guillot | free, ...}",
                  origin);
        SBI_CALL(rt_check_keys(task, jt, "temperature", tkeys, "profile, nodes, guillot_f"));
        if ((e = cJSON_GetObjectItemCaseSensitive(jt, "profile"))) {
            const char *v = cJSON_IsString(e) ? e->valuestring : "";
            if (!strcmp(v, "isothermal"))
                s->profile = RT_T_ISOTHERMAL;
            else if (!strcmp(v, "guillot"))
                s->profile = RT_T_GUILLOT;
            else if (!strcmp(v, "free"))
                s->profile = RT_T_FREE;
            else
                SBI_RAISE(SBI_ERR_INPUT,
                          "%s: forward_model.settings.temperature.profile: expected isothermal, guillot or free",
                          origin);
        }
        if ((e = cJSON_GetObjectItemCaseSensitive(jt, "guillot_f")))
            SBI_CALL(rt_number(task, e, "temperature.guillot_f", &s->guillot_f));
        s->n_nodes = 4;
        if ((e = cJSON_GetObjectItemCaseSensitive(jt, "nodes"))) {
            SBI_CHECK(s->profile == RT_T_FREE, SBI_ERR_INPUT,
                      "%s: forward_model.settings.temperature.nodes: only the free profile has nodes", origin);
            SBI_CALL(rt_integer(task, e, "temperature.nodes", 2, RT_MAX_NODES, &s->n_nodes));
        }
        if (s->profile == RT_T_FREE) sbi_rt_pressure_grid(s->n_nodes, top, bottom, s->p_nodes);
    }
    s->mass_fractions = 0;
    if (ja) {
        const char *v = cJSON_IsString(ja) ? ja->valuestring : "";
        if (!strcmp(v, "mass_fraction"))
            s->mass_fractions = 1;
        else
            SBI_CHECK(!strcmp(v, "vmr"), SBI_ERR_INPUT,
                      "%s: forward_model.settings.abundances: expected vmr or mass_fraction", origin);
    }
    return SBI_OK;
}

/* The petitRADTRANS input_data directory, the first time a table is taken
 * from it: settings.input_data (relative to the task file), else pRT's own
 * defaults (sbi_prt_input_data_dir). */
static int rt_input_data(const sbi_task *task, const cJSON *st, rt_state *s)
{
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(st, "input_data");
    char setting[SBI_PATH_MAX] = "";
    int err;
    if (s->input_data[0]) return SBI_OK;
    if (jd) {
        SBI_CHECK(cJSON_IsString(jd) && jd->valuestring[0], SBI_ERR_INPUT,
                  "%s: forward_model.settings.input_data: expected the path of petitRADTRANS' input_data directory",
                  sbi__forward_origin(task));
        sbi_path_resolve(task->path, jd->valuestring, setting, sizeof setting);
    }
    err = sbi_prt_input_data_dir(setting, s->input_data, sizeof s->input_data, NULL);
    if (err) return rt_wrap(err, sbi__forward_origin(task), "input_data");
    return SBI_OK;
}

static int rt_parse_species(const sbi_task *task, const cJSON *st, rt_state *s)
{
    static const char *const ckeys_known = "H2_rayleigh, He_rayleigh, H-";
    const char *origin = sbi__forward_origin(task);
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(st, "species");
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(st, "continuum");
    const cJSON *e;

    if (js) {
        SBI_CHECK(cJSON_IsArray(js), SBI_ERR_INPUT,
                  "%s: forward_model.settings.species: expected a list of species names or {name, opacity}", origin);
        cJSON_ArrayForEach(e, js)
        {
            static const char *const skeys[] = {"name", "opacity", "mass", "prt_name", NULL};
            const char *name = NULL, *opacity = "builtin", *prt_name = NULL;
            char what[48];
            int idx, k = s->n_species;
            snprintf(what, sizeof what, "species[%d]", k);
            SBI_CHECK(k < RT_MAX_SPECIES, SBI_ERR_INPUT, "%s: forward_model.settings.species: more than %d", origin,
                      RT_MAX_SPECIES);
            s->species_mass_setting[k] = 0.0;
            if (cJSON_IsString(e)) {
                name = e->valuestring;
            } else if (cJSON_IsObject(e)) {
                const cJSON *jn = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "opacity");
                const cJSON *jm = cJSON_GetObjectItemCaseSensitive(e, "mass");
                const cJSON *jprt = cJSON_GetObjectItemCaseSensitive(e, "prt_name");
                SBI_CALL(rt_check_keys(task, e, what, skeys, "name, opacity, mass, prt_name"));
                SBI_CHECK(!jprt || (cJSON_IsString(jprt) && jprt->valuestring[0]), SBI_ERR_INPUT,
                          "%s: forward_model.settings.species[%d].prt_name: expected a petitRADTRANS species name",
                          origin, k);
                prt_name = jprt ? jprt->valuestring : NULL;
                name = cJSON_IsString(jn) ? jn->valuestring : NULL;
                SBI_CHECK(!jo || cJSON_IsString(jo), SBI_ERR_INPUT,
                          "%s: forward_model.settings.species[%d].opacity: expected builtin or a table path", origin, k);
                if (jo) opacity = jo->valuestring;
                if (jm) {
                    char mw[64];
                    snprintf(mw, sizeof mw, "species[%d].mass", k);
                    SBI_CALL(rt_number(task, jm, mw, &s->species_mass_setting[k]));
                    SBI_CHECK(s->species_mass_setting[k] > 0, SBI_ERR_INPUT,
                              "%s: forward_model.settings.species[%d].mass: must be positive [amu]", origin, k);
                }
            }
            SBI_CHECK(name && name[0] && strlen(name) < SBI_NAME_MAX - 8, SBI_ERR_INPUT,
                      "%s: forward_model.settings.species[%d]: expected a name or {name, opacity}", origin, k);
            for (int j = 0; j < k; ++j)
                SBI_CHECK(strcmp(s->species_name[j], name) != 0, SBI_ERR_INPUT,
                          "%s: forward_model.settings.species: '%s' is listed twice", origin, name);
            idx = sbi_rt_builtin_index(name);
            SBI_CHECK(!prt_name || !strcmp(opacity, "line_by_line") || !strcmp(opacity, "correlated_k"), SBI_ERR_INPUT,
                      "%s: forward_model.settings.species[%d].prt_name: only with opacity: line_by_line or "
                      "correlated_k (tables from input_data)",
                      origin, k);
            if (!strcmp(opacity, "line_by_line") || !strcmp(opacity, "correlated_k")) {
                /* A table of the petitRADTRANS input_data directory, found by
                 * its pRT name once the tables are read (rt_load_tables). */
                SBI_CALL(rt_input_data(task, st, s));
                s->species[k] = -1;
                s->species_mass[k] = idx >= 0 ? sbi_rt_builtin_mass(idx) : 0.0;
                s->species_ck[k] = !strcmp(opacity, "correlated_k");
                s->species_prt[k] = strdup(prt_name ? prt_name : name);
                SBI_CHECK(s->species_prt[k], SBI_ERR_INTERNAL, "out of memory");
            } else if (!strcmp(opacity, "builtin")) {
                SBI_CHECK(idx >= 0, SBI_ERR_INPUT,
                          "%s: forward_model.settings.species[%d]: no built-in opacity for '%s' (built in: H2O, CO, "
                          "CO2, CH4, NH3, Na, K; give a table with {name, opacity: PATH})",
                          origin, k, name);
                s->species[k] = idx;
                s->species_mass[k] = sbi_rt_builtin_mass(idx);
            } else {
                /* A line table; the file is read once the model grid is known. */
                char resolved[SBI_PATH_MAX];
                sbi_path_resolve(task->path, opacity, resolved, sizeof resolved);
                s->species[k] = -1;
                s->species_mass[k] = idx >= 0 ? sbi_rt_builtin_mass(idx) : 0.0;
                s->species_path[k] = strdup(resolved);
                SBI_CHECK(s->species_path[k], SBI_ERR_INTERNAL, "out of memory");
            }
            if (s->species_mass_setting[k] > 0) s->species_mass[k] = s->species_mass_setting[k];
            snprintf(s->species_name[k], sizeof s->species_name[k], "%s", name);
            s->n_species = k + 1;
        }
    }
    s->rayleigh_h2 = s->rayleigh_he = 1;
    s->hminus = 0;
    if (jc) {
        SBI_CHECK(cJSON_IsArray(jc), SBI_ERR_INPUT, "%s: forward_model.settings.continuum: expected a list of %s",
                  origin, ckeys_known);
        s->rayleigh_h2 = s->rayleigh_he = 0;
        cJSON_ArrayForEach(e, jc)
        {
            const char *v = cJSON_IsString(e) ? e->valuestring : "";
            if (!strcmp(v, "H2_rayleigh"))
                s->rayleigh_h2 = 1;
            else if (!strcmp(v, "He_rayleigh"))
                s->rayleigh_he = 1;
            else if (!strcmp(v, "H-"))
                s->hminus = 1;
            else
                SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings.continuum: unknown entry '%s' (known: %s)", origin,
                          v, ckeys_known);
        }
    }
    return SBI_OK;
}

/* settings.cia: [{pair: A-B, file: PATH}, ...]; each collider is H2, He or
 * a listed species.  The files are read once the model grid is known. */
static int rt_parse_cia(const sbi_task *task, const cJSON *st, rt_state *s)
{
    static const char *const keys[] = {"pair", "file", "prt_name", NULL};
    const char *origin = sbi__forward_origin(task);
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(st, "cia"), *e;
    int n;

    if (!jc) return SBI_OK;
    SBI_CHECK(cJSON_IsArray(jc), SBI_ERR_INPUT, "%s: forward_model.settings.cia: expected a list of {pair: A-B, file: PATH}",
              origin);
    n = cJSON_GetArraySize(jc);
    SBI_CHECK(n <= RT_MAX_CIA, SBI_ERR_INPUT, "%s: forward_model.settings.cia: more than %d tables", origin, RT_MAX_CIA);
    SBI_CALLOC(s->cia, n > 0 ? n : 1);
    cJSON_ArrayForEach(e, jc)
    {
        rt_cia_pair *cp = &s->cia[s->n_cia];
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(e, "pair");
        const cJSON *jf = cJSON_GetObjectItemCaseSensitive(e, "file");
        char what[32], names[2][SBI_NAME_MAX];
        const char *dash;
        snprintf(what, sizeof what, "cia[%d]", s->n_cia);
        SBI_CHECK(cJSON_IsObject(e), SBI_ERR_INPUT, "%s: forward_model.settings.%s: expected {pair: A-B, file: PATH}",
                  origin, what);
        SBI_CALL(rt_check_keys(task, e, what, keys, "pair, file, prt_name"));
        SBI_CHECK(cJSON_IsString(jp) && (dash = strchr(jp->valuestring, '-')) && dash != jp->valuestring &&
                      strlen(jp->valuestring) < sizeof cp->name,
                  SBI_ERR_INPUT, "%s: forward_model.settings.%s.pair: expected two colliders as A-B (H2-H2, H2-He)",
                  origin, what);
        SBI_CHECK(!jf || (cJSON_IsString(jf) && jf->valuestring[0]), SBI_ERR_INPUT,
                  "%s: forward_model.settings.%s.file: expected the path of a CIA table (or no file: the table "
                  "from input_data)",
                  origin, what);
        {
            const cJSON *jprt = cJSON_GetObjectItemCaseSensitive(e, "prt_name");
            SBI_CHECK(!(jf && jprt), SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s: give file (a table) or prt_name (from input_data), not both",
                      origin, what);
            SBI_CHECK(!jprt || (cJSON_IsString(jprt) && jprt->valuestring[0] &&
                                strlen(jprt->valuestring) < sizeof cp->prt_name),
                      SBI_ERR_INPUT, "%s: forward_model.settings.%s.prt_name: expected a petitRADTRANS pair name (H2--He)",
                      origin, what);
            if (!jf) {
                SBI_CALL(rt_input_data(task, st, s));
                if (jprt)
                    snprintf(cp->prt_name, sizeof cp->prt_name, "%s", jprt->valuestring);
                else
                    snprintf(cp->prt_name, sizeof cp->prt_name, "%.*s--%s", (int)(dash - jp->valuestring),
                             jp->valuestring, dash + strspn(dash, "-"));
            }
        }
        snprintf(names[0], sizeof names[0], "%.*s", (int)(dash - jp->valuestring), jp->valuestring);
        while (*dash == '-') ++dash;
        snprintf(names[1], sizeof names[1], "%s", dash);
        for (int m = 0; m < 2; ++m) {
            int found = -1;
            if (!strcmp(names[m], "H2")) {
                cp->collider[m] = RT_COLLIDER_H2;
                continue;
            }
            if (!strcmp(names[m], "He")) {
                cp->collider[m] = RT_COLLIDER_HE;
                continue;
            }
            for (int k = 0; k < s->n_species; ++k)
                if (!strcmp(s->species_name[k], names[m])) found = k;
            SBI_CHECK(found >= 0, SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s.pair: collider '%s' is neither H2, He nor a listed species", origin,
                      what, names[m]);
            cp->collider[m] = found;
        }
        snprintf(cp->name, sizeof cp->name, "%s-%s", names[0], names[1]);
        for (int c = 0; c < s->n_cia; ++c)
            SBI_CHECK(strcmp(s->cia[c].name, cp->name) != 0, SBI_ERR_INPUT,
                      "%s: forward_model.settings.cia: pair %s is listed twice", origin, cp->name);
        if (jf) sbi_path_resolve(task->path, jf->valuestring, cp->path, sizeof cp->path);
        ++s->n_cia;
    }
    return SBI_OK;
}

/* Re-raise the recorded error with the settings entry it came from in front. */
static int rt_wrap(int err, const char *origin, const char *what)
{
    char inner[2048];
    if (err & SBI_ERR_REMOTE) return sbi__trace(err, __FILE__, __LINE__, __func__);
    snprintf(inner, sizeof inner, "%s", sbi_error_message());
    sbi_error_clear();
    return sbi__raise(err, __FILE__, __LINE__, __func__, "%s: forward_model.settings.%s: %s", origin, what, inner);
}

/* Read species k's line table and resample it onto the model grid: each
 * (P, T) row is read over the wavenumbers the model reaches (plus one point
 * each side) and interpolated linearly in wavenumber at the model points,
 * the point sampling petitRADTRANS applies to its line-by-line tables
 * (`lbl_opacity_sampling`); model wavelengths the table does not cover get
 * zero.  Rank 0 of the creating communicator reads and resamples, the
 * others receive the resampled table (sbi_line_table_sample_on). */
static int rt_load_line_table(rt_state *s, int k)
{
    sbi_line_sampled smp;
    sbi_rt_line_table *tab;
    int err;

    SBI_CALL(sbi_line_table_sample_on(s->comm, s->species_path[k], SBI_LINE_AUTO, s->w, s->nu_cm, &smp));
    if (s->species_mass_setting[k] > 0)
        s->species_mass[k] = s->species_mass_setting[k];
    else if (smp.mol_mass > 0)
        s->species_mass[k] = smp.mol_mass;
    if (!(s->species_mass[k] > 0)) {
        sbi_line_sampled_free(&smp);
        SBI_RAISE(SBI_ERR_INPUT, "%s: no dataset 'mol_mass' and '%s' is not built in: give {mass: AMU}",
                  s->species_path[k], s->species_name[k]);
    }
    tab = calloc(1, sizeof *tab);
    err = tab ? 0 : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    s->lines[k] = tab;
    if (!err)
        err = sbi_rt_line_table_init(smp.format == SBI_LINE_TAUREX ? SBI_RT_PT_TAUREX : SBI_RT_PT_PRT, smp.n_p, smp.p,
                                     smp.n_t, smp.t, s->w, tab);
    if (!err) {
        /* Take the resampled rows over instead of copying them. */
        free(tab->sigma);
        tab->sigma = smp.sigma;
        smp.sigma = NULL;
    }
    sbi_line_sampled_free(&smp);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    return SBI_OK;
}

/* Model bins per block of the blocked opacity loops (correlated-k: the
 * (N, block, G) k-values of all species stay in cache; line-by-line: the
 * table rows of a block do). */
#define RT_CK_BLOCK 32
/* Model bins per chunk of the correlated-k transmission (product, aee):
 * the chunk's (N, chunk, G) optical depths stay in cache through its chord
 * product. */
#define RT_CK_CHUNK 128
#define RT_LBL_BLOCK 1024
/* Line-by-line transmission: the block's alpha, optical depths (N, block)
 * and summed table rows stay in L2. */
#define RT_TRANSIT_BLOCK 256

/* Read species k's correlated-k table and rebin each (P, T) row onto the
 * model bins (sbi_rt_ck_rebin): rank 0 of s->comm reads and every rank gets
 * the same table (sbi_ck_table_rebin_on).  Every table must share the first
 * one's g-points and weights, since the species are combined on one g-grid. */
static int rt_load_ck_table(rt_state *s, int k)
{
    sbi_ck_rebinned rb;
    sbi_rt_ck_table *tab;
    double *nu_lo = NULL, *nu_hi = NULL;
    int err = 0;

    nu_lo = malloc((size_t)s->w * sizeof *nu_lo);
    nu_hi = malloc((size_t)s->w * sizeof *nu_hi);
    if (!nu_lo || !nu_hi) err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    if (!err) sbi_rt_ck_model_bins(s->w, s->lambda_um, nu_lo, nu_hi);
    /* Collective: every rank calls it (an allocation failure above only
     * happens with the machine out of memory, where the job aborts). */
    if (!err) err = sbi_ck_table_rebin_on(s->comm, s->species_path[k], s->w, nu_lo, nu_hi, &rb);
    free(nu_lo);
    free(nu_hi);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    if (s->species_mass_setting[k] > 0)
        s->species_mass[k] = s->species_mass_setting[k];
    else if (rb.mol_mass > 0)
        s->species_mass[k] = rb.mol_mass;
    if (!(s->species_mass[k] > 0))
        err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                         "%s: no dataset 'mol_mass' and '%s' is not built in: give {mass: AMU}", s->species_path[k],
                         s->species_name[k]);
    if (!err && s->n_ck == 0) {
        s->n_g = rb.n_g;
        for (int q = 0; q < rb.n_g; ++q) {
            s->ck_g[q] = rb.g[q];
            s->ck_w[q] = rb.weights[q];
            s->ck_wf[q] = (float)rb.weights[q];
        }
        snprintf(s->ck_first, sizeof s->ck_first, "%s", s->species_path[k]);
    } else if (!err) {
        int same = rb.n_g == s->n_g;
        for (int q = 0; same && q < rb.n_g; ++q)
            same = fabs(rb.g[q] - s->ck_g[q]) <= 1e-6 && fabs(rb.weights[q] - s->ck_w[q]) <= 1e-6;
        if (!same)
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                             "%s: datasets 'samples' and 'weights': %d g-points that differ from the %d of %s; "
                             "correlated-k species are combined on one g-grid",
                             s->species_path[k], rb.n_g, s->n_g, s->ck_first);
    }
    if (!err && !(tab = calloc(1, sizeof *tab)))
        err = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    if (err) {
        sbi_ck_rebinned_free(&rb);
        return err;
    }
    /* The table takes over the rebinned arrays. */
    tab->n_p = rb.n_p;
    tab->n_t = rb.n_t;
    tab->w = rb.w;
    tab->n_g = rb.n_g;
    tab->p = rb.p;
    tab->t = rb.t;
    tab->k = rb.k;
    s->ck[k] = tab;
    s->ck_tabs[s->n_ck] = tab;
    s->ck_species[s->n_ck++] = k;
    return SBI_OK;
}

static int rt_load_cia(rt_state *s, rt_cia_pair *cp)
{
    sbi_cia_table tab;
    int err;
    SBI_CALL(sbi_cia_table_read_on(s->comm, cp->path, SBI_CIA_AUTO, &tab));
    if (tab.species[0][0] && tab.species[1][0]) {
        const char *a = cp->name, *dash = strchr(a, '-');
        char n0[SBI_NAME_MAX], n1[SBI_NAME_MAX];
        snprintf(n0, sizeof n0, "%.*s", (int)(dash - a), a);
        snprintf(n1, sizeof n1, "%s", dash + 1);
        if (!((!strcmp(n0, tab.species[0]) && !strcmp(n1, tab.species[1])) ||
              (!strcmp(n0, tab.species[1]) && !strcmp(n1, tab.species[0])))) {
            err = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__, "%s: a %s table of %s-%s, not %s", cp->path,
                             sbi_cia_format_name(tab.format), tab.species[0], tab.species[1], cp->name);
            sbi_cia_table_free(&tab);
            return err;
        }
    }
    for (int m = 0; m < 2; ++m)
        cp->mass[m] = cp->collider[m] == RT_COLLIDER_H2   ? SBI_RT_MASS_H2
                      : cp->collider[m] == RT_COLLIDER_HE ? SBI_RT_MASS_HE
                                                          : s->species_mass[cp->collider[m]];
    err = sbi_rt_cia_setup(tab.n_t, tab.t, tab.n_nu, tab.nu, tab.alpha, s->w, s->lambda_um, &cp->tab);
    sbi_cia_table_free(&tab);
    SBI_CALL(err);
    return SBI_OK;
}

/* Species k's table in the petitRADTRANS input_data directory: its
 * line-by-line or correlated-k table, as the species' `opacity` asks. */
static int rt_find_prt_table(rt_state *s, int k)
{
    char path[SBI_PATH_MAX];
    const sbi_prt_category cat = s->species_ck[k] ? SBI_PRT_CORRELATED_K : SBI_PRT_LINE_BY_LINE;
    SBI_CALL(sbi_prt_find_table_on(s->comm, s->input_data, cat, s->species_prt[k], path, sizeof path));
    s->species_path[k] = strdup(path);
    SBI_CHECK(s->species_path[k], SBI_ERR_INTERNAL, "out of memory");
    return SBI_OK;
}

/* Line tables and CIA tables, on the model grid.  Collective over s->comm
 * when it is set: every rank calls the readers in the same order. */
static int rt_load_tables(const sbi_task *task, rt_state *s)
{
    const char *origin = sbi__forward_origin(task);
    int max_nu = 1, err;
    char what[2 * SBI_NAME_MAX + 32];
    for (int k = 0; k < s->n_species; ++k) {
        if (s->species[k] >= 0) continue;
        snprintf(what, sizeof what, "species[%d] (%s)", k, s->species_name[k]);
        err = s->species_prt[k] ? rt_find_prt_table(s, k) : 0;
        if (!err)
            err = sbi_opacity_file_is_ck_on(s->comm, s->species_path[k]) ? rt_load_ck_table(s, k)
                                                                          : rt_load_line_table(s, k);
        if (err) return rt_wrap(err, origin, what);
    }
    for (int c = 0; c < s->n_cia; ++c) {
        snprintf(what, sizeof what, "cia[%d] (%s)", c, s->cia[c].name);
        err = s->cia[c].prt_name[0] ? sbi_prt_find_table_on(s->comm, s->input_data, SBI_PRT_CIA, s->cia[c].prt_name,
                                                             s->cia[c].path, sizeof s->cia[c].path)
                                    : 0;
        if (!err) err = rt_load_cia(s, &s->cia[c]);
        if (err) return rt_wrap(err, origin, what);
        if (s->cia[c].tab.n_nu > max_nu) max_nu = s->cia[c].tab.n_nu;
    }
    for (int k = 0; s->n_ck && k < s->n_species; ++k)
        SBI_CHECK(!s->lines[k], SBI_ERR_INPUT,
                  "%s: forward_model.settings.species[%d] (%s): a line-by-line table cannot be combined with "
                  "correlated-k tables (species[%d] (%s)); give every species tables of one kind",
                  origin, k, s->species_name[k], s->ck_species[0], s->species_name[s->ck_species[0]]);
    if (s->n_ck && s->ck_aee)
        SBI_CALL(sbi_rt_ck_aee_init(s->n_ck, s->ck_tabs, s->ck_w, &s->aee));
    else if (s->n_ck)
        SBI_CALL(sbi_rt_ck_mixer_init(s->n_g, s->ck_g, s->ck_w, &s->mixer));
    if (s->n_cia) {
        SBI_MALLOC(s->cia_work, max_nu);
    }
    return SBI_OK;
}

/* The model inputs this configuration reads, in a fixed order. */
static int rt_declare_inputs(rt_state *s)
{
    char name[SBI_NAME_MAX + 8]; /* "log_X_" and a species name */
    int dummy;
    s->i_r_star = s->i_t_star = s->i_distance = -1;
    s->i_t_iso = s->i_t_int = s->i_t_eq = s->i_log_kappa_ir = s->i_log_gamma = s->i_t_node0 = -1;
    s->i_x_hm = s->i_x_e = s->i_x_h = -1;
    SBI_CALL(rt_add_input(s, "R_pl", 0, 0, 0, &s->i_r_pl));
    SBI_CALL(rt_add_input(s, "log_g", 0, 0, 0, &s->i_log_g));
    SBI_CALL(rt_add_input(s, "P_ref", 0, 1, 0.01, &s->i_p_ref));
    if (s->mode == RT_TRANSMISSION || s->output == RT_OUT_CONTRAST)
        SBI_CALL(rt_add_input(s, "R_star", 0, 0, 0, &s->i_r_star));
    if (s->mode == RT_EMISSION && s->output == RT_OUT_CONTRAST) SBI_CALL(rt_add_input(s, "T_star", 0, 0, 0, &s->i_t_star));
    if (s->mode == RT_EMISSION && s->output == RT_OUT_FLUX) SBI_CALL(rt_add_input(s, "distance", 0, 0, 0, &s->i_distance));
    if (s->profile == RT_T_ISOTHERMAL) SBI_CALL(rt_add_input(s, "T_iso", 0, 0, 0, &s->i_t_iso));
    if (s->profile == RT_T_GUILLOT) {
        SBI_CALL(rt_add_input(s, "T_int", 0, 0, 0, &s->i_t_int));
        SBI_CALL(rt_add_input(s, "T_eq", 0, 0, 0, &s->i_t_eq));
        SBI_CALL(rt_add_input(s, "log_kappa_IR", 0, 0, 0, &s->i_log_kappa_ir));
        SBI_CALL(rt_add_input(s, "log_gamma", 0, 0, 0, &s->i_log_gamma));
    }
    if (s->profile == RT_T_FREE)
        for (int k = 0; k < s->n_nodes; ++k) {
            snprintf(name, sizeof name, "T_%d", k);
            SBI_CALL(rt_add_input(s, name, 0, 0, 0, k == 0 ? &s->i_t_node0 : &dummy));
        }
    SBI_CALL(rt_add_input(s, "log_P_cloud", 1, 0, 0, &s->i_log_p_cloud));
    SBI_CALL(rt_add_input(s, "log_kappa_haze", 1, 0, 0, &s->i_log_kappa_haze));
    SBI_CALL(rt_add_input(s, "gamma_haze", 0, 1, -4.0, &s->i_gamma_haze));
    SBI_CALL(rt_add_input(s, "haze_factor", 0, 1, 1.0, &s->i_haze_factor));
    SBI_CALL(rt_add_input(s, "cloud_fraction", 0, 1, 1.0, &s->i_cloud_fraction));
    if (s->hminus) {
        SBI_CALL(rt_add_input(s, "log_X_Hminus", 0, 0, 0, &s->i_x_hm));
        SBI_CALL(rt_add_input(s, "log_X_e", 0, 0, 0, &s->i_x_e));
        SBI_CALL(rt_add_input(s, "log_X_H", 0, 0, 0, &s->i_x_h));
    }
    for (int k = 0; k < s->n_species; ++k) {
        snprintf(name, sizeof name, "log_X_%s", s->species_name[k]);
        SBI_CALL(rt_add_input(s, name, 0, 0, 0, k == 0 ? &s->i_x0 : &dummy));
    }
    return SBI_OK;
}

/* Bind task parameters and settings.fixed to the declared inputs. */
static int rt_bind_inputs(const sbi_task *task, const cJSON *st, rt_state *s)
{
    const char *origin = sbi__forward_origin(task);
    const cJSON *jf = cJSON_GetObjectItemCaseSensitive(st, "fixed"), *e;

    if (jf) {
        SBI_CHECK(cJSON_IsObject(jf), SBI_ERR_INPUT, "%s: forward_model.settings.fixed: expected {input: value, ...}",
                  origin);
        cJSON_ArrayForEach(e, jf)
        {
            int found = -1;
            char what[SBI_NAME_MAX + 16];
            for (int k = 0; k < s->n_inputs; ++k)
                if (e->string && !strcmp(e->string, s->in[k].name)) found = k;
            SBI_CHECK(found >= 0, SBI_ERR_INPUT,
                      "%s: forward_model.settings.fixed.%s: this %s model has no input of that name", origin,
                      e->string ? e->string : "", s->mode == RT_TRANSMISSION ? "transmission" : "emission");
            snprintf(what, sizeof what, "fixed.%s", e->string);
            SBI_CALL(rt_number(task, e, what, &s->in[found].value));
            s->in[found].set = 1;
        }
    }
    for (int j = 0; j < task->n_params; ++j) {
        int found = -1;
        for (int k = 0; k < s->n_inputs; ++k)
            if (!strcmp(task->params[j].name, s->in[k].name)) found = k;
        SBI_CHECK(found >= 0, SBI_ERR_INPUT,
                  "%s: parameters: '%s' is not an input of this %s model (check the species, temperature profile "
                  "and output in forward_model.settings)",
                  origin, task->params[j].name, s->mode == RT_TRANSMISSION ? "transmission" : "emission");
        SBI_CHECK(!(jf && cJSON_GetObjectItemCaseSensitive(jf, task->params[j].name)), SBI_ERR_INPUT,
                  "%s: forward_model.settings.fixed.%s: also a task parameter; give it one way", origin,
                  task->params[j].name);
        s->in[found].param = j;
        s->in[found].set = 1;
    }
    for (int k = 0; k < s->n_inputs; ++k)
        SBI_CHECK(s->in[k].set || s->in[k].optional, SBI_ERR_INPUT,
                  "%s: forward_model: model input '%s' has no task parameter and no value in "
                  "forward_model.settings.fixed",
                  origin, s->in[k].name);
    return SBI_OK;
}

/* ---- wavelength grid, tables and datasets ------------------------------ */

static int rt_parse_datasets(const sbi_task *task, const cJSON *st, rt_state *s, double **lo, double **hi)
{
    const char *origin = sbi__forward_origin(task);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(st, "datasets"), *e;
    int64_t total = 0;

    if (jd) {
        SBI_CHECK(cJSON_IsObject(jd), SBI_ERR_INPUT,
                  "%s: forward_model.settings.datasets: expected {DATASET: {bin_widths, resolution, bands, weighting}}", origin);
        cJSON_ArrayForEach(e, jd)
        SBI_CHECK(e->string && sbi_task_dataset_index(task, e->string) >= 0, SBI_ERR_INPUT,
                  "%s: forward_model.settings.datasets.%s: the task has no dataset of that name", origin,
                  e->string ? e->string : "");
    }
    s->n_datasets = task->n_datasets;
    SBI_CALLOC(s->ds, s->n_datasets);
    for (int k = 0; k < task->n_datasets; ++k) total += task->datasets[k].size;
    SBI_MALLOC(*lo, total > 0 ? total : 1);
    SBI_MALLOC(*hi, total > 0 ? total : 1);
    for (int k = 0; k < task->n_datasets; ++k) {
        const sbi_dataset *d = &task->datasets[k];
        const cJSON *jds = jd ? cJSON_GetObjectItemCaseSensitive(jd, d->name) : NULL;
        const cJSON *jw = jds ? cJSON_GetObjectItemCaseSensitive(jds, "bin_widths") : NULL;
        const cJSON *jr = jds ? cJSON_GetObjectItemCaseSensitive(jds, "resolution") : NULL;
        const cJSON *jb = jds ? cJSON_GetObjectItemCaseSensitive(jds, "bands") : NULL;
        const cJSON *jwt = jds ? cJSON_GetObjectItemCaseSensitive(jds, "weighting") : NULL;
        double *l = *lo + d->offset, *h = *hi + d->offset;
        char what[SBI_NAME_MAX + 40];
        static const char *const dkeys[] = {"bin_widths", "resolution", "bands", "weighting", NULL};

        s->ds[k].size = d->size;
        s->ds[k].offset = d->offset;
        if (jds) {
            snprintf(what, sizeof what, "datasets.%s", d->name);
            SBI_CHECK(cJSON_IsObject(jds), SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s: expected {bin_widths, resolution} or {bands, weighting}", origin,
                      what);
            SBI_CALL(rt_check_keys(task, jds, what, dkeys, "bin_widths, resolution, bands, weighting"));
            SBI_CHECK(!(jb && jw), SBI_ERR_INPUT,
                      "%s: forward_model.settings.%s: give bands (photometry) or bin_widths (spectrum), not both",
                      origin, what);
        }
        if (jb || jwt) {
            /* Photometry: each point averages the spectrum over its band. */
            SBI_CALL(sbi__rt_bands_parse(task, jb, jwt, what, d->size, s->mode == RT_EMISSION, &s->ds[k].bands));
            for (int i = 0; i < d->size; ++i) {
                l[i] = s->ds[k].bands.band[i].lo;
                h[i] = s->ds[k].bands.band[i].hi;
            }
            if (jr) {
                snprintf(what, sizeof what, "datasets.%s.resolution", d->name);
                SBI_CALL(rt_number(task, jr, what, &s->ds[k].resolution));
                SBI_CHECK(s->ds[k].resolution > 0, SBI_ERR_INPUT, "%s: forward_model.settings.%s: must be positive",
                          origin, what);
            }
            continue;
        }
        SBI_CHECK(d->coordinates, SBI_ERR_INPUT,
                  "%s: datasets[%d] (%s): the %s family needs coordinates (bin-centre wavelengths in um)", origin, k,
                  d->name, task->family);
        for (int i = 0; i < d->size; ++i) {
            SBI_CHECK(d->coordinates[i] > 0 && (i == 0 || d->coordinates[i] > d->coordinates[i - 1]), SBI_ERR_INPUT,
                      "%s: datasets[%d] (%s).coordinates: wavelengths must be positive and increasing (value %d)",
                      origin, k, d->name, i);
        }
        if (jw) {
            snprintf(what, sizeof what, "datasets.%s.bin_widths", d->name);
            SBI_CALL(rt_values(task, jw, what, d->size, h));
            for (int i = 0; i < d->size; ++i) {
                SBI_CHECK(h[i] > 0, SBI_ERR_INPUT, "%s: forward_model.settings.%s[%d]: must be positive", origin, what, i);
                l[i] = d->coordinates[i] - 0.5 * h[i];
                h[i] = d->coordinates[i] + 0.5 * h[i];
            }
        } else {
            /* Widths from the neighbouring centres: the smaller of the two
             * spacings, so that a gap in the coverage does not make a wide bin. */
            SBI_CHECK(d->size >= 2, SBI_ERR_INPUT,
                      "%s: forward_model.settings.datasets.%s.bin_widths: needed for a dataset of one point", origin,
                      d->name);
            for (int i = 0; i < d->size; ++i) {
                const double left = i > 0 ? d->coordinates[i] - d->coordinates[i - 1] : INFINITY;
                const double right = i + 1 < d->size ? d->coordinates[i + 1] - d->coordinates[i] : INFINITY;
                const double wdt = fmin(left, right);
                l[i] = d->coordinates[i] - 0.5 * wdt;
                h[i] = d->coordinates[i] + 0.5 * wdt;
            }
        }
        if (jr) {
            snprintf(what, sizeof what, "datasets.%s.resolution", d->name);
            SBI_CALL(rt_number(task, jr, what, &s->ds[k].resolution));
            SBI_CHECK(s->ds[k].resolution > 0, SBI_ERR_INPUT, "%s: forward_model.settings.%s: must be positive", origin,
                      what);
        }
        SBI_CHECK(l[0] > 0, SBI_ERR_INPUT, "%s: datasets[%d] (%s): the first bin reaches below zero wavelength", origin, k,
                  d->name);
    }
    return SBI_OK;
}

static int rt_build_grid(const sbi_task *task, const cJSON *st, rt_state *s, const double *lo, const double *hi)
{
    const char *origin = sbi__forward_origin(task);
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(st, "model_resolution");
    double lmin = INFINITY, lmax = 0, res = 400.0;
    int64_t total = 0;

    for (int k = 0; k < s->n_datasets; ++k) total += s->ds[k].size;
    for (int64_t i = 0; i < total; ++i) {
        lmin = fmin(lmin, lo[i]);
        lmax = fmax(lmax, hi[i]);
    }
    SBI_CHECK(total > 0, SBI_ERR_INPUT, "%s: datasets: the %s family needs at least one wavelength", origin,
              task->family);
    if (jr) SBI_CALL(rt_number(task, jr, "model_resolution", &res));
    SBI_CHECK(res >= 1 && res <= 1e6, SBI_ERR_INPUT, "%s: forward_model.settings.model_resolution: expected 1 to 1e6",
              origin);
    /* The model grid reaches 5% beyond the data on both sides, as pRT's
     * retrievals set wavelength_boundaries = [0.95 lambda_min, 1.05 lambda_max]. */
    lmin *= 0.95;
    lmax *= 1.05;
    {
        const double span = log(lmax / lmin);
        const double wd = ceil(span * res) + 1.0;
        SBI_CHECK(wd <= 2e6, SBI_ERR_INPUT,
                  "%s: forward_model.settings.model_resolution: %.9g over %.9g-%.9g um needs %.0f model wavelengths "
                  "(at most 2e6)",
                  origin, res, lmin, lmax, wd);
        s->w = (int)wd;
        s->dlnl = span / (s->w - 1);
    }
    SBI_MALLOC(s->lambda_um, s->w);
    SBI_MALLOC(s->nu_cm, s->w);
    SBI_MALLOC(s->nu_hz, s->w);
    for (int l = 0; l < s->w; ++l) {
        s->lambda_um[l] = lmin * exp(s->dlnl * l);
        s->nu_cm[l] = 1e4 / s->lambda_um[l];
        s->nu_hz[l] = SBI_RT_C * s->nu_cm[l];
    }
    s->lambda_um[s->w - 1] = lmax;
    return SBI_OK;
}

static int rt_build_tables(rt_state *s)
{
    const int w = s->w;
    SBI_MALLOC(s->sig_h2, w);
    SBI_MALLOC(s->sig_he, w);
    SBI_MALLOC(s->ln_haze, w);
    for (int l = 0; l < w; ++l) {
        s->sig_h2[l] = sbi_rt_sigma_rayleigh_h2(s->lambda_um[l]);
        s->sig_he[l] = sbi_rt_sigma_rayleigh_he(s->lambda_um[l]);
        s->ln_haze[l] = log(s->lambda_um[l] / 0.35);
    }
    if (s->hminus) {
        /* k_ff = 1e-29 sum_n theta^((n+1)/2) poly_n(lambda): the six
         * polynomials in lambda are tabulated once per model wavelength. */
        SBI_MALLOC(s->sig_bf, w);
        SBI_MALLOC(s->ff_poly, 6 * (size_t)w);
        for (int l = 0; l < w; ++l) {
            double poly[6];
            s->sig_bf[l] = sbi_rt_sigma_hminus_bf(s->lambda_um[l]);
            sbi_rt_hminus_ff_poly(s->lambda_um[l], poly);
            for (int c = 0; c < 6; ++c) s->ff_poly[(size_t)c * w + l] = poly[c];
        }
    }
    for (int q = 0; q < RT_NT; ++q) s->t_grid[q] = RT_T_MIN * pow(RT_T_MAX / RT_T_MIN, (double)q / (RT_NT - 1));
    if (s->n_species) {
        double *tmp;
        SBI_MALLOC(s->mol_tab, (size_t)s->n_species * RT_NT * (size_t)w);
        SBI_MALLOC(tmp, w);
        for (int k = 0; k < s->n_species; ++k) {
            if (s->species[k] < 0 || sbi_rt_builtin_pressure_dependent(s->species[k])) continue;
            for (int q = 0; q < RT_NT; ++q) {
                float *dst = s->mol_tab + ((size_t)k * RT_NT + (size_t)q) * (size_t)w;
                sbi_rt_builtin_sigma(s->species[k], s->t_grid[q], 1.0, w, s->nu_cm, tmp);
                for (int l = 0; l < w; ++l) dst[l] = (float)tmp[l];
            }
        }
        free(tmp);
    }
    return SBI_OK;
}

static void rt_destroy(void *state)
{
    rt_state *s = state;
    if (!s) return;
    for (int k = 0; k < s->n_datasets && s->ds; ++k) {
        sbi_rt_binning_destroy(&s->ds[k].bin);
        sbi__rt_bands_free(&s->ds[k].bands);
    }
    free(s->ds);
    free(s->p_bar);
    free(s->lambda_um);
    free(s->nu_cm);
    free(s->nu_hz);
    free(s->sig_h2);
    free(s->sig_he);
    free(s->ln_haze);
    free(s->sig_bf);
    free(s->ff_poly);
    free(s->mol_tab);
    for (int k = 0; k < s->n_species; ++k) {
        free(s->species_path[k]);
        free(s->species_prt[k]);
        if (s->lines[k]) sbi_rt_line_table_free(s->lines[k]);
        free(s->lines[k]);
        if (s->ck[k]) sbi_rt_ck_table_free(s->ck[k]);
        free(s->ck[k]);
    }
    for (int c = 0; c < s->n_cia && s->cia; ++c) sbi_rt_cia_free(&s->cia[c].tab);
    free(s->cia);
    free(s->cia_work);
    free(s->t);
    free(s->mmw);
    free(s->r);
    free(s->row);
    free(s->sig);
    free(s->spec);
    free(s->spec2);
    free(s->conv);
    free(s->ework);
    free(s->kappa);
    free(s->chord);
    free(s->line_rows);
    free(s->line_coef);
    free(s->lines_work);
    free(s->lines_iwork);
    sbi_rt_lbl_opacity_free(&s->lbl);
    free(s->cia_scale);
    free(s->rho);
    sbi_rt_ck_mixer_free(&s->mixer);
    sbi_rt_ck_aee_free(&s->aee);
    free(s->ck_kappa);
    free(s->ck_alpha);
    free(s->ck_tau);
    free(s->ck_work);
    free(s->ck_ework);
    free(s->ck_c);
    free(s);
}

static int rt_parse(const sbi_task *task, rt_state *s)
{
    static const char *const keys[] = {"pressure", "temperature", "abundances", "species", "continuum", "cia",
                                       "model_resolution", "fixed", "datasets", "output", "n_angles",
                                       "input_data", "ck_overlap", NULL};
    const char *origin = sbi__forward_origin(task);
    const cJSON *st = task->forward_settings, *e;
    double *lo = NULL, *hi = NULL;
    int err;

    SBI_CHECK(cJSON_IsObject(st), SBI_ERR_INPUT, "%s: forward_model.settings: expected a mapping", origin);
    SBI_CALL(rt_check_keys(task, st, "", keys,
                           "pressure, temperature, abundances, species, continuum, cia, model_resolution, fixed, "
                           "datasets, output, n_angles, input_data, ck_overlap"));
    /* pRT's own treatment without scattering, and the fastest that keeps
     * each species' k-distribution, unless told otherwise. */
    s->ck_product = 1;
    if ((e = cJSON_GetObjectItemCaseSensitive(st, "ck_overlap"))) {
        const char *v = cJSON_IsString(e) ? e->valuestring : "";
        SBI_CHECK(cJSON_IsString(e), SBI_ERR_INPUT,
                  "%s: forward_model.settings.ck_overlap: expected a string, one of resort, product or aee", origin);
        s->ck_product = !strcmp(v, "product");
        s->ck_aee = !strcmp(v, "aee");
        SBI_CHECK(s->ck_product || s->ck_aee || !strcmp(v, "resort"), SBI_ERR_INPUT,
                  "%s: forward_model.settings.ck_overlap: '%s': expected resort, product or aee", origin, v);
    }
    s->n_params = task->n_params;
    s->output = RT_OUT_FLUX;
    if ((e = cJSON_GetObjectItemCaseSensitive(st, "output"))) {
        const char *v = cJSON_IsString(e) ? e->valuestring : "";
        SBI_CHECK(s->mode == RT_EMISSION, SBI_ERR_INPUT,
                  "%s: forward_model.settings.output: only the emission family has a choice of output", origin);
        if (!strcmp(v, "contrast"))
            s->output = RT_OUT_CONTRAST;
        else
            SBI_CHECK(!strcmp(v, "flux"), SBI_ERR_INPUT, "%s: forward_model.settings.output: expected flux or contrast",
                      origin);
    }
    s->n_mu = 3;
    if ((e = cJSON_GetObjectItemCaseSensitive(st, "n_angles"))) {
        SBI_CHECK(s->mode == RT_EMISSION, SBI_ERR_INPUT,
                  "%s: forward_model.settings.n_angles: only the emission family integrates over angles", origin);
        SBI_CALL(rt_integer(task, e, "n_angles", 1, 8, &s->n_mu));
    }
    SBI_CALL(sbi_rt_gauss_legendre01(s->n_mu, s->mu, s->w_mu));
    SBI_CALL(rt_parse_atmosphere(task, st, s));
    SBI_CALL(rt_parse_species(task, st, s));
    SBI_CALL(rt_parse_cia(task, st, s));
    SBI_CALL(rt_declare_inputs(s));
    SBI_CALL(rt_bind_inputs(task, st, s));

    err = rt_parse_datasets(task, st, s, &lo, &hi);
    if (!err) err = rt_build_grid(task, st, s, lo, hi);
    for (int k = 0; !err && k < s->n_datasets; ++k) {
        if (s->ds[k].bands.n)
            err = sbi_rt_band_weights(s->w, s->lambda_um, s->ds[k].size, s->ds[k].bands.band, s->ds[k].bands.photon,
                                      &s->ds[k].bin);
        else
            err = sbi_rt_binning_create(s->w, s->lambda_um, s->ds[k].size, lo + s->ds[k].offset,
                                        hi + s->ds[k].offset, &s->ds[k].bin);
        if (err) err = sbi__raise(err, __FILE__, __LINE__, __func__, "%s: datasets[%d] (%s): %s", origin, k,
                                  task->datasets[k].name, sbi_error_message());
    }
    free(lo);
    free(hi);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    s->n_outputs = 0;
    for (int k = 0; k < s->n_datasets; ++k) s->n_outputs += s->ds[k].size;
    SBI_CALL(rt_build_tables(s));
    SBI_CALL(rt_load_tables(task, s));

    SBI_MALLOC(s->t, s->n);
    SBI_MALLOC(s->mmw, s->n);
    SBI_MALLOC(s->r, s->n);
    SBI_MALLOC(s->row, s->w);
    SBI_MALLOC(s->sig, s->w);
    SBI_MALLOC(s->spec, s->w);
    SBI_MALLOC(s->spec2, s->w);
    SBI_MALLOC(s->conv, s->w);
    SBI_MALLOC(s->kappa, (size_t)s->n * (size_t)s->w);
    SBI_MALLOC(s->chord, (size_t)s->n * (size_t)s->n);
    SBI_MALLOC(s->line_rows, (size_t)s->n * RT_MAX_SPECIES * 4);
    SBI_MALLOC(s->line_coef, (size_t)s->n * RT_MAX_SPECIES * 4);
    SBI_MALLOC(s->rho, s->n);
    /* Line tables on one (P, T) grid are summed over the species on the
     * rows the layers use before the interpolation (rt_opacity). */
    for (int k = 0; k < s->n_species; ++k)
        if (s->lines[k]) s->line_tabs[s->n_lines++] = s->lines[k];
    s->lines_summed = s->n_lines > 1;
    for (int j = 1; j < s->n_lines; ++j)
        if (!sbi_rt_line_tables_same_grid(s->line_tabs[0], s->line_tabs[j])) s->lines_summed = 0;
    if (s->lines_summed) {
        SBI_MALLOC(s->lines_work, sbi_rt_lines_summed_work(s->line_tabs[0], s->n, RT_LBL_BLOCK));
        SBI_MALLOC(s->lines_iwork, sbi_rt_lines_summed_iwork(s->line_tabs[0], s->n));
    }
    if (s->mode == RT_TRANSMISSION && !s->n_ck) {
        const sbi_rt_cia *cia[RT_MAX_CIA];
        for (int c = 0; c < s->n_cia; ++c) cia[c] = &s->cia[c].tab;
        SBI_CALL(sbi_rt_lbl_opacity_init(s->n, s->w, RT_TRANSIT_BLOCK, s->n_lines, s->line_tabs, s->n_cia, cia,
                                         &s->lbl));
        SBI_MALLOC(s->cia_scale, (size_t)(s->n_cia > 0 ? s->n_cia : 1) * (size_t)s->n);
        s->lbl_blocks = 1;
        s->base_per_layer = s->hminus;
        for (int k = 0; k < s->n_species; ++k)
            if (s->species[k] >= 0) s->base_per_layer = 1;
    }
    if (s->mode == RT_EMISSION) SBI_MALLOC(s->ework, sbi_rt_emission_work(s->w, s->n_mu));
    if (s->n_ck) {
        const size_t nwg = (size_t)s->n * (size_t)s->w * (size_t)s->n_g;
        SBI_MALLOC(s->ck_c, s->n_ck);
        if (!s->ck_product && !s->ck_aee) {
            SBI_MALLOC(s->ck_kappa, nwg);
            SBI_MALLOC(s->ck_work, sbi_rt_ck_kappa_work(s->n_ck, s->n_g, RT_CK_BLOCK));
        }
        if (s->mode == RT_TRANSMISSION && (s->ck_product || s->ck_aee)) {
            /* Made a chunk of bins at a time, nothing of size N W G. */
            SBI_MALLOC(s->ck_work, sbi_rt_transit_ck_work(s->n_ck, s->n, s->w, s->n_g, RT_CK_CHUNK));
        } else if (s->mode == RT_TRANSMISSION) {
            SBI_MALLOC(s->ck_alpha, nwg);
            SBI_MALLOC(s->ck_tau, nwg);
        } else {
            const size_t ework = s->ck_product ? sbi_rt_emission_ck_product_work(s->n, s->w, s->n_g, s->n_ck, s->n_mu)
                                 : s->ck_aee ? sbi_rt_emission_ck_aee_work(s->n_ck, s->n, s->n_g, s->n_mu, RT_CK_BLOCK)
                                             : sbi_rt_emission_ck_work(s->w, s->n_g, s->n_mu);
            SBI_MALLOC(s->ck_ework, ework);
        }
    }
    return SBI_OK;
}

static int rt_create(const sbi_task *task, const sbi_comm *comm, void **state, int64_t *n_outputs, rt_mode mode)
{
    rt_state *s;
    int err;
    SBI_CALLOC(s, 1);
    s->mode = mode;
    s->comm = comm;
    err = rt_parse(task, s);
    s->comm = NULL;
    if (err) {
        rt_destroy(s);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    *state = s;
    *n_outputs = s->n_outputs;
    return SBI_OK;
}

static int rt_create_transmission(const sbi_task *task, void **state, int64_t *n_outputs)
{
    return rt_create(task, NULL, state, n_outputs, RT_TRANSMISSION);
}

static int rt_create_emission(const sbi_task *task, void **state, int64_t *n_outputs)
{
    return rt_create(task, NULL, state, n_outputs, RT_EMISSION);
}

static int rt_create_transmission_on(const sbi_task *task, const sbi_comm *comm, void **state, int64_t *n_outputs)
{
    return rt_create(task, comm, state, n_outputs, RT_TRANSMISSION);
}

static int rt_create_emission_on(const sbi_task *task, const sbi_comm *comm, void **state, int64_t *n_outputs)
{
    return rt_create(task, comm, state, n_outputs, RT_EMISSION);
}

/* ---- one spectrum ---------------------------------------------------------- */

static double rt_value(const rt_state *s, const double *theta, int k)
{
    return s->in[k].param >= 0 ? theta[s->in[k].param] : s->in[k].value;
}

/* The opacity kappa (N, W) [cm^2 g^-1] of the clear atmosphere (no deck).
 * x: mass fractions of the species; x_h2, x_he of the filler. */
/* c (the line tables, in species order) = X_k / (m_k amu) [molecule g^-1];
 * returns how many. */
static int rt_line_abundances(const rt_state *s, const double *x, double *c)
{
    int j = 0;
    for (int k = 0; k < s->n_species; ++k)
        if (s->lines[k]) c[j++] = x[k] / (s->species_mass[k] * SBI_RT_AMU);
    return j;
}

/* The factor n_a n_b / rho of CIA pair cp at density rho, with n = X rho /
 * (m amu) (pRT `_interpolate_cia`: alpha X_a X_b / (m_a m_b) mu P / (amu
 * kT)); 0 where either collider is absent. */
static double rt_cia_factor(const rt_cia_pair *cp, const double *x, double x_h2, double x_he, double rho)
{
    double n_ab = 1.0;
    for (int m = 0; m < 2; ++m) {
        const int who = cp->collider[m];
        const double xm = who == RT_COLLIDER_H2 ? x_h2 : who == RT_COLLIDER_HE ? x_he : x[who];
        n_ab *= xm * rho / (cp->mass[m] * SBI_RT_AMU);
    }
    return n_ab > 0 ? n_ab / rho : 0.0;
}

static void rt_opacity(rt_state *s, const double *theta, const double *x, double x_h2, double x_he, double haze_k0,
                       double haze_gamma, double haze_factor, double v_hm, double v_e, double v_h)
{
    const int w = s->w;
    const double c_h2 = s->rayleigh_h2 ? haze_factor * x_h2 / (SBI_RT_MASS_H2 * SBI_RT_AMU) : 0.0;
    const double c_he = s->rayleigh_he ? haze_factor * x_he / (SBI_RT_MASS_HE * SBI_RT_AMU) : 0.0;
    double *row = s->row;
    int n_lines = 0;

    (void)theta;
    /* Rayleigh and haze per unit mass are the same in every layer. */
    for (int l = 0; l < w; ++l) s->spec2[l] = c_h2 * s->sig_h2[l] + c_he * s->sig_he[l];
    if (haze_k0 > 0)
        for (int l = 0; l < w; ++l) s->spec2[l] += haze_k0 * exp(haze_gamma * s->ln_haze[l]);
    if (s->lbl_blocks) {
        /* Line-by-line transmission: the layers' CIA factors, the line
         * tables' rows and the CIA values at the tables' points here, the
         * rest of kappa per layer below, or as one row when it is the same
         * in every layer; lines and CIA are added block by block in
         * sbi_rt_transit_radius2_lbl. */
        double c[RT_MAX_SPECIES];
        rt_line_abundances(s, x, c);
        for (int q = 0; q < s->n_cia; ++q)
            for (int i = 0; i < s->n; ++i)
                s->cia_scale[(size_t)q * (size_t)s->n + (size_t)i] = rt_cia_factor(&s->cia[q], x, x_h2, x_he, s->rho[i]);
        sbi_rt_lbl_opacity_prepare(&s->lbl, c, s->p_bar, s->t, s->cia_scale);
        if (!s->base_per_layer) {
            for (int l = 0; l < w; ++l) s->kappa[l] = (float)s->spec2[l];
            return;
        }
    }
    for (int i = 0; i < s->n; ++i) {
        const double t = s->t[i], p = s->p_bar[i];
        double lt = log(t / RT_T_MIN) / log(RT_T_MAX / RT_T_MIN) * (RT_NT - 1);
        int q;
        double f;
        float *dst = s->kappa + (size_t)i * (size_t)w;

        if (lt < 0) lt = 0;
        if (lt > RT_NT - 1) lt = RT_NT - 1;
        q = (int)lt;
        if (q > RT_NT - 2) q = RT_NT - 2;
        /* Linear in T between the two neighbouring grid temperatures (clamped). */
        f = (fmin(fmax(t, RT_T_MIN), RT_T_MAX) - s->t_grid[q]) / (s->t_grid[q + 1] - s->t_grid[q]);
        memcpy(row, s->spec2, (size_t)w * sizeof *row);
        for (int k = 0; k < s->n_species; ++k) {
            const double c = x[k] / (s->species_mass[k] * SBI_RT_AMU);
            if (s->species[k] < 0) {
                continue; /* line tables below; correlated-k tables in rt_one */
            } else if (sbi_rt_builtin_pressure_dependent(s->species[k])) {
                sbi_rt_builtin_sigma(s->species[k], t, p, w, s->nu_cm, s->sig);
                for (int l = 0; l < w; ++l) row[l] += c * s->sig[l];
            } else {
                const float *t0 = s->mol_tab + ((size_t)k * RT_NT + (size_t)q) * (size_t)w, *t1 = t0 + w;
                const double c0 = c * (1.0 - f), c1 = c * f;
                for (int l = 0; l < w; ++l) row[l] += c0 * t0[l] + c1 * t1[l];
            }
        }
        if (s->hminus) {
            /* kappa = (sigma_bf n_H- (1 - exp(-hc/lambda kT)) + k_ff P_e n_H) / rho;
             * rho cancels the number density n = P / kT up to mu amu. */
            const double per_mass = 1.0 / (s->mmw[i] * SBI_RT_AMU), pe = v_e * p * SBI_RT_BAR;
            const double y = sqrt(5040.0 / t);
            double yp[6];
            yp[0] = y * y;
            for (int c = 1; c < 6; ++c) yp[c] = yp[c - 1] * y;
            for (int l = 0; l < w; ++l) {
                const double stim = -expm1(-1.4387769e4 / (s->lambda_um[l] * t));
                double kff = 0.0;
                for (int c = 0; c < 6; ++c) kff += yp[c] * s->ff_poly[(size_t)c * w + l];
                row[l] += per_mass * (v_hm * s->sig_bf[l] * stim + v_h * 1e-29 * kff * pe);
            }
        }
        for (int l = 0; l < w; ++l) dst[l] = (float)row[l];
        if (s->n_cia && !s->lbl_blocks) {
            /* kappa_CIA = alpha(T, lambda) n_a n_b / rho, added in float. */
            for (int c = 0; c < s->n_cia; ++c) {
                const double fc = rt_cia_factor(&s->cia[c], x, x_h2, x_he, s->rho[i]);
                if (fc > 0) sbi_rt_cia_add(&s->cia[c].tab, t, fc, s->cia_work, dst);
            }
        }
    }
    /* Line tables, blocked over wavelength so that each table row is read
     * from memory once per spectrum rather than once per layer; each
     * layer's rows and weights are found once.  On one (P, T) grid the
     * species are summed on the used rows first (composition is constant
     * with altitude). */
    if (s->lbl_blocks) return;
    if (s->lines_summed) {
        double c[RT_MAX_SPECIES];
        rt_line_abundances(s, x, c);
        sbi_rt_lines_add_summed(s->n_lines, s->line_tabs, c, s->n, s->p_bar, s->t, RT_LBL_BLOCK, s->lines_work,
                                s->lines_iwork, s->kappa);
        return;
    }
    for (int i = 0; i < s->n; ++i) {
        n_lines = 0;
        for (int k = 0; k < s->n_species; ++k) {
            const size_t at = ((size_t)i * RT_MAX_SPECIES + (size_t)n_lines) * 4;
            if (!s->lines[k]) continue;
            sbi_rt_line_terms(s->lines[k], s->p_bar[i], s->t[i], x[k] / (s->species_mass[k] * SBI_RT_AMU),
                              s->line_rows + at, s->line_coef + at);
            ++n_lines;
        }
    }
    for (int l0 = 0; n_lines > 0 && l0 < w; l0 += RT_LBL_BLOCK) {
        const int l1 = l0 + RT_LBL_BLOCK < w ? l0 + RT_LBL_BLOCK : w;
        for (int i = 0; i < s->n; ++i)
            sbi_rt_lines_add_block(n_lines, s->line_rows + (size_t)i * RT_MAX_SPECIES * 4,
                                   s->line_coef + (size_t)i * RT_MAX_SPECIES * 4, l0, l1,
                                   s->kappa + (size_t)i * (size_t)w + l0);
    }
}

/* The transit radius squared from the correlated-k s->ck_alpha (N, W, G)
 * (line-by-line: sbi_rt_transit_radius2_lbl in rt_one). */
static void rt_transit(rt_state *s, double *rt2)
{
    sbi_rt_transit_radius2_ck(s->n, s->w, s->n_g, s->ck_wf, s->chord, s->ck_alpha, s->r, s->ck_tau, rt2);
}

/* Product of the species' g-mean transmissions (settings.ck_overlap:
 * product) or the aee mixture (aee): a chunk of bins at a time; the deck,
 * from layer deck_from on (-1: none), rides with species 0. */
static void rt_transit_ck(rt_state *s, int deck_from, double *rt2)
{
    if (s->ck_aee)
        sbi_rt_transit_ck_aee(&s->aee, s->ck_c, s->n, s->w, s->p_bar, s->t, s->kappa, s->rho, deck_from,
                              RT_DECK_ALPHA, s->chord, s->r, RT_CK_CHUNK, s->ck_work, rt2);
    else
        sbi_rt_transit_ck_product(s->n, s->w, s->n_g, s->ck_wf, s->n_ck, s->ck_tabs, s->ck_c, s->p_bar, s->t,
                                  s->kappa, s->rho, deck_from, RT_DECK_ALPHA, s->chord, s->r, RT_CK_CHUNK,
                                  s->ck_work, rt2);
}

static void rt_flux(rt_state *s, double g0, int deck_from, double *flux)
{
    if (s->n_ck && s->ck_aee)
        sbi_rt_emission_flux_ck_aee(&s->aee, s->ck_c, s->kappa, s->n, s->w, s->p_bar, s->t, g0, deck_from,
                                    RT_DECK_KAPPA, s->nu_hz, s->n_mu, s->mu, s->w_mu, RT_CK_BLOCK, s->ck_ework, flux);
    else if (s->n_ck && s->ck_product)
        sbi_rt_emission_flux_ck_product(s->n, s->w, s->n_g, s->ck_wf, s->n_ck, s->ck_tabs, s->ck_c, s->kappa, s->p_bar,
                                        s->t, g0, deck_from, RT_DECK_KAPPA, s->nu_hz, s->n_mu, s->mu, s->w_mu,
                                        s->ck_ework, flux);
    else if (s->n_ck)
        sbi_rt_emission_flux_ck(s->n, s->w, s->n_g, s->ck_wf, s->p_bar, s->t, s->ck_kappa, g0, s->nu_hz, s->n_mu,
                                s->mu, s->w_mu, s->ck_ework, flux);
    else
        sbi_rt_emission_flux(s->n, s->w, s->p_bar, s->t, s->kappa, g0, s->nu_hz, s->n_mu, s->mu, s->w_mu, s->ework,
                             flux);
}

/* One row: out (n_outputs); returns 0, or 1 when the row cannot be simulated. */
static int rt_one(rt_state *s, const double *theta, double *out)
{
    const int n = s->n, w = s->w;
    double x[RT_MAX_SPECIES], sum = 0.0, mu, x_h2, x_he;
    const double r_pl = rt_value(s, theta, s->i_r_pl) * SBI_RT_R_JUP;
    const double g0 = pow(10.0, rt_value(s, theta, s->i_log_g));
    const double p_ref = rt_value(s, theta, s->i_p_ref);
    const int deck = s->in[s->i_log_p_cloud].set;
    const double p_cloud = deck ? pow(10.0, rt_value(s, theta, s->i_log_p_cloud)) : INFINITY;
    const int haze = s->in[s->i_log_kappa_haze].set;
    const double haze_k0 = haze ? pow(10.0, rt_value(s, theta, s->i_log_kappa_haze)) : 0.0;
    const double fcloud = deck ? rt_value(s, theta, s->i_cloud_fraction) : 1.0;
    double v_hm = 0, v_e = 0, v_h = 0;
    int deck_from;

    if (!(r_pl > 0 && g0 > 0 && p_ref > 0 && fcloud >= 0 && fcloud <= 1)) return 1;
    /* Temperature profile. */
    if (s->profile == RT_T_ISOTHERMAL) {
        const double t = rt_value(s, theta, s->i_t_iso);
        for (int i = 0; i < n; ++i) s->t[i] = t;
    } else if (s->profile == RT_T_GUILLOT) {
        sbi_rt_temperature_guillot(n, s->p_bar, pow(10.0, rt_value(s, theta, s->i_log_kappa_ir)),
                                   pow(10.0, rt_value(s, theta, s->i_log_gamma)), g0, rt_value(s, theta, s->i_t_int),
                                   rt_value(s, theta, s->i_t_eq), s->guillot_f, s->t);
    } else {
        double tn[RT_MAX_NODES];
        for (int k = 0; k < s->n_nodes; ++k) tn[k] = rt_value(s, theta, s->i_t_node0 + k);
        sbi_rt_temperature_free(n, s->p_bar, s->n_nodes, s->p_nodes, tn, s->t);
    }
    for (int i = 0; i < n; ++i)
        if (!(s->t[i] > 0 && isfinite(s->t[i]))) return 1;

    /* Composition: constant with altitude; H2 and He fill the rest at the
     * solar ratio. */
    for (int k = 0; k < s->n_species; ++k) {
        x[k] = pow(10.0, rt_value(s, theta, s->i_x0 + k));
        sum += x[k];
    }
    if (s->hminus) {
        v_hm = pow(10.0, rt_value(s, theta, s->i_x_hm));
        v_e = pow(10.0, rt_value(s, theta, s->i_x_e));
        v_h = pow(10.0, rt_value(s, theta, s->i_x_h));
    }
    if (!(sum < 1.0)) return 1;
    if (s->mass_fractions) {
        const double rest = 1.0 - sum, ratio = SBI_RT_HE_PER_H2 * SBI_RT_MASS_HE / SBI_RT_MASS_H2;
        double inv = 0.0;
        x_h2 = rest / (1.0 + ratio);
        x_he = rest - x_h2;
        for (int k = 0; k < s->n_species; ++k) inv += x[k] / s->species_mass[k];
        inv += x_h2 / SBI_RT_MASS_H2 + x_he / SBI_RT_MASS_HE;
        mu = 1.0 / inv;
    } else {
        const double v_h2 = (1.0 - sum) / (1.0 + SBI_RT_HE_PER_H2), v_he = SBI_RT_HE_PER_H2 * v_h2;
        mu = v_h2 * SBI_RT_MASS_H2 + v_he * SBI_RT_MASS_HE;
        for (int k = 0; k < s->n_species; ++k) mu += x[k] * s->species_mass[k];
        for (int k = 0; k < s->n_species; ++k) x[k] *= s->species_mass[k] / mu;
        x_h2 = v_h2 * SBI_RT_MASS_H2 / mu;
        x_he = v_he * SBI_RT_MASS_HE / mu;
    }
    /* The mass density [g cm^-3] of each layer: rho = mu amu P / (k T). */
    for (int i = 0; i < n; ++i) {
        s->mmw[i] = mu;
        s->rho[i] = s->mmw[i] * SBI_RT_AMU * s->p_bar[i] * SBI_RT_BAR / (SBI_RT_KB * s->t[i]);
    }

    rt_opacity(s, theta, x, x_h2, x_he, haze_k0, rt_value(s, theta, s->i_gamma_haze),
               rt_value(s, theta, s->i_haze_factor), v_hm, v_e, v_h);
    for (int j = 0; j < s->n_ck; ++j) {
        const int k = s->ck_species[j];
        s->ck_c[j] = x[k] / (s->species_mass[k] * SBI_RT_AMU);
    }
    if (s->n_ck && !s->ck_product && !s->ck_aee)
        /* The correlated-k species overlap on top of the gray opacity. */
        sbi_rt_ck_kappa(&s->mixer, s->n_ck, s->ck_tabs, s->ck_c, n, w, s->p_bar, s->t, s->kappa, RT_CK_BLOCK,
                        s->ck_work, s->ck_kappa);
    for (deck_from = 0; deck && deck_from < n && !(s->p_bar[deck_from] > p_cloud); ++deck_from) {
    }
    if (!deck) deck_from = -1;

    if (s->mode == RT_TRANSMISSION) {
        const double r_star = rt_value(s, theta, s->i_r_star) * SBI_RT_R_SUN;
        if (!(r_star > 0)) return 1;
        if (sbi_rt_hydrostatic_radii(n, s->p_bar, s->t, s->mmw, r_pl, g0, p_ref, s->r)) return 1;
        const size_t cols = s->n_ck ? (size_t)w * (size_t)s->n_g : (size_t)w;
        float *alpha = s->ck_alpha;
        const float *kappa = s->n_ck ? s->ck_kappa : s->kappa;
        const int ck_chunked = s->n_ck && (s->ck_product || s->ck_aee);
        sbi_rt_chord_matrix(n, s->r, s->chord);
        if (ck_chunked) {
            if (fcloud < 1.0) rt_transit_ck(s, -1, s->spec2);
            rt_transit_ck(s, deck_from, s->spec);
        }
        if (!s->n_ck)
            /* Line-by-line: block by block, the opacity (kappa and the
             * lines and CIA), alpha = kappa rho, the chord product and the
             * radius integral; the deck from layer deck_from, and without
             * it for patchy clouds. */
            sbi_rt_transit_radius2_lbl(&s->lbl, s->kappa, s->base_per_layer ? (size_t)w : 0, s->chord, s->rho,
                                       deck_from, RT_DECK_ALPHA, s->r, s->spec, fcloud < 1.0 ? s->spec2 : NULL);
        for (int i = 0; s->n_ck && !ck_chunked && i < n; ++i) {
            const double rho = s->rho[i];
            const float *k = kappa + (size_t)i * cols;
            float *a = alpha + (size_t)i * cols;
            for (size_t l = 0; l < cols; ++l) a[l] = (float)(k[l] * rho);
        }
        if (s->n_ck && !ck_chunked) {
            if (fcloud < 1.0) rt_transit(s, s->spec2);
            if (deck)
                for (int i = 0; i < n; ++i)
                    if (s->p_bar[i] > p_cloud)
                        for (size_t l = 0; l < cols; ++l) alpha[(size_t)i * cols + l] = RT_DECK_ALPHA;
            rt_transit(s, s->spec);
        }
        /* Patchy clouds mix the transit radii, as pRT does (radtrans.py). */
        for (int l = 0; l < w; ++l) {
            double rt = sqrt(s->spec[l]);
            if (fcloud < 1.0) rt = fcloud * rt + (1.0 - fcloud) * sqrt(s->spec2[l]);
            s->spec[l] = rt * rt / (r_star * r_star);
        }
    } else {
        double scale;
        const size_t cols = s->n_ck ? (size_t)w * (size_t)s->n_g : (size_t)w;
        float *kappa = s->n_ck ? s->ck_kappa : s->kappa;
        if (fcloud < 1.0) rt_flux(s, g0, -1, s->spec2);
        if (deck && !(s->n_ck && (s->ck_product || s->ck_aee)))
            for (int i = 0; i < n; ++i)
                if (s->p_bar[i] > p_cloud)
                    for (size_t l = 0; l < cols; ++l) kappa[(size_t)i * cols + l] = RT_DECK_KAPPA;
        rt_flux(s, g0, deck_from, s->spec);
        if (fcloud < 1.0)
            for (int l = 0; l < w; ++l) s->spec[l] = fcloud * s->spec[l] + (1.0 - fcloud) * s->spec2[l];
        if (s->output == RT_OUT_FLUX) {
            /* F_lambda = F_nu c / lambda^2 [erg s^-1 cm^-2 cm^-1] diluted by
             * (R_pl / d)^2; 1 erg s^-1 cm^-2 cm^-1 = 1e-7 W m^-2 um^-1. */
            const double d = rt_value(s, theta, s->i_distance) * SBI_RT_PARSEC;
            if (!(d > 0)) return 1;
            scale = (r_pl / d) * (r_pl / d) * 1e-7;
            for (int l = 0; l < w; ++l) {
                const double lcm = s->lambda_um[l] * 1e-4;
                s->spec[l] *= scale * SBI_RT_C / (lcm * lcm);
            }
        } else {
            const double r_star = rt_value(s, theta, s->i_r_star) * SBI_RT_R_SUN;
            const double t_star = rt_value(s, theta, s->i_t_star);
            if (!(r_star > 0 && t_star > 0)) return 1;
            scale = (r_pl / r_star) * (r_pl / r_star);
            for (int l = 0; l < w; ++l) s->spec[l] *= scale / (SBI_RT_PI * sbi_rt_planck_nu(s->nu_hz[l], t_star));
        }
    }
    for (int k = 0; k < s->n_datasets; ++k) {
        const double *src = s->spec;
        if (s->ds[k].resolution > 0) {
            sbi_rt_convolve(w, s->dlnl, s->ds[k].resolution, s->spec, s->conv);
            src = s->conv;
        }
        sbi_rt_binning_apply(&s->ds[k].bin, src, out + s->ds[k].offset);
    }
    for (int64_t m = 0; m < s->n_outputs; ++m)
        if (!isfinite(out[m])) return 1;
    return 0;
}

static int rt_simulate(void *state, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                       double *out)
{
    rt_state *s = state;
    (void)sim_index;
    (void)seed;
    for (int64_t r = 0; r < n; ++r) {
        double *o = out + r * s->n_outputs;
        if (rt_one(s, theta + r * s->n_params, o))
            for (int64_t m = 0; m < s->n_outputs; ++m) o[m] = NAN;
    }
    return SBI_OK;
}

const sbi_forward_ops sbi__forward_transmission_ops = {
    .family = "transmission",
    .create = rt_create_transmission,
    .create_on = rt_create_transmission_on,
    .simulate = rt_simulate,
    .destroy = rt_destroy,
};

const sbi_forward_ops sbi__forward_emission_ops = {
    .family = "emission",
    .create = rt_create_emission,
    .create_on = rt_create_emission_on,
    .simulate = rt_simulate,
    .destroy = rt_destroy,
};
