/* The forward-model registry and the linear_gaussian family: simulate against
 * hand-computed values, the seeded A's determinism and scale, and the input
 * errors of settings and families. */
#include <math.h>
#include <string.h>

#include "exosbi/forward.h"
#include "testutil.h"

sbi_task *fwtest_task_new(const char *family, int n_params, const int *sizes, int n_datasets,
                          const char *settings_json);
void fwtest_task_free(sbi_task *t);
int fwtest_error_is(int rc, int code, const char *needle1, const char *needle2);

/* Create from (family, settings) for a task of n_params parameters and one
 * dataset of n_outputs values; return the status and clean up. */
static int try_create(const char *family, int n_params, int n_outputs, const char *settings)
{
    sbi_task *t = fwtest_task_new(family, n_params, &n_outputs, 1, settings);
    sbi_forward fw = NULL;
    int rc = sbi_forward_create(t, &fw);
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
    return rc;
}

static void test_explicit(void)
{
    const int size = 3;
    sbi_task *t = fwtest_task_new("linear_gaussian", 2, &size, 1,
                                  "{\"A\": [[1, 2], [3, -1], [0.5, 0]], \"b\": [0.1, -0.2, 0.3]}");
    sbi_forward fw = NULL;
    const double theta[8] = {1, 1, 0, 2, -1, 0.5, 2, -3};
    const uint64_t index[4] = {0, 1, 2, 3};
    /* x = A theta + b, row by row, worked out by hand. */
    const double expect[12] = {3.1, 1.8, 0.8, 4.1, -2.2, 0.3, 0.1, -3.7, -0.2, -3.9, 8.8, 1.3};
    double out[12];
    const double *A = NULL, *b = NULL;

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    SBI_ASSERT(fw != NULL);
    if (!fw) goto done;
    SBI_ASSERT(strcmp(sbi_forward_family(fw), "linear_gaussian") == 0);
    SBI_ASSERT_EQ_INT(sbi_forward_n_outputs(fw), 3);
    SBI_ASSERT_OK(sbi_forward_simulate(fw, 4, theta, index, 7, out));
    for (int i = 0; i < 12; ++i) SBI_ASSERT_NEAR(out[i], expect[i], 0, 1e-14);
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fw, &A, &b));
    SBI_ASSERT(A && b);
    if (A && b) {
        SBI_ASSERT_NEAR(A[1 * 2 + 0], 3.0, 0, 0);
        SBI_ASSERT_NEAR(A[2 * 2 + 0], 0.5, 0, 0);
        SBI_ASSERT_NEAR(b[1], -0.2, 0, 0);
    }
    SBI_ASSERT_OK(sbi_forward_simulate(fw, 0, NULL, NULL, 7, NULL));
    sbi_forward_destroy(&fw);
    SBI_ASSERT(fw == NULL);
    sbi_forward_destroy(&fw); /* destroy is idempotent */
done:
    fwtest_task_free(t);

    /* Without b the offset is zero. */
    t = fwtest_task_new("linear_gaussian", 2, &size, 1, "{\"A\": [[1, 2], [3, -1], [0.5, 0]]}");
    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, index, 7, out));
        SBI_ASSERT_NEAR(out[0], 3.0, 0, 1e-15);
        SBI_ASSERT_NEAR(out[1], 2.0, 0, 1e-15);
        SBI_ASSERT_NEAR(out[2], 0.5, 0, 1e-15);
    }
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

static void test_seeded(void)
{
    const int n_out = 50, p = 20;
    sbi_task *t1 = fwtest_task_new("linear_gaussian", p, &n_out, 1, "{\"seed\": 42, \"scale\": 2.0}");
    sbi_task *t2 = fwtest_task_new("linear_gaussian", p, &n_out, 1, "{\"seed\": 42, \"scale\": 2.0}");
    sbi_task *t3 = fwtest_task_new("linear_gaussian", p, &n_out, 1, "{\"seed\": 43, \"scale\": 2.0}");
    sbi_forward f1 = NULL, f2 = NULL, f3 = NULL;
    const double *A1 = NULL, *A2 = NULL, *A3 = NULL, *b1 = NULL;
    int same12 = 1, same13 = 1, bzero = 1;
    double sum = 0, sum2 = 0, mean, sd;
    const int n = n_out * p;

    SBI_ASSERT_OK(sbi_forward_create(t1, &f1));
    SBI_ASSERT_OK(sbi_forward_create(t2, &f2));
    SBI_ASSERT_OK(sbi_forward_create(t3, &f3));
    if (!f1 || !f2 || !f3) goto done;
    SBI_ASSERT_EQ_INT(sbi_forward_n_outputs(f1), n_out);
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(f1, &A1, &b1));
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(f2, &A2, NULL));
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(f3, &A3, NULL));
    for (int i = 0; i < n; ++i) {
        same12 &= memcmp(&A1[i], &A2[i], sizeof(double)) == 0;
        same13 &= A1[i] == A3[i];
        sum += A1[i];
        sum2 += A1[i] * A1[i];
    }
    for (int i = 0; i < n_out; ++i) bzero &= b1[i] == 0.0;
    SBI_ASSERT(same12);
    SBI_ASSERT(!same13);
    SBI_ASSERT(bzero);
    mean = sum / n;
    sd = sqrt((sum2 - n * mean * mean) / (n - 1));
    /* Entries are N(0, scale^2 / P): sd = 2 / sqrt(20). */
    SBI_ASSERT_NEAR(sd, 2.0 / sqrt((double)p), 0.2, 0);
    SBI_ASSERT(fabs(mean) < 4.0 * (2.0 / sqrt((double)p)) / sqrt((double)n));
done:
    sbi_forward_destroy(&f1);
    sbi_forward_destroy(&f2);
    sbi_forward_destroy(&f3);
    fwtest_task_free(t1);
    fwtest_task_free(t2);
    fwtest_task_free(t3);
}

static void test_settings_errors(void)
{
    const int in = SBI_ERR_INPUT;
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 3, "{\"A\": [[1, 2], [3], [0, 0]]}"), in,
                               "forward_model.settings.A[1]", "hand-made-task.yaml"));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 3, "{\"A\": [[1, 2], [\"x\", 1], [0, 0]]}"), in,
                               "forward_model.settings.A[1][0]", "hand-made-task.yaml"));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 3, "{\"A\": 5}"), in, "forward_model.settings.A",
                               NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 3, "{\"A\": [[1, 2], 7, [0, 0]]}"), in,
                               "forward_model.settings.A[1]", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"A\": [[1, 2], [0, 1]], \"b\": [1]}"), in,
                               "forward_model.settings.b", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"A\": [[1, 2], [0, 1]], \"C\": 1}"), in,
                               "forward_model.settings.C", "unknown key"));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"seed\": 1, \"A\": [[1, 2], [0, 1]]}"), in,
                               "either A or seed", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"seed\": 1.5}"), in,
                               "forward_model.settings.seed", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"seed\": 1, \"scale\": -1}"), in,
                               "forward_model.settings.scale", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{\"seed\": 1, \"b\": [0, 0]}"), in,
                               "forward_model.settings.b", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, "{}"), in, "forward_model.settings", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 2, 2, NULL), in, "forward_model.settings", NULL));
    /* A has 4 rows, the datasets total 3 values: both numbers are named. */
    SBI_ASSERT(fwtest_error_is(try_create("linear_gaussian", 1, 3, "{\"A\": [[1], [2], [3], [4]]}"), in,
                               "produces 4 outputs", "total 3 values"));
    SBI_ASSERT_OK(try_create("linear_gaussian", 2, 2, "{\"seed\": 9}"));
}

static void test_families(void)
{
    const int in = SBI_ERR_INPUT;
    SBI_ASSERT(fwtest_error_is(try_create("moonshine", 2, 2, "{}"), in, "unknown family 'moonshine'",
                               "known: linear_gaussian, plugin, transmission, emission"));
    SBI_ASSERT(fwtest_error_is(try_create("moonshine", 2, 2, "{}"), in, "hand-made-task.yaml: forward_model.family",
                               NULL));
    /* The radiative-transfer families exist and reject a parameter they do not use. */
    SBI_ASSERT(fwtest_error_is(try_create("transmission", 2, 2, "{}"), in,
                               "'p0' is not an input of this transmission model", NULL));
    SBI_ASSERT(fwtest_error_is(try_create("emission", 2, 2, "{}"), in, "'p0' is not an input of this emission model",
                               NULL));
    /* The registry lists the four families and ends with NULL. */
    SBI_ASSERT(sbi_forward_registry[0] && strcmp(sbi_forward_registry[0]->family, "linear_gaussian") == 0);
    SBI_ASSERT(sbi_forward_registry[1] && strcmp(sbi_forward_registry[1]->family, "plugin") == 0);
    SBI_ASSERT(sbi_forward_registry[2] && strcmp(sbi_forward_registry[2]->family, "transmission") == 0);
    SBI_ASSERT(sbi_forward_registry[3] && strcmp(sbi_forward_registry[3]->family, "emission") == 0);
    SBI_ASSERT(sbi_forward_registry[4] == NULL);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_explicit();
    test_seeded();
    test_settings_errors();
    test_families();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_forward_linear");
}
