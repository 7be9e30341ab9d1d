/* YAML text -> cJSON tree plus a side table of marks.
 *
 * Plain scalars are resolved with the YAML 1.2 core schema: null (~, null,
 * empty), booleans (true/false), integers (decimal, 0x hex, 0o octal) and
 * floats (including 1e3, .inf and .nan); everything else, and every quoted or
 * block scalar, is a string.  Non-finite numbers and duplicate keys are
 * rejected here, so the validator only ever sees finite numbers.
 */
#include "task/task_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nesting deeper than this, or more nodes than the budget (aliases can
 * expand a small text into a huge tree), is refused. */
#define SBI_YAML_MAX_DEPTH 64
#define SBI_YAML_MAX_NODES 50000000L

/* ---- marks table ---------------------------------------------------------- */

static size_t mark_hash(const cJSON *node, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)node;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)(h & (cap - 1));
}

static int marks_grow(sbi__task_marks *m)
{
    size_t cap = m->cap ? 2 * m->cap : 256;
    sbi__task_mark *old = m->slots, *slots;
    size_t old_cap = m->cap;
    SBI_CALLOC(slots, cap);
    for (size_t i = 0; i < old_cap; ++i) {
        if (!old[i].node) continue;
        size_t k = mark_hash(old[i].node, cap);
        while (slots[k].node) k = (k + 1) & (cap - 1);
        slots[k] = old[i];
    }
    free(old);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int sbi__task_marks_add(sbi__task_marks *m, const cJSON *node, int line, int column, int is_int, const char *text)
{
    size_t k;
    if (2 * (m->count + 1) > m->cap) SBI_CALL(marks_grow(m));
    k = mark_hash(node, m->cap);
    while (m->slots[k].node && m->slots[k].node != node) k = (k + 1) & (m->cap - 1);
    if (!m->slots[k].node) ++m->count;
    free(m->slots[k].text);
    m->slots[k].node = node;
    m->slots[k].line = line;
    m->slots[k].column = column;
    m->slots[k].is_int = is_int;
    m->slots[k].text = NULL;
    if (text) {
        m->slots[k].text = strdup(text);
        SBI_CHECK(m->slots[k].text, SBI_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

const sbi__task_mark *sbi__task_marks_find(const sbi__task_marks *m, const cJSON *node)
{
    size_t k;
    if (!m || !m->cap || !node) return NULL;
    k = mark_hash(node, m->cap);
    while (m->slots[k].node) {
        if (m->slots[k].node == node) return &m->slots[k];
        k = (k + 1) & (m->cap - 1);
    }
    return NULL;
}

void sbi__task_marks_free(sbi__task_marks *m)
{
    for (size_t i = 0; i < m->cap; ++i) free(m->slots[i].text);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

/* ---- plain scalar resolution ---------------------------------------------- */

typedef enum { SCALAR_STRING, SCALAR_NULL, SCALAR_BOOL, SCALAR_INT, SCALAR_FLOAT } scalar_kind;

static int all_in(const char *s, const char *set)
{
    if (!*s) return 0;
    for (; *s; ++s)
        if (!strchr(set, *s)) return 0;
    return 1;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, with *is_int for [-+]?[0-9]+. */
static int match_decimal(const char *s, int *is_int)
{
    int digits = 0, frac = 0, exp_part = 0;
    if (*s == '+' || *s == '-') ++s;
    while (isdigit((unsigned char)*s)) ++s, ++digits;
    if (*s == '.') {
        ++s;
        while (isdigit((unsigned char)*s)) ++s, ++frac;
        if (!digits && !frac) return 0;
        frac = frac ? frac : 1;
    } else if (!digits) {
        return 0;
    }
    if (*s == 'e' || *s == 'E') {
        int ed = 0;
        ++s;
        if (*s == '+' || *s == '-') ++s;
        while (isdigit((unsigned char)*s)) ++s, ++ed;
        if (!ed) return 0;
        exp_part = 1;
    }
    if (*s) return 0;
    *is_int = !frac && !exp_part;
    return 1;
}

static scalar_kind resolve_plain(const char *s, double *value, int *truth)
{
    int is_int = 0;
    const char *u = (*s == '+' || *s == '-') ? s + 1 : s;
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) return SCALAR_NULL;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *truth = 1;
        return SCALAR_BOOL;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *truth = 0;
        return SCALAR_BOOL;
    }
    if (!strcmp(u, ".inf") || !strcmp(u, ".Inf") || !strcmp(u, ".INF")) {
        *value = *s == '-' ? -INFINITY : INFINITY;
        return SCALAR_FLOAT;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        *value = NAN;
        return SCALAR_FLOAT;
    }
    if (!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) {
        *value = (double)strtoull(s + 2, NULL, 16);
        return SCALAR_INT;
    }
    if (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567")) {
        *value = (double)strtoull(s + 2, NULL, 8);
        return SCALAR_INT;
    }
    if (match_decimal(s, &is_int)) {
        *value = strtod(s, NULL);
        return is_int ? SCALAR_INT : SCALAR_FLOAT;
    }
    return SCALAR_STRING;
}

/* ---- conversion ------------------------------------------------------------ */

typedef struct conv {
    yaml_document_t *doc;
    const char *origin;
    sbi__task_marks *marks;
    long nodes;
} conv;

#define CONV_FAIL(c, line, col, path, ...)                                                              \
    return sbi__task_error((c)->origin, (line), (col), (path), __FILE__, __LINE__, __func__, __VA_ARGS__)

static int convert(conv *c, yaml_node_t *node, const char *path, int line, int col, int depth, cJSON **out);

static int convert_scalar(conv *c, yaml_node_t *node, const char *path, int line, int col, cJSON **out)
{
    const char *s = (const char *)node->data.scalar.value;
    double value = 0.0;
    int truth = 0, is_int = 0;
    scalar_kind kind = SCALAR_STRING;
    cJSON *item;
    if (strlen(s) != node->data.scalar.length) CONV_FAIL(c, line, col, path, "contains a NUL character");
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) kind = resolve_plain(s, &value, &truth);
    switch (kind) {
    case SCALAR_NULL: item = cJSON_CreateNull(); break;
    case SCALAR_BOOL: item = cJSON_CreateBool(truth); break;
    case SCALAR_INT:
    case SCALAR_FLOAT:
        if (!isfinite(value)) CONV_FAIL(c, line, col, path, "must be a finite number (got %s)", s);
        is_int = kind == SCALAR_INT;
        item = cJSON_CreateNumber(value);
        break;
    default: item = cJSON_CreateString(s); break;
    }
    SBI_CHECK(item, SBI_ERR_INTERNAL, "out of memory");
    if (sbi__task_marks_add(c->marks, item, line, col, is_int, kind == SCALAR_INT || kind == SCALAR_FLOAT ? s : NULL)) {
        cJSON_Delete(item);
        return SBI_ERR_INTERNAL;
    }
    *out = item;
    return 0;
}

static int convert_sequence(conv *c, yaml_node_t *node, const char *path, int depth, cJSON *item)
{
    int index = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; ++it, ++index) {
        yaml_node_t *child = yaml_document_get_node(c->doc, *it);
        char sub[512];
        cJSON *value = NULL;
        snprintf(sub, sizeof sub, "%s[%d]", path, index);
        SBI_CALL(convert(c, child, sub, (int)child->start_mark.line + 1, (int)child->start_mark.column + 1, depth + 1,
                         &value));
        cJSON_AddItemToArray(item, value);
    }
    return 0;
}

static int convert_mapping(conv *c, yaml_node_t *node, const char *path, int depth, cJSON *item)
{
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top; ++pr) {
        yaml_node_t *key = yaml_document_get_node(c->doc, pr->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, pr->value);
        int kl = (int)key->start_mark.line + 1, kc = (int)key->start_mark.column + 1;
        const char *name;
        char sub[512];
        cJSON *value = NULL;
        if (key->type != YAML_SCALAR_NODE) CONV_FAIL(c, kl, kc, path[0] ? path : "(top level)", "a key must be a scalar");
        name = (const char *)key->data.scalar.value;
        if (path[0]) snprintf(sub, sizeof sub, "%s.%s", path, name);
        else snprintf(sub, sizeof sub, "%s", name);
        if (cJSON_GetObjectItemCaseSensitive(item, name)) CONV_FAIL(c, kl, kc, sub, "duplicate key '%s'", name);
        SBI_CALL(convert(c, val, sub, kl, kc, depth + 1, &value));
        cJSON_AddItemToObject(item, name, value);
    }
    return 0;
}

/* Convert `node` into a new cJSON item *out (owned by the caller on success,
 * freed here on failure).  (line, col) is the mark recorded for the item. */
static int convert(conv *c, yaml_node_t *node, const char *path, int line, int col, int depth, cJSON **out)
{
    cJSON *item;
    int err;
    if (depth > SBI_YAML_MAX_DEPTH) CONV_FAIL(c, line, col, path, "nested too deeply");
    if (++c->nodes > SBI_YAML_MAX_NODES) CONV_FAIL(c, line, col, path, "too many nodes (alias expansion?)");
    if (node->type == YAML_SCALAR_NODE) return convert_scalar(c, node, path, line, col, out);
    item = node->type == YAML_SEQUENCE_NODE ? cJSON_CreateArray() : cJSON_CreateObject();
    SBI_CHECK(item, SBI_ERR_INTERNAL, "out of memory");
    err = sbi__task_marks_add(c->marks, item, line, col, 0, NULL);
    if (!err && node->type == YAML_SEQUENCE_NODE) err = convert_sequence(c, node, path, depth, item);
    else if (!err) err = convert_mapping(c, node, path, depth, item);
    if (err) {
        cJSON_Delete(item);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    *out = item;
    return 0;
}

/* The parser's complaint as an input error at its position. */
static int parser_error(const yaml_parser_t *p, const char *text, const char *origin)
{
    int line, col;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR) SBI_RAISE(SBI_ERR_INTERNAL, "%s: out of memory while parsing YAML", origin);
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset only. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && text[i]; ++i) {
            if (text[i] == '\n') ++line, col = 1;
            else ++col;
        }
        return sbi__task_error(origin, line, col, NULL, __FILE__, __LINE__, __func__, "invalid YAML text: %s",
                               problem);
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        return sbi__task_error(origin, line, col, NULL, __FILE__, __LINE__, __func__,
                               "YAML syntax error: %s (%s at line %d)", problem, p->context,
                               (int)p->context_mark.line + 1);
    return sbi__task_error(origin, line, col, NULL, __FILE__, __LINE__, __func__, "YAML syntax error: %s", problem);
}

int sbi__task_yaml_parse(const char *text, const char *origin, cJSON **root, sbi__task_marks *marks)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *top;
    conv c = {&doc, origin, marks, 0};
    int err = 0;
    *root = NULL;
    SBI_CHECK(yaml_parser_initialize(&parser), SBI_ERR_INTERNAL, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        err = parser_error(&parser, text, origin);
        yaml_parser_delete(&parser);
        return err;
    }
    top = yaml_document_get_root_node(&doc);
    if (!top) {
        err = sbi__task_error(origin, 0, 0, NULL, __FILE__, __LINE__, __func__, "the task file is empty");
    } else {
        err = convert(&c, top, "", (int)top->start_mark.line + 1, (int)top->start_mark.column + 1, 0, root);
    }
    yaml_document_delete(&doc);
    if (!err) {
        /* A second document is refused, and so is a syntax error after the first. */
        if (!yaml_parser_load(&parser, &extra)) {
            err = parser_error(&parser, text, origin);
        } else {
            yaml_node_t *more = yaml_document_get_root_node(&extra);
            if (more)
                err = sbi__task_error(origin, (int)more->start_mark.line + 1, (int)more->start_mark.column + 1, NULL,
                                      __FILE__, __LINE__, __func__, "a task file holds one YAML document");
            yaml_document_delete(&extra);
        }
        if (err) {
            cJSON_Delete(*root);
            *root = NULL;
        }
    }
    yaml_parser_delete(&parser);
    return err;
}
