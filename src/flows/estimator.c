/* The family-independent half of the estimator: configuration (defaults,
 * JSON, validation), lifecycle, argument checks and chunked sampling. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"

struct sbi_estimator_s {
    sbi_estimator_config cfg;
    const sbi_estimator_ops *ops;
    void *impl;     /* (ops->impl_size bytes) the family's state: views into lay */
    sbi_layout lay; /* owns weights, grads, acts, dacts */
    sbi_real *z;    /* (max_batch, D) latent draws of sbi_estimator_sample */
    int last_B;     /* rows of the last forward, -1 when the caches hold none */
};

/* Integer fields of the configuration with their accepted ranges:
 * X(field, min, max).  Drives validation and the JSON round trip. */
#define SBI_CONFIG_INT_FIELDS(X)                                  \
    X(n_params, 1, 4096)                                          \
    X(n_inputs, 1, 1 << 24)                                       \
    X(embed_dim, 1, 1 << 16)                                      \
    X(embed_hidden, 1, 1 << 16)                                   \
    X(embed_layers, 0, SBI_MLP_MAX_LAYERS - 1)                    \
    X(n_transforms, 1, 256)                                       \
    X(hidden, 1, 1 << 16)                                         \
    X(hidden_layers, 1, SBI_MLP_MAX_LAYERS - 1)                   \
    X(max_batch, 1, 1 << 20)

/* Seeds above 2^53 cannot travel as a JSON number; they are written as a
 * decimal string, and both forms are read. */
#define SBI_JSON_EXACT_INT 9007199254740992.0

static const sbi_estimator_ops *find_family(const char *family)
{
    for (int i = 0; sbi_estimator_registry[i]; ++i)
        if (strcmp(sbi_estimator_registry[i]->family, family) == 0) return sbi_estimator_registry[i];
    return NULL;
}

const char *sbi_estimator_family_name(int i)
{
    int n = 0;
    while (sbi_estimator_registry[n]) ++n;
    return i >= 0 && i < n ? sbi_estimator_registry[i]->family : NULL;
}

static int config_check(const sbi_estimator_config *cfg)
{
    const sbi_estimator_ops *ops;
    int lmin = sbi_conv_encoder_min_length(SBI_CONV1D_KERNEL, SBI_CONV1D_POOL);
    SBI_CHECK(memchr(cfg->family, '\0', sizeof(cfg->family)), SBI_ERR_INPUT, "estimator family is not terminated");
    SBI_CHECK(memchr(cfg->embedding, '\0', sizeof(cfg->embedding)) && sbi__embedding_kind(cfg->embedding) >= 0,
              SBI_ERR_INPUT, "estimator field 'embedding' must be mlp, conv1d, conv1d_full, patch, photometry or "
              "hierarchical");
    SBI_CALL(sbi_estimator_blocks_check(cfg));
    SBI_CHECK(sbi__embedding_kind(cfg->embedding) != SBI__EMBED_CONV1D || cfg->n_inputs >= lmin, SBI_ERR_INPUT,
              "estimator field 'embedding': conv1d needs n_inputs >= %d, got %d", lmin, cfg->n_inputs);
    SBI_CHECK(cfg->n_bins >= 2 && cfg->n_bins <= SBI_RQS_MAX_BINS, SBI_ERR_INPUT,
              "estimator field 'n_bins' is %d, must be in [2, %d]", cfg->n_bins, SBI_RQS_MAX_BINS);
    SBI_CHECK(cfg->tail_bound > 0 && cfg->tail_bound <= 1e3, SBI_ERR_INPUT,
              "estimator field 'tail_bound' is %g, must be in (0, 1000]", cfg->tail_bound);
    ops = find_family(cfg->family);
    SBI_CHECK(ops, SBI_ERR_INPUT, "unknown estimator family '%s' (field 'family')", cfg->family);
#define SBI_CONFIG_CHECK(field, lo, hi)                                                                      \
    SBI_CHECK(cfg->field >= (lo) && cfg->field <= (hi), SBI_ERR_INPUT,                                      \
              "estimator field '" #field "' is %d, must be in [%d, %d]", cfg->field, (int)(lo), (int)(hi));
    SBI_CONFIG_INT_FIELDS(SBI_CONFIG_CHECK)
#undef SBI_CONFIG_CHECK
    if (ops->validate) SBI_CALL(ops->validate(cfg));
    return 0;
}

int sbi_estimator_config_default(sbi_estimator_config *cfg, const char *family, int n_params, int n_inputs)
{
    const sbi_estimator_ops *ops;
    int lg = 0;
    SBI_CHECK(family && strlen(family) < sizeof(cfg->family), SBI_ERR_INPUT, "bad estimator family name");
    ops = find_family(family);
    SBI_CHECK(ops, SBI_ERR_INPUT, "unknown estimator family '%s'", family);
    SBI_CHECK(n_params >= 1 && n_inputs >= 1, SBI_ERR_INPUT,
              "an estimator needs n_params >= 1 and n_inputs >= 1, got %d and %d", n_params, n_inputs);
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->family, family);
    cfg->n_params = n_params;
    cfg->n_inputs = n_inputs;
    cfg->embed_dim = n_inputs > 32 ? 64 : (2 * n_inputs < 8 ? 8 : 2 * n_inputs);
    cfg->embed_hidden = 64;
    cfg->embed_layers = 2;
    /* Five layers up to ten parameters, then 2 ceil(log2 D) so each dim is
     * transformed and mixed often enough. */
    while ((1 << lg) < n_params) ++lg;
    cfg->n_transforms = (n_params <= 10 || 2 * lg < 5) ? 5 : 2 * lg;
    cfg->hidden = 64;
    cfg->hidden_layers = 2;
    cfg->seed = 0;
    cfg->max_batch = 512;
    strcpy(cfg->embedding, "mlp");
    cfg->n_bins = 10;
    cfg->tail_bound = 3.0;
    if (ops->defaults) ops->defaults(cfg);
    SBI_CALL(config_check(cfg));
    return 0;
}

cJSON *sbi_estimator_config_to_json(const sbi_estimator_config *cfg)
{
    cJSON *j = cJSON_CreateObject();
    int ok = j != NULL;
    ok = ok && cJSON_AddStringToObject(j, "family", cfg->family);
#define SBI_CONFIG_TO_JSON(field, lo, hi) ok = ok && cJSON_AddNumberToObject(j, #field, cfg->field);
    SBI_CONFIG_INT_FIELDS(SBI_CONFIG_TO_JSON)
#undef SBI_CONFIG_TO_JSON
    ok = ok && cJSON_AddStringToObject(j, "embedding", cfg->embedding);
    ok = ok && cJSON_AddNumberToObject(j, "n_bins", cfg->n_bins);
    ok = ok && cJSON_AddNumberToObject(j, "tail_bound", cfg->tail_bound);
    if (cfg->n_sigmoids) ok = ok && cJSON_AddNumberToObject(j, "n_sigmoids", cfg->n_sigmoids);
    if (cfg->bisection_steps) ok = ok && cJSON_AddNumberToObject(j, "bisection_steps", cfg->bisection_steps);
    if (cfg->ode_solver[0]) ok = ok && cJSON_AddStringToObject(j, "ode_solver", cfg->ode_solver);
    if (cfg->ode_steps) ok = ok && cJSON_AddNumberToObject(j, "ode_steps", cfg->ode_steps);
    if (cfg->time_features) ok = ok && cJSON_AddNumberToObject(j, "time_features", cfg->time_features);
    ok = ok && sbi_estimator_blocks_to_json(cfg, j) == 0;
    if ((double)cfg->seed < SBI_JSON_EXACT_INT) {
        ok = ok && cJSON_AddNumberToObject(j, "seed", (double)cfg->seed);
    } else {
        char text[24];
        snprintf(text, sizeof(text), "%llu", (unsigned long long)cfg->seed);
        ok = ok && cJSON_AddStringToObject(j, "seed", text);
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int json_int(const cJSON *json, const char *field, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, field);
    double d;
    SBI_CHECK(v, SBI_ERR_INPUT, "estimator config: missing field '%s'", field);
    SBI_CHECK(cJSON_IsNumber(v), SBI_ERR_INPUT, "estimator config: field '%s' must be a number", field);
    d = v->valuedouble;
    SBI_CHECK(d == floor(d) && d >= INT_MIN && d <= INT_MAX, SBI_ERR_INPUT,
              "estimator config: field '%s' must be an integer, got %g", field, d);
    *out = (int)d;
    return 0;
}

static int json_seed(const cJSON *json, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "seed");
    SBI_CHECK(v, SBI_ERR_INPUT, "estimator config: missing field 'seed'");
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        SBI_CHECK(d == floor(d) && d >= 0 && d < SBI_JSON_EXACT_INT, SBI_ERR_INPUT,
                  "estimator config: field 'seed' must be an integer in [0, 2^53) or a decimal string");
        *out = (uint64_t)d;
        return 0;
    }
    SBI_CHECK(cJSON_IsString(v) && v->valuestring[0], SBI_ERR_INPUT,
              "estimator config: field 'seed' must be a number or a decimal string");
    {
        const char *p = v->valuestring;
        uint64_t s = 0;
        for (; *p; ++p) {
            unsigned digit = (unsigned)(*p - '0');
            SBI_CHECK(digit <= 9 && s <= (UINT64_MAX - digit) / 10, SBI_ERR_INPUT,
                      "estimator config: field 'seed' is not a 64-bit decimal: '%s'", v->valuestring);
            s = 10 * s + digit;
        }
        *out = s;
    }
    return 0;
}

int sbi_estimator_config_from_json(const cJSON *json, sbi_estimator_config *cfg)
{
    static const char *const known[] = {"family", "seed", "embedding", "n_bins", "tail_bound", "n_sigmoids",
                                        "bisection_steps", "ode_solver", "ode_steps", "time_features",
#define SBI_CONFIG_NAME(field, lo, hi) #field,
                                        SBI_CONFIG_INT_FIELDS(SBI_CONFIG_NAME)
#undef SBI_CONFIG_NAME
    };
    const cJSON *item, *fam;
    sbi_estimator_config c;
    SBI_CHECK(cJSON_IsObject(json), SBI_ERR_INPUT, "estimator config must be a JSON object");
    cJSON_ArrayForEach(item, json)
    {
        size_t k = 0, n = sizeof(known) / sizeof(known[0]);
        int block_key = 0;
        while (k < n && !(item->string && strcmp(item->string, known[k]) == 0)) ++k;
        for (int b = 0; sbi_estimator_block_keys[b]; ++b)
            block_key |= item->string && !strcmp(item->string, sbi_estimator_block_keys[b]);
        if (block_key) continue;
        SBI_CHECK(k < n, SBI_ERR_INPUT, "estimator config: unknown field '%s'", item->string ? item->string : "");
    }
    memset(&c, 0, sizeof(c));
    fam = cJSON_GetObjectItemCaseSensitive(json, "family");
    SBI_CHECK(fam, SBI_ERR_INPUT, "estimator config: missing field 'family'");
    SBI_CHECK(cJSON_IsString(fam) && strlen(fam->valuestring) < sizeof(c.family), SBI_ERR_INPUT,
              "estimator config: field 'family' must be a short string");
    strcpy(c.family, fam->valuestring);
#define SBI_CONFIG_FROM_JSON(field, lo, hi) SBI_CALL(json_int(json, #field, &c.field));
    SBI_CONFIG_INT_FIELDS(SBI_CONFIG_FROM_JSON)
#undef SBI_CONFIG_FROM_JSON
    SBI_CALL(json_seed(json, &c.seed));
    /* Fields added after the first model files default when absent. */
    strcpy(c.embedding, "mlp");
    c.n_bins = 10;
    c.tail_bound = 3.0;
    item = cJSON_GetObjectItemCaseSensitive(json, "embedding");
    if (item) {
        SBI_CHECK(cJSON_IsString(item) && strlen(item->valuestring) < sizeof(c.embedding), SBI_ERR_INPUT,
                  "estimator config: field 'embedding' must be a short string");
        strcpy(c.embedding, item->valuestring);
    }
    if (cJSON_GetObjectItemCaseSensitive(json, "n_bins")) SBI_CALL(json_int(json, "n_bins", &c.n_bins));
    item = cJSON_GetObjectItemCaseSensitive(json, "tail_bound");
    if (item) {
        SBI_CHECK(cJSON_IsNumber(item), SBI_ERR_INPUT, "estimator config: field 'tail_bound' must be a number");
        c.tail_bound = item->valuedouble;
    }
    if (cJSON_GetObjectItemCaseSensitive(json, "n_sigmoids")) SBI_CALL(json_int(json, "n_sigmoids", &c.n_sigmoids));
    if (cJSON_GetObjectItemCaseSensitive(json, "bisection_steps"))
        SBI_CALL(json_int(json, "bisection_steps", &c.bisection_steps));
    if (cJSON_GetObjectItemCaseSensitive(json, "ode_steps")) SBI_CALL(json_int(json, "ode_steps", &c.ode_steps));
    if (cJSON_GetObjectItemCaseSensitive(json, "time_features"))
        SBI_CALL(json_int(json, "time_features", &c.time_features));
    item = cJSON_GetObjectItemCaseSensitive(json, "ode_solver");
    if (item) {
        SBI_CHECK(cJSON_IsString(item) && strlen(item->valuestring) < sizeof(c.ode_solver), SBI_ERR_INPUT,
                  "estimator config: field 'ode_solver' must be a short string");
        strcpy(c.ode_solver, item->valuestring);
    }
    SBI_CALL(sbi_estimator_blocks_from_json(json, &c));
    SBI_CALL(config_check(&c));
    *cfg = c;
    return 0;
}

uint64_t sbi_estimator_get_draw_counter(sbi_estimator est)
{
    return est->ops->get_draw_counter ? est->ops->get_draw_counter(est->impl) : 0;
}

void sbi_estimator_set_draw_counter(sbi_estimator est, uint64_t counter)
{
    if (est->ops->set_draw_counter) est->ops->set_draw_counter(est->impl, counter);
}

/* Everything create allocates hangs off e, so destroy releases a partial one. */
static int estimator_build(sbi_estimator e)
{
    const sbi_estimator_config *cfg = &e->cfg;
    if (e->ops->impl_size) {
        unsigned char *impl;
        SBI_CALLOC(impl, e->ops->impl_size);
        e->impl = impl;
    }
    sbi_layout_init(&e->lay, cfg->max_batch);
    SBI_CALL(e->ops->layout(e->impl, cfg, &e->lay));
    SBI_CALL(sbi_layout_alloc(&e->lay));
    SBI_CALL(e->ops->layout(e->impl, cfg, &e->lay));
    SBI_CALL(sbi_layout_finish(&e->lay));
    SBI_MALLOC(e->z, (size_t)cfg->max_batch * cfg->n_params);
    sbi_layout_init_weights(&e->lay, cfg->seed);
    if (e->ops->init) e->ops->init(e->impl, cfg);
    return 0;
}

int sbi_estimator_create(const sbi_estimator_config *cfg, sbi_estimator *est)
{
    sbi_estimator e;
    int rc;
    *est = NULL;
    SBI_CALL(config_check(cfg));
    SBI_CALLOC(e, 1);
    e->cfg = *cfg;
    e->ops = find_family(cfg->family);
    e->last_B = -1;
    rc = estimator_build(e);
    if (rc) {
        sbi_estimator_destroy(&e);
        return sbi__trace(rc, __FILE__, __LINE__, __func__);
    }
    *est = e;
    return 0;
}

void sbi_estimator_destroy(sbi_estimator *est)
{
    sbi_estimator e;
    if (!est || !*est) return;
    e = *est;
    if (e->impl && e->ops->destroy) e->ops->destroy(e->impl);
    free(e->impl);
    sbi_layout_free(&e->lay);
    free(e->z);
    free(e);
    *est = NULL;
}

const sbi_estimator_config *sbi_estimator_get_config(sbi_estimator est) { return &est->cfg; }
size_t sbi_estimator_n_weights(sbi_estimator est) { return est->lay.n_weights; }
sbi_real *sbi_estimator_weights(sbi_estimator est) { return est->lay.weights; }
sbi_real *sbi_estimator_grads(sbi_estimator est) { return est->lay.grads; }
void sbi_estimator_zero_grad(sbi_estimator est) { sbi_layout_zero_grads(&est->lay); }
int sbi_estimator_n_tensors(sbi_estimator est) { return est->lay.n_tensors; }
const sbi_tensor_info *sbi_estimator_tensors(sbi_estimator est) { return est->lay.tensors; }

static int check_rows(sbi_estimator est, int B)
{
    SBI_CHECK(B >= 0 && B <= est->cfg.max_batch, SBI_ERR_INPUT, "batch of %d rows, the estimator takes 0 to %d", B,
              est->cfg.max_batch);
    return 0;
}

int sbi_estimator_forward(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq)
{
    SBI_CALL(check_rows(est, B));
    est->last_B = -1;
    if (B) SBI_CALL(est->ops->forward(est->impl, x, theta, B, logq, NULL, NULL));
    est->last_B = B;
    return 0;
}

int sbi_estimator_transform(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int B, sbi_real *z,
                            sbi_real *logdet)
{
    SBI_CALL(check_rows(est, B));
    est->last_B = -1;
    /* est->z (max_batch * D >= B scalars) takes the logq nobody asked for. */
    if (B) SBI_CALL(est->ops->forward(est->impl, x, theta, B, est->z, z, logdet));
    est->last_B = B;
    return 0;
}

int sbi_estimator_backward(sbi_estimator est, const sbi_real *dlogq, int B)
{
    SBI_CHECK(est->last_B >= 0 && B == est->last_B, SBI_ERR_INTERNAL,
              "backward over %d rows needs a forward over the same rows just before (last forward: %d)", B,
              est->last_B);
    if (!B) return 0;
    sbi_layout_zero_dacts(&est->lay, B);
    SBI_CALL(est->ops->backward(est->impl, dlogq, B));
    return 0;
}

int sbi_estimator_log_prob(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int n, sbi_real *logq)
{
    int D = est->cfg.n_params, X = est->cfg.n_inputs, chunk = est->cfg.max_batch;
    SBI_CHECK(n >= 0, SBI_ERR_INPUT, "cannot evaluate %d rows", n);
    est->last_B = -1;
    for (int off = 0; off < n; off += chunk) {
        int B = n - off < chunk ? n - off : chunk;
        const sbi_real *xb = x + (size_t)off * X, *tb = theta + (size_t)off * D;
        if (est->ops->log_prob)
            SBI_CALL(est->ops->log_prob(est->impl, xb, tb, B, logq + off));
        else
            SBI_CALL(est->ops->forward(est->impl, xb, tb, B, logq + off, NULL, NULL));
    }
    return 0;
}

int sbi_estimator_inverse(sbi_estimator est, const sbi_real *x, const sbi_real *z, int n, sbi_real *theta,
                          sbi_real *logq)
{
    int D = est->cfg.n_params, chunk = est->cfg.max_batch;
    SBI_CHECK(n >= 0, SBI_ERR_INPUT, "cannot draw %d samples", n);
    est->last_B = -1;
    for (int off = 0; off < n; off += chunk) {
        int B = n - off < chunk ? n - off : chunk;
        /* Chunks after the first reuse the observation's embedding. */
        SBI_CALL(est->ops->sample(est->impl, off ? NULL : x, 1, B, z + (size_t)off * D, theta + (size_t)off * D,
                                  logq ? logq + off : NULL));
    }
    return 0;
}

int sbi_estimator_sample(sbi_estimator est, const sbi_real *x, int n, sbi_rng *rng, sbi_real *theta,
                         sbi_real *logq)
{
    int D = est->cfg.n_params, chunk = est->cfg.max_batch;
    SBI_CHECK(n >= 0, SBI_ERR_INPUT, "cannot draw %d samples", n);
    est->last_B = -1;
    for (int off = 0; off < n; off += chunk) {
        int B = n - off < chunk ? n - off : chunk;
        for (size_t i = 0; i < (size_t)B * D; ++i) est->z[i] = (sbi_real)sbi_rng_normal(rng);
        SBI_CALL(est->ops->sample(est->impl, off ? NULL : x, 1, B, est->z, theta + (size_t)off * D,
                                  logq ? logq + off : NULL));
    }
    return 0;
}

int sbi_estimator_sample_group(sbi_estimator est, int n)
{
    int g = n >= 1 ? est->cfg.max_batch / n : 1;
    return g > 1 ? g : 1;
}

int sbi_estimator_sample_batch(sbi_estimator est, const sbi_real *x, int n_obs, int n, sbi_rng *rng,
                               sbi_real *theta, sbi_real *logq)
{
    int D = est->cfg.n_params, X = est->cfg.n_inputs, g = sbi_estimator_sample_group(est, n);
    SBI_CHECK(n >= 0 && n_obs >= 0, SBI_ERR_INPUT, "cannot draw %d samples for %d observations", n, n_obs);
    if (g == 1) { /* one observation fills a pass or more: the chunked path */
        for (int i = 0; i < n_obs; ++i)
            SBI_CALL(sbi_estimator_sample(est, x + (size_t)i * X, n, &rng[i], theta + (size_t)i * n * D,
                                          logq ? logq + (size_t)i * n : NULL));
        return 0;
    }
    est->last_B = -1;
    if (!n) return 0;
    for (int i0 = 0; i0 < n_obs; i0 += g) {
        int m = n_obs - i0 < g ? n_obs - i0 : g, B = m * n;
        for (int i = 0; i < m; ++i)
            for (size_t k = 0; k < (size_t)n * D; ++k)
                est->z[(size_t)i * n * D + k] = (sbi_real)sbi_rng_normal(&rng[i0 + i]);
        SBI_CALL(est->ops->sample(est->impl, x + (size_t)i0 * X, m, B, est->z, theta + (size_t)i0 * n * D,
                                  logq ? logq + (size_t)i0 * n : NULL));
    }
    return 0;
}
