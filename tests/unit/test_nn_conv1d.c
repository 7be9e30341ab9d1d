/* The fused convolution + bias + ReLU + max-pool forward and backward of the
 * production (single-precision) build against their oracles, the direct loops
 * of sbi_conv1d_forward_ref followed by max pooling and ReLU, and
 * sbi_conv1d_backward_ref on the gradient routed back through them: channel
 * counts that take the register-blocked direct kernels (multiples of 16) and
 * the gemm form, lengths that are and are not multiples of its 6-position
 * tile, more rows than one block, and channel counts that do and do not fill
 * the four-vector chunks of the sparse backward, for each form of the forward
 * (gemm, direct, Winograd F(4, 5), each where the build and shape allow it).
 * A second pass takes integer inputs and weights in eighths, so that every
 * sum is exact: channels with zero weights tie in every window (the first
 * position must take the gradient), channels with a negative bias have no
 * ReLU-active position, and there the gradient is routed by the reference
 * chain itself (max-pool and ReLU backward on the direct convolution).
 * Winograd's transforms are not exact in binary.  Every form's values must
 * stay within 2e-6 of the output scale, and its recorded positions may differ
 * from the first maximum of the direct loops only where the sums round
 * (Winograd's, or any form's on the first pass) and only in windows whose
 * values tie to 1e-5 of the scale, never in the constant channels. */
#include <mpi.h>
#include <stdlib.h>

#include "exosbi/nn.h"
#include "exosbi/rng.h"
#include "testutil.h"

static void check(int B, int L, int C_in, int C_out, int K, int P, int exact, int form)
{
    int L_out = L - K + 1, Q = L_out / P;
    sbi_real *inp = malloc(sizeof(sbi_real) * B * L * C_in), *w = malloc(sizeof(sbi_real) * C_out * K * C_in);
    sbi_real *b = malloc(sizeof(sbi_real) * C_out), *c = malloc(sizeof(sbi_real) * B * L_out * C_out);
    sbi_real *qr = malloc(sizeof(sbi_real) * B * Q * C_out), *q = malloc(sizeof(sbi_real) * B * Q * C_out);
    sbi_real *arg = malloc(sizeof(sbi_real) * B * Q * C_out), *r = malloc(sizeof(sbi_real) * B * L_out * C_out);
    sbi_real *dr = calloc((size_t)B * L_out * C_out, sizeof(sbi_real));
    sbi_real *scratch = malloc(sizeof(sbi_real) * sbi_conv1d_pool_scratch(L, C_in, C_out, K, P));
    sbi_real *dq = malloc(sizeof(sbi_real) * B * Q * C_out), *dc = calloc((size_t)B * L_out * C_out, sizeof(sbi_real));
    sbi_real *dinp = malloc(sizeof(sbi_real) * B * L * C_in), *dinp_r = calloc((size_t)B * L * C_in, sizeof(sbi_real));
    sbi_real *dw = calloc((size_t)C_out * K * C_in, sizeof(sbi_real)), *dw_r = calloc((size_t)C_out * K * C_in, sizeof(sbi_real));
    sbi_real *db = calloc((size_t)C_out, sizeof(sbi_real)), *db_r = calloc((size_t)C_out, sizeof(sbi_real));
    double err = 0, derr = 0, scale = 0;
    sbi_rng rng;
    int ties = 0, dead = 0, near = 0, moved = 0, ran = sbi_conv1d_pool_form(form, C_in, C_out, K, P);
    /* The direct and gemm forms sum in the reference's order up to
     * rounding, so exact data keep them exact.  Winograd's transforms are
     * not exact in binary.  Where a form rounds, windows whose values differ
     * by a rounding error may record either position (counted as
     * near-ties). */
    int exact_form = ran != SBI_CONV_WINOGRAD, rounds = !exact || !exact_form;
    sbi_rng_init(&rng, 11, (uint64_t)(C_out * 1000 + L), SBI_STREAM_INIT, 0);
    for (int i = 0; i < B * L * C_in; ++i)
        inp[i] = (sbi_real)(exact ? (double)(int)(2 * sbi_rng_normal(&rng)) : sbi_rng_normal(&rng));
    for (int i = 0; i < C_out * K * C_in; ++i)
        w[i] = (sbi_real)(exact ? (double)(int)(2 * sbi_rng_normal(&rng)) / 8 : sbi_rng_normal(&rng) / 8);
    for (int i = 0; i < C_out; ++i) b[i] = (sbi_real)(exact ? (double)(int)(2 * sbi_rng_normal(&rng)) / 4 : sbi_rng_normal(&rng));
    if (exact)
        for (int o = 0; o < C_out; o += 3) {
            /* Every third channel constant (ties everywhere), every sixth
             * also inactive (the ReLU passes nothing). */
            for (int j = 0; j < K * C_in; ++j) w[(size_t)o * K * C_in + j] = 0;
            b[o] = o % 2 ? (sbi_real)0.5 : (sbi_real)-0.5;
        }
    sbi_conv1d_forward_ref(c, inp, w, b, B, L, C_in, C_out, K);
    sbi_relu_forward(r, c, (size_t)B * L_out * C_out);
    sbi_maxpool1d_forward(qr, r, B, L_out, C_out, P);
    sbi_conv1d_pool_forward_form(q, arg, scratch, inp, w, b, B, L, C_in, C_out, K, P, form);
    for (int i = 0; i < B * L_out * C_out; ++i) scale = fmax(scale, fabs((double)c[i]));
    for (int i = 0; i < B * Q * C_out; ++i) {
        double e = fabs((double)q[i] - qr[i]);
        err = e > err ? e : err;
        dead += q[i] == 0;
    }
    for (int n = 0; n < B; ++n)
        for (int t = 0; t < Q; ++t)
            for (int o = 0; o < C_out; ++o) {
                const sbi_real *x = c + ((size_t)n * L_out + (size_t)t * P) * C_out + o;
                size_t k = ((size_t)n * Q + t) * C_out + o;
                int first = 0, constant = 1;
                for (int p = 1; p < P; ++p) ties += x[(size_t)p * C_out] == x[0];
                for (int p = 1; p < P; ++p) first = x[(size_t)p * C_out] > x[(size_t)first * C_out] ? p : first;
                for (int j = 0; j < K * C_in; ++j) constant &= w[(size_t)o * K * C_in + j] == 0;
                if ((int)arg[k] == first) continue;
                /* A different position: allowed only where the window's
                 * values tie to rounding and the sums round (never in a
                 * constant channel, whose values tie exactly). */
                ++moved;
                near += rounds && !constant &&
                        fabs((double)x[(size_t)arg[k] * C_out] - x[(size_t)first * C_out]) <= 1e-5 * scale;
            }
    for (int i = 0; i < B * Q * C_out; ++i) dq[i] = (sbi_real)sbi_rng_normal(&rng);
    if (exact && exact_form) {
        /* The reference chain routes the gradient (to the first maximum). */
        sbi_maxpool1d_backward(dr, dq, r, B, L_out, C_out, P);
        sbi_relu_backward(dc, dr, c, (size_t)B * L_out * C_out);
    } else {
        /* The pooled gradient goes to each window's maximum where the ReLU
         * passed it (near-ties may round either way in single precision). */
        for (int n = 0; n < B; ++n)
            for (int t = 0; t < Q; ++t)
                for (int o = 0; o < C_out; ++o) {
                    size_t k = ((size_t)n * Q + t) * C_out + o;
                    if (q[k] > 0) dc[((size_t)n * L_out + t * P + (int)arg[k]) * C_out + o] = dq[k];
                }
    }
    sbi_conv1d_backward_ref(dinp_r, dw_r, db_r, dc, inp, w, B, L, C_in, C_out, K);
    /* The backward in the same form: Winograd's transpose, or the sparse sums. */
    sbi_conv1d_pool_backward_form(dinp, dw, db, scratch, dq, q, arg, inp, w, B, L, C_in, C_out, K, P, form);
    for (int i = 0; i < B * L * C_in; ++i) derr = fmax(derr, fabs((double)dinp[i] - dinp_r[i]));
    for (int i = 0; i < C_out * K * C_in; ++i) derr = fmax(derr, fabs((double)dw[i] - dw_r[i]) / 10);
    for (int i = 0; i < C_out; ++i) derr = fmax(derr, fabs((double)db[i] - db_r[i]) / 10);
    printf("%-15s B=%2d L=%3d %2d -> %2d channels, kernel %d, pool %d%s: max |q - q_ref| %.2e (%.1e of the scale "
           "%.1f), gradients %.2e (%d tied pairs, %d ReLU-zero outputs, %d positions at near-ties)\n",
           sbi_conv1d_pool_form_name(ran), B, L, C_in, C_out, K, P, exact ? ", exact" : "", err, err / scale, scale,
           derr, ties, dead, near);
    SBI_ASSERT(err <= 2e-6 * scale);
    SBI_ASSERT_EQ_INT(moved, near);
    SBI_ASSERT(derr < 1e-4);
    if (exact) SBI_ASSERT((ties > 0 || P == 1) && dead > 0);
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
    free(r);
    free(dr);
    free(scratch);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    /* Each form where the build and shape allow it (else the one it falls
     * back to): the reference shape's length and more rows than a block,
     * lengths that are not multiples of Winograd's 4-position tile, pools
     * of 1, 2 and 4 (which fit the tile) and 3 (which does not), kernels
     * other than 5 and channel counts that do not fill a vector. */
    for (int form = SBI_CONV_GEMM; form <= SBI_CONV_WINOGRAD; ++form)
        for (int exact = 0; exact < 2; ++exact) {
            check(11, 118, 32, 64, 5, 2, exact, form);
            check(7, 114, 32, 64, 5, 2, exact, form);
            check(3, 31, 7, 16, 3, 2, exact, form);
            check(9, 40, 32, 48, 5, 3, exact, form);
            check(2, 29, 5, 20, 5, 2, exact, form);
            check(10, 37, 16, 24, 4, 2, exact, form);
            check(4, 30, 40, 32, 3, 2, exact, form);
            check(5, 33, 7, 16, 5, 2, exact, form);
            check(4, 46, 32, 32, 5, 1, exact, form);
            check(3, 27, 9, 48, 5, 4, exact, form);
            check(2, 12, 3, 16, 5, 2, exact, form);
        }
    status = SBI_TEST_REPORT("nn_conv1d_pool_ref");
    MPI_Finalize();
    return status;
}
