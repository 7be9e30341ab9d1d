/* Task fingerprints: the canonical JSON payload of what defines a task family,
 * its SHA-256, and the field-by-field comparison of two payloads.
 *
 * The payload holds the name and version, the parameters with their priors,
 * the datasets with their shapes, coordinates, uncertainties and constraints,
 * the forward-model family and settings (a plugin by its library's file name,
 * so moving the library keeps the fingerprint), and the preprocessing
 * version.  Run settings (number of simulations, seeds, splits, training)
 * are left out: corpora and models made with different ones stay compatible.
 *
 * Canonical text: object keys sorted bytewise, no whitespace, strings JSON
 * escaped, numbers as sbi__task_format_number writes them.
 */
#include "task/task_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SBI_DIFF_MAX_LISTED 10

void sbi__task_format_number(double v, char *buf, size_t cap)
{
    if (!isfinite(v)) snprintf(buf, cap, "null");
    else if (v == 0.0) snprintf(buf, cap, "0"); /* -0 and 0 are one value */
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) snprintf(buf, cap, "%lld", (long long)v);
    else snprintf(buf, cap, "%.17g", v);
}

/* ---- payload tree -------------------------------------------------------------- */

static int payload_tree(const sbi_task *t, cJSON **out)
{
    int ok = 1;
    cJSON *root = cJSON_CreateObject(), *list, *fm;
    sbi__json_put(root, "name", cJSON_CreateString(t->name), &ok);
    sbi__json_put(root, "version", cJSON_CreateString(t->version), &ok);
    sbi__json_put(root, "preprocessing_version", cJSON_CreateNumber(SBI_PREPROCESSING_VERSION), &ok);
    list = sbi__json_put(root, "parameters", cJSON_CreateArray(), &ok);
    for (int i = 0; i < t->n_params; ++i) {
        const sbi_param *p = &t->params[i];
        cJSON *o = cJSON_CreateObject();
        sbi__json_put(o, "name", cJSON_CreateString(p->name), &ok);
        sbi__json_put(o, "prior", cJSON_CreateString(sbi__task_prior_names[p->prior]), &ok);
        if (p->prior == SBI_PRIOR_NORMAL || p->prior == SBI_PRIOR_TRUNCATED_NORMAL) {
            sbi__json_put(o, "mean", cJSON_CreateNumber(p->mean), &ok);
            sbi__json_put(o, "std", cJSON_CreateNumber(p->std), &ok);
        }
        if (p->prior != SBI_PRIOR_NORMAL) {
            sbi__json_put(o, "low", cJSON_CreateNumber(p->low), &ok);
            sbi__json_put(o, "high", cJSON_CreateNumber(p->high), &ok);
        }
        sbi__json_push(list, o, &ok);
    }
    list = sbi__json_put(root, "datasets", cJSON_CreateArray(), &ok);
    for (int i = 0; i < t->n_datasets; ++i) {
        const sbi_dataset *d = &t->datasets[i];
        cJSON *o = cJSON_CreateObject(), *c;
        sbi__json_put(o, "name", cJSON_CreateString(d->name), &ok);
        sbi__json_put(o, "modality", cJSON_CreateString(sbi__task_modality_names[d->modality]), &ok);
        sbi__json_put(o, "size", cJSON_CreateNumber(d->size), &ok);
        sbi__json_put(o, "coordinates", d->coordinates ? cJSON_CreateDoubleArray(d->coordinates, d->size) : cJSON_CreateNull(),
            &ok);
        sbi__json_put(o, "uncertainty", cJSON_CreateDoubleArray(d->uncertainty, d->size), &ok);
        c = sbi__json_put(o, "constraints", cJSON_CreateObject(), &ok);
        if (d->has_min) sbi__json_put(c, "min", cJSON_CreateNumber(d->value_min), &ok);
        if (d->has_max) sbi__json_put(c, "max", cJSON_CreateNumber(d->value_max), &ok);
        sbi__json_push(list, o, &ok);
    }
    fm = sbi__json_put(root, "forward_model", cJSON_CreateObject(), &ok);
    sbi__json_put(fm, "family", cJSON_CreateString(t->family), &ok);
    sbi__json_put(fm, "settings", cJSON_Duplicate(t->forward_settings, 1), &ok);
    if (t->plugin_library[0]) {
        const char *slash = strrchr(t->plugin_library, '/');
        sbi__json_put(fm, "library", cJSON_CreateString(slash ? slash + 1 : t->plugin_library), &ok);
    }
    if (!ok) {
        cJSON_Delete(root);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory building the fingerprint payload");
    }
    *out = root;
    return 0;
}

/* ---- canonical text ------------------------------------------------------------------ */

typedef struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *grown;
        while (cap < b->len + n + 1) cap *= 2;
        grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_cstr(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_cstr(b, esc);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

/* The members of an object sorted by key, into a new array (caller frees);
 * NULL with *n = 0 for an empty object, NULL with *n = -1 when out of memory. */
static const cJSON **sorted_members(const cJSON *obj, int *n)
{
    const cJSON **m;
    int k = 0;
    *n = cJSON_GetArraySize(obj);
    if (*n == 0) return NULL;
    m = malloc((size_t)*n * sizeof *m);
    if (!m) {
        *n = -1;
        return NULL;
    }
    for (const cJSON *c = obj->child; c; c = c->next) m[k++] = c;
    qsort(m, (size_t)k, sizeof *m, cmp_keys);
    return m;
}

static void canon(sbuf *b, const cJSON *x)
{
    char num[40];
    if (cJSON_IsObject(x)) {
        int n;
        const cJSON **m = sorted_members(x, &n);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        sb_put(b, "{", 1);
        for (int i = 0; i < n; ++i) {
            if (i) sb_put(b, ",", 1);
            sb_json_string(b, m[i]->string);
            sb_put(b, ":", 1);
            canon(b, m[i]);
        }
        sb_put(b, "}", 1);
        free(m);
    } else if (cJSON_IsArray(x)) {
        sb_put(b, "[", 1);
        for (const cJSON *c = x->child; c; c = c->next) {
            if (c != x->child) sb_put(b, ",", 1);
            canon(b, c);
        }
        sb_put(b, "]", 1);
    } else if (cJSON_IsString(x)) {
        sb_json_string(b, x->valuestring);
    } else if (cJSON_IsNumber(x)) {
        sbi__task_format_number(x->valuedouble, num, sizeof num);
        sb_cstr(b, num);
    } else if (cJSON_IsTrue(x)) {
        sb_cstr(b, "true");
    } else if (cJSON_IsFalse(x)) {
        sb_cstr(b, "false");
    } else {
        sb_cstr(b, "null");
    }
}

static int canonical_text(const cJSON *tree, char **text)
{
    sbuf b = {0};
    canon(&b, tree);
    if (b.failed) {
        free(b.data);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory writing canonical JSON");
    }
    *text = b.data;
    return 0;
}

int sbi_task_fingerprint_payload(const sbi_task *task, char **json_text)
{
    cJSON *tree;
    int err;
    SBI_CALL(payload_tree(task, &tree));
    err = canonical_text(tree, json_text);
    cJSON_Delete(tree);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    return 0;
}

int sbi__task_make_fingerprint(sbi_task *task)
{
    char *text;
    int err;
    SBI_CALL(sbi_task_fingerprint_payload(task, &text));
    err = sbi_sha256_hex(text, strlen(text), task->fingerprint);
    free(text);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    return 0;
}

/* ---- comparison ---------------------------------------------------------------------- */

typedef struct diffs {
    sbuf text;
    int listed, more;
} diffs;

/* A short rendering of a value for the difference list; numbers take the
 * shortest form that reads back to the same double. */
static void short_repr(const cJSON *x, char *out, size_t cap)
{
    if (!x) {
        snprintf(out, cap, "absent");
    } else if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) {
        for (int digits = 15; digits <= 17; ++digits) {
            snprintf(out, cap, "%.*g", digits, x->valuedouble);
            if (strtod(out, NULL) == x->valuedouble) break;
        }
    } else if (cJSON_IsObject(x)) {
        snprintf(out, cap, "a mapping");
    } else if (cJSON_IsArray(x)) {
        snprintf(out, cap, "%d values", cJSON_GetArraySize(x));
    } else {
        sbuf b = {0};
        canon(&b, x);
        if (b.failed || !b.data) snprintf(out, cap, "?");
        else if (b.len < cap) snprintf(out, cap, "%s", b.data);
        else snprintf(out, cap, "%.*s...", (int)(cap > 4 ? cap - 4 : 0), b.data);
        free(b.data);
    }
}

static void note(diffs *d, const char *path, const cJSON *a, const cJSON *b)
{
    char ra[64], rb[64], line[700];
    if (d->listed == SBI_DIFF_MAX_LISTED) {
        ++d->more;
        return;
    }
    short_repr(a, ra, sizeof ra);
    short_repr(b, rb, sizeof rb);
    snprintf(line, sizeof line, "%s%s (%s vs %s)", d->listed ? ", " : "", path[0] ? path : "(whole payload)", ra, rb);
    sb_cstr(&d->text, line);
    ++d->listed;
}

static int kind_of(const cJSON *x) { return x->type & 0xFF; }

static void diff(diffs *d, const char *path, const cJSON *a, const cJSON *b)
{
    char sub[512];
    if (kind_of(a) != kind_of(b)) {
        note(d, path, a, b);
    } else if (cJSON_IsObject(a)) {
        int na, nb, i = 0, j = 0;
        const cJSON **ma = sorted_members(a, &na), **mb = sorted_members(b, &nb);
        if (na < 0 || nb < 0) {
            d->text.failed = 1;
        } else {
            while (i < na || j < nb) {
                int c = i == na ? 1 : j == nb ? -1 : strcmp(ma[i]->string, mb[j]->string);
                const char *key = c <= 0 ? ma[i]->string : mb[j]->string;
                if (path[0]) snprintf(sub, sizeof sub, "%s.%s", path, key);
                else snprintf(sub, sizeof sub, "%s", key);
                if (c < 0) note(d, sub, ma[i++], NULL);
                else if (c > 0) note(d, sub, NULL, mb[j++]);
                else diff(d, sub, ma[i++], mb[j++]);
            }
        }
        free(ma);
        free(mb);
    } else if (cJSON_IsArray(a)) {
        int i = 0;
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) {
            note(d, path, a, b);
            return;
        }
        for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, ++i) {
            snprintf(sub, sizeof sub, "%s[%d]", path, i);
            diff(d, sub, x, y);
        }
    } else if (cJSON_IsNumber(a)) {
        if (a->valuedouble != b->valuedouble) note(d, path, a, b);
    } else if (cJSON_IsString(a)) {
        if (strcmp(a->valuestring, b->valuestring)) note(d, path, a, b);
    }
}

int sbi_task_compare(const sbi_task *expected, const sbi_task *found, const char *what)
{
    cJSON *ta = NULL, *tb = NULL;
    diffs d = {{0}, 0, 0};
    int err;
    if (!strcmp(expected->fingerprint, found->fingerprint)) return 0;
    SBI_CALL(payload_tree(expected, &ta));
    err = payload_tree(found, &tb);
    if (err) {
        cJSON_Delete(ta);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    diff(&d, "", ta, tb);
    cJSON_Delete(ta);
    cJSON_Delete(tb);
    if (d.more) {
        char tail[64];
        snprintf(tail, sizeof tail, " and %d more", d.more);
        sb_cstr(&d.text, tail);
    }
    err = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                     "%s: fingerprint mismatch (expected %.12s..., found %.12s...); differing fields: %s", what,
                     expected->fingerprint, found->fingerprint,
                     d.text.failed ? "(out of memory listing them)" : d.listed ? d.text.data : "(none found)");
    free(d.text.data);
    return err;
}
