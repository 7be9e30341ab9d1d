/* Observation encoders for structured observation vectors: the full spectral
 * convolution encoder, the spectral patch encoder, the photometry point
 * encoder, a masked block MLP, and the hierarchical encoder that merges one
 * of them per block with a DeepSets aggregator.  Every encoder builds its
 * mask from the NaNs of x, so masked points reach no activation and no
 * pooling (see nn.h). */
#include <string.h>

#include "nn/nn_impl.h"

/* ---- shared pieces -------------------------------------------------------- */

/* An ELU MLP with R rows per batch row (a per-point or per-patch network):
 * the same weights as sbi_mlp_layout, activations of max_batch * R rows, no
 * residual connections.  Forward and backward are sbi_mlp_forward/_backward
 * over B * R rows. */
static int mlp_layout_rows(sbi_mlp *m, sbi_layout *lay, const char *name, int n_layers, const int *widths, int R)
{
    SBI_CHECK(n_layers >= 1 && n_layers <= SBI_MLP_MAX_LAYERS && R >= 1, SBI_ERR_INPUT, "%s: bad MLP shape", name);
    for (int l = 0; l <= n_layers; ++l)
        SBI_CHECK(widths[l] >= 1, SBI_ERR_INPUT, "%s: width %d is %d, must be >= 1", name, l, widths[l]);
    memset(m, 0, sizeof(*m));
    m->n_layers = n_layers;
    memcpy(m->widths, widths, (size_t)(n_layers + 1) * sizeof(*widths));
    m->activation = SBI_ACT_ELU;
    for (int l = 0; l < n_layers; ++l) {
        int cin = widths[l], cout = widths[l + 1];
        m->w[l] = sbi_layout_weight(lay, &m->dw[l], (size_t)cout * cin, cin, SBI_INIT_UNIFORM, "%s.w%d", name, l);
        m->b[l] = sbi_layout_weight(lay, &m->db[l], (size_t)cout, cin, SBI_INIT_UNIFORM, "%s.b%d", name, l);
        m->pre[l] = sbi_layout_act(lay, &m->dpre[l], cout * R);
        if (l < n_layers - 1) {
            m->a[l] = sbi_layout_act(lay, &m->da[l], cout * R);
            m->y[l] = m->a[l];
            m->dy[l] = m->da[l];
        }
    }
    m->out = m->pre[n_layers - 1];
    m->dout = m->dpre[n_layers - 1];
    return 0;
}

/* chan (B, L, 4) = [v m, sigma m, coord m, m] for the block's values v of
 * rows x (B, X); m = 0 where v is NaN. */
static void channels_forward(sbi_real *chan, const sbi_real *x, int X, int off, const float *coord,
                             const float *sigma, int B, int L)
{
    for (int b = 0; b < B; ++b)
        for (int l = 0; l < L; ++l) {
            sbi_real v = x[(size_t)b * X + off + l];
            sbi_real *c = chan + ((size_t)b * L + l) * SBI_ENC_CHANNELS;
            int ok = !isnan(v);
            c[0] = ok ? v : 0;
            c[1] = ok && sigma ? (sbi_real)sigma[l] : 0;
            c[2] = ok && coord ? (sbi_real)coord[l] : 0;
            c[3] = (sbi_real)ok;
        }
}

/* dx (B, X) += the value-channel gradient of dchan (B, L, S) at unmasked
 * points; mask (B, L, Sm) is read at stride Sm. */
static void value_backward(sbi_real *dx, const sbi_real *dchan, int S, const sbi_real *mask, int Sm, int X, int off,
                           int B, int L)
{
    for (int b = 0; b < B; ++b)
        for (int l = 0; l < L; ++l) {
            size_t p = (size_t)b * L + l;
            if (mask[p * Sm] != 0) dx[(size_t)b * X + off + l] += dchan[p * S];
        }
}

/* The k-th smallest of a (n), which is reordered (Hoare's selection with
 * the middle element as pivot, so the result is deterministic). */
static sbi_real select_kth(sbi_real *a, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        sbi_real pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) ++i;
            while (a[j] > pivot) --j;
            if (i <= j) {
                sbi_real t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* amp (B, 1) = log(SBI_ENC_AMP_EPS + lower median of |v| over the unmasked
 * points of chan (B, L, 4)); arg (B, 1) the point whose |v| is the median
 * (the first such), -1 when every point is masked.  scratch (B, L). */
static void amplitude_forward(sbi_real *amp, sbi_real *arg, sbi_real *scratch, const sbi_real *chan, int B, int L)
{
    for (int b = 0; b < B; ++b) {
        const sbi_real *c = chan + (size_t)b * L * SBI_ENC_CHANNELS;
        sbi_real *s = scratch + (size_t)b * L, med;
        int n = 0, idx = -1;
        for (int l = 0; l < L; ++l)
            if (c[l * SBI_ENC_CHANNELS + 3] != 0) s[n++] = fabs(c[l * SBI_ENC_CHANNELS]);
        if (n == 0) {
            amp[b] = (sbi_real)sbi__log(SBI_ENC_AMP_EPS);
            arg[b] = -1;
            continue;
        }
        med = select_kth(s, n, (n - 1) / 2);
        for (int l = 0; l < L && idx < 0; ++l)
            if (c[l * SBI_ENC_CHANNELS + 3] != 0 && fabs(c[l * SBI_ENC_CHANNELS]) == med) idx = l;
        amp[b] = sbi__log((sbi_real)SBI_ENC_AMP_EPS + med);
        arg[b] = (sbi_real)idx;
    }
}

/* dx (B, X) += d amp / d v from damp (B, 1): the median point receives
 * damp sign(v) / (eps + median), with eps + median = exp(amp). */
static void amplitude_backward(sbi_real *dx, const sbi_real *damp, const sbi_real *amp, const sbi_real *arg,
                               const sbi_real *chan, int X, int off, int B, int L)
{
    for (int b = 0; b < B; ++b) {
        int idx = (int)arg[b];
        sbi_real v;
        if (idx < 0) continue;
        v = chan[((size_t)b * L + idx) * SBI_ENC_CHANNELS];
        if (v != 0) dx[(size_t)b * X + off + idx] += damp[b] * (v > 0 ? 1 : -1) / sbi__exp(amp[b]);
    }
}

/* Copy rows src (B, n) into columns [c0, c0 + n) of dst (B, ld), or add
 * them back (backward). */
static void put_cols(sbi_real *dst, int ld, int c0, const sbi_real *src, int n, int B)
{
    for (int b = 0; b < B; ++b) memcpy(dst + (size_t)b * ld + c0, src + (size_t)b * n, (size_t)n * sizeof(*dst));
}

static void add_cols(sbi_real *dst, int n, const sbi_real *src, int ld, int c0, int B)
{
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < n; ++j) dst[(size_t)b * n + j] += src[(size_t)b * ld + c0 + j];
}

/* ---- spectral convolution encoder ----------------------------------------- */

int sbi_spectral_conv_encoder_min_length(int K) { return 3 * (K - 1) + 1; }

int sbi_spectral_conv_encoder_layout(sbi_spectral_conv_encoder *c, sbi_layout *lay, const char *name,
                                     const sbi_obs_block *blk, int X, int C1, int C2, int C3, int K, int H, int E)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_ENC_CHANNELS;
    int lmin = sbi_spectral_conv_encoder_min_length(K);
    char sub[64];
    SBI_CHECK(K >= 1 && C1 >= 1 && C2 >= 1 && C3 >= 1 && H >= 1 && E >= 1, SBI_ERR_INPUT, "%s: bad encoder shape",
              name);
    SBI_CHECK(blk->size >= lmin, SBI_ERR_INPUT,
              "%s: the conv1d_full encoder needs blocks of at least %d values, got %d", name, lmin, blk->size);
    memset(c, 0, sizeof(*c));
    c->X = X;
    c->offset = blk->offset;
    c->L = blk->size;
    c->K = K;
    c->C1 = C1;
    c->C2 = C2;
    c->C3 = C3;
    c->H = H;
    c->E = E;
    c->L1 = c->L - K + 1;
    c->L2 = c->L1 - K + 1;
    c->L3 = c->L2 - K + 1;
    c->coord = blk->coord;
    c->sigma = blk->sigma;
    c->w0 = sbi_layout_weight(lay, &c->dw0, (size_t)C1 * K * F, K * F, SBI_INIT_UNIFORM, "%s.conv0.w", name);
    c->b0 = sbi_layout_weight(lay, &c->db0, (size_t)C1, K * F, SBI_INIT_UNIFORM, "%s.conv0.b", name);
    c->w1 = sbi_layout_weight(lay, &c->dw1, (size_t)C2 * K * C1, K * C1, SBI_INIT_UNIFORM, "%s.conv1.w", name);
    c->b1 = sbi_layout_weight(lay, &c->db1, (size_t)C2, K * C1, SBI_INIT_UNIFORM, "%s.conv1.b", name);
    c->w2 = sbi_layout_weight(lay, &c->dw2, (size_t)C3 * K * C2, K * C2, SBI_INIT_UNIFORM, "%s.conv2.w", name);
    c->b2 = sbi_layout_weight(lay, &c->db2, (size_t)C3, K * C2, SBI_INIT_UNIFORM, "%s.conv2.b", name);
    c->chan = sbi_layout_act(lay, &c->dchan, c->L * F);
    c->scratch = sbi_layout_act(lay, NULL, c->L);
    c->amp = sbi_layout_act(lay, &c->damp, 1);
    c->amp_arg = sbi_layout_act(lay, NULL, 1);
    c->cols0 = sbi_layout_act(lay, &c->dcols0, c->L1 * K * F);
    c->c0 = sbi_layout_act(lay, &c->dc0, c->L1 * C1);
    c->r0 = sbi_layout_act(lay, &c->dr0, c->L1 * C1);
    c->cols1 = sbi_layout_act(lay, &c->dcols1, c->L2 * K * C1);
    c->c1 = sbi_layout_act(lay, &c->dc1, c->L2 * C2);
    c->r1 = sbi_layout_act(lay, &c->dr1, c->L2 * C2);
    c->cols2 = sbi_layout_act(lay, &c->dcols2, c->L3 * K * C2);
    c->c2 = sbi_layout_act(lay, &c->dc2, c->L3 * C3);
    c->r2 = sbi_layout_act(lay, &c->dr2, c->L3 * C3);
    c->pool_w = sbi_layout_act(lay, NULL, c->L3 + 1);
    c->feat = sbi_layout_act(lay, &c->dfeat, C3 + A);
    snprintf(sub, sizeof(sub), "%s.amp", name);
    SBI_CALL(mlp_layout_rows(&c->amp_net, lay, sub, 2, (const int[]){1, A, A}, 1));
    snprintf(sub, sizeof(sub), "%s.head", name);
    SBI_CALL(mlp_layout_rows(&c->head, lay, sub, 2, (const int[]){C3 + A, H, E}, 1));
    c->out = c->head.out;
    c->dout = c->head.dout;
    return 0;
}

void sbi_spectral_conv_encoder_forward(sbi_spectral_conv_encoder *c, const sbi_real *x, int B)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_ENC_CHANNELS, W = c->C3 + A, ctr = 3 * (c->K - 1) / 2;
    channels_forward(c->chan, x, c->X, c->offset, c->coord, c->sigma, B, c->L);
    amplitude_forward(c->amp, c->amp_arg, c->scratch, c->chan, B, c->L);
    sbi_conv1d_forward(c->c0, c->cols0, c->chan, c->w0, c->b0, B, c->L, F, c->C1, c->K);
    sbi_relu_forward(c->r0, c->c0, (size_t)B * c->L1 * c->C1);
    sbi_conv1d_forward(c->c1, c->cols1, c->r0, c->w1, c->b1, B, c->L1, c->C1, c->C2, c->K);
    sbi_relu_forward(c->r1, c->c1, (size_t)B * c->L2 * c->C2);
    sbi_conv1d_forward(c->c2, c->cols2, c->r1, c->w2, c->b2, B, c->L2, c->C2, c->C3, c->K);
    sbi_relu_forward(c->r2, c->c2, (size_t)B * c->L3 * c->C3);
    /* Masked mean: output position l sees inputs l .. l + 3 (K - 1) and
     * counts when the centre one, l + ctr, is unmasked. */
    for (int b = 0; b < B; ++b) {
        sbi_real *pw = c->pool_w + (size_t)b * (c->L3 + 1), *f = c->feat + (size_t)b * W, cnt = 0, inv;
        const sbi_real *r = c->r2 + (size_t)b * c->L3 * c->C3;
        for (int l = 0; l < c->L3; ++l) cnt += c->chan[((size_t)b * c->L + l + ctr) * F + 3];
        inv = cnt > 0 ? 1 / cnt : 0;
        for (int l = 0; l < c->L3; ++l) pw[l] = c->chan[((size_t)b * c->L + l + ctr) * F + 3] * inv;
        pw[c->L3] = cnt;
        for (int j = 0; j < c->C3; ++j) f[j] = 0;
        for (int l = 0; l < c->L3; ++l)
            if (pw[l] != 0)
                for (int j = 0; j < c->C3; ++j) f[j] += pw[l] * r[(size_t)l * c->C3 + j];
    }
    sbi_mlp_forward(&c->amp_net, c->amp, B);
    put_cols(c->feat, W, c->C3, c->amp_net.out, A, B);
    sbi_mlp_forward(&c->head, c->feat, B);
}

void sbi_spectral_conv_encoder_backward(sbi_spectral_conv_encoder *c, sbi_real *dx, const sbi_real *x, int B)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_ENC_CHANNELS, W = c->C3 + A;
    sbi_mlp_backward(&c->head, c->dfeat, c->feat, B);
    add_cols(c->amp_net.dout, A, c->dfeat, W, c->C3, B);
    sbi_mlp_backward(&c->amp_net, dx ? c->damp : NULL, c->amp, B);
    for (int b = 0; b < B; ++b) {
        const sbi_real *pw = c->pool_w + (size_t)b * (c->L3 + 1), *g = c->dfeat + (size_t)b * W;
        sbi_real *dr = c->dr2 + (size_t)b * c->L3 * c->C3;
        for (int l = 0; l < c->L3; ++l)
            if (pw[l] != 0)
                for (int j = 0; j < c->C3; ++j) dr[(size_t)l * c->C3 + j] += pw[l] * g[j];
    }
    sbi_relu_backward(c->dc2, c->dr2, c->c2, (size_t)B * c->L3 * c->C3);
    sbi_conv1d_backward(c->dr1, c->dcols2, c->dw2, c->db2, c->dc2, c->cols2, c->w2, B, c->L2, c->C2, c->C3, c->K);
    sbi_relu_backward(c->dc1, c->dr1, c->c1, (size_t)B * c->L2 * c->C2);
    sbi_conv1d_backward(c->dr0, c->dcols1, c->dw1, c->db1, c->dc1, c->cols1, c->w1, B, c->L1, c->C1, c->C2, c->K);
    sbi_relu_backward(c->dc0, c->dr0, c->c0, (size_t)B * c->L1 * c->C1);
    sbi_conv1d_backward(dx ? c->dchan : NULL, dx ? c->dcols0 : NULL, c->dw0, c->db0, c->dc0, c->cols0, c->w0, B, c->L,
                        F, c->C1, c->K);
    if (!dx) return;
    value_backward(dx, c->dchan, F, c->chan + 3, F, c->X, c->offset, B, c->L);
    amplitude_backward(dx, c->damp, c->amp, c->amp_arg, c->chan, c->X, c->offset, B, c->L);
}

/* ---- spectral patch encoder ----------------------------------------------- */

int sbi_patch_encoder_layout(sbi_patch_encoder *p, sbi_layout *lay, const char *name, const sbi_obs_block *blk,
                             int X, int P, int H, int E)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_PATCH_FEATURES;
    char sub[64];
    SBI_CHECK(P >= 1 && H >= 1 && E >= 1 && blk->size >= 1, SBI_ERR_INPUT, "%s: bad encoder shape", name);
    memset(p, 0, sizeof(*p));
    p->X = X;
    p->offset = blk->offset;
    p->L = blk->size;
    p->P = P;
    p->NP = (p->L + P - 1) / P;
    p->H = H;
    p->E = E;
    p->coord = blk->coord;
    p->sigma = blk->sigma;
    p->chan = sbi_layout_act(lay, NULL, p->L * SBI_ENC_CHANNELS);
    p->scratch = sbi_layout_act(lay, NULL, p->L);
    p->amp = sbi_layout_act(lay, &p->damp, 1);
    p->amp_arg = sbi_layout_act(lay, NULL, 1);
    p->stats = sbi_layout_act(lay, NULL, p->NP * 3);
    p->feat = sbi_layout_act(lay, &p->dfeat, p->NP * F);
    p->pool_w = sbi_layout_act(lay, NULL, p->NP);
    p->cat = sbi_layout_act(lay, &p->dcat, H + A);
    snprintf(sub, sizeof(sub), "%s.patch", name);
    SBI_CALL(mlp_layout_rows(&p->patch_net, lay, sub, 2, (const int[]){F, H, H}, p->NP));
    snprintf(sub, sizeof(sub), "%s.amp", name);
    SBI_CALL(mlp_layout_rows(&p->amp_net, lay, sub, 2, (const int[]){1, A, A}, 1));
    snprintf(sub, sizeof(sub), "%s.head", name);
    SBI_CALL(mlp_layout_rows(&p->head, lay, sub, 2, (const int[]){H + A, H, E}, 1));
    p->out = p->head.out;
    p->dout = p->head.dout;
    return 0;
}

void sbi_patch_encoder_forward(sbi_patch_encoder *p, const sbi_real *x, int B)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_PATCH_FEATURES, S = SBI_ENC_CHANNELS, W = p->H + A;
    channels_forward(p->chan, x, p->X, p->offset, p->coord, p->sigma, B, p->L);
    amplitude_forward(p->amp, p->amp_arg, p->scratch, p->chan, B, p->L);
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < p->NP; ++j) {
            int lo = j * p->P, hi = lo + p->P < p->L ? lo + p->P : p->L;
            const sbi_real *c = p->chan + (size_t)b * p->L * S;
            sbi_real *f = p->feat + ((size_t)b * p->NP + j) * F, *st = p->stats + ((size_t)b * p->NP + j) * 3;
            sbi_real n = 0, sv = 0, ss = 0, sc = 0, stt = 0, vbar, tbar, var = 0, Stt = 0, Stv = 0;
            for (int l = lo; l < hi; ++l)
                if (c[l * S + 3] != 0) {
                    n += 1;
                    sv += c[l * S];
                    ss += c[l * S + 1];
                    sc += c[l * S + 2];
                    stt += (sbi_real)(l - lo) / p->P;
                }
            if (n == 0) {
                memset(f, 0, (size_t)F * sizeof(*f));
                memset(st, 0, 3 * sizeof(*st));
                continue;
            }
            vbar = sv / n;
            tbar = stt / n;
            for (int l = lo; l < hi; ++l)
                if (c[l * S + 3] != 0) {
                    sbi_real dv = c[l * S] - vbar, dt = (sbi_real)(l - lo) / p->P - tbar;
                    var += dv * dv;
                    Stt += dt * dt;
                    Stv += dt * dv;
                }
            f[0] = vbar;
            f[1] = sbi__sqrt(var / n + (sbi_real)SBI_ENC_STD_EPS);
            f[2] = Stt > 0 ? Stv / Stt : 0;
            f[3] = ss / n;
            f[4] = sc / n;
            f[5] = n / (hi - lo);
            st[0] = n;
            st[1] = tbar;
            st[2] = Stt;
        }
    sbi_mlp_forward(&p->patch_net, p->feat, B * p->NP);
    for (int b = 0; b < B; ++b) {
        sbi_real *pw = p->pool_w + (size_t)b * p->NP, *o = p->cat + (size_t)b * W, used = 0;
        for (int j = 0; j < p->NP; ++j) used += p->stats[((size_t)b * p->NP + j) * 3] > 0;
        for (int j = 0; j < p->NP; ++j) pw[j] = p->stats[((size_t)b * p->NP + j) * 3] > 0 ? 1 / used : 0;
        for (int h = 0; h < p->H; ++h) o[h] = 0;
        for (int j = 0; j < p->NP; ++j)
            if (pw[j] != 0)
                for (int h = 0; h < p->H; ++h) o[h] += pw[j] * p->patch_net.out[((size_t)b * p->NP + j) * p->H + h];
    }
    sbi_mlp_forward(&p->amp_net, p->amp, B);
    put_cols(p->cat, W, p->H, p->amp_net.out, A, B);
    sbi_mlp_forward(&p->head, p->cat, B);
}

void sbi_patch_encoder_backward(sbi_patch_encoder *p, sbi_real *dx, const sbi_real *x, int B)
{
    const int A = SBI_ENC_AMP_WIDTH, F = SBI_PATCH_FEATURES, S = SBI_ENC_CHANNELS, W = p->H + A;
    sbi_mlp_backward(&p->head, p->dcat, p->cat, B);
    add_cols(p->amp_net.dout, A, p->dcat, W, p->H, B);
    sbi_mlp_backward(&p->amp_net, dx ? p->damp : NULL, p->amp, B);
    for (int b = 0; b < B; ++b) {
        const sbi_real *pw = p->pool_w + (size_t)b * p->NP, *g = p->dcat + (size_t)b * W;
        for (int j = 0; j < p->NP; ++j)
            if (pw[j] != 0)
                for (int h = 0; h < p->H; ++h) p->patch_net.dout[((size_t)b * p->NP + j) * p->H + h] += pw[j] * g[h];
    }
    sbi_mlp_backward(&p->patch_net, dx ? p->dfeat : NULL, p->feat, B * p->NP);
    if (!dx) return;
    /* Only the mean, spread and slope depend on the values:
     *   d mean / dv_l = 1 / n,  d sd / dv_l = (v_l - mean) / (n sd),
     *   d slope / dv_l = (t_l - tbar) / Stt. */
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < p->NP; ++j) {
            int lo = j * p->P, hi = lo + p->P < p->L ? lo + p->P : p->L;
            const sbi_real *c = p->chan + (size_t)b * p->L * S;
            const sbi_real *f = p->feat + ((size_t)b * p->NP + j) * F, *st = p->stats + ((size_t)b * p->NP + j) * 3;
            const sbi_real *g = p->dfeat + ((size_t)b * p->NP + j) * F;
            sbi_real n = st[0];
            if (n == 0) continue;
            for (int l = lo; l < hi; ++l)
                if (c[l * S + 3] != 0) {
                    sbi_real d = g[0] / n + g[1] * (c[l * S] - f[0]) / (n * f[1]);
                    if (st[2] > 0) d += g[2] * ((sbi_real)(l - lo) / p->P - st[1]) / st[2];
                    dx[(size_t)b * p->X + p->offset + l] += d;
                }
        }
    amplitude_backward(dx, p->damp, p->amp, p->amp_arg, p->chan, p->X, p->offset, B, p->L);
}

/* ---- photometry encoder --------------------------------------------------- */

int sbi_photometry_encoder_layout(sbi_photometry_encoder *p, sbi_layout *lay, const char *name,
                                  const sbi_obs_block *blk, int X, int H, int E)
{
    char sub[64];
    SBI_CHECK(H >= 1 && E >= 1 && blk->size >= 1, SBI_ERR_INPUT, "%s: bad encoder shape", name);
    memset(p, 0, sizeof(*p));
    p->X = X;
    p->offset = blk->offset;
    p->L = blk->size;
    p->H = H;
    p->E = E;
    p->coord = blk->coord;
    p->sigma = blk->sigma;
    p->pts = sbi_layout_act(lay, &p->dpts, p->L * 4);
    p->mask = sbi_layout_act(lay, NULL, p->L);
    p->pooled = sbi_layout_act(lay, &p->dpooled, 2 * H);
    p->arg = sbi_layout_act(lay, NULL, H);
    p->count = sbi_layout_act(lay, NULL, 1);
    snprintf(sub, sizeof(sub), "%s.point", name);
    SBI_CALL(mlp_layout_rows(&p->point_net, lay, sub, 2, (const int[]){4, H, H}, p->L));
    p->wp = sbi_layout_weight(lay, &p->dwp, (size_t)E * 2 * H, 2 * H, SBI_INIT_UNIFORM, "%s.proj.w", name);
    p->bp = sbi_layout_weight(lay, &p->dbp, (size_t)E, 2 * H, SBI_INIT_UNIFORM, "%s.proj.b", name);
    p->out = sbi_layout_act(lay, &p->dout, E);
    return 0;
}

void sbi_photometry_encoder_forward(sbi_photometry_encoder *p, const sbi_real *x, int B)
{
    const int L = p->L, H = p->H;
    for (int b = 0; b < B; ++b) {
        const sbi_real *xb = x + (size_t)b * p->X + p->offset;
        sbi_real *m = p->mask + (size_t)b * L, n = 0;
        int prev = -1;
        for (int l = 0; l < L; ++l) {
            m[l] = !isnan(xb[l]);
            n += m[l];
        }
        p->count[b] = n;
        for (int l = 0; l < L; ++l) {
            sbi_real *q = p->pts + ((size_t)b * L + l) * 4, cl, w = 0;
            int next = l + 1;
            if (m[l] == 0) {
                q[0] = q[1] = q[2] = q[3] = 0;
                continue;
            }
            while (next < L && m[next] == 0) ++next;
            cl = p->coord ? p->coord[l] : 0;
            if (p->coord && prev >= 0 && next < L)
                w = fabs((sbi_real)p->coord[next] - (sbi_real)p->coord[prev]) / 2;
            else if (p->coord && next < L)
                w = fabs((sbi_real)p->coord[next] - cl);
            else if (p->coord && prev >= 0)
                w = fabs(cl - (sbi_real)p->coord[prev]);
            q[0] = xb[l];
            q[1] = p->sigma ? p->sigma[l] : 0;
            q[2] = cl;
            q[3] = w;
            prev = l;
        }
    }
    sbi_mlp_forward(&p->point_net, p->pts, B * L);
    for (int b = 0; b < B; ++b) {
        const sbi_real *m = p->mask + (size_t)b * L, *h = p->point_net.out + (size_t)b * L * H;
        sbi_real *mean = p->pooled + (size_t)b * 2 * H, *mx = mean + H, *arg = p->arg + (size_t)b * H;
        sbi_real n = p->count[b];
        for (int k = 0; k < H; ++k) {
            sbi_real s = 0, best = 0;
            int a = -1;
            for (int l = 0; l < L; ++l)
                if (m[l] != 0) {
                    sbi_real v = h[(size_t)l * H + k];
                    s += v;
                    if (a < 0 || v > best) {
                        best = v;
                        a = l;
                    }
                }
            mean[k] = n > 0 ? s / n : 0;
            mx[k] = best;
            arg[k] = (sbi_real)a;
        }
    }
    sbi_linear_forward(p->out, p->pooled, p->wp, p->bp, B, 2 * H, p->E);
}

void sbi_photometry_encoder_backward(sbi_photometry_encoder *p, sbi_real *dx, const sbi_real *x, int B)
{
    const int L = p->L, H = p->H;
    sbi_linear_backward(p->dpooled, p->dwp, p->dbp, p->dout, p->pooled, p->wp, B, 2 * H, p->E);
    for (int b = 0; b < B; ++b) {
        const sbi_real *m = p->mask + (size_t)b * L, *g = p->dpooled + (size_t)b * 2 * H;
        const sbi_real *arg = p->arg + (size_t)b * H;
        sbi_real *dh = p->point_net.dout + (size_t)b * L * H, n = p->count[b];
        if (n == 0) continue;
        for (int l = 0; l < L; ++l)
            if (m[l] != 0)
                for (int k = 0; k < H; ++k) dh[(size_t)l * H + k] += g[k] / n;
        for (int k = 0; k < H; ++k) dh[(size_t)arg[k] * H + k] += g[H + k];
    }
    sbi_mlp_backward(&p->point_net, dx ? p->dpts : NULL, p->pts, B * L);
    if (dx) value_backward(dx, p->dpts, 4, p->mask, 1, p->X, p->offset, B, L);
}

/* ---- masked block MLP ----------------------------------------------------- */

int sbi_block_mlp_encoder_layout(sbi_block_mlp_encoder *m, sbi_layout *lay, const char *name,
                                 const sbi_obs_block *blk, int X, int H, int E)
{
    SBI_CHECK(H >= 1 && E >= 1 && blk->size >= 1, SBI_ERR_INPUT, "%s: bad encoder shape", name);
    memset(m, 0, sizeof(*m));
    m->X = X;
    m->offset = blk->offset;
    m->L = blk->size;
    m->H = H;
    m->E = E;
    m->inp = sbi_layout_act(lay, &m->dinp, 2 * m->L);
    SBI_CALL(mlp_layout_rows(&m->net, lay, name, 2, (const int[]){2 * m->L, H, E}, 1));
    m->out = m->net.out;
    m->dout = m->net.dout;
    return 0;
}

void sbi_block_mlp_encoder_forward(sbi_block_mlp_encoder *m, const sbi_real *x, int B)
{
    for (int b = 0; b < B; ++b)
        for (int l = 0; l < m->L; ++l) {
            sbi_real v = x[(size_t)b * m->X + m->offset + l], *q = m->inp + ((size_t)b * m->L + l) * 2;
            int ok = !isnan(v);
            q[0] = ok ? v : 0;
            q[1] = (sbi_real)ok;
        }
    sbi_mlp_forward(&m->net, m->inp, B);
}

void sbi_block_mlp_encoder_backward(sbi_block_mlp_encoder *m, sbi_real *dx, const sbi_real *x, int B)
{
    sbi_mlp_backward(&m->net, dx ? m->dinp : NULL, m->inp, B);
    if (dx) value_backward(dx, m->dinp, 2, m->inp + 1, 2, m->X, m->offset, B, m->L);
}

/* ---- the observation encoder ---------------------------------------------- */

static int block_layout(sbi_block_encoder *be, sbi_layout *lay, const char *name, int kind,
                        const sbi_obs_block *blk, const sbi_obs_encoder_spec *s, int E)
{
    be->kind = kind;
    switch (kind) {
    case SBI_ENCODER_CONV1D_FULL:
        SBI_CALL(sbi_spectral_conv_encoder_layout(&be->u.conv, lay, name, blk, s->X, s->C[0], s->C[1], s->C[2], s->K,
                                                  s->H, E));
        be->out = be->u.conv.out;
        be->dout = be->u.conv.dout;
        break;
    case SBI_ENCODER_PATCH:
        SBI_CALL(sbi_patch_encoder_layout(&be->u.patch, lay, name, blk, s->X, s->P, s->H, E));
        be->out = be->u.patch.out;
        be->dout = be->u.patch.dout;
        break;
    case SBI_ENCODER_PHOTOMETRY:
        SBI_CALL(sbi_photometry_encoder_layout(&be->u.phot, lay, name, blk, s->X, s->H, E));
        be->out = be->u.phot.out;
        be->dout = be->u.phot.dout;
        break;
    default:
        SBI_CALL(sbi_block_mlp_encoder_layout(&be->u.mlp, lay, name, blk, s->X, s->H, E));
        be->out = be->u.mlp.out;
        be->dout = be->u.mlp.dout;
        break;
    }
    return 0;
}

static void block_forward(sbi_block_encoder *be, const sbi_real *x, int B)
{
    switch (be->kind) {
    case SBI_ENCODER_CONV1D_FULL: sbi_spectral_conv_encoder_forward(&be->u.conv, x, B); break;
    case SBI_ENCODER_PATCH: sbi_patch_encoder_forward(&be->u.patch, x, B); break;
    case SBI_ENCODER_PHOTOMETRY: sbi_photometry_encoder_forward(&be->u.phot, x, B); break;
    default: sbi_block_mlp_encoder_forward(&be->u.mlp, x, B); break;
    }
}

static void block_backward(sbi_block_encoder *be, sbi_real *dx, const sbi_real *x, int B)
{
    switch (be->kind) {
    case SBI_ENCODER_CONV1D_FULL: sbi_spectral_conv_encoder_backward(&be->u.conv, dx, x, B); break;
    case SBI_ENCODER_PATCH: sbi_patch_encoder_backward(&be->u.patch, dx, x, B); break;
    case SBI_ENCODER_PHOTOMETRY: sbi_photometry_encoder_backward(&be->u.phot, dx, x, B); break;
    default: sbi_block_mlp_encoder_backward(&be->u.mlp, dx, x, B); break;
    }
}

static int spec_check(const char *name, const sbi_obs_encoder_spec *s)
{
    int at = 0;
    SBI_CHECK(s->kind == SBI_ENCODER_CONV1D_FULL || s->kind == SBI_ENCODER_PATCH ||
                  s->kind == SBI_ENCODER_PHOTOMETRY || s->kind == SBI_ENCODER_HIERARCHICAL,
              SBI_ERR_INPUT, "%s: unknown encoder kind %d", name, s->kind);
    SBI_CHECK(s->X >= 1 && s->E >= 1 && s->H >= 1 && s->P >= 1, SBI_ERR_INPUT, "%s: bad encoder shape", name);
    SBI_CHECK(s->n_blocks >= 1 && s->n_blocks <= SBI_MAX_BLOCKS, SBI_ERR_INPUT, "%s: %d blocks, must be 1 to %d",
              name, s->n_blocks, SBI_MAX_BLOCKS);
    SBI_CHECK(s->kind == SBI_ENCODER_HIERARCHICAL || s->n_blocks == 1, SBI_ERR_INPUT,
              "%s: a single-block encoder takes one block spanning the observation", name);
    for (int i = 0; i < s->n_blocks; ++i) {
        const sbi_obs_block *b = &s->blocks[i];
        SBI_CHECK(b->offset == at && b->size >= 1, SBI_ERR_INPUT,
                  "%s: block %d must start at column %d and hold values", name, i, at);
        SBI_CHECK(b->modality >= SBI_BLOCK_SPECTRUM && b->modality <= SBI_BLOCK_AUXILIARY, SBI_ERR_INPUT,
                  "%s: block %d has unknown modality %d", name, i, b->modality);
        at += b->size;
    }
    SBI_CHECK(at == s->X, SBI_ERR_INPUT, "%s: blocks cover %d of %d columns", name, at, s->X);
    if (s->kind == SBI_ENCODER_HIERARCHICAL) {
        SBI_CHECK(s->E_b >= 1, SBI_ERR_INPUT, "%s: bad block embedding width %d", name, s->E_b);
        SBI_CHECK(s->spectrum_kind == SBI_ENCODER_CONV1D_FULL || s->spectrum_kind == SBI_ENCODER_PATCH,
                  SBI_ERR_INPUT, "%s: spectra need the conv1d_full or the patch encoder", name);
    }
    return 0;
}

/* The sub-encoder a hierarchical encoder runs on a block of this modality. */
static int block_kind(const sbi_obs_encoder_spec *s, int modality)
{
    if (modality == SBI_BLOCK_SPECTRUM) return s->spectrum_kind;
    if (modality == SBI_BLOCK_PHOTOMETRY) return SBI_ENCODER_PHOTOMETRY;
    return SBI_ENCODER_BLOCK_MLP;
}

int sbi_obs_encoder_layout(sbi_obs_encoder *e, sbi_layout *lay, const char *name, const sbi_obs_encoder_spec *spec)
{
    char sub[64];
    int nb, W;
    SBI_CALL(spec_check(name, spec));
    memset(e, 0, sizeof(*e));
    e->kind = spec->kind;
    e->X = spec->X;
    e->E = spec->E;
    e->H = spec->H;
    if (spec->kind != SBI_ENCODER_HIERARCHICAL) {
        e->n_blocks = 1;
        e->modality[0] = spec->blocks[0].modality;
        SBI_CALL(block_layout(&e->blocks[0], lay, name, spec->kind, &spec->blocks[0], spec, spec->E));
        e->out = e->blocks[0].out;
        e->dout = e->blocks[0].dout;
        return 0;
    }
    nb = e->n_blocks = spec->n_blocks;
    e->E_b = spec->E_b;
    W = e->E_b + 4;
    for (int i = 0; i < nb; ++i) {
        e->modality[i] = spec->blocks[i].modality;
        snprintf(sub, sizeof(sub), "%s.blk%d", name, i);
        SBI_CALL(block_layout(&e->blocks[i], lay, sub, block_kind(spec, e->modality[i]), &spec->blocks[i], spec,
                              e->E_b));
    }
    e->phin = sbi_layout_act(lay, &e->dphin, nb * W);
    e->agg = sbi_layout_act(lay, &e->dagg, e->H);
    snprintf(sub, sizeof(sub), "%s.phi", name);
    SBI_CALL(mlp_layout_rows(&e->phi, lay, sub, 2, (const int[]){W, e->H, e->H}, nb));
    snprintf(sub, sizeof(sub), "%s.rho", name);
    SBI_CALL(mlp_layout_rows(&e->rho, lay, sub, 2, (const int[]){e->H, e->H, e->E}, 1));
    e->out = e->rho.out;
    e->dout = e->rho.dout;
    return 0;
}

void sbi_obs_encoder_forward(sbi_obs_encoder *e, const sbi_real *x, int B)
{
    int nb = e->n_blocks, W = e->E_b + 4, H = e->H;
    if (e->kind != SBI_ENCODER_HIERARCHICAL) {
        block_forward(&e->blocks[0], x, B);
        return;
    }
    for (int i = 0; i < nb; ++i) {
        block_forward(&e->blocks[i], x, B);
        for (int b = 0; b < B; ++b) {
            sbi_real *q = e->phin + ((size_t)b * nb + i) * W;
            memcpy(q, e->blocks[i].out + (size_t)b * e->E_b, (size_t)e->E_b * sizeof(*q));
            for (int k = 0; k < 4; ++k) q[e->E_b + k] = k == e->modality[i];
        }
    }
    sbi_mlp_forward(&e->phi, e->phin, B * nb);
    for (int b = 0; b < B; ++b) {
        sbi_real *a = e->agg + (size_t)b * H;
        for (int h = 0; h < H; ++h) a[h] = 0;
        for (int i = 0; i < nb; ++i)
            for (int h = 0; h < H; ++h) a[h] += e->phi.out[((size_t)b * nb + i) * H + h];
        for (int h = 0; h < H; ++h) a[h] /= nb;
    }
    sbi_mlp_forward(&e->rho, e->agg, B);
}

void sbi_obs_encoder_backward(sbi_obs_encoder *e, sbi_real *dx, const sbi_real *x, int B)
{
    int nb = e->n_blocks, W = e->E_b + 4, H = e->H;
    if (e->kind != SBI_ENCODER_HIERARCHICAL) {
        block_backward(&e->blocks[0], dx, x, B);
        return;
    }
    sbi_mlp_backward(&e->rho, e->dagg, e->agg, B);
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < nb; ++i)
            for (int h = 0; h < H; ++h) e->phi.dout[((size_t)b * nb + i) * H + h] += e->dagg[(size_t)b * H + h] / nb;
    sbi_mlp_backward(&e->phi, e->dphin, e->phin, B * nb);
    for (int i = 0; i < nb; ++i) {
        add_cols(e->blocks[i].dout, e->E_b, e->dphin + (size_t)i * W, nb * W, 0, B);
        block_backward(&e->blocks[i], dx, x, B);
    }
}
