/* Helpers shared by the forward-model tests: a task built by hand (so the
 * tests do not depend on the YAML loader) and an error-message check.
 * Each test file declares the prototypes it uses. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/task.h"

/* A task with n_params normal(0, 1) parameters named p0, p1, ... and one
 * auxiliary dataset per entry of sizes[] with uncertainty 1 everywhere.
 * settings_json may be NULL (no settings).  Returns NULL on failure. */
sbi_task *fwtest_task_new(const char *family, int n_params, const int *sizes, int n_datasets,
                          const char *settings_json)
{
    sbi_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    snprintf(t->path, sizeof t->path, "hand-made-task.yaml");
    snprintf(t->name, sizeof t->name, "forward-test");
    snprintf(t->version, sizeof t->version, "1.0.0");
    snprintf(t->family, sizeof t->family, "%s", family);
    t->n_params = n_params;
    t->params = calloc((size_t)(n_params > 0 ? n_params : 1), sizeof *t->params);
    for (int j = 0; j < n_params; ++j) {
        snprintf(t->params[j].name, sizeof t->params[j].name, "p%d", j);
        t->params[j].prior = SBI_PRIOR_NORMAL;
        t->params[j].mean = 0.0;
        t->params[j].std = 1.0;
    }
    t->n_datasets = n_datasets;
    t->datasets = calloc((size_t)(n_datasets > 0 ? n_datasets : 1), sizeof *t->datasets);
    for (int k = 0; k < n_datasets; ++k) {
        sbi_dataset *d = &t->datasets[k];
        snprintf(d->name, sizeof d->name, "d%d", k);
        d->modality = SBI_MODALITY_AUXILIARY;
        d->size = sizes[k];
        d->offset = t->n_outputs;
        d->uncertainty = calloc((size_t)(sizes[k] > 0 ? sizes[k] : 1), sizeof *d->uncertainty);
        for (int i = 0; i < sizes[k]; ++i) d->uncertainty[i] = 1.0;
        t->n_outputs += sizes[k];
    }
    if (settings_json) {
        t->forward_settings = cJSON_Parse(settings_json);
        if (!t->forward_settings) fprintf(stderr, "fwtest_task_new: bad JSON %s\n", settings_json);
    }
    return t;
}

void fwtest_task_free(sbi_task *t)
{
    if (!t) return;
    for (int k = 0; k < t->n_datasets; ++k) free(t->datasets[k].uncertainty);
    free(t->datasets);
    free(t->params);
    cJSON_Delete(t->forward_settings);
    free(t);
}

/* 1 when rc == code and the recorded message contains every non-NULL needle;
 * otherwise prints what was found and returns 0.  Clears the recorded error. */
int fwtest_error_is(int rc, int code, const char *needle1, const char *needle2)
{
    const char *msg = sbi_error_message();
    int ok = rc == code && (!needle1 || strstr(msg, needle1)) && (!needle2 || strstr(msg, needle2));
    if (!ok)
        fprintf(stderr, "expected status %d with \"%s\" and \"%s\", got %d: \"%s\"\n", code,
                needle1 ? needle1 : "", needle2 ? needle2 : "", rc, msg);
    sbi_error_clear();
    return ok;
}
