/* The ensemble CRPS: hand-computed values, and a large Gaussian ensemble
 * against the closed form CRPS(N(mu, s^2), x) = s [z (2 Phi(z) - 1) + 2 phi(z)
 * - 1/sqrt(pi)], z = (x - mu) / s.  The ensemble estimate has a bias of
 * E|Y - Y'| / (2M) = s / (sqrt(pi) M) and a standard error below s / sqrt(M);
 * with M = 200000 the test allows 5 s / sqrt(M) = 0.011 s. */
#include <math.h>
#include <stdlib.h>

#include "exosbi/calibrate.h"
#include "exosbi/rng.h"
#include "exosbi/task.h"
#include "testutil.h"

static double crps_gaussian(double mu, double s, double x)
{
    double z = (x - mu) / s, phi = exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
    return s * (z * (2.0 * sbi_normal_cdf(z) - 1.0) + 2.0 * phi - 1.0 / sqrt(M_PI));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    {
        /* One member: |y - x|.  Two members {0, 2} at x = 1: (1 + 1)/2 - (2 + 2)/(2 * 4) = 0.5. */
        double one[1] = {3.0}, two[2] = {2.0, 0.0};
        SBI_ASSERT_NEAR(sbi_crps_ensemble(1, one, 1.0), 2.0, 0, 1e-15);
        SBI_ASSERT_NEAR(sbi_crps_ensemble(2, two, 1.0), 0.5, 0, 1e-15);
    }
    {
        const int M = 200000;
        const double mu = 1.5, s = 0.7, xs[4] = {1.5, 0.2, 2.9, 5.0};
        double *y = malloc(sizeof(double) * M);
        for (int t = 0; t < 4; ++t) {
            sbi_rng r;
            double got, want;
            sbi_rng_init(&r, 2024, (uint64_t)t, SBI_STREAM_SAMPLE, 0);
            for (int i = 0; i < M; ++i) y[i] = mu + s * sbi_rng_normal(&r);
            got = sbi_crps_ensemble(M, y, xs[t]);
            want = crps_gaussian(mu, s, xs[t]);
            printf("x = %.2f: ensemble CRPS %.6f, closed form %.6f\n", xs[t], got, want);
            SBI_ASSERT_NEAR(got, want, 0, 5.0 * s / sqrt((double)M));
        }
        free(y);
    }
    {
        int rc = SBI_TEST_REPORT("calibrate_crps");
        MPI_Finalize();
        return rc;
    }
}
