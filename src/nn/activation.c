/* Elementwise activations, forward/backward pairs over N scalars.
 *
 * Pre-activation signs are random, so a per-element branch mispredicts half
 * the time, and the compiler does not vectorise these loops at -O2.  The
 * single-precision build therefore runs ReLU and ELU a vector at a time
 * (8 lanes with AVX, else 4) with GCC/Clang vector types and its own exp (Cephes-style
 * polynomial, within 2 ulp of expf); the double-precision build keeps plain
 * libm loops, which the gradient checks differentiate.  Outputs never alias
 * inputs. */
#include <string.h>

#include "nn/nn_impl.h"

#ifndef SBI_REAL_DOUBLE
/* Eight lanes where the build has AVX, else four. */
#ifdef __AVX__
#define ACT_VEC_BYTES 32
#else
#define ACT_VEC_BYTES 16
#endif
enum { ACT_LANES = ACT_VEC_BYTES / sizeof(float) };
typedef float act_vec __attribute__((vector_size(ACT_VEC_BYTES)));
typedef int32_t act_ivec __attribute__((vector_size(ACT_VEC_BYTES)));

static inline act_vec av_load(const float *p)
{
    act_vec v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void av_store(float *p, act_vec v) { memcpy(p, &v, sizeof(v)); }

/* Lane-wise m ? a : b for a comparison mask m (all ones or all zeros). */
static inline act_vec av_select(act_ivec m, act_vec a, act_vec b)
{
    return (act_vec)(((act_ivec)a & m) | ((act_ivec)b & ~m));
}

/* exp(x) for x in [-87, 88] (clamped outside): 2^n * p(r), r = x - n ln 2. */
static inline act_vec av_exp(act_vec x)
{
    const act_vec zero = {0}, lo = zero - 87.0f, hi = zero + 88.0f;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    act_vec n, r, p;
    act_ivec e;
    x = av_select(x < lo, lo, x);
    x = av_select(x > hi, hi, x);
    n = (x * 1.44269504088896341f + magic) - magic;
    r = x - n * 0.693359375f - n * -2.12194440e-4f;
    p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    e = (__builtin_convertvector(n, act_ivec) + 127) << 23;
    return p * (act_vec)e;
}
#endif

void sbi_relu_forward(sbi_real *restrict out, const sbi_real *restrict inp, size_t N)
{
    size_t i = 0;
#ifndef SBI_REAL_DOUBLE
    const act_vec zero = {0};
    for (; i + ACT_LANES <= N; i += ACT_LANES) {
        act_vec x = av_load(inp + i);
        av_store(out + i, av_select(x > zero, x, zero));
    }
#endif
    for (; i < N; ++i) out[i] = inp[i] > 0 ? inp[i] : 0;
}

void sbi_relu_backward(sbi_real *restrict dinp, const sbi_real *restrict dout, const sbi_real *restrict inp, size_t N)
{
    size_t i = 0;
#ifndef SBI_REAL_DOUBLE
    const act_vec zero = {0};
    for (; i + ACT_LANES <= N; i += ACT_LANES) {
        act_vec g = av_load(dout + i);
        av_store(dinp + i, av_load(dinp + i) + av_select(av_load(inp + i) > zero, g, zero));
    }
#endif
    for (; i < N; ++i) dinp[i] += inp[i] > 0 ? dout[i] : 0;
}

void sbi_tanh_forward(sbi_real *restrict out, const sbi_real *restrict inp, size_t N)
{
    for (size_t i = 0; i < N; ++i) out[i] = sbi__tanh(inp[i]);
}

void sbi_tanh_backward(sbi_real *restrict dinp, const sbi_real *restrict dout, const sbi_real *restrict out, size_t N)
{
    for (size_t i = 0; i < N; ++i) dinp[i] += dout[i] * (1 - out[i] * out[i]);
}

void sbi_elu_forward(sbi_real *restrict out, const sbi_real *restrict inp, size_t N)
{
    size_t i = 0;
#ifndef SBI_REAL_DOUBLE
    const act_vec zero = {0}, one = zero + 1.0f;
    for (; i + ACT_LANES <= N; i += ACT_LANES) {
        act_vec x = av_load(inp + i);
        act_ivec pos = x > zero;
        av_store(out + i, av_select(pos, x, av_exp(av_select(pos, zero, x)) - one));
    }
#endif
    for (; i < N; ++i) out[i] = inp[i] > 0 ? inp[i] : sbi__exp(inp[i]) - 1;
}

/* The derivative is 1 above zero and exp(x) = out + 1 below, so nothing is
 * recomputed. */
void sbi_elu_backward(sbi_real *restrict dinp, const sbi_real *restrict dout, const sbi_real *restrict inp,
                      const sbi_real *restrict out, size_t N)
{
    size_t i = 0;
#ifndef SBI_REAL_DOUBLE
    const act_vec zero = {0}, one = zero + 1.0f;
    for (; i + ACT_LANES <= N; i += ACT_LANES) {
        act_vec y = av_load(out + i);
        act_vec d = av_select(av_load(inp + i) > zero, one, y + one);
        av_store(dinp + i, av_load(dinp + i) + av_load(dout + i) * d);
    }
#endif
    for (; i < N; ++i) dinp[i] += inp[i] > 0 ? dout[i] : dout[i] * (out[i] + 1);
}

void sbi_activation_forward(int act, sbi_real *out, const sbi_real *inp, size_t N)
{
    switch (act) {
    case SBI_ACT_RELU: sbi_relu_forward(out, inp, N); break;
    case SBI_ACT_TANH: sbi_tanh_forward(out, inp, N); break;
    default: sbi_elu_forward(out, inp, N); break;
    }
}

void sbi_activation_backward(int act, sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, const sbi_real *out,
                             size_t N)
{
    switch (act) {
    case SBI_ACT_RELU: sbi_relu_backward(dinp, dout, inp, N); break;
    case SBI_ACT_TANH: sbi_tanh_backward(dinp, dout, out, N); break;
    default: sbi_elu_backward(dinp, dout, inp, out, N); break;
    }
}

const char *sbi_activation_name(int act)
{
    switch (act) {
    case SBI_ACT_RELU: return "relu";
    case SBI_ACT_TANH: return "tanh";
    case SBI_ACT_ELU: return "elu";
    default: return NULL;
    }
}
