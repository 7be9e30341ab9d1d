/* Family "maf": masked autoregressive flow (Papamakarios et al. 2017) of
 * MADE layers (Germain et al. 2015) with affine transforms, conditioned on
 * an embedding network on x (X -> E), in the normalising direction theta -> z:
 *
 *   u[0] = theta,  u[k+1][o_j] = u[k][o_j] exp(s_j) + t_j  (k < K, j < D),
 *   z = u[K],  log q(theta | x) = log N(z; 0, I) + sum_k sum_j s_j,
 *
 * where o = order[k] (sbi__make_orders, as in the coupling families) and
 * (t_j, raw_j) come from a MADE network on [u[k][o_0 .. o_{D-1}], e] whose
 * masks let output j see only the inputs o_0 .. o_{j-1} and the embedding;
 * s_j = c tanh(raw_j / c) as in "affine".  Sampling inverts each layer one
 * position at a time (D network passes per layer).
 *
 * MADE degrees: input j has degree j + 1 and every embedding input degree 0;
 * hidden unit h has degree h mod max(1, D - 1) + min(1, D - 1); a hidden unit
 * sees the units of the layer below with degree <= its own, and output j
 * (shift and raw log-scale alike) the hidden units with degree < j + 1.  The
 * network is the residual ELU MLP of the other families with its weights
 * multiplied by the masks: it runs on masked copies refreshed before each
 * use, and the gradients of masked weights are kept at zero.  The last map
 * starts at zero, so the initial flow is the identity.
 */
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"

typedef struct made_layer {
    sbi_mlp net;                      /* (D + E) -> hidden ... -> (2D); net.w[l] point at wm[l] */
    sbi_real *w[SBI_MLP_MAX_LAYERS];  /* the layout's weight views (net.widths[l+1], net.widths[l]) */
    sbi_real *wm[SBI_MLP_MAX_LAYERS]; /* masked copies, into maf_flow.masked */
    sbi_real *mask[SBI_MLP_MAX_LAYERS]; /* 0/1, into maf_flow.masks */
    sbi_real *cat, *dcat;             /* (max_batch, D + E) [u[o], e] */
    sbi_real *s, *es;                 /* (max_batch, D) clamped log-scales, exp(s) */
} made_layer;

typedef struct maf_flow {
    int D, X, E, K;
    int *order;           /* (K, D) autoregressive ordering of each layer */
    made_layer *layers;   /* (K) */
    sbi_real *masks;      /* every layer's masks, one allocation */
    sbi_real *masked;     /* every layer's masked weights, one allocation */
    size_t n_mask;        /* scalars in masks and in masked */
    sbi_real **u, **du;   /* (K + 1) views, each (max_batch, D): u[0] = theta, u[K] = z */
    sbi__embedding embed; /* X -> E */
    sbi_real *xin;        /* (max_batch, X) the forward's observations */
    sbi_real *logdet;     /* (max_batch) */
} maf_flow;

static int maf_layout(void *impl, const sbi_estimator_config *cfg, sbi_layout *lay)
{
    maf_flow *f = impl;
    int D = cfg->n_params, E = cfg->embed_dim, K = cfg->n_transforms, L = cfg->hidden_layers + 1;
    int widths[SBI_MLP_MAX_LAYERS + 1];
    size_t per_layer = 0, off = 0;
    widths[0] = D + E;
    for (int l = 1; l <= cfg->hidden_layers; ++l) widths[l] = cfg->hidden;
    widths[L] = 2 * D;
    for (int l = 0; l < L; ++l) per_layer += (size_t)widths[l] * widths[l + 1];
    if (!f->order) {
        f->D = D;
        f->X = cfg->n_inputs;
        f->E = E;
        f->K = K;
        f->n_mask = per_layer * K;
        SBI_MALLOC(f->order, (size_t)K * D);
        SBI_CALLOC(f->layers, K);
        SBI_CALLOC(f->u, K + 1);
        SBI_CALLOC(f->du, K + 1);
        SBI_MALLOC(f->masks, f->n_mask);
        SBI_CALLOC(f->masked, f->n_mask);
        sbi__make_orders(f->order, K, D, cfg->seed);
    }
    SBI_CALL(sbi__embedding_layout(&f->embed, lay, cfg));
    for (int k = 0; k < K; ++k) {
        made_layer *m = &f->layers[k];
        char name[24];
        snprintf(name, sizeof(name), "flow%d.made", k);
        SBI_CALL(sbi_mlp_layout(&m->net, lay, name, L, widths, SBI_ACT_ELU, 1, 1));
        for (int l = 0; l < L; ++l) {
            m->mask[l] = f->masks + off;
            m->wm[l] = f->masked + off;
            sbi__made_mask(m->mask[l], l, L, widths, D, 0);
            m->w[l] = m->net.w[l];
            m->net.w[l] = m->wm[l];
            off += (size_t)widths[l] * widths[l + 1];
        }
        m->cat = sbi_layout_act(lay, &m->dcat, D + E);
        m->s = sbi_layout_act(lay, NULL, D);
        m->es = sbi_layout_act(lay, NULL, D);
    }
    f->xin = sbi_layout_act(lay, NULL, f->X);
    f->logdet = sbi_layout_act(lay, NULL, 1);
    for (int k = 0; k < K + 1; ++k) f->u[k] = sbi_layout_act(lay, &f->du[k], D);
    return 0;
}

static void maf_destroy(void *impl)
{
    maf_flow *f = impl;
    free(f->order);
    free(f->layers);
    free(f->u);
    free(f->du);
    free(f->masks);
    free(f->masked);
}

static int maf_forward(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq, sbi_real *z,
                       sbi_real *logdet)
{
    maf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    for (int k = 0; k < f->K; ++k)
        sbi__made_refresh(&f->layers[k].net, f->layers[k].w, f->layers[k].wm, f->layers[k].mask);
    memcpy(f->xin, x, (size_t)B * f->X * sizeof(*x));
    memcpy(f->u[0], theta, (size_t)B * D * sizeof(*theta));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    sbi__embedding_forward(&f->embed, f->xin, B);
    for (int k = 0; k < K; ++k) {
        made_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        sbi__made_gather(m->cat, o, f->u[k], f->embed.out, E, B, D, E);
        sbi_mlp_forward(&m->net, m->cat, B);
        sbi__affine_forward(f->u[k + 1], m->s, m->es, f->logdet, f->u[k], m->net.out, 2 * D, o, D, B, D);
    }
    sbi__latent_logq(logq, f->u[f->K], f->logdet, B, f->D);
    if (z) memcpy(z, f->u[K], (size_t)B * D * sizeof(*z));
    if (logdet) memcpy(logdet, f->logdet, (size_t)B * sizeof(*logdet));
    return 0;
}

static int maf_backward(void *impl, const sbi_real *dlogq, int B)
{
    maf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    const sbi_real *z = f->u[K];
    sbi_real *dz = f->du[K];
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < D; ++i) dz[(size_t)b * D + i] -= dlogq[b] * z[(size_t)b * D + i];
    for (int k = K - 1; k >= 0; --k) {
        made_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        sbi__affine_backward(f->du[k], m->net.dout, f->du[k + 1], dlogq, f->u[k], m->s, m->es, o, D, B, D);
        sbi__made_backward(&m->net, m->mask, m->dcat, m->cat, o, f->du[k], f->embed.dout, B, D, E);
    }
    sbi__embedding_backward(&f->embed, f->xin, B);
    return 0;
}

/* One observation; each layer is inverted position by position: pass j
 * fixes u[k][o_j] from the network output on the positions already known,
 * and the last pass, whose output is exact for every position, inverts all
 * of them together and adds the log-determinant. */
static int maf_sample(void *impl, const sbi_real *x, int n_obs, int B, const sbi_real *z, sbi_real *theta,
                      sbi_real *logq)
{
    maf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K, e_ld;
    const sbi_real c = (sbi_real)SBI_AFFINE_CLAMP;
    if (x) {
        /* A new call (x NULL continues it with the same weights): the
         * masked copies of the weights, then the embedding. */
        for (int k = 0; k < f->K; ++k)
            sbi__made_refresh(&f->layers[k].net, f->layers[k].w, f->layers[k].wm, f->layers[k].mask);
        memcpy(f->xin, x, (size_t)n_obs * f->X * sizeof(*x));
        sbi__embedding_forward(&f->embed, f->xin, n_obs);
    }
    e_ld = sbi__spread_rows(f->embed.out, n_obs, B, E);
    memcpy(f->u[K], z, (size_t)B * D * sizeof(*z));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    for (int k = K - 1; k >= 0; --k) {
        made_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        memset(f->u[k], 0, (size_t)B * D * sizeof(*f->u[k]));
        for (int j = 0; j < D; ++j) {
            sbi__made_gather(m->cat, o, f->u[k], f->embed.out, e_ld, B, D, E);
            sbi_mlp_forward(&m->net, m->cat, B);
            if (j == D - 1) {
                sbi__affine_inverse(f->u[k], m->s, m->es, f->logdet, f->u[k + 1], m->net.out, 2 * D, o, D, B, D);
                break;
            }
            for (int b = 0; b < B; ++b) {
                const sbi_real *pb = m->net.out + (size_t)b * 2 * D;
                size_t i = (size_t)b * D + o[j];
                sbi_real sj = c * sbi__tanh(pb[D + j] / c);
                f->u[k][i] = (f->u[k + 1][i] - pb[j]) / sbi__exp(sj);
            }
        }
    }
    memcpy(theta, f->u[0], (size_t)B * D * sizeof(*theta));
    if (logq) sbi__latent_logq(logq, f->u[f->K], f->logdet, B, f->D);
    return 0;
}

const sbi_estimator_ops sbi__maf_ops = {
    .family = "maf",
    .impl_size = sizeof(maf_flow),
    .layout = maf_layout,
    .forward = maf_forward,
    .backward = maf_backward,
    .sample = maf_sample,
    .destroy = maf_destroy,
};
