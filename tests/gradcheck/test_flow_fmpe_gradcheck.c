/* Gradient checks (double precision) of family "fmpe": the flow-matching
 * loss L = -mean_b logq_b = mean_b l_b with respect to every weight, with the
 * draw counter reset before each evaluation so that every evaluation sees
 * the same (t, z); and the exact divergence of the velocity (D
 * Jacobian-vector products) against central differences of the velocity.
 * The family is built straight from its ops table, as the generic estimator
 * code does. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"
#include "gradcheck.h"
#include "testutil.h"

typedef struct fam {
    const sbi_estimator_ops *ops;
    sbi_estimator_config cfg;
    void *impl;
    sbi_layout lay;
} fam;

static int fam_create(fam *m, int D, int X, int E, int hidden, int layers)
{
    sbi_estimator_config *cfg = &m->cfg;
    memset(m, 0, sizeof(*m));
    m->ops = &sbi__fmpe_ops;
    SBI_CALL(sbi_estimator_config_default(cfg, "maf", D, X));
    strcpy(cfg->family, "fmpe");
    m->ops->defaults(cfg);
    strcpy(cfg->ode_solver, "midpoint");
    cfg->embed_dim = E;
    cfg->embed_hidden = hidden;
    cfg->hidden = hidden;
    cfg->embed_layers = layers;
    cfg->hidden_layers = layers;
    cfg->max_batch = 8;
    cfg->seed = 3;
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

typedef struct est_ctx {
    fam m;
    int B;
    double *x, *theta, *logq;
} est_ctx;

static double est_loss(void *p)
{
    est_ctx *k = p;
    double L = 0;
    k->m.ops->set_draw_counter(k->m.impl, 5);
    if (k->m.ops->forward(k->m.impl, k->x, k->theta, k->B, k->logq, NULL, NULL)) return NAN;
    for (int b = 0; b < k->B; ++b) L -= k->logq[b];
    return L / k->B;
}

static void check_loss(const char *label, int D, int X, int E, int hidden, int layers)
{
    est_ctx k;
    double dlogq[8], L1, L2;
    gc_stats s;
    SBI_ASSERT_OK(fam_create(&k.m, D, X, E, hidden, layers));
    k.B = 5;
    k.x = malloc(sizeof(double) * k.B * X);
    k.theta = malloc(sizeof(double) * k.B * D);
    k.logq = malloc(sizeof(double) * k.B);
    gc_fill(k.m.lay.weights, k.m.lay.n_weights, 0.4, 21);
    gc_fill(k.x, (size_t)k.B * X, 1.0, 22);
    gc_fill(k.theta, (size_t)k.B * D, 1.5, 23);
    for (int b = 0; b < k.B; ++b) dlogq[b] = -1.0 / k.B;
    /* The counter keys the draws: the same counter gives the same loss, the next one another. */
    L1 = est_loss(&k);
    L2 = est_loss(&k);
    SBI_ASSERT(L1 == L2);
    SBI_ASSERT(k.m.ops->get_draw_counter(k.m.impl) == 6);
    SBI_ASSERT_OK(k.m.ops->forward(k.m.impl, k.x, k.theta, k.B, k.logq, NULL, NULL));
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

/* div v = sum_i dv_i / dtheta_i against central differences of v. */
static void check_divergence(int D, int layers)
{
    enum { X = 3, B = 4 };
    fam m;
    sbi__fmpe *f;
    double x[X], theta[B * 8], v[B * 8], vp[B * 8], vm[B * 8], div[B], worst = 0;
    const double h = 1e-5, t = 0.37;
    SBI_ASSERT_OK(fam_create(&m, D, X, 4, 6, layers));
    f = m.impl;
    gc_fill(m.lay.weights, m.lay.n_weights, 0.6, 31);
    gc_fill(x, X, 1.0, 32);
    gc_fill(theta, (size_t)B * D, 1.5, 33);
    sbi__embedding_forward(&f->embed, x, 1);
    sbi__fmpe_velocity(f, v, div, theta, t, B);
    for (int b = 0; b < B; ++b) {
        double fd = 0;
        for (int i = 0; i < D; ++i) {
            double t0 = theta[b * D + i];
            theta[b * D + i] = t0 + h;
            sbi__fmpe_velocity(f, vp, NULL, theta, t, B);
            theta[b * D + i] = t0 - h;
            sbi__fmpe_velocity(f, vm, NULL, theta, t, B);
            theta[b * D + i] = t0;
            fd += (vp[b * D + i] - vm[b * D + i]) / (2 * h);
        }
        worst = fmax(worst, fabs(fd - div[b]) / fmax(1.0, fabs(fd)));
    }
    printf("fmpe D=%d, %d hidden layers: max rel |div (JVP) - div (finite differences)| = %.3e\n", D, layers, worst);
    SBI_ASSERT(worst < 1e-8);
    fam_destroy(&m);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_loss("fmpe D=3 d-weights (all)", 3, 4, 5, 6, 2);
    check_loss("fmpe D=1 d-weights (all)", 1, 2, 4, 5, 1);
    check_divergence(3, 2);
    check_divergence(1, 1);
    check_divergence(5, 3);
    status = SBI_TEST_REPORT("flow_fmpe_gradcheck");
    MPI_Finalize();
    return status;
}
