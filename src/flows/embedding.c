/* The embedding network shared by the families: the residual ELU MLP of the
 * foundation or the convolutional encoder, picked by config.embedding; and
 * the block structure of the observation that the dataset-aware encoders
 * (nn.h) read from the configuration. */
#include <math.h>
#include <string.h>

#include "flows/flows_impl.h"

int sbi__embedding_kind(const char *name)
{
    if (strcmp(name, "mlp") == 0) return SBI__EMBED_MLP;
    if (strcmp(name, "conv1d") == 0) return SBI__EMBED_CONV1D;
    if (!strcmp(name, "conv1d_full") || !strcmp(name, "patch") || !strcmp(name, "photometry") ||
        !strcmp(name, "hierarchical"))
        return SBI__EMBED_ENCODER;
    return -1;
}

int sbi__embedding_layout(sbi__embedding *m, sbi_layout *lay, const sbi_estimator_config *cfg)
{
    int E = cfg->embed_dim;
    m->kind = sbi__embedding_kind(cfg->embedding);
    SBI_CHECK(m->kind >= 0, SBI_ERR_INPUT, "unknown embedding '%s'", cfg->embedding);
    if (m->kind == SBI__EMBED_CONV1D) {
        SBI_CALL(sbi_conv_encoder_layout(&m->conv, lay, "embed", cfg->n_inputs, SBI_CONV1D_CHANNELS0,
                                         SBI_CONV1D_CHANNELS1, SBI_CONV1D_KERNEL, SBI_CONV1D_POOL, E));
        m->out = m->conv.out;
        m->dout = m->conv.dout;
    } else if (m->kind == SBI__EMBED_ENCODER) {
        sbi_obs_encoder_spec spec;
        SBI_CALL(sbi_estimator_encoder_spec(cfg, &spec));
        SBI_CALL(sbi_obs_encoder_layout(&m->enc, lay, "embed", &spec));
        m->out = m->enc.out;
        m->dout = m->enc.dout;
    } else {
        int widths[SBI_MLP_MAX_LAYERS + 1];
        widths[0] = cfg->n_inputs;
        for (int l = 1; l <= cfg->embed_layers; ++l) widths[l] = cfg->embed_hidden;
        widths[cfg->embed_layers + 1] = E;
        SBI_CALL(sbi_mlp_layout(&m->mlp, lay, "embed", cfg->embed_layers + 1, widths, SBI_ACT_ELU, 1, 0));
        m->out = m->mlp.out;
        m->dout = m->mlp.dout;
    }
    return 0;
}

void sbi__embedding_forward(sbi__embedding *m, const sbi_real *x, int B)
{
    if (m->kind == SBI__EMBED_CONV1D)
        sbi_conv_encoder_forward(&m->conv, x, B);
    else if (m->kind == SBI__EMBED_ENCODER)
        sbi_obs_encoder_forward(&m->enc, x, B);
    else
        sbi_mlp_forward(&m->mlp, x, B);
}

void sbi__embedding_backward(sbi__embedding *m, const sbi_real *x, int B)
{
    if (m->kind == SBI__EMBED_CONV1D)
        sbi_conv_encoder_backward(&m->conv, B);
    else if (m->kind == SBI__EMBED_ENCODER)
        sbi_obs_encoder_backward(&m->enc, NULL, x, B);
    else
        sbi_mlp_backward(&m->mlp, NULL, x, B);
}

/* ---- block structure of the observation ---------------------------------- */

static const char *const modality_names[] = {"spectrum", "photometry", "time_series", "auxiliary"};

const char *const sbi_estimator_block_keys[] = {"blocks", "patch_size", "block_embed_dim", "spectrum_encoder", NULL};

/* SBI_ENCODER_* of a dataset-aware embedding name, -1 for any other. */
static int encoder_kind(const char *name)
{
    if (strcmp(name, "conv1d_full") == 0) return SBI_ENCODER_CONV1D_FULL;
    if (strcmp(name, "patch") == 0) return SBI_ENCODER_PATCH;
    if (strcmp(name, "photometry") == 0) return SBI_ENCODER_PHOTOMETRY;
    if (strcmp(name, "hierarchical") == 0) return SBI_ENCODER_HIERARCHICAL;
    return -1;
}

int sbi_estimator_config_set_blocks(sbi_estimator_config *cfg, int n, const int *size, const int *modality,
                                    const double *coord, const double *sigma)
{
    int total = 0;
    SBI_CHECK(n >= 1 && n <= SBI_MAX_BLOCKS, SBI_ERR_INPUT, "%d observation blocks, the encoders take 1 to %d", n,
              SBI_MAX_BLOCKS);
    for (int i = 0; i < n; ++i) {
        SBI_CHECK(size[i] >= 1 && modality[i] >= SBI_BLOCK_SPECTRUM && modality[i] <= SBI_BLOCK_AUXILIARY,
                  SBI_ERR_INPUT, "observation block %d: bad size %d or modality %d", i, size[i], modality[i]);
        total += size[i];
    }
    SBI_CHECK(total == cfg->n_inputs, SBI_ERR_INPUT, "observation blocks hold %d values, the estimator takes %d",
              total, cfg->n_inputs);
    SBI_CHECK(!(coord || sigma) || total <= SBI_MAX_STATIC, SBI_ERR_INPUT,
              "static channels are limited to %d columns, the observation has %d", SBI_MAX_STATIC, total);
    cfg->n_blocks = n;
    memset(cfg->block_size, 0, sizeof(cfg->block_size));
    memset(cfg->block_modality, 0, sizeof(cfg->block_modality));
    memcpy(cfg->block_size, size, (size_t)n * sizeof(*size));
    memcpy(cfg->block_modality, modality, (size_t)n * sizeof(*modality));
    memset(cfg->static_coord, 0, sizeof(cfg->static_coord));
    memset(cfg->static_sigma, 0, sizeof(cfg->static_sigma));
    cfg->n_static = coord || sigma ? total : 0;
    for (int i = 0; i < cfg->n_static; ++i) {
        cfg->static_coord[i] = coord ? (float)coord[i] : 0.0f;
        cfg->static_sigma[i] = sigma ? (float)sigma[i] : 0.0f;
    }
    return 0;
}

int sbi_estimator_blocks_check(const sbi_estimator_config *cfg)
{
    int kind = encoder_kind(cfg->embedding), total = 0;
    int lmin = sbi_spectral_conv_encoder_min_length(SBI_ENC_CONV_KERNEL);
    SBI_CHECK(cfg->n_blocks >= 0 && cfg->n_blocks <= SBI_MAX_BLOCKS, SBI_ERR_INPUT,
              "estimator field 'blocks' holds %d blocks, at most %d", cfg->n_blocks, SBI_MAX_BLOCKS);
    for (int i = 0; i < cfg->n_blocks; ++i) {
        SBI_CHECK(cfg->block_size[i] >= 1, SBI_ERR_INPUT, "estimator field 'blocks': block %d has size %d", i,
                  cfg->block_size[i]);
        SBI_CHECK(cfg->block_modality[i] >= SBI_BLOCK_SPECTRUM && cfg->block_modality[i] <= SBI_BLOCK_AUXILIARY,
                  SBI_ERR_INPUT, "estimator field 'blocks': block %d has unknown modality %d", i,
                  cfg->block_modality[i]);
        total += cfg->block_size[i];
    }
    SBI_CHECK(cfg->n_blocks == 0 || total == cfg->n_inputs, SBI_ERR_INPUT,
              "estimator field 'blocks' covers %d values, n_inputs is %d", total, cfg->n_inputs);
    SBI_CHECK(cfg->n_static == 0 || (cfg->n_static == cfg->n_inputs && cfg->n_static <= SBI_MAX_STATIC),
              SBI_ERR_INPUT, "estimator field 'blocks': static channels for %d of %d columns (at most %d)",
              cfg->n_static, cfg->n_inputs, SBI_MAX_STATIC);
    for (int i = 0; i < cfg->n_static; ++i)
        SBI_CHECK(isfinite(cfg->static_coord[i]) && isfinite(cfg->static_sigma[i]), SBI_ERR_INPUT,
                  "estimator field 'blocks': static channel of column %d is not finite", i);
    SBI_CHECK(cfg->patch_size >= 0 && cfg->patch_size <= 1 << 20, SBI_ERR_INPUT,
              "estimator field 'patch_size' is %d, must be in [0, 2^20]", cfg->patch_size);
    SBI_CHECK(cfg->block_embed_dim >= 0 && cfg->block_embed_dim <= 1 << 16, SBI_ERR_INPUT,
              "estimator field 'block_embed_dim' is %d, must be in [0, 65536]", cfg->block_embed_dim);
    SBI_CHECK(memchr(cfg->spectrum_encoder, '\0', sizeof(cfg->spectrum_encoder)) &&
                  (!cfg->spectrum_encoder[0] || !strcmp(cfg->spectrum_encoder, "conv1d_full") ||
                   !strcmp(cfg->spectrum_encoder, "patch")),
              SBI_ERR_INPUT, "estimator field 'spectrum_encoder' must be \"conv1d_full\" or \"patch\"");
    if (kind == SBI_ENCODER_CONV1D_FULL)
        SBI_CHECK(cfg->n_inputs >= lmin, SBI_ERR_INPUT,
                  "estimator field 'embedding': conv1d_full needs n_inputs >= %d, got %d", lmin, cfg->n_inputs);
    if (kind == SBI_ENCODER_HIERARCHICAL && strcmp(cfg->spectrum_encoder, "patch") != 0)
        for (int i = 0; i < cfg->n_blocks; ++i)
            SBI_CHECK(cfg->block_modality[i] != SBI_BLOCK_SPECTRUM || cfg->block_size[i] >= lmin, SBI_ERR_INPUT,
                      "estimator field 'blocks': spectrum block %d has %d values, conv1d_full needs %d "
                      "(or set spectrum_encoder to \"patch\")",
                      i, cfg->block_size[i], lmin);
    return 0;
}

int sbi_estimator_encoder_spec(const sbi_estimator_config *cfg, sbi_obs_encoder_spec *spec)
{
    int kind = encoder_kind(cfg->embedding), at = 0;
    SBI_CHECK(kind >= 0, SBI_ERR_INPUT, "embedding '%s' is not a dataset-aware encoder", cfg->embedding);
    SBI_CALL(sbi_estimator_blocks_check(cfg));
    memset(spec, 0, sizeof(*spec));
    spec->kind = kind;
    spec->X = cfg->n_inputs;
    spec->E = cfg->embed_dim;
    spec->H = cfg->embed_hidden;
    spec->E_b = cfg->block_embed_dim ? cfg->block_embed_dim : cfg->embed_dim;
    spec->P = cfg->patch_size ? cfg->patch_size : SBI_DEFAULT_PATCH_SIZE;
    spec->spectrum_kind = strcmp(cfg->spectrum_encoder, "patch") == 0 ? SBI_ENCODER_PATCH : SBI_ENCODER_CONV1D_FULL;
    spec->C[0] = SBI_ENC_CONV_CHANNELS0;
    spec->C[1] = SBI_ENC_CONV_CHANNELS1;
    spec->C[2] = SBI_ENC_CONV_CHANNELS2;
    spec->K = SBI_ENC_CONV_KERNEL;
    /* A single-block encoder sees x whole; the hierarchical one its blocks. */
    spec->n_blocks = kind == SBI_ENCODER_HIERARCHICAL && cfg->n_blocks > 0 ? cfg->n_blocks : 1;
    for (int i = 0; i < spec->n_blocks; ++i) {
        sbi_obs_block *b = &spec->blocks[i];
        b->offset = at;
        b->size = spec->n_blocks == 1 ? cfg->n_inputs : cfg->block_size[i];
        b->modality = cfg->n_blocks > 0 ? cfg->block_modality[i] : SBI_BLOCK_AUXILIARY;
        b->coord = cfg->n_static ? cfg->static_coord + at : NULL;
        b->sigma = cfg->n_static ? cfg->static_sigma + at : NULL;
        at += b->size;
    }
    return 0;
}

static int add_floats(cJSON *o, const char *key, const float *v, int n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    SBI_CHECK(a, SBI_ERR_INTERNAL, "out of memory writing '%s'", key);
    for (int i = 0; i < n; ++i) {
        cJSON *num = cJSON_CreateNumber((double)v[i]);
        SBI_CHECK(num && cJSON_AddItemToArray(a, num), SBI_ERR_INTERNAL, "out of memory writing '%s'", key);
    }
    return 0;
}

int sbi_estimator_blocks_to_json(const sbi_estimator_config *cfg, cJSON *j)
{
    int ok = 1, at = 0;
    if (cfg->n_blocks > 0) {
        cJSON *arr = cJSON_AddArrayToObject(j, "blocks");
        SBI_CHECK(arr, SBI_ERR_INTERNAL, "out of memory writing 'blocks'");
        for (int i = 0; i < cfg->n_blocks; ++i) {
            cJSON *b = cJSON_CreateObject();
            SBI_CHECK(b && cJSON_AddItemToArray(arr, b), SBI_ERR_INTERNAL, "out of memory writing 'blocks'");
            SBI_CHECK(cfg->block_modality[i] >= 0 && cfg->block_modality[i] <= SBI_BLOCK_AUXILIARY, SBI_ERR_INPUT,
                      "block %d has unknown modality %d", i, cfg->block_modality[i]);
            ok = ok && cJSON_AddNumberToObject(b, "size", cfg->block_size[i]);
            ok = ok && cJSON_AddStringToObject(b, "modality", modality_names[cfg->block_modality[i]]);
            if (cfg->n_static && at + cfg->block_size[i] <= cfg->n_static) {
                SBI_CALL(add_floats(b, "coordinates", cfg->static_coord + at, cfg->block_size[i]));
                SBI_CALL(add_floats(b, "uncertainty", cfg->static_sigma + at, cfg->block_size[i]));
            }
            at += cfg->block_size[i];
        }
    }
    if (cfg->patch_size) ok = ok && cJSON_AddNumberToObject(j, "patch_size", cfg->patch_size);
    if (cfg->block_embed_dim) ok = ok && cJSON_AddNumberToObject(j, "block_embed_dim", cfg->block_embed_dim);
    if (cfg->spectrum_encoder[0]) ok = ok && cJSON_AddStringToObject(j, "spectrum_encoder", cfg->spectrum_encoder);
    SBI_CHECK(ok, SBI_ERR_INTERNAL, "out of memory writing the block structure");
    return 0;
}

/* An integer in [lo, hi] from item, or SBI_ERR_INPUT naming what. */
static int json_int_in(const cJSON *item, const char *what, int lo, int hi, int *out)
{
    double d;
    SBI_CHECK(cJSON_IsNumber(item), SBI_ERR_INPUT, "estimator config: %s must be a number", what);
    d = item->valuedouble;
    SBI_CHECK(d == floor(d) && d >= lo && d <= hi, SBI_ERR_INPUT, "estimator config: %s must be an integer in [%d, %d]",
              what, lo, hi);
    *out = (int)d;
    return 0;
}

/* n numbers of the array `key` of block object b into v, when present;
 * *present tells whether it was. */
static int json_floats(const cJSON *b, const char *key, int i, float *v, int n, int *present)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(b, key), *num;
    int k = 0;
    *present = a != NULL;
    if (!a) return 0;
    SBI_CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) == n, SBI_ERR_INPUT,
              "estimator config: blocks[%d].%s must be an array of %d numbers", i, key, n);
    cJSON_ArrayForEach(num, a)
    {
        SBI_CHECK(cJSON_IsNumber(num) && isfinite(num->valuedouble), SBI_ERR_INPUT,
                  "estimator config: blocks[%d].%s[%d] must be a finite number", i, key, k);
        v[k++] = (float)num->valuedouble;
    }
    return 0;
}

int sbi_estimator_blocks_from_json(const cJSON *json, sbi_estimator_config *cfg)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(json, "blocks"), *item;
    int n = 0, at = 0, any_static = 0;
    cfg->n_blocks = cfg->n_static = 0;
    memset(cfg->static_coord, 0, sizeof(cfg->static_coord));
    memset(cfg->static_sigma, 0, sizeof(cfg->static_sigma));
    if (arr) {
        SBI_CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) >= 1 && cJSON_GetArraySize(arr) <= SBI_MAX_BLOCKS,
                  SBI_ERR_INPUT, "estimator config: field 'blocks' must be an array of 1 to %d objects",
                  SBI_MAX_BLOCKS);
        cJSON_ArrayForEach(item, arr)
        {
            const cJSON *mod = cJSON_GetObjectItemCaseSensitive(item, "modality");
            char what[48];
            int size = 0, m = 0, has_c, has_s;
            SBI_CHECK(cJSON_IsObject(item), SBI_ERR_INPUT, "estimator config: blocks[%d] must be an object", n);
            snprintf(what, sizeof(what), "blocks[%d].size", n);
            SBI_CHECK(cJSON_GetObjectItemCaseSensitive(item, "size"), SBI_ERR_INPUT,
                      "estimator config: missing field %s", what);
            SBI_CALL(json_int_in(cJSON_GetObjectItemCaseSensitive(item, "size"), what, 1, 1 << 24, &size));
            SBI_CHECK(cJSON_IsString(mod), SBI_ERR_INPUT, "estimator config: blocks[%d].modality must be a string",
                      n);
            while (m <= SBI_BLOCK_AUXILIARY && strcmp(mod->valuestring, modality_names[m]) != 0) ++m;
            SBI_CHECK(m <= SBI_BLOCK_AUXILIARY, SBI_ERR_INPUT,
                      "estimator config: blocks[%d].modality '%s' is not spectrum, photometry, time_series or "
                      "auxiliary",
                      n, mod->valuestring);
            cfg->block_size[n] = size;
            cfg->block_modality[n] = m;
            if (at + size <= SBI_MAX_STATIC) {
                SBI_CALL(json_floats(item, "coordinates", n, cfg->static_coord + at, size, &has_c));
                SBI_CALL(json_floats(item, "uncertainty", n, cfg->static_sigma + at, size, &has_s));
                any_static |= has_c || has_s;
            } else {
                SBI_CHECK(!cJSON_GetObjectItemCaseSensitive(item, "coordinates") &&
                              !cJSON_GetObjectItemCaseSensitive(item, "uncertainty"),
                          SBI_ERR_INPUT, "estimator config: static channels are limited to %d columns",
                          SBI_MAX_STATIC);
            }
            at += size;
            ++n;
        }
        cfg->n_blocks = n;
        cfg->n_static = any_static ? at : 0;
    }
    item = cJSON_GetObjectItemCaseSensitive(json, "patch_size");
    cfg->patch_size = 0;
    if (item) SBI_CALL(json_int_in(item, "field 'patch_size'", 0, 1 << 20, &cfg->patch_size));
    item = cJSON_GetObjectItemCaseSensitive(json, "block_embed_dim");
    cfg->block_embed_dim = 0;
    if (item) SBI_CALL(json_int_in(item, "field 'block_embed_dim'", 0, 1 << 16, &cfg->block_embed_dim));
    item = cJSON_GetObjectItemCaseSensitive(json, "spectrum_encoder");
    memset(cfg->spectrum_encoder, 0, sizeof(cfg->spectrum_encoder));
    if (item) {
        SBI_CHECK(cJSON_IsString(item) && strlen(item->valuestring) < sizeof(cfg->spectrum_encoder), SBI_ERR_INPUT,
                  "estimator config: field 'spectrum_encoder' must be a short string");
        strcpy(cfg->spectrum_encoder, item->valuestring);
    }
    return 0;
}
