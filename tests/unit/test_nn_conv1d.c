/* The fused convolution + bias + ReLU + max-pool forward of the production
 * (single-precision) build against its oracle, the direct loops of
 * sbi_conv1d_forward_ref followed by max pooling and ReLU: output channel
 * counts that take the register-blocked direct kernel (multiples of 16) and
 * the gemm form, output lengths that are and are not multiples of its
 * 6-position tile, and more rows than one block. */
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
    sbi_real *scratch = malloc(sizeof(sbi_real) * ((size_t)SBI_CONV_BLOCK_ROWS * L_out * C_out + K * C_in * C_out));
    double err = 0;
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
    printf("B=%2d L=%3d %2d -> %2d channels, kernel %d, pool %d: max |q - q_ref| %.2e\n", B, L, C_in, C_out, K, P,
           err);
    SBI_ASSERT(err < 1e-5);
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
    status = SBI_TEST_REPORT("nn_conv1d_pool_ref");
    MPI_Finalize();
    return status;
}
