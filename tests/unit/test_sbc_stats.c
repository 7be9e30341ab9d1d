/* SBC statistics: central-interval coverage on hand-made samples, and a
 * calibrated "posterior" (samples from the distribution the truth is drawn
 * from) giving uniform ranks (chi-square test) and nominal coverage. */
#include <math.h>
#include <stdlib.h>

#include "exosbi/calibrate.h"
#include "exosbi/rng.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    {
        /* Samples 0..100 of one parameter: the central 50% interval is [25, 75]. */
        double samples[101], levels[2] = {0.5, 0.9}, truth;
        int cov[2];
        for (int i = 0; i < 101; ++i) samples[i] = 100 - i;
        truth = 24.9;
        sbi_sbc_coverage_from_samples(101, 1, samples, &truth, 2, levels, cov);
        SBI_ASSERT_EQ_INT(cov[0], 0);
        SBI_ASSERT_EQ_INT(cov[1], 1);
        truth = 25.0;
        sbi_sbc_coverage_from_samples(101, 1, samples, &truth, 2, levels, cov);
        SBI_ASSERT_EQ_INT(cov[0], 1);
        truth = 95.5;
        sbi_sbc_coverage_from_samples(101, 1, samples, &truth, 2, levels, cov);
        SBI_ASSERT_EQ_INT(cov[1], 0);
    }
    {
        /* Calibrated case: truth and N samples i.i.d. from N(0, 1). */
        const int cases = 4000, N = 99, bins = 20;
        double levels[3] = {0.5, 0.8, 0.95}, hits[3] = {0, 0, 0}, chi2 = 0.0;
        double *s = malloc(sizeof(double) * N);
        int hist[20] = {0};
        for (int c = 0; c < cases; ++c) {
            sbi_rng r;
            double truth;
            int rank = 0, cov[3];
            sbi_rng_init(&r, 12345, (uint64_t)c, SBI_STREAM_SAMPLE, 0);
            truth = sbi_rng_normal(&r);
            for (int i = 0; i < N; ++i) {
                s[i] = sbi_rng_normal(&r);
                rank += s[i] < truth;
            }
            hist[rank * bins / (N + 1)]++;
            sbi_sbc_coverage_from_samples(N, 1, s, &truth, 3, levels, cov);
            for (int l = 0; l < 3; ++l) hits[l] += cov[l];
        }
        for (int b = 0; b < bins; ++b) {
            double e = (double)cases / bins;
            chi2 += (hist[b] - e) * (hist[b] - e) / e;
        }
        /* 19 degrees of freedom: P(chi2 > 43.8) = 0.001. */
        printf("rank histogram chi-square %.2f (19 dof)\n", chi2);
        SBI_ASSERT(chi2 < 43.8);
        for (int l = 0; l < 3; ++l) {
            double c = hits[l] / cases, se = sqrt(levels[l] * (1 - levels[l]) / cases);
            /* With N = 99 draws the empirical interval's own coverage is slightly below nominal. */
            printf("coverage at %.2f: %.4f\n", levels[l], c);
            SBI_ASSERT(fabs(c - levels[l]) < 4 * se + 0.01);
        }
        free(s);
    }
    {
        int rc = SBI_TEST_REPORT("calibrate_sbc_stats");
        MPI_Finalize();
        return rc;
    }
}
