/* Forward models built from task files: inputs/two_moons.yaml (argv[1]) with
 * its plugin, and a linear_gaussian task given as YAML text, whose settings
 * travel through the task loader's JSON. */
#include <math.h>
#include <string.h>

#include "exosbi/forward.h"
#include "testutil.h"

static void test_two_moons(const char *path)
{
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const double theta[4] = {0.0, 0.0, 0.5, -0.5};
    const uint64_t index[2] = {0, 1};
    double out[4];

    SBI_ASSERT_OK(sbi_task_load(path, &t));
    if (!t) return;
    SBI_ASSERT(strcmp(t->name, "two-moons-demo") == 0);
    SBI_ASSERT(strcmp(t->family, "plugin") == 0);
    SBI_ASSERT_EQ_INT(t->n_params, 2);
    SBI_ASSERT_EQ_INT(t->n_outputs, 2);
    SBI_ASSERT(sbi_file_exists(t->plugin_library));
    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_EQ_INT(sbi_forward_n_outputs(fw), 2);
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 2, theta, index, t->seed, out));
        for (int i = 0; i < 4; ++i) SBI_ASSERT(isfinite(out[i]));
        /* theta = 0: the point lies on the moon of radius ~0.1 around (0.25, 0). */
        SBI_ASSERT_NEAR(hypot(out[0] - 0.25, out[1]), 0.1, 0, 0.05);
    }
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
}

static const char *lg_yaml =
    "name: lg-from-text\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: a, prior: normal, mean: 0.5, std: 1.0}\n"
    "  - {name: c, prior: normal, mean: -1.0, std: 2.0}\n"
    "forward_model:\n"
    "  family: linear_gaussian\n"
    "  settings:\n"
    "    A: [[1, 0], [0, 1], [1, 1]]\n"
    "    b: [0.1, 0.2, -0.3]\n"
    "datasets:\n"
    "  - {name: x, modality: auxiliary, size: 3, uncertainty: 0.5}\n"
    "simulation:\n"
    "  n_simulations: 100\n"
    "  batch_size: 10\n"
    "  seed: 3\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

static void test_linear_text(void)
{
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const double theta[2] = {2.0, -1.0}, x[3] = {1.0, 2.0, 0.5};
    const uint64_t index[1] = {0};
    double out[3], mean[2], cov[4];

    SBI_ASSERT_OK(sbi_task_load_text(lg_yaml, "lg.yaml", &t));
    if (!t) return;
    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, index, t->seed, out));
        SBI_ASSERT_NEAR(out[0], 2.1, 0, 1e-14);
        SBI_ASSERT_NEAR(out[1], -0.8, 0, 1e-14);
        SBI_ASSERT_NEAR(out[2], 0.7, 0, 1e-14);
        /* Sigma = 0.25 I: Q = 4 A^T A + diag(1, 1/4) = [[9, 4], [4, 8.25]], det 58.25;
         * rhs = 4 A^T (x - b) + mu/std^2 = (4 * 1.7 + 0.5, 4 * 2.6 - 0.25) = (7.3, 10.15). */
        SBI_ASSERT_OK(sbi_linear_gaussian_posterior(t, fw, x, mean, cov));
        SBI_ASSERT_NEAR(cov[0], 8.25 / 58.25, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[1], -4.0 / 58.25, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[3], 9.0 / 58.25, 0, 1e-10);
        SBI_ASSERT_NEAR(mean[0], (8.25 * 7.3 - 4.0 * 10.15) / 58.25, 0, 1e-10);
        SBI_ASSERT_NEAR(mean[1], (-4.0 * 7.3 + 9.0 * 10.15) / 58.25, 0, 1e-10);
    }
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/two_moons.yaml\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    test_two_moons(argv[1]);
    test_linear_text();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_forward_task");
}
