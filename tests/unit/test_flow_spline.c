/* The rational-quadratic spline's inverse in the production (single-
 * precision) build against its element-at-a-time oracle,
 * sbi__rqs_inverse_ref: random raw parameters (standard normal), values
 * spread over 1.2 times the bound so that both tails are hit, row counts
 * that are and are not multiples of the vector width, and a gathered subset
 * of the dims.  The recovered points must agree to 2e-5 of the bound, the
 * log-determinants to 2e-4, and the forward of the recovered points must
 * give the values back to 1e-4 of the bound. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/rng.h"
#include "flows/flows_impl.h"
#include "testutil.h"

enum { D = 5, N = 3, MAXB = 203 };

static void check(int K, int B, sbi_real bound)
{
    static const int idx[N] = {4, 0, 2};
    const int P = SBI__RQS_PARAMS(K), C = SBI__RQS_CACHE(K);
    sbi_real *p = malloc(sizeof(sbi_real) * MAXB * N * P), *cache = malloc(sizeof(sbi_real) * MAXB * N * C);
    sbi_real y[MAXB * D], x[MAXB * D], xr[MAXB * D], yr[MAXB * D], ld[MAXB] = {0}, ldr[MAXB] = {0}, ldf[MAXB] = {0};
    double xerr = 0, lerr = 0, rerr = 0;
    sbi_rng r;
    sbi_rng_init(&r, 7, (uint64_t)(K * 1000 + B), SBI_STREAM_INIT, 0);
    for (int k = 0; k < B * N * P; ++k) p[k] = (sbi_real)sbi_rng_normal(&r);
    for (int k = 0; k < B * D; ++k) y[k] = (sbi_real)(bound * (2.4 * sbi_rng_uniform(&r) - 1.2));
    memcpy(x, y, sizeof(y));
    memcpy(xr, y, sizeof(y));
    sbi__rqs_inverse(x, cache, ld, y, p, N * P, idx, N, K, bound, B, D);
    sbi__rqs_inverse_ref(xr, cache, ldr, y, p, N * P, idx, N, K, bound, B, D);
    memcpy(yr, x, sizeof(x));
    sbi__rqs_forward(yr, cache, ldf, x, p, N * P, idx, N, K, bound, B, D);
    for (int b = 0; b < B; ++b) {
        for (int i = 0; i < D; ++i) {
            double e = fabs((double)x[b * D + i] - xr[b * D + i]) / bound;
            double f = fabs((double)yr[b * D + i] - y[b * D + i]) / bound;
            xerr = e > xerr ? e : xerr;
            rerr = f > rerr ? f : rerr;
        }
        lerr = fabs((double)ld[b] - ldr[b]) > lerr ? fabs((double)ld[b] - ldr[b]) : lerr;
        SBI_ASSERT_NEAR(ld[b], ldf[b], 0, 1e-3);
    }
    printf("K=%2d B=%3d bound %.1f: max |x - x_ref| %.2e, |logdet - ref| %.2e, |forward(x) - y| %.2e\n", K, B,
           (double)bound, xerr, lerr, rerr);
    SBI_ASSERT(xerr < 2e-5);
    SBI_ASSERT(lerr < 2e-4);
    SBI_ASSERT(rerr < 1e-4);
    free(p);
    free(cache);
}

int main(int argc, char **argv)
{
    static const int bins[] = {2, 5, 10, 17}, rows[] = {1, 7, 8, 200, MAXB};
    int status;
    MPI_Init(&argc, &argv);
    for (size_t k = 0; k < sizeof(bins) / sizeof(bins[0]); ++k)
        for (size_t b = 0; b < sizeof(rows) / sizeof(rows[0]); ++b) check(bins[k], rows[b], k % 2 ? 3.0f : 5.0f);
    status = SBI_TEST_REPORT("flow_spline_inverse");
    MPI_Finalize();
    return status;
}
