/* Accuracy of a trained posterior on the linear-Gaussian task, against the
 * exact Gaussian posterior, over the first N test cases of a corpus.
 *
 *   lg_accuracy TASK MODEL.h5 CORPUS.h5 N_CASES MAX_BIAS MAX_STD_ERR
 *
 * For each case: the exact posterior mean and covariance, and the mean and
 * standard deviation of 4000 amortized draws.  Prints the mean over cases and
 * parameters of |mean error| / exact sigma and of |sigma ratio - 1| (and the
 * worst parameter's), and fails when the averages exceed the limits. */
#include <math.h>
#include <stdlib.h>

#include "exosbi/corpus.h"
#include "exosbi/forward.h"
#include "exosbi/model.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    sbi_comm c;
    sbi_task *task = NULL;
    sbi_model *m = NULL;
    sbi_forward fw = NULL;
    sbi_corpus corpus = NULL;
    int n_cases, D, X, S = 4000;
    double max_bias, max_std;
    double *theta, *x, *mean, *cov, *samples, *bias_sum, *std_sum;
    float *xf;

    MPI_Init(&argc, &argv);
    sbi_comm_init(&c, MPI_COMM_WORLD);
    if (argc != 7) {
        fprintf(stderr, "usage: %s TASK MODEL CORPUS N_CASES MAX_BIAS MAX_STD_ERR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    n_cases = atoi(argv[4]);
    max_bias = atof(argv[5]);
    max_std = atof(argv[6]);
    SBI_ASSERT_OK(sbi_task_load(argv[1], &task));
    SBI_ASSERT_OK(sbi_model_load(argv[2], &m));
    SBI_ASSERT_OK(sbi_forward_create(task, &fw));
    SBI_ASSERT_OK(sbi_corpus_open(&c, argv[3], &corpus));
    if (sbi_test_failures) return SBI_TEST_REPORT("lg_accuracy");
    D = task->n_params;
    X = (int)task->n_outputs;
    theta = malloc(sizeof(double) * D);
    x = malloc(sizeof(double) * X);
    xf = malloc(sizeof(float) * X);
    mean = malloc(sizeof(double) * D);
    cov = malloc(sizeof(double) * D * D);
    samples = malloc(sizeof(double) * S * D);
    bias_sum = calloc(D, sizeof(double));
    std_sum = calloc(D, sizeof(double));
    for (int i = 0; i < n_cases; ++i) {
        sbi_rng rng;
        SBI_ASSERT_OK(sbi_corpus_read_rows(corpus, SBI_SPLIT_TEST, i, 1, 0, theta, xf, NULL));
        for (int k = 0; k < X; ++k) x[k] = xf[k];
        SBI_ASSERT_OK(sbi_linear_gaussian_posterior(task, fw, x, mean, cov));
        sbi_rng_init(&rng, 99, (uint64_t)i, SBI_STREAM_SAMPLE, 0);
        SBI_ASSERT_OK(sbi_model_sample(m, x, S, &rng, samples, NULL));
        for (int j = 0; j < D; ++j) {
            double mu = 0, var = 0, s_ex = sqrt(cov[j * D + j]);
            for (int s = 0; s < S; ++s) mu += samples[s * D + j];
            mu /= S;
            for (int s = 0; s < S; ++s) var += (samples[s * D + j] - mu) * (samples[s * D + j] - mu);
            bias_sum[j] += fabs(mu - mean[j]) / s_ex;
            std_sum[j] += fabs(sqrt(var / (S - 1)) / s_ex - 1.0);
        }
    }
    {
        double b = 0, s = 0, bw = 0, sw = 0;
        for (int j = 0; j < D; ++j) {
            b += bias_sum[j] / n_cases;
            s += std_sum[j] / n_cases;
            bw = fmax(bw, bias_sum[j] / n_cases);
            sw = fmax(sw, std_sum[j] / n_cases);
        }
        b /= D;
        s /= D;
        printf("lg_accuracy: %d cases, %d draws each (Monte Carlo error of a mean: %.3f sigma)\n", n_cases, S,
               1.0 / sqrt(S));
        printf("  mean |posterior mean error| / exact sigma: %.4f (worst parameter %.4f), limit %.3f\n", b, bw,
               max_bias);
        printf("  mean |sigma / exact sigma - 1|:           %.4f (worst parameter %.4f), limit %.3f\n", s, sw,
               max_std);
        SBI_ASSERT(b < max_bias);
        SBI_ASSERT(s < max_std);
    }
    sbi_corpus_close(&corpus);
    sbi_forward_destroy(&fw);
    sbi_model_destroy(&m);
    sbi_task_destroy(&task);
    free(theta);
    free(x);
    free(xf);
    free(mean);
    free(cov);
    free(samples);
    free(bias_sum);
    free(std_sum);
    {
        int rc = SBI_TEST_REPORT("lg_accuracy");
        MPI_Finalize();
        return rc;
    }
}
