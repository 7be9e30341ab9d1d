/* The plugin family with the two_moons example plugin (argv[1] is its path):
 * loading, reproducible simulation, the two-moons geometry, and every input
 * error of loading a plugin. */
#include <math.h>
#include <string.h>

#include "exosbi/forward.h"
#include "testutil.h"

sbi_task *fwtest_task_new(const char *family, int n_params, const int *sizes, int n_datasets,
                          const char *settings_json);
void fwtest_task_free(sbi_task *t);
int fwtest_error_is(int rc, int code, const char *needle1, const char *needle2);

static const char *plugin_path;

static sbi_task *plugin_task(const char *library, int n_params, int n_outputs, const char *settings)
{
    sbi_task *t = fwtest_task_new("plugin", n_params, &n_outputs, 1, settings);
    snprintf(t->plugin_library, sizeof t->plugin_library, "%s", library);
    return t;
}

static int try_create(const char *library, int n_params, int n_outputs, const char *settings)
{
    sbi_task *t = plugin_task(library, n_params, n_outputs, settings);
    sbi_forward fw = NULL;
    int rc = sbi_forward_create(t, &fw);
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
    return rc;
}

static void test_simulate(void)
{
    enum { N = 2500 };
    static double theta[2 * N], out1[2 * N], out2[2 * N], shifted[2 * N];
    static uint64_t index[N];
    sbi_task *t = plugin_task(plugin_path, 2, 2, "{}");
    sbi_forward fw = NULL;
    double one[2], rsum = 0;
    int in_band = 1, right_half = 1, differs = 0, reseeded = 0;
    const double *A;

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (!fw) goto done;
    SBI_ASSERT(strcmp(sbi_forward_family(fw), "plugin") == 0);
    SBI_ASSERT_EQ_INT(sbi_forward_n_outputs(fw), 2);
    SBI_ASSERT(fwtest_error_is(sbi_linear_gaussian_matrices(fw, &A, NULL), SBI_ERR_INPUT, "linear_gaussian",
                               "'plugin'"));

    for (int i = 0; i < N; ++i) index[i] = 1000 + (uint64_t)i;
    /* theta = 0: x = (r cos a + 0.25, r sin a) with a in (-pi/2, pi/2) and r ~ N(0.1, 0.01^2). */
    SBI_ASSERT_OK(sbi_forward_simulate(fw, N, theta, index, 11, out1));
    SBI_ASSERT_OK(sbi_forward_simulate(fw, N, theta, index, 11, out2));
    SBI_ASSERT(memcmp(out1, out2, sizeof out1) == 0);
    for (int i = 0; i < N; ++i) {
        double dx = out1[2 * i] - 0.25, dy = out1[2 * i + 1], r = sqrt(dx * dx + dy * dy);
        in_band &= r > 0.05 && r < 0.15;
        right_half &= dx >= 0;
        rsum += r;
        differs += i > 0 && out1[2 * i] != out1[2 * i - 2];
    }
    SBI_ASSERT(in_band);
    SBI_ASSERT(right_half);
    SBI_ASSERT_NEAR(rsum / N, 0.1, 0, 0.002);
    SBI_ASSERT_EQ_INT(differs, N - 1);

    /* Row 1700 alone (a call of one row) equals row 1700 of the batch of 2500 rows. */
    SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, &index[1700], 11, one));
    SBI_ASSERT(one[0] == out1[2 * 1700] && one[1] == out1[2 * 1700 + 1]);
    /* Another seed moves every row. */
    SBI_ASSERT_OK(sbi_forward_simulate(fw, N, theta, index, 12, out2));
    for (int i = 0; i < N; ++i) reseeded += out2[2 * i] != out1[2 * i];
    SBI_ASSERT_EQ_INT(reseeded, N);

    /* Same (seed, index), theta = (0.3, -0.1): x1 - |0.2|/sqrt2, x2 + (-0.4)/sqrt2. */
    for (int i = 0; i < N; ++i) {
        theta[2 * i] = 0.3;
        theta[2 * i + 1] = -0.1;
    }
    SBI_ASSERT_OK(sbi_forward_simulate(fw, N, theta, index, 11, shifted));
    SBI_ASSERT_NEAR(shifted[0], out1[0] - 0.2 / sqrt(2.0), 0, 1e-14);
    SBI_ASSERT_NEAR(shifted[1], out1[1] - 0.4 / sqrt(2.0), 0, 1e-14);
    SBI_ASSERT_NEAR(shifted[2 * 2499 + 1], out1[2 * 2499 + 1] - 0.4 / sqrt(2.0), 0, 1e-14);

    /* A non-finite parameter yields a NaN row, not an error. */
    theta[0] = NAN;
    SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, index, 11, one));
    SBI_ASSERT(isnan(one[0]) && isnan(one[1]));
    for (int i = 0; i < N; ++i) theta[2 * i] = theta[2 * i + 1] = 0.0;
done:
    sbi_forward_destroy(&fw);
    SBI_ASSERT(fw == NULL);
    fwtest_task_free(t);

    /* settings.offset moves the moon horizontally and nothing else. */
    t = plugin_task(plugin_path, 2, 2, "{\"offset\": 0.5}");
    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, index, 11, one));
        SBI_ASSERT_NEAR(one[0], out1[0] + 0.25, 0, 1e-14);
        SBI_ASSERT(one[1] == out1[1]);
    }
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

static void test_errors(void)
{
    const int in = SBI_ERR_INPUT;
    const char *missing = "/nonexistent/exosbi/plugins/none.so";

    SBI_ASSERT(fwtest_error_is(try_create(plugin_path, 3, 2, "{}"), in, "n_params = 2", "3 parameters"));
    SBI_ASSERT(fwtest_error_is(try_create(plugin_path, 2, 3, "{}"), in, "n_outputs = 2", plugin_path));
    SBI_ASSERT(fwtest_error_is(try_create(missing, 2, 2, "{}"), in, missing, "forward_model.library"));
    SBI_ASSERT(fwtest_error_is(try_create("", 2, 2, "{}"), in, "forward_model.library", NULL));
    /* A real library that is not a plugin: the missing symbol is named. */
    SBI_ASSERT(fwtest_error_is(try_create("libm.so.6", 2, 2, "{}"), in, "sbi_plugin_init", "libm.so.6"));
    SBI_ASSERT(fwtest_error_is(try_create(plugin_path, 2, 2, "{\"wobble\": 1}"), in, "sbi_plugin_init returned",
                               "wobble"));
    SBI_ASSERT(fwtest_error_is(try_create(plugin_path, 2, 2, "{\"offset\": \"far\"}"), in,
                               "forward_model.settings", plugin_path));
    SBI_ASSERT_OK(try_create(plugin_path, 2, 2, NULL));
    SBI_ASSERT_OK(try_create(plugin_path, 2, 2, "{\"offset\": -1e-3}"));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/two_moons.so\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    plugin_path = argv[1];
    test_simulate();
    test_errors();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_forward_plugin");
}
