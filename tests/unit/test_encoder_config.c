/* The block structure of the estimator configuration: defaults add nothing
 * to the JSON, a full description (blocks, static channels, patch size,
 * block width, spectral sub-encoder) survives a round trip through JSON
 * text exactly, bad descriptions are refused with SBI_ERR_INPUT, and the
 * encoder description built from a configuration lays out and runs. */
#include <cjson/cJSON.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "exosbi/task.h"
#include "testutil.h"

_Static_assert(SBI_BLOCK_SPECTRUM == (int)SBI_MODALITY_SPECTRUM &&
                   SBI_BLOCK_PHOTOMETRY == (int)SBI_MODALITY_PHOTOMETRY &&
                   SBI_BLOCK_TIME_SERIES == (int)SBI_MODALITY_TIME_SERIES &&
                   SBI_BLOCK_AUXILIARY == (int)SBI_MODALITY_AUXILIARY,
               "encoder block modalities follow sbi_modality");

static int n_keys(const cJSON *j)
{
    int n = 0;
    for (const cJSON *it = j->child; it; it = it->next) ++n;
    return n;
}

static void check_defaults(void)
{
    static sbi_estimator_config cfg;
    cJSON *j = cJSON_CreateObject();
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "nsf", 3, 20));
    SBI_ASSERT_EQ_INT(cfg.n_blocks, 0);
    SBI_ASSERT_OK(sbi_estimator_blocks_check(&cfg));
    SBI_ASSERT_OK(sbi_estimator_blocks_to_json(&cfg, j));
    SBI_ASSERT_EQ_INT(n_keys(j), 0);
    cJSON_Delete(j);
}

static void check_round_trip(void)
{
    static sbi_estimator_config cfg, back;
    static const int size[] = {13, 4, 3}, modality[] = {SBI_BLOCK_SPECTRUM, SBI_BLOCK_PHOTOMETRY, SBI_BLOCK_AUXILIARY};
    double coord[20], sigma[20];
    cJSON *j = cJSON_CreateObject(), *parsed;
    char *text;
    for (int i = 0; i < 20; ++i) {
        coord[i] = -1 + 2.0 * i / 19 + 1e-7 * i;
        sigma[i] = 0.1 / (1 + i);
    }
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "nsf", 3, 20));
    snprintf(cfg.embedding, sizeof(cfg.embedding), "hierarchical");
    SBI_ASSERT_OK(sbi_estimator_config_set_blocks(&cfg, 3, size, modality, coord, sigma));
    cfg.patch_size = 8;
    cfg.block_embed_dim = 12;
    snprintf(cfg.spectrum_encoder, sizeof(cfg.spectrum_encoder), "patch");
    SBI_ASSERT_OK(sbi_estimator_blocks_check(&cfg));
    SBI_ASSERT_OK(sbi_estimator_blocks_to_json(&cfg, j));
    text = cJSON_PrintUnformatted(j);
    parsed = cJSON_Parse(text);
    SBI_ASSERT(parsed != NULL);
    back = cfg;
    back.n_blocks = back.n_static = back.patch_size = back.block_embed_dim = 0;
    memset(back.block_size, 0, sizeof(back.block_size));
    memset(back.block_modality, 0, sizeof(back.block_modality));
    memset(back.static_coord, 0, sizeof(back.static_coord));
    memset(back.static_sigma, 0, sizeof(back.static_sigma));
    memset(back.spectrum_encoder, 0, sizeof(back.spectrum_encoder));
    SBI_ASSERT_OK(sbi_estimator_blocks_from_json(parsed, &back));
    SBI_ASSERT_OK(sbi_estimator_blocks_check(&back));
    SBI_ASSERT(memcmp(&cfg, &back, sizeof(cfg)) == 0);
    printf("block structure round trip (%zu characters of JSON): %s\n", strlen(text),
           memcmp(&cfg, &back, sizeof(cfg)) == 0 ? "exact" : "DIFFERS");
    for (const char *const *k = sbi_estimator_block_keys; *k; ++k)
        SBI_ASSERT(cJSON_GetObjectItemCaseSensitive(parsed, *k) != NULL);
    free(text);
    cJSON_Delete(parsed);
    cJSON_Delete(j);
}

/* A JSON text that must be refused, by from_json or by the check. */
static void check_refused(const char *label, const char *json)
{
    static sbi_estimator_config cfg;
    cJSON *j = cJSON_Parse(json);
    int rc;
    SBI_ASSERT(j != NULL);
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "nsf", 3, 20));
    rc = sbi_estimator_blocks_from_json(j, &cfg);
    if (rc == 0) rc = sbi_estimator_blocks_check(&cfg);
    printf("refused %-28s -> %d: %s\n", label, rc, rc ? sbi_error_message() : "(accepted)");
    SBI_ASSERT_EQ_INT(rc, SBI_ERR_INPUT);
    sbi_error_clear();
    cJSON_Delete(j);
}

static void check_spec(void)
{
    static sbi_estimator_config cfg;
    static const int size[] = {40, 6, 4};
    static const int modality[] = {SBI_BLOCK_SPECTRUM, SBI_BLOCK_PHOTOMETRY, SBI_BLOCK_TIME_SERIES};
    double coord[50];
    sbi_obs_encoder_spec spec;
    sbi_obs_encoder e;
    sbi_layout lay;
    float x[2 * 50];
    for (int i = 0; i < 50; ++i) {
        coord[i] = i / 49.0;
        x[i] = x[50 + i] = (float)(0.1 * i);
    }
    x[7] = NAN;
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "nsf", 3, 50));
    snprintf(cfg.embedding, sizeof(cfg.embedding), "hierarchical");
    SBI_ASSERT_OK(sbi_estimator_config_set_blocks(&cfg, 3, size, modality, coord, NULL));
    SBI_ASSERT_OK(sbi_estimator_encoder_spec(&cfg, &spec));
    SBI_ASSERT_EQ_INT(spec.n_blocks, 3);
    SBI_ASSERT(spec.blocks[1].coord == cfg.static_coord + 40);
    sbi_layout_init(&lay, 2);
    SBI_ASSERT_OK(sbi_obs_encoder_layout(&e, &lay, "embed", &spec));
    SBI_ASSERT_OK(sbi_layout_alloc(&lay));
    SBI_ASSERT_OK(sbi_obs_encoder_layout(&e, &lay, "embed", &spec));
    SBI_ASSERT_OK(sbi_layout_finish(&lay));
    sbi_layout_init_weights(&lay, 1);
    sbi_obs_encoder_forward(&e, x, 2);
    for (int i = 0; i < 2 * cfg.embed_dim; ++i) SBI_ASSERT(isfinite(e.out[i]));
    printf("hierarchical encoder from a configuration: %zu weights in %d tensors\n", lay.n_weights, lay.n_tensors);
    sbi_layout_free(&lay);
    /* A spectrum too short for the convolutions is refused. */
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "nsf", 3, 14));
    snprintf(cfg.embedding, sizeof(cfg.embedding), "hierarchical");
    SBI_ASSERT_OK(sbi_estimator_config_set_blocks(&cfg, 2, (const int[]){8, 6}, modality, NULL, NULL));
    SBI_ASSERT_EQ_INT(sbi_estimator_blocks_check(&cfg), SBI_ERR_INPUT);
    sbi_error_clear();
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_defaults();
    check_round_trip();
    check_refused("sizes not summing to X", "{\"blocks\": [{\"size\": 5, \"modality\": \"spectrum\"}]}");
    check_refused("unknown modality", "{\"blocks\": [{\"size\": 20, \"modality\": \"radio\"}]}");
    check_refused("short coordinates", "{\"blocks\": [{\"size\": 20, \"modality\": \"spectrum\", "
                                       "\"coordinates\": [1, 2]}]}");
    check_refused("bad spectrum_encoder", "{\"spectrum_encoder\": \"fft\"}");
    check_refused("negative patch_size", "{\"patch_size\": -3}");
    check_spec();
    status = SBI_TEST_REPORT("encoder_config");
    MPI_Finalize();
    return status;
}
