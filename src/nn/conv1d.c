/* 1-D convolution (im2col + one gemm, with the direct loop nest as its
 * oracle), max pooling, and the convolutional sequence encoder built on them.
 *
 * Both forms were timed on the second convolution of the reference encoder
 * (233 values, 1 -> 32 -> 64 channels, kernel 5, 200 rows;
 * bench_train_reference): the gemm form is about 25 times faster than the
 * direct loops, so the estimator runs it and the direct loops stay as the
 * test oracle. */
#include <string.h>

#include "nn/nn_impl.h"

/* cols (B, L_out, K C_in): row (b, l) is the contiguous run inp[b, l .. l + K). */
static void im2col(sbi_real *cols, const sbi_real *inp, int B, int L, int C_in, int K)
{
    int L_out = L - K + 1;
    size_t run = (size_t)K * C_in;
    for (int b = 0; b < B; ++b) {
        const sbi_real *xb = inp + (size_t)b * L * C_in;
        sbi_real *cb = cols + (size_t)b * L_out * run;
        for (int l = 0; l < L_out; ++l) memcpy(cb + (size_t)l * run, xb + (size_t)l * C_in, run * sizeof(*cb));
    }
}

void sbi_conv1d_forward(sbi_real *out, sbi_real *cols, const sbi_real *inp, const sbi_real *w, const sbi_real *b,
                        int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1, M = B * L_out, KC = K * C_in;
    if (B <= 0 || L_out <= 0) return;
    im2col(cols, inp, B, L, C_in, K);
    for (int r = 0; r < M; ++r) memcpy(out + (size_t)r * C_out, b, (size_t)C_out * sizeof(*out));
    /* out (M, C_out) += cols (M, K C_in) @ w^T (K C_in, C_out) */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, C_out, KC, 1, cols, KC, w, KC, 1, out, C_out);
}

void sbi_conv1d_forward_ref(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int L,
                            int C_in, int C_out, int K)
{
    int L_out = L - K + 1;
    for (int n = 0; n < B; ++n)
        for (int l = 0; l < L_out; ++l)
            for (int o = 0; o < C_out; ++o) {
                double acc = b[o];
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < C_in; ++i)
                        acc += (double)w[((size_t)o * K + k) * C_in + i] * inp[((size_t)n * L + l + k) * C_in + i];
                out[((size_t)n * L_out + l) * C_out + o] = (sbi_real)acc;
            }
}

void sbi_conv1d_backward(sbi_real *dinp, sbi_real *dcols, sbi_real *dw, sbi_real *db, const sbi_real *dout,
                         const sbi_real *cols, const sbi_real *w, int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1, M = B * L_out, KC = K * C_in;
    if (B <= 0 || L_out <= 0) return;
    if (db) {
        for (int r = 0; r < M; ++r) {
            const sbi_real *g = dout + (size_t)r * C_out;
            for (int o = 0; o < C_out; ++o) db[o] += g[o];
        }
    }
    /* dw (C_out, K C_in) += dout^T (C_out, M) @ cols (M, K C_in) */
    sbi__gemm(CblasRowMajor, CblasTrans, CblasNoTrans, C_out, KC, M, 1, dout, C_out, cols, KC, 1, dw, KC);
    if (!dinp) return;
    /* dcols (M, K C_in) = dout (M, C_out) @ w (C_out, K C_in), then col2im. */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, KC, C_out, 1, dout, C_out, w, KC, 0, dcols, KC);
    for (int n = 0; n < B; ++n) {
        sbi_real *xb = dinp + (size_t)n * L * C_in;
        const sbi_real *cb = dcols + (size_t)n * L_out * KC;
        for (int l = 0; l < L_out; ++l) {
            sbi_real *dst = xb + (size_t)l * C_in;
            const sbi_real *src = cb + (size_t)l * KC;
            for (int j = 0; j < KC; ++j) dst[j] += src[j];
        }
    }
}

void sbi_conv1d_backward_ref(sbi_real *dinp, sbi_real *dw, sbi_real *db, const sbi_real *dout, const sbi_real *inp,
                             const sbi_real *w, int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1;
    for (int n = 0; n < B; ++n)
        for (int l = 0; l < L_out; ++l)
            for (int o = 0; o < C_out; ++o) {
                sbi_real g = dout[((size_t)n * L_out + l) * C_out + o];
                if (db) db[o] += g;
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < C_in; ++i) {
                        size_t xi = ((size_t)n * L + l + k) * C_in + i, wi = ((size_t)o * K + k) * C_in + i;
                        dw[wi] += g * inp[xi];
                        if (dinp) dinp[xi] += g * w[wi];
                    }
            }
}

void sbi_maxpool1d_forward(sbi_real *out, const sbi_real *inp, int B, int L, int C, int P)
{
    int Q = L / P;
    for (int n = 0; n < B; ++n)
        for (int q = 0; q < Q; ++q) {
            const sbi_real *x = inp + ((size_t)n * L + (size_t)q * P) * C;
            sbi_real *y = out + ((size_t)n * Q + q) * C;
            memcpy(y, x, (size_t)C * sizeof(*y));
            for (int p = 1; p < P; ++p)
                for (int c = 0; c < C; ++c) y[c] = x[(size_t)p * C + c] > y[c] ? x[(size_t)p * C + c] : y[c];
        }
}

void sbi_maxpool1d_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, int B, int L, int C, int P)
{
    int Q = L / P;
    for (int n = 0; n < B; ++n)
        for (int q = 0; q < Q; ++q) {
            const sbi_real *x = inp + ((size_t)n * L + (size_t)q * P) * C;
            const sbi_real *g = dout + ((size_t)n * Q + q) * C;
            sbi_real *dx = dinp + ((size_t)n * L + (size_t)q * P) * C;
            for (int c = 0; c < C; ++c) {
                int arg = 0;
                for (int p = 1; p < P; ++p)
                    if (x[(size_t)p * C + c] > x[(size_t)arg * C + c]) arg = p;
                dx[(size_t)arg * C + c] += g[c];
            }
        }
}

int sbi_conv_encoder_min_length(int K, int P)
{
    /* The second pooling needs one window: L2 >= P, Q1 = L2 + K - 1, L1 >= P Q1. */
    return P * (P + K - 1) + K - 1;
}

int sbi_conv_encoder_layout(sbi_conv_encoder *c, sbi_layout *lay, const char *name, int L, int C1, int C2, int K,
                            int P, int E)
{
    int lmin = sbi_conv_encoder_min_length(K, P);
    SBI_CHECK(K >= 1 && P >= 1 && C1 >= 1 && C2 >= 1 && E >= 1, SBI_ERR_INPUT, "%s: bad encoder shape", name);
    SBI_CHECK(L >= lmin, SBI_ERR_INPUT, "%s: the conv1d encoder needs at least %d input values, got %d", name, lmin,
              L);
    memset(c, 0, sizeof(*c));
    c->L = L;
    c->C1 = C1;
    c->C2 = C2;
    c->K = K;
    c->P = P;
    c->E = E;
    c->L1 = L - K + 1;
    c->Q1 = c->L1 / P;
    c->L2 = c->Q1 - K + 1;
    c->Q2 = c->L2 / P;
    c->w0 = sbi_layout_weight(lay, &c->dw0, (size_t)C1 * K, K, SBI_INIT_UNIFORM, "%s.conv0.w", name);
    c->b0 = sbi_layout_weight(lay, &c->db0, (size_t)C1, K, SBI_INIT_UNIFORM, "%s.conv0.b", name);
    c->w1 = sbi_layout_weight(lay, &c->dw1, (size_t)C2 * K * C1, K * C1, SBI_INIT_UNIFORM, "%s.conv1.w", name);
    c->b1 = sbi_layout_weight(lay, &c->db1, (size_t)C2, K * C1, SBI_INIT_UNIFORM, "%s.conv1.b", name);
    c->wp = sbi_layout_weight(lay, &c->dwp, (size_t)E * c->Q2 * C2, c->Q2 * C2, SBI_INIT_UNIFORM, "%s.proj.w", name);
    c->bp = sbi_layout_weight(lay, &c->dbp, (size_t)E, c->Q2 * C2, SBI_INIT_UNIFORM, "%s.proj.b", name);
    c->cols0 = sbi_layout_act(lay, &c->dcols0, c->L1 * K);
    c->c0 = sbi_layout_act(lay, &c->dc0, c->L1 * C1);
    c->r0 = sbi_layout_act(lay, &c->dr0, c->L1 * C1);
    c->q0 = sbi_layout_act(lay, &c->dq0, c->Q1 * C1);
    c->cols1 = sbi_layout_act(lay, &c->dcols1, c->L2 * K * C1);
    c->c1 = sbi_layout_act(lay, &c->dc1, c->L2 * C2);
    c->r1 = sbi_layout_act(lay, &c->dr1, c->L2 * C2);
    c->q1 = sbi_layout_act(lay, &c->dq1, c->Q2 * C2);
    c->out = sbi_layout_act(lay, &c->dout, E);
    return 0;
}

void sbi_conv_encoder_forward(sbi_conv_encoder *c, const sbi_real *inp, int B)
{
    sbi_conv1d_forward(c->c0, c->cols0, inp, c->w0, c->b0, B, c->L, 1, c->C1, c->K);
    sbi_relu_forward(c->r0, c->c0, (size_t)B * c->L1 * c->C1);
    sbi_maxpool1d_forward(c->q0, c->r0, B, c->L1, c->C1, c->P);
    sbi_conv1d_forward(c->c1, c->cols1, c->q0, c->w1, c->b1, B, c->Q1, c->C1, c->C2, c->K);
    sbi_relu_forward(c->r1, c->c1, (size_t)B * c->L2 * c->C2);
    sbi_maxpool1d_forward(c->q1, c->r1, B, c->L2, c->C2, c->P);
    sbi_linear_forward(c->out, c->q1, c->wp, c->bp, B, c->Q2 * c->C2, c->E);
}

void sbi_conv_encoder_backward(sbi_conv_encoder *c, int B)
{
    sbi_linear_backward(c->dq1, c->dwp, c->dbp, c->dout, c->q1, c->wp, B, c->Q2 * c->C2, c->E);
    sbi_maxpool1d_backward(c->dr1, c->dq1, c->r1, B, c->L2, c->C2, c->P);
    sbi_relu_backward(c->dc1, c->dr1, c->c1, (size_t)B * c->L2 * c->C2);
    sbi_conv1d_backward(c->dq0, c->dcols1, c->dw1, c->db1, c->dc1, c->cols1, c->w1, B, c->Q1, c->C1, c->C2, c->K);
    sbi_maxpool1d_backward(c->dr0, c->dq0, c->r0, B, c->L1, c->C1, c->P);
    sbi_relu_backward(c->dc0, c->dr0, c->c0, (size_t)B * c->L1 * c->C1);
    sbi_conv1d_backward(NULL, NULL, c->dw0, c->db0, c->dc0, c->cols0, c->w0, B, c->L, 1, c->C1, c->K);
}
