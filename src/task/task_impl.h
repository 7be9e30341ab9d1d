/* Internals of the task module, shared by its source files.
 *
 * Loading is two steps: the YAML text becomes a cJSON tree plus a side table
 * of marks (where each node sat in the file, and whether a plain scalar was
 * an integer); then one validator turns a cJSON tree into an sbi_task.  JSON
 * stored in output files goes through the same validator with no marks.
 */
#ifndef EXOSBI_TASK_IMPL_H
#define EXOSBI_TASK_IMPL_H

#include <cjson/cJSON.h>
#include <stdarg.h>

#include "exosbi/task.h"

/* Where one cJSON node came from.  For an object member the mark is its key's
 * position (messages name the key path); for a list item it is the item's. */
typedef struct sbi__task_mark {
    const cJSON *node;
    int line, column; /* 1-based */
    int is_int;       /* a plain scalar written as an integer */
    char *text;       /* the scalar's text as written (owned), NULL for collections */
} sbi__task_mark;

/* Open-addressing hash table from node pointer to mark. */
typedef struct sbi__task_marks {
    sbi__task_mark *slots; /* (cap) */
    size_t cap, count;
} sbi__task_marks;

int sbi__task_marks_add(sbi__task_marks *m, const cJSON *node, int line, int column, int is_int, const char *text);
const sbi__task_mark *sbi__task_marks_find(const sbi__task_marks *m, const cJSON *node);
void sbi__task_marks_free(sbi__task_marks *m);

/* Parse YAML text into *root (caller deletes) and marks (caller frees, also on failure). */
int sbi__task_yaml_parse(const char *text, const char *origin, cJSON **root, sbi__task_marks *marks);

/* Validate a task tree and build the task.  `marks` is NULL for JSON input,
 * which also means paths inside it are already resolved.  On failure *task
 * stays NULL and nothing is leaked. */
int sbi__task_build(const cJSON *root, const sbi__task_marks *marks, const char *origin, sbi_task **task);

/* The whole resolved task as JSON (into task->json, replacing any previous one). */
int sbi__task_make_json(sbi_task *task);
/* Fill task->fingerprint from the canonical payload. */
int sbi__task_make_fingerprint(sbi_task *task);

/* Raise SBI_ERR_INPUT with "origin:line:column: path: message"; the position
 * is left out when line <= 0 and the path when it is NULL or empty. */
int sbi__task_error(const char *origin, int line, int column, const char *path, const char *file, int fline,
                    const char *func, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
int sbi__task_verror(const char *origin, int line, int column, const char *path, const char *file, int fline,
                     const char *func, const char *fmt, va_list ap) __attribute__((format(printf, 8, 0)));

/* Names of the enum values, indexed by the enum, NULL-terminated. */
extern const char *const sbi__task_prior_names[];
extern const char *const sbi__task_modality_names[];
extern const char *const sbi__task_policy_names[];
extern const char *const sbi__task_noise_names[];

/* Split counts from fractions: validation = round(f_v n), test = round(f_t n),
 * train = the rest.  Returns -1 (counts untouched) when train would be negative. */
int sbi__task_resolve_splits(const double fractions[SBI_N_SPLITS], int64_t n, int64_t counts[SBI_N_SPLITS]);

/* Numbers the way the canonical payload writes them: integral values below
 * 2^53 as integers, everything else with %.17g. */
void sbi__task_format_number(double v, char *buf, size_t cap);

/* JSON tree builders that take ownership of `item` and clear *ok when anything
 * failed to allocate, so a tree is either complete or reported as out of memory. */
cJSON *sbi__json_put(cJSON *obj, const char *key, cJSON *item, int *ok);
void sbi__json_push(cJSON *list, cJSON *item, int *ok);

#endif
