/* Gradient checks (double precision) of family "naf": the deep sigmoidal
 * transform kernel with respect to its input and parameters (loss <r, out> +
 * <q, logdet>), its log-derivative against a finite difference of the
 * transform, its bisection inverse, and the whole loss L = -mean_b log
 * q(theta_b | x_b) with respect to every weight.  The family is built
 * straight from its ops table, as the generic estimator code does. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"
#include "gradcheck.h"
#include "testutil.h"

/* ---- a family built from its ops table ---- */

typedef struct fam {
    const sbi_estimator_ops *ops;
    sbi_estimator_config cfg;
    void *impl;
    sbi_layout lay;
} fam;

static int fam_config(sbi_estimator_config *cfg, const sbi_estimator_ops *ops, int D, int X)
{
    SBI_CALL(sbi_estimator_config_default(cfg, "maf", D, X));
    strcpy(cfg->family, ops->family);
    if (ops->defaults) ops->defaults(cfg);
    return 0;
}

static int fam_create(fam *m, const sbi_estimator_ops *ops, const sbi_estimator_config *cfg)
{
    memset(m, 0, sizeof(*m));
    m->ops = ops;
    m->cfg = *cfg;
    if (ops->validate) SBI_CALL(ops->validate(cfg));
    m->impl = calloc(1, ops->impl_size);
    SBI_CHECK(m->impl, SBI_ERR_INTERNAL, "out of memory");
    sbi_layout_init(&m->lay, cfg->max_batch);
    SBI_CALL(ops->layout(m->impl, cfg, &m->lay));
    SBI_CALL(sbi_layout_alloc(&m->lay));
    SBI_CALL(ops->layout(m->impl, cfg, &m->lay));
    SBI_CALL(sbi_layout_finish(&m->lay));
    sbi_layout_init_weights(&m->lay, cfg->seed);
    if (ops->init) ops->init(m->impl, cfg);
    return 0;
}

static void fam_destroy(fam *m)
{
    if (m->impl && m->ops->destroy) m->ops->destroy(m->impl);
    free(m->impl);
    m->impl = NULL;
    sbi_layout_free(&m->lay);
}

/* ---- the kernel: L = <r, out> + <q, logdet> ---- */

enum { SB = 5, SD = 3, SN = 2, SC = 4 };
static const int s_idx[SN] = {2, 0};
#define S_P (SN * SBI__DSF_PARAMS(SC))

typedef struct dsf_ctx {
    double inp[SB * SD], p[SB * S_P], out[SB * SD], cache[SB * SN * SBI__DSF_CACHE(SC)], logdet[SB];
    double r[SB * SD], q[SB];
} dsf_ctx;

static double dsf_loss(void *v)
{
    dsf_ctx *k = v;
    double L = 0;
    memset(k->logdet, 0, sizeof(k->logdet));
    memcpy(k->out, k->inp, sizeof(k->out));
    sbi__dsf_forward(k->out, k->cache, k->logdet, k->inp, k->p, S_P, s_idx, SN, SC, SB, SD);
    for (int i = 0; i < SB * SD; ++i) L += k->r[i] * k->out[i];
    for (int b = 0; b < SB; ++b) L += k->q[b] * k->logdet[b];
    return L;
}

static void check_kernel(void)
{
    dsf_ctx k;
    double dinp[SB * SD] = {0}, dp[SB * S_P] = {0}, back[SB * SD], ld_inv[SB] = {0};
    double cache2[SB * SN * SBI__DSF_CACHE(SC)], err = 0, lerr = 0, derr = 0;
    gc_stats s;
    gc_fill(k.inp, SB * SD, 3.0, 41);
    gc_fill(k.p, SB * S_P, 1.5, 42);
    gc_fill(k.r, SB * SD, 1.0, 43);
    gc_fill(k.q, SB, 1.0, 44);
    dsf_loss(&k);
    sbi__dsf_backward(dinp, dp, k.r, k.q, k.inp, k.p, k.cache, s_idx, SN, SC, SB, SD);
    gc_reset(&s);
    for (int b = 0; b < SB; ++b)
        for (int j = 0; j < SN; ++j) {
            int i = b * SD + s_idx[j];
            gc_add(&s, i, dinp[i], gc_numeric(dsf_loss, &k, &k.inp[i], GC_STEP));
        }
    SBI_ASSERT(gc_report("dsf d-input", &s));
    gc_reset(&s);
    for (int i = 0; i < SB * S_P; ++i) gc_add(&s, i, dp[i], gc_numeric(dsf_loss, &k, &k.p[i], GC_STEP));
    SBI_ASSERT(gc_report("dsf d-parameters", &s));

    /* The inverse (60 bisection steps) recovers the input with the same log-derivative. */
    dsf_loss(&k);
    memcpy(back, k.out, sizeof(back));
    sbi__dsf_inverse(back, cache2, ld_inv, k.out, k.p, S_P, s_idx, SN, SC, 60, SB, SD);
    for (int i = 0; i < SB * SD; ++i) err = fmax(err, fabs(back[i] - k.inp[i]));
    for (int b = 0; b < SB; ++b) lerr = fmax(lerr, fabs(ld_inv[b] - k.logdet[b]));
    /* log y' against a finite difference of y, one element at a time. */
    for (int b = 0; b < SB; ++b)
        for (int j = 0; j < SN; ++j) {
            const double h = 1e-5;
            int i = b * SD + s_idx[j];
            double x0 = k.inp[i], yp, ym, ld_one[1] = {0}, c1[SBI__DSF_CACHE(SC)], v;
            const double *pe = k.p + b * S_P + j * SBI__DSF_PARAMS(SC);
            v = x0 + h;
            sbi__dsf_forward(&yp, c1, ld_one, &v, pe, 0, NULL, 1, SC, 1, 1);
            v = x0 - h;
            sbi__dsf_forward(&ym, c1, ld_one, &v, pe, 0, NULL, 1, SC, 1, 1);
            ld_one[0] = 0;
            sbi__dsf_forward(&v, c1, ld_one, &x0, pe, 0, NULL, 1, SC, 1, 1);
            derr = fmax(derr, fabs(log((yp - ym) / (2 * h)) - ld_one[0]));
        }
    printf("dsf: max |inverse(forward(x)) - x| = %.3e, max |logdet diff| = %.3e, "
           "max |log y' - log(finite difference)| = %.3e\n",
           err, lerr, derr);
    SBI_ASSERT(err < 1e-12);
    SBI_ASSERT(lerr < 1e-10);
    SBI_ASSERT(derr < 1e-8);
}

/* Zero parameters: exactly the identity with zero log-derivative. */
static void check_kernel_identity(void)
{
    double x[7] = {-30, -2.5, -1e-3, 0, 0.7, 4, 25}, y[7], p[SBI__DSF_PARAMS(SC)] = {0};
    double cache[7 * SBI__DSF_CACHE(SC)], ld[7] = {0}, err = 0;
    sbi__dsf_forward(y, cache, ld, x, p, 0, NULL, 1, SC, 7, 1);
    for (int i = 0; i < 7; ++i) err = fmax(err, fabs(y[i] - x[i]) + fabs(ld[i]));
    printf("dsf identity at zero parameters: max |y - x| + |logdet| = %.3e\n", err);
    SBI_ASSERT(err == 0);
}

/* ---- the whole loss: L = -mean log q ---- */

typedef struct est_ctx {
    fam m;
    int B;
    double *x, *theta, *logq;
} est_ctx;

static double est_loss(void *p)
{
    est_ctx *k = p;
    double L = 0;
    if (k->m.ops->forward(k->m.impl, k->x, k->theta, k->B, k->logq, NULL, NULL)) return NAN;
    for (int b = 0; b < k->B; ++b) L -= k->logq[b];
    return L / k->B;
}

static void check_estimator(const char *label, int D, int X, int E, int hidden, int layers, int K, int C)
{
    sbi_estimator_config cfg;
    est_ctx k;
    double dlogq[8];
    gc_stats s;
    SBI_ASSERT_OK(fam_config(&cfg, &sbi__naf_ops, D, X));
    cfg.embed_dim = E;
    cfg.embed_hidden = hidden;
    cfg.hidden = hidden;
    cfg.embed_layers = layers;
    cfg.hidden_layers = layers;
    cfg.n_transforms = K;
    cfg.n_sigmoids = C;
    cfg.max_batch = 8;
    cfg.seed = 3;
    SBI_ASSERT_OK(fam_create(&k.m, &sbi__naf_ops, &cfg));
    k.B = 5;
    k.x = malloc(sizeof(double) * k.B * X);
    k.theta = malloc(sizeof(double) * k.B * D);
    k.logq = malloc(sizeof(double) * k.B);
    gc_fill(k.m.lay.weights, k.m.lay.n_weights, 0.4, 21);
    gc_fill(k.x, (size_t)k.B * X, 1.0, 22);
    gc_fill(k.theta, (size_t)k.B * D, 1.5, 23);
    for (int b = 0; b < k.B; ++b) dlogq[b] = -1.0 / k.B;
    est_loss(&k);
    sbi_layout_zero_grads(&k.m.lay);
    sbi_layout_zero_dacts(&k.m.lay, k.B);
    SBI_ASSERT_OK(k.m.ops->backward(k.m.impl, dlogq, k.B));
    gc_reset(&s);
    for (size_t i = 0; i < k.m.lay.n_weights; ++i)
        gc_add(&s, i, k.m.lay.grads[i], gc_numeric(est_loss, &k, &k.m.lay.weights[i], GC_STEP));
    SBI_ASSERT(gc_report(label, &s));
    fam_destroy(&k.m);
    free(k.x);
    free(k.theta);
    free(k.logq);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_kernel();
    check_kernel_identity();
    check_estimator("naf D=3 d-weights (all)", 3, 4, 5, 6, 2, 2, 3);
    check_estimator("naf D=1 d-weights (all)", 1, 2, 4, 5, 1, 2, 2);
    status = SBI_TEST_REPORT("flow_naf_gradcheck");
    MPI_Finalize();
    return status;
}
