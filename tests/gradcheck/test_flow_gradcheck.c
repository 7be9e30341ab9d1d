/* Gradient checks (double precision) of the rational-quadratic spline
 * kernel, of one affine and one spline coupling layer, and of the whole
 * estimator loss L = -mean_b log q(theta_b | x_b) of every family and
 * embedding with respect to every weight (or, for a large network, a random
 * subset that covers every tensor).  The spline kernel also checks that its
 * inverse recovers the input with the same log-derivative, and that the
 * log-derivative matches a finite difference of the transform. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "flows/flows_impl.h"
#include "gradcheck.h"
#include "testutil.h"

/* ---- the spline kernel: L = <r, out> + <q, logdet> ---- */

enum { SB = 5, SD = 3, SN = 2, SK = 4 };
static const int s_idx[SN] = {2, 0};
#define S_BOUND 2.0
#define S_P (SN * SBI__RQS_PARAMS(SK))

typedef struct spl_ctx {
    double inp[SB * SD], p[SB * S_P], out[SB * SD], cache[SB * SN * SBI__RQS_CACHE(SK)], logdet[SB];
    double r[SB * SD], q[SB];
} spl_ctx;

static double spl_loss(void *v)
{
    spl_ctx *k = v;
    double L = 0;
    memset(k->logdet, 0, sizeof(k->logdet));
    memcpy(k->out, k->inp, sizeof(k->out));
    sbi__rqs_forward(k->out, k->cache, k->logdet, k->inp, k->p, S_P, s_idx, SN, SK, S_BOUND, SB, SD);
    for (int i = 0; i < SB * SD; ++i) L += k->r[i] * k->out[i];
    for (int b = 0; b < SB; ++b) L += k->q[b] * k->logdet[b];
    return L;
}

static void check_spline(void)
{
    spl_ctx k;
    double dinp[SB * SD] = {0}, dp[SB * S_P] = {0}, back[SB * SD], ld_inv[SB] = {0};
    double cache2[SB * SN * SBI__RQS_CACHE(SK)], err = 0, lerr = 0, derr = 0;
    int outside = 0;
    gc_stats s;
    gc_fill(k.inp, SB * SD, 2.6, 31); /* some values beyond the bound, on the identity tails */
    for (int i = 0; i < SB * SD; ++i) /* clear of the bound, where log y' has a kink */
        if (fabs(fabs(k.inp[i]) - S_BOUND) < 0.01) k.inp[i] *= 0.97;
    gc_fill(k.p, SB * S_P, 1.5, 32);
    gc_fill(k.r, SB * SD, 1.0, 33);
    gc_fill(k.q, SB, 1.0, 34);
    for (int b = 0; b < SB; ++b)
        for (int j = 0; j < SN; ++j) outside += fabs(k.inp[b * SD + s_idx[j]]) > S_BOUND;
    SBI_ASSERT(outside > 0 && outside < SB * SN);
    spl_loss(&k);
    sbi__rqs_backward(dinp, dp, k.r, k.q, k.inp, k.p, k.cache, s_idx, SN, SK, S_BOUND, SB, SD);
    gc_reset(&s);
    for (int b = 0; b < SB; ++b)
        for (int j = 0; j < SN; ++j) {
            int i = b * SD + s_idx[j];
            gc_add(&s, i, dinp[i], gc_numeric(spl_loss, &k, &k.inp[i], GC_STEP));
        }
    SBI_ASSERT(gc_report("spline d-input", &s));
    gc_reset(&s);
    for (int i = 0; i < SB * S_P; ++i) gc_add(&s, i, dp[i], gc_numeric(spl_loss, &k, &k.p[i], GC_STEP));
    SBI_ASSERT(gc_report("spline d-parameters", &s));

    /* The inverse recovers the input and reports the same log-derivative. */
    spl_loss(&k);
    memcpy(back, k.out, sizeof(back));
    sbi__rqs_inverse(back, cache2, ld_inv, k.out, k.p, S_P, s_idx, SN, SK, S_BOUND, SB, SD);
    for (int i = 0; i < SB * SD; ++i) err = fmax(err, fabs(back[i] - k.inp[i]));
    for (int b = 0; b < SB; ++b) lerr = fmax(lerr, fabs(ld_inv[b] - k.logdet[b]));
    /* log y' against a finite difference of y, one element at a time. */
    for (int b = 0; b < SB; ++b)
        for (int j = 0; j < SN; ++j) {
            const double h = 1e-5;
            int i = b * SD + s_idx[j];
            double x0 = k.inp[i], yp, ym, ld_one[1] = {0}, c1[SBI__RQS_CACHE(SK)], v;
            const double *pe = k.p + b * S_P + j * SBI__RQS_PARAMS(SK);
            v = x0 + h;
            sbi__rqs_forward(&yp, c1, ld_one, &v, pe, 0, NULL, 1, SK, S_BOUND, 1, 1);
            v = x0 - h;
            sbi__rqs_forward(&ym, c1, ld_one, &v, pe, 0, NULL, 1, SK, S_BOUND, 1, 1);
            ld_one[0] = 0;
            sbi__rqs_forward(&v, c1, ld_one, &x0, pe, 0, NULL, 1, SK, S_BOUND, 1, 1);
            derr = fmax(derr, fabs(log((yp - ym) / (2 * h)) - ld_one[0]));
        }
    printf("spline: max |inverse(forward(x)) - x| = %.3e, max |logdet diff| = %.3e, "
           "max |log y' - log(finite difference)| = %.3e\n",
           err, lerr, derr);
    SBI_ASSERT(err < 1e-12);
    SBI_ASSERT(lerr < 1e-12);
    SBI_ASSERT(derr < 1e-8);
}

/* ---- one coupling layer: L = <r, out> + <q, logdet> ---- */

enum { CB = 4, CD = 5, CE = 3, CDC = 2 };
static const int c_order[CD] = {3, 0, 4, 1, 2}; /* conditions on {3, 0}, transforms {4, 1, 2} */

typedef struct cpl_ctx {
    sbi__coupling c;
    sbi_layout lay;
    double inp[CB * CD], e[CB * CE], out[CB * CD], logdet[CB], r[CB * CD], q[CB];
} cpl_ctx;

static double cpl_loss(void *p)
{
    cpl_ctx *k = p;
    double L = 0;
    memset(k->logdet, 0, sizeof(k->logdet));
    sbi__coupling_forward(&k->c, k->out, k->logdet, k->inp, k->e, CE, CB);
    for (int i = 0; i < CB * CD; ++i) L += k->r[i] * k->out[i];
    for (int b = 0; b < CB; ++b) L += k->q[b] * k->logdet[b];
    return L;
}

static int cpl_layout(cpl_ctx *k, int spline)
{
    if (spline)
        return sbi__spline_coupling_layout(&k->c, &k->lay, "cpl", CD, CE, c_order, CDC, c_order + CDC, 6, 2, 5, 2.0);
    return sbi__coupling_layout(&k->c, &k->lay, "cpl", CD, CE, c_order, CDC, c_order + CDC, 6, 2);
}

static void check_coupling(int spline)
{
    cpl_ctx k;
    double dinp[CB * CD] = {0}, de[CB * CE] = {0};
    char label[64];
    gc_stats s;
    int rc = 0;
    sbi_layout_init(&k.lay, CB);
    rc |= cpl_layout(&k, spline);
    rc |= sbi_layout_alloc(&k.lay);
    rc |= cpl_layout(&k, spline);
    rc |= sbi_layout_finish(&k.lay);
    SBI_ASSERT_EQ_INT(rc, 0);
    if (rc) return;
    gc_fill(k.lay.weights, k.lay.n_weights, 0.7, 11);
    gc_fill(k.inp, CB * CD, 1.5, 12);
    gc_fill(k.e, CB * CE, 1.0, 13);
    gc_fill(k.r, CB * CD, 1.0, 14);
    gc_fill(k.q, CB, 1.0, 15);
    cpl_loss(&k);
    sbi_layout_zero_grads(&k.lay);
    sbi_layout_zero_dacts(&k.lay, CB);
    sbi__coupling_backward(&k.c, dinp, de, k.r, k.q, k.inp, CB);
    gc_reset(&s);
    for (int i = 0; i < CB * CD; ++i) gc_add(&s, i, dinp[i], gc_numeric(cpl_loss, &k, &k.inp[i], GC_STEP));
    snprintf(label, sizeof(label), "%s coupling d-input", spline ? "spline" : "affine");
    SBI_ASSERT(gc_report(label, &s));
    gc_reset(&s);
    for (int i = 0; i < CB * CE; ++i) gc_add(&s, i, de[i], gc_numeric(cpl_loss, &k, &k.e[i], GC_STEP));
    snprintf(label, sizeof(label), "%s coupling d-embedding", spline ? "spline" : "affine");
    SBI_ASSERT(gc_report(label, &s));
    gc_reset(&s);
    for (size_t i = 0; i < k.lay.n_weights; ++i)
        gc_add(&s, i, k.lay.grads[i], gc_numeric(cpl_loss, &k, &k.lay.weights[i], GC_STEP));
    snprintf(label, sizeof(label), "%s coupling d-weights", spline ? "spline" : "affine");
    SBI_ASSERT(gc_report(label, &s));
    sbi_layout_free(&k.lay);
}

/* ---- the whole estimator: L = -mean log q ---- */

typedef struct est_ctx {
    sbi_estimator est;
    int B;
    double *x, *theta, *logq; /* (B, X), (B, D), (B) */
} est_ctx;

static double est_loss(void *p)
{
    est_ctx *k = p;
    double L = 0;
    if (sbi_estimator_forward(k->est, k->x, k->theta, k->B, k->logq)) return NAN;
    for (int b = 0; b < k->B; ++b) L -= k->logq[b];
    return L / k->B;
}

/* Checks every weight when there are at most max_all, else per_tensor
 * random weights of each tensor plus random ones up to at least 500. */
static void check_estimator(const char *family, const char *embedding, const char *label, int D, int X, int E,
                            int hidden, int layers, int K, size_t max_all, int per_tensor)
{
    sbi_estimator_config cfg;
    est_ctx k;
    double *dlogq;
    size_t n;
    sbi_real *w, *g;
    gc_stats s;
    int rc;
    rc = sbi_estimator_config_default(&cfg, family, D, X);
    strcpy(cfg.embedding, embedding);
    cfg.n_bins = 4;
    cfg.tail_bound = 2.0;
    cfg.embed_dim = E;
    cfg.embed_hidden = hidden;
    cfg.hidden = hidden;
    cfg.embed_layers = layers;
    cfg.hidden_layers = layers;
    cfg.n_transforms = K;
    cfg.max_batch = 8;
    cfg.seed = 3;
    rc |= sbi_estimator_create(&cfg, &k.est);
    SBI_ASSERT_OK(rc);
    if (rc) return;
    k.B = 5;
    n = sbi_estimator_n_weights(k.est);
    w = sbi_estimator_weights(k.est);
    g = sbi_estimator_grads(k.est);
    k.x = malloc(sizeof(double) * k.B * X);
    k.theta = malloc(sizeof(double) * k.B * D);
    k.logq = malloc(sizeof(double) * k.B);
    dlogq = malloc(sizeof(double) * k.B);
    /* Random weights everywhere, so the zero-initialised last maps do not
     * hide the gradients of the layers before them. */
    gc_fill(w, n, 0.4, 21);
    gc_fill(k.x, (size_t)k.B * X, 1.0, 22);
    gc_fill(k.theta, (size_t)k.B * D, 1.5, 23);
    for (int b = 0; b < k.B; ++b) dlogq[b] = -1.0 / k.B;
    est_loss(&k);
    sbi_estimator_zero_grad(k.est);
    SBI_ASSERT_OK(sbi_estimator_backward(k.est, dlogq, k.B));
    gc_reset(&s);
    if (n <= max_all) {
        for (size_t i = 0; i < n; ++i) gc_add(&s, i, g[i], gc_numeric(est_loss, &k, &w[i], GC_STEP));
    } else {
        const sbi_tensor_info *t = sbi_estimator_tensors(k.est);
        int nt = sbi_estimator_n_tensors(k.est);
        sbi_rng r;
        sbi_rng_init(&r, 99, 0, SBI_STREAM_AUGMENT, 1);
        for (int ti = 0; ti < nt; ++ti)
            for (int j = 0; j < per_tensor; ++j) {
                size_t i = t[ti].offset + sbi_rng_below(&r, t[ti].size);
                gc_add(&s, i, g[i], gc_numeric(est_loss, &k, &w[i], GC_STEP));
            }
        while (s.count < 600) {
            size_t i = sbi_rng_below(&r, n);
            gc_add(&s, i, g[i], gc_numeric(est_loss, &k, &w[i], GC_STEP));
        }
        printf("%s: %zu weights in %d tensors, checked %zu\n", label, n, nt, s.count);
    }
    SBI_ASSERT(gc_report(label, &s));
    sbi_estimator_destroy(&k.est);
    free(k.x);
    free(k.theta);
    free(k.logq);
    free(dlogq);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_spline();
    check_coupling(0);
    check_coupling(1);
    check_estimator("affine", "mlp", "affine D=3 d-weights (all)", 3, 4, 5, 6, 2, 3, 5000, 0);
    check_estimator("affine", "mlp", "affine D=1 d-weights (all)", 1, 2, 4, 5, 1, 2, 5000, 0);
    check_estimator("affine", "mlp", "affine D=6 d-weights (subset)", 6, 12, 16, 24, 2, 5, 0, 4);
    check_estimator("nsf", "mlp", "nsf D=3 d-weights (all)", 3, 4, 5, 6, 2, 3, 5000, 0);
    check_estimator("nsf", "mlp", "nsf D=1 d-weights (all)", 1, 2, 4, 5, 1, 2, 5000, 0);
    check_estimator("nsf", "mlp", "nsf D=6 d-weights (subset)", 6, 12, 16, 24, 2, 5, 0, 4);
    check_estimator("maf", "mlp", "maf D=3 d-weights (all)", 3, 4, 5, 6, 2, 3, 5000, 0);
    check_estimator("maf", "mlp", "maf D=1 d-weights (all)", 1, 2, 4, 5, 1, 2, 5000, 0);
    check_estimator("maf", "mlp", "maf D=6 d-weights (subset)", 6, 12, 16, 24, 2, 5, 0, 4);
    check_estimator("nsf", "conv1d", "nsf conv1d D=3 d-weights (subset)", 3, 20, 6, 8, 2, 2, 0, 6);
    status = SBI_TEST_REPORT("flow_gradcheck");
    MPI_Finalize();
    return status;
}
