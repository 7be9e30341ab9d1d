/* Gradient checks (double precision) of the linear layer, each activation
 * and whole MLPs: L = <r, y> for a fixed random r, analytic gradients
 * against central differences. */
#include <mpi.h>
#include <string.h>

#include "exosbi/nn.h"
#include "gradcheck.h"
#include "testutil.h"

#define B 4

/* ---- linear layer ---- */

enum { LIN_IN = 5, LIN_OUT = 3 };
typedef struct lin_ctx {
    double inp[B * LIN_IN], w[LIN_OUT * LIN_IN], b[LIN_OUT], r[B * LIN_OUT], out[B * LIN_OUT];
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    double L = 0;
    sbi_linear_forward(c->out, c->inp, c->w, c->b, B, LIN_IN, LIN_OUT);
    for (int i = 0; i < B * LIN_OUT; ++i) L += c->r[i] * c->out[i];
    return L;
}

static void check_linear(void)
{
    lin_ctx c;
    double dinp[B * LIN_IN] = {0}, dw[LIN_OUT * LIN_IN] = {0}, db[LIN_OUT] = {0};
    gc_stats s;
    gc_fill(c.inp, B * LIN_IN, 1.0, 1);
    gc_fill(c.w, LIN_OUT * LIN_IN, 0.5, 2);
    gc_fill(c.b, LIN_OUT, 0.5, 3);
    gc_fill(c.r, B * LIN_OUT, 1.0, 4);
    lin_loss(&c);
    sbi_linear_backward(dinp, dw, db, c.r, c.inp, c.w, B, LIN_IN, LIN_OUT);
    gc_reset(&s);
    for (int i = 0; i < B * LIN_IN; ++i) gc_add(&s, i, dinp[i], gc_numeric(lin_loss, &c, &c.inp[i], GC_STEP));
    SBI_ASSERT(gc_report("linear d-input", &s));
    gc_reset(&s);
    for (int i = 0; i < LIN_OUT * LIN_IN; ++i) gc_add(&s, i, dw[i], gc_numeric(lin_loss, &c, &c.w[i], GC_STEP));
    SBI_ASSERT(gc_report("linear d-weight", &s));
    gc_reset(&s);
    for (int i = 0; i < LIN_OUT; ++i) gc_add(&s, i, db[i], gc_numeric(lin_loss, &c, &c.b[i], GC_STEP));
    SBI_ASSERT(gc_report("linear d-bias", &s));
}

/* ---- activations ---- */

enum { ACT_N = 40 };
typedef struct act_ctx {
    int act;
    double inp[ACT_N], out[ACT_N], r[ACT_N];
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    double L = 0;
    sbi_activation_forward(c->act, c->out, c->inp, ACT_N);
    for (int i = 0; i < ACT_N; ++i) L += c->r[i] * c->out[i];
    return L;
}

static void check_activation(int act)
{
    act_ctx c;
    double dinp[ACT_N] = {0};
    char label[64];
    gc_stats s;
    c.act = act;
    gc_fill(c.inp, ACT_N, 3.0, 5);
    /* Keep clear of the kink at 0, where no derivative exists. */
    for (int i = 0; i < ACT_N; ++i)
        if (fabs(c.inp[i]) < 0.05) c.inp[i] += c.inp[i] < 0 ? -0.05 : 0.05;
    gc_fill(c.r, ACT_N, 1.0, 6);
    act_loss(&c);
    sbi_activation_backward(act, dinp, c.r, c.inp, c.out, ACT_N);
    gc_reset(&s);
    for (int i = 0; i < ACT_N; ++i) gc_add(&s, i, dinp[i], gc_numeric(act_loss, &c, &c.inp[i], GC_STEP));
    snprintf(label, sizeof(label), "%s d-input", sbi_activation_name(act));
    SBI_ASSERT(gc_report(label, &s));
}

/* ---- MLP ---- */

typedef struct mlp_ctx {
    sbi_mlp m;
    sbi_layout lay;
    double inp[B * 5], r[B * 3];
} mlp_ctx;

static double mlp_loss(void *p)
{
    mlp_ctx *c = p;
    int out_w = c->m.widths[c->m.n_layers];
    double L = 0;
    sbi_mlp_forward(&c->m, c->inp, B);
    for (int i = 0; i < B * out_w; ++i) L += c->r[i] * c->m.out[i];
    return L;
}

static void check_mlp(int act, int residual)
{
    static const int widths[] = {5, 7, 7, 7, 3};
    mlp_ctx c;
    double dinp[B * 5] = {0};
    char label[64];
    gc_stats s;
    int rc = 0;
    sbi_layout_init(&c.lay, B);
    rc |= sbi_mlp_layout(&c.m, &c.lay, "mlp", 4, widths, act, residual, 0);
    rc |= sbi_layout_alloc(&c.lay);
    rc |= sbi_mlp_layout(&c.m, &c.lay, "mlp", 4, widths, act, residual, 0);
    rc |= sbi_layout_finish(&c.lay);
    SBI_ASSERT_EQ_INT(rc, 0);
    if (rc) return;
    gc_fill(c.lay.weights, c.lay.n_weights, 0.6, 7);
    gc_fill(c.inp, B * 5, 1.0, 8);
    gc_fill(c.r, B * 3, 1.0, 9);
    mlp_loss(&c);
    sbi_layout_zero_grads(&c.lay);
    sbi_layout_zero_dacts(&c.lay, B);
    memcpy(c.m.dout, c.r, sizeof(c.r));
    sbi_mlp_backward(&c.m, dinp, c.inp, B);
    gc_reset(&s);
    for (int i = 0; i < B * 5; ++i) gc_add(&s, i, dinp[i], gc_numeric(mlp_loss, &c, &c.inp[i], GC_STEP));
    snprintf(label, sizeof(label), "mlp %s%s d-input", sbi_activation_name(act), residual ? " residual" : "");
    SBI_ASSERT(gc_report(label, &s));
    gc_reset(&s);
    for (size_t i = 0; i < c.lay.n_weights; ++i)
        gc_add(&s, i, c.lay.grads[i], gc_numeric(mlp_loss, &c, &c.lay.weights[i], GC_STEP));
    snprintf(label, sizeof(label), "mlp %s%s d-weights", sbi_activation_name(act), residual ? " residual" : "");
    SBI_ASSERT(gc_report(label, &s));
    sbi_layout_free(&c.lay);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_linear();
    check_activation(SBI_ACT_RELU);
    check_activation(SBI_ACT_TANH);
    check_activation(SBI_ACT_ELU);
    check_mlp(SBI_ACT_ELU, 1);
    check_mlp(SBI_ACT_TANH, 1);
    check_mlp(SBI_ACT_RELU, 0);
    status = SBI_TEST_REPORT("nn_gradcheck");
    MPI_Finalize();
    return status;
}
