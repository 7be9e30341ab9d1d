/* The forward-model interface: creation through the registry, simulation,
 * and destruction.  Families implement sbi_forward_ops; this file owns the
 * checks that every family shares (the family exists, the output length
 * matches the task's datasets, the arguments of a simulate call are sane).
 */
#include "forward/forward_impl.h"

#include <stdlib.h>
#include <string.h>

const char *sbi__forward_origin(const sbi_task *task)
{
    return task->path[0] ? task->path : "task";
}

/* "linear_gaussian, plugin": the registered family names, for messages. */
static void known_families(char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; sbi_forward_registry[i]; ++i) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", sbi_forward_registry[i]->family);
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
    }
}

static const sbi_forward_ops *find_family(const char *family)
{
    for (int i = 0; sbi_forward_registry[i]; ++i)
        if (strcmp(sbi_forward_registry[i]->family, family) == 0) return sbi_forward_registry[i];
    return NULL;
}

static int forward_create(const sbi_task *task, const sbi_comm *c, sbi_forward *fw)
{
    const sbi_forward_ops *ops;
    struct sbi_forward_s *f;
    void *state = NULL;
    int64_t n_outputs = -1;
    char known[256];

    SBI_CHECK(task && fw, SBI_ERR_INTERNAL, "sbi_forward_create: task and fw must not be NULL");
    *fw = NULL;
    ops = find_family(task->family);
    if (!ops) {
        known_families(known, sizeof known);
        SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.family: unknown family '%s' (known: %s)",
                  sbi__forward_origin(task), task->family, known);
    }

    if (c && ops->create_on)
        SBI_CALL(ops->create_on(task, c, &state, &n_outputs));
    else
        SBI_CALL(ops->create(task, &state, &n_outputs));
    if (n_outputs != task->n_outputs) {
        ops->destroy(state);
        SBI_RAISE(SBI_ERR_INPUT,
                  "%s: forward_model: the '%s' model produces %lld outputs per simulation but the datasets "
                  "total %lld values",
                  sbi__forward_origin(task), ops->family, (long long)n_outputs, (long long)task->n_outputs);
    }

    f = calloc(1, sizeof *f);
    if (!f) {
        ops->destroy(state);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory allocating %zu bytes", sizeof *f);
    }
    f->ops = ops;
    f->state = state;
    f->n_outputs = n_outputs;
    *fw = f;
    return SBI_OK;
}

int sbi_forward_create(const sbi_task *task, sbi_forward *fw) { return forward_create(task, NULL, fw); }

int sbi_forward_create_on(const sbi_task *task, const sbi_comm *c, sbi_forward *fw)
{
    return forward_create(task, c, fw);
}

void sbi_forward_destroy(sbi_forward *fw)
{
    if (!fw || !*fw) return;
    (*fw)->ops->destroy((*fw)->state);
    free(*fw);
    *fw = NULL;
}

int sbi_forward_simulate(sbi_forward fw, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                         double *out)
{
    SBI_CHECK(fw, SBI_ERR_INTERNAL, "sbi_forward_simulate: fw is NULL");
    SBI_CHECK(n >= 0, SBI_ERR_INTERNAL, "sbi_forward_simulate: negative row count %lld", (long long)n);
    if (n == 0) return SBI_OK;
    SBI_CHECK(theta && sim_index && out, SBI_ERR_INTERNAL, "sbi_forward_simulate: NULL array for %lld rows",
              (long long)n);
    SBI_CALL(fw->ops->simulate(fw->state, n, theta, sim_index, seed, out));
    return SBI_OK;
}

int64_t sbi_forward_n_outputs(sbi_forward fw) { return fw ? fw->n_outputs : -1; }

const char *sbi_forward_family(sbi_forward fw) { return fw ? fw->ops->family : ""; }
