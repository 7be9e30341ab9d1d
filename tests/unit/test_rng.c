/* Philox streams: the Random123 known-answer vector, independence of
 * (seed, index, purpose) streams, and the moments of the uniform and normal
 * draws against their exact values. */
#include <math.h>
#include <Random123/philox.h>

#include "exosbi/rng.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    {
        /* Random123 kat_vectors: philox4x32 10 rounds, counter and key all ones. */
        philox4x32_ctr_t ctr = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
        philox4x32_key_t key = {{0xffffffffu, 0xffffffffu}};
        philox4x32_ctr_t out = philox4x32_R(10, ctr, key);
        SBI_ASSERT_EQ_INT(out.v[0], 0x408f276dU);
        SBI_ASSERT_EQ_INT(out.v[1], 0x41c83b0eU);
        SBI_ASSERT_EQ_INT(out.v[2], 0xa20bc7c6U);
        SBI_ASSERT_EQ_INT(out.v[3], 0x6d5451fdU);
    }
    {
        sbi_rng a, b;
        int same = 0;
        sbi_rng_init(&a, 7, 1000, SBI_STREAM_PRIOR, 0);
        sbi_rng_init(&b, 7, 1000, SBI_STREAM_PRIOR, 0);
        for (int i = 0; i < 100; ++i) SBI_ASSERT(sbi_rng_u32(&a) == sbi_rng_u32(&b));
        sbi_rng_init(&a, 7, 1000, SBI_STREAM_PRIOR, 0);
        sbi_rng_init(&b, 7, 1000, SBI_STREAM_NOISE, 0);
        for (int i = 0; i < 100; ++i) same += sbi_rng_u32(&a) == sbi_rng_u32(&b);
        SBI_ASSERT(same < 3);
        sbi_rng_init(&a, 7, 1000, SBI_STREAM_PRIOR, 0);
        sbi_rng_init(&b, 7, 1001, SBI_STREAM_PRIOR, 0);
        same = 0;
        for (int i = 0; i < 100; ++i) same += sbi_rng_u32(&a) == sbi_rng_u32(&b);
        SBI_ASSERT(same < 3);
    }
    {
        const int n = 400000;
        double s1 = 0, s2 = 0, n1 = 0, n2 = 0, n4 = 0, mn = 1, mx = 0;
        sbi_rng r;
        int below[7] = {0};
        sbi_rng_init(&r, 42, 0, SBI_STREAM_SAMPLE, 0);
        for (int i = 0; i < n; ++i) {
            double u = sbi_rng_uniform(&r), z;
            s1 += u;
            s2 += u * u;
            mn = fmin(mn, u);
            mx = fmax(mx, u);
            z = sbi_rng_normal(&r);
            n1 += z;
            n2 += z * z;
            n4 += z * z * z * z;
            below[sbi_rng_below(&r, 7)]++;
        }
        /* Tolerances are 5 standard errors. */
        SBI_ASSERT_NEAR(s1 / n, 0.5, 0, 5 * sqrt(1.0 / 12 / n));
        SBI_ASSERT_NEAR(s2 / n, 1.0 / 3, 0, 5 * sqrt(4.0 / 45 / n));
        SBI_ASSERT(mn > 0 && mx < 1);
        SBI_ASSERT_NEAR(n1 / n, 0.0, 0, 5 / sqrt(n));
        SBI_ASSERT_NEAR(n2 / n, 1.0, 0, 5 * sqrt(2.0 / n));
        SBI_ASSERT_NEAR(n4 / n, 3.0, 0, 5 * sqrt(96.0 / n));
        for (int k = 0; k < 7; ++k) SBI_ASSERT_NEAR(below[k], n / 7.0, 0, 5 * sqrt(n / 7.0));
    }
    {
        int rc = SBI_TEST_REPORT("core_rng");
        MPI_Finalize();
        return rc;
    }
}
