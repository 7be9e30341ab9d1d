/* Flat weight/gradient/activation buffers and the named views into them. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/nn.h"
#include "exosbi/rng.h"

void sbi_layout_init(sbi_layout *lay, int max_batch)
{
    memset(lay, 0, sizeof(*lay));
    lay->max_batch = max_batch;
}

int sbi_layout_alloc(sbi_layout *lay)
{
    SBI_CHECK(!lay->binding, SBI_ERR_INTERNAL, "layout already allocated");
    SBI_CHECK(lay->max_batch >= 1, SBI_ERR_INTERNAL, "layout needs max_batch >= 1, got %d", lay->max_batch);
    lay->n_weights = lay->w_used;
    lay->n_acts = lay->a_used;
    lay->n_tensors = lay->t_used;
    lay->n_act_tensors = lay->at_used;
    SBI_CALLOC(lay->weights, lay->n_weights);
    SBI_CALLOC(lay->grads, lay->n_weights);
    SBI_CALLOC(lay->acts, lay->n_acts);
    SBI_CALLOC(lay->dacts, lay->n_acts);
    SBI_CALLOC(lay->tensors, lay->n_tensors);
    SBI_CALLOC(lay->act_tensors, lay->n_act_tensors);
    lay->w_used = lay->a_used = 0;
    lay->t_used = lay->at_used = 0;
    lay->binding = 1;
    return 0;
}

int sbi_layout_finish(const sbi_layout *lay)
{
    SBI_CHECK(lay->binding && lay->w_used == lay->n_weights && lay->a_used == lay->n_acts &&
                  lay->t_used == lay->n_tensors && lay->at_used == lay->n_act_tensors,
              SBI_ERR_INTERNAL, "layout passes disagree: %zu/%zu weights, %zu/%zu activations", lay->w_used,
              lay->n_weights, lay->a_used, lay->n_acts);
    return 0;
}

void sbi_layout_free(sbi_layout *lay)
{
    int max_batch = lay->max_batch;
    free(lay->weights);
    free(lay->grads);
    free(lay->acts);
    free(lay->dacts);
    free(lay->tensors);
    free(lay->act_tensors);
    sbi_layout_init(lay, max_batch);
}

sbi_real *sbi_layout_weight(sbi_layout *lay, sbi_real **grad, size_t size, int fan_in, int init, const char *fmt, ...)
{
    size_t off = lay->w_used;
    lay->w_used += size;
    if (!lay->binding) {
        lay->t_used++;
        if (grad) *grad = NULL;
        return NULL;
    }
    if (lay->t_used < lay->n_tensors) {
        sbi_tensor_info *t = &lay->tensors[lay->t_used];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof(t->name), fmt, ap);
        va_end(ap);
        t->offset = off;
        t->size = size;
        t->fan_in = fan_in;
        t->init = init;
    }
    lay->t_used++;
    /* A binding pass that asks for more than was counted is caught by
     * sbi_layout_finish; until then it must not write past the buffers. */
    if (lay->w_used > lay->n_weights) {
        if (grad) *grad = NULL;
        return NULL;
    }
    if (grad) *grad = lay->grads + off;
    return lay->weights + off;
}

static sbi_real *layout_act(sbi_layout *lay, sbi_real **dact, int width, int zeroed)
{
    size_t off = lay->a_used;
    lay->a_used += (size_t)lay->max_batch * (size_t)width;
    if (lay->binding && lay->at_used < lay->n_act_tensors) {
        lay->act_tensors[lay->at_used].offset = off;
        lay->act_tensors[lay->at_used].width = width;
        lay->act_tensors[lay->at_used].zeroed = zeroed;
    }
    lay->at_used++;
    if (!lay->binding || lay->a_used > lay->n_acts) {
        if (dact) *dact = NULL;
        return NULL;
    }
    if (dact) *dact = lay->dacts + off;
    return lay->acts + off;
}

sbi_real *sbi_layout_act(sbi_layout *lay, sbi_real **dact, int width) { return layout_act(lay, dact, width, !!dact); }

sbi_real *sbi_layout_act_overwritten(sbi_layout *lay, sbi_real **dact, int width)
{
    return layout_act(lay, dact, width, 0);
}

sbi_real *sbi_layout_scratch(sbi_layout *lay, size_t n)
{
    size_t rows = (size_t)(lay->max_batch > 0 ? lay->max_batch : 1);
    return layout_act(lay, NULL, (int)((n + rows - 1) / rows), 0);
}

void sbi_layout_init_weights(sbi_layout *lay, uint64_t seed)
{
    for (int i = 0; i < lay->n_tensors; ++i) {
        const sbi_tensor_info *t = &lay->tensors[i];
        sbi_real *w = lay->weights + t->offset;
        if (t->init == SBI_INIT_UNIFORM) {
            double bound = 1.0 / sqrt((double)(t->fan_in > 0 ? t->fan_in : 1));
            sbi_rng r;
            sbi_rng_init(&r, seed, (uint64_t)i, SBI_STREAM_INIT, 0);
            for (size_t k = 0; k < t->size; ++k) w[k] = (sbi_real)(bound * (2.0 * sbi_rng_uniform(&r) - 1.0));
        } else {
            memset(w, 0, t->size * sizeof(*w));
        }
    }
}

void sbi_layout_zero_grads(sbi_layout *lay)
{
    if (lay->n_weights) memset(lay->grads, 0, lay->n_weights * sizeof(*lay->grads));
}

void sbi_layout_zero_dacts(sbi_layout *lay, int B)
{
    if (B > lay->max_batch) B = lay->max_batch;
    if (B <= 0) return;
    for (int i = 0; i < lay->n_act_tensors; ++i) {
        const sbi_act_info *a = &lay->act_tensors[i];
        if (!a->zeroed) continue;
        memset(lay->dacts + a->offset, 0, (size_t)B * (size_t)a->width * sizeof(*lay->dacts));
    }
}
