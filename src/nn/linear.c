/* The linear layer: out = inp @ w^T + b, with w (C_out, C_in). */
#include <string.h>

#include "nn/nn_impl.h"

void sbi_linear_forward(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int C_in,
                        int C_out)
{
    if (B <= 0 || C_out <= 0) return;
    if (b) {
        for (int r = 0; r < B; ++r) memcpy(out + (size_t)r * C_out, b, (size_t)C_out * sizeof(*out));
    } else {
        memset(out, 0, (size_t)B * C_out * sizeof(*out));
    }
    if (C_in <= 0) return;
    /* out (B, C_out) += inp (B, C_in) @ w^T (C_in, C_out) */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C_out, C_in, 1, inp, C_in, w, C_in, 1, out, C_out);
}

void sbi_linear_forward_ref(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int C_in,
                            int C_out)
{
    for (int r = 0; r < B; ++r) {
        const sbi_real *x = inp + (size_t)r * C_in;
        for (int o = 0; o < C_out; ++o) {
            const sbi_real *wo = w + (size_t)o * C_in;
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < C_in; ++i) acc += (double)wo[i] * x[i];
            out[(size_t)r * C_out + o] = (sbi_real)acc;
        }
    }
}

void sbi_linear_backward(sbi_real *dinp, sbi_real *dw, sbi_real *db, const sbi_real *dout, const sbi_real *inp,
                         const sbi_real *w, int B, int C_in, int C_out)
{
    if (B <= 0 || C_out <= 0) return;
    if (db) {
        for (int r = 0; r < B; ++r) {
            const sbi_real *g = dout + (size_t)r * C_out;
            for (int o = 0; o < C_out; ++o) db[o] += g[o];
        }
    }
    if (C_in <= 0) return;
    /* dw (C_out, C_in) += dout^T (C_out, B) @ inp (B, C_in) */
    sbi__gemm(CblasRowMajor, CblasTrans, CblasNoTrans, C_out, C_in, B, 1, dout, C_out, inp, C_in, 1, dw, C_in);
    /* dinp (B, C_in) += dout (B, C_out) @ w (C_out, C_in) */
    if (dinp)
        sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C_in, C_out, 1, dout, C_out, w, C_in, 1, dinp, C_in);
}
