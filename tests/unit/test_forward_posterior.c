/* The exact posterior of the linear_gaussian family: a 2-parameter,
 * 3-output case solved by hand, the normal equations on a random case, and
 * an importance-sampling estimate of E[theta | x] from prior draws. */
#include <math.h>
#include <string.h>

#include "exosbi/forward.h"
#include "exosbi/rng.h"
#include "testutil.h"

sbi_task *fwtest_task_new(const char *family, int n_params, const int *sizes, int n_datasets,
                          const char *settings_json);
void fwtest_task_free(sbi_task *t);
int fwtest_error_is(int rc, int code, const char *needle1, const char *needle2);

/* The hand case: A = [[1, 0], [0, 1], [1, 1]], b = (0.1, 0.2, -0.3), sigma = (1, 2, 0.5)
 * over two datasets (sizes 2 and 1), priors N(0.5, 1) and N(-1, 2^2), x = (1, 2, 0.5).
 *   Q = A^T S^-1 A + diag(1, 1/4) = [[6, 4], [4, 4.5]],  det Q = 11,
 *   cov = [[4.5, -4], [-4, 6]] / 11,
 *   A^T S^-1 (x - b) + mu/std^2 = (4.1 + 0.5, 3.65 - 0.25) = (4.6, 3.4),
 *   mean = cov (4.6, 3.4) = (7.1, 2) / 11. */
static sbi_task *hand_task(void)
{
    const int sizes[2] = {2, 1};
    sbi_task *t = fwtest_task_new("linear_gaussian", 2, sizes, 2,
                                  "{\"A\": [[1, 0], [0, 1], [1, 1]], \"b\": [0.1, 0.2, -0.3]}");
    t->params[0].mean = 0.5;
    t->params[0].std = 1.0;
    t->params[1].mean = -1.0;
    t->params[1].std = 2.0;
    t->datasets[0].uncertainty[0] = 1.0;
    t->datasets[0].uncertainty[1] = 2.0;
    t->datasets[1].uncertainty[0] = 0.5;
    return t;
}

static const double hand_x[3] = {1.0, 2.0, 0.5};

static void test_hand(void)
{
    sbi_task *t = hand_task();
    sbi_forward fw = NULL;
    double mean[2], cov[4];

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_OK(sbi_linear_gaussian_posterior(t, fw, hand_x, mean, cov));
        SBI_ASSERT_NEAR(mean[0], 7.1 / 11.0, 0, 1e-10);
        SBI_ASSERT_NEAR(mean[1], 2.0 / 11.0, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[0], 4.5 / 11.0, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[1], -4.0 / 11.0, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[2], -4.0 / 11.0, 0, 1e-10);
        SBI_ASSERT_NEAR(cov[3], 6.0 / 11.0, 0, 1e-10);
    }
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

/* Self-normalised importance sampling with the prior as proposal:
 * E[theta | x] ~ sum_i w_i theta_i / sum_i w_i with w_i the likelihood. */
static void test_monte_carlo(void)
{
    sbi_task *t = hand_task();
    sbi_forward fw = NULL;
    const double *A, *b;
    const double sig[3] = {1.0, 2.0, 0.5};
    const int n = 200000;
    double mean[2], cov[4], sw = 0, sw2 = 0, m[2] = {0, 0}, ess;

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (!fw) goto done;
    SBI_ASSERT_OK(sbi_linear_gaussian_posterior(t, fw, hand_x, mean, cov));
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fw, &A, &b));
    for (int i = 0; i < n; ++i) {
        sbi_rng r;
        double th[2], logw = 0, w;
        sbi_rng_init(&r, 2024, (uint64_t)i, SBI_STREAM_PRIOR, 0);
        th[0] = t->params[0].mean + t->params[0].std * sbi_rng_normal(&r);
        th[1] = t->params[1].mean + t->params[1].std * sbi_rng_normal(&r);
        for (int k = 0; k < 3; ++k) {
            double z = (hand_x[k] - A[2 * k] * th[0] - A[2 * k + 1] * th[1] - b[k]) / sig[k];
            logw -= 0.5 * z * z;
        }
        w = exp(logw);
        sw += w;
        sw2 += w * w;
        m[0] += w * th[0];
        m[1] += w * th[1];
    }
    m[0] /= sw;
    m[1] /= sw;
    ess = sw * sw / sw2;
    SBI_ASSERT(ess > 1000);
    /* Five standard errors of the self-normalised estimate. */
    SBI_ASSERT_NEAR(m[0], mean[0], 0, 5.0 * sqrt(cov[0] / ess));
    SBI_ASSERT_NEAR(m[1], mean[1], 0, 5.0 * sqrt(cov[3] / ess));
done:
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

/* A random 4-parameter, 7-output case: Q mean = A^T S^-1 (x - b) + mu/std^2 and
 * cov Q = I, with Q and the right-hand side built by plain loops. */
static void test_normal_equations(void)
{
    enum { P = 4, M = 7 };
    const int sizes[2] = {3, 4};
    sbi_task *t = fwtest_task_new("linear_gaussian", P, sizes, 2, "{\"seed\": 5, \"scale\": 1.5}");
    sbi_forward fw = NULL;
    const double *A, *b;
    double x[M], s[M], mean[P], cov[P * P], Q[P * P], rhs[P];
    sbi_rng r;

    sbi_rng_init(&r, 77, 0, SBI_STREAM_SAMPLE, 0);
    for (int j = 0; j < P; ++j) {
        t->params[j].mean = sbi_rng_normal(&r);
        t->params[j].std = 0.5 + sbi_rng_uniform(&r);
    }
    for (int i = 0; i < M; ++i) {
        s[i] = 0.1 + sbi_rng_uniform(&r);
        x[i] = 2.0 * sbi_rng_normal(&r);
    }
    for (int i = 0; i < 3; ++i) t->datasets[0].uncertainty[i] = s[i];
    for (int i = 0; i < 4; ++i) t->datasets[1].uncertainty[i] = s[3 + i];

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (!fw) goto done;
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fw, &A, &b));
    SBI_ASSERT_OK(sbi_linear_gaussian_posterior(t, fw, x, mean, cov));
    for (int j = 0; j < P; ++j) {
        rhs[j] = t->params[j].mean / (t->params[j].std * t->params[j].std);
        for (int i = 0; i < M; ++i) rhs[j] += A[i * P + j] * (x[i] - b[i]) / (s[i] * s[i]);
        for (int k = 0; k < P; ++k) {
            Q[j * P + k] = j == k ? 1.0 / (t->params[j].std * t->params[j].std) : 0.0;
            for (int i = 0; i < M; ++i) Q[j * P + k] += A[i * P + j] * A[i * P + k] / (s[i] * s[i]);
        }
    }
    for (int j = 0; j < P; ++j) {
        double lhs = 0;
        for (int k = 0; k < P; ++k) lhs += Q[j * P + k] * mean[k];
        SBI_ASSERT_NEAR(lhs, rhs[j], 1e-10, 1e-10);
        for (int k = 0; k < P; ++k) {
            double e = 0;
            for (int l = 0; l < P; ++l) e += cov[j * P + l] * Q[l * P + k];
            SBI_ASSERT_NEAR(e, j == k ? 1.0 : 0.0, 0, 1e-10);
            SBI_ASSERT(cov[j * P + k] == cov[k * P + j]);
        }
    }
done:
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

static void test_errors(void)
{
    sbi_task *t = hand_task();
    sbi_forward fw = NULL;
    double mean[2], cov[4];

    SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        t->params[1].prior = SBI_PRIOR_UNIFORM;
        SBI_ASSERT(fwtest_error_is(sbi_linear_gaussian_posterior(t, fw, hand_x, mean, cov), SBI_ERR_INPUT,
                                   "parameters[1] (p1)", "normal prior"));
        t->params[1].prior = SBI_PRIOR_NORMAL;
        t->datasets[1].uncertainty[0] = 0.0;
        SBI_ASSERT(fwtest_error_is(sbi_linear_gaussian_posterior(t, fw, hand_x, mean, cov), SBI_ERR_INPUT,
                                   "datasets[1] (d1).uncertainty[0]", "positive"));
        t->datasets[1].uncertainty[0] = 0.5;
        SBI_ASSERT_OK(sbi_linear_gaussian_posterior(t, fw, hand_x, mean, cov));
    }
    sbi_forward_destroy(&fw);
    fwtest_task_free(t);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_hand();
    test_monte_carlo();
    test_normal_equations();
    test_errors();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_forward_posterior");
}
