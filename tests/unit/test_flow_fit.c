/* Density fits with AdamW (single precision, the production build):
 *   gaussian:    a fixed context (X = 1, x = 0) and a correlated 2-D Gaussian
 *                target (rho = 0.8, sigma = (1, 0.5)); the mean NLL on fresh
 *                draws must come within 0.05 nats of the true entropy;
 *   conditional: theta ~ N(x, 0.3^2) with x ~ U(-2, 2) in 1-D; at x = 1 the
 *                mean of 2000 posterior draws must be within 0.05 of 1 and
 *                their std within 10% of 0.3.
 * The argument picks the case. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "exosbi/optim.h"
#include "testutil.h"

enum { BATCH = 256 };

typedef struct fit_problem {
    int D, X, steps;
    double lr;
    /* Fill x (BATCH, X) and theta (BATCH, D) with a fresh training batch. */
    void (*draw)(sbi_rng *r, sbi_real *x, sbi_real *theta, int n);
} fit_problem;

static void draw_gaussian(sbi_rng *r, sbi_real *x, sbi_real *theta, int n)
{
    const double rho = 0.8, s1 = 1.0, s2 = 0.5;
    for (int b = 0; b < n; ++b) {
        double z1 = sbi_rng_normal(r), z2 = sbi_rng_normal(r);
        x[b] = 0;
        theta[2 * b] = (sbi_real)(s1 * z1);
        theta[2 * b + 1] = (sbi_real)(s2 * (rho * z1 + sqrt(1 - rho * rho) * z2));
    }
}

static void draw_conditional(sbi_rng *r, sbi_real *x, sbi_real *theta, int n)
{
    for (int b = 0; b < n; ++b) {
        double xb = -2 + 4 * sbi_rng_uniform(r);
        x[b] = (sbi_real)xb;
        theta[b] = (sbi_real)(xb + 0.3 * sbi_rng_normal(r));
    }
}

/* Train est on p with AdamW, a cosine learning-rate decay and clipping at 5. */
static int train(sbi_estimator est, const fit_problem *p)
{
    size_t n = sbi_estimator_n_weights(est);
    sbi_real *w = sbi_estimator_weights(est), *g = sbi_estimator_grads(est);
    sbi_real *m = calloc(n, sizeof(*m)), *v = calloc(n, sizeof(*v));
    sbi_real *x = malloc(sizeof(*x) * BATCH * p->X), *theta = malloc(sizeof(*theta) * BATCH * p->D);
    sbi_real logq[BATCH], dlogq[BATCH];
    sbi_rng r;
    double loss = 0;
    SBI_CHECK(m && v && x && theta, SBI_ERR_INTERNAL, "out of memory");
    sbi_rng_init(&r, 42, 0, SBI_STREAM_SHUFFLE, 0);
    for (int b = 0; b < BATCH; ++b) dlogq[b] = (sbi_real)(-1.0 / BATCH);
    for (int step = 1; step <= p->steps; ++step) {
        double lr = p->lr * 0.5 * (1 + cos(M_PI * (step - 1) / p->steps));
        p->draw(&r, x, theta, BATCH);
        sbi_estimator_zero_grad(est);
        SBI_CALL(sbi_estimator_forward(est, x, theta, BATCH, logq));
        SBI_CALL(sbi_estimator_backward(est, dlogq, BATCH));
        sbi_clip_grad_norm(g, n, 5.0);
        sbi_adamw_step(w, g, m, v, n, lr, 0.9, 0.999, 1e-8, 0.0, step);
        loss = 0;
        for (int b = 0; b < BATCH; ++b) loss -= logq[b];
        loss /= BATCH;
        if (step % 500 == 0) printf("step %5d  loss %.4f\n", step, loss);
    }
    free(m);
    free(v);
    free(x);
    free(theta);
    return 0;
}

static int make(sbi_estimator *est, int D, int X)
{
    sbi_estimator_config cfg;
    SBI_CALL(sbi_estimator_config_default(&cfg, "affine", D, X));
    cfg.max_batch = BATCH;
    cfg.seed = 1;
    SBI_CALL(sbi_estimator_create(&cfg, est));
    return 0;
}

static void fit_gaussian(void)
{
    const fit_problem p = {2, 1, 2500, 2e-3, draw_gaussian};
    const double entropy = 1.0 + log(2 * M_PI) + 0.5 * log(1.0 * 0.25 * (1 - 0.64));
    sbi_estimator est = NULL;
    sbi_real x[BATCH], theta[2 * BATCH], logq[BATCH];
    double nll = 0, nll_true = 0, t0 = sbi_wtime();
    sbi_rng r;
    int n_eval = 0;
    SBI_ASSERT_OK(make(&est, 2, 1));
    if (!est) return;
    SBI_ASSERT_OK(train(est, &p));
    sbi_rng_init(&r, 7, 0, SBI_STREAM_SAMPLE, 0);
    for (int rep = 0; rep < 80; ++rep) {
        draw_gaussian(&r, x, theta, BATCH);
        SBI_ASSERT_OK(sbi_estimator_forward(est, x, theta, BATCH, logq));
        for (int b = 0; b < BATCH; ++b) {
            /* The exact density on the same draws separates fit error from sampling noise. */
            double z1 = theta[2 * b], z2 = (theta[2 * b + 1] / 0.5 - 0.8 * z1) / 0.6;
            nll -= logq[b];
            nll_true += 0.5 * (z1 * z1 + z2 * z2) + log(2 * M_PI * 0.5 * 0.6);
        }
        n_eval += BATCH;
    }
    nll /= n_eval;
    nll_true /= n_eval;
    printf("gaussian: mean NLL %.4f on %d fresh draws (exact density: %.4f), entropy %.4f, gap %.4f (%.1f s)\n",
           nll, n_eval, nll_true, entropy, nll - entropy, sbi_wtime() - t0);
    SBI_ASSERT_NEAR(nll, entropy, 0, 0.05);
    sbi_estimator_destroy(&est);
}

static void fit_conditional(void)
{
    enum { N = 2000 };
    const fit_problem p = {1, 1, 2500, 2e-3, draw_conditional};
    sbi_estimator est = NULL;
    sbi_real x1 = 1, theta[N];
    double mean = 0, var = 0, t0 = sbi_wtime();
    sbi_rng r;
    SBI_ASSERT_OK(make(&est, 1, 1));
    if (!est) return;
    SBI_ASSERT_OK(train(est, &p));
    sbi_rng_init(&r, 8, 0, SBI_STREAM_SAMPLE, 0);
    SBI_ASSERT_OK(sbi_estimator_sample(est, &x1, N, &r, theta, NULL));
    for (int i = 0; i < N; ++i) mean += theta[i];
    mean /= N;
    for (int i = 0; i < N; ++i) var += (theta[i] - mean) * (theta[i] - mean);
    var /= N - 1;
    printf("conditional at x = 1: mean %.4f (true 1), std %.4f (true 0.3) (%.1f s)\n", mean, sqrt(var),
           sbi_wtime() - t0);
    SBI_ASSERT_NEAR(mean, 1.0, 0, 0.05);
    SBI_ASSERT_NEAR(sqrt(var), 0.3, 0.1, 0);
    sbi_estimator_destroy(&est);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    if (argc > 1 && strcmp(argv[1], "gaussian") == 0) {
        fit_gaussian();
    } else if (argc > 1 && strcmp(argv[1], "conditional") == 0) {
        fit_conditional();
    } else {
        fprintf(stderr, "usage: %s gaussian|conditional\n", argv[0]);
        SBI_ASSERT(0);
    }
    status = SBI_TEST_REPORT("flow_fit");
    MPI_Finalize();
    return status;
}
