/* The gemm linear layer against its naive reference (single precision), its
 * backward against plain loops in double (errors relative to the sum of the
 * terms' magnitudes, the scale of float round-off in a reduction), and the
 * layout's two-pass bookkeeping. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/nn.h"
#include "exosbi/rng.h"
#include "testutil.h"

static void fill(sbi_real *v, size_t n, uint64_t seed)
{
    sbi_rng r;
    sbi_rng_init(&r, seed, 0, SBI_STREAM_AUGMENT, 0);
    for (size_t i = 0; i < n; ++i) v[i] = (sbi_real)(2 * sbi_rng_uniform(&r) - 1);
}

static void check_shape(int B, int C_in, int C_out, int with_bias)
{
    sbi_real *inp = malloc(sizeof(sbi_real) * B * C_in), *w = malloc(sizeof(sbi_real) * C_out * C_in);
    sbi_real *b = malloc(sizeof(sbi_real) * C_out), *out = malloc(sizeof(sbi_real) * B * C_out);
    sbi_real *ref = malloc(sizeof(sbi_real) * B * C_out), *dout = malloc(sizeof(sbi_real) * B * C_out);
    sbi_real *dinp = calloc((size_t)B * C_in, sizeof(sbi_real)), *dw = calloc((size_t)C_out * C_in, sizeof(sbi_real));
    sbi_real *db = calloc(C_out, sizeof(sbi_real));
    double err = 0, gerr = 0;
    fill(inp, (size_t)B * C_in, 1);
    fill(w, (size_t)C_out * C_in, 2);
    fill(b, C_out, 3);
    fill(dout, (size_t)B * C_out, 4);
    sbi_linear_forward(out, inp, w, with_bias ? b : NULL, B, C_in, C_out);
    sbi_linear_forward_ref(ref, inp, w, with_bias ? b : NULL, B, C_in, C_out);
    for (int i = 0; i < B * C_out; ++i) err = fmax(err, fabs(out[i] - ref[i]) / (1 + fabs(ref[i])));
    /* Backward twice: the second call must add the same amount again. */
    for (int rep = 0; rep < 2; ++rep) sbi_linear_backward(dinp, dw, db, dout, inp, w, B, C_in, C_out);
    for (int r = 0; r < B; ++r)
        for (int i = 0; i < C_in; ++i) {
            double s = 0, sa = 0;
            for (int o = 0; o < C_out; ++o) {
                s += (double)dout[r * C_out + o] * w[o * C_in + i];
                sa += fabs((double)dout[r * C_out + o] * w[o * C_in + i]);
            }
            gerr = fmax(gerr, fabs(dinp[r * C_in + i] - 2 * s) / (1 + 2 * sa));
        }
    for (int o = 0; o < C_out; ++o) {
        double sb = 0, sba = 0;
        for (int r = 0; r < B; ++r) {
            sb += dout[r * C_out + o];
            sba += fabs(dout[r * C_out + o]);
        }
        gerr = fmax(gerr, fabs(db[o] - 2 * sb) / (1 + 2 * sba));
        for (int i = 0; i < C_in; ++i) {
            double s = 0, sa = 0;
            for (int r = 0; r < B; ++r) {
                s += (double)dout[r * C_out + o] * inp[r * C_in + i];
                sa += fabs((double)dout[r * C_out + o] * inp[r * C_in + i]);
            }
            gerr = fmax(gerr, fabs(dw[o * C_in + i] - 2 * s) / (1 + 2 * sa));
        }
    }
    printf("B=%3d C_in=%3d C_out=%3d bias=%d: forward max rel err %.2e, backward %.2e\n", B, C_in, C_out, with_bias,
           err, gerr);
    SBI_ASSERT(err < 1e-5);
    SBI_ASSERT(gerr < 1e-5);
    free(inp);
    free(w);
    free(b);
    free(out);
    free(ref);
    free(dout);
    free(dinp);
    free(dw);
    free(db);
}

/* Counting and binding passes, views, deterministic init, zeroing. */
static void check_layout(void)
{
    sbi_layout lay, lay2;
    sbi_real *w1, *dw1, *w2, *dw2, *a1, *da1, *a2, *da2;
    sbi_layout_init(&lay, 8);
    w1 = sbi_layout_weight(&lay, &dw1, 12, 4, SBI_INIT_UNIFORM, "w%d", 1);
    a1 = sbi_layout_act(&lay, &da1, 3);
    w2 = sbi_layout_weight(&lay, &dw2, 5, 4, SBI_INIT_ZERO, "b%d", 1);
    a2 = sbi_layout_act(&lay, &da2, 2);
    SBI_ASSERT(!w1 && !dw1 && !w2 && !a1 && !da1 && !a2);
    SBI_ASSERT_OK(sbi_layout_alloc(&lay));
    SBI_ASSERT_EQ_INT(lay.n_weights, 17);
    SBI_ASSERT_EQ_INT(lay.n_acts, 8 * 5);
    SBI_ASSERT_EQ_INT(lay.n_tensors, 2);
    w1 = sbi_layout_weight(&lay, &dw1, 12, 4, SBI_INIT_UNIFORM, "w%d", 1);
    a1 = sbi_layout_act(&lay, &da1, 3);
    w2 = sbi_layout_weight(&lay, &dw2, 5, 4, SBI_INIT_ZERO, "b%d", 1);
    a2 = sbi_layout_act(&lay, &da2, 2);
    SBI_ASSERT_OK(sbi_layout_finish(&lay));
    SBI_ASSERT(w1 == lay.weights && w2 == lay.weights + 12 && dw2 == lay.grads + 12);
    SBI_ASSERT(a1 == lay.acts && a2 == lay.acts + 24 && da2 == lay.dacts + 24);
    SBI_ASSERT(strcmp(lay.tensors[1].name, "b1") == 0 && lay.tensors[1].offset == 12);
    sbi_layout_init_weights(&lay, 5);
    for (int i = 0; i < 12; ++i) SBI_ASSERT(fabs(w1[i]) <= 0.5 && w1[i] != 0);
    for (int i = 0; i < 5; ++i) SBI_ASSERT(w2[i] == 0);
    for (size_t i = 0; i < lay.n_acts; ++i) lay.dacts[i] = 1;
    sbi_layout_zero_dacts(&lay, 2);
    SBI_ASSERT(da1[5] == 0 && da1[6] == 1 && da2[3] == 0 && da2[4] == 1);
    /* The same seed gives the same weights; another seed does not. */
    sbi_layout_init(&lay2, 1);
    sbi_layout_weight(&lay2, NULL, 12, 4, SBI_INIT_UNIFORM, "w");
    SBI_ASSERT_OK(sbi_layout_alloc(&lay2));
    sbi_layout_weight(&lay2, NULL, 12, 4, SBI_INIT_UNIFORM, "w");
    SBI_ASSERT_OK(sbi_layout_finish(&lay2));
    sbi_layout_init_weights(&lay2, 5);
    SBI_ASSERT(memcmp(lay2.weights, w1, 12 * sizeof(sbi_real)) == 0);
    sbi_layout_init_weights(&lay2, 6);
    SBI_ASSERT(memcmp(lay2.weights, w1, 12 * sizeof(sbi_real)) != 0);
    sbi_layout_free(&lay2);
    /* A binding pass that asks for something else is refused. */
    sbi_layout_free(&lay);
    sbi_layout_weight(&lay, NULL, 3, 1, SBI_INIT_ZERO, "w");
    SBI_ASSERT_OK(sbi_layout_alloc(&lay));
    SBI_ASSERT(sbi_layout_weight(&lay, NULL, 4, 1, SBI_INIT_ZERO, "w") == NULL);
    SBI_ASSERT_EQ_INT(sbi_layout_finish(&lay), SBI_ERR_INTERNAL);
    sbi_error_clear();
    sbi_layout_free(&lay);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_shape(1, 1, 1, 1);
    check_shape(7, 13, 5, 1);
    check_shape(256, 45, 64, 1);
    check_shape(33, 64, 10, 0);
    check_shape(3, 200, 130, 1);
    check_layout();
    status = SBI_TEST_REPORT("nn_linear");
    MPI_Finalize();
    return status;
}
