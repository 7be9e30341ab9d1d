/* The fused convolution + bias + ReLU + max-pool forward and backward of
 * the production (single-precision) build against their oracles, the direct
 * loops of sbi_conv1d_forward_ref followed by max pooling and ReLU, and
 * sbi_conv1d_backward_ref on the gradient routed back through them: channel
 * counts that take the register-blocked direct kernels (multiples of 16) and
 * the gemm form, lengths that are and are not multiples of its 6-position
 * tile, and more rows than one block. */
#include <mpi.h>
#include <stdlib.h>

#include "exosbi/nn.h"
#include "exosbi/rng.h"
#include "testutil.h"

static void check(int B, int L, int C_in, int C_out, int K, int P)
{
    int L_out = L - K + 1, Q = L_out / P;
    sbi_real *inp = malloc(sizeof(sbi_real) * B * L * C_in), *w = malloc(sizeof(sbi_real) * C_out * K * C_in);
    sbi_real *b = malloc(sizeof(sbi_real) * C_out), *c = malloc(sizeof(sbi_real) * B * L_out * C_out);
    sbi_real *qr = malloc(sizeof(sbi_real) * B * Q * C_out), *q = malloc(sizeof(sbi_real) * B * Q * C_out);
    sbi_real *arg = malloc(sizeof(sbi_real) * B * Q * C_out), *cols = malloc(sizeof(sbi_real) * B * L_out * K * C_in);
    sbi_real *scratch = malloc(sizeof(sbi_real) * sbi_conv1d_pool_scratch(L, C_in, C_out, K));
    sbi_real *dq = malloc(sizeof(sbi_real) * B * Q * C_out), *dc = calloc((size_t)B * L_out * C_out, sizeof(sbi_real));
    sbi_real *dinp = malloc(sizeof(sbi_real) * B * L * C_in), *dinp_r = calloc((size_t)B * L * C_in, sizeof(sbi_real));
    sbi_real *dw = calloc((size_t)C_out * K * C_in, sizeof(sbi_real)), *dw_r = calloc((size_t)C_out * K * C_in, sizeof(sbi_real));
    sbi_real *db = calloc((size_t)C_out, sizeof(sbi_real)), *db_r = calloc((size_t)C_out, sizeof(sbi_real));
    double err = 0, derr = 0;
    sbi_rng r;
    sbi_rng_init(&r, 11, (uint64_t)(C_out * 1000 + L), SBI_STREAM_INIT, 0);
    for (int i = 0; i < B * L * C_in; ++i) inp[i] = (sbi_real)sbi_rng_normal(&r);
    for (int i = 0; i < C_out * K * C_in; ++i) w[i] = (sbi_real)(sbi_rng_normal(&r) / 8);
    for (int i = 0; i < C_out; ++i) b[i] = (sbi_real)sbi_rng_normal(&r);
    sbi_conv1d_forward_ref(c, inp, w, b, B, L, C_in, C_out, K);
    sbi_maxpool1d_forward(qr, c, B, L_out, C_out, P);
    sbi_conv1d_pool_forward(q, arg, cols, scratch, inp, w, b, B, L, C_in, C_out, K, P);
    for (int i = 0; i < B * Q * C_out; ++i) {
        double e = fabs((double)q[i] - (qr[i] > 0 ? qr[i] : 0));
        err = e > err ? e : err;
    }
    /* The pooled gradient goes to each window's maximum where the ReLU passed it. */
    for (int i = 0; i < B * Q * C_out; ++i) dq[i] = (sbi_real)sbi_rng_normal(&r);
    for (int n = 0; n < B; ++n)
        for (int t = 0; t < Q; ++t)
            for (int o = 0; o < C_out; ++o) {
                size_t k = ((size_t)n * Q + t) * C_out + o;
                if (q[k] > 0) dc[((size_t)n * L_out + t * P + (int)arg[k]) * C_out + o] = dq[k];
            }
    sbi_conv1d_backward_ref(dinp_r, dw_r, db_r, dc, inp, w, B, L, C_in, C_out, K);
    sbi_conv1d_pool_backward(dinp, dw, db, scratch, dq, q, arg, cols, w, B, L, C_in, C_out, K, P);
    for (int i = 0; i < B * L * C_in; ++i) derr = fmax(derr, fabs((double)dinp[i] - dinp_r[i]));
    for (int i = 0; i < C_out * K * C_in; ++i) derr = fmax(derr, fabs((double)dw[i] - dw_r[i]) / 10);
    for (int i = 0; i < C_out; ++i) derr = fmax(derr, fabs((double)db[i] - db_r[i]) / 10);
    printf("B=%2d L=%3d %2d -> %2d channels, kernel %d, pool %d: max |q - q_ref| %.2e, gradients %.2e\n", B, L, C_in,
           C_out, K, P, err, derr);
    SBI_ASSERT(err < 1e-5);
    SBI_ASSERT(derr < 1e-4);
    free(dq);
    free(dc);
    free(dinp);
    free(dinp_r);
    free(dw);
    free(dw_r);
    free(db);
    free(db_r);
    free(inp);
    free(w);
    free(b);
    free(c);
    free(qr);
    free(q);
    free(arg);
    free(cols);
    free(scratch);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check(11, 118, 32, 64, 5, 2);
    check(3, 31, 7, 16, 3, 2);
    check(9, 40, 32, 48, 5, 3);
    check(2, 29, 5, 20, 5, 2);
    check(10, 37, 16, 24, 4, 2);
    status = SBI_TEST_REPORT("nn_conv1d_pool_ref");
    MPI_Finalize();
    return status;
}
