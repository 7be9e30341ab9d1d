/* Gradient checks (double precision) of the linear layer, each activation,
 * whole MLPs, the 1-D convolution, max pooling and the convolutional encoder:
 * L = <r, y> for a fixed random r, analytic gradients against central
 * differences; and the fused convolution + ReLU + pooling kernels against the
 * chain of reference kernels they replace. */
#include <mpi.h>
#include <stdlib.h>
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

/* ---- 1-D convolution ---- */

enum { CV_L = 9, CV_CI = 3, CV_CO = 4, CV_K = 3, CV_LO = CV_L - CV_K + 1 };
typedef struct conv_ctx {
    double inp[B * CV_L * CV_CI], w[CV_CO * CV_K * CV_CI], b[CV_CO], out[B * CV_LO * CV_CO];
    double cols[B * CV_LO * CV_K * CV_CI], r[B * CV_LO * CV_CO];
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    double L = 0;
    sbi_conv1d_forward(c->out, c->cols, c->inp, c->w, c->b, B, CV_L, CV_CI, CV_CO, CV_K);
    for (int i = 0; i < B * CV_LO * CV_CO; ++i) L += c->r[i] * c->out[i];
    return L;
}

static void check_conv1d(void)
{
    static conv_ctx c;
    static double dinp[B * CV_L * CV_CI], dcols[B * CV_LO * CV_K * CV_CI], dw[CV_CO * CV_K * CV_CI], db[CV_CO];
    static double rinp[B * CV_L * CV_CI], rw[CV_CO * CV_K * CV_CI], rb[CV_CO], ref[B * CV_LO * CV_CO];
    double worst = 0;
    gc_stats s;
    gc_fill(c.inp, B * CV_L * CV_CI, 1.0, 41);
    gc_fill(c.w, CV_CO * CV_K * CV_CI, 0.5, 42);
    gc_fill(c.b, CV_CO, 0.5, 43);
    gc_fill(c.r, B * CV_LO * CV_CO, 1.0, 44);
    conv_loss(&c);
    sbi_conv1d_forward_ref(ref, c.inp, c.w, c.b, B, CV_L, CV_CI, CV_CO, CV_K);
    for (int i = 0; i < B * CV_LO * CV_CO; ++i) worst = fmax(worst, fabs(ref[i] - c.out[i]));
    printf("conv1d forward vs direct reference: max diff %.3e\n", worst);
    SBI_ASSERT(worst < 1e-12);
    sbi_conv1d_backward(dinp, dcols, dw, db, c.r, c.cols, c.w, B, CV_L, CV_CI, CV_CO, CV_K);
    sbi_conv1d_backward_ref(rinp, rw, rb, c.r, c.inp, c.w, B, CV_L, CV_CI, CV_CO, CV_K);
    worst = 0;
    for (int i = 0; i < B * CV_L * CV_CI; ++i) worst = fmax(worst, fabs(rinp[i] - dinp[i]));
    for (int i = 0; i < CV_CO * CV_K * CV_CI; ++i) worst = fmax(worst, fabs(rw[i] - dw[i]));
    for (int i = 0; i < CV_CO; ++i) worst = fmax(worst, fabs(rb[i] - db[i]));
    printf("conv1d backward vs direct reference: max diff %.3e\n", worst);
    SBI_ASSERT(worst < 1e-12);
    gc_reset(&s);
    for (int i = 0; i < B * CV_L * CV_CI; ++i) gc_add(&s, i, dinp[i], gc_numeric(conv_loss, &c, &c.inp[i], GC_STEP));
    SBI_ASSERT(gc_report("conv1d d-input", &s));
    gc_reset(&s);
    for (int i = 0; i < CV_CO * CV_K * CV_CI; ++i) gc_add(&s, i, dw[i], gc_numeric(conv_loss, &c, &c.w[i], GC_STEP));
    SBI_ASSERT(gc_report("conv1d d-weight", &s));
    gc_reset(&s);
    for (int i = 0; i < CV_CO; ++i) gc_add(&s, i, db[i], gc_numeric(conv_loss, &c, &c.b[i], GC_STEP));
    SBI_ASSERT(gc_report("conv1d d-bias", &s));
}

/* ---- max pooling ---- */

enum { MP_L = 11, MP_C = 3, MP_P = 3, MP_Q = MP_L / MP_P };
typedef struct pool_ctx {
    double inp[B * MP_L * MP_C], out[B * MP_Q * MP_C], r[B * MP_Q * MP_C];
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    double L = 0;
    sbi_maxpool1d_forward(c->out, c->inp, B, MP_L, MP_C, MP_P);
    for (int i = 0; i < B * MP_Q * MP_C; ++i) L += c->r[i] * c->out[i];
    return L;
}

static void check_maxpool(void)
{
    pool_ctx c;
    double dinp[B * MP_L * MP_C] = {0};
    gc_stats s;
    /* Distinct values 0.01 apart at least, so no window has a near tie. */
    for (int i = 0; i < B * MP_L * MP_C; ++i) c.inp[i] = 0.01 * ((i * 37) % (B * MP_L * MP_C)) - 0.5;
    gc_fill(c.r, B * MP_Q * MP_C, 1.0, 45);
    pool_loss(&c);
    sbi_maxpool1d_backward(dinp, c.r, c.inp, B, MP_L, MP_C, MP_P);
    gc_reset(&s);
    for (int i = 0; i < B * MP_L * MP_C; ++i) gc_add(&s, i, dinp[i], gc_numeric(pool_loss, &c, &c.inp[i], GC_STEP));
    SBI_ASSERT(gc_report("maxpool d-input", &s));
}

/* ---- fused convolution + ReLU + pooling against the reference kernels ---- */

/* C_out = 11 leaves a partial vector block; L_out = 11 leaves a position
 * that fills no pooling window. */
enum { FU_L = 13, FU_CI = 3, FU_CO = 11, FU_K = 3, FU_P = 2, FU_LO = FU_L - FU_K + 1, FU_Q = FU_LO / FU_P };

/* The reference chain: direct convolution, ReLU, max pooling, and back. */
static void fused_ref(double *q, double *dinp, double *dw, double *db, const double *dq, const double *inp,
                      const double *w, const double *b, int C_in)
{
    static double c[B * FU_LO * FU_CO], r[B * FU_LO * FU_CO], dr[B * FU_LO * FU_CO], dc[B * FU_LO * FU_CO];
    sbi_conv1d_forward_ref(c, inp, w, b, B, FU_L, C_in, FU_CO, FU_K);
    sbi_relu_forward(r, c, B * FU_LO * FU_CO);
    sbi_maxpool1d_forward(q, r, B, FU_LO, FU_CO, FU_P);
    memset(dr, 0, sizeof(dr));
    memset(dc, 0, sizeof(dc));
    sbi_maxpool1d_backward(dr, dq, r, B, FU_LO, FU_CO, FU_P);
    sbi_relu_backward(dc, dr, c, B * FU_LO * FU_CO);
    sbi_conv1d_backward_ref(dinp, dw, db, dc, inp, w, B, FU_L, C_in, FU_CO, FU_K);
}

static double max_diff(const double *a, const double *b, int n)
{
    double worst = 0;
    for (int i = 0; i < n; ++i) worst = fmax(worst, fabs(a[i] - b[i]));
    return worst;
}

static void check_fused_conv(void)
{
    static double inp[B * FU_L * FU_CI], w[FU_CO * FU_K * FU_CI], b[FU_CO], dq[B * FU_Q * FU_CO];
    static double q[B * FU_Q * FU_CO], arg[B * FU_Q * FU_CO];
    double *scratch = malloc(sizeof(double) * sbi_conv1d_pool_scratch(FU_L, FU_CI, FU_CO, FU_K, FU_P));
    static double dinp[B * FU_L * FU_CI], dw[FU_CO * FU_K * FU_CI], db[FU_CO];
    static double rq[B * FU_Q * FU_CO], rinp[B * FU_L * FU_CI], rw[FU_CO * FU_K * FU_CI], rb[FU_CO];
    gc_fill(inp, B * FU_L * FU_CI, 1.0, 51);
    gc_fill(w, FU_CO * FU_K * FU_CI, 0.5, 52);
    gc_fill(b, FU_CO, 0.5, 53);
    gc_fill(dq, B * FU_Q * FU_CO, 1.0, 54);

    /* Several input channels: im2col + gemm. */
    fused_ref(rq, rinp, rw, rb, dq, inp, w, b, FU_CI);
    sbi_conv1d_pool_forward(q, arg, scratch, inp, w, b, B, FU_L, FU_CI, FU_CO, FU_K, FU_P);
    printf("fused conv1d+relu+pool forward vs reference chain: max diff %.3e\n", max_diff(q, rq, B * FU_Q * FU_CO));
    SBI_ASSERT(max_diff(q, rq, B * FU_Q * FU_CO) < 1e-12);
    memset(dw, 0, sizeof(dw));
    memset(db, 0, sizeof(db));
    sbi_conv1d_pool_backward(dinp, dw, db, scratch, dq, q, arg, inp, w, B, FU_L, FU_CI, FU_CO, FU_K, FU_P);
    printf("fused conv1d+relu+pool backward vs reference chain: max diff %.3e %.3e %.3e\n",
           max_diff(dinp, rinp, B * FU_L * FU_CI), max_diff(dw, rw, FU_CO * FU_K * FU_CI), max_diff(db, rb, FU_CO));
    SBI_ASSERT(max_diff(dinp, rinp, B * FU_L * FU_CI) < 1e-12);
    SBI_ASSERT(max_diff(dw, rw, FU_CO * FU_K * FU_CI) < 1e-12);
    SBI_ASSERT(max_diff(db, rb, FU_CO) < 1e-12);

    /* One input channel: the direct kernel (no input gradient). */
    memset(rinp, 0, sizeof(rinp));
    memset(rw, 0, sizeof(rw));
    memset(rb, 0, sizeof(rb));
    fused_ref(rq, rinp, rw, rb, dq, inp, w, b, 1);
    sbi_conv1d_pool_1ch_forward(q, arg, inp, w, b, B, FU_L, FU_CO, FU_K, FU_P);
    printf("fused 1-channel forward vs reference chain: max diff %.3e\n", max_diff(q, rq, B * FU_Q * FU_CO));
    SBI_ASSERT(max_diff(q, rq, B * FU_Q * FU_CO) < 1e-12);
    memset(dw, 0, sizeof(dw));
    memset(db, 0, sizeof(db));
    sbi_conv1d_pool_1ch_backward(dw, db, dq, q, arg, inp, B, FU_L, FU_CO, FU_K, FU_P);
    printf("fused 1-channel backward vs reference chain: max diff %.3e %.3e\n", max_diff(dw, rw, FU_CO * FU_K),
           max_diff(db, rb, FU_CO));
    SBI_ASSERT(max_diff(dw, rw, FU_CO * FU_K) < 1e-12);
    SBI_ASSERT(max_diff(db, rb, FU_CO) < 1e-12);
    free(scratch);
}

/* ---- the convolutional encoder ---- */

enum { EN_L = 24, EN_C1 = 3, EN_C2 = 4, EN_E = 3 };
typedef struct enc_ctx {
    sbi_conv_encoder e;
    sbi_layout lay;
    double inp[B * EN_L], r[B * EN_E];
} enc_ctx;

static double enc_loss(void *p)
{
    enc_ctx *c = p;
    double L = 0;
    sbi_conv_encoder_forward(&c->e, c->inp, B);
    for (int i = 0; i < B * EN_E; ++i) L += c->r[i] * c->e.out[i];
    return L;
}

static void check_encoder(void)
{
    static enc_ctx c;
    gc_stats s;
    int rc = 0;
    sbi_layout_init(&c.lay, B);
    rc |= sbi_conv_encoder_layout(&c.e, &c.lay, "enc", EN_L, EN_C1, EN_C2, 3, 2, EN_E);
    rc |= sbi_layout_alloc(&c.lay);
    rc |= sbi_conv_encoder_layout(&c.e, &c.lay, "enc", EN_L, EN_C1, EN_C2, 3, 2, EN_E);
    rc |= sbi_layout_finish(&c.lay);
    SBI_ASSERT_EQ_INT(rc, 0);
    if (rc) return;
    gc_fill(c.lay.weights, c.lay.n_weights, 0.6, 46);
    gc_fill(c.inp, B * EN_L, 1.0, 47);
    gc_fill(c.r, B * EN_E, 1.0, 48);
    enc_loss(&c);
    sbi_layout_zero_grads(&c.lay);
    sbi_layout_zero_dacts(&c.lay, B);
    memcpy(c.e.dout, c.r, sizeof(c.r));
    sbi_conv_encoder_backward(&c.e, B);
    gc_reset(&s);
    for (size_t i = 0; i < c.lay.n_weights; ++i)
        gc_add(&s, i, c.lay.grads[i], gc_numeric(enc_loss, &c, &c.lay.weights[i], GC_STEP));
    SBI_ASSERT(gc_report("conv encoder d-weights", &s));
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
    check_conv1d();
    check_maxpool();
    check_fused_conv();
    check_encoder();
    status = SBI_TEST_REPORT("nn_gradcheck");
    MPI_Finalize();
    return status;
}
