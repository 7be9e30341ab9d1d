/* Estimator configuration: defaults, the JSON round trip and its strict
 * validation, and argument checks of the estimator calls. */
#include <mpi.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "testutil.h"

/* from_json on text must fail with SBI_ERR_INPUT and a message naming `word`. */
static void expect_bad(const char *text, const char *word)
{
    cJSON *j = cJSON_Parse(text);
    sbi_estimator_config cfg;
    int rc;
    SBI_ASSERT(j != NULL);
    sbi_error_clear();
    rc = sbi_estimator_config_from_json(j, &cfg);
    SBI_ASSERT_EQ_INT(rc, SBI_ERR_INPUT);
    if (!strstr(sbi_error_message(), word)) {
        fprintf(stderr, "message '%s' does not name '%s'\n", sbi_error_message(), word);
        SBI_ASSERT(0);
    }
    sbi_error_clear();
    cJSON_Delete(j);
}

static void check_defaults(void)
{
    sbi_estimator_config c;
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "affine", 3, 2));
    SBI_ASSERT(strcmp(c.family, "affine") == 0);
    SBI_ASSERT_EQ_INT(c.n_params, 3);
    SBI_ASSERT_EQ_INT(c.n_inputs, 2);
    SBI_ASSERT_EQ_INT(c.embed_dim, 8);
    SBI_ASSERT_EQ_INT(c.embed_hidden, 64);
    SBI_ASSERT_EQ_INT(c.embed_layers, 2);
    SBI_ASSERT_EQ_INT(c.n_transforms, 5);
    SBI_ASSERT_EQ_INT(c.hidden, 64);
    SBI_ASSERT_EQ_INT(c.hidden_layers, 2);
    SBI_ASSERT_EQ_INT(c.max_batch, 512);
    SBI_ASSERT(c.seed == 0);
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "affine", 10, 20));
    SBI_ASSERT_EQ_INT(c.embed_dim, 40);
    SBI_ASSERT_EQ_INT(c.n_transforms, 5);
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "affine", 20, 500));
    SBI_ASSERT_EQ_INT(c.embed_dim, 64);
    SBI_ASSERT_EQ_INT(c.n_transforms, 10);
    SBI_ASSERT_EQ_INT(sbi_estimator_config_default(&c, "nope", 2, 2), SBI_ERR_INPUT);
    SBI_ASSERT_EQ_INT(sbi_estimator_config_default(&c, "affine", 0, 2), SBI_ERR_INPUT);
    sbi_error_clear();
    SBI_ASSERT(strcmp(c.embedding, "mlp") == 0);
    SBI_ASSERT_EQ_INT(c.n_bins, 10);
    SBI_ASSERT(c.tail_bound == 3.0);
    SBI_ASSERT(strcmp(sbi_estimator_family_name(0), "affine") == 0);
    SBI_ASSERT(strcmp(sbi_estimator_family_name(1), "nsf") == 0);
    SBI_ASSERT(strcmp(sbi_estimator_family_name(2), "maf") == 0);
    SBI_ASSERT(strcmp(sbi_estimator_family_name(3), "naf") == 0);
    SBI_ASSERT(strcmp(sbi_estimator_family_name(4), "fmpe") == 0);
    SBI_ASSERT(sbi_estimator_family_name(5) == NULL);
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "nsf", 8, 233));
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "maf", 8, 233));
}

static void check_json(void)
{
    sbi_estimator_config a, b;
    cJSON *j;
    char *text;
    SBI_ASSERT_OK(sbi_estimator_config_default(&a, "affine", 4, 7));
    a.seed = 12345678901234567890ull; /* above 2^53: travels as a string */
    a.hidden_layers = 3;
    a.embed_layers = 0;
    strcpy(a.family, "nsf");
    strcpy(a.embedding, "conv1d");
    a.n_inputs = 40;
    a.n_bins = 7;
    a.tail_bound = 4.5;
    j = sbi_estimator_config_to_json(&a);
    SBI_ASSERT(j != NULL);
    text = cJSON_PrintUnformatted(j);
    printf("%s\n", text);
    cJSON_Delete(j);
    j = cJSON_Parse(text);
    memset(&b, 0x5a, sizeof(b));
    SBI_ASSERT_OK(sbi_estimator_config_from_json(j, &b));
    SBI_ASSERT(strcmp(a.family, b.family) == 0);
    SBI_ASSERT(a.n_params == b.n_params && a.n_inputs == b.n_inputs && a.embed_dim == b.embed_dim &&
               a.embed_hidden == b.embed_hidden && a.embed_layers == b.embed_layers &&
               a.n_transforms == b.n_transforms && a.hidden == b.hidden && a.hidden_layers == b.hidden_layers &&
               a.seed == b.seed && a.max_batch == b.max_batch);
    SBI_ASSERT(strcmp(a.embedding, b.embedding) == 0 && a.n_bins == b.n_bins && a.tail_bound == b.tail_bound);
    cJSON_Delete(j);
    cJSON_free(text);

    /* A model file written before embedding, n_bins and tail_bound existed loads with their defaults. */
    j = cJSON_Parse("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
                    "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,"
                    "\"max_batch\":4}");
    SBI_ASSERT_OK(sbi_estimator_config_from_json(j, &b));
    SBI_ASSERT(strcmp(b.embedding, "mlp") == 0 && b.n_bins == 10 && b.tail_bound == 3.0);
    cJSON_Delete(j);

    expect_bad("{\"family\":\"spline9\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4}",
               "family");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"dropout\":0.1}",
               "dropout");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"seed\":0,\"max_batch\":4}",
               "hidden_layers");
    expect_bad("{\"family\":\"affine\",\"n_params\":2.5,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4}",
               "n_params");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":0,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4}",
               "n_transforms");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":-1,\"max_batch\":4}",
               "seed");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":\"12x\","
               "\"max_batch\":4}",
               "seed");
    expect_bad("{\"family\":\"affine\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,"
               "\"max_batch\":\"4\"}",
               "max_batch");
    expect_bad("[1, 2]", "object");
    expect_bad("{\"family\":\"fmpe\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"time_features\":9}",
               "time_features");
    expect_bad("{\"family\":\"fmpe\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"time_features\":\"4\"}",
               "time_features");
    expect_bad("{\"family\":\"nsf\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"embedding\":\"lstm\"}",
               "embedding");
    expect_bad("{\"family\":\"nsf\",\"n_params\":2,\"n_inputs\":8,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"embedding\":\"conv1d\"}",
               "n_inputs");
    expect_bad("{\"family\":\"nsf\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"n_bins\":1}",
               "n_bins");
    expect_bad("{\"family\":\"nsf\",\"n_params\":2,\"n_inputs\":1,\"embed_dim\":8,\"embed_hidden\":8,"
               "\"embed_layers\":1,\"n_transforms\":2,\"hidden\":8,\"hidden_layers\":1,\"seed\":0,\"max_batch\":4,"
               "\"tail_bound\":-1}",
               "tail_bound");
}

/* fmpe's time features: new configurations get the default, files written
 * before the field load with t alone (the velocity network's first map one
 * input column per time feature narrower), and the field travels in JSON. */
static void check_time_features(void)
{
    sbi_estimator_config c, b;
    sbi_estimator e0 = NULL, e4 = NULL;
    cJSON *j;
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "fmpe", 2, 3));
    SBI_ASSERT_EQ_INT(c.time_features, 4);
    SBI_ASSERT_OK(sbi_estimator_config_default(&b, "nsf", 2, 3));
    SBI_ASSERT_EQ_INT(b.time_features, 0);
    c.time_features = 3;
    j = sbi_estimator_config_to_json(&c);
    SBI_ASSERT(j != NULL && cJSON_GetObjectItemCaseSensitive(j, "time_features") != NULL);
    SBI_ASSERT_OK(sbi_estimator_config_from_json(j, &b));
    SBI_ASSERT_EQ_INT(b.time_features, 3);
    /* Without the field (as in older files): 0. */
    cJSON_DeleteItemFromObjectCaseSensitive(j, "time_features");
    SBI_ASSERT_OK(sbi_estimator_config_from_json(j, &b));
    SBI_ASSERT_EQ_INT(b.time_features, 0);
    cJSON_Delete(j);
    SBI_ASSERT_OK(sbi_estimator_create(&b, &e0));
    b.time_features = 4;
    SBI_ASSERT_OK(sbi_estimator_create(&b, &e4));
    if (e0 && e4)
        SBI_ASSERT(sbi_estimator_n_weights(e4) - sbi_estimator_n_weights(e0) == (size_t)(8 * b.hidden));
    sbi_estimator_destroy(&e0);
    sbi_estimator_destroy(&e4);
}

static void check_calls(void)
{
    sbi_estimator_config c;
    sbi_estimator est = NULL, est2 = NULL;
    sbi_real x[2] = {0.5f, -0.5f}, theta[4] = {0.1f, 0.2f, 0.3f, 0.4f}, logq[2], d[2] = {1, 1};
    sbi_rng r;
    SBI_ASSERT_OK(sbi_estimator_config_default(&c, "affine", 2, 1));
    c.max_batch = 2;
    SBI_ASSERT_OK(sbi_estimator_create(&c, &est));
    SBI_ASSERT_OK(sbi_estimator_create(&c, &est2));
    /* Same seed, same weights. */
    SBI_ASSERT(memcmp(sbi_estimator_weights(est), sbi_estimator_weights(est2),
                      sbi_estimator_n_weights(est) * sizeof(sbi_real)) == 0);
    SBI_ASSERT(sbi_estimator_get_config(est)->max_batch == 2);
    SBI_ASSERT(sbi_estimator_n_tensors(est) > 0);
    SBI_ASSERT(strcmp(sbi_estimator_tensors(est)[0].name, "embed.w0") == 0);
    SBI_ASSERT_EQ_INT(sbi_estimator_forward(est, x, theta, 3, logq), SBI_ERR_INPUT);
    SBI_ASSERT_EQ_INT(sbi_estimator_backward(est, d, 2), SBI_ERR_INTERNAL); /* no forward yet */
    SBI_ASSERT_OK(sbi_estimator_forward(est, x, theta, 2, logq));
    SBI_ASSERT_EQ_INT(sbi_estimator_backward(est, d, 1), SBI_ERR_INTERNAL); /* rows differ */
    SBI_ASSERT_OK(sbi_estimator_backward(est, d, 2));
    sbi_rng_init(&r, 0, 0, SBI_STREAM_SAMPLE, 0);
    SBI_ASSERT_OK(sbi_estimator_sample(est, x, 0, &r, theta, NULL));
    SBI_ASSERT_OK(sbi_estimator_sample(est, x, 2, &r, theta, NULL));
    SBI_ASSERT_EQ_INT(sbi_estimator_backward(est, d, 2), SBI_ERR_INTERNAL); /* sampling replaced the caches */
    SBI_ASSERT_EQ_INT(sbi_estimator_sample(est, x, -1, &r, theta, NULL), SBI_ERR_INPUT);
    sbi_error_clear();
    sbi_estimator_destroy(&est);
    sbi_estimator_destroy(&est); /* idempotent */
    sbi_estimator_destroy(&est2);
    SBI_ASSERT(est == NULL && est2 == NULL);
    c.hidden_layers = 0;
    SBI_ASSERT_EQ_INT(sbi_estimator_create(&c, &est), SBI_ERR_INPUT);
    SBI_ASSERT(est == NULL);
    sbi_error_clear();
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_defaults();
    check_json();
    check_time_features();
    check_calls();
    status = SBI_TEST_REPORT("flow_config");
    MPI_Finalize();
    return status;
}
