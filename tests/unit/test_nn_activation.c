/* The single-precision activation kernels (vectorised, with their own exp)
 * against double-precision libm formulas, over lengths that exercise both
 * the four-lane body and the scalar tail, and over extreme inputs. */
#include <mpi.h>
#include <stdlib.h>

#include "exosbi/nn.h"
#include "exosbi/rng.h"
#include "testutil.h"

enum { N = 1031 };

static double ref_forward(int act, double x)
{
    switch (act) {
    case SBI_ACT_RELU: return x > 0 ? x : 0;
    case SBI_ACT_TANH: return tanh(x);
    default: return x > 0 ? x : expm1(x);
    }
}

static double ref_derivative(int act, double x)
{
    switch (act) {
    case SBI_ACT_RELU: return x > 0 ? 1 : 0;
    case SBI_ACT_TANH: return 1 - tanh(x) * tanh(x);
    default: return x > 0 ? 1 : exp(x);
    }
}

static void check(int act, int n)
{
    sbi_real *x = malloc(sizeof(sbi_real) * N), *y = malloc(sizeof(sbi_real) * N);
    sbi_real *g = malloc(sizeof(sbi_real) * N), *dx = malloc(sizeof(sbi_real) * N);
    double ferr = 0, berr = 0;
    sbi_rng r;
    sbi_rng_init(&r, 3, (uint64_t)n, SBI_STREAM_AUGMENT, 0);
    for (int i = 0; i < n; ++i) {
        x[i] = (sbi_real)(12 * sbi_rng_uniform(&r) - 8);
        g[i] = (sbi_real)(2 * sbi_rng_uniform(&r) - 1);
        dx[i] = 0.5f; /* backward accumulates onto this */
    }
    if (n > 6) {
        x[0] = -100.0f; /* exp underflows: ELU saturates at -1 */
        x[1] = 100.0f;
        x[2] = 0.0f;
        x[3] = -0.0f;
        x[4] = 1e-30f;
        x[5] = -1e-7f;
    }
    sbi_activation_forward(act, y, x, n);
    sbi_activation_backward(act, dx, g, x, y, n);
    for (int i = 0; i < n; ++i) {
        double fy = ref_forward(act, x[i]), gd = g[i] * ref_derivative(act, x[i]);
        /* Relative error for large values, absolute for small ones (exp(x) - 1
         * near 0 and 1 - tanh^2 near saturation cancel in float). */
        ferr = fmax(ferr, fabs(y[i] - fy) / (1 + fabs(fy)));
        berr = fmax(berr, fabs(dx[i] - (0.5 + gd)) / (0.5 + fabs(gd)));
    }
    printf("%-4s n=%4d: forward max rel err %.2e, backward %.2e\n", sbi_activation_name(act), n, ferr, berr);
    SBI_ASSERT(ferr < 1e-6);
    SBI_ASSERT(berr < 1e-6);
    free(x);
    free(y);
    free(g);
    free(dx);
}

int main(int argc, char **argv)
{
    static const int lengths[] = {1, 3, 4, 7, 64, N};
    int status;
    MPI_Init(&argc, &argv);
    for (int act = SBI_ACT_RELU; act <= SBI_ACT_ELU; ++act)
        for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); ++k) check(act, lengths[k]);
    status = SBI_TEST_REPORT("nn_activation");
    MPI_Finalize();
    return status;
}
