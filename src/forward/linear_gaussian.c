/* The linear-Gaussian family: x = A theta + b.
 *
 * Its posterior is known in closed form when the priors are independent
 * normals and the observational noise is Gaussian, so it is the reference
 * problem against which the estimators are checked.
 *
 * Dims: P = n_params, M = n_outputs, N = rows of a batch.
 */
#include "forward/forward_impl.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rng.h"

/* Seeds are stored in JSON numbers (doubles): integers beyond 2^53 are not exact. */
#define LG_SEED_MAX 9007199254740992.0

typedef struct lg_state {
    int n_params, n_outputs;
    double *A; /* (M, P), owned */
    double *b; /* (M), owned */
} lg_state;

static void lg_destroy(void *state)
{
    lg_state *s = state;
    if (!s) return;
    free(s->A);
    free(s->b);
    free(s);
}

static int lg_number(const sbi_task *task, const cJSON *item, const char *what, double *v)
{
    SBI_CHECK(cJSON_IsNumber(item) && isfinite(item->valuedouble), SBI_ERR_INPUT,
              "%s: forward_model.settings.%s: expected a finite number", sbi__forward_origin(task), what);
    *v = item->valuedouble;
    return SBI_OK;
}

/* settings.A: M lists of P numbers; M is taken from A itself. */
static int lg_parse_A(const sbi_task *task, const cJSON *jA, lg_state *s)
{
    const char *origin = sbi__forward_origin(task);
    int m, i = 0;
    const cJSON *row;
    char what[64];

    SBI_CHECK(cJSON_IsArray(jA), SBI_ERR_INPUT,
              "%s: forward_model.settings.A: expected a list of %lld lists of %d numbers (n_outputs x n_params)",
              origin, (long long)task->n_outputs, task->n_params);
    m = cJSON_GetArraySize(jA);
    SBI_CHECK(m >= 1, SBI_ERR_INPUT, "%s: forward_model.settings.A: must have at least one row", origin);
    s->n_outputs = m;
    SBI_MALLOC(s->A, (size_t)m * (size_t)s->n_params);
    cJSON_ArrayForEach(row, jA)
    {
        int j = 0;
        const cJSON *e;
        SBI_CHECK(cJSON_IsArray(row), SBI_ERR_INPUT,
                  "%s: forward_model.settings.A[%d]: expected a list of %d numbers (one per parameter)", origin,
                  i, s->n_params);
        SBI_CHECK(cJSON_GetArraySize(row) == s->n_params, SBI_ERR_INPUT,
                  "%s: forward_model.settings.A[%d]: has %d numbers but the task has %d parameters", origin, i,
                  cJSON_GetArraySize(row), s->n_params);
        cJSON_ArrayForEach(e, row)
        {
            snprintf(what, sizeof what, "A[%d][%d]", i, j);
            SBI_CALL(lg_number(task, e, what, &s->A[(size_t)i * (size_t)s->n_params + (size_t)j]));
            ++j;
        }
        ++i;
    }
    return SBI_OK;
}

static int lg_parse_b(const sbi_task *task, const cJSON *jb, lg_state *s)
{
    const char *origin = sbi__forward_origin(task);
    const cJSON *e;
    int i = 0;
    char what[32];

    SBI_CHECK(cJSON_IsArray(jb), SBI_ERR_INPUT, "%s: forward_model.settings.b: expected a list of %d numbers",
              origin, s->n_outputs);
    SBI_CHECK(cJSON_GetArraySize(jb) == s->n_outputs, SBI_ERR_INPUT,
              "%s: forward_model.settings.b: has %d numbers but A has %d rows", origin, cJSON_GetArraySize(jb),
              s->n_outputs);
    cJSON_ArrayForEach(e, jb)
    {
        snprintf(what, sizeof what, "b[%d]", i);
        SBI_CALL(lg_number(task, e, what, &s->b[i]));
        ++i;
    }
    return SBI_OK;
}

/* A_ij ~ N(0, scale^2 / P), row i drawn from the stream (seed, i, INIT). */
static int lg_draw_A(const sbi_task *task, const cJSON *jseed, const cJSON *jscale, lg_state *s)
{
    const char *origin = sbi__forward_origin(task);
    double seed, scale = 1.0, sd;

    SBI_CALL(lg_number(task, jseed, "seed", &seed));
    SBI_CHECK(seed >= 0 && seed <= LG_SEED_MAX && seed == floor(seed), SBI_ERR_INPUT,
              "%s: forward_model.settings.seed: expected an integer in [0, 2^53], got %.17g", origin, seed);
    if (jscale) {
        SBI_CALL(lg_number(task, jscale, "scale", &scale));
        SBI_CHECK(scale > 0, SBI_ERR_INPUT, "%s: forward_model.settings.scale: must be positive, got %.17g",
                  origin, scale);
    }
    SBI_CHECK(task->n_outputs >= 1 && task->n_outputs <= INT_MAX, SBI_ERR_INPUT,
              "%s: forward_model.settings.seed: a seeded A needs between 1 and %d outputs, the datasets total "
              "%lld",
              origin, INT_MAX, (long long)task->n_outputs);
    s->n_outputs = (int)task->n_outputs;
    SBI_MALLOC(s->A, (size_t)s->n_outputs * (size_t)s->n_params);
    sd = scale / sqrt((double)s->n_params);
    for (int i = 0; i < s->n_outputs; ++i) {
        sbi_rng r;
        sbi_rng_init(&r, (uint64_t)seed, (uint64_t)i, SBI_STREAM_INIT, 0);
        double *row = s->A + (size_t)i * (size_t)s->n_params;
        for (int j = 0; j < s->n_params; ++j) row[j] = sd * sbi_rng_normal(&r);
    }
    return SBI_OK;
}

static int lg_parse(const sbi_task *task, lg_state *s)
{
    const char *origin = sbi__forward_origin(task);
    const cJSON *settings = task->forward_settings, *item;
    const cJSON *jA = NULL, *jb = NULL, *jseed = NULL, *jscale = NULL;

    SBI_CHECK(task->n_params >= 1, SBI_ERR_INPUT, "%s: parameters: the linear_gaussian family needs at least one",
              origin);
    s->n_params = task->n_params;
    SBI_CHECK(cJSON_IsObject(settings), SBI_ERR_INPUT,
              "%s: forward_model.settings: the linear_gaussian family needs a mapping with either A or seed",
              origin);
    cJSON_ArrayForEach(item, settings)
    {
        const char *key = item->string ? item->string : "";
        if (strcmp(key, "A") == 0)
            jA = item;
        else if (strcmp(key, "b") == 0)
            jb = item;
        else if (strcmp(key, "seed") == 0)
            jseed = item;
        else if (strcmp(key, "scale") == 0)
            jscale = item;
        else
            SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings.%s: unknown key (known: A, b, seed, scale)", origin,
                      key);
    }
    SBI_CHECK(jA || jseed, SBI_ERR_INPUT, "%s: forward_model.settings: the linear_gaussian family needs A or seed",
              origin);
    SBI_CHECK(!(jA && jseed), SBI_ERR_INPUT, "%s: forward_model.settings: give either A or seed, not both", origin);
    SBI_CHECK(!(jb && jseed), SBI_ERR_INPUT,
              "%s: forward_model.settings.b: only allowed with an explicit A (a seeded A has b = 0)", origin);
    SBI_CHECK(!(jscale && jA), SBI_ERR_INPUT,
              "%s: forward_model.settings.scale: only allowed with seed (it scales a drawn A)", origin);

    if (jA)
        SBI_CALL(lg_parse_A(task, jA, s));
    else
        SBI_CALL(lg_draw_A(task, jseed, jscale, s));
    SBI_CALLOC(s->b, s->n_outputs);
    if (jb) SBI_CALL(lg_parse_b(task, jb, s));
    return SBI_OK;
}

static int lg_create(const sbi_task *task, void **state, int64_t *n_outputs)
{
    lg_state *s;
    int err;

    SBI_CALLOC(s, 1);
    err = lg_parse(task, s);
    if (err) {
        lg_destroy(s);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    *state = s;
    *n_outputs = s->n_outputs;
    return SBI_OK;
}

/* out (N, M) = theta (N, P) A^T + 1 b^T, in row blocks that fit a BLAS int. */
static int lg_simulate(void *state, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                       double *out)
{
    const lg_state *s = state;
    const int64_t m = s->n_outputs, p = s->n_params;

    for (int64_t r = 0; r < n; ++r) memcpy(out + r * m, s->b, (size_t)m * sizeof *out);
    for (int64_t r0 = 0; r0 < n; r0 += INT_MAX) {
        int rows = (int)(n - r0 < INT_MAX ? n - r0 : INT_MAX);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)m, (int)p, 1.0, theta + r0 * p, (int)p,
                    s->A, (int)p, 1.0, out + r0 * m, (int)m);
    }
    return SBI_OK;
}

const sbi_forward_ops sbi__forward_linear_gaussian_ops = {
    .family = "linear_gaussian",
    .create = lg_create,
    .simulate = lg_simulate,
    .destroy = lg_destroy,
};

static int lg_state_of(sbi_forward fw, const lg_state **s)
{
    SBI_CHECK(fw, SBI_ERR_INTERNAL, "linear_gaussian: forward model is NULL");
    SBI_CHECK(fw->ops == &sbi__forward_linear_gaussian_ops, SBI_ERR_INPUT,
              "forward_model.family: the exact posterior needs the linear_gaussian family, not '%s'",
              fw->ops->family);
    *s = fw->state;
    return SBI_OK;
}

int sbi_linear_gaussian_matrices(sbi_forward fw, const double **A, const double **b)
{
    const lg_state *s = NULL;
    SBI_CALL(lg_state_of(fw, &s));
    if (A) *A = s->A;
    if (b) *b = s->b;
    return SBI_OK;
}

/* Gaussian posterior of x = A theta + b + e, e ~ N(0, diag(sigma^2)), theta_j ~ N(mu_j, std_j^2):
 *   precision Q = A^T S^-1 A + diag(1/std^2),  cov = Q^-1,
 *   mean = cov (A^T S^-1 (x - b) + mu / std^2).
 * The mean is solved from the Cholesky factor of Q, not multiplied by its inverse. */
int sbi_linear_gaussian_posterior(const sbi_task *task, sbi_forward fw, const double *x, double *mean, double *cov)
{
    const lg_state *s = NULL;
    const char *origin;
    int p, m, info;
    int64_t col = 0;
    double *w, *inv_var, *res; /* w: (M, P) = S^-1 A; inv_var, res: (M) */

    SBI_CHECK(task && x && mean && cov, SBI_ERR_INTERNAL, "sbi_linear_gaussian_posterior: NULL argument");
    SBI_CALL(lg_state_of(fw, &s));
    origin = sbi__forward_origin(task);
    p = s->n_params;
    m = s->n_outputs;
    SBI_CHECK(task->n_params == p && task->n_outputs == m, SBI_ERR_INPUT,
              "%s: the linear_gaussian model has %d parameters and %d outputs but the task has %d and %lld", origin,
              p, m, task->n_params, (long long)task->n_outputs);
    for (int j = 0; j < p; ++j) {
        const sbi_param *par = &task->params[j];
        SBI_CHECK(par->prior == SBI_PRIOR_NORMAL, SBI_ERR_INPUT,
                  "%s: parameters[%d] (%s): the exact linear-Gaussian posterior needs a normal prior", origin, j,
                  par->name);
        SBI_CHECK(par->std > 0 && isfinite(par->std) && isfinite(par->mean), SBI_ERR_INPUT,
                  "%s: parameters[%d] (%s): the normal prior needs a finite mean and a positive std", origin, j,
                  par->name);
    }
    for (int k = 0; k < task->n_datasets; ++k) {
        const sbi_dataset *d = &task->datasets[k];
        SBI_CHECK(d->uncertainty || d->size == 0, SBI_ERR_INPUT, "%s: datasets[%d] (%s).uncertainty: missing",
                  origin, k, d->name);
        for (int i = 0; i < d->size; ++i)
            SBI_CHECK(d->uncertainty[i] > 0 && isfinite(d->uncertainty[i]), SBI_ERR_INPUT,
                      "%s: datasets[%d] (%s).uncertainty[%d] = %g: the exact posterior needs a positive, finite "
                      "uncertainty",
                      origin, k, d->name, i, d->uncertainty[i]);
        col += d->size;
    }
    SBI_CHECK(col == m, SBI_ERR_INPUT, "%s: datasets: sizes total %lld but the model has %d outputs", origin,
              (long long)col, m);
    for (int i = 0; i < m; ++i)
        SBI_CHECK(isfinite(x[i]), SBI_ERR_INPUT, "observation value %d is not finite (%g)", i, x[i]);

    SBI_MALLOC(w, (size_t)m * (size_t)p);
    SBI_MALLOC(inv_var, m);
    SBI_MALLOC(res, m);
    col = 0;
    for (int k = 0; k < task->n_datasets; ++k)
        for (int i = 0; i < task->datasets[k].size; ++i, ++col) {
            double sig = task->datasets[k].uncertainty[i];
            inv_var[col] = 1.0 / (sig * sig);
        }
    for (int i = 0; i < m; ++i) {
        res[i] = x[i] - s->b[i];
        for (int j = 0; j < p; ++j) w[(size_t)i * p + j] = inv_var[i] * s->A[(size_t)i * p + j];
    }

    /* cov <- Q = A^T W + diag(1/std^2); mean <- A^T S^-1 (x - b) + mu/std^2. */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, m, 1.0, s->A, p, w, p, 0.0, cov, p);
    cblas_dgemv(CblasRowMajor, CblasTrans, m, p, 1.0, w, p, res, 1, 0.0, mean, 1);
    for (int j = 0; j < p; ++j) {
        double prec = 1.0 / (task->params[j].std * task->params[j].std);
        cov[(size_t)j * p + j] += prec;
        mean[j] += prec * task->params[j].mean;
    }
    free(w);
    free(inv_var);
    free(res);

    info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', p, cov, p);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "linear_gaussian posterior: dpotrf failed (info %d)", info);
    info = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', p, 1, cov, p, mean, 1);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "linear_gaussian posterior: dpotrs failed (info %d)", info);
    info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', p, cov, p);
    SBI_CHECK(info == 0, SBI_ERR_INTERNAL, "linear_gaussian posterior: dpotri failed (info %d)", info);
    /* dpotri leaves the inverse in the lower triangle; mirror it. */
    for (int i = 0; i < p; ++i)
        for (int j = i + 1; j < p; ++j) cov[(size_t)i * p + j] = cov[(size_t)j * p + i];
    return SBI_OK;
}
