/* Fingerprints: the canonical payload, what changes the fingerprint and what
 * does not, the difference list of sbi_task_compare, and the JSON round trip.
 * Usage: test_task_fingerprint FIXTURE_DIR */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/task.h"
#include "testutil.h"

static char fixture_dir[1024];
static char *base_text; /* linear_gaussian.yaml */

/* text with the first occurrence of `from` replaced by `to` (caller frees). */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    size_t n = strlen(text) + strlen(to) + 1;
    char *out = malloc(n);
    if (!out) return NULL;
    if (!at) {
        fprintf(stderr, "fixture lacks \"%s\"\n", from);
        ++sbi_test_failures;
        snprintf(out, n, "%s", text);
        return out;
    }
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static sbi_task *load_variant(const char *from, const char *to)
{
    sbi_task *t = NULL;
    char *text = replaced(base_text, from, to);
    SBI_ASSERT_OK(sbi_task_load_text(text, "variant.yaml", &t));
    free(text);
    return t;
}

static void test_payload_form(void)
{
    static const char *text = "name: t\nversion: 1\n"
                              "parameters:\n  - {name: a, prior: uniform, low: 0, high: 0.5, label: ignored}\n"
                              "forward_model: {family: linear_gaussian, settings: {z: 1, a: [1, 2.5, \"s\\n\"]}}\n"
                              "datasets:\n  - {name: x, modality: auxiliary, size: 2, uncertainty: 0.1}\n"
                              "simulation: {n_simulations: 10}\n";
    static const char *expected =
        "{\"datasets\":[{\"constraints\":{},\"coordinates\":null,\"modality\":\"auxiliary\",\"name\":\"x\",\"size\":2,"
        "\"uncertainty\":[0.10000000000000001,0.10000000000000001]}],\"forward_model\":{\"family\":"
        "\"linear_gaussian\",\"settings\":{\"a\":[1,2.5,\"s\\n\"],\"z\":1}},\"name\":\"t\",\"parameters\":[{\"high\":"
        "0.5,\"low\":0,\"name\":\"a\",\"prior\":\"uniform\"}],\"preprocessing_version\":1,\"version\":\"1\"}";
    sbi_task *t = NULL;
    char *payload = NULL, hex[65];
    SBI_ASSERT_OK(sbi_task_load_text(text, "payload.yaml", &t));
    if (!t) return;
    SBI_ASSERT_OK(sbi_task_fingerprint_payload(t, &payload));
    if (payload) {
        ++sbi_test_checks;
        if (strcmp(payload, expected)) {
            ++sbi_test_failures;
            fprintf(stderr, "canonical payload differs:\n  got      %s\n  expected %s\n", payload, expected);
        }
        SBI_ASSERT_OK(sbi_sha256_hex(payload, strlen(payload), hex));
        SBI_ASSERT(!strcmp(hex, t->fingerprint));
    }
    free(payload);
    sbi_task_destroy(&t);
}

static void test_stability(void)
{
    char path[1200];
    sbi_task *a = NULL, *b = NULL, *v;
    snprintf(path, sizeof path, "%s/linear_gaussian.yaml", fixture_dir);
    SBI_ASSERT_OK(sbi_task_load(path, &a));
    SBI_ASSERT_OK(sbi_task_load(path, &b));
    if (!a || !b) return;
    SBI_ASSERT(!strcmp(a->fingerprint, b->fingerprint));
    SBI_ASSERT_OK(sbi_task_compare(a, b, "reload"));

    /* Run settings, labels and spelling leave the fingerprint alone. */
    {
        static const char *const same[][2] = {
            {"n_simulations: 1000", "n_simulations: 5000"},
            {"seed: 7", "seed: 8"},
            {"learning_rate: 5.0e-4", "learning_rate: 1.0e-3"},
            {"  estimator: nsf\n", "  estimator: maf\n  max_epochs: 3\n"},
            {"  seed: 7\n", "  seed: 7\n  batch_size: 64\n  splits: {train: 80, validation: 10, test: 910}\n"},
            {"label: \"θ₁\"", "label: other"},
            {"unit: bar", "unit: Pa"},
            {"high: 1,", "high: 1.0,"},
            {"version: 1.0.0", "version: '1.0.0'"},
            {"scale: 1.0", "scale: 1"},
            {"uncertainty: 0.1", "uncertainty: [0.1, 0.1, 0.1, 0.1, 0.1]"},
        };
        for (size_t i = 0; i < sizeof same / sizeof same[0]; ++i) {
            v = load_variant(same[i][0], same[i][1]);
            if (!v) continue;
            ++sbi_test_checks;
            if (strcmp(v->fingerprint, a->fingerprint)) {
                ++sbi_test_failures;
                fprintf(stderr, "'%s' -> '%s' changed the fingerprint\n", same[i][0], same[i][1]);
            }
            SBI_ASSERT_OK(sbi_task_compare(a, v, "variant"));
            sbi_task_destroy(&v);
        }
    }
    /* sbi_task_set_n_simulations does not either. */
    SBI_ASSERT_OK(sbi_task_set_n_simulations(b, 123));
    SBI_ASSERT(!strcmp(a->fingerprint, b->fingerprint));

    /* What defines the task changes it, and compare names the field. */
    {
        static const char *const differ[][3] = {
            {"high: 1,", "high: 2,", "parameters[0].high (1 vs 2)"},
            {"settings: {seed: 3,", "settings: {seed: 4,", "forward_model.settings.seed (3 vs 4)"},
            {"std: 2.0", "std: 2.1", "parameters[1].std (2 vs 2.1)"},
            {"prior: log_uniform", "prior: uniform", "parameters[2].prior (\"log_uniform\" vs \"uniform\")"},
            {"uncertainty: 0.1", "uncertainty: [0.1, 0.1, 0.2, 0.1, 0.1]",
             "datasets[0].uncertainty[2] (0.1 vs 0.2)"},
            {"size: 5\n    uncertainty: 0.1", "size: 6\n    uncertainty: 0.1",
             "datasets[0].size (5 vs 6), datasets[0].uncertainty (5 values vs 6 values)"},
            {"modality: auxiliary", "modality: auxiliary\n    constraints: {max: 3}",
             "datasets[0].constraints.max (absent vs 3)"},
            {"family: linear_gaussian", "family: emission", "forward_model.family (\"linear_gaussian\" vs \"emission\")"},
            {"version: 1.0.0", "version: 1.0.1", "version (\"1.0.0\" vs \"1.0.1\")"},
            {"name: b", "name: b2", "parameters[1].name (\"b\" vs \"b2\")"},
        };
        for (size_t i = 0; i < sizeof differ / sizeof differ[0]; ++i) {
            v = load_variant(differ[i][0], differ[i][1]);
            if (!v) continue;
            SBI_ASSERT(strcmp(v->fingerprint, a->fingerprint) != 0);
            SBI_ASSERT_EQ_INT(sbi_task_compare(a, v, "model m.h5 was trained on a different task"),
                              SBI_ERR_INCOMPATIBLE);
            ++sbi_test_checks;
            if (!strstr(sbi_error_message(), differ[i][2]) ||
                !strstr(sbi_error_message(), "model m.h5 was trained on a different task: fingerprint mismatch") ||
                !strstr(sbi_error_message(), "differing fields: ")) {
                ++sbi_test_failures;
                fprintf(stderr, "compare message lacks \"%s\": %s\n", differ[i][2], sbi_error_message());
            }
            sbi_error_clear();
            sbi_task_destroy(&v);
        }
    }
    /* The abbreviated fingerprints head the message. */
    v = load_variant("high: 1,", "high: 3,");
    if (v) {
        char expected_head[64];
        snprintf(expected_head, sizeof expected_head, "(expected %.12s..., found %.12s...)", a->fingerprint,
                 v->fingerprint);
        SBI_ASSERT_EQ_INT(sbi_task_compare(a, v, "corpus"), SBI_ERR_INCOMPATIBLE);
        SBI_ASSERT(strstr(sbi_error_message(), expected_head) != NULL);
        sbi_error_clear();
        sbi_task_destroy(&v);
    }
    sbi_task_destroy(&a);
    sbi_task_destroy(&b);
}

/* task -> json -> task keeps the fingerprint; a plugin is known by its file name. */
static void test_json(void)
{
    char path[1200];
    sbi_task *a = NULL, *b = NULL, *c = NULL;
    char *text;
    cJSON *tree;
    snprintf(path, sizeof path, "%s/plugin_spectrum.yaml", fixture_dir);
    SBI_ASSERT_OK(sbi_task_load(path, &a));
    if (!a) return;
    text = cJSON_PrintUnformatted(a->json);
    SBI_ASSERT_OK(sbi_task_from_json(text, "corpus.h5", &b));
    free(text);
    if (b) SBI_ASSERT(!strcmp(a->fingerprint, b->fingerprint));

    tree = cJSON_Duplicate(a->json, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(tree, "forward_model"), "library",
                              cJSON_CreateString("/elsewhere/lib/two_moons.so"));
    text = cJSON_PrintUnformatted(tree);
    SBI_ASSERT_OK(sbi_task_from_json(text, "moved.h5", &c));
    if (c) {
        SBI_ASSERT(!strcmp(c->plugin_library, "/elsewhere/lib/two_moons.so"));
        SBI_ASSERT(!strcmp(a->fingerprint, c->fingerprint));
    }
    free(text);
    sbi_task_destroy(&c);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(tree, "forward_model"), "library",
                              cJSON_CreateString("/elsewhere/lib/three_moons.so"));
    text = cJSON_PrintUnformatted(tree);
    SBI_ASSERT_OK(sbi_task_from_json(text, "other.h5", &c));
    if (c) {
        SBI_ASSERT(strcmp(a->fingerprint, c->fingerprint) != 0);
        SBI_ASSERT_EQ_INT(sbi_task_compare(a, c, "plugin"), SBI_ERR_INCOMPATIBLE);
        SBI_ASSERT(strstr(sbi_error_message(), "forward_model.library (\"two_moons.so\" vs \"three_moons.so\")"));
        sbi_error_clear();
    }
    free(text);
    cJSON_Delete(tree);
    sbi_task_destroy(&a);
    sbi_task_destroy(&b);
    sbi_task_destroy(&c);
}

int main(int argc, char **argv)
{
    char path[1200];
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", argv[1]);
    snprintf(path, sizeof path, "%s/linear_gaussian.yaml", fixture_dir);
    SBI_ASSERT_OK(sbi_read_file(path, &base_text, NULL));
    if (base_text) {
        test_payload_form();
        test_stability();
        test_json();
    }
    free(base_text);
    MPI_Finalize();
    return SBI_TEST_REPORT("test_task_fingerprint");
}
