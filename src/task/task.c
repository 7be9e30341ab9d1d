/* Task lifecycle: loading from YAML or stored JSON, the resolved JSON form,
 * the number of simulations, lookups. */
#include "task/task_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const sbi__task_prior_names[] = {"uniform", "log_uniform", "normal", "truncated_normal", NULL};
const char *const sbi__task_modality_names[] = {"spectrum", "photometry", "time_series", "auxiliary", NULL};
const char *const sbi__task_policy_names[] = {"sequential", "random", NULL};
const char *const sbi__task_noise_names[] = {"observational", "none", NULL};

int sbi__task_verror(const char *origin, int line, int column, const char *path, const char *file, int fline,
                     const char *func, const char *fmt, va_list ap)
{
    char what[2048], where[SBI_PATH_MAX + 64];
    vsnprintf(what, sizeof what, fmt, ap);
    if (line > 0) snprintf(where, sizeof where, "%s:%d:%d", origin, line, column);
    else snprintf(where, sizeof where, "%s", origin);
    if (path && path[0]) return sbi__raise(SBI_ERR_INPUT, file, fline, func, "%s: %s: %s", where, path, what);
    return sbi__raise(SBI_ERR_INPUT, file, fline, func, "%s: %s", where, what);
}

int sbi__task_error(const char *origin, int line, int column, const char *path, const char *file, int fline,
                    const char *func, const char *fmt, ...)
{
    va_list ap;
    int err;
    va_start(ap, fmt);
    err = sbi__task_verror(origin, line, column, path, file, fline, func, fmt, ap);
    va_end(ap);
    return err;
}

int sbi__task_resolve_splits(const double fractions[SBI_N_SPLITS], int64_t n, int64_t counts[SBI_N_SPLITS])
{
    int64_t validation = (int64_t)llround(fractions[SBI_SPLIT_VALIDATION] * (double)n);
    int64_t test = (int64_t)llround(fractions[SBI_SPLIT_TEST] * (double)n);
    if (n - validation - test < 0) return -1;
    counts[SBI_SPLIT_TRAIN] = n - validation - test;
    counts[SBI_SPLIT_VALIDATION] = validation;
    counts[SBI_SPLIT_TEST] = test;
    return 0;
}

/* ---- loading ---------------------------------------------------------------- */

int sbi_task_load_text(const char *text, const char *origin, sbi_task **task)
{
    sbi__task_marks marks = {0};
    cJSON *root = NULL;
    int err;
    *task = NULL;
    err = sbi__task_yaml_parse(text, origin, &root, &marks);
    if (!err) err = sbi__task_build(root, &marks, origin, task);
    cJSON_Delete(root);
    sbi__task_marks_free(&marks);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    return 0;
}

int sbi_task_load(const char *path, sbi_task **task)
{
    char *text = NULL;
    int err;
    *task = NULL;
    SBI_CHECK(strlen(path) < SBI_PATH_MAX, SBI_ERR_INPUT, "%.200s...: task file path is too long", path);
    SBI_CALL(sbi_read_file(path, &text, NULL));
    err = sbi_task_load_text(text, path, task);
    free(text);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    snprintf((*task)->path, sizeof (*task)->path, "%s", path);
    return 0;
}

int sbi_task_from_json(const char *json_text, const char *origin, sbi_task **task)
{
    cJSON *root;
    int err;
    *task = NULL;
    root = cJSON_Parse(json_text);
    if (!root) {
        const char *near = cJSON_GetErrorPtr();
        SBI_RAISE(SBI_ERR_INPUT, "%s: the stored task is not valid JSON (near '%.40s')", origin, near ? near : "");
    }
    err = sbi__task_build(root, NULL, origin, task);
    cJSON_Delete(root);
    if (err) return sbi__trace(err, __FILE__, __LINE__, __func__);
    return 0;
}

void sbi_task_destroy(sbi_task **task)
{
    sbi_task *t;
    if (!task || !*task) return;
    t = *task;
    for (int i = 0; t->datasets && i < t->n_datasets; ++i) {
        free(t->datasets[i].coordinates);
        free(t->datasets[i].uncertainty);
    }
    free(t->datasets);
    free(t->params);
    cJSON_Delete(t->forward_settings);
    cJSON_Delete(t->training);
    cJSON_Delete(t->json);
    free(t);
    *task = NULL;
}

int sbi_task_set_n_simulations(sbi_task *task, int64_t n)
{
    int64_t counts[SBI_N_SPLITS];
    SBI_CHECK(n >= 1, SBI_ERR_INPUT, "the number of simulations must be at least 1 (got %lld)", (long long)n);
    if (task->splits_are_fractions) {
        SBI_CHECK(sbi__task_resolve_splits(task->split_fractions, n, counts) == 0, SBI_ERR_INPUT,
                  "%s: simulation.splits: these fractions of %lld simulations leave none for train",
                  task->path[0] ? task->path : task->name, (long long)n);
    } else {
        SBI_CHECK(n == task->n_simulations, SBI_ERR_INPUT,
                  "%s: simulation.splits: the splits are counts (train %lld, validation %lld, test %lld) that sum "
                  "to %lld, not %lld; give the splits as fractions to change the number of simulations",
                  task->path[0] ? task->path : task->name, (long long)task->split_counts[SBI_SPLIT_TRAIN],
                  (long long)task->split_counts[SBI_SPLIT_VALIDATION], (long long)task->split_counts[SBI_SPLIT_TEST],
                  (long long)task->n_simulations, (long long)n);
        memcpy(counts, task->split_counts, sizeof counts);
    }
    task->n_simulations = n;
    memcpy(task->split_counts, counts, sizeof counts);
    SBI_CALL(sbi__task_make_json(task));
    return 0;
}

int sbi_task_param_index(const sbi_task *task, const char *name)
{
    for (int i = 0; i < task->n_params; ++i)
        if (!strcmp(task->params[i].name, name)) return i;
    return -1;
}

int sbi_task_dataset_index(const sbi_task *task, const char *name)
{
    for (int i = 0; i < task->n_datasets; ++i)
        if (!strcmp(task->datasets[i].name, name)) return i;
    return -1;
}

/* ---- the resolved JSON form ------------------------------------------------------ */

/* Builders that take ownership of `item` and clear *ok when anything failed
 * to allocate, so a tree is either complete or reported as out of memory. */
cJSON *sbi__json_put(cJSON *obj, const char *key, cJSON *item, int *ok)
{
    if (!obj || !item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        *ok = 0;
        return NULL;
    }
    return item;
}

void sbi__json_push(cJSON *list, cJSON *item, int *ok)
{
    if (!list || !item || !cJSON_AddItemToArray(list, item)) {
        cJSON_Delete(item);
        *ok = 0;
    }
}

static cJSON *param_json(const sbi_param *p, int *ok)
{
    cJSON *o = cJSON_CreateObject();
    sbi__json_put(o, "name", cJSON_CreateString(p->name), ok);
    sbi__json_put(o, "prior", cJSON_CreateString(sbi__task_prior_names[p->prior]), ok);
    if (p->prior == SBI_PRIOR_NORMAL || p->prior == SBI_PRIOR_TRUNCATED_NORMAL) {
        sbi__json_put(o, "mean", cJSON_CreateNumber(p->mean), ok);
        sbi__json_put(o, "std", cJSON_CreateNumber(p->std), ok);
    }
    if (p->prior != SBI_PRIOR_NORMAL) {
        sbi__json_put(o, "low", cJSON_CreateNumber(p->low), ok);
        sbi__json_put(o, "high", cJSON_CreateNumber(p->high), ok);
    }
    sbi__json_put(o, "unit", cJSON_CreateString(p->unit), ok);
    sbi__json_put(o, "label", cJSON_CreateString(p->label), ok);
    return o;
}

static cJSON *dataset_json(const sbi_dataset *d, int *ok)
{
    cJSON *o = cJSON_CreateObject();
    sbi__json_put(o, "name", cJSON_CreateString(d->name), ok);
    sbi__json_put(o, "modality", cJSON_CreateString(sbi__task_modality_names[d->modality]), ok);
    sbi__json_put(o, "size", cJSON_CreateNumber(d->size), ok);
    if (d->coordinates) sbi__json_put(o, "coordinates", cJSON_CreateDoubleArray(d->coordinates, d->size), ok);
    sbi__json_put(o, "uncertainty", cJSON_CreateDoubleArray(d->uncertainty, d->size), ok);
    if (d->has_min || d->has_max) {
        cJSON *c = sbi__json_put(o, "constraints", cJSON_CreateObject(), ok);
        if (d->has_min) sbi__json_put(c, "min", cJSON_CreateNumber(d->value_min), ok);
        if (d->has_max) sbi__json_put(c, "max", cJSON_CreateNumber(d->value_max), ok);
    }
    return o;
}

/* The splits as given: fractions when there are any, else the counts. */
static cJSON *splits_json(const int64_t counts[SBI_N_SPLITS], const double *fractions, int *ok)
{
    cJSON *o = cJSON_CreateObject();
    for (int s = 0; s < SBI_N_SPLITS; ++s)
        sbi__json_put(o, sbi_split_names[s], cJSON_CreateNumber(fractions ? fractions[s] : (double)counts[s]), ok);
    return o;
}

int sbi__task_make_json(sbi_task *t)
{
    int ok = 1;
    cJSON *root = cJSON_CreateObject(), *list, *fm, *sim;
    sbi__json_put(root, "name", cJSON_CreateString(t->name), &ok);
    sbi__json_put(root, "version", cJSON_CreateString(t->version), &ok);
    list = sbi__json_put(root, "parameters", cJSON_CreateArray(), &ok);
    for (int i = 0; i < t->n_params; ++i) sbi__json_push(list, param_json(&t->params[i], &ok), &ok);
    fm = sbi__json_put(root, "forward_model", cJSON_CreateObject(), &ok);
    sbi__json_put(fm, "family", cJSON_CreateString(t->family), &ok);
    if (t->plugin_library[0]) sbi__json_put(fm, "library", cJSON_CreateString(t->plugin_library), &ok);
    sbi__json_put(fm, "settings", cJSON_Duplicate(t->forward_settings, 1), &ok);
    list = sbi__json_put(root, "datasets", cJSON_CreateArray(), &ok);
    for (int i = 0; i < t->n_datasets; ++i) sbi__json_push(list, dataset_json(&t->datasets[i], &ok), &ok);
    sim = sbi__json_put(root, "simulation", cJSON_CreateObject(), &ok);
    sbi__json_put(sim, "n_simulations", cJSON_CreateNumber((double)t->n_simulations), &ok);
    sbi__json_put(sim, "batch_size", cJSON_CreateNumber(t->batch_size), &ok);
    sbi__json_put(sim, "seed", cJSON_CreateNumber((double)t->seed), &ok);
    sbi__json_put(sim, "splits", splits_json(t->split_counts, t->splits_are_fractions ? t->split_fractions : NULL, &ok), &ok);
    sbi__json_put(sim, "split_counts", splits_json(t->split_counts, NULL, &ok), &ok);
    sbi__json_put(sim, "split_policy", cJSON_CreateString(sbi__task_policy_names[t->split_policy]), &ok);
    sbi__json_put(sim, "split_seed", cJSON_CreateNumber((double)t->split_seed), &ok);
    sbi__json_put(sim, "noise", cJSON_CreateString(sbi__task_noise_names[t->noise]), &ok);
    sbi__json_put(root, "training", cJSON_Duplicate(t->training, 1), &ok);
    if (!ok) {
        cJSON_Delete(root);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory building the task JSON");
    }
    cJSON_Delete(t->json);
    t->json = root;
    return 0;
}
