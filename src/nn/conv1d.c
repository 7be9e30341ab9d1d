/* 1-D convolution (im2col + one gemm, with the direct loop nest as its
 * oracle), max pooling, the fused convolution + bias + ReLU + max-pool
 * kernels, and the convolutional sequence encoder built on them.
 *
 * Both convolution forms were timed on the second convolution of the
 * reference encoder (233 values, 1 -> 32 -> 64 channels, kernel 5, 200 rows;
 * bench_train_reference): the gemm form is about 25 times faster than the
 * direct loops.  The encoder runs the fused kernels (the gemm form in blocks
 * of rows for several input channels, direct vector loops for one input
 * channel, where a gemm over K = 5 is all overhead); the unfused kernels and
 * the direct loops stay as their test oracle.  In the single-precision
 * AVX2 build the fused kernels of several input channels replace the
 * forward gemm and the input-gradient gemm + col2im by a register-blocked
 * direct kernel (conv_direct below); the weight gradient stays one gemm
 * per block. */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <string.h>

#include "nn/nn_impl.h"

/* cols (B, L_out, K C_in): row (b, l) is the contiguous run inp[b, l .. l + K). */
static void im2col(sbi_real *cols, const sbi_real *inp, int B, int L, int C_in, int K)
{
    int L_out = L - K + 1;
    size_t run = (size_t)K * C_in;
    for (int b = 0; b < B; ++b) {
        const sbi_real *xb = inp + (size_t)b * L * C_in;
        sbi_real *cb = cols + (size_t)b * L_out * run;
        for (int l = 0; l < L_out; ++l) memcpy(cb + (size_t)l * run, xb + (size_t)l * C_in, run * sizeof(*cb));
    }
}

/* dinp (B, L, C_in) += the rows of dcols (B, L_out, K C_in) added back onto
 * the runs they were copied from. */
static void col2im(sbi_real *dinp, const sbi_real *dcols, int B, int L, int C_in, int K)
{
    int L_out = L - K + 1, KC = K * C_in;
    for (int n = 0; n < B; ++n) {
        sbi_real *xb = dinp + (size_t)n * L * C_in;
        const sbi_real *cb = dcols + (size_t)n * L_out * KC;
        for (int l = 0; l < L_out; ++l) {
            sbi_real *dst = xb + (size_t)l * C_in;
            const sbi_real *src = cb + (size_t)l * KC;
            for (int j = 0; j < KC; ++j) dst[j] += src[j];
        }
    }
}

void sbi_conv1d_forward(sbi_real *out, sbi_real *cols, const sbi_real *inp, const sbi_real *w, const sbi_real *b,
                        int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1, M = B * L_out, KC = K * C_in;
    if (B <= 0 || L_out <= 0) return;
    im2col(cols, inp, B, L, C_in, K);
    for (int r = 0; r < M; ++r) memcpy(out + (size_t)r * C_out, b, (size_t)C_out * sizeof(*out));
    /* out (M, C_out) += cols (M, K C_in) @ w^T (K C_in, C_out) */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, C_out, KC, 1, cols, KC, w, KC, 1, out, C_out);
}

void sbi_conv1d_forward_ref(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int L,
                            int C_in, int C_out, int K)
{
    int L_out = L - K + 1;
    for (int n = 0; n < B; ++n)
        for (int l = 0; l < L_out; ++l)
            for (int o = 0; o < C_out; ++o) {
                double acc = b[o];
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < C_in; ++i)
                        acc += (double)w[((size_t)o * K + k) * C_in + i] * inp[((size_t)n * L + l + k) * C_in + i];
                out[((size_t)n * L_out + l) * C_out + o] = (sbi_real)acc;
            }
}

void sbi_conv1d_backward(sbi_real *dinp, sbi_real *dcols, sbi_real *dw, sbi_real *db, const sbi_real *dout,
                         const sbi_real *cols, const sbi_real *w, int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1, M = B * L_out, KC = K * C_in;
    if (B <= 0 || L_out <= 0) return;
    if (db) {
        for (int r = 0; r < M; ++r) {
            const sbi_real *g = dout + (size_t)r * C_out;
            for (int o = 0; o < C_out; ++o) db[o] += g[o];
        }
    }
    /* dw (C_out, K C_in) += dout^T (C_out, M) @ cols (M, K C_in) */
    sbi__gemm(CblasRowMajor, CblasTrans, CblasNoTrans, C_out, KC, M, 1, dout, C_out, cols, KC, 1, dw, KC);
    if (!dinp) return;
    /* dcols (M, K C_in) = dout (M, C_out) @ w (C_out, K C_in), then col2im. */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, KC, C_out, 1, dout, C_out, w, KC, 0, dcols, KC);
    col2im(dinp, dcols, B, L, C_in, K);
}

void sbi_conv1d_backward_ref(sbi_real *dinp, sbi_real *dw, sbi_real *db, const sbi_real *dout, const sbi_real *inp,
                             const sbi_real *w, int B, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1;
    for (int n = 0; n < B; ++n)
        for (int l = 0; l < L_out; ++l)
            for (int o = 0; o < C_out; ++o) {
                sbi_real g = dout[((size_t)n * L_out + l) * C_out + o];
                if (db) db[o] += g;
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < C_in; ++i) {
                        size_t xi = ((size_t)n * L + l + k) * C_in + i, wi = ((size_t)o * K + k) * C_in + i;
                        dw[wi] += g * inp[xi];
                        if (dinp) dinp[xi] += g * w[wi];
                    }
            }
}

void sbi_maxpool1d_forward(sbi_real *out, const sbi_real *inp, int B, int L, int C, int P)
{
    int Q = L / P;
    for (int n = 0; n < B; ++n)
        for (int q = 0; q < Q; ++q) {
            const sbi_real *x = inp + ((size_t)n * L + (size_t)q * P) * C;
            sbi_real *y = out + ((size_t)n * Q + q) * C;
            memcpy(y, x, (size_t)C * sizeof(*y));
            for (int p = 1; p < P; ++p)
                for (int c = 0; c < C; ++c) y[c] = x[(size_t)p * C + c] > y[c] ? x[(size_t)p * C + c] : y[c];
        }
}

void sbi_maxpool1d_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, int B, int L, int C, int P)
{
    int Q = L / P;
    for (int n = 0; n < B; ++n)
        for (int q = 0; q < Q; ++q) {
            const sbi_real *x = inp + ((size_t)n * L + (size_t)q * P) * C;
            const sbi_real *g = dout + ((size_t)n * Q + q) * C;
            sbi_real *dx = dinp + ((size_t)n * L + (size_t)q * P) * C;
            for (int c = 0; c < C; ++c) {
                int arg = 0;
                for (int p = 1; p < P; ++p)
                    if (x[(size_t)p * C + c] > x[(size_t)arg * C + c]) arg = p;
                dx[(size_t)arg * C + c] += g[c];
            }
        }
}

/* ---- fused convolution, ReLU and max pooling ------------------------------ */

/* Output channels per block: one vector register (AVX where the build has it,
 * else 16 bytes).  The kernels below use GCC/Clang vector types (as
 * activation.c does), which both precisions accept; lanes past C_out are
 * padded with zeros and never stored. */
#ifdef __AVX__
#define CONV_VEC_BYTES 32
#else
#define CONV_VEC_BYTES 16
#endif
enum { CONV_LANES = CONV_VEC_BYTES / sizeof(sbi_real) };
typedef sbi_real conv_vec __attribute__((vector_size(CONV_VEC_BYTES)));
typedef __typeof__((conv_vec){0} > (conv_vec){0}) conv_mask;

static inline conv_vec vec_load(const sbi_real *p, int nl)
{
    conv_vec v = {0};
    if (nl == CONV_LANES)
        memcpy(&v, p, sizeof(v));
    else
        for (int j = 0; j < nl; ++j) v[j] = p[j];
    return v;
}

static inline void vec_store(sbi_real *p, conv_vec v, int nl)
{
    if (nl == CONV_LANES)
        memcpy(p, &v, sizeof(v));
    else
        for (int j = 0; j < nl; ++j) p[j] = v[j];
}

/* Lane-wise m ? a : b for a comparison mask m. */
static inline conv_vec vec_select(conv_mask m, conv_vec a, conv_vec b)
{
    return (conv_vec)(((conv_mask)a & m) | ((conv_mask)b & ~m));
}

void sbi_conv1d_pool_1ch_forward(sbi_real *q, sbi_real *arg, const sbi_real *inp, const sbi_real *w,
                                 const sbi_real *b, int B, int L, int C_out, int K, int P)
{
    int Q = (L - K + 1) / P;
    const conv_vec zero = {0};
    conv_vec wv[SBI_CONV_MAX_KERNEL];
    for (int o0 = 0; o0 < C_out; o0 += CONV_LANES) {
        int nl = C_out - o0 < CONV_LANES ? C_out - o0 : CONV_LANES;
        conv_vec bv = vec_load(b + o0, nl);
        /* wv[k]: tap k of the block's channels. */
        for (int k = 0; k < K; ++k) {
            wv[k] = zero;
            for (int j = 0; j < nl; ++j) wv[k][j] = w[(size_t)(o0 + j) * K + k];
        }
        for (int n = 0; n < B; ++n) {
            const sbi_real *x = inp + (size_t)n * L;
            for (int t = 0; t < Q; ++t) {
                conv_vec best = zero, barg = zero;
                size_t o = ((size_t)n * Q + t) * C_out + o0;
                for (int p = 0; p < P; ++p) {
                    const sbi_real *xl = x + (size_t)t * P + p;
                    conv_vec acc = bv;
                    for (int k = 0; k < K; ++k) acc += wv[k] * xl[k];
                    if (p == 0) {
                        best = acc;
                    } else {
                        conv_mask m = acc > best;
                        best = vec_select(m, acc, best);
                        barg = vec_select(m, zero + (sbi_real)p, barg);
                    }
                }
                vec_store(q + o, vec_select(best > zero, best, zero), nl);
                vec_store(arg + o, barg, nl);
            }
        }
    }
}

void sbi_conv1d_pool_1ch_backward(sbi_real *dw, sbi_real *db, const sbi_real *dq, const sbi_real *q,
                                  const sbi_real *arg, const sbi_real *inp, int B, int L, int C_out, int K, int P)
{
    int Q = (L - K + 1) / P;
    const conv_vec zero = {0};
    conv_vec gw[SBI_CONV_MAX_KERNEL];
    for (int o0 = 0; o0 < C_out; o0 += CONV_LANES) {
        int nl = C_out - o0 < CONV_LANES ? C_out - o0 : CONV_LANES;
        conv_vec gb = zero;
        for (int k = 0; k < K; ++k) gw[k] = zero;
        for (int n = 0; n < B; ++n) {
            const sbi_real *x = inp + (size_t)n * L;
            for (int t = 0; t < Q; ++t) {
                size_t o = ((size_t)n * Q + t) * C_out + o0;
                /* The ReLU passes the gradient where the pooled value is positive. */
                conv_vec g = vec_select(vec_load(q + o, nl) > zero, vec_load(dq + o, nl), zero);
                conv_vec a = vec_load(arg + o, nl);
                gb += g;
                for (int p = 0; p < P; ++p) {
                    const sbi_real *xl = x + (size_t)t * P + p;
                    conv_vec gp = vec_select(a == zero + (sbi_real)p, g, zero);
                    for (int k = 0; k < K; ++k) gw[k] += gp * xl[k];
                }
            }
        }
        for (int j = 0; j < nl; ++j) {
            db[o0 + j] += gb[j];
            for (int k = 0; k < K; ++k) dw[(size_t)(o0 + j) * K + k] += gw[k][j];
        }
    }
}

/* q, arg (B, Q, C) from the pre-activations c (B, L, C) plus the bias b. */
static void bias_relu_pool(sbi_real *q, sbi_real *arg, const sbi_real *c, const sbi_real *b, int B, int L, int C,
                           int P)
{
    int Q = L / P;
    const conv_vec zero = {0};
    for (int n = 0; n < B; ++n)
        for (int t = 0; t < Q; ++t) {
            const sbi_real *x = c + ((size_t)n * L + (size_t)t * P) * C;
            sbi_real *y = q + ((size_t)n * Q + t) * C, *a = arg + ((size_t)n * Q + t) * C;
            for (int o0 = 0; o0 < C; o0 += CONV_LANES) {
                int nl = C - o0 < CONV_LANES ? C - o0 : CONV_LANES;
                conv_vec best = vec_load(x + o0, nl), barg = zero;
                for (int p = 1; p < P; ++p) {
                    conv_vec v = vec_load(x + (size_t)p * C + o0, nl);
                    conv_mask m = v > best;
                    best = vec_select(m, v, best);
                    barg = vec_select(m, zero + (sbi_real)p, barg);
                }
                best += vec_load(b + o0, nl);
                vec_store(y + o0, vec_select(best > zero, best, zero), nl);
                vec_store(a + o0, barg, nl);
            }
        }
}

/* dc (B, L, C): the pooled gradient dq (B, Q, C) routed to each window's
 * maximum where the ReLU passed it, zero elsewhere; db += its column sums. */
static void relu_pool_scatter(sbi_real *dc, sbi_real *db, const sbi_real *dq, const sbi_real *q, const sbi_real *arg,
                              int B, int L, int C, int P)
{
    int Q = L / P;
    const conv_vec zero = {0};
    for (int n = 0; n < B; ++n) {
        sbi_real *dcn = dc + (size_t)n * L * C;
        for (int t = 0; t < Q; ++t) {
            size_t o = ((size_t)n * Q + t) * C;
            for (int o0 = 0; o0 < C; o0 += CONV_LANES) {
                int nl = C - o0 < CONV_LANES ? C - o0 : CONV_LANES;
                conv_vec g = vec_select(vec_load(q + o + o0, nl) > zero, vec_load(dq + o + o0, nl), zero);
                conv_vec a = vec_load(arg + o + o0, nl);
                vec_store(db + o0, vec_load(db + o0, nl) + g, nl);
                for (int p = 0; p < P; ++p)
                    vec_store(dcn + ((size_t)t * P + p) * C + o0, vec_select(a == zero + (sbi_real)p, g, zero), nl);
            }
        }
        memset(dcn + (size_t)Q * P * C, 0, (size_t)(L - Q * P) * C * sizeof(*dc));
    }
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(SBI_REAL_DOUBLE)
/* The direct convolution of the single-precision build, for C_out a
 * multiple of 16: c (nb, L_out, C_out) from inp (nb, L, C_in) and the
 * transposed weights wt (K C_in, C_out).  Each tile keeps 6 output positions
 * x 16 channels in twelve ymm accumulators; per tap and input channel it
 * loads two weight vectors and broadcasts six inputs.  It reads the input
 * where im2col + gemm reads (and the gemm packs) a K times larger copy; on
 * the reference encoder's conv1 it takes about two thirds of the gemm's time. */
enum { CONV_TILE = 6 };

static void conv_direct_tile(float *c, const float *x, const float *wt, int np, int C_in, int C_out, int K)
{
    if (np == CONV_TILE) {
        /* Named accumulators: GCC keeps them in registers, an array it spills. */
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        for (int k = 0; k < K; ++k) {
            const float *xr = x + (size_t)k * C_in, *wr = wt + (size_t)k * C_in * C_out;
            for (int i = 0; i < C_in; ++i) {
                __m256 w0 = _mm256_loadu_ps(wr + (size_t)i * C_out), w1 = _mm256_loadu_ps(wr + (size_t)i * C_out + 8);
                __m256 xv;
#define CONV_FMA(p)                                               \
    xv = _mm256_broadcast_ss(xr + (size_t)(p) * C_in + i);        \
    a##p##0 = _mm256_fmadd_ps(w0, xv, a##p##0);                   \
    a##p##1 = _mm256_fmadd_ps(w1, xv, a##p##1);
                CONV_FMA(0) CONV_FMA(1) CONV_FMA(2) CONV_FMA(3) CONV_FMA(4) CONV_FMA(5)
#undef CONV_FMA
            }
        }
#define CONV_STORE(p)                                             \
    _mm256_storeu_ps(c + (size_t)(p) * C_out, a##p##0);           \
    _mm256_storeu_ps(c + (size_t)(p) * C_out + 8, a##p##1);
        CONV_STORE(0) CONV_STORE(1) CONV_STORE(2) CONV_STORE(3) CONV_STORE(4) CONV_STORE(5)
#undef CONV_STORE
        return;
    }
    for (int p = 0; p < np; ++p) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int k = 0; k < K; ++k) {
            const float *xr = x + (size_t)(k + p) * C_in, *wr = wt + (size_t)k * C_in * C_out;
            for (int i = 0; i < C_in; ++i) {
                __m256 xv = _mm256_broadcast_ss(xr + i);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + (size_t)i * C_out), xv, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + (size_t)i * C_out + 8), xv, a1);
            }
        }
        _mm256_storeu_ps(c + (size_t)p * C_out, a0);
        _mm256_storeu_ps(c + (size_t)p * C_out + 8, a1);
    }
}

static void conv_direct(float *c, const float *inp, const float *wt, int nb, int L, int C_in, int C_out, int K)
{
    int L_out = L - K + 1;
    for (int n = 0; n < nb; ++n)
        for (int l0 = 0; l0 < L_out; l0 += CONV_TILE)
            for (int o0 = 0; o0 < C_out; o0 += 16)
                conv_direct_tile(c + ((size_t)n * L_out + l0) * C_out + o0, inp + ((size_t)n * L + l0) * C_in,
                                 wt + o0, L_out - l0 < CONV_TILE ? L_out - l0 : CONV_TILE, C_in, C_out, K);
}
#define CONV_DIRECT 1
#else
#define CONV_DIRECT 0
#endif

void sbi_conv1d_pool_forward(sbi_real *q, sbi_real *arg, sbi_real *cols, sbi_real *scratch, const sbi_real *inp,
                             const sbi_real *w, const sbi_real *b, int B, int L, int C_in, int C_out, int K, int P)
{
    int L_out = L - K + 1, Q = L_out / P, KC = K * C_in;
    int direct = CONV_DIRECT && C_out % 16 == 0;
    sbi_real *wt = scratch + (size_t)SBI_CONV_BLOCK_ROWS * L_out * C_out; /* (K C_in, C_out) */
    if (direct)
        for (int o = 0; o < C_out; ++o)
            for (int j = 0; j < KC; ++j) wt[(size_t)j * C_out + o] = w[(size_t)o * KC + j];
    for (int n0 = 0; n0 < B; n0 += SBI_CONV_BLOCK_ROWS) {
        int nb = B - n0 < SBI_CONV_BLOCK_ROWS ? B - n0 : SBI_CONV_BLOCK_ROWS;
        sbi_real *cb = cols + (size_t)n0 * L_out * KC;
        im2col(cb, inp + (size_t)n0 * L * C_in, nb, L, C_in, K);
#if CONV_DIRECT
        if (direct)
            conv_direct(scratch, inp + (size_t)n0 * L * C_in, wt, nb, L, C_in, C_out, K);
        else
#endif
            /* scratch (nb L_out, C_out) = cols (nb L_out, K C_in) @ w^T */
            sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb * L_out, C_out, KC, 1, cb, KC, w, KC, 0, scratch,
                      C_out);
        bias_relu_pool(q + (size_t)n0 * Q * C_out, arg + (size_t)n0 * Q * C_out, scratch, b, nb, L_out, C_out, P);
    }
}

size_t sbi_conv1d_pool_scratch(int L, int C_in, int C_out, int K)
{
    size_t L_out = (size_t)(L - K + 1), rows = SBI_CONV_BLOCK_ROWS * L_out, wsize = (size_t)K * C_in * C_out;
    size_t cols = rows * K * C_in, padded = (size_t)SBI_CONV_BLOCK_ROWS * (L + K - 1) * C_out + wsize;
    size_t rest = cols > wsize ? cols : wsize;
    return rows * C_out + (rest > padded ? rest : padded);
}

void sbi_conv1d_pool_backward(sbi_real *dinp, sbi_real *dw, sbi_real *db, sbi_real *scratch, const sbi_real *dq,
                              const sbi_real *q, const sbi_real *arg, const sbi_real *cols, const sbi_real *w, int B,
                              int L, int C_in, int C_out, int K, int P)
{
    int L_out = L - K + 1, Q = L_out / P, KC = K * C_in, Lp = L + K - 1;
    int direct = CONV_DIRECT && C_in % 16 == 0 && dinp;
    sbi_real *dc = scratch;                                                  /* (nb, L_out, C_out) */
    sbi_real *dcols = scratch + (size_t)SBI_CONV_BLOCK_ROWS * L_out * C_out; /* (nb, L_out, K C_in) */
    /* The direct form reuses the dcols region: dcp (nb, L + K - 1, C_out) is
     * dc with K - 1 zero rows on both sides of every batch row, wf (K C_out,
     * C_in) the taps reversed, so dinp = conv(dcp, wf) of length L. */
#if CONV_DIRECT
    sbi_real *dcp = dcols, *wf = dcols + (size_t)SBI_CONV_BLOCK_ROWS * Lp * C_out;
    if (direct)
        for (int k = 0; k < K; ++k)
            for (int o = 0; o < C_out; ++o)
                memcpy(wf + ((size_t)k * C_out + o) * C_in, w + ((size_t)o * K + K - 1 - k) * C_in,
                       (size_t)C_in * sizeof(*wf));
#else
    (void)Lp;
    (void)direct;
#endif
    for (int n0 = 0; n0 < B; n0 += SBI_CONV_BLOCK_ROWS) {
        int nb = B - n0 < SBI_CONV_BLOCK_ROWS ? B - n0 : SBI_CONV_BLOCK_ROWS;
        const sbi_real *cb = cols + (size_t)n0 * L_out * KC;
        relu_pool_scatter(dc, db, dq + (size_t)n0 * Q * C_out, q + (size_t)n0 * Q * C_out,
                          arg + (size_t)n0 * Q * C_out, nb, L_out, C_out, P);
        /* dw (C_out, K C_in) += dc^T @ cols;  dcols = dc @ w, then col2im. */
        sbi__gemm(CblasRowMajor, CblasTrans, CblasNoTrans, C_out, KC, nb * L_out, 1, dc, C_out, cb, KC, 1, dw, KC);
        if (!dinp) continue;
#if CONV_DIRECT
        if (direct) {
            size_t pad = (size_t)(K - 1) * C_out;
            for (int n = 0; n < nb; ++n) {
                sbi_real *dn = dcp + (size_t)n * Lp * C_out;
                memset(dn, 0, pad * sizeof(*dn));
                memcpy(dn + pad, dc + (size_t)n * L_out * C_out, (size_t)L_out * C_out * sizeof(*dn));
                memset(dn + pad + (size_t)L_out * C_out, 0, pad * sizeof(*dn));
            }
            conv_direct(dinp + (size_t)n0 * L * C_in, dcp, wf, nb, Lp, C_out, C_in, K);
            continue;
        }
#endif
        sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb * L_out, KC, C_out, 1, dc, C_out, w, KC, 0, dcols,
                  KC);
        memset(dinp + (size_t)n0 * L * C_in, 0, (size_t)nb * L * C_in * sizeof(*dinp));
        col2im(dinp + (size_t)n0 * L * C_in, dcols, nb, L, C_in, K);
    }
}

int sbi_conv_encoder_min_length(int K, int P)
{
    /* The second pooling needs one window: L2 >= P, Q1 = L2 + K - 1, L1 >= P Q1. */
    return P * (P + K - 1) + K - 1;
}

int sbi_conv_encoder_layout(sbi_conv_encoder *c, sbi_layout *lay, const char *name, int L, int C1, int C2, int K,
                            int P, int E)
{
    int lmin = sbi_conv_encoder_min_length(K, P);
    SBI_CHECK(K >= 1 && K <= SBI_CONV_MAX_KERNEL && P >= 1 && C1 >= 1 && C2 >= 1 && E >= 1, SBI_ERR_INPUT,
              "%s: bad encoder shape", name);
    SBI_CHECK(L >= lmin, SBI_ERR_INPUT, "%s: the conv1d encoder needs at least %d input values, got %d", name, lmin,
              L);
    memset(c, 0, sizeof(*c));
    c->L = L;
    c->C1 = C1;
    c->C2 = C2;
    c->K = K;
    c->P = P;
    c->E = E;
    c->L1 = L - K + 1;
    c->Q1 = c->L1 / P;
    c->L2 = c->Q1 - K + 1;
    c->Q2 = c->L2 / P;
    c->w0 = sbi_layout_weight(lay, &c->dw0, (size_t)C1 * K, K, SBI_INIT_UNIFORM, "%s.conv0.w", name);
    c->b0 = sbi_layout_weight(lay, &c->db0, (size_t)C1, K, SBI_INIT_UNIFORM, "%s.conv0.b", name);
    c->w1 = sbi_layout_weight(lay, &c->dw1, (size_t)C2 * K * C1, K * C1, SBI_INIT_UNIFORM, "%s.conv1.w", name);
    c->b1 = sbi_layout_weight(lay, &c->db1, (size_t)C2, K * C1, SBI_INIT_UNIFORM, "%s.conv1.b", name);
    c->wp = sbi_layout_weight(lay, &c->dwp, (size_t)E * c->Q2 * C2, c->Q2 * C2, SBI_INIT_UNIFORM, "%s.proj.w", name);
    c->bp = sbi_layout_weight(lay, &c->dbp, (size_t)E, c->Q2 * C2, SBI_INIT_UNIFORM, "%s.proj.b", name);
    c->xin = sbi_layout_act(lay, NULL, L);
    c->q0 = sbi_layout_act_overwritten(lay, &c->dq0, c->Q1 * C1);
    c->arg0 = sbi_layout_act(lay, NULL, c->Q1 * C1);
    c->cols1 = sbi_layout_act(lay, NULL, c->L2 * K * C1);
    c->q1 = sbi_layout_act_overwritten(lay, &c->dq1, c->Q2 * C2);
    c->arg1 = sbi_layout_act(lay, NULL, c->Q2 * C2);
    c->scratch = sbi_layout_scratch(lay, sbi_conv1d_pool_scratch(c->Q1, C1, C2, K));
    c->out = sbi_layout_act(lay, &c->dout, E);
    return 0;
}

void sbi_conv_encoder_forward(sbi_conv_encoder *c, const sbi_real *inp, int B)
{
    memcpy(c->xin, inp, (size_t)B * c->L * sizeof(*inp));
    sbi_conv1d_pool_1ch_forward(c->q0, c->arg0, c->xin, c->w0, c->b0, B, c->L, c->C1, c->K, c->P);
    sbi_conv1d_pool_forward(c->q1, c->arg1, c->cols1, c->scratch, c->q0, c->w1, c->b1, B, c->Q1, c->C1, c->C2, c->K,
                            c->P);
    sbi_linear_forward(c->out, c->q1, c->wp, c->bp, B, c->Q2 * c->C2, c->E);
}

void sbi_conv_encoder_backward(sbi_conv_encoder *c, int B)
{
    int F = c->Q2 * c->C2;
    if (B <= 0) return;
    sbi_linear_backward(NULL, c->dwp, c->dbp, c->dout, c->q1, c->wp, B, F, c->E);
    /* dq1 (B, F) = dout (B, E) @ wp (E, F), overwritten. */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, F, c->E, 1, c->dout, c->E, c->wp, F, 0, c->dq1, F);
    sbi_conv1d_pool_backward(c->dq0, c->dw1, c->db1, c->scratch, c->dq1, c->q1, c->arg1, c->cols1, c->w1, B, c->Q1,
                             c->C1, c->C2, c->K, c->P);
    sbi_conv1d_pool_1ch_backward(c->dw0, c->db0, c->dq0, c->q0, c->arg0, c->xin, B, c->L, c->C1, c->K, c->P);
}
