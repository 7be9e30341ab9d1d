/* The task schema: one validator for YAML-derived and stored-JSON trees.
 *
 * Every unknown key is an error that names it, every missing required key is
 * an error, and so is every value of the wrong type or out of range.  An
 * optional key whose value is null counts as absent.  Messages point at the
 * offending key through the marks table; JSON input has no marks, so its
 * messages carry the origin and the key path only.
 */
#include "task/task_impl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Integers above this are not exactly representable once stored as JSON numbers. */
#define SBI_TASK_INT_MAX 9007199254740992LL

typedef struct vctx {
    const sbi__task_marks *marks; /* NULL for JSON input */
    const char *origin;
} vctx;

static int vfail(const vctx *v, const cJSON *node, const char *path, const char *file, int fline, const char *func,
                 const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int vfail(const vctx *v, const cJSON *node, const char *path, const char *file, int fline, const char *func,
                 const char *fmt, ...)
{
    const sbi__task_mark *m = sbi__task_marks_find(v->marks, node);
    va_list ap;
    int err;
    va_start(ap, fmt);
    err = sbi__task_verror(v->origin, m ? m->line : 0, m ? m->column : 0, path[0] ? path : "task", file, fline,
                           func, fmt, ap);
    va_end(ap);
    return err;
}

#define VFAIL(v, node, path, ...) return vfail((v), (node), (path), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* ---- tables ---------------------------------------------------------------- */

static const char *const top_keys[] = {"name",     "version",    "parameters", "forward_model",
                                       "datasets", "simulation", "training",   NULL};
static const char *const param_keys[] = {"name", "prior", "unit", "label", "low", "high", "mean", "std", NULL};
static const char *const forward_keys[] = {"family", "settings", "library", NULL};
static const char *const dataset_keys[] = {"name", "modality", "size", "coordinates", "uncertainty", "constraints",
                                           NULL};
static const char *const file_ref_keys[] = {"file", "column", NULL};
static const char *const constraint_keys[] = {"min", "max", NULL};
static const char *const simulation_keys[] = {"n_simulations", "batch_size", "seed",  "splits",
                                              "split_policy",  "split_seed", "noise", NULL};
/* Stored JSON also carries the resolved split counts, checked against the splits. */
static const char *const simulation_json_keys[] = {"n_simulations", "batch_size", "seed",  "splits",      "split_policy",
                                                   "split_seed",    "noise",      "split_counts", NULL};
static const char *const split_keys[] = {"train", "validation", "test", NULL};

/* Indexed like sbi__task_prior_names, that is by sbi_prior_kind. */
static const struct {
    const char *name;
    sbi_prior_kind kind;
    const char *const fields[5]; /* the numeric keys this prior takes, NULL-terminated */
} prior_table[] = {
    {"uniform", SBI_PRIOR_UNIFORM, {"low", "high", NULL}},
    {"log_uniform", SBI_PRIOR_LOG_UNIFORM, {"low", "high", NULL}},
    {"normal", SBI_PRIOR_NORMAL, {"mean", "std", NULL}},
    {"truncated_normal", SBI_PRIOR_TRUNCATED_NORMAL, {"mean", "std", "low", "high", NULL}},
};

static const char *const family_names[] = {"linear_gaussian", "plugin", "transmission", "emission", NULL};

/* The `training` mapping: every key the trainer reads and its type.  The
 * trainer checks ranges; this table only keeps misspelt or mistyped keys out. */
typedef enum { TRAIN_STRING, TRAIN_INT, TRAIN_NUMBER } train_type;
static const struct {
    const char *key;
    train_type type;
} training_table[] = {
    {"estimator", TRAIN_STRING},  {"batch_size", TRAIN_INT},     {"learning_rate", TRAIN_NUMBER},
    {"max_epochs", TRAIN_INT},    {"min_epochs", TRAIN_INT},     {"patience", TRAIN_INT},
    {"min_delta", TRAIN_NUMBER},  {"clip_norm", TRAIN_NUMBER},   {"weight_decay", TRAIN_NUMBER},
    {"seed", TRAIN_INT},          {"embed_dim", TRAIN_INT},      {"embed_hidden", TRAIN_INT},
    {"embed_layers", TRAIN_INT},  {"n_transforms", TRAIN_INT},   {"hidden", TRAIN_INT},
    {"hidden_layers", TRAIN_INT}, {"cache_mb", TRAIN_INT},       {"sbc_samples", TRAIN_INT},
    {"lr_decay_patience", TRAIN_INT}, {"lr_decay_factor", TRAIN_NUMBER}, {"min_learning_rate", TRAIN_NUMBER},
    {"embedding", TRAIN_STRING},  {"n_bins", TRAIN_INT},         {"tail_bound", TRAIN_NUMBER},
    {"lr_schedule", TRAIN_STRING}, {"warmup_fraction", TRAIN_NUMBER}, {"warmup_epochs", TRAIN_NUMBER},
    {"schedule_epochs", TRAIN_NUMBER}, {"noise_multiplier", TRAIN_NUMBER}, {"noise_min_scale", TRAIN_NUMBER},
    {"parameter_noise_floor", TRAIN_NUMBER}, {"n_sigmoids", TRAIN_INT}, {"bisection_steps", TRAIN_INT},
    {"ode_solver", TRAIN_STRING}, {"ode_steps", TRAIN_INT}, {"time_features", TRAIN_INT},
};
#define N_TRAINING_KEYS ((int)(sizeof training_table / sizeof training_table[0]))

/* ---- generic helpers -------------------------------------------------------- */

static void join_key(char *out, size_t cap, const char *path, const char *key)
{
    if (path[0]) snprintf(out, cap, "%s.%s", path, key);
    else snprintf(out, cap, "%s", key);
}

static void join_index(char *out, size_t cap, const char *path, int i) { snprintf(out, cap, "%s[%d]", path, i); }

/* "a, b or c" from a NULL-terminated list. */
static void list_words(char *out, size_t cap, const char *const *words, const char *last_sep)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; words[i] && used < cap; ++i) {
        const char *sep = i == 0 ? "" : (words[i + 1] ? ", " : last_sep);
        used += (size_t)snprintf(out + used, cap - used, "%s%s", sep, words[i]);
    }
}

static int word_index(const char *const *words, const char *w)
{
    for (int i = 0; words[i]; ++i)
        if (!strcmp(words[i], w)) return i;
    return -1;
}

static const char *type_name(const cJSON *n)
{
    if (cJSON_IsObject(n)) return "a mapping";
    if (cJSON_IsArray(n)) return "a list";
    if (cJSON_IsString(n)) return "a string";
    if (cJSON_IsNumber(n)) return "a number";
    if (cJSON_IsBool(n)) return "a boolean";
    if (cJSON_IsNull(n)) return "null";
    return "an unknown value";
}

/* What a wrong-typed value is, for "(got ...)": strings are quoted (up to 40 characters). */
static const char *describe(const cJSON *n, char *buf, size_t cap)
{
    if (!cJSON_IsString(n)) return type_name(n);
    snprintf(buf, cap, "'%.40s%s'", n->valuestring, strlen(n->valuestring) > 40 ? "..." : "");
    return buf;
}

/* A number as the user wrote it (YAML) or in canonical form (JSON). */
static const char *num_text(const vctx *v, const cJSON *n, char *buf, size_t cap)
{
    const sbi__task_mark *m = sbi__task_marks_find(v->marks, n);
    if (m && m->text) return m->text;
    sbi__task_format_number(n->valuedouble, buf, cap);
    return buf;
}

static int is_integer(const vctx *v, const cJSON *n)
{
    if (v->marks) {
        const sbi__task_mark *m = sbi__task_marks_find(v->marks, n);
        return m && m->is_int;
    }
    return n->valuedouble == floor(n->valuedouble);
}

/* Every key of `obj` must be one of `allowed`, and appear once (JSON text
 * can repeat a key; YAML repeats are refused while converting). */
static int check_keys(const vctx *v, const cJSON *obj, const char *path, const char *const *allowed)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        char sub[512], words[512];
        join_key(sub, sizeof sub, path, c->string);
        if (word_index(allowed, c->string) < 0) {
            list_words(words, sizeof words, allowed, ", ");
            VFAIL(v, c, sub, "unknown key '%s' (expected one of: %s)", c->string, words);
        }
        for (const cJSON *e = obj->child; e != c; e = e->next)
            if (!strcmp(e->string, c->string)) VFAIL(v, c, sub, "duplicate key '%s'", c->string);
    }
    return 0;
}

/* The member `key` of obj, or NULL when absent or null. */
static const cJSON *opt(const cJSON *obj, const char *key)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
    return c && !cJSON_IsNull(c) ? c : NULL;
}

static int req(const vctx *v, const cJSON *obj, const char *path, const char *key, const cJSON **out)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
    char sub[512];
    join_key(sub, sizeof sub, path, key);
    if (!c) VFAIL(v, obj, sub, "missing required key '%s'", key);
    if (cJSON_IsNull(c)) VFAIL(v, c, sub, "needs a value");
    *out = c;
    return 0;
}

static int need_object(const vctx *v, const cJSON *n, const char *path)
{
    if (!cJSON_IsObject(n)) VFAIL(v, n, path, "must be a mapping (got %s)", type_name(n));
    return 0;
}

static int get_string(const vctx *v, const cJSON *n, const char *path, char *out, size_t cap)
{
    if (!cJSON_IsString(n)) VFAIL(v, n, path, "must be a string (got %s)", type_name(n));
    if (strlen(n->valuestring) >= cap) VFAIL(v, n, path, "is too long (at most %zu characters)", cap - 1);
    snprintf(out, cap, "%s", n->valuestring);
    return 0;
}

/* A string that must be one of `words`; *index receives its position. */
static int get_word(const vctx *v, const cJSON *n, const char *path, const char *const *words, const char *what,
                    int *index)
{
    char buf[64], list[256];
    SBI_CALL(get_string(v, n, path, buf, sizeof buf));
    *index = word_index(words, buf);
    if (*index < 0) {
        list_words(list, sizeof list, words, " or ");
        VFAIL(v, n, path, "unknown %s '%s' (expected %s)", what, n->valuestring, list);
    }
    return 0;
}

static int get_number(const vctx *v, const cJSON *n, const char *path, double *out)
{
    char buf[64];
    if (!cJSON_IsNumber(n)) VFAIL(v, n, path, "must be a number (got %s)", describe(n, buf, sizeof buf));
    if (!isfinite(n->valuedouble)) VFAIL(v, n, path, "must be a finite number");
    *out = n->valuedouble;
    return 0;
}

static int get_int(const vctx *v, const cJSON *n, const char *path, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[64];
    double d;
    if (!cJSON_IsNumber(n)) VFAIL(v, n, path, "must be an integer (got %s)", describe(n, buf, sizeof buf));
    SBI_CALL(get_number(v, n, path, &d));
    if (!is_integer(v, n) || fabs(d) > (double)SBI_TASK_INT_MAX)
        VFAIL(v, n, path, "must be an integer (got %s)", num_text(v, n, buf, sizeof buf));
    if (d < (double)lo || d > (double)hi) {
        if (hi >= SBI_TASK_INT_MAX) VFAIL(v, n, path, "must be at least %lld (got %s)", (long long)lo, num_text(v, n, buf, sizeof buf));
        VFAIL(v, n, path, "must be in [%lld, %lld] (got %s)", (long long)lo, (long long)hi,
              num_text(v, n, buf, sizeof buf));
    }
    *out = (int64_t)d;
    return 0;
}

/* ---- name, version ------------------------------------------------------------ */

static int parse_header(const vctx *v, const cJSON *root, sbi_task *t)
{
    const cJSON *n;
    SBI_CALL(req(v, root, "", "name", &n));
    SBI_CALL(get_string(v, n, "name", t->name, sizeof t->name));
    if (!t->name[0]) VFAIL(v, n, "name", "must not be empty");
    SBI_CALL(req(v, root, "", "version", &n));
    if (cJSON_IsNumber(n)) {
        char buf[40];
        double d;
        SBI_CALL(get_number(v, n, "version", &d));
        snprintf(t->version, sizeof t->version, "%s", num_text(v, n, buf, sizeof buf));
    } else if (cJSON_IsString(n)) {
        SBI_CALL(get_string(v, n, "version", t->version, sizeof t->version));
    } else {
        VFAIL(v, n, "version", "must be a string or a number (got %s)", type_name(n));
    }
    return 0;
}

/* ---- parameters ------------------------------------------------------------------ */

static int is_identifier(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (++s; *s; ++s)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int parse_param(const vctx *v, const cJSON *n, const char *path, sbi_task *t, int i)
{
    sbi_param *p = &t->params[i];
    const cJSON *c, *high_node = NULL, *low_node = NULL;
    char sub[512], a[40], b[40];
    int kind;
    SBI_CALL(need_object(v, n, path));
    SBI_CALL(check_keys(v, n, path, param_keys));

    SBI_CALL(req(v, n, path, "name", &c));
    join_key(sub, sizeof sub, path, "name");
    SBI_CALL(get_string(v, c, sub, p->name, sizeof p->name));
    if (!is_identifier(p->name))
        VFAIL(v, c, sub, "'%s' is not a valid name (letters, digits and _, not starting with a digit)", p->name);
    for (int k = 0; k < i; ++k)
        if (!strcmp(t->params[k].name, p->name))
            VFAIL(v, c, sub, "duplicate parameter name '%s' (also parameters[%d])", p->name, k);

    SBI_CALL(req(v, n, path, "prior", &c));
    join_key(sub, sizeof sub, path, "prior");
    SBI_CALL(get_word(v, c, sub, sbi__task_prior_names, "prior", &kind));
    p->prior = prior_table[kind].kind;

    /* Keys of the other prior kinds do not apply to this one. */
    for (const cJSON *k = n->child; k; k = k->next) {
        if (word_index(prior_table[kind].fields, k->string) >= 0) continue;
        if (!strcmp(k->string, "low") || !strcmp(k->string, "high") || !strcmp(k->string, "mean") ||
            !strcmp(k->string, "std")) {
            char words[128];
            list_words(words, sizeof words, prior_table[kind].fields, " and ");
            join_key(sub, sizeof sub, path, k->string);
            VFAIL(v, k, sub, "unknown key '%s' for a %s prior (it takes %s)", k->string, prior_table[kind].name,
                  words);
        }
    }
    for (int f = 0; prior_table[kind].fields[f]; ++f) {
        const char *key = prior_table[kind].fields[f];
        double value;
        SBI_CALL(req(v, n, path, key, &c));
        join_key(sub, sizeof sub, path, key);
        SBI_CALL(get_number(v, c, sub, &value));
        if (!strcmp(key, "low")) p->low = value, low_node = c;
        else if (!strcmp(key, "high")) p->high = value, high_node = c;
        else if (!strcmp(key, "mean")) p->mean = value;
        else p->std = value;
        if (!strcmp(key, "std") && !(value > 0.0)) VFAIL(v, c, sub, "must be positive (got %s)", num_text(v, c, a, sizeof a));
    }
    if (low_node) {
        if (p->prior == SBI_PRIOR_LOG_UNIFORM && !(p->low > 0.0)) {
            join_key(sub, sizeof sub, path, "low");
            VFAIL(v, low_node, sub, "must be positive for a log_uniform prior (got %s)",
                  num_text(v, low_node, a, sizeof a));
        }
        join_key(sub, sizeof sub, path, "high");
        if (!(p->high > p->low))
            VFAIL(v, high_node, sub, "must be greater than low (got low=%s, high=%s)",
                  num_text(v, low_node, a, sizeof a), num_text(v, high_node, b, sizeof b));
        if (!isfinite(p->high - p->low)) VFAIL(v, high_node, sub, "the range low..high is too wide");
        if (p->prior == SBI_PRIOR_TRUNCATED_NORMAL && !isfinite(sbi_prior_param_log_density(p, 0.5 * (p->low + p->high))))
            VFAIL(v, high_node, sub, "the interval [low, high] holds no probability mass of the normal");
    }

    if ((c = opt(n, "unit"))) {
        join_key(sub, sizeof sub, path, "unit");
        SBI_CALL(get_string(v, c, sub, p->unit, sizeof p->unit));
    }
    if ((c = opt(n, "label"))) {
        join_key(sub, sizeof sub, path, "label");
        SBI_CALL(get_string(v, c, sub, p->label, sizeof p->label));
    } else {
        snprintf(p->label, sizeof p->label, "%s", p->name);
    }
    return 0;
}

static int parse_params(const vctx *v, const cJSON *root, sbi_task *t)
{
    const cJSON *n;
    int i = 0;
    SBI_CALL(req(v, root, "", "parameters", &n));
    if (!cJSON_IsArray(n)) VFAIL(v, n, "parameters", "must be a list (got %s)", type_name(n));
    t->n_params = cJSON_GetArraySize(n);
    if (t->n_params == 0) VFAIL(v, n, "parameters", "must list at least one parameter");
    SBI_CALLOC(t->params, t->n_params);
    for (const cJSON *c = n->child; c; c = c->next, ++i) {
        char path[64];
        join_index(path, sizeof path, "parameters", i);
        SBI_CALL(parse_param(v, c, path, t, i));
    }
    return 0;
}

/* ---- forward model ---------------------------------------------------------------- */

/* An absolute form of a path that may be relative to the working directory;
 * 0 when it does not fit into cap. */
static int absolute_path(const char *in, char *out, size_t cap)
{
    char cwd[SBI_PATH_MAX];
    char *real = realpath(in, NULL);
    int n;
    if (real) {
        n = snprintf(out, cap, "%s", real);
        free(real);
    } else if (in[0] != '/' && getcwd(cwd, sizeof cwd)) {
        n = snprintf(out, cap, "%s/%s", cwd, in);
    } else {
        n = snprintf(out, cap, "%s", in);
    }
    return n >= 0 && (size_t)n < cap;
}

static int parse_forward(const vctx *v, const cJSON *root, sbi_task *t)
{
    const cJSON *n, *c;
    int family;
    SBI_CALL(req(v, root, "", "forward_model", &n));
    SBI_CALL(need_object(v, n, "forward_model"));
    SBI_CALL(check_keys(v, n, "forward_model", forward_keys));
    SBI_CALL(req(v, n, "forward_model", "family", &c));
    SBI_CALL(get_word(v, c, "forward_model.family", family_names, "family", &family));
    snprintf(t->family, sizeof t->family, "%s", family_names[family]);

    if ((c = opt(n, "settings"))) {
        SBI_CALL(need_object(v, c, "forward_model.settings"));
        t->forward_settings = cJSON_Duplicate(c, 1);
    } else {
        t->forward_settings = cJSON_CreateObject();
    }
    SBI_CHECK(t->forward_settings, SBI_ERR_INTERNAL, "out of memory");

    c = opt(n, "library");
    if (!strcmp(t->family, "plugin")) {
        char given[SBI_PATH_MAX], joined[SBI_PATH_MAX];
        const char *path = "forward_model.library";
        if (!c) VFAIL(v, n, path, "missing required key 'library' (a plugin family needs its shared library)");
        SBI_CALL(get_string(v, c, path, given, sizeof given));
        if (!given[0]) VFAIL(v, c, path, "must not be empty");
        if (v->marks) {
            sbi_path_resolve(v->origin, given, joined, sizeof joined);
            if (!absolute_path(joined, t->plugin_library, sizeof t->plugin_library))
                VFAIL(v, c, path, "the resolved path is too long");
        } else {
            snprintf(t->plugin_library, sizeof t->plugin_library, "%s", given);
        }
    } else if (c) {
        VFAIL(v, c, "forward_model.library", "only the plugin family takes a library (family is %s)", t->family);
    }
    return 0;
}

/* ---- datasets ---------------------------------------------------------------------- */

/* Column `column` (from 0) of a text file: `#` starts a comment, fields are
 * separated by whitespace or commas, blank lines are skipped.  *values is
 * owned by the caller, also when this fails. */
static int read_column_file(const vctx *v, const cJSON *node, const char *path, const char *file, int64_t column,
                            double **values, int *count)
{
    char resolved[SBI_PATH_MAX];
    FILE *f;
    char *line = NULL;
    size_t line_cap = 0, cap = 0;
    int lineno = 0, n = 0, err = 0;
    sbi_path_resolve(v->origin, file, resolved, sizeof resolved);
    f = fopen(resolved, "r");
    if (!f) VFAIL(v, node, path, "cannot open '%s': %s", resolved, strerror(errno));
    while (!err && getline(&line, &line_cap, f) >= 0) {
        char *hash = strchr(line, '#'), *tok, *save = NULL, *end;
        int field = 0;
        double value = 0.0;
        ++lineno;
        if (hash) *hash = '\0';
        for (tok = strtok_r(line, " \t\r\n,", &save); tok; tok = strtok_r(NULL, " \t\r\n,", &save), ++field)
            if (field == column) break;
        if (field == 0 && !tok) continue; /* blank or comment-only line */
        if (!tok) {
            err = vfail(v, node, path, __FILE__, __LINE__, __func__, "%s:%d: has %d column(s), column %lld requested",
                        resolved, lineno, field, (long long)column);
            break;
        }
        value = strtod(tok, &end);
        if (*end || end == tok || !isfinite(value)) {
            err = vfail(v, node, path, __FILE__, __LINE__, __func__, "%s:%d: '%s' is not a finite number", resolved,
                        lineno, tok);
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
        (*values)[n++] = value;
        if (n == INT_MAX) {
            err = vfail(v, node, path, __FILE__, __LINE__, __func__, "%s: too many rows", resolved);
            break;
        }
    }
    free(line);
    fclose(f);
    if (!err && n == 0) err = vfail(v, node, path, __FILE__, __LINE__, __func__, "%s: holds no values", resolved);
    *count = n;
    return err;
}

/* A list of numbers or a {file, column} reference, into *values (owned by the
 * caller, also on failure).  Values must be >= 0 when nonneg. */
static int parse_values(const vctx *v, const cJSON *n, const char *path, int nonneg, double **values, int *count)
{
    char sub[512], buf[40];
    *count = 0;
    if (cJSON_IsObject(n)) {
        const cJSON *file, *column;
        char name[SBI_PATH_MAX];
        int64_t col;
        SBI_CALL(check_keys(v, n, path, file_ref_keys));
        SBI_CALL(req(v, n, path, "file", &file));
        join_key(sub, sizeof sub, path, "file");
        SBI_CALL(get_string(v, file, sub, name, sizeof name));
        SBI_CALL(req(v, n, path, "column", &column));
        join_key(sub, sizeof sub, path, "column");
        SBI_CALL(get_int(v, column, sub, 0, 1000000, &col));
        join_key(sub, sizeof sub, path, "file");
        SBI_CALL(read_column_file(v, file, sub, name, col, values, count));
        if (nonneg)
            for (int i = 0; i < *count; ++i)
                if (!((*values)[i] >= 0.0))
                    VFAIL(v, file, sub, "value %d of column %lld must not be negative (got %.17g)", i, (long long)col,
                          (*values)[i]);
        return 0;
    }
    if (!cJSON_IsArray(n)) VFAIL(v, n, path, "must be a list of numbers or {file: PATH, column: K} (got %s)", type_name(n));
    *count = cJSON_GetArraySize(n);
    if (*count == 0) VFAIL(v, n, path, "must not be empty");
    SBI_MALLOC(*values, *count);
    {
        int i = 0;
        for (const cJSON *c = n->child; c; c = c->next, ++i) {
            join_index(sub, sizeof sub, path, i);
            SBI_CALL(get_number(v, c, sub, &(*values)[i]));
            if (nonneg && (*values)[i] < 0.0)
                VFAIL(v, c, sub, "must not be negative (got %s)", num_text(v, c, buf, sizeof buf));
        }
    }
    return 0;
}

static int parse_dataset(const vctx *v, const cJSON *n, const char *path, sbi_task *t, int i)
{
    sbi_dataset *d = &t->datasets[i];
    const cJSON *c, *size_node, *coord_node;
    char sub[512], buf[40];
    int modality, n_coords = 0;
    int64_t size = 0;
    SBI_CALL(need_object(v, n, path));
    SBI_CALL(check_keys(v, n, path, dataset_keys));

    SBI_CALL(req(v, n, path, "name", &c));
    join_key(sub, sizeof sub, path, "name");
    SBI_CALL(get_string(v, c, sub, d->name, sizeof d->name));
    if (!d->name[0]) VFAIL(v, c, sub, "must not be empty");
    for (int k = 0; k < i; ++k)
        if (!strcmp(t->datasets[k].name, d->name))
            VFAIL(v, c, sub, "duplicate dataset name '%s' (also datasets[%d])", d->name, k);

    SBI_CALL(req(v, n, path, "modality", &c));
    join_key(sub, sizeof sub, path, "modality");
    SBI_CALL(get_word(v, c, sub, sbi__task_modality_names, "modality", &modality));
    d->modality = (sbi_modality)modality;

    if ((size_node = opt(n, "size"))) {
        join_key(sub, sizeof sub, path, "size");
        SBI_CALL(get_int(v, size_node, sub, 1, INT_MAX, &size));
    }
    if ((coord_node = opt(n, "coordinates"))) {
        join_key(sub, sizeof sub, path, "coordinates");
        SBI_CALL(parse_values(v, coord_node, sub, 0, &d->coordinates, &n_coords));
        if (size_node && n_coords != size)
            VFAIL(v, coord_node, sub, "dataset shape mismatch: size is %lld but coordinates has %d values",
                  (long long)size, n_coords);
        size = n_coords;
    }
    if (!size_node && !coord_node) {
        join_key(sub, sizeof sub, path, "size");
        VFAIL(v, n, sub, "missing required key 'size' (give size or coordinates)");
    }
    d->size = (int)size;

    if ((c = opt(n, "uncertainty"))) {
        join_key(sub, sizeof sub, path, "uncertainty");
        if (cJSON_IsNumber(c)) {
            double sigma;
            SBI_CALL(get_number(v, c, sub, &sigma));
            if (sigma < 0.0) VFAIL(v, c, sub, "must not be negative (got %s)", num_text(v, c, buf, sizeof buf));
            SBI_MALLOC(d->uncertainty, d->size);
            for (int k = 0; k < d->size; ++k) d->uncertainty[k] = sigma;
        } else {
            int count = 0;
            SBI_CALL(parse_values(v, c, sub, 1, &d->uncertainty, &count));
            if (count != d->size)
                VFAIL(v, c, sub, "dataset shape mismatch: %d uncertainties for a dataset of size %d", count, d->size);
        }
    } else {
        SBI_CALLOC(d->uncertainty, d->size);
    }

    if ((c = opt(n, "constraints"))) {
        const cJSON *lo, *hi;
        join_key(sub, sizeof sub, path, "constraints");
        SBI_CALL(need_object(v, c, sub));
        SBI_CALL(check_keys(v, c, sub, constraint_keys));
        if ((lo = opt(c, "min"))) {
            join_key(sub, sizeof sub, path, "constraints.min");
            SBI_CALL(get_number(v, lo, sub, &d->value_min));
            d->has_min = 1;
        }
        if ((hi = opt(c, "max"))) {
            join_key(sub, sizeof sub, path, "constraints.max");
            SBI_CALL(get_number(v, hi, sub, &d->value_max));
            d->has_max = 1;
        }
        if (lo && hi && !(d->value_max > d->value_min)) {
            char a[40];
            VFAIL(v, hi, sub, "must be greater than min (got min=%s, max=%s)", num_text(v, lo, a, sizeof a),
                  num_text(v, hi, buf, sizeof buf));
        }
    }
    return 0;
}

static int parse_datasets(const vctx *v, const cJSON *root, sbi_task *t)
{
    const cJSON *n;
    int i = 0;
    int64_t offset = 0;
    SBI_CALL(req(v, root, "", "datasets", &n));
    if (!cJSON_IsArray(n)) VFAIL(v, n, "datasets", "must be a list (got %s)", type_name(n));
    t->n_datasets = cJSON_GetArraySize(n);
    if (t->n_datasets == 0) VFAIL(v, n, "datasets", "must list at least one dataset");
    SBI_CALLOC(t->datasets, t->n_datasets);
    for (const cJSON *c = n->child; c; c = c->next, ++i) {
        char path[64];
        join_index(path, sizeof path, "datasets", i);
        SBI_CALL(parse_dataset(v, c, path, t, i));
        t->datasets[i].offset = offset;
        offset += t->datasets[i].size;
    }
    t->n_outputs = offset;
    return 0;
}

/* ---- simulation -------------------------------------------------------------------- */

static int parse_splits(const vctx *v, const cJSON *n, sbi_task *t)
{
    const char *path = "simulation.splits";
    const cJSON *item[SBI_N_SPLITS];
    double value[SBI_N_SPLITS], sum = 0.0;
    int all_int = 1, any_above_one = 0;
    char sub[128], buf[40];
    SBI_CALL(need_object(v, n, path));
    SBI_CALL(check_keys(v, n, path, split_keys));
    for (int s = 0; s < SBI_N_SPLITS; ++s) {
        SBI_CALL(req(v, n, path, sbi_split_names[s], &item[s]));
        join_key(sub, sizeof sub, path, sbi_split_names[s]);
        SBI_CALL(get_number(v, item[s], sub, &value[s]));
        all_int = all_int && is_integer(v, item[s]);
        any_above_one = any_above_one || value[s] > 1.0;
        sum += value[s];
    }
    if (all_int && any_above_one) {
        int64_t total = 0;
        for (int s = 0; s < SBI_N_SPLITS; ++s) {
            join_key(sub, sizeof sub, path, sbi_split_names[s]);
            SBI_CALL(get_int(v, item[s], sub, 0, SBI_TASK_INT_MAX, &t->split_counts[s]));
            total += t->split_counts[s];
        }
        if (total != t->n_simulations)
            VFAIL(v, n, path, "split counts sum to %lld, not n_simulations = %lld", (long long)total,
                  (long long)t->n_simulations);
        t->splits_are_fractions = 0;
        return 0;
    }
    for (int s = 0; s < SBI_N_SPLITS; ++s) {
        if (!(value[s] >= 0.0 && value[s] <= 1.0)) {
            join_key(sub, sizeof sub, path, sbi_split_names[s]);
            VFAIL(v, item[s], sub,
                  "must be a fraction in [0, 1] (got %s); give all splits as fractions or all as integer counts",
                  num_text(v, item[s], buf, sizeof buf));
        }
        t->split_fractions[s] = value[s];
    }
    if (fabs(sum - 1.0) > 1e-9) VFAIL(v, n, path, "fractions sum to %.17g, not 1", sum);
    t->splits_are_fractions = 1;
    if (sbi__task_resolve_splits(t->split_fractions, t->n_simulations, t->split_counts))
        VFAIL(v, n, path, "these fractions of n_simulations = %lld leave no simulations for train",
              (long long)t->n_simulations);
    return 0;
}

/* Stored JSON repeats the resolved counts; they must agree with the splits. */
static int check_split_counts(const vctx *v, const cJSON *n, const sbi_task *t)
{
    const char *path = "simulation.split_counts";
    char sub[128];
    SBI_CALL(need_object(v, n, path));
    SBI_CALL(check_keys(v, n, path, split_keys));
    for (int s = 0; s < SBI_N_SPLITS; ++s) {
        const cJSON *c;
        int64_t count;
        SBI_CALL(req(v, n, path, sbi_split_names[s], &c));
        join_key(sub, sizeof sub, path, sbi_split_names[s]);
        SBI_CALL(get_int(v, c, sub, 0, SBI_TASK_INT_MAX, &count));
        if (count != t->split_counts[s])
            VFAIL(v, c, sub, "is %lld but the splits resolve to %lld", (long long)count, (long long)t->split_counts[s]);
    }
    return 0;
}

static int parse_simulation(const vctx *v, const cJSON *root, sbi_task *t)
{
    const char *path = "simulation";
    const cJSON *n, *c, *counts = NULL;
    int64_t value;
    int word;
    SBI_CALL(req(v, root, "", "simulation", &n));
    SBI_CALL(need_object(v, n, path));
    if (v->marks) {
        SBI_CALL(check_keys(v, n, path, simulation_keys));
    } else {
        SBI_CALL(check_keys(v, n, path, simulation_json_keys));
        counts = opt(n, "split_counts");
    }

    SBI_CALL(req(v, n, path, "n_simulations", &c));
    SBI_CALL(get_int(v, c, "simulation.n_simulations", 1, SBI_TASK_INT_MAX, &t->n_simulations));
    t->batch_size = 256;
    if ((c = opt(n, "batch_size"))) {
        SBI_CALL(get_int(v, c, "simulation.batch_size", 1, INT_MAX, &value));
        t->batch_size = (int)value;
    }
    if ((c = opt(n, "seed"))) {
        SBI_CALL(get_int(v, c, "simulation.seed", 0, SBI_TASK_INT_MAX, &value));
        t->seed = (uint64_t)value;
    }
    t->split_seed = t->seed;
    if ((c = opt(n, "split_seed"))) {
        SBI_CALL(get_int(v, c, "simulation.split_seed", 0, SBI_TASK_INT_MAX, &value));
        t->split_seed = (uint64_t)value;
    }
    if ((c = opt(n, "split_policy"))) {
        SBI_CALL(get_word(v, c, "simulation.split_policy", sbi__task_policy_names, "split policy", &word));
        t->split_policy = (sbi_split_policy)word;
    }
    if ((c = opt(n, "noise"))) {
        SBI_CALL(get_word(v, c, "simulation.noise", sbi__task_noise_names, "noise mode", &word));
        t->noise = (sbi_noise_mode)word;
    }
    if ((c = opt(n, "splits"))) {
        SBI_CALL(parse_splits(v, c, t));
    } else {
        t->splits_are_fractions = 1;
        t->split_fractions[SBI_SPLIT_TRAIN] = 0.9;
        t->split_fractions[SBI_SPLIT_VALIDATION] = 0.05;
        t->split_fractions[SBI_SPLIT_TEST] = 0.05;
        if (sbi__task_resolve_splits(t->split_fractions, t->n_simulations, t->split_counts))
            VFAIL(v, n, "simulation.splits", "the default splits leave no simulations for train");
    }
    if (counts) SBI_CALL(check_split_counts(v, counts, t));
    return 0;
}

/* ---- training ------------------------------------------------------------------------ */

static int parse_training(const vctx *v, const cJSON *root, sbi_task *t)
{
    const char *path = "training";
    const cJSON *n = opt(root, "training");
    if (!n) {
        t->training = cJSON_CreateObject();
        SBI_CHECK(t->training, SBI_ERR_INTERNAL, "out of memory");
        return 0;
    }
    SBI_CALL(need_object(v, n, path));
    for (const cJSON *c = n->child; c; c = c->next) {
        char sub[512];
        int k = 0;
        join_key(sub, sizeof sub, path, c->string);
        while (k < N_TRAINING_KEYS && strcmp(training_table[k].key, c->string)) ++k;
        if (k == N_TRAINING_KEYS) {
            char words[1024];
            size_t used = 0;
            for (int j = 0; j < N_TRAINING_KEYS && used < sizeof words; ++j)
                used += (size_t)snprintf(words + used, sizeof words - used, "%s%s", j ? ", " : "", training_table[j].key);
            VFAIL(v, c, sub, "unknown key '%s' (expected one of: %s)", c->string, words);
        }
        if (cJSON_IsNull(c)) continue;
        switch (training_table[k].type) {
        case TRAIN_STRING:
            if (!cJSON_IsString(c)) VFAIL(v, c, sub, "must be a string (got %s)", type_name(c));
            break;
        case TRAIN_INT: {
            int64_t value;
            SBI_CALL(get_int(v, c, sub, -SBI_TASK_INT_MAX, SBI_TASK_INT_MAX, &value));
            break;
        }
        case TRAIN_NUMBER: {
            double value;
            SBI_CALL(get_number(v, c, sub, &value));
            break;
        }
        }
    }
    t->training = cJSON_Duplicate(n, 1);
    SBI_CHECK(t->training, SBI_ERR_INTERNAL, "out of memory");
    /* Null entries mean "not given"; they are dropped so readers see only values. */
    for (cJSON *c = t->training->child, *next; c; c = next) {
        next = c->next;
        if (cJSON_IsNull(c)) cJSON_Delete(cJSON_DetachItemViaPointer(t->training, c));
    }
    return 0;
}

/* ---- entry ---------------------------------------------------------------------------- */

static int validate(const vctx *v, const cJSON *root, sbi_task *t)
{
    SBI_CALL(need_object(v, root, ""));
    SBI_CALL(check_keys(v, root, "", top_keys));
    SBI_CALL(parse_header(v, root, t));
    SBI_CALL(parse_params(v, root, t));
    SBI_CALL(parse_forward(v, root, t));
    SBI_CALL(parse_datasets(v, root, t));
    SBI_CALL(parse_simulation(v, root, t));
    SBI_CALL(parse_training(v, root, t));
    return 0;
}

int sbi__task_build(const cJSON *root, const sbi__task_marks *marks, const char *origin, sbi_task **task)
{
    vctx v = {marks, origin};
    sbi_task *t = calloc(1, sizeof *t);
    int err;
    *task = NULL;
    SBI_CHECK(t, SBI_ERR_INTERNAL, "out of memory");
    err = validate(&v, root, t);
    if (!err) err = sbi__task_make_json(t);
    if (!err) err = sbi__task_make_fingerprint(t);
    if (err) {
        sbi_task_destroy(&t);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    *task = t;
    return 0;
}
