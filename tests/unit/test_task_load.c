/* Loading valid task files: every field, defaults, data files, plugin paths,
 * split resolution, the simulation count, and the JSON round trip.
 * Usage: test_task_load FIXTURE_DIR */
#include <mpi.h>
#include <string.h>

#include "exosbi/task.h"
#include "testutil.h"

static char fixture_dir[1024];

static void fixture(char *out, size_t cap, const char *name)
{
    if (snprintf(out, cap, "%s/%s", fixture_dir, name) >= (int)cap) out[0] = '\0';
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

static const cJSON *json_at(const cJSON *root, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static void test_linear_gaussian(void)
{
    char path[SBI_PATH_MAX];
    sbi_task *t = NULL;
    fixture(path, sizeof path, "linear_gaussian.yaml");
    SBI_ASSERT_OK(sbi_task_load(path, &t));
    if (!t) return;
    SBI_ASSERT(!strcmp(t->path, path));
    SBI_ASSERT(!strcmp(t->name, "linear-gaussian-demo"));
    SBI_ASSERT(!strcmp(t->version, "1.0.0"));

    SBI_ASSERT_EQ_INT(t->n_params, 3);
    SBI_ASSERT(!strcmp(t->params[0].name, "a"));
    SBI_ASSERT_EQ_INT(t->params[0].prior, SBI_PRIOR_UNIFORM);
    SBI_ASSERT_NEAR(t->params[0].low, -1.0, 0, 0);
    SBI_ASSERT_NEAR(t->params[0].high, 1.0, 0, 0);
    SBI_ASSERT(!strcmp(t->params[0].label, "θ₁"));
    SBI_ASSERT(!strcmp(t->params[0].unit, ""));
    SBI_ASSERT_EQ_INT(t->params[1].prior, SBI_PRIOR_NORMAL);
    SBI_ASSERT_NEAR(t->params[1].mean, 0.5, 0, 0);
    SBI_ASSERT_NEAR(t->params[1].std, 2.0, 0, 0);
    SBI_ASSERT(!strcmp(t->params[1].label, "b")); /* defaults to the name */
    SBI_ASSERT_EQ_INT(t->params[2].prior, SBI_PRIOR_LOG_UNIFORM);
    SBI_ASSERT_NEAR(t->params[2].low, 0.01, 0, 0);
    SBI_ASSERT_NEAR(t->params[2].high, 100.0, 0, 0);
    SBI_ASSERT(!strcmp(t->params[2].unit, "bar"));
    SBI_ASSERT_EQ_INT(sbi_task_param_index(t, "c"), 2);
    SBI_ASSERT_EQ_INT(sbi_task_param_index(t, "d"), -1);

    SBI_ASSERT(!strcmp(t->family, "linear_gaussian"));
    SBI_ASSERT(t->plugin_library[0] == '\0');
    SBI_ASSERT(cJSON_IsObject(t->forward_settings));
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(t->forward_settings, "seed")), 3.0, 0, 0);
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(t->forward_settings, "scale")), 1.0, 0, 0);

    SBI_ASSERT_EQ_INT(t->n_datasets, 1);
    SBI_ASSERT(!strcmp(t->datasets[0].name, "x"));
    SBI_ASSERT_EQ_INT(t->datasets[0].modality, SBI_MODALITY_AUXILIARY);
    SBI_ASSERT_EQ_INT(t->datasets[0].size, 5);
    SBI_ASSERT(t->datasets[0].coordinates == NULL);
    for (int i = 0; i < 5; ++i) SBI_ASSERT_NEAR(t->datasets[0].uncertainty[i], 0.1, 0, 0);
    SBI_ASSERT_EQ_INT(t->datasets[0].offset, 0);
    SBI_ASSERT(!t->datasets[0].has_min && !t->datasets[0].has_max);
    SBI_ASSERT_EQ_INT(t->n_outputs, 5);
    SBI_ASSERT_EQ_INT(sbi_task_dataset_index(t, "x"), 0);
    SBI_ASSERT_EQ_INT(sbi_task_dataset_index(t, "y"), -1);

    SBI_ASSERT_EQ_INT(t->n_simulations, 1000);
    SBI_ASSERT_EQ_INT(t->batch_size, 256);
    SBI_ASSERT_EQ_INT(t->seed, 7);
    SBI_ASSERT_EQ_INT(t->split_seed, 7); /* defaults to seed */
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TRAIN], 900);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_VALIDATION], 50);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TEST], 50);
    SBI_ASSERT(t->splits_are_fractions);
    SBI_ASSERT_EQ_INT(t->split_policy, SBI_SPLIT_SEQUENTIAL);
    SBI_ASSERT_EQ_INT(t->noise, SBI_NOISE_OBSERVATIONAL);
    SBI_ASSERT(!strcmp(sbi_split_names[SBI_SPLIT_VALIDATION], "validation"));

    SBI_ASSERT(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t->training, "estimator")), "nsf"));
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(t->training, "batch_size")), 128, 0, 0);
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(t->training, "learning_rate")), 5e-4, 0, 0);

    SBI_ASSERT_EQ_INT(strlen(t->fingerprint), 64);
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(json_at(json_at(t->json, "simulation", "split_counts"), "train", NULL)), 900,
                    0, 0);
    SBI_ASSERT_EQ_INT(cJSON_GetArraySize(json_at(cJSON_GetArrayItem(json_at(t->json, "datasets", NULL), 0),
                                                 "uncertainty", NULL)),
                      5);

    /* Fractional splits follow the number of simulations. */
    SBI_ASSERT_OK(sbi_task_set_n_simulations(t, 2000));
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TRAIN], 1800);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_VALIDATION], 100);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TEST], 100);
    SBI_ASSERT_OK(sbi_task_set_n_simulations(t, 30));
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_VALIDATION], 2); /* round(1.5) */
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TEST], 2);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TRAIN], 26);
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(json_at(t->json, "simulation", "n_simulations")), 30, 0, 0);
    SBI_ASSERT_NEAR(cJSON_GetNumberValue(json_at(json_at(t->json, "simulation", "split_counts"), "train", NULL)), 26,
                    0, 0);
    SBI_ASSERT_EQ_INT(sbi_task_set_n_simulations(t, 0), SBI_ERR_INPUT);
    sbi_error_clear();
    sbi_task_destroy(&t);
    SBI_ASSERT(t == NULL);
    sbi_task_destroy(&t); /* destroying twice is harmless */
}

static void test_plugin_spectrum(void)
{
    char path[SBI_PATH_MAX];
    sbi_task *t = NULL;
    const char *lib;
    static const double coords[5] = {1.0, 1.5, 2.0, 2.5, 3.0};
    static const double sigma[5] = {0.0010, 0.0011, 0.0012, 0.0013, 0.0014};
    fixture(path, sizeof path, "plugin_spectrum.yaml");
    SBI_ASSERT_OK(sbi_task_load(path, &t));
    if (!t) return;
    SBI_ASSERT(!strcmp(t->version, "2"));
    SBI_ASSERT_EQ_INT(t->params[0].prior, SBI_PRIOR_TRUNCATED_NORMAL);
    SBI_ASSERT_NEAR(t->params[0].mean, 1200, 0, 0);
    SBI_ASSERT_NEAR(t->params[0].std, 300, 0, 0);
    SBI_ASSERT_NEAR(t->params[0].low, 500, 0, 0);
    SBI_ASSERT_NEAR(t->params[0].high, 2500, 0, 0);
    SBI_ASSERT(!strcmp(t->params[0].unit, "K"));

    SBI_ASSERT(!strcmp(t->family, "plugin"));
    lib = t->plugin_library;
    SBI_ASSERT(lib[0] == '/');
    SBI_ASSERT(ends_with(lib, "/inputs/plugins/two_moons.so"));
    SBI_ASSERT(strstr(lib, "..") == NULL);
    SBI_ASSERT(cJSON_IsArray(cJSON_GetObjectItem(t->forward_settings, "species")));

    SBI_ASSERT_EQ_INT(t->n_datasets, 2);
    SBI_ASSERT_EQ_INT(t->datasets[0].modality, SBI_MODALITY_SPECTRUM);
    SBI_ASSERT_EQ_INT(t->datasets[0].size, 5);
    SBI_ASSERT(t->datasets[0].coordinates != NULL);
    for (int i = 0; i < 5 && t->datasets[0].coordinates; ++i) {
        SBI_ASSERT_NEAR(t->datasets[0].coordinates[i], coords[i], 0, 0);
        SBI_ASSERT_NEAR(t->datasets[0].uncertainty[i], sigma[i], 0, 0);
    }
    SBI_ASSERT(t->datasets[0].has_min && t->datasets[0].has_max);
    SBI_ASSERT_NEAR(t->datasets[0].value_min, 0.0, 0, 0);
    SBI_ASSERT_NEAR(t->datasets[0].value_max, 1.0, 0, 0);
    SBI_ASSERT_EQ_INT(t->datasets[1].modality, SBI_MODALITY_PHOTOMETRY);
    SBI_ASSERT_EQ_INT(t->datasets[1].offset, 5);
    SBI_ASSERT_NEAR(t->datasets[1].uncertainty[1], 0.02, 0, 0);
    SBI_ASSERT_NEAR(t->datasets[1].coordinates[0], 3.6, 0, 0);
    SBI_ASSERT_EQ_INT(t->n_outputs, 7);

    SBI_ASSERT_EQ_INT(t->n_simulations, 100);
    SBI_ASSERT_EQ_INT(t->batch_size, 16);
    SBI_ASSERT_EQ_INT(t->seed, 11);
    SBI_ASSERT_EQ_INT(t->split_seed, 5);
    SBI_ASSERT_EQ_INT(t->split_policy, SBI_SPLIT_RANDOM);
    SBI_ASSERT_EQ_INT(t->noise, SBI_NOISE_NONE);
    SBI_ASSERT(!t->splits_are_fractions);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TRAIN], 80);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_VALIDATION], 10);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TEST], 10);
    SBI_ASSERT(cJSON_IsObject(t->training) && cJSON_GetArraySize(t->training) == 0);

    /* Counts hold for their own total only. */
    SBI_ASSERT_EQ_INT(sbi_task_set_n_simulations(t, 200), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "simulation.splits") != NULL);
    sbi_error_clear();
    SBI_ASSERT_EQ_INT(t->n_simulations, 100);
    SBI_ASSERT_OK(sbi_task_set_n_simulations(t, 100));
    sbi_task_destroy(&t);
}

/* task -> json -> task reproduces every field and the JSON itself. */
static void test_json_round_trip(const char *name)
{
    char path[SBI_PATH_MAX];
    sbi_task *a = NULL, *b = NULL;
    char *ja, *jb;
    fixture(path, sizeof path, name);
    SBI_ASSERT_OK(sbi_task_load(path, &a));
    if (!a) return;
    ja = cJSON_PrintUnformatted(a->json);
    SBI_ASSERT_OK(sbi_task_from_json(ja, "stored.h5", &b));
    if (b) {
        jb = cJSON_PrintUnformatted(b->json);
        SBI_ASSERT(!strcmp(ja, jb));
        free(jb);
        SBI_ASSERT(!strcmp(a->fingerprint, b->fingerprint));
        SBI_ASSERT(!strcmp(a->plugin_library, b->plugin_library));
        SBI_ASSERT_EQ_INT(a->n_params, b->n_params);
        SBI_ASSERT_EQ_INT(a->n_outputs, b->n_outputs);
        SBI_ASSERT_EQ_INT(a->splits_are_fractions, b->splits_are_fractions);
        for (int s = 0; s < SBI_N_SPLITS; ++s) SBI_ASSERT_EQ_INT(a->split_counts[s], b->split_counts[s]);
        for (int j = 0; j < a->n_params; ++j) {
            SBI_ASSERT(!memcmp(&a->params[j], &b->params[j], sizeof a->params[j]));
        }
        for (int k = 0; k < a->n_datasets; ++k)
            for (int i = 0; i < a->datasets[k].size; ++i)
                SBI_ASSERT_NEAR(a->datasets[k].uncertainty[i], b->datasets[k].uncertainty[i], 0, 0);
        SBI_ASSERT(cJSON_Compare(a->training, b->training, 1));
        SBI_ASSERT(cJSON_Compare(a->forward_settings, b->forward_settings, 1));
        SBI_ASSERT_EQ_INT(a->seed, b->seed);
        SBI_ASSERT_EQ_INT(a->split_seed, b->split_seed);
        SBI_ASSERT_EQ_INT(a->batch_size, b->batch_size);
        SBI_ASSERT_EQ_INT(a->noise, b->noise);
        SBI_ASSERT_EQ_INT(a->split_policy, b->split_policy);
        /* Fractions survive, so the rebuilt task still rescales. */
        if (a->splits_are_fractions) {
            SBI_ASSERT_OK(sbi_task_set_n_simulations(b, 4000));
            SBI_ASSERT_EQ_INT(b->split_counts[SBI_SPLIT_TEST], 200);
        }
    }
    free(ja);
    sbi_task_destroy(&a);
    sbi_task_destroy(&b);
}

/* A minimal task: every optional key takes its default. */
static void test_defaults(void)
{
    static const char *text = "name: minimal\n"
                              "version: 1.0\n"
                              "parameters: [{name: p_1, prior: normal, mean: 0, std: 1}]\n"
                              "forward_model: {family: transmission}\n"
                              "datasets:\n"
                              "  - {name: d, modality: time_series, size: 2}\n"
                              "simulation:\n"
                              "  n_simulations: 20\n"
                              "  splits: {train: 0.5, validation: 0.25, test: 0.25}\n"
                              "training:\n";
    sbi_task *t = NULL;
    SBI_ASSERT_OK(sbi_task_load_text(text, "minimal.yaml", &t));
    if (!t) return;
    SBI_ASSERT(t->path[0] == '\0');
    SBI_ASSERT(!strcmp(t->version, "1.0")); /* as written, not reformatted */
    SBI_ASSERT(cJSON_IsObject(t->forward_settings) && cJSON_GetArraySize(t->forward_settings) == 0);
    SBI_ASSERT(cJSON_IsObject(t->training) && cJSON_GetArraySize(t->training) == 0);
    SBI_ASSERT_EQ_INT(t->batch_size, 256);
    SBI_ASSERT_EQ_INT(t->seed, 0);
    SBI_ASSERT_EQ_INT(t->datasets[0].modality, SBI_MODALITY_TIME_SERIES);
    SBI_ASSERT_NEAR(t->datasets[0].uncertainty[1], 0.0, 0, 0);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TRAIN], 10);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_VALIDATION], 5);
    SBI_ASSERT_EQ_INT(t->split_counts[SBI_SPLIT_TEST], 5);
    sbi_task_destroy(&t);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", argv[1]);
    test_linear_gaussian();
    test_plugin_spectrum();
    test_json_round_trip("linear_gaussian.yaml");
    test_json_round_trip("plugin_spectrum.yaml");
    test_defaults();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_task_load");
}
