/* Density fits with AdamW (single precision, the production build):
 *   gaussian:    a fixed context (X = 1, x = 0) and a correlated 2-D Gaussian
 *                target (rho = 0.8, sigma = (1, 0.5)); the mean NLL on fresh
 *                draws must come within 0.05 nats of the true entropy;
 *   banana:      theta1 = u1, theta2 = 0.5 u2 + 0.5 (u1^2 - 1), u ~ N(0, I)
 *                (entropy log(2 pi e) + log 0.5 exactly);
 *   mixture:     0.5 N((-1.5, 0), 0.5^2 I) + 0.5 N((1.5, 0.5), diag(0.6^2, 0.4^2)),
 *                entropy by Monte Carlo with the exact density;
 *   conditional: theta ~ N(x, 0.3^2) with x ~ U(-2, 2) in 1-D; at x = 1 the
 *                mean of 2000 posterior draws must be within 0.05 of 1 and
 *                their std within 10% of 0.3.
 * For the three 2-D targets the mean NLL on 20,480 fresh draws must come
 * within 0.05 nats of the entropy estimated on the same draws with the exact
 * density, and 2000 flow samples must pass a two-sample Kolmogorov-Smirnov
 * test against 2000 exact draws on theta1, theta2 and (theta1 + theta2) /
 * sqrt 2, each at the critical value 1.95 sqrt(2 / 2000) (alpha = 0.001).
 * Usage: test_flow_fit CASE [FAMILY] (family "affine" by default). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "exosbi/optim.h"
#include "testutil.h"

enum { BATCH = 256 };

static const char *family = "affine";

typedef struct fit_problem {
    int D, X, steps;
    double lr;
    /* Fill x (BATCH, X) and theta (BATCH, D) with a fresh training batch. */
    void (*draw)(sbi_rng *r, sbi_real *x, sbi_real *theta, int n);
} fit_problem;

static void draw_banana(sbi_rng *r, sbi_real *x, sbi_real *theta, int n)
{
    for (int b = 0; b < n; ++b) {
        double u1 = sbi_rng_normal(r), u2 = sbi_rng_normal(r);
        x[b] = 0;
        theta[2 * b] = (sbi_real)u1;
        theta[2 * b + 1] = (sbi_real)(0.5 * u2 + 0.5 * (u1 * u1 - 1));
    }
}

static double logp_banana(double t1, double t2)
{
    double v = (t2 - 0.5 * (t1 * t1 - 1)) / 0.5;
    return -0.5 * (t1 * t1 + v * v) - log(2 * M_PI * 0.5);
}

static const double mix_mu[2][2] = {{-1.5, 0.0}, {1.5, 0.5}}, mix_sd[2][2] = {{0.5, 0.5}, {0.6, 0.4}};

static void draw_mixture(sbi_rng *r, sbi_real *x, sbi_real *theta, int n)
{
    for (int b = 0; b < n; ++b) {
        int c = sbi_rng_uniform(r) < 0.5 ? 0 : 1;
        x[b] = 0;
        for (int i = 0; i < 2; ++i) theta[2 * b + i] = (sbi_real)(mix_mu[c][i] + mix_sd[c][i] * sbi_rng_normal(r));
    }
}

static double logp_mixture(double t1, double t2)
{
    double p = 0, t[2] = {t1, t2};
    for (int c = 0; c < 2; ++c) {
        double q = 0;
        for (int i = 0; i < 2; ++i) {
            double v = (t[i] - mix_mu[c][i]) / mix_sd[c][i];
            q += -0.5 * v * v - log(mix_sd[c][i]);
        }
        p += 0.5 * exp(q) / (2 * M_PI);
    }
    return log(p);
}

static double logp_gaussian(double t1, double t2)
{
    double z1 = t1, z2 = (t2 / 0.5 - 0.8 * z1) / 0.6;
    return -0.5 * (z1 * z1 + z2 * z2) - log(2 * M_PI * 0.5 * 0.6);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Two-sample Kolmogorov-Smirnov statistic of a (n) and b (n); sorts both. */
static double ks_statistic(double *a, double *b, int n)
{
    int i = 0, j = 0;
    double d = 0;
    qsort(a, n, sizeof(*a), cmp_double);
    qsort(b, n, sizeof(*b), cmp_double);
    while (i < n && j < n) {
        double v = a[i] <= b[j] ? a[i] : b[j];
        while (i < n && a[i] <= v) ++i;
        while (j < n && b[j] <= v) ++j;
        d = fmax(d, fabs((double)(i - j) / n));
    }
    return d;
}

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
    SBI_CALL(sbi_estimator_config_default(&cfg, family, D, X));
    cfg.max_batch = BATCH;
    cfg.seed = 1;
    SBI_CALL(sbi_estimator_create(&cfg, est));
    return 0;
}

/* Fit a 2-D target at a fixed context; check the NLL gap and the two-sample tests. */
static void fit_2d(const char *name, void (*draw)(sbi_rng *, sbi_real *, sbi_real *, int),
                   double (*logp)(double, double), int steps)
{
    enum { NS = 2000 };
    const fit_problem p = {2, 1, steps, 2e-3, draw};
    const double ks_crit = 1.95 * sqrt(2.0 / NS);
    sbi_estimator est = NULL;
    sbi_real x[BATCH], theta[2 * BATCH], logq[BATCH], *flow = malloc(sizeof(sbi_real) * 2 * NS);
    sbi_real *exact = malloc(sizeof(sbi_real) * 2 * NS), x0 = 0;
    double *a = malloc(sizeof(double) * NS), *b = malloc(sizeof(double) * NS);
    double nll = 0, entropy = 0, t0 = sbi_wtime(), ks[3];
    sbi_rng r;
    int n_eval = 0;
    SBI_ASSERT_OK(make(&est, 2, 1));
    if (!est) return;
    SBI_ASSERT_OK(train(est, &p));
    sbi_rng_init(&r, 7, 0, SBI_STREAM_SAMPLE, 0);
    for (int rep = 0; rep < 80; ++rep) {
        draw(&r, x, theta, BATCH);
        SBI_ASSERT_OK(sbi_estimator_forward(est, x, theta, BATCH, logq));
        /* The exact density on the same draws separates fit error from sampling noise. */
        for (int i = 0; i < BATCH; ++i) {
            nll -= logq[i];
            entropy -= logp(theta[2 * i], theta[2 * i + 1]);
        }
        n_eval += BATCH;
    }
    nll /= n_eval;
    entropy /= n_eval;
    SBI_ASSERT_OK(sbi_estimator_sample(est, &x0, NS, &r, flow, NULL));
    for (int i = 0; i < NS; i += BATCH) draw(&r, x, exact + 2 * i, NS - i < BATCH ? NS - i : BATCH);
    for (int k = 0; k < 3; ++k) {
        for (int i = 0; i < NS; ++i) {
            a[i] = k < 2 ? flow[2 * i + k] : (flow[2 * i] + flow[2 * i + 1]) / sqrt(2.0);
            b[i] = k < 2 ? exact[2 * i + k] : (exact[2 * i] + exact[2 * i + 1]) / sqrt(2.0);
        }
        ks[k] = ks_statistic(a, b, NS);
    }
    printf("%s %s: mean NLL %.4f on %d fresh draws, entropy %.4f, gap %.4f; KS %.4f %.4f %.4f (critical %.4f) "
           "(%.1f s)\n",
           family, name, nll, n_eval, entropy, nll - entropy, ks[0], ks[1], ks[2], ks_crit, sbi_wtime() - t0);
    SBI_ASSERT_NEAR(nll, entropy, 0, 0.05);
    for (int k = 0; k < 3; ++k) SBI_ASSERT(ks[k] < ks_crit);
    sbi_estimator_destroy(&est);
    free(flow);
    free(exact);
    free(a);
    free(b);
}

static void fit_gaussian(void)
{
    const double entropy = 1.0 + log(2 * M_PI) + 0.5 * log(1.0 * 0.25 * (1 - 0.64));
    printf("gaussian: analytic entropy %.4f\n", entropy);
    fit_2d("gaussian", draw_gaussian, logp_gaussian, 2500);
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
    if (argc > 2) family = argv[2];
    if (argc > 1 && strcmp(argv[1], "gaussian") == 0) {
        fit_gaussian();
    } else if (argc > 1 && strcmp(argv[1], "banana") == 0) {
        printf("banana: analytic entropy %.4f\n", log(2 * M_PI * M_E) + log(0.5));
        fit_2d("banana", draw_banana, logp_banana, 3000);
    } else if (argc > 1 && strcmp(argv[1], "mixture") == 0) {
        fit_2d("mixture", draw_mixture, logp_mixture, 3000);
    } else if (argc > 1 && strcmp(argv[1], "conditional") == 0) {
        fit_conditional();
    } else {
        fprintf(stderr, "usage: %s gaussian|banana|mixture|conditional [family]\n", argv[0]);
        SBI_ASSERT(0);
    }
    status = SBI_TEST_REPORT("flow_fit");
    MPI_Finalize();
    return status;
}
