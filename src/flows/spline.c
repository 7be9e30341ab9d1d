/* The conditional rational-quadratic spline kernel (Durkan et al. 2019, eqs. 4
 * and 6-8, in the parametrisation of nflows' unconstrained spline with linear
 * tails); see flows_impl.h for the parameter and cache layouts.
 *
 * Inside the bound, bin k spans [x_k, x_k + w_k] -> [y_k, y_k + h_k] with end
 * derivatives d_k, d_{k+1}.  With xi = (x - x_k) / w_k, s = h_k / w_k and
 * t = xi (1 - xi):
 *   y  = y_k + h_k (s xi^2 + d_k t) / den,      den = s + (d_k + d_{k+1} - 2 s) t,
 *   y' = s^2 (d_{k+1} xi^2 + 2 s t + d_k (1 - xi)^2) / den^2.
 * The knots are x_k = -bound + 2 bound sum_{i<k} width_i (likewise y_k),
 * w_k = 2 bound width_k, h_k = 2 bound height_k. */
#include <math.h>
#include <string.h>

#ifdef __AVX__
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "flows/flows_impl.h"

static inline sbi_real softplus(sbi_real v) { return v > 20 ? v : sbi__log1p(sbi__exp(v)); }
static inline sbi_real sigmoid(sbi_real v) { return 1 / (1 + sbi__exp(-v)); }

#ifndef SBI_REAL_DOUBLE
/* The single-precision build computes the bin exponentials and softplus
 * values of one element a vector at a time (they are most of a sampling
 * draw's cost), with Cephes-style exp and log polynomials within 2 ulp of
 * expf/logf; the double-precision build keeps the libm loop below, which
 * the gradient checks differentiate. */
#ifdef __AVX__
#define RQS_VEC_BYTES 32
#else
#define RQS_VEC_BYTES 16
#endif
enum { RQS_LANES = RQS_VEC_BYTES / sizeof(float) };
typedef float rqs_vec __attribute__((vector_size(RQS_VEC_BYTES)));
typedef int32_t rqs_ivec __attribute__((vector_size(RQS_VEC_BYTES)));

static inline rqs_vec rv_select(rqs_ivec m, rqs_vec a, rqs_vec b)
{
    return (rqs_vec)(((rqs_ivec)a & m) | ((rqs_ivec)b & ~m));
}

/* exp(x) for x in [-87, 88] (clamped outside): 2^n p(r), r = x - n ln 2. */
static inline rqs_vec rv_exp(rqs_vec x)
{
    const rqs_vec zero = {0};
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    rqs_vec n, r, p;
    rqs_ivec e;
    x = rv_select(x < zero - 87.0f, zero - 87.0f, x);
    x = rv_select(x > zero + 88.0f, zero + 88.0f, x);
    n = (x * 1.44269504088896341f + magic) - magic;
    r = x - n * 0.693359375f - n * -2.12194440e-4f;
    p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    e = (__builtin_convertvector(n, rqs_ivec) + 127) << 23;
    return p * (rqs_vec)e;
}

/* log(x) for x in [1, 2]: x = 2^e m with m in [sqrt(1/2), sqrt(2)). */
static inline rqs_vec rv_log_1_2(rqs_vec x)
{
    const rqs_vec zero = {0}, one = zero + 1.0f;
    rqs_ivec big = x > zero + 1.41421356237f;
    rqs_vec e = rv_select(big, one, zero), m, z, y;
    m = rv_select(big, x * 0.5f, x) - 1.0f;
    z = m * m;
    y = m * 7.0376836292e-2f - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z + e * -2.12194440e-4f - 0.5f * z;
    return m + y + e * 0.693359375f;
}

/* softplus(v) = max(v, 0) + log1p(exp(-|v|)), with log1p(u) = log(1 + u) u /
 * ((1 + u) - 1) so small u keep their precision. */
static inline rqs_vec rv_softplus(rqs_vec v)
{
    const rqs_vec zero = {0};
    rqs_vec a = rv_select(v < zero, zero - v, v);
    rqs_vec u = rv_exp(zero - a), w = u + 1.0f, d = w - 1.0f;
    rqs_ivec exact = d == zero;
    rqs_vec l = rv_log_1_2(w) * u / rv_select(exact, zero + 1.0f, d);
    return rv_select(v > zero, v, zero) + rv_select(exact, u, l);
}

enum { RQS_PAD = (SBI_RQS_MAX_BINS + RQS_LANES - 1) / RQS_LANES * RQS_LANES };

static inline float rv_sum(rqs_vec v)
{
    float s = 0;
    for (int j = 0; j < RQS_LANES; ++j) s += v[j];
    return s;
}
#endif

/* W (K), H (K), Dv (K + 1) of one element from its raw parameters pe (3K - 1). */
static void rqs_bins(sbi_real *W, sbi_real *H, sbi_real *Dv, const sbi_real *pe, int K)
{
    const sbi_real mw = (sbi_real)SBI_RQS_MIN_WIDTH, mh = (sbi_real)SBI_RQS_MIN_HEIGHT;
    const sbi_real md = (sbi_real)SBI_RQS_MIN_DERIVATIVE;
    sbi_real mxw = pe[0], mxh = pe[K], sw = 0, sh = 0;
    for (int k = 1; k < K; ++k) {
        mxw = pe[k] > mxw ? pe[k] : mxw;
        mxh = pe[K + k] > mxh ? pe[K + k] : mxh;
    }
#ifndef SBI_REAL_DOUBLE
    /* Whole vectors over padded copies: the padding lanes give exp(-87)
     * (lost in the sums) and softplus values that are never read. */
    float ew[RQS_PAD], eh[RQS_PAD], sp[RQS_PAD];
    int nv = (K + RQS_LANES - 1) / RQS_LANES;
    rqs_vec vw = {0}, vh = {0};
    for (int k = 0; k < nv * RQS_LANES; ++k) {
        ew[k] = k < K ? pe[k] - mxw : -100.0f;
        eh[k] = k < K ? pe[K + k] - mxh : -100.0f;
        sp[k] = k < K - 1 ? pe[2 * K + k] : 0.0f;
    }
    for (int i = 0; i < nv; ++i) {
        rqs_vec x;
        memcpy(&x, ew + i * RQS_LANES, sizeof(x));
        x = rv_exp(x);
        vw += x;
        memcpy(ew + i * RQS_LANES, &x, sizeof(x));
        memcpy(&x, eh + i * RQS_LANES, sizeof(x));
        x = rv_exp(x);
        vh += x;
        memcpy(eh + i * RQS_LANES, &x, sizeof(x));
        memcpy(&x, sp + i * RQS_LANES, sizeof(x));
        x = rv_softplus(x) + md;
        memcpy(sp + i * RQS_LANES, &x, sizeof(x));
    }
    sw = (1 - mw * K) / rv_sum(vw);
    sh = (1 - mh * K) / rv_sum(vh);
    for (int k = 0; k < K; ++k) {
        W[k] = mw + sw * ew[k];
        H[k] = mh + sh * eh[k];
    }
    Dv[0] = Dv[K] = 1;
    for (int k = 1; k < K; ++k) Dv[k] = sp[k - 1];
#else
    for (int k = 0; k < K; ++k) {
        W[k] = sbi__exp(pe[k] - mxw);
        H[k] = sbi__exp(pe[K + k] - mxh);
        sw += W[k];
        sh += H[k];
    }
    sw = (1 - mw * K) / sw;
    sh = (1 - mh * K) / sh;
    for (int k = 0; k < K; ++k) {
        W[k] = mw + sw * W[k];
        H[k] = mh + sh * H[k];
    }
    Dv[0] = Dv[K] = 1;
    for (int k = 1; k < K; ++k) Dv[k] = md + softplus(pe[2 * K + k - 1]);
#endif
}

void sbi__rqs_forward(sbi_real *out, sbi_real *cache, sbi_real *logdet, const sbi_real *inp, const sbi_real *p,
                      int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D)
{
    const int P = SBI__RQS_PARAMS(K), C = SBI__RQS_CACHE(K);
    for (int b = 0; b < B; ++b) {
        const sbi_real *xb = inp + (size_t)b * D;
        sbi_real *yb = out + (size_t)b * D;
        sbi_real acc = 0;
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            sbi_real *ce = cache + ((size_t)b * n + j) * C;
            sbi_real *W = ce, *H = ce + K, *Dv = ce + 2 * K;
            sbi_real x = xb[i], xk = -bound, yk = -bound, wk, hk, xi, s, t, den, M;
            int k = 0;
            rqs_bins(W, H, Dv, p + (size_t)b * p_ld + (size_t)j * P, K);
            if (!(x >= -bound && x <= bound)) {
                ce[3 * K + 1] = -1;
                yb[i] = x;
                continue;
            }
            for (;; ++k) {
                wk = 2 * bound * W[k];
                hk = 2 * bound * H[k];
                if (k == K - 1 || x < xk + wk) break;
                xk += wk;
                yk += hk;
            }
            ce[3 * K + 1] = (sbi_real)k;
            xi = (x - xk) / wk;
            s = hk / wk;
            t = xi * (1 - xi);
            den = s + (Dv[k] + Dv[k + 1] - 2 * s) * t;
            M = Dv[k + 1] * xi * xi + 2 * s * t + Dv[k] * (1 - xi) * (1 - xi);
            yb[i] = yk + hk * (s * xi * xi + Dv[k] * t) / den;
            acc += sbi__log(s * s * M / (den * den));
        }
        logdet[b] += acc;
    }
}

void sbi__rqs_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                       const sbi_real *inp, const sbi_real *p, const sbi_real *cache, const int *idx, int n, int K,
                       sbi_real bound, int B, int D)
{
    const int P = SBI__RQS_PARAMS(K), C = SBI__RQS_CACHE(K);
    const sbi_real aw = 1 - (sbi_real)SBI_RQS_MIN_WIDTH * K, ah = 1 - (sbi_real)SBI_RQS_MIN_HEIGHT * K;
    const sbi_real mw = (sbi_real)SBI_RQS_MIN_WIDTH, mh = (sbi_real)SBI_RQS_MIN_HEIGHT;
    for (int b = 0; b < B; ++b) {
        const sbi_real *xb = inp + (size_t)b * D, *gb = dout + (size_t)b * D;
        sbi_real *dxb = dinp + (size_t)b * D;
        sbi_real gl = dlogdet[b];
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            const sbi_real *ce = cache + ((size_t)b * n + j) * C;
            const sbi_real *W = ce, *H = ce + K, *Dv = ce + 2 * K;
            const sbi_real *pe = p + (size_t)b * n * P + (size_t)j * P;
            sbi_real *dpe = dp + (size_t)b * n * P + (size_t)j * P;
            int k = (int)ce[3 * K + 1];
            sbi_real gy = gb[i], x = xb[i], xk = -bound, yk = -bound, wk, hk, d0, d1;
            sbi_real xi, s, t, den, N1, M, y_N1, y_den, G_xi, G_s, G_d0, G_d1, G_xk, G_wk, G_yk, G_hk;
            sbi_real sum;
            if (k < 0) {
                dxb[i] += gy;
                continue;
            }
            for (int q = 0; q < k; ++q) {
                xk += 2 * bound * W[q];
                yk += 2 * bound * H[q];
            }
            wk = 2 * bound * W[k];
            hk = 2 * bound * H[k];
            d0 = Dv[k];
            d1 = Dv[k + 1];
            xi = (x - xk) / wk;
            s = hk / wk;
            t = xi * (1 - xi);
            den = s + (d0 + d1 - 2 * s) * t;
            N1 = s * xi * xi + d0 * t;
            M = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi);
            /* y = y_k + h_k N1 / den; ld = 2 log s + log M - 2 log den. */
            y_N1 = hk / den;
            y_den = -hk * N1 / (den * den);
            G_xi = gy * (y_N1 * (2 * s * xi + d0 * (1 - 2 * xi)) + y_den * (d0 + d1 - 2 * s) * (1 - 2 * xi)) +
                   gl * ((2 * d1 * xi + 2 * s * (1 - 2 * xi) - 2 * d0 * (1 - xi)) / M -
                         2 * (d0 + d1 - 2 * s) * (1 - 2 * xi) / den);
            G_s = gy * (y_N1 * xi * xi + y_den * (1 - 2 * t)) + gl * (2 / s + 2 * t / M - 2 * (1 - 2 * t) / den);
            G_d0 = gy * (y_N1 + y_den) * t + gl * ((1 - xi) * (1 - xi) / M - 2 * t / den);
            G_d1 = gy * y_den * t + gl * (xi * xi / M - 2 * t / den);
            /* xi = (x - x_k) / w_k and s = h_k / w_k. */
            dxb[i] += G_xi / wk;
            G_xk = -G_xi / wk;
            G_wk = -(G_xi * xi + G_s * s) / wk;
            G_yk = gy;
            G_hk = gy * N1 / den + G_s / wk;
            /* Knots to normalised widths: x_k = -bound + 2 bound sum_{q<k} W_q,
             * w_k = 2 bound W_k; then through W = min + a softmax(raw). */
            sum = 0;
            for (int q = 0; q <= k; ++q) sum += (W[q] - mw) / aw * (q < k ? G_xk : G_wk);
            for (int q = 0; q < K; ++q) {
                sbi_real g = q < k ? G_xk : (q == k ? G_wk : 0);
                dpe[q] += 2 * bound * (W[q] - mw) * (g - sum);
            }
            sum = 0;
            for (int q = 0; q <= k; ++q) sum += (H[q] - mh) / ah * (q < k ? G_yk : G_hk);
            for (int q = 0; q < K; ++q) {
                sbi_real g = q < k ? G_yk : (q == k ? G_hk : 0);
                dpe[K + q] += 2 * bound * (H[q] - mh) * (g - sum);
            }
            if (k >= 1) dpe[2 * K + k - 1] += G_d0 * sigmoid(pe[2 * K + k - 1]);
            if (k + 1 <= K - 1) dpe[2 * K + k] += G_d1 * sigmoid(pe[2 * K + k]);
        }
    }
}

void sbi__rqs_inverse_ref(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                          int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D)
{
    const int P = SBI__RQS_PARAMS(K), C = SBI__RQS_CACHE(K);
    for (int b = 0; b < B; ++b) {
        const sbi_real *yb = out + (size_t)b * D;
        sbi_real *xb = inp + (size_t)b * D;
        sbi_real acc = 0;
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            sbi_real *ce = cache + ((size_t)b * n + j) * C;
            sbi_real *W = ce, *H = ce + K, *Dv = ce + 2 * K;
            sbi_real y = yb[i], xk = -bound, yk = -bound, wk, hk, s, dy, c2, qa, qb, qc, disc, xi, t, den, M;
            int k = 0;
            rqs_bins(W, H, Dv, p + (size_t)b * p_ld + (size_t)j * P, K);
            if (!(y >= -bound && y <= bound)) {
                ce[3 * K + 1] = -1;
                xb[i] = y;
                continue;
            }
            for (;; ++k) {
                wk = 2 * bound * W[k];
                hk = 2 * bound * H[k];
                if (k == K - 1 || y < yk + hk) break;
                xk += wk;
                yk += hk;
            }
            ce[3 * K + 1] = (sbi_real)k;
            s = hk / wk;
            dy = y - yk;
            c2 = Dv[k] + Dv[k + 1] - 2 * s;
            qa = hk * (s - Dv[k]) + dy * c2;
            qb = hk * Dv[k] - dy * c2;
            qc = -s * dy;
            disc = qb * qb - 4 * qa * qc;
            disc = disc > 0 ? disc : 0;
            /* The root in [0, 1], in the form that does not cancel. */
            xi = 2 * qc / (-qb - sbi__sqrt(disc));
            xb[i] = xk + xi * wk;
            t = xi * (1 - xi);
            den = s + c2 * t;
            M = Dv[k + 1] * xi * xi + 2 * s * t + Dv[k] * (1 - xi) * (1 - xi);
            acc += sbi__log(s * s * M / (den * den));
        }
        logdet[b] += acc;
    }
}

#ifndef SBI_REAL_DOUBLE
/* log(x) for finite x > 0: x = 2^e f with f in [1, 2), then rv_log_1_2. */
static inline rqs_vec rv_log(rqs_vec x)
{
    rqs_ivec bits = (rqs_ivec)x, e = ((bits >> 23) & 0xff) - 127;
    rqs_vec f = (rqs_vec)((bits & 0x007fffff) | 0x3f800000);
    return rv_log_1_2(f) + __builtin_convertvector(e, rqs_vec) * 0.693147180559945f;
}

static inline rqs_vec rv_sqrt(rqs_vec x)
{
#if defined(__AVX__)
    return (rqs_vec)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE__)
    return (rqs_vec)_mm_sqrt_ps((__m128)x);
#else
    rqs_vec r;
    for (int l = 0; l < RQS_LANES; ++l) r[l] = sqrtf(x[l]);
    return r;
#endif
}

/* The inverse RQS_LANES rows at a time for one transformed dim j: the raw
 * parameters of the lanes' rows are transposed into vectors, the 2K bin
 * exponentials and the knot sums are formed per lane, the bin is found by
 * comparing y with the height knots, and only the selected bin's two
 * interior derivatives go through softplus.  Rows past B repeat row B - 1
 * and are not stored. */
static void rqs_inverse_lanes(sbi_real *inp, sbi_real *logdet, const sbi_real *out, const sbi_real *p, int p_ld,
                              const int *idx, int n, int K, sbi_real bound, int b0, int nb, int D)
{
    const rqs_vec zero = {0};
    const float mw = (float)SBI_RQS_MIN_WIDTH, mh = (float)SBI_RQS_MIN_HEIGHT, md = (float)SBI_RQS_MIN_DERIVATIVE;
    const float aw = 1 - mw * K, ah = 1 - mh * K, two_b = 2 * bound;
    const int P = SBI__RQS_PARAMS(K);
    rqs_vec acc = zero;
    for (int j = 0; j < n; ++j) {
        int i = idx ? idx[j] : j;
        rqs_vec raw[3 * SBI_RQS_MAX_BINS], y, yc, xc, xk, yk, wk, hk, rlo, rhi, sw = zero, sh = zero, mxw, mxh;
        rqs_vec s, dy, c2, qa, qb, qc, disc, xi, t, den, M, dlo, dhi, x, term;
        rqs_ivec bin = {0}, inside;
        for (int l = 0; l < RQS_LANES; ++l) {
            int b = b0 + (l < nb ? l : nb - 1);
            const sbi_real *pe = p + (size_t)b * p_ld + (size_t)j * P;
            for (int k = 0; k < P; ++k) raw[k][l] = pe[k];
            y[l] = out[(size_t)b * D + i];
        }
        mxw = raw[0];
        mxh = raw[K];
        for (int k = 1; k < K; ++k) {
            mxw = rv_select(raw[k] > mxw, raw[k], mxw);
            mxh = rv_select(raw[K + k] > mxh, raw[K + k], mxh);
        }
        for (int k = 0; k < K; ++k) {
            raw[k] = rv_exp(raw[k] - mxw);
            raw[K + k] = rv_exp(raw[K + k] - mxh);
            sw += raw[k];
            sh += raw[K + k];
        }
        sw = aw / sw;
        sh = ah / sh;
        inside = (y >= zero - bound) & (y <= zero + bound);
        xc = yc = zero - bound;
        xk = yk = wk = hk = rlo = rhi = zero;
        for (int k = 0; k < K; ++k) {
            rqs_vec w = two_b * (mw + sw * raw[k]), h = two_b * (mh + sh * raw[K + k]);
            rqs_ivec take = y >= yc;
            if (k == 0) take = take | ~take;
            xk = rv_select(take, xc, xk);
            yk = rv_select(take, yc, yk);
            wk = rv_select(take, w, wk);
            hk = rv_select(take, h, hk);
            bin = (take & k) | (~take & bin);
            if (k >= 1) rlo = rv_select(take, raw[2 * K + k - 1], rlo);
            if (k < K - 1) rhi = rv_select(take, raw[2 * K + k], rhi);
            xc += w;
            yc += h;
        }
        dlo = rv_select(bin == 0, zero + 1.0f, rv_softplus(rlo) + md);
        dhi = rv_select(bin == K - 1, zero + 1.0f, rv_softplus(rhi) + md);
        s = hk / wk;
        dy = rv_select(inside, y, yk) - yk;
        c2 = dlo + dhi - 2 * s;
        qa = hk * (s - dlo) + dy * c2;
        qb = hk * dlo - dy * c2;
        qc = -s * dy;
        disc = qb * qb - 4 * qa * qc;
        disc = rv_select(disc > zero, disc, zero);
        /* The root in [0, 1], in the form that does not cancel. */
        xi = 2 * qc / (-qb - rv_sqrt(disc));
        x = xk + xi * wk;
        t = xi * (1 - xi);
        den = s + c2 * t;
        M = dhi * xi * xi + 2 * s * t + dlo * (1 - xi) * (1 - xi);
        term = rv_log(s * s * M / (den * den));
        acc += rv_select(inside, term, zero);
        x = rv_select(inside, x, y);
        for (int l = 0; l < nb; ++l) inp[(size_t)(b0 + l) * D + i] = x[l];
    }
    for (int l = 0; l < nb; ++l) logdet[b0 + l] += acc[l];
}
#endif

void sbi__rqs_inverse(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                      int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D)
{
#ifndef SBI_REAL_DOUBLE
    (void)cache;
    for (int b0 = 0; b0 < B; b0 += RQS_LANES)
        rqs_inverse_lanes(inp, logdet, out, p, p_ld, idx, n, K, bound, b0, B - b0 < RQS_LANES ? B - b0 : RQS_LANES,
                          D);
#else
    sbi__rqs_inverse_ref(inp, cache, logdet, out, p, p_ld, idx, n, K, bound, B, D);
#endif
}
