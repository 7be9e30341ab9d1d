/* Invalid tasks: every kind of problem is SBI_ERR_INPUT with a message that
 * names the file, the line and the key path.
 * Usage: test_task_errors FIXTURE_DIR */
#include <mpi.h>
#include <string.h>

#include "exosbi/task.h"
#include "testutil.h"

static char fixture_dir[1024];

/* The status must be `code` and the recorded message must contain each
 * non-NULL needle.  The recorded error is cleared for the next case. */
static void expect(const char *label, int status, int code, const char *n1, const char *n2, const char *n3)
{
    const char *msg = sbi_error_message();
    const char *needles[3] = {n1, n2, n3};
    SBI_ASSERT_EQ_INT(status, code);
    for (int i = 0; i < 3; ++i) {
        if (!needles[i]) continue;
        ++sbi_test_checks;
        if (!strstr(msg, needles[i])) {
            ++sbi_test_failures;
            fprintf(stderr, "%s: message lacks \"%s\": %s\n", label, needles[i], msg);
        }
    }
    sbi_error_clear();
}

static void expect_text(const char *label, const char *text, const char *n1, const char *n2, const char *n3)
{
    sbi_task *t = NULL;
    int status = sbi_task_load_text(text, "inline.yaml", &t);
    expect(label, status, SBI_ERR_INPUT, n1, n2, n3);
    SBI_ASSERT(t == NULL);
    sbi_task_destroy(&t);
}

/* One fixture per kind of error, with the line and key path it must name. */
static void test_fixtures(void)
{
    static const struct {
        const char *file;
        int line;
        const char *path;
        const char *what;
    } cases[] = {
        {"bad_unknown_top.yaml", 14, "descripton", "unknown key"},
        {"bad_unknown_nested.yaml", 10, "parameters[1].hihg", "unknown key"},
        {"bad_missing.yaml", 18, "datasets[0].modality", "missing required key"},
        {"bad_type.yaml", 23, "simulation.n_simulations", "must be an integer"},
        {"bad_low_high.yaml", 13, "parameters[2].high", "must be greater than low (got low=1, high=0)"},
        {"bad_std.yaml", 9, "parameters[1].std", "must be positive"},
        {"bad_duplicate_param.yaml", 10, "parameters[2].name", "duplicate parameter name 'a'"},
        {"bad_shape.yaml", 21, "datasets[0].coordinates", "dataset shape mismatch"},
        {"bad_nan.yaml", 8, "parameters[1].mean", "finite"},
        {"bad_prior.yaml", 11, "parameters[2].prior", "unknown prior 'gamma'"},
        {"bad_training_key.yaml", 26, "training.learning_rat", "unknown key"},
        {"bad_syntax.yaml", 6, NULL, "YAML syntax error"},
        {"bad_plugin_no_library.yaml", 14, "forward_model.library", "missing required key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        char path[1200], where[256];
        sbi_task *t = NULL;
        int status;
        snprintf(path, sizeof path, "%s/%s", fixture_dir, cases[i].file);
        snprintf(where, sizeof where, "%s:%d:", cases[i].file, cases[i].line);
        status = sbi_task_load(path, &t);
        expect(cases[i].file, status, SBI_ERR_INPUT, where, cases[i].path, cases[i].what);
        SBI_ASSERT(t == NULL);
    }
}

/* The pieces of a valid task; each inline case replaces one of them. */
#define HEAD "name: t\nversion: 1\n"
#define PARAMS "parameters:\n  - {name: a, prior: uniform, low: 0, high: 1}\n"
#define FORWARD "forward_model:\n  family: linear_gaussian\n"
#define DATA "datasets:\n  - {name: x, modality: auxiliary, size: 3}\n"
#define SIM "simulation:\n  n_simulations: 100\n"

static void test_inline(void)
{
    sbi_task *t = NULL;
    /* The pieces put together are valid, so each case below fails for its own reason only. */
    SBI_ASSERT_OK(sbi_task_load_text(HEAD PARAMS FORWARD DATA SIM, "inline.yaml", &t));
    sbi_task_destroy(&t);

    expect_text("nested simulation key", HEAD PARAMS FORWARD DATA SIM "  sed: 3\n", "inline.yaml:11:3:",
                "simulation.sed", "unknown key 'sed'");
    expect_text("splits do not sum", HEAD PARAMS FORWARD DATA SIM "  splits: {train: 0.9, validation: 0.2, test: 0.1}\n",
                "inline.yaml:11:3:", "simulation.splits", "sum to");
    expect_text("mixed splits", HEAD PARAMS FORWARD DATA SIM "  splits: {train: 90, validation: 0.5, test: 9.5}\n",
                "inline.yaml:11:", "simulation.splits.train", "fraction");
    expect_text("counts do not sum", HEAD PARAMS FORWARD DATA SIM "  splits: {train: 90, validation: 5, test: 4}\n",
                "inline.yaml:11:", "simulation.splits", "sum to 99");
    expect_text("split missing", HEAD PARAMS FORWARD DATA SIM "  splits: {train: 0.9, validation: 0.1}\n",
                "inline.yaml:11:", "simulation.splits.test", "missing required key");
    expect_text("fractional integer", HEAD PARAMS FORWARD DATA "simulation:\n  n_simulations: 1000.0\n",
                "inline.yaml:10:3:", "simulation.n_simulations", "must be an integer (got 1000.0)");
    expect_text("zero simulations", HEAD PARAMS FORWARD DATA "simulation:\n  n_simulations: 0\n", "inline.yaml:10:",
                "simulation.n_simulations", "at least 1");
    expect_text("bad noise", HEAD PARAMS FORWARD DATA SIM "  noise: loud\n", "inline.yaml:11:", "simulation.noise",
                "unknown noise mode 'loud'");
    expect_text("training type", HEAD PARAMS FORWARD DATA SIM "training:\n  max_epochs: 1.5\n", "inline.yaml:12:",
                "training.max_epochs", "must be an integer");
    expect_text("training string", HEAD PARAMS FORWARD DATA SIM "training:\n  estimator: 3\n", "inline.yaml:12:",
                "training.estimator", "must be a string");
    expect_text("negative uncertainty",
                HEAD PARAMS FORWARD "datasets:\n  - name: x\n    modality: auxiliary\n    size: 3\n"
                                    "    uncertainty: [0.1, -0.2, 0.3]\n" SIM,
                "inline.yaml:11:", "datasets[0].uncertainty[1]", "negative");
    expect_text("uncertainty length",
                HEAD PARAMS FORWARD "datasets:\n  - {name: x, modality: auxiliary, size: 3, uncertainty: [1, 2]}\n" SIM,
                "inline.yaml:8:", "datasets[0].uncertainty", "dataset shape mismatch");
    expect_text("no size", HEAD PARAMS FORWARD "datasets:\n  - {name: x, modality: auxiliary}\n" SIM,
                "inline.yaml:8:", "datasets[0].size", "give size or coordinates");
    expect_text("duplicate dataset",
                HEAD PARAMS FORWARD "datasets:\n  - {name: x, modality: auxiliary, size: 1}\n"
                                    "  - {name: x, modality: spectrum, size: 2}\n" SIM,
                "inline.yaml:9:", "datasets[1].name", "duplicate dataset name");
    expect_text("bad modality", HEAD PARAMS FORWARD "datasets:\n  - {name: x, modality: radio, size: 1}\n" SIM,
                "inline.yaml:8:", "datasets[0].modality", "unknown modality 'radio'");
    expect_text("constraints", HEAD PARAMS FORWARD "datasets:\n  - {name: x, modality: auxiliary, size: 1, "
                "constraints: {min: 2, max: 1}}\n" SIM,
                "inline.yaml:8:", "datasets[0].constraints.max", "greater than min");
    expect_text("missing data file",
                HEAD PARAMS FORWARD "datasets:\n  - name: x\n    modality: spectrum\n"
                                    "    coordinates: {file: no_such_file.txt, column: 0}\n" SIM,
                "inline.yaml:10:", "datasets[0].coordinates.file", "cannot open");
    expect_text("library without plugin", HEAD PARAMS FORWARD "  library: x.so\n" DATA SIM, "inline.yaml:7:3:",
                "forward_model.library", "only the plugin family");
    expect_text("unknown family", HEAD PARAMS "forward_model: {family: magic}\n" DATA SIM, "inline.yaml:5:",
                "forward_model.family", "unknown family 'magic'");
    expect_text("settings not a mapping", HEAD PARAMS "forward_model: {family: emission, settings: [1]}\n" DATA SIM,
                "inline.yaml:5:", "forward_model.settings", "must be a mapping (got a list)");
    expect_text("log_uniform at zero", HEAD "parameters:\n  - {name: a, prior: log_uniform, low: 0, high: 1}\n"
                FORWARD DATA SIM, "inline.yaml:4:", "parameters[0].low", "must be positive");
    expect_text("key of another prior", HEAD "parameters:\n  - {name: a, prior: uniform, low: 0, high: 1, std: 2}\n"
                FORWARD DATA SIM, "inline.yaml:4:", "parameters[0].std", "for a uniform prior");
    expect_text("truncated std", HEAD "parameters:\n  - {name: a, prior: truncated_normal, mean: 0, std: -1, "
                "low: 0, high: 1}\n" FORWARD DATA SIM, "inline.yaml:4:", "parameters[0].std", "must be positive");
    expect_text("bad name", HEAD "parameters:\n  - {name: 2x, prior: uniform, low: 0, high: 1}\n" FORWARD DATA SIM,
                "inline.yaml:4:", "parameters[0].name", "not a valid name");
    expect_text("no parameters", HEAD "parameters: []\n" FORWARD DATA SIM, "inline.yaml:3:", "parameters",
                "at least one");
    expect_text("infinite value", HEAD "parameters:\n  - {name: a, prior: uniform, low: -.inf, high: 1}\n"
                FORWARD DATA SIM, "inline.yaml:4:", "parameters[0].low", "finite");
    expect_text("duplicate key", HEAD PARAMS FORWARD DATA SIM "  n_simulations: 5\n", "inline.yaml:11:3:",
                "simulation.n_simulations", "duplicate key");
    expect_text("missing top key", HEAD PARAMS FORWARD DATA, "inline.yaml:1:1:", "simulation",
                "missing required key");
    expect_text("missing name", "version: 1\n" PARAMS FORWARD DATA SIM, "inline.yaml:1:1:", "name",
                "missing required key");
    expect_text("version type", "name: t\nversion: [1]\n" PARAMS FORWARD DATA SIM, "inline.yaml:2:", "version",
                "string or a number");
    expect_text("root type", "- a\n- b\n", "inline.yaml:1:1:", "must be a mapping", NULL);
    expect_text("empty", "# nothing\n", "inline.yaml", "empty", NULL);
    expect_text("two documents", HEAD PARAMS FORWARD DATA SIM "---\nname: u\n", "inline.yaml:12:", "one YAML document",
                NULL);
    expect_text("tab indentation", "name: t\nversion: 1\nparameters:\n\t- a\n", "inline.yaml:4:", "YAML", NULL);
}

/* Stored JSON goes through the same checks; its messages carry the origin and key path. */
static void test_json(void)
{
    sbi_task *t = NULL;
    int status;
    status = sbi_task_from_json("{\"name\": \"t\", \"version\": \"1\", \"parameters\": [{\"name\": \"a\", \"prior\": "
                                "\"uniform\", \"low\": 0, \"high\": 1, \"foo\": 2}]}",
                                "corpus.h5", &t);
    expect("json unknown key", status, SBI_ERR_INPUT, "corpus.h5: parameters[0].foo: unknown key 'foo'", NULL, NULL);
    SBI_ASSERT(t == NULL);
    status = sbi_task_from_json("{\"name\": \"t\", ", "model.h5", &t);
    expect("json syntax", status, SBI_ERR_INPUT, "model.h5", "not valid JSON", NULL);
    status = sbi_task_from_json("{\"name\": \"t\", \"version\": \"1\", \"parameters\": [{\"name\": \"a\", \"prior\": "
                                "\"uniform\", \"low\": 0, \"high\": 1}], \"forward_model\": {\"family\": \"emission\"},"
                                "\"datasets\": [{\"name\": \"x\", \"modality\": \"auxiliary\", \"size\": 2}],"
                                "\"simulation\": {\"n_simulations\": 10, \"split_counts\": {\"train\": 9, "
                                "\"validation\": 0, \"test\": 1}}}",
                                "report.h5", &t);
    expect("json split counts", status, SBI_ERR_INPUT, "report.h5: simulation.split_counts.train", "is 9 but the splits resolve to 8",
           NULL);
    SBI_ASSERT(t == NULL);
    status = sbi_task_from_json("{\"name\": \"t\", \"name\": \"u\"}", "dup.h5", &t);
    expect("json duplicate key", status, SBI_ERR_INPUT, "dup.h5: name: duplicate key 'name'", NULL, NULL);
    status = sbi_task_from_json("[1, 2]", "list.h5", &t);
    expect("json root", status, SBI_ERR_INPUT, "list.h5: task: must be a mapping (got a list)", NULL, NULL);
    /* split_counts belongs to the stored form only. */
    expect_text("split_counts in YAML", HEAD PARAMS FORWARD DATA SIM "  split_counts: {train: 90, validation: 5, test: 5}\n",
                "inline.yaml:11:", "simulation.split_counts", "unknown key");
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
    test_fixtures();
    test_inline();
    test_json();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_task_errors");
}
