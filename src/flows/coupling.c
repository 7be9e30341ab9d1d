/* The conditional elementwise affine kernel and the coupling layer (affine
 * or rational-quadratic spline). */
#include <string.h>

#include "flows/flows_impl.h"

void sbi__affine_forward(sbi_real *out, sbi_real *s, sbi_real *es, sbi_real *logdet, const sbi_real *inp,
                         const sbi_real *p, int p_ld, const int *idx, int n, int B, int D)
{
    const sbi_real c = (sbi_real)SBI_AFFINE_CLAMP;
    for (int b = 0; b < B; ++b) {
        const sbi_real *pb = p + (size_t)b * p_ld; /* [shift (n) | raw (n)] */
        const sbi_real *xb = inp + (size_t)b * D;
        sbi_real *yb = out + (size_t)b * D;
        sbi_real *sb = s + (size_t)b * n, *eb = es + (size_t)b * n;
        sbi_real acc = 0;
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            sbi_real sj = c * sbi__tanh(pb[n + j] / c);
            sbi_real ej = sbi__exp(sj);
            sb[j] = sj;
            eb[j] = ej;
            yb[i] = xb[i] * ej + pb[j];
            acc += sj;
        }
        logdet[b] += acc;
    }
}

void sbi__affine_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                          const sbi_real *inp, const sbi_real *s, const sbi_real *es, const int *idx, int n, int B,
                          int D)
{
    const sbi_real c = (sbi_real)SBI_AFFINE_CLAMP;
    for (int b = 0; b < B; ++b) {
        sbi_real *dpb = dp + (size_t)b * 2 * n;
        const sbi_real *xb = inp + (size_t)b * D, *gb = dout + (size_t)b * D;
        sbi_real *dxb = dinp + (size_t)b * D;
        const sbi_real *sb = s + (size_t)b * n, *eb = es + (size_t)b * n;
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            sbi_real g = gb[i];
            sbi_real t = sb[j] / c;
            /* d out / d s = inp * exp(s); d logdet / d s = 1; d s / d raw = 1 - tanh^2. */
            sbi_real ds = g * xb[i] * eb[j] + dlogdet[b];
            dpb[j] += g;
            dpb[n + j] += ds * (1 - t * t);
            dxb[i] += g * eb[j];
        }
    }
}

void sbi__affine_inverse(sbi_real *inp, sbi_real *s, sbi_real *es, sbi_real *logdet, const sbi_real *out,
                         const sbi_real *p, int p_ld, const int *idx, int n, int B, int D)
{
    const sbi_real c = (sbi_real)SBI_AFFINE_CLAMP;
    for (int b = 0; b < B; ++b) {
        const sbi_real *pb = p + (size_t)b * p_ld;
        const sbi_real *yb = out + (size_t)b * D;
        sbi_real *xb = inp + (size_t)b * D;
        sbi_real *sb = s + (size_t)b * n, *eb = es + (size_t)b * n;
        sbi_real acc = 0;
        for (int j = 0; j < n; ++j) {
            int i = idx ? idx[j] : j;
            sbi_real sj = c * sbi__tanh(pb[n + j] / c);
            sbi_real ej = sbi__exp(sj);
            sb[j] = sj;
            eb[j] = ej;
            xb[i] = (yb[i] - pb[j]) / ej;
            acc += sj;
        }
        logdet[b] += acc;
    }
}

static int coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E, const int *cond_idx,
                           int dc, const int *trans_idx, int hidden, int hidden_layers)
{
    int widths[SBI_MLP_MAX_LAYERS + 1];
    char net_name[40];
    SBI_CHECK(dc >= 0 && dc < D && E >= 1, SBI_ERR_INPUT, "%s: bad split %d of %d dims", name, dc, D);
    SBI_CHECK(hidden_layers >= 1 && hidden_layers < SBI_MLP_MAX_LAYERS, SBI_ERR_INPUT,
              "%s: hidden_layers must be in [1, %d], got %d", name, SBI_MLP_MAX_LAYERS - 1, hidden_layers);
    c->D = D;
    c->dc = dc;
    c->dt = D - dc;
    c->E = E;
    c->cond_idx = cond_idx;
    c->trans_idx = trans_idx;
    c->P = c->kind == SBI__COUPLING_SPLINE ? SBI__RQS_PARAMS(c->n_bins) : 2;
    widths[0] = dc + E;
    for (int l = 1; l <= hidden_layers; ++l) widths[l] = hidden;
    widths[hidden_layers + 1] = c->P * c->dt;
    snprintf(net_name, sizeof(net_name), "%s.net", name);
    SBI_CALL(sbi_mlp_layout(&c->net, lay, net_name, hidden_layers + 1, widths, SBI_ACT_ELU, 1, 1));
    c->cat = sbi_layout_act(lay, &c->dcat, dc + E);
    if (c->kind == SBI__COUPLING_SPLINE) {
        c->cache = sbi_layout_act(lay, NULL, c->dt * SBI__RQS_CACHE(c->n_bins));
    } else {
        c->s = sbi_layout_act(lay, NULL, c->dt);
        c->es = sbi_layout_act(lay, NULL, c->dt);
    }
    return 0;
}

int sbi__coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E, const int *cond_idx,
                         int dc, const int *trans_idx, int hidden, int hidden_layers)
{
    c->kind = SBI__COUPLING_AFFINE;
    SBI_CALL(coupling_layout(c, lay, name, D, E, cond_idx, dc, trans_idx, hidden, hidden_layers));
    return 0;
}

int sbi__spline_coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E,
                                const int *cond_idx, int dc, const int *trans_idx, int hidden, int hidden_layers,
                                int n_bins, sbi_real bound)
{
    SBI_CHECK(n_bins >= 2 && n_bins <= SBI_RQS_MAX_BINS && bound > 0, SBI_ERR_INPUT,
              "%s: a spline needs 2 to %d bins and a positive bound", name, SBI_RQS_MAX_BINS);
    c->kind = SBI__COUPLING_SPLINE;
    c->n_bins = n_bins;
    c->bound = bound;
    SBI_CALL(coupling_layout(c, lay, name, D, E, cond_idx, dc, trans_idx, hidden, hidden_layers));
    return 0;
}

void sbi__coupling_init(sbi__coupling *c)
{
    int K = c->n_bins, P = c->P;
    sbi_real *bias = c->net.b[c->net.n_layers - 1]; /* (dt P) */
    if (c->kind != SBI__COUPLING_SPLINE) return;
    for (int j = 0; j < c->dt; ++j)
        for (int k = 0; k < K - 1; ++k) bias[j * P + 2 * K + k] = (sbi_real)SBI__RQS_IDENTITY_RAW;
}

/* cat (B, dc + E) = [v[cond_idx], e] for v (B, D). */
static void gather_input(sbi__coupling *c, const sbi_real *v, const sbi_real *e, int e_ld, int B)
{
    int w = c->dc + c->E;
    for (int b = 0; b < B; ++b) {
        sbi_real *cb = c->cat + (size_t)b * w;
        const sbi_real *vb = v + (size_t)b * c->D;
        for (int j = 0; j < c->dc; ++j) cb[j] = vb[c->cond_idx[j]];
        memcpy(cb + c->dc, e + (size_t)b * e_ld, (size_t)c->E * sizeof(*cb));
    }
}

/* dst[b, cond_idx] = src[b, cond_idx] for (B, D) rows. */
static void copy_cond(const sbi__coupling *c, sbi_real *dst, const sbi_real *src, int B)
{
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < c->dc; ++j) {
            size_t k = (size_t)b * c->D + c->cond_idx[j];
            dst[k] = src[k];
        }
}

void sbi__coupling_forward(sbi__coupling *c, sbi_real *out, sbi_real *logdet, const sbi_real *inp, const sbi_real *e,
                           int e_ld, int B)
{
    gather_input(c, inp, e, e_ld, B);
    sbi_mlp_forward(&c->net, c->cat, B);
    copy_cond(c, out, inp, B);
    if (c->kind == SBI__COUPLING_SPLINE)
        sbi__rqs_forward(out, c->cache, logdet, inp, c->net.out, c->P * c->dt, c->trans_idx, c->dt, c->n_bins,
                         c->bound, B, c->D);
    else
        sbi__affine_forward(out, c->s, c->es, logdet, inp, c->net.out, 2 * c->dt, c->trans_idx, c->dt, B, c->D);
}

void sbi__coupling_backward(sbi__coupling *c, sbi_real *dinp, sbi_real *de, const sbi_real *dout,
                            const sbi_real *dlogdet, const sbi_real *inp, int B)
{
    int w = c->dc + c->E;
    if (c->kind == SBI__COUPLING_SPLINE)
        sbi__rqs_backward(dinp, c->net.dout, dout, dlogdet, inp, c->net.out, c->cache, c->trans_idx, c->dt,
                          c->n_bins, c->bound, B, c->D);
    else
        sbi__affine_backward(dinp, c->net.dout, dout, dlogdet, inp, c->s, c->es, c->trans_idx, c->dt, B, c->D);
    sbi_mlp_backward(&c->net, c->dcat, c->cat, B);
    for (int b = 0; b < B; ++b) {
        const sbi_real *gb = c->dcat + (size_t)b * w;
        const sbi_real *ob = dout + (size_t)b * c->D;
        sbi_real *xb = dinp + (size_t)b * c->D;
        sbi_real *eb = de + (size_t)b * c->E;
        for (int j = 0; j < c->dc; ++j) xb[c->cond_idx[j]] += ob[c->cond_idx[j]] + gb[j];
        for (int k = 0; k < c->E; ++k) eb[k] += gb[c->dc + k];
    }
}

/* The conditioner on rows [v[cond_idx], e] when every row shares one
 * embedding e (e_ld = 0, sampling for one observation): the embedding's
 * share of the first map, b + W[:, dc:] e, is formed once and the rows add
 * only W[:, :dc] v[cond_idx]. */
static void conditioner_shared_e(sbi__coupling *c, const sbi_real *v, const sbi_real *e, int B)
{
    sbi_mlp *m = &c->net;
    int w = c->dc + c->E, H = m->widths[1];
    sbi_real *pre = m->pre[0]; /* (B, H) */
    for (int o = 0; o < H; ++o) {
        const sbi_real *wo = m->w[0] + (size_t)o * w + c->dc;
        sbi_real acc = m->b[0][o];
        for (int k = 0; k < c->E; ++k) acc += wo[k] * e[k];
        pre[o] = acc;
    }
    for (int b = 1; b < B; ++b) memcpy(pre + (size_t)b * H, pre, (size_t)H * sizeof(*pre));
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < c->dc; ++j) c->cat[(size_t)b * w + j] = v[(size_t)b * c->D + c->cond_idx[j]];
    /* pre (B, H) += cat[:, :dc] (B, dc) @ W[:, :dc]^T */
    if (c->dc > 0)
        sbi__gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, c->dc, 1, c->cat, w, m->w[0], w, 1, pre, H);
    sbi_mlp_forward_after_first(m, B);
}

void sbi__coupling_inverse(sbi__coupling *c, sbi_real *inp, sbi_real *logdet, const sbi_real *out, const sbi_real *e,
                           int e_ld, int B)
{
    if (e_ld == 0 && B > 0) {
        conditioner_shared_e(c, out, e, B);
    } else {
        gather_input(c, out, e, e_ld, B);
        sbi_mlp_forward(&c->net, c->cat, B);
    }
    copy_cond(c, inp, out, B);
    if (c->kind == SBI__COUPLING_SPLINE)
        sbi__rqs_inverse(inp, c->cache, logdet, out, c->net.out, c->P * c->dt, c->trans_idx, c->dt, c->n_bins,
                         c->bound, B, c->D);
    else
        sbi__affine_inverse(inp, c->s, c->es, logdet, out, c->net.out, 2 * c->dt, c->trans_idx, c->dt, B, c->D);
}

void sbi__make_orders(int *order, int K, int D, uint64_t seed)
{
    for (int k = 0; k < K; ++k) {
        int *o = order + (size_t)k * D;
        if (k % 2 == 1) {
            for (int i = 0; i < D; ++i) o[i] = order[(size_t)(k - 1) * D + D - 1 - i];
        } else {
            for (int i = 0; i < D; ++i) o[i] = i;
            if (k > 0) {
                sbi_rng r;
                sbi_rng_init(&r, seed, (uint64_t)k, SBI_STREAM_INIT, 1);
                for (int i = D - 1; i > 0; --i) {
                    int j = (int)sbi_rng_below(&r, (uint64_t)i + 1);
                    int t = o[i];
                    o[i] = o[j];
                    o[j] = t;
                }
            }
        }
    }
}
