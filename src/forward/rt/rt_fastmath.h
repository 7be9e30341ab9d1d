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

/* log2 e in float: the kernels take exp(-x) as 2^-(x SBI__RT_LOG2E), with
 * the constant folded into a multiplier they form anyway (1 / mu). */
#define SBI__RT_LOG2E 1.44269504f

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
    const int32_t ni = (int32_t)(xc * SBI__RT_LOG2E - 0.5f);
    const float n = (float)ni;
    const float r = (xc - n * 0.693145752f) - n * 1.42860677e-6f;
    const float p =
        1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f + r * (0.0416666667f + r * (0.00833333333f + r * 0.00138888889f)))));
    scale.i = (ni + 127) * (1 << 23);
    return p * scale.f;
}

/* y >= 0 written as n - d, n the nearest integer, |d| <= 1/2, for
 * 2^-y = 2^-n 2^d: returns d and sets *shift = n << 23, the bits that
 * multiply a float by 2^-n when subtracted from its exponent.  y is first
 * clamped to 125.5 = 87 log2 e by one integer min on its bits (non-negative
 * floats order as their bits do; inf and NaN become 125.5).  Adding
 * 1.5 2^23 rounds y to n in the sum's low bits (no conversion
 * instructions), and n - y is exact (Sterbenz).  The only multiplies left
 * to the callers are the polynomial's. */
RT_INLINE float sbi__rt_reduce2_neg(float y, uint32_t *shift)
{
    union {
        uint32_t i;
        float f;
    } v, t;
    v.f = y;
    v.i = v.i < 0x42fb0000u ? v.i : 0x42fb0000u; /* 125.5f */
    t.f = v.f + 12582912.0f;                     /* 1.5 2^23 */
    *shift = t.i << 23;                          /* n < 2^9: the sum's other bits shift out */
    return (t.f - 12582912.0f) - v.f;
}

/* 2^-y for y >= 0 to 2.4e-7 relative, and 2^-125.5 = 1.7e-38 above 125.5:
 * sbi__rt_reduce2_neg and the degree-5 Chebyshev interpolant of 2^d on
 * [-1/2, 1/2], scaled by 2^-n on the exponent bits (n <= 126 and
 * 2^d >= 0.7 keep the result a normal float).  Callers fold log2 e into
 * their multiplier: exp(-tau / mu) = 2^-(tau (log2 e / mu)).  Its only
 * multiply-adds are the polynomial's five; a Cody-Waite reduction by ln 2
 * took three more, a scaling multiply and two conversions. */
RT_INLINE float sbi__rt_exp2_neg(float y)
{
    uint32_t shift;
    const float d = sbi__rt_reduce2_neg(y, &shift);
    union {
        uint32_t i;
        float f;
    } p;
    p.f = 1.000000119f + d * (0.6931471825f + d * (0.2402210683f + d * (0.05550356954f + d * (0.009676031768f +
                         d * 0.001339086331f))));
    p.i -= shift;
    return p.f;
}

/* exp(-x) for x >= 0 split as s + e, with s = 2^-n exact and
 * e = 2^-n d q(d) (sbi__rt_reduce2_neg's x log2 e = n - d, so inf and NaN
 * take n = 126), q the degree-5 Chebyshev interpolant of (2^d - 1) / d on
 * [-1/2, 1/2]: then 1 - exp(-x) = (1 - s) - e, where 1 - s is exact and,
 * for n = 0, -e = y q(-y) has no cancellation.  Returns e, sets *s. */
RT_INLINE float sbi__rt_exp_split(float x, float *s)
{
    uint32_t shift;
    const float d = sbi__rt_reduce2_neg(x * SBI__RT_LOG2E, &shift);
    const float q = 0.6931471825f + d * (0.2402265072f + d * (0.05550356954f + d * (0.009618083015f +
                    d * (0.001339086331f + d * 0.0001545316336f))));
    union {
        uint32_t i;
        float f;
    } p;
    p.i = 0x3f800000u - shift; /* 2^-n */
    *s = p.f;
    return p.f * (d * q);
}

/* The absorbed fraction 1 - exp(-x) for x >= 0, to 1.7e-7 relative also
 * for small x, in one expression from sbi__rt_exp_split.  (A series below
 * 1e-3 and 1 - exp above, selected, cost twice the operations and lost
 * 3e-5 just above the switch.) */
RT_INLINE float sbi__rt_absorbed(float x)
{
    float s;
    const float e = sbi__rt_exp_split(x, &s);
    return (1.0f - s) - e;
}

/* B_nu(T) in float from c1 = 2 h nu^3 / c^2 and x = h nu / k T:
 * c1 e^-x / (1 - e^-x), numerator and denominator from one
 * sbi__rt_exp_split (no cancellation at small x): 4e-7 + 1.2e-7 x
 * relative, the second term the rounding of x log2 e, as of x itself;
 * zero where x >= 87 (B below 1e-38 c1). */
RT_INLINE float sbi__rt_planck_f(float c1, float x)
{
    const float keep = (float)(x < 87.0f);
    float s;
    const float e = sbi__rt_exp_split(x, &s);
    return keep * c1 * (s + e) / ((1.0f - s) - e);
}

#endif
