/* Family "fmpe", built straight from its ops table as the generic estimator
 * code does.  Usage: test_flow_fmpe ode|fit.
 *   ode: weights set by hand make the velocity exactly linear,
 *     v(theta) = a * theta + c (elementwise, D = 2), so the flow has the
 *     closed form theta_i = exp(a_i) z_i + (exp(a_i) - 1) c_i / a_i and
 *     log q = log N(z) - sum_i a_i, the density of N(m, diag(exp(2 a))).
 *     Both integrators (PETSc TSRK with error control, and 50 midpoint
 *     steps) must reproduce theta and log q; a PETSc option (-ts_rtol,
 *     -ts_atol) must tighten the adaptive one.
 *   fit (single precision): theta ~ N(x, 0.3^2), x ~ U(-2, 2), 1-D; at x = 1
 *     the mean of 2000 draws must be within 0.05 of 1 and their std within
 *     10% of 0.3, with either integrator. */
#include <mpi.h>
#include <petscsys.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/optim.h"
#include "flows/flows_impl.h"
#include "testutil.h"

typedef struct fam {
    const sbi_estimator_ops *ops;
    sbi_estimator_config cfg;
    void *impl;
    sbi_layout lay;
} fam;

static int fam_create(fam *m, int D, int X, int hidden, int layers, int max_batch, const char *solver)
{
    sbi_estimator_config *cfg = &m->cfg;
    memset(m, 0, sizeof(*m));
    m->ops = &sbi__fmpe_ops;
    SBI_CALL(sbi_estimator_config_default(cfg, "maf", D, X));
    strcpy(cfg->family, "fmpe");
    m->ops->defaults(cfg);
    strcpy(cfg->ode_solver, solver);
    cfg->hidden = hidden;
    cfg->hidden_layers = layers;
    cfg->max_batch = max_batch;
    cfg->seed = 1;
    SBI_CALL(m->ops->validate(cfg));
    m->impl = calloc(1, m->ops->impl_size);
    SBI_CHECK(m->impl, SBI_ERR_INTERNAL, "out of memory");
    sbi_layout_init(&m->lay, cfg->max_batch);
    SBI_CALL(m->ops->layout(m->impl, cfg, &m->lay));
    SBI_CALL(sbi_layout_alloc(&m->lay));
    SBI_CALL(m->ops->layout(m->impl, cfg, &m->lay));
    SBI_CALL(sbi_layout_finish(&m->lay));
    sbi_layout_init_weights(&m->lay, cfg->seed);
    return 0;
}

static void fam_destroy(fam *m)
{
    if (m->impl) m->ops->destroy(m->impl);
    free(m->impl);
    m->impl = NULL;
    sbi_layout_free(&m->lay);
}

/* Draws in chunks of max_batch, as sbi_estimator_inverse does. */
static int fam_inverse(fam *m, const sbi_real *x, const sbi_real *z, int n, sbi_real *theta, sbi_real *logq)
{
    int D = m->cfg.n_params, chunk = m->cfg.max_batch;
    for (int off = 0; off < n; off += chunk) {
        int B = n - off < chunk ? n - off : chunk;
        SBI_CALL(m->ops->sample(m->impl, x, 1, B, z + (size_t)off * D, theta + (size_t)off * D,
                                logq ? logq + off : NULL));
    }
    return 0;
}

/* ---- the ODE against the closed form of a linear velocity ---- */

enum { LD = 2, LX = 1, LH = 2, LN = 50, LMB = 16 };
static const double lin_a[LD] = {0.5, -0.3}, lin_c[LD] = {0.2, -0.1};
#define LIN_SHIFT 50.0 /* keeps the first map's pre-activations positive, where ELU is the identity */

/* v = w2 (w0 [theta, tau(t), e] + b0) + b2 with w0 = [I 0 0], b0 = shift,
 * the residual middle map zero, w2 = diag(a), b2 = c - shift a. */
static void set_linear(fam *m)
{
    sbi__fmpe *f = m->impl;
    int W = LD + f->NT + m->cfg.embed_dim;
    memset(m->lay.weights, 0, m->lay.n_weights * sizeof(sbi_real));
    for (int i = 0; i < LD; ++i) {
        f->net.w[0][i * W + i] = 1;
        f->net.b[0][i] = (sbi_real)LIN_SHIFT;
        f->net.w[2][i * LH + i] = (sbi_real)lin_a[i];
        f->net.b[2][i] = (sbi_real)(lin_c[i] - LIN_SHIFT * lin_a[i]);
    }
}

/* Largest errors in theta and log q over LN draws. */
static void linear_errors(const char *solver, double *eth, double *elq)
{
    fam m;
    sbi_real x = 0.3, z[LN * LD], theta[LN * LD], logq[LN];
    sbi_rng r;
    *eth = *elq = INFINITY;
    SBI_ASSERT_OK(fam_create(&m, LD, LX, LH, 2, LMB, solver));
    if (!m.impl) return;
    set_linear(&m);
    sbi_rng_init(&r, 5, 0, SBI_STREAM_SAMPLE, 0);
    for (int i = 0; i < LN * LD; ++i) z[i] = (sbi_real)(1.5 * sbi_rng_normal(&r));
    SBI_ASSERT_OK(fam_inverse(&m, &x, z, LN, theta, logq));
    *eth = *elq = 0;
    for (int b = 0; b < LN; ++b) {
        double lq = -LD * 0.9189385332046727; /* log N(m, diag(exp(2 a))) at theta */
        for (int i = 0; i < LD; ++i) {
            double s = exp(lin_a[i]), mu = (s - 1) * lin_c[i] / lin_a[i], th = s * z[b * LD + i] + mu;
            double u = (theta[b * LD + i] - mu) / s;
            *eth = fmax(*eth, fabs(theta[b * LD + i] - th));
            lq += -0.5 * u * u - lin_a[i];
        }
        *elq = fmax(*elq, fabs(logq[b] - lq));
    }
    fam_destroy(&m);
}

static void check_linear(void)
{
    double eth, elq;
    linear_errors("rk_adaptive", &eth, &elq);
    printf("fmpe linear velocity, TSRK (default tolerances): max |theta error| %.3e, max |log q error| %.3e\n", eth,
           elq);
    SBI_ASSERT(eth < 1e-4 && elq < 1e-4);
    linear_errors("midpoint", &eth, &elq);
    /* The rule is second order: about 1e-4 at h = 1 / 50 for |theta| up to 5. */
    printf("fmpe linear velocity, %d midpoint steps: max |theta error| %.3e, max |log q error| %.3e\n", LN, eth, elq);
    SBI_ASSERT(eth < 5e-4 && elq < 5e-4);
    SBI_ASSERT(PetscOptionsSetValue(NULL, "-ts_rtol", "1e-11") == 0);
    SBI_ASSERT(PetscOptionsSetValue(NULL, "-ts_atol", "1e-11") == 0);
    linear_errors("rk_adaptive", &eth, &elq);
    printf("fmpe linear velocity, TSRK with -ts_rtol 1e-11 -ts_atol 1e-11: max |theta error| %.3e, "
           "max |log q error| %.3e\n",
           eth, elq);
    SBI_ASSERT(eth < 1e-8 && elq < 1e-8);
    SBI_ASSERT(PetscOptionsClearValue(NULL, "-ts_rtol") == 0);
    SBI_ASSERT(PetscOptionsClearValue(NULL, "-ts_atol") == 0);
}

/* ---- training on a conditional Gaussian ---- */

static void fit_conditional(void)
{
    enum { BATCH = 256, STEPS = 8000, N = 2000 };
    fam m;
    sbi_real x[BATCH], theta[BATCH], logq[BATCH], dlogq[BATCH], *w, *g, *mo, *v;
    sbi_real x1 = 1, *draws = malloc(sizeof(sbi_real) * N);
    const char *solvers[2] = {"rk_adaptive", "midpoint"};
    double t0 = sbi_wtime(), loss = 0;
    size_t n;
    sbi_rng r;
    SBI_ASSERT_OK(fam_create(&m, 1, 1, 64, 2, BATCH, "rk_adaptive"));
    n = m.lay.n_weights;
    w = m.lay.weights;
    g = m.lay.grads;
    mo = calloc(n, sizeof(*mo));
    v = calloc(n, sizeof(*v));
    sbi_rng_init(&r, 42, 0, SBI_STREAM_SHUFFLE, 0);
    for (int b = 0; b < BATCH; ++b) dlogq[b] = (sbi_real)(-1.0 / BATCH);
    for (int step = 1; step <= STEPS; ++step) {
        double lr = 2e-3 * 0.5 * (1 + cos(M_PI * (step - 1) / STEPS));
        for (int b = 0; b < BATCH; ++b) {
            x[b] = (sbi_real)(-2 + 4 * sbi_rng_uniform(&r));
            theta[b] = (sbi_real)(x[b] + 0.3 * sbi_rng_normal(&r));
        }
        sbi_layout_zero_grads(&m.lay);
        SBI_ASSERT_OK(m.ops->forward(m.impl, x, theta, BATCH, logq, NULL, NULL));
        sbi_layout_zero_dacts(&m.lay, BATCH);
        SBI_ASSERT_OK(m.ops->backward(m.impl, dlogq, BATCH));
        sbi_clip_grad_norm(g, n, 5.0);
        sbi_adamw_step(w, g, mo, v, n, lr, 0.9, 0.999, 1e-8, 0.0, step);
        loss = 0;
        for (int b = 0; b < BATCH; ++b) loss -= logq[b];
        loss /= BATCH;
    }
    printf("fmpe conditional: final flow-matching loss %.4f (%.1f s)\n", loss, sbi_wtime() - t0);
    for (int s = 0; s < 2; ++s) {
        sbi__fmpe *f = m.impl;
        sbi_real *z = malloc(sizeof(sbi_real) * N);
        double mean = 0, var = 0;
        f->solver = s ? SBI__ODE_MIDPOINT : SBI__ODE_RK_ADAPTIVE;
        sbi_rng_init(&r, 8, 0, SBI_STREAM_SAMPLE, 0);
        for (int i = 0; i < N; ++i) z[i] = (sbi_real)sbi_rng_normal(&r);
        SBI_ASSERT_OK(fam_inverse(&m, &x1, z, N, draws, NULL));
        for (int i = 0; i < N; ++i) mean += draws[i];
        mean /= N;
        for (int i = 0; i < N; ++i) var += (draws[i] - mean) * (draws[i] - mean);
        var /= N - 1;
        printf("fmpe conditional at x = 1 (%s): mean %.4f (true 1), std %.4f (true 0.3) (%.1f s)\n", solvers[s], mean,
               sqrt(var), sbi_wtime() - t0);
        SBI_ASSERT_NEAR(mean, 1.0, 0, 0.05);
        SBI_ASSERT_NEAR(sqrt(var), 0.3, 0.1, 0);
        free(z);
    }
    fam_destroy(&m);
    free(mo);
    free(v);
    free(draws);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    if (PetscInitializeNoArguments() != 0) {
        fprintf(stderr, "PetscInitializeNoArguments failed\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (argc > 1 && strcmp(argv[1], "ode") == 0) {
        check_linear();
    } else if (argc > 1 && strcmp(argv[1], "fit") == 0) {
        fit_conditional();
    } else {
        fprintf(stderr, "usage: %s ode|fit\n", argv[0]);
        SBI_ASSERT(0);
    }
    status = SBI_TEST_REPORT("flow_fmpe");
    PetscFinalize();
    MPI_Finalize();
    return status;
}
