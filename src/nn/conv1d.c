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
 * the direct loops stay as their test oracle.  In the single-precision AVX2
 * build the forward of several input channels is a register-blocked direct
 * kernel (conv_direct below), or for kernels of 5 Winograd's F(4, 5), which
 * needs 8 multiply-adds per 4 outputs and input channel where the direct
 * kernel needs 20 (wino_forward), and the backward is its transpose
 * (wino_backward).  Elsewhere the backward of several input channels sums
 * only the entries that the pooling selected and the ReLU passed (the
 * sparse backward below): on the reference encoder's conv1 that is about a
 * third of the dense gemms' multiply-adds, and it reads the forward's input
 * where the gemms read a K times larger im2col copy. */
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

/* The single-channel backward takes up to CONV_1CH_GROUP vectors of
 * channels per pass over the rows, so that a window's pooled values, window
 * positions and gradients (rows of C_out) are read whole. */
enum { CONV_1CH_GROUP = 4 };

void sbi_conv1d_pool_1ch_backward(sbi_real *dw, sbi_real *db, const sbi_real *dq, const sbi_real *q,
                                  const sbi_real *arg, const sbi_real *inp, int B, int L, int C_out, int K, int P)
{
    int Q = (L - K + 1) / P;
    const conv_vec zero = {0};
    conv_vec gw[CONV_1CH_GROUP][SBI_CONV_MAX_KERNEL], gb[CONV_1CH_GROUP];
    for (int g0 = 0; g0 < C_out; g0 += CONV_1CH_GROUP * CONV_LANES) {
        int ng = 0, nl[CONV_1CH_GROUP];
        for (int o0 = g0; o0 < C_out && ng < CONV_1CH_GROUP; o0 += CONV_LANES, ++ng) {
            nl[ng] = C_out - o0 < CONV_LANES ? C_out - o0 : CONV_LANES;
            gb[ng] = zero;
            for (int k = 0; k < K; ++k) gw[ng][k] = zero;
        }
        for (int n = 0; n < B; ++n) {
            const sbi_real *x = inp + (size_t)n * L;
            for (int t = 0; t < Q; ++t) {
                size_t o = ((size_t)n * Q + t) * C_out + g0;
                const sbi_real *xt = x + (size_t)t * P;
                for (int v = 0; v < ng; ++v) {
                    size_t ov = o + (size_t)v * CONV_LANES;
                    /* The ReLU passes the gradient where the pooled value is
                     * positive; it reaches the window's maximum only, so each
                     * lane takes the inputs at its own window position. */
                    conv_vec g = vec_select(vec_load(q + ov, nl[v]) > zero, vec_load(dq + ov, nl[v]), zero);
                    conv_vec a = vec_load(arg + ov, nl[v]);
                    gb[v] += g;
                    for (int k = 0; k < K; ++k) {
                        conv_vec xk = zero + xt[k];
                        for (int p = 1; p < P; ++p) xk = vec_select(a == zero + (sbi_real)p, zero + xt[p + k], xk);
                        gw[v][k] += g * xk;
                    }
                }
            }
        }
        for (int v = 0; v < ng; ++v)
            for (int j = 0; j < nl[v]; ++j) {
                int oj = g0 + v * CONV_LANES + j;
                db[oj] += gb[v][j];
                for (int k = 0; k < K; ++k) dw[(size_t)oj * K + k] += gw[v][k][j];
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

/* ---- the sparse backward of the fused kernel ----------------------------
 * After ReLU and max pooling, the gradient at the convolution's
 * pre-activation is non-zero at most at one position of each window (its
 * maximum) and only where the ReLU passed it: at most 1 / P of the
 * positions of each channel, 69% of those at the reference shape with its
 * initial weights.
 * The backward lists those entries, per batch row, by position (for the
 * input gradient) and by channel (for the weight gradient), and sums only
 * them: dw[o] += g x[l .. l + K) over the listed (l, g) of channel o, and
 * dinp[j] = sum over k of g w[o, k] over the listed (o, g) of position
 * j - k.  The dense gemms over all positions do P / (the share of windows
 * the ReLU passes) times the flops, about 3 times at the reference shape. */

/* Unaligned full-vector load. */
static inline conv_vec vec_loadu(const sbi_real *p)
{
    conv_vec v;
    memcpy(&v, p, sizeof(v));
    return v;
}

#if defined(__AVX2__) && defined(__BMI2__) && !defined(SBI_REAL_DOUBLE) && !defined(__znver1__) && \
    !defined(__znver2__)
/* Stores the lanes of g and off that bits selects, in order, at dg and
 * doff (all eight lanes are written) and returns their number: the
 * permutation that packs them comes from pext on the byte indices (pdep and
 * pext take a few cycles on Intel since Haswell and AMD since Zen 3; Zen 1
 * and 2 microcode them, so a build for those takes the scalar path). */
static inline int pack_lanes(float *dg, int *doff, __m256 g, __m256i off, unsigned bits)
{
    uint64_t keep = _pdep_u64(bits, 0x0101010101010101ull) * 0xff;
    __m128i idx = _mm_cvtsi64_si128((long long)_pext_u64(0x0706050403020100ull, keep));
    __m256i perm = _mm256_cvtepu8_epi32(idx);
    _mm256_storeu_ps(dg, _mm256_permutevar8x32_ps(g, perm));
    _mm256_storeu_si256((__m256i *)doff, _mm256_permutevar8x32_epi32(off, perm));
    return __builtin_popcount(bits);
}

/* r[0..8) = the columns of the 8 x 8 matrix with rows r[0..8). */
static inline void transpose8(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#define CONV_PACK 1
#else
#define CONV_PACK 0
#endif

/* The listed entries of one batch row from its pooled gradient dq, pooled
 * values q and window positions arg (Q, C_out).  By position: the entries
 * of position l (of Lp = Q P) are pg, po [pstart[l] .. pstart[l + 1]), the
 * gradient and o K C_in - l C_in, so that the weights w[o, j - l] that input
 * position j needs are at w + j C_in + po[e]; the lists of neighbouring
 * positions are contiguous.  By channel: channel o's entries are appended to
 * cg, co [o cap + ccnt[o] ..), the gradient and base + l C_in, the offset of
 * the entry's receptive field in the input of the block of rows.  sel
 * (Q, C_out) receives the window position that takes each gradient, -1 where
 * the ReLU passed none.  db += the column sums of the routed gradient. */
static void relu_pool_lists(sbi_real *pg, int *po, int *pstart, sbi_real *cg, int *co, int *ccnt, int cap, int base,
                            int *sel, sbi_real *db, const sbi_real *dq, const sbi_real *q, const sbi_real *arg, int Q,
                            int C_in, int C_out, int K, int P)
{
    int KC = K * C_in, m = 0;
    for (int t = 0; t < Q; ++t) {
        const sbi_real *g = dq + (size_t)t * C_out, *y = q + (size_t)t * C_out, *a = arg + (size_t)t * C_out;
        int *st = sel + (size_t)t * C_out;
        for (int o = 0; o < C_out; ++o) {
            int ai = (int)a[o];
            sbi_real gi = g[o];
            st[o] = y[o] > 0 ? ai : -1;
            db[o] += y[o] > 0 ? gi : 0;
        }
        for (int p = 0; p < P; ++p) {
            int l = t * P + p, o0 = 0;
            pstart[l] = m;
#if CONV_PACK
            if (C_out % 8 == 0) {
                __m256i off = _mm256_sub_epi32(
                    _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(KC)),
                    _mm256_set1_epi32(l * C_in));
                __m256i step = _mm256_set1_epi32(8 * KC), pv = _mm256_set1_epi32(p);
                for (; o0 < C_out; o0 += 8, off = _mm256_add_epi32(off, step)) {
                    __m256i sv = _mm256_loadu_si256((const __m256i *)(st + o0));
                    unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(sv, pv)));
                    m += pack_lanes(pg + m, po + m, _mm256_loadu_ps(g + o0), off, bits);
                }
            }
#endif
            /* Branch-free appends: the slot is written, the count moves on
             * only where the entry is listed. */
            for (int o = o0; o < C_out; ++o) {
                pg[m] = g[o];
                po[m] = o * KC - l * C_in;
                m += st[o] == p;
            }
        }
    }
    pstart[Q * P] = m;
    int t0 = 0;
#if CONV_PACK
    /* Blocks of 8 windows x 8 channels, transposed so that a vector holds
     * one channel's windows, and packed onto the channel lists.  A list
     * has room for the eight lanes: it holds at most t0 entries of the row
     * before the block (and the block ends by Q). */
    if (C_out % 8 == 0) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), none = _mm256_set1_epi32(-1);
        for (; t0 + 8 <= Q; t0 += 8) {
            __m256i tp = _mm256_mullo_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32(t0)), _mm256_set1_epi32(P));
            for (int o0 = 0; o0 < C_out; o0 += 8) {
                __m256 sv[8], gv[8];
                for (int i = 0; i < 8; ++i) {
                    sv[i] = _mm256_loadu_ps((const float *)(sel + (size_t)(t0 + i) * C_out + o0));
                    gv[i] = _mm256_loadu_ps(dq + (size_t)(t0 + i) * C_out + o0);
                }
                transpose8(sv);
                transpose8(gv);
                for (int j = 0; j < 8; ++j) {
                    int o = o0 + j, n = ccnt[o];
                    __m256i st = _mm256_castps_si256(sv[j]);
                    __m256i off = _mm256_add_epi32(_mm256_set1_epi32(base),
                                                   _mm256_mullo_epi32(_mm256_add_epi32(tp, st), _mm256_set1_epi32(C_in)));
                    unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(st, none)));
                    ccnt[o] = n + pack_lanes(cg + (size_t)o * cap + n, co + (size_t)o * cap + n, gv[j], off, bits);
                }
            }
        }
    }
#endif
    for (int o = 0; o < C_out; ++o) {
        sbi_real *lg = cg + (size_t)o * cap;
        int *lo = co + (size_t)o * cap, n = ccnt[o];
        for (int t = t0; t < Q; ++t) {
            int s = sel[(size_t)t * C_out + o];
            lg[n] = dq[(size_t)t * C_out + o];
            lo[n] = base + (t * P + s) * C_in;
            n += s >= 0;
        }
        ccnt[o] = n;
    }
}

/* dw (C_out, K C_in) += the channel lists of a block of rows with input x.
 * Chunks of four vectors of a channel's weights stay in registers;
 * successive entries go to two sets of accumulators, so that eight
 * multiply-add chains are in flight. */
static void sparse_dw(sbi_real *dw, const sbi_real *cg, const int *co, const int *ccnt, int cap, const sbi_real *x,
                      int KC, int C_out)
{
    const conv_vec zero = {0};
    for (int o = 0; o < C_out; ++o) {
        const sbi_real *g = cg + (size_t)o * cap;
        const int *off = co + (size_t)o * cap;
        sbi_real *d = dw + (size_t)o * KC;
        int m = ccnt[o], c0 = 0;
        for (; c0 + 4 * CONV_LANES <= KC; c0 += 4 * CONV_LANES) {
            const sbi_real *xc = x + c0;
            sbi_real *dc = d + c0;
            conv_vec a0 = vec_loadu(dc), a1 = vec_loadu(dc + CONV_LANES), a2 = vec_loadu(dc + 2 * CONV_LANES);
            conv_vec a3 = vec_loadu(dc + 3 * CONV_LANES), b0 = zero, b1 = zero, b2 = zero, b3 = zero;
            int e = 0;
            for (; e + 1 < m; e += 2) {
                const sbi_real *u = xc + off[e], *v = xc + off[e + 1];
                sbi_real gu = g[e], gv = g[e + 1];
                a0 += gu * vec_loadu(u);
                a1 += gu * vec_loadu(u + CONV_LANES);
                a2 += gu * vec_loadu(u + 2 * CONV_LANES);
                a3 += gu * vec_loadu(u + 3 * CONV_LANES);
                b0 += gv * vec_loadu(v);
                b1 += gv * vec_loadu(v + CONV_LANES);
                b2 += gv * vec_loadu(v + 2 * CONV_LANES);
                b3 += gv * vec_loadu(v + 3 * CONV_LANES);
            }
            if (e < m) {
                const sbi_real *u = xc + off[e];
                sbi_real gu = g[e];
                a0 += gu * vec_loadu(u);
                a1 += gu * vec_loadu(u + CONV_LANES);
                a2 += gu * vec_loadu(u + 2 * CONV_LANES);
                a3 += gu * vec_loadu(u + 3 * CONV_LANES);
            }
            vec_store(dc, a0 + b0, CONV_LANES);
            vec_store(dc + CONV_LANES, a1 + b1, CONV_LANES);
            vec_store(dc + 2 * CONV_LANES, a2 + b2, CONV_LANES);
            vec_store(dc + 3 * CONV_LANES, a3 + b3, CONV_LANES);
        }
        for (; c0 < KC; c0 += CONV_LANES) {
            int nl = KC - c0 < CONV_LANES ? KC - c0 : CONV_LANES;
            conv_vec a = vec_load(d + c0, nl);
            for (int e = 0; e < m; ++e) a += g[e] * vec_load(x + c0 + off[e], nl);
            vec_store(d + c0, a, nl);
        }
    }
}

/* dx (L, C_in) = (overwritten) the input gradient of one batch row from its
 * position lists; w (C_out, K, C_in).  Input position j takes the entries of
 * positions j - K + 1 .. j, one contiguous run of the lists.  Chunks of four
 * vectors of the row's channels stay in registers, with two sets of
 * accumulators as in sparse_dw. */
static void sparse_dinp_row(sbi_real *dx, const sbi_real *pg, const int *po, const int *pstart, const sbi_real *w,
                            int L, int Lp, int C_in, int K)
{
    const conv_vec zero = {0};
    int c0 = 0;
    for (; c0 + 4 * CONV_LANES <= C_in; c0 += 4 * CONV_LANES)
        for (int j = 0; j < L; ++j) {
            conv_vec a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
            int l0 = j - K + 1 < 0 ? 0 : j - K + 1 > Lp ? Lp : j - K + 1, l1 = j + 1 < Lp ? j + 1 : Lp;
            int e = pstart[l0], e1 = pstart[l1];
            const sbi_real *wj = w + c0;
            sbi_real *dc = dx + (size_t)j * C_in + c0;
            ptrdiff_t jo = (ptrdiff_t)j * C_in;
            for (; e + 1 < e1; e += 2) {
                const sbi_real *u = wj + (jo + po[e]), *v = wj + (jo + po[e + 1]);
                sbi_real gu = pg[e], gv = pg[e + 1];
                a0 += gu * vec_loadu(u);
                a1 += gu * vec_loadu(u + CONV_LANES);
                a2 += gu * vec_loadu(u + 2 * CONV_LANES);
                a3 += gu * vec_loadu(u + 3 * CONV_LANES);
                b0 += gv * vec_loadu(v);
                b1 += gv * vec_loadu(v + CONV_LANES);
                b2 += gv * vec_loadu(v + 2 * CONV_LANES);
                b3 += gv * vec_loadu(v + 3 * CONV_LANES);
            }
            if (e < e1) {
                const sbi_real *u = wj + (jo + po[e]);
                sbi_real gu = pg[e];
                a0 += gu * vec_loadu(u);
                a1 += gu * vec_loadu(u + CONV_LANES);
                a2 += gu * vec_loadu(u + 2 * CONV_LANES);
                a3 += gu * vec_loadu(u + 3 * CONV_LANES);
            }
            vec_store(dc, a0 + b0, CONV_LANES);
            vec_store(dc + CONV_LANES, a1 + b1, CONV_LANES);
            vec_store(dc + 2 * CONV_LANES, a2 + b2, CONV_LANES);
            vec_store(dc + 3 * CONV_LANES, a3 + b3, CONV_LANES);
        }
    for (; c0 < C_in; c0 += CONV_LANES) {
        int nl = C_in - c0 < CONV_LANES ? C_in - c0 : CONV_LANES;
        for (int j = 0; j < L; ++j) {
            conv_vec a = zero;
            int l0 = j - K + 1 < 0 ? 0 : j - K + 1 > Lp ? Lp : j - K + 1, l1 = j + 1 < Lp ? j + 1 : Lp;
            ptrdiff_t jo = (ptrdiff_t)j * C_in + c0;
            for (int e = pstart[l0]; e < pstart[l1]; ++e) a += pg[e] * vec_load(w + (jo + po[e]), nl);
            vec_store(dx + (size_t)j * C_in + c0, a, nl);
        }
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
        for (int o0 = 0; o0 < C_out; o0 += 16)
            for (int l0 = 0; l0 < L_out; l0 += CONV_TILE)
                conv_direct_tile(c + ((size_t)n * L_out + l0) * C_out + o0, inp + ((size_t)n * L + l0) * C_in,
                                 wt + o0, L_out - l0 < CONV_TILE ? L_out - l0 : CONV_TILE, C_in, C_out, K);
}

/* Winograd's minimal filtering F(4, 5) (Lavin and Gray 2016, "Fast
 * Algorithms for Convolutional Neural Networks"): four outputs of a 5-tap
 * correlation from 8 products instead of 20, through the values of the
 * polynomials at the points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity:
 *   y (4) = A^T [(G g) . (B^T d)],  d (8) a tile of the input, g (5) the taps.
 * Summed over input channels, the products become one matrix product per
 * point xi,
 *   M_xi (tiles, C_out) = V_xi (tiles, C_in) @ U_xi (C_in, C_out),
 * with V_xi = (B^T d)_xi of each tile and input channel and U_xi = (G g)_xi
 * of each channel pair (wino_products, the register tile of
 * conv_direct_tile).  The interpolation denominators sit in G, applied once
 * per call to the weights, so that B^T and A^T hold binary fractions only.
 * In single precision the largest error stays below 1e-6 of the output
 * scale, about twice that of the direct sums (test_nn_conv1d).  The tiles of WINO_ROWS
 * batch rows (at the reference shape 3 rows of 28 tiles, 86 KB of V) are
 * transformed at once and multiplied one block of 16 output channels at a
 * time, whose U (16 KB) stays in the L1 cache; the output transform, bias,
 * ReLU and pooling follow on each group of CONV_TILE tiles.  Pooling
 * windows must not straddle tiles: P divides 4.  F(6, 5) would save another
 * 15% of the products, but in a single-precision model of these sums (32
 * channels) its error, 5e-6 to 1.6e-5 of the output scale with the points
 * +-3/2, +-1/3, +-3 or +-4 added, was 5 to 19 times that of F(4, 5). */
enum { WINO_M = 4, WINO_A = 8, WINO_ROWS = 3 };

static const double wino_g[WINO_A][5] = {
    {-1, 0, 0, 0, 0},
    {-2. / 9, -2. / 9, -2. / 9, -2. / 9, -2. / 9},
    {-2. / 9, 2. / 9, -2. / 9, 2. / 9, -2. / 9},
    {1. / 90, 1. / 45, 2. / 45, 4. / 45, 8. / 45},
    {1. / 90, -1. / 45, 2. / 45, -4. / 45, 8. / 45},
    {32. / 45, 16. / 45, 8. / 45, 4. / 45, 2. / 45},
    {32. / 45, -16. / 45, 8. / 45, -4. / 45, 2. / 45},
    {0, 0, 0, 0, 1},
};

/* u (A, C_in, C_out) = G applied to the taps of w (C_out, 5, C_in), by way
 * of wt (5, C_in, C_out), the taps transposed, so that the sums run over
 * whole vectors of output channels. */
static void wino_weights(float *u, float *wt, const float *w, int C_in, int C_out)
{
    size_t n = (size_t)C_in * C_out;
    for (int o = 0; o < C_out; ++o)
        for (size_t j = 0; j < (size_t)5 * C_in; ++j) wt[j * C_out + o] = w[(size_t)o * 5 * C_in + j];
    for (int x = 0; x < WINO_A; ++x) {
        const conv_vec g0 = (conv_vec){0} + (float)wino_g[x][0], g1 = (conv_vec){0} + (float)wino_g[x][1];
        const conv_vec g2 = (conv_vec){0} + (float)wino_g[x][2], g3 = (conv_vec){0} + (float)wino_g[x][3];
        const conv_vec g4 = (conv_vec){0} + (float)wino_g[x][4];
        for (size_t j = 0; j < n; j += CONV_LANES) {
            int nl = n - j < CONV_LANES ? (int)(n - j) : CONV_LANES;
            conv_vec s = g0 * vec_load(wt + j, nl) + g1 * vec_load(wt + n + j, nl) + g2 * vec_load(wt + 2 * n + j, nl) +
                         g3 * vec_load(wt + 3 * n + j, nl) + g4 * vec_load(wt + 4 * n + j, nl);
            vec_store(u + x * n + j, s, nl);
        }
    }
}

/* v (A, nb T, C_in) = B^T applied to the tiles of inp (nb, L, C_in), the
 * points plane scalars apart: tile t of a row holds positions 4 t .. 4 t + 7,
 * those past L read zero_row. */
static void wino_input(float *v, const float *inp, const float *zero_row, int nb, int L, int T, int C_in,
                       size_t plane)
{
    for (int n = 0; n < nb; ++n)
        for (int t = 0; t < T; ++t) {
            const float *d[WINO_A];
            float *vt = v + ((size_t)n * T + t) * C_in;
            for (int j = 0; j < WINO_A; ++j) {
                int l = WINO_M * t + j;
                d[j] = l < L ? inp + ((size_t)n * L + l) * C_in : zero_row;
            }
            for (int i = 0; i < C_in; i += CONV_LANES) {
                int nl = C_in - i < CONV_LANES ? C_in - i : CONV_LANES;
                conv_vec d0 = vec_load(d[0] + i, nl), d1 = vec_load(d[1] + i, nl), d2 = vec_load(d[2] + i, nl);
                conv_vec d3 = vec_load(d[3] + i, nl), d4 = vec_load(d[4] + i, nl), d5 = vec_load(d[5] + i, nl);
                conv_vec d6 = vec_load(d[6] + i, nl), d7 = vec_load(d[7] + i, nl);
                /* Rows xi and xi + 1 of B^T for the points +-a share their
                 * even and odd parts. */
                conv_vec o1 = d1 - 4.25f * d3 + d5, e1 = d2 - 4.25f * d4 + d6;
                conv_vec o2 = 0.5f * d1 - 2.5f * d3 + 2.0f * d5, e2 = 0.25f * d2 - 1.25f * d4 + d6;
                conv_vec o3 = 2.0f * d1 - 2.5f * d3 + 0.5f * d5, e3 = 4.0f * d2 - 5.0f * d4 + d6;
                vec_store(vt + i, d6 - d0 + 5.25f * (d2 - d4), nl);
                vec_store(vt + plane + i, e1 + o1, nl);
                vec_store(vt + 2 * plane + i, e1 - o1, nl);
                vec_store(vt + 3 * plane + i, e2 + o2, nl);
                vec_store(vt + 4 * plane + i, e2 - o2, nl);
                vec_store(vt + 5 * plane + i, e3 + o3, nl);
                vec_store(vt + 6 * plane + i, e3 - o3, nl);
                vec_store(vt + 7 * plane + i, d7 - d1 + 5.25f * (d3 - d5), nl);
            }
        }
}

/* q, arg (rows from n0, Q, C_out), channels o0 .. o0 + 16, of the np tiles
 * from tile g0 of the block (T per row) from their products m (A, CONV_TILE,
 * C_out), the bias b and the max pooling over windows of P (dividing 4).
 * Inlined with P a constant, so that the window loops unroll. */
static inline __attribute__((always_inline)) void wino_output(float *q, float *arg, const float *m, const float *b,
                                                              int g0, int np, int T, int Q, int C_out, int o0, int P)
{
    const conv_vec zero = {0};
    size_t xs = (size_t)CONV_TILE * C_out;
    int n = g0 / T, t = g0 % T;
    for (int p = 0; p < np; ++p, ++t) {
        if (t == T) t = 0, ++n;
        for (int h = 0; h < 16; h += CONV_LANES) {
            const float *mp = m + (size_t)p * C_out + o0 + h;
            conv_vec m0 = vec_loadu(mp), m1 = vec_loadu(mp + xs), m2 = vec_loadu(mp + 2 * xs);
            conv_vec m3 = vec_loadu(mp + 3 * xs), m4 = vec_loadu(mp + 4 * xs), m5 = vec_loadu(mp + 5 * xs);
            conv_vec m6 = vec_loadu(mp + 6 * xs), m7 = vec_loadu(mp + 7 * xs), y[WINO_M];
            conv_vec s1 = m1 + m2, d1 = m1 - m2, s2 = m3 + m4, d2 = m3 - m4, s3 = m5 + m6, d3 = m5 - m6;
            conv_vec bv = vec_loadu(b + o0 + h);
            y[0] = m0 + s1 + s2 + s3;
            y[1] = d1 + 2.0f * d2 + 0.5f * d3;
            y[2] = s1 + 4.0f * s2 + 0.25f * s3;
            y[3] = d1 + 8.0f * d2 + 0.125f * d3 + m7;
            for (int j = 0; j < WINO_M; j += P) {
                int win = (WINO_M * t + j) / P;
                conv_vec best = y[j], barg = zero;
                size_t o = ((size_t)n * Q + win) * C_out + o0 + h;
                if (win >= Q) break;
                for (int k = 1; k < P; ++k) {
                    conv_mask mk = y[j + k] > best;
                    best = vec_select(mk, y[j + k], best);
                    barg = vec_select(mk, zero + (float)k, barg);
                }
                best += bv;
                vec_store(q + o, vec_select(best > zero, best, zero), CONV_LANES);
                vec_store(arg + o, barg, CONV_LANES);
            }
        }
    }
}

/* m (A, CONV_TILE, C_out), channels o0 .. o0 + 16 = the products of the np
 * tiles of v (A, tiles of plane / C_in, C_in) from tile g0 with u (A, C_in,
 * C_out) at each point: the tile of conv_direct_tile with kernel 1. */
static void wino_products(float *m, const float *v, const float *u, size_t plane, int g0, int np, int C_in,
                          int C_out, int o0)
{
    for (int x = 0; x < WINO_A; ++x)
        conv_direct_tile(m + (size_t)x * CONV_TILE * C_out + o0, v + x * plane + (size_t)g0 * C_in,
                         u + (size_t)x * C_in * C_out + o0, np, C_in, C_out, 1);
}

/* The scratch of wino_forward: u, v (or first the transposed taps, if
 * larger), the products of a tile group and a zero row. */
static size_t wino_scratch(int L, int C_in, int C_out, int K, int P)
{
    size_t T = (size_t)(((L - K + 1) / P * P + WINO_M - 1) / WINO_M), v = (size_t)WINO_A * WINO_ROWS * T * C_in;
    size_t wt = (size_t)5 * C_in * C_out;
    return (size_t)WINO_A * C_in * C_out + (v > wt ? v : wt) + (size_t)WINO_A * CONV_TILE * C_out + (size_t)C_in;
}

/* The fused forward by F(4, 5), for K = 5, C_out a multiple of 16 and P
 * dividing 4: q, arg (B, Q, C_out) from inp (B, L, C_in). */
static void wino_forward(float *q, float *arg, float *scratch, const float *inp, const float *w, const float *b,
                         int B, int L, int C_in, int C_out, int P)
{
    int Q = (L - 4) / P, T = (Q * P + WINO_M - 1) / WINO_M;
    size_t vsize = (size_t)WINO_A * WINO_ROWS * T * C_in, wtsize = (size_t)5 * C_in * C_out;
    float *u = scratch, *v = u + (size_t)WINO_A * C_in * C_out;
    float *m = v + (vsize > wtsize ? vsize : wtsize), *zero_row = m + (size_t)WINO_A * CONV_TILE * C_out;
    memset(zero_row, 0, (size_t)C_in * sizeof(*zero_row));
    wino_weights(u, v, w, C_in, C_out);
    for (int n0 = 0; n0 < B; n0 += WINO_ROWS) {
        int nb = B - n0 < WINO_ROWS ? B - n0 : WINO_ROWS, nt = nb * T;
        size_t plane = (size_t)nt * C_in;
        float *qb = q + (size_t)n0 * Q * C_out, *ab = arg + (size_t)n0 * Q * C_out;
        wino_input(v, inp + (size_t)n0 * L * C_in, zero_row, nb, L, T, C_in, plane);
        for (int o0 = 0; o0 < C_out; o0 += 16)
            for (int g0 = 0; g0 < nt; g0 += CONV_TILE) {
                int np = nt - g0 < CONV_TILE ? nt - g0 : CONV_TILE;
                wino_products(m, v, u, plane, g0, np, C_in, C_out, o0);
                if (P == 2)
                    wino_output(qb, ab, m, b, g0, np, T, Q, C_out, o0, 2);
                else if (P == 1)
                    wino_output(qb, ab, m, b, g0, np, T, Q, C_out, o0, 1);
                else
                    wino_output(qb, ab, m, b, g0, np, T, Q, C_out, o0, 4);
            }
    }
}

/* ---- the backward by F(4, 5) ---------------------------------------------
 * The transpose of wino_forward.  With dY the routed gradient at the
 * convolution's outputs (non-zero at the position of each window's maximum
 * where the ReLU passed it), dM_xi (tiles, C_out) = A applied to the 4
 * outputs of each tile, and then at each point xi
 *   dU_xi (C_in, C_out) += V_xi^T @ dM_xi   (the weight gradient is G^T dU),
 *   dV_xi (tiles, C_in)  = dM_xi @ U_xi^T   (the input gradient is B dV,
 *                                            summed over overlapping tiles),
 * two products of 8 / 20 of the dense convolution's multiply-adds each, in
 * the register tile of the forward.  The sparse sums (sbi_conv1d_pool_
 * backward's other forms) do fewer multiply-adds, about 0.35 of the dense
 * ones at the reference shape with its initial weights against Winograd's
 * 0.4, but gather them at scattered offsets; on the reference encoder's conv1
 * they take 9.2 to 12 ms where these take 8.3 to 8.6 (bench_train_reference).
 * Blocks of WINO_BACK_ROWS rows; dU sums chunks of WINO_DU_TILES tiles whose
 * V and dM stay in the L1 cache. */
enum { WINO_BACK_ROWS = 8, WINO_DU_TILES = 32, WINO_PAD = 16 };

/* dm (A, nb T, C_out) = A applied to the routed gradient of each tile of
 * the rows n0 .. n0 + nb, the points plane scalars apart; db += the gradient
 * the ReLU passed.  Inlined with P a constant, as wino_output. */
static inline __attribute__((always_inline)) void wino_dm_p(float *dm, float *db, const float *dq, const float *q,
                                                            const float *arg, int nb, int T, int Q, int C_out,
                                                            size_t plane, int P)
{
    const conv_vec zero = {0};
    for (int n = 0; n < nb; ++n)
        for (int t = 0; t < T; ++t) {
            float *mt = dm + ((size_t)n * T + t) * C_out;
            for (int o = 0; o < C_out; o += CONV_LANES) {
                conv_vec y[WINO_M];
                for (int j = 0; j < WINO_M; j += P) {
                    int win = (WINO_M * t + j) / P;
                    if (win >= Q) {
                        for (int k = 0; k < P; ++k) y[j + k] = zero;
                        continue;
                    }
                    size_t i = ((size_t)n * Q + win) * C_out + o;
                    conv_vec g = vec_loadu(dq + i), a = vec_loadu(arg + i);
                    g = vec_select(vec_loadu(q + i) > zero, g, zero);
                    vec_store(db + o, vec_loadu(db + o) + g, CONV_LANES);
                    for (int k = 0; k < P; ++k) y[j + k] = vec_select(a == zero + (float)k, g, zero);
                }
                /* The columns of A^T (wino_output) at the points 0, +-1,
                 * +-2, +-1/2, infinity. */
                conv_vec s1 = y[0] + y[2], d1 = y[1] + y[3], s2 = y[0] + 4.0f * y[2], d2 = 2.0f * y[1] + 8.0f * y[3];
                conv_vec s3 = y[0] + 0.25f * y[2], d3 = 0.5f * y[1] + 0.125f * y[3];
                vec_store(mt + o, y[0], CONV_LANES);
                vec_store(mt + plane + o, s1 + d1, CONV_LANES);
                vec_store(mt + 2 * plane + o, s1 - d1, CONV_LANES);
                vec_store(mt + 3 * plane + o, s2 + d2, CONV_LANES);
                vec_store(mt + 4 * plane + o, s2 - d2, CONV_LANES);
                vec_store(mt + 5 * plane + o, s3 + d3, CONV_LANES);
                vec_store(mt + 6 * plane + o, s3 - d3, CONV_LANES);
                vec_store(mt + 7 * plane + o, y[3], CONV_LANES);
            }
        }
}

static void wino_dm(float *dm, float *db, const float *dq, const float *q, const float *arg, int nb, int T, int Q,
                    int C_out, int P, size_t plane)
{
    if (P == 2)
        wino_dm_p(dm, db, dq, q, arg, nb, T, Q, C_out, plane, 2);
    else if (P == 1)
        wino_dm_p(dm, db, dq, q, arg, nb, T, Q, C_out, plane, 1);
    else
        wino_dm_p(dm, db, dq, q, arg, nb, T, Q, C_out, plane, 4);
}

/* du (C_in, C_out) += v (nt, C_in)^T @ dm (nt, C_out), rows c0 .. c0 + np
 * (np <= CONV_TILE) and columns o0 .. o0 + 16: the register tile of
 * conv_direct_tile, the tiles as the summed index. */
static void wino_du_tile(float *du, const float *v, const float *dm, int nt, int C_in, int C_out, int c0, int o0,
                         int np)
{
    float *d = du + (size_t)c0 * C_out + o0;
    const float *vc = v + c0, *mo = dm + o0;
    if (np == CONV_TILE) {
        __m256 a00 = _mm256_loadu_ps(d), a01 = _mm256_loadu_ps(d + 8);
        __m256 a10 = _mm256_loadu_ps(d + C_out), a11 = _mm256_loadu_ps(d + C_out + 8);
        __m256 a20 = _mm256_loadu_ps(d + 2 * C_out), a21 = _mm256_loadu_ps(d + 2 * C_out + 8);
        __m256 a30 = _mm256_loadu_ps(d + 3 * C_out), a31 = _mm256_loadu_ps(d + 3 * C_out + 8);
        __m256 a40 = _mm256_loadu_ps(d + 4 * C_out), a41 = _mm256_loadu_ps(d + 4 * C_out + 8);
        __m256 a50 = _mm256_loadu_ps(d + 5 * C_out), a51 = _mm256_loadu_ps(d + 5 * C_out + 8);
        for (int t = 0; t < nt; ++t) {
            const float *vt = vc + (size_t)t * C_in;
            __m256 m0 = _mm256_loadu_ps(mo + (size_t)t * C_out), m1 = _mm256_loadu_ps(mo + (size_t)t * C_out + 8);
            __m256 xv;
#define WINO_DU_FMA(p)                               \
    xv = _mm256_broadcast_ss(vt + (p));              \
    a##p##0 = _mm256_fmadd_ps(m0, xv, a##p##0);      \
    a##p##1 = _mm256_fmadd_ps(m1, xv, a##p##1);
            WINO_DU_FMA(0) WINO_DU_FMA(1) WINO_DU_FMA(2) WINO_DU_FMA(3) WINO_DU_FMA(4) WINO_DU_FMA(5)
#undef WINO_DU_FMA
        }
#define WINO_DU_STORE(p)                                     \
    _mm256_storeu_ps(d + (size_t)(p) * C_out, a##p##0);      \
    _mm256_storeu_ps(d + (size_t)(p) * C_out + 8, a##p##1);
        WINO_DU_STORE(0) WINO_DU_STORE(1) WINO_DU_STORE(2) WINO_DU_STORE(3) WINO_DU_STORE(4) WINO_DU_STORE(5)
#undef WINO_DU_STORE
        return;
    }
    for (int p = 0; p < np; ++p) {
        __m256 a0 = _mm256_loadu_ps(d + (size_t)p * C_out), a1 = _mm256_loadu_ps(d + (size_t)p * C_out + 8);
        for (int t = 0; t < nt; ++t) {
            __m256 xv = _mm256_broadcast_ss(vc + (size_t)t * C_in + p);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(mo + (size_t)t * C_out), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(mo + (size_t)t * C_out + 8), xv, a1);
        }
        _mm256_storeu_ps(d + (size_t)p * C_out, a0);
        _mm256_storeu_ps(d + (size_t)p * C_out + 8, a1);
    }
}

/* dinp (rows, L, C_in), channels c0 .. c0 + 16, += B applied to dv (A,
 * CONV_TILE, C_in), the input gradients at the points of the np tiles from
 * tile g0 (T per row): the transpose of wino_input; tile t adds to
 * positions 4 t .. 4 t + 7 below L. */
static void wino_dinp(float *dinp, const float *dv, int g0, int np, int L, int T, int C_in, int c0)
{
    size_t plane = (size_t)CONV_TILE * C_in;
    for (int p = 0; p < np; ++p) {
        int n = (g0 + p) / T, t = (g0 + p) % T, top = L - WINO_M * t < WINO_A ? L - WINO_M * t : WINO_A;
        const float *vt = dv + (size_t)p * C_in;
        float *d = dinp + ((size_t)n * L + (size_t)WINO_M * t) * C_in;
        for (int i = c0; i < c0 + 16; i += CONV_LANES) {
            conv_vec g0v = vec_loadu(vt + i), g1 = vec_loadu(vt + plane + i), g2 = vec_loadu(vt + 2 * plane + i);
            conv_vec g3 = vec_loadu(vt + 3 * plane + i), g4 = vec_loadu(vt + 4 * plane + i);
            conv_vec g5 = vec_loadu(vt + 5 * plane + i), g6 = vec_loadu(vt + 6 * plane + i);
            conv_vec g7 = vec_loadu(vt + 7 * plane + i);
            conv_vec s1 = g1 + g2, t1 = g1 - g2, s2 = g3 + g4, t2 = g3 - g4, s3 = g5 + g6, t3 = g5 - g6, dd[WINO_A];
            dd[0] = -g0v;
            dd[1] = t1 + 0.5f * t2 + 2.0f * t3 - g7;
            dd[2] = 5.25f * g0v + s1 + 0.25f * s2 + 4.0f * s3;
            dd[3] = 5.25f * g7 - 4.25f * t1 - 2.5f * (t2 + t3);
            dd[4] = -5.25f * g0v - 4.25f * s1 - 1.25f * s2 - 5.0f * s3;
            dd[5] = t1 + 2.0f * t2 + 0.5f * t3 - 5.25f * g7;
            dd[6] = g0v + s1 + s2 + s3;
            dd[7] = g7;
            for (int j = 0; j < top; ++j)
                vec_store(d + (size_t)j * C_in + i, vec_loadu(d + (size_t)j * C_in + i) + dd[j], CONV_LANES);
        }
    }
}

/* The scratch of wino_backward: u and its transpose ut, du, v (the
 * transposed taps first), dm, the input gradients at the points of a tile
 * group and a zero row. */
static size_t wino_back_scratch(int L, int C_in, int C_out, int P)
{
    size_t T = (size_t)(((L - 4) / P * P + WINO_M - 1) / WINO_M), nt = (size_t)WINO_BACK_ROWS * T;
    size_t v = (size_t)WINO_A * (nt * C_in + WINO_PAD), wt = (size_t)5 * C_in * C_out;
    return 3 * (size_t)WINO_A * C_in * C_out + (v > wt ? v : wt) + (size_t)WINO_A * (nt * C_out + WINO_PAD) +
           (size_t)WINO_A * CONV_TILE * C_in + (size_t)C_in;
}

/* For K = 5, C_in and C_out multiples of 16 and P dividing 4. */
static void wino_backward(float *dinp, float *dw, float *db, float *scratch, const float *dq, const float *q,
                          const float *arg, const float *inp, const float *w, int B, int L, int C_in, int C_out, int P)
{
    int Q = (L - 4) / P, T = (Q * P + WINO_M - 1) / WINO_M;
    size_t nmax = (size_t)WINO_BACK_ROWS * T, vsize = (size_t)WINO_A * (nmax * C_in + WINO_PAD);
    size_t wtsize = (size_t)5 * C_in * C_out;
    size_t n2 = (size_t)C_in * C_out;
    float *u = scratch, *ut = u + WINO_A * n2, *du = ut + WINO_A * n2, *v = du + WINO_A * n2;
    float *dm = v + (vsize > wtsize ? vsize : wtsize), *dv = dm + (size_t)WINO_A * (nmax * C_out + WINO_PAD);
    float *zero_row = dv + (size_t)WINO_A * CONV_TILE * C_in;
    memset(zero_row, 0, (size_t)C_in * sizeof(*zero_row));
    memset(du, 0, WINO_A * n2 * sizeof(*du));
    if (dinp) {
        wino_weights(u, v, w, C_in, C_out);
        for (int x = 0; x < WINO_A; ++x)
            for (int c = 0; c < C_in; ++c)
                for (int o = 0; o < C_out; ++o) ut[x * n2 + (size_t)o * C_in + c] = u[x * n2 + (size_t)c * C_out + o];
    }
    for (int n0 = 0; n0 < B; n0 += WINO_BACK_ROWS) {
        int nb = B - n0 < WINO_BACK_ROWS ? B - n0 : WINO_BACK_ROWS, nt = nb * T;
        /* Planes a line past a multiple of 4 KB apart would share the L1
         * cache's sets (8 planes, 8 ways): each is offset by a line. */
        size_t pv = (size_t)nt * C_in + WINO_PAD, pm = (size_t)nt * C_out + WINO_PAD;
        wino_input(v, inp + (size_t)n0 * L * C_in, zero_row, nb, L, T, C_in, pv);
        wino_dm(dm, db, dq + (size_t)n0 * Q * C_out, q + (size_t)n0 * Q * C_out, arg + (size_t)n0 * Q * C_out, nb,
                T, Q, C_out, P, pm);
        /* dU by chunks of tiles whose v and dm stay in the L1 cache. */
        for (int x = 0; x < WINO_A; ++x)
            for (int t0 = 0; t0 < nt; t0 += WINO_DU_TILES) {
                int nc = nt - t0 < WINO_DU_TILES ? nt - t0 : WINO_DU_TILES;
                const float *vx = v + x * pv + (size_t)t0 * C_in, *mx = dm + x * pm + (size_t)t0 * C_out;
                for (int c0 = 0; c0 < C_in; c0 += CONV_TILE)
                    for (int o0 = 0; o0 < C_out; o0 += 16)
                        wino_du_tile(du + x * n2, vx, mx, nc, C_in, C_out, c0, o0,
                                     C_in - c0 < CONV_TILE ? C_in - c0 : CONV_TILE);
            }
        if (!dinp) continue;
        float *d = dinp + (size_t)n0 * L * C_in;
        memset(d, 0, (size_t)nb * L * C_in * sizeof(*d));
        /* dV_xi = dM_xi @ U_xi^T a group of CONV_TILE tiles at a time (the
         * forward's products with the channels' roles swapped), then B. */
        for (int c0 = 0; c0 < C_in; c0 += 16) /* ut's columns c0 .. c0 + 16 (32 KB) stay in L1 */
            for (int g0 = 0; g0 < nt; g0 += CONV_TILE) {
                int np = nt - g0 < CONV_TILE ? nt - g0 : CONV_TILE;
                wino_products(dv, dm, ut, pm, g0, np, C_out, C_in, c0);
                wino_dinp(d, dv, g0, np, L, T, C_in, c0);
            }
    }
    /* dw (C_out, 5, C_in) += G^T dU. */
    for (int k = 0; k < 5; ++k) {
        float *wk = v + (size_t)k * n2; /* (C_in, C_out) */
        for (size_t j = 0; j < n2; ++j) {
            float s = 0;
            for (int x = 0; x < WINO_A; ++x) s += (float)wino_g[x][k] * du[x * n2 + j];
            wk[j] = s;
        }
    }
    for (int o = 0; o < C_out; ++o)
        for (int k = 0; k < 5; ++k)
            for (int c = 0; c < C_in; ++c)
                dw[((size_t)o * 5 + k) * C_in + c] += v[(size_t)k * n2 + (size_t)c * C_out + o];
}
#define CONV_DIRECT 1
#else
#define CONV_DIRECT 0
#endif

int sbi_conv1d_pool_form(int form, int C_in, int C_out, int K, int P)
{
    (void)C_in;
    if (form == SBI_CONV_AUTO) form = SBI_CONV_WINOGRAD;
    if (form == SBI_CONV_WINOGRAD && !(CONV_DIRECT && K == 5 && C_out % 16 == 0 && P >= 1 && 4 % P == 0))
        form = SBI_CONV_DIRECT;
    if (form == SBI_CONV_DIRECT && !(CONV_DIRECT && C_out % 16 == 0)) form = SBI_CONV_GEMM;
    return form == SBI_CONV_WINOGRAD || form == SBI_CONV_DIRECT ? form : SBI_CONV_GEMM;
}

const char *sbi_conv1d_pool_form_name(int form)
{
    return form == SBI_CONV_WINOGRAD ? "winograd F(4,5)"
           : form == SBI_CONV_DIRECT ? "direct"
           : form == SBI_CONV_GEMM   ? "im2col + gemm"
                                     : "auto";
}

void sbi_conv1d_pool_forward_form(sbi_real *q, sbi_real *arg, sbi_real *scratch, const sbi_real *inp,
                                  const sbi_real *w, const sbi_real *b, int B, int L, int C_in, int C_out, int K,
                                  int P, int form)
{
    int L_out = L - K + 1, Q = L_out / P, KC = K * C_in;
    sbi_real *rest = scratch + (size_t)SBI_CONV_BLOCK_ROWS * L_out * C_out; /* wt (K C_in, C_out) or cols */
    form = sbi_conv1d_pool_form(form, C_in, C_out, K, P);
#if CONV_DIRECT
    if (form == SBI_CONV_WINOGRAD) {
        wino_forward(q, arg, scratch, inp, w, b, B, L, C_in, C_out, P);
        return;
    }
#endif
    if (form == SBI_CONV_DIRECT)
        for (int o = 0; o < C_out; ++o)
            for (int j = 0; j < KC; ++j) rest[(size_t)j * C_out + o] = w[(size_t)o * KC + j];
    for (int n0 = 0; n0 < B; n0 += SBI_CONV_BLOCK_ROWS) {
        int nb = B - n0 < SBI_CONV_BLOCK_ROWS ? B - n0 : SBI_CONV_BLOCK_ROWS;
#if CONV_DIRECT
        if (form == SBI_CONV_DIRECT)
            conv_direct(scratch, inp + (size_t)n0 * L * C_in, rest, nb, L, C_in, C_out, K);
        else
#endif
        {
            /* scratch (nb L_out, C_out) = cols (nb L_out, K C_in) @ w^T */
            im2col(rest, inp + (size_t)n0 * L * C_in, nb, L, C_in, K);
            sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb * L_out, C_out, KC, 1, rest, KC, w, KC, 0, scratch,
                      C_out);
        }
        bias_relu_pool(q + (size_t)n0 * Q * C_out, arg + (size_t)n0 * Q * C_out, scratch, b, nb, L_out, C_out, P);
    }
}

void sbi_conv1d_pool_forward(sbi_real *q, sbi_real *arg, sbi_real *scratch, const sbi_real *inp, const sbi_real *w,
                             const sbi_real *b, int B, int L, int C_in, int C_out, int K, int P)
{
    sbi_conv1d_pool_forward_form(q, arg, scratch, inp, w, b, B, L, C_in, C_out, K, P, SBI_CONV_AUTO);
}

/* Batch rows per weight-gradient pass.  One row's input (14.6 KB at the
 * reference shape) stays in the L1 cache; blocks of 2, 4 and 8 rows (longer
 * lists, but their input in L2) were slower. */
enum { CONV_DW_ROWS = 1 };

/* The backward's lists (in scalars; the offsets and counts are ints in
 * slots of sbi_real): the channel lists of a block of rows, 2 C_out
 * CONV_DW_ROWS Q, and their counts C_out; one row's position lists,
 * 2 (Q C_out + 8) (the packed stores write eight lanes), their starts
 * Q P + 1, and sel, Q C_out. */
static size_t lists_size(int L, int C_out, int K, int P)
{
    size_t Q = (size_t)((L - K + 1) / P);
    return 2 * (size_t)C_out * CONV_DW_ROWS * Q + (size_t)C_out + 2 * (Q * C_out + 8) + Q * P + 1 + Q * C_out;
}

size_t sbi_conv1d_pool_scratch(int L, int C_in, int C_out, int K, int P)
{
    size_t L_out = (size_t)(L - K + 1), rows = SBI_CONV_BLOCK_ROWS * L_out, wsize = (size_t)K * C_in * C_out;
    size_t cols = rows * K * C_in, fwd = rows * C_out + (cols > wsize ? cols : wsize), bwd = lists_size(L, C_out, K, P);
#if CONV_DIRECT
    if (K == 5 && wino_scratch(L, C_in, C_out, K, P) > fwd) fwd = wino_scratch(L, C_in, C_out, K, P);
    if (sbi_conv1d_pool_form(SBI_CONV_WINOGRAD, C_in, C_out, K, P) == SBI_CONV_WINOGRAD && C_in % 16 == 0 &&
        wino_back_scratch(L, C_in, C_out, P) > bwd)
        bwd = wino_back_scratch(L, C_in, C_out, P);
#endif
    return fwd > bwd ? fwd : bwd;
}

void sbi_conv1d_pool_backward_form(sbi_real *dinp, sbi_real *dw, sbi_real *db, sbi_real *scratch,
                                   const sbi_real *dq, const sbi_real *q, const sbi_real *arg, const sbi_real *inp,
                                   const sbi_real *w, int B, int L, int C_in, int C_out, int K, int P, int form)
{
#if CONV_DIRECT
    if (sbi_conv1d_pool_form(form, C_in, C_out, K, P) == SBI_CONV_WINOGRAD && C_in % 16 == 0) {
        wino_backward(dinp, dw, db, scratch, dq, q, arg, inp, w, B, L, C_in, C_out, P);
        return;
    }
#else
    (void)form;
#endif
    int L_out = L - K + 1, Q = L_out / P, Lp = Q * P, cap = CONV_DW_ROWS * Q;
    sbi_real *cg = scratch, *pg = cg + (size_t)C_out * cap;
    int *co = (int *)(pg + (size_t)Q * C_out + 8), *po = co + (size_t)C_out * cap, *ccnt = po + (size_t)Q * C_out + 8;
    int *pstart = ccnt + C_out, *sel = pstart + Lp + 1;
    for (int n0 = 0; n0 < B; n0 += CONV_DW_ROWS) {
        int nb = B - n0 < CONV_DW_ROWS ? B - n0 : CONV_DW_ROWS;
        for (int o = 0; o < C_out; ++o) ccnt[o] = 0;
        for (int n = n0; n < n0 + nb; ++n) {
            size_t o = (size_t)n * Q * C_out;
            relu_pool_lists(pg, po, pstart, cg, co, ccnt, cap, (n - n0) * L * C_in, sel, db, dq + o, q + o, arg + o,
                            Q, C_in, C_out, K, P);
            if (dinp) sparse_dinp_row(dinp + (size_t)n * L * C_in, pg, po, pstart, w, L, Lp, C_in, K);
        }
        sparse_dw(dw, cg, co, ccnt, cap, inp + (size_t)n0 * L * C_in, K * C_in, C_out);
    }
}

void sbi_conv1d_pool_backward(sbi_real *dinp, sbi_real *dw, sbi_real *db, sbi_real *scratch, const sbi_real *dq,
                              const sbi_real *q, const sbi_real *arg, const sbi_real *inp, const sbi_real *w, int B,
                              int L, int C_in, int C_out, int K, int P)
{
    sbi_conv1d_pool_backward_form(dinp, dw, db, scratch, dq, q, arg, inp, w, B, L, C_in, C_out, K, P, SBI_CONV_AUTO);
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
    c->q1 = sbi_layout_act_overwritten(lay, &c->dq1, c->Q2 * C2);
    c->arg1 = sbi_layout_act(lay, NULL, c->Q2 * C2);
    c->scratch = sbi_layout_scratch(lay, sbi_conv1d_pool_scratch(c->Q1, C1, C2, K, P));
    c->out = sbi_layout_act(lay, &c->dout, E);
    return 0;
}

void sbi_conv_encoder_forward(sbi_conv_encoder *c, const sbi_real *inp, int B)
{
    memcpy(c->xin, inp, (size_t)B * c->L * sizeof(*inp));
    sbi_conv1d_pool_1ch_forward(c->q0, c->arg0, c->xin, c->w0, c->b0, B, c->L, c->C1, c->K, c->P);
    sbi_conv1d_pool_forward(c->q1, c->arg1, c->scratch, c->q0, c->w1, c->b1, B, c->Q1, c->C1, c->C2, c->K, c->P);
    sbi_linear_forward(c->out, c->q1, c->wp, c->bp, B, c->Q2 * c->C2, c->E);
}

void sbi_conv_encoder_backward(sbi_conv_encoder *c, int B)
{
    int F = c->Q2 * c->C2;
    if (B <= 0) return;
    sbi_linear_backward(NULL, c->dwp, c->dbp, c->dout, c->q1, c->wp, B, F, c->E);
    /* dq1 (B, F) = dout (B, E) @ wp (E, F), overwritten. */
    sbi__gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, F, c->E, 1, c->dout, c->E, c->wp, F, 0, c->dq1, F);
    sbi_conv1d_pool_backward(c->dq0, c->dw1, c->db1, c->scratch, c->dq1, c->q1, c->arg1, c->q0, c->w1, B, c->Q1, c->C1,
                             c->C2, c->K, c->P);
    sbi_conv1d_pool_1ch_backward(c->dw0, c->db0, c->dq0, c->q0, c->arg0, c->xin, B, c->L, c->C1, c->K, c->P);
}
