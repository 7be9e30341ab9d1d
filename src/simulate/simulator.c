/* The simulator: prior -> forward model -> observational noise -> validity.
 *
 * Every random draw of simulation i comes from Philox keyed by (task seed, i,
 * purpose, attempt), so a row depends on its index alone, never on the block
 * it was simulated in, the rank that simulated it or the rows around it.
 * Attempt 0 is the first draw; an invalid row (NaN/inf, or a value outside a
 * dataset's constraints) is redrawn with attempt 1, 2, ... up to
 * SBI_SIMULATE_MAX_ATTEMPTS.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rng.h"
#include "exosbi/simulate.h"

#define SBI_SIMULATE_MAX_ATTEMPTS 1000

/* Physical parameters of simulation `index`, draw `attempt`. */
static void draw_theta(const sbi_task *task, int64_t index, uint32_t attempt, double *theta)
{
    sbi_rng rng;
    sbi_rng_init(&rng, task->seed, (uint64_t)index, SBI_STREAM_PRIOR, attempt);
    for (int j = 0; j < task->n_params; ++j) theta[j] = sbi_prior_from_cube(&task->params[j], sbi_rng_uniform(&rng));
}

/* The seed handed to the forward model for draw `attempt`: the task seed for
 * the first draw, a different one for each redraw so a stochastic simulator
 * does not repeat the noise that may have made the row invalid. */
static uint64_t simulator_seed(const sbi_task *task, uint32_t attempt)
{
    return attempt == 0 ? task->seed : task->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)attempt);
}

static void add_noise(const sbi_task *task, int64_t index, uint32_t attempt, double *x)
{
    sbi_rng rng;
    if (task->noise != SBI_NOISE_OBSERVATIONAL) return;
    sbi_rng_init(&rng, task->seed, (uint64_t)index, SBI_STREAM_NOISE, attempt);
    for (int k = 0; k < task->n_datasets; ++k) {
        const sbi_dataset *d = &task->datasets[k];
        double *xd = x + d->offset;
        for (int j = 0; j < d->size; ++j) {
            double e = sbi_rng_normal(&rng);
            if (d->uncertainty) xd[j] += d->uncertainty[j] * e;
        }
    }
}

/* 0 when the row is valid; otherwise 1 + the dataset that made it invalid. */
static int row_invalid(const sbi_task *task, const double *x)
{
    for (int k = 0; k < task->n_datasets; ++k) {
        const sbi_dataset *d = &task->datasets[k];
        const double *xd = x + d->offset;
        for (int j = 0; j < d->size; ++j) {
            /* The corpus stores float32: a finite double beyond its range is invalid too. */
            if (!isfinite(xd[j]) || !isfinite((float)xd[j])) return k + 1;
            if (d->has_min && xd[j] < d->value_min) return k + 1;
            if (d->has_max && xd[j] > d->value_max) return k + 1;
        }
    }
    return 0;
}

int sbi_simulate_rows(const sbi_task *task, sbi_forward fw, int64_t index0, int64_t n, double *theta, double *x,
                      int64_t *redrawn)
{
    const int P = task->n_params;
    const int64_t O = task->n_outputs;
    uint64_t *sim_index = NULL;
    int64_t *bad = NULL, n_bad = 0;
    double *rt = NULL, *rx = NULL;
    int st = 0, why = 0;
    uint32_t attempt;

    if (n <= 0) return 0;
    SBI_CHECK(sbi_forward_n_outputs(fw) == O, SBI_ERR_INTERNAL,
              "the forward model returns %lld values per simulation, the task's datasets hold %lld",
              (long long)sbi_forward_n_outputs(fw), (long long)O);
    SBI_MALLOC(sim_index, n);
    for (int64_t r = 0; r < n; ++r) {
        sim_index[r] = (uint64_t)(index0 + r);
        draw_theta(task, index0 + r, 0, theta + r * P);
    }
    /* The whole block goes through the forward model at once. */
    st = sbi_forward_simulate(fw, n, theta, sim_index, simulator_seed(task, 0), x);
    if (st) {
        free(sim_index);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    bad = malloc((size_t)n * sizeof *bad);
    if (!bad) {
        free(sim_index);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory");
    }
    for (int64_t r = 0; r < n; ++r) {
        add_noise(task, index0 + r, 0, x + r * O);
        if (row_invalid(task, x + r * O)) bad[n_bad++] = r;
    }

    /* Redraw only the invalid rows, all of one attempt in one forward call. */
    if (n_bad > 0) {
        rt = malloc((size_t)n_bad * (size_t)P * sizeof *rt);
        rx = malloc((size_t)n_bad * (size_t)O * sizeof *rx);
        if (!rt || !rx) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    }
    for (attempt = 1; !st && n_bad > 0 && attempt < SBI_SIMULATE_MAX_ATTEMPTS; ++attempt) {
        int64_t still = 0;
        for (int64_t j = 0; j < n_bad; ++j) {
            sim_index[j] = (uint64_t)(index0 + bad[j]);
            draw_theta(task, index0 + bad[j], attempt, rt + j * P);
        }
        *redrawn += n_bad;
        st = sbi_forward_simulate(fw, n_bad, rt, sim_index, simulator_seed(task, attempt), rx);
        if (st) break;
        for (int64_t j = 0; j < n_bad; ++j) {
            int64_t r = bad[j];
            add_noise(task, index0 + r, attempt, rx + j * O);
            why = row_invalid(task, rx + j * O);
            if (why) {
                bad[still++] = r;
            } else {
                memcpy(theta + r * P, rt + j * P, (size_t)P * sizeof *rt);
                memcpy(x + r * O, rx + j * O, (size_t)O * sizeof *rx);
            }
        }
        n_bad = still;
    }
    if (!st && n_bad > 0) {
        int k = why > 0 ? why - 1 : 0;
        const sbi_dataset *d = &task->datasets[k];
        st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                        "simulation %lld: no valid observation in %d draws from the prior: the forward model "
                        "returns NaN/inf%s for dataset '%s' (check the priors, the forward_model settings%s)",
                        (long long)(index0 + bad[0]), SBI_SIMULATE_MAX_ATTEMPTS,
                        d->has_min || d->has_max ? " or values outside its constraints" : "", d->name,
                        d->has_min || d->has_max ? " and the dataset's value constraints" : "");
    }
    free(sim_index);
    free(bad);
    free(rt);
    free(rx);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}
