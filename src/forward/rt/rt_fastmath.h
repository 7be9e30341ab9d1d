/* Exponentials of the radiative-transfer inner loops, written so that the
 * compiler vectorises them (glibc's expf is a call per element without
 * -ffast-math).  Private to src/forward/rt.  Arguments must be finite. */
#ifndef EXOSBI_RT_FASTMATH_H
#define EXOSBI_RT_FASTMATH_H

#include <math.h>
#include <stdint.h>

/* Forced inline: the hot kernels are built twice (target_clones), and GCC
 * does not inline a plain inline function built for the default target into
 * the x86-64-v3 clone, which then calls it once per element, unvectorised. */
#if defined(__GNUC__)
#define RT_INLINE static inline __attribute__((always_inline))
#else
#define RT_INLINE static inline
#endif

/* exp(x) for x <= 0, relative error below 3e-7; exp(x < -87) is taken as
 * exp(-87) = 1.6e-38, indistinguishable from 0 next to 1.  Range reduction
 * x = n ln2 + r, |r| <= ln2 / 2, and a degree-6 Taylor polynomial in r
 * (remainder r^7 / 5040 < 1.3e-7). */
RT_INLINE float sbi__rt_expf(float x)
{
    union {
        int32_t i;
        float f;
    } scale;
    /* Selects as arithmetic (x finite), which the vectoriser takes. */
    const float below = (float)(x < -87.0f);
    const float xc = below * -87.0f + (1.0f - below) * x;
    /* Round to nearest by truncation, as xc <= 0 (no floorf call). */
    const int32_t ni = (int32_t)(xc * 1.44269504f - 0.5f);
    const float n = (float)ni;
    const float r = (xc - n * 0.693145752f) - n * 1.42860677e-6f;
    const float p =
        1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f + r * (0.00833333333f + r * 0.00138888889f)))));
    scale.i = (ni + 127) * (1 << 23);
    return p * scale.f;
}

/* x >= 0 written as n ln 2 - r, |r| <= ln 2 / 2, for exp(-x) = 2^-n e^r:
 * returns r and sets *scale = 2^-n.  x is first clamped to 87 by one
 * integer min on its bits (non-negative floats order as their bits do; inf
 * and NaN become 87), and n rounds by truncation as x >= 0. */
RT_INLINE float sbi__rt_reduce_neg(float x, float *scale)
{
    union {
        int32_t i;
        float f;
    } v, s;
    v.f = x;
    v.i = v.i < 0x42ae0000 ? v.i : 0x42ae0000; /* 87.0f */
    {
        const int32_t ni = (int32_t)(v.f * 1.44269504f + 0.5f);
        const float n = (float)ni;
        s.i = (127 - ni) * (1 << 23);
        *scale = s.f;
        return (n * 0.693145752f - v.f) + n * 1.42860677e-6f;
    }
}

/* exp(-x) for x >= 0 to 2.4e-7 relative, and exp(-87) = 1.6e-38 above 87:
 * sbi__rt_reduce_neg and the degree-5 Chebyshev interpolant of e^r on
 * [-ln 2 / 2, ln 2 / 2] (1.0e-7 relative); fewer operations than
 * sbi__rt_expf, whose clamp is an arithmetic select. */
RT_INLINE float sbi__rt_exp_neg(float x)
{
    float scale;
    const float r = sbi__rt_reduce_neg(x, &scale);
    return scale * (1.000000119f + r * (1.0f + r * (0.4999887049f + r * (0.1666641533f + r * (0.04191752896f +
                    r * 0.008375128731f)))));
}

/* The absorbed fraction 1 - exp(-x) for x >= 0, to 1.2e-7 relative also
 * for small x, in one expression: with sbi__rt_reduce_neg's x = n ln 2 - r
 * (so inf and NaN give 1), exp(-x) = 2^-n (1 + r q(r)), q the degree-5
 * Chebyshev interpolant of (e^r - 1) / r (2.4e-8 relative), and
 *   1 - exp(-x) = (1 - 2^-n) - 2^-n r q(r),
 * where 1 - 2^-n is exact and, for n = 0, the rest is x q(-x) with no
 * cancellation.  (A series below 1e-3 and 1 - exp above, selected, cost
 * twice the operations and lost 3e-5 just above the switch.) */
RT_INLINE float sbi__rt_absorbed(float x)
{
    float scale;
    const float r = sbi__rt_reduce_neg(x, &scale);
    const float q = 1.0f + r * (0.5f + r * (0.1666650474f + r * (0.04166635126f + r * (0.008369150572f +
                    r * 0.001394111081f))));
    return (1.0f - scale) - scale * (r * q);
}

/* B_nu(T) in float from c1 = 2 h nu^3 / c^2 and x = h nu / k T:
 * c1 e^-x / (1 - e^-x), the denominator accurate for small x too; zero where
 * x > 87 (B below 1e-38 c1). */
RT_INLINE float sbi__rt_planck_f(float c1, float x)
{
    /* 1 - e^-x by a series below 1e-3, the exponential shared with the
     * numerator. */
    const float keep = (float)(x < 87.0f), e = sbi__rt_expf(-x);
    const float small = (float)(x < 1e-3f), xs = small * x + (1.0f - small) * 1e-3f;
    const float series = xs * (1.0f - xs * (0.5f - xs * 0.166666667f));
    return keep * c1 * e / (small * series + (1.0f - small) * (1.0f - e));
}

#endif
