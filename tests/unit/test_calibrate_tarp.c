/* TARP: with exact posterior samples (truth and draws from the same
 * distribution) the expected coverage curve lies on the diagonal; with an
 * over-confident posterior (draws half as wide) it does not.
 *
 * Tolerance: with n cases the largest deviation of an empirical CDF from its
 * expectation exceeds 1.63 / sqrt(n) with probability 0.01 (Kolmogorov), and
 * f takes the N + 1 values k / N, which biases ECP by at most 1 / (N + 1).
 * With n = 4000 and N = 99 the bound is 0.026 + 0.010; the test allows 0.04. */
#include <math.h>
#include <stdlib.h>

#include "exosbi/calibrate.h"
#include "exosbi/rng.h"
#include "testutil.h"

#define D 3

/* TARP over `cases` synthetic cases whose draws have spread `width` (1: exact). */
static double tarp_distance(int cases, int N, double width, uint64_t seed)
{
    double *f = malloc(sizeof(double) * cases), *s = malloc(sizeof(double) * N * D);
    double alpha[101], ecp[101], dist;
    for (int c = 0; c < cases; ++c) {
        sbi_rng r;
        double truth[D], ref[D], mu[D];
        sbi_rng_init(&r, seed, (uint64_t)c, SBI_STREAM_SAMPLE, 0);
        /* A posterior N(mu, 1) and a truth drawn from it. */
        for (int j = 0; j < D; ++j) {
            mu[j] = 2.0 * sbi_rng_normal(&r);
            truth[j] = mu[j] + sbi_rng_normal(&r);
            ref[j] = 2.0 * (2.0 * sbi_rng_uniform(&r) - 1.0);
        }
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < D; ++j) s[i * D + j] = mu[j] + width * sbi_rng_normal(&r);
        f[c] = sbi_tarp_fraction(N, D, s, truth, ref);
    }
    dist = sbi_tarp_ecp(cases, f, 101, alpha, ecp);
    free(f);
    free(s);
    return dist;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    {
        /* Hand-computed: draws at distances 1, 2, 3, 4 from the reference, truth at distance 2.5. */
        double s[4][2] = {{1, 0}, {0, 2}, {-3, 0}, {0, -4}}, truth[2] = {2.5, 0}, ref[2] = {0, 0};
        double f[4] = {0.0, 0.25, 0.5, 1.0}, alpha[5], ecp[5], dist;
        SBI_ASSERT_NEAR(sbi_tarp_fraction(4, 2, &s[0][0], truth, ref), 0.5, 0, 1e-15);
        /* alpha = 0, .25, .5, .75, 1: f < alpha counts 0, 1, 2, 3, 3 of 4. */
        dist = sbi_tarp_ecp(4, f, 5, alpha, ecp);
        SBI_ASSERT_NEAR(alpha[1], 0.25, 0, 1e-15);
        SBI_ASSERT_NEAR(ecp[0], 0.0, 0, 1e-15);
        SBI_ASSERT_NEAR(ecp[1], 0.25, 0, 1e-15);
        SBI_ASSERT_NEAR(ecp[3], 0.75, 0, 1e-15);
        SBI_ASSERT_NEAR(ecp[4], 0.75, 0, 1e-15);
        SBI_ASSERT_NEAR(dist, 0.25, 0, 1e-15);
    }
    {
        double exact = tarp_distance(4000, 99, 1.0, 99), narrow = tarp_distance(4000, 99, 0.5, 99);
        double wide = tarp_distance(4000, 99, 2.0, 99);
        printf("TARP max |ECP - alpha|: exact %.4f, over-confident %.4f, under-confident %.4f\n", exact, narrow,
               wide);
        SBI_ASSERT(exact < 0.04);
        SBI_ASSERT(narrow > 0.15);
        SBI_ASSERT(wide > 0.15);
    }
    {
        int rc = SBI_TEST_REPORT("calibrate_tarp");
        MPI_Finalize();
        return rc;
    }
}
