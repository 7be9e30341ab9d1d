/* Family "affine": an embedding network on x (X -> E) conditioning a stack of
 * affine coupling layers and a final elementwise affine, in the normalising
 * direction theta -> z:
 *
 *   u[0] = theta,  u[k+1] = coupling_k(u[k]; e)  (k < K),
 *   z = u[K+1] = u[K] * exp(s_f(e)) + t_f(e),
 *   log q(theta | x) = log N(z; 0, I) + sum of the layers' log|det|.
 *
 * Layer k splits the dims by a fixed ordering order[k]: it conditions on
 * the first dc = D / 2 entries and transforms the other D - dc.  order[0]
 * is the identity, each odd layer reverses the ordering before it and each
 * later even layer draws a fixed permutation from Philox (seed, k,
 * SBI_STREAM_INIT, 1), so each pair of layers transforms every dim and
 * successive pairs mix different dims.  With D = 1 nothing conditions and
 * every layer is an elementwise affine driven by the embedding alone.
 *
 * The embedding is an ELU MLP with residual hidden layers or the conv1d
 * encoder (config.embedding); the conditioners are residual ELU MLPs; every
 * log-scale is soft-clamped (SBI_AFFINE_CLAMP).  The last map
 * of every conditioner and the head start at zero, so the initial flow is
 * the identity.
 */
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"

/* Fixed weight tensors: X(name, elements, fan_in, init).  The embedding and
 * the couplings are laid out by their own loops. */
#define AFFINE_WEIGHTS(X)                                                                   \
    X(head_w, (size_t)2 * D * E, E, SBI_INIT_ZERO) /* (2D, E) final [shift | raw] from e */ \
    X(head_b, (size_t)2 * D, E, SBI_INIT_ZERO)     /* (2D) */

/* Fixed activations: X(name, width per row). */
#define AFFINE_ACTS(X)                                                         \
    X(xin, n_x)         /* (max_batch, X) the forward's observations */       \
    X(head_out, 2 * D)  /* (max_batch, 2D) final [shift | raw log-scale] */   \
    X(s_f, D)           /* (max_batch, D) final clamped log-scales */         \
    X(es_f, D)          /* (max_batch, D) exp(s_f) */                         \
    X(logdet, 1)        /* (max_batch) sum of every layer's log|det| */

#define AFFINE_DECLARE_W(name, size, fan_in, init) sbi_real *name, *d##name;
#define AFFINE_DECLARE_A(name, width) sbi_real *name, *d##name;

typedef struct affine_flow {
    int D, X, E, K;
    int *order;               /* (K, D) dim ordering of each coupling layer */
    sbi__coupling *layers;    /* (K) */
    sbi_real **u, **du;       /* (K + 2) views, each (max_batch, D): u[0] = theta, u[K + 1] = z */
    sbi__embedding embed;     /* X -> E */
    AFFINE_WEIGHTS(AFFINE_DECLARE_W)
    AFFINE_ACTS(AFFINE_DECLARE_A)
} affine_flow;

static int affine_layout(void *impl, const sbi_estimator_config *cfg, sbi_layout *lay)
{
    affine_flow *f = impl;
    int D = cfg->n_params, E = cfg->embed_dim, n_x = cfg->n_inputs, K = cfg->n_transforms;
    int dc = D / 2;
    if (!f->order) {
        f->D = D;
        f->X = n_x;
        f->E = E;
        f->K = K;
        SBI_MALLOC(f->order, (size_t)K * D);
        SBI_CALLOC(f->layers, K);
        SBI_CALLOC(f->u, K + 2);
        SBI_CALLOC(f->du, K + 2);
        sbi__make_orders(f->order, K, D, cfg->seed);
    }
    SBI_CALL(sbi__embedding_layout(&f->embed, lay, cfg));
    for (int k = 0; k < K; ++k) {
        const int *o = f->order + (size_t)k * D;
        char name[16];
        snprintf(name, sizeof(name), "flow%d", k);
        SBI_CALL(sbi__coupling_layout(&f->layers[k], lay, name, D, E, o, dc, o + dc, cfg->hidden,
                                      cfg->hidden_layers));
    }
#define AFFINE_LAYOUT_W(name, size, fan_in, init) f->name = sbi_layout_weight(lay, &f->d##name, size, fan_in, init, #name);
#define AFFINE_LAYOUT_A(name, width) f->name = sbi_layout_act(lay, &f->d##name, width);
    AFFINE_WEIGHTS(AFFINE_LAYOUT_W)
    AFFINE_ACTS(AFFINE_LAYOUT_A)
    for (int k = 0; k < K + 2; ++k) f->u[k] = sbi_layout_act(lay, &f->du[k], D);
    return 0;
}

static void affine_destroy(void *impl)
{
    affine_flow *f = impl;
    free(f->order);
    free(f->layers);
    free(f->u);
    free(f->du);
}

static int affine_forward(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq, sbi_real *z,
                          sbi_real *logdet)
{
    affine_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    const sbi_real *e; /* (B, E) */
    memcpy(f->xin, x, (size_t)B * f->X * sizeof(*x));
    memcpy(f->u[0], theta, (size_t)B * D * sizeof(*theta));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    sbi__embedding_forward(&f->embed, f->xin, B);
    e = f->embed.out;
    for (int k = 0; k < K; ++k) sbi__coupling_forward(&f->layers[k], f->u[k + 1], f->logdet, f->u[k], e, E, B);
    sbi_linear_forward(f->head_out, e, f->head_w, f->head_b, B, E, 2 * D);
    sbi__affine_forward(f->u[K + 1], f->s_f, f->es_f, f->logdet, f->u[K], f->head_out, 2 * D, NULL, D, B, D);
    sbi__latent_logq(logq, f->u[f->K + 1], f->logdet, B, f->D);
    if (z) memcpy(z, f->u[K + 1], (size_t)B * D * sizeof(*z));
    if (logdet) memcpy(logdet, f->logdet, (size_t)B * sizeof(*logdet));
    return 0;
}

static int affine_backward(void *impl, const sbi_real *dlogq, int B)
{
    affine_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    const sbi_real *z = f->u[K + 1];
    sbi_real *dz = f->du[K + 1];
    /* d log N(z) / dz = -z; the log-determinants enter logq with weight 1. */
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < D; ++i) dz[(size_t)b * D + i] -= dlogq[b] * z[(size_t)b * D + i];
    sbi__affine_backward(f->du[K], f->dhead_out, dz, dlogq, f->u[K], f->s_f, f->es_f, NULL, D, B, D);
    sbi_linear_backward(f->embed.dout, f->dhead_w, f->dhead_b, f->dhead_out, f->embed.out, f->head_w, B, E, 2 * D);
    for (int k = K - 1; k >= 0; --k)
        sbi__coupling_backward(&f->layers[k], f->du[k], f->embed.dout, f->du[k + 1], dlogq, f->u[k], B);
    sbi__embedding_backward(&f->embed, f->xin, B);
    return 0;
}

/* The embedding and the head run once per observation; one observation is
 * broadcast (row stride 0) to the B latent rows, several are spread over
 * their groups of rows. */
static int affine_sample(void *impl, const sbi_real *x, int n_obs, int B, const sbi_real *z, sbi_real *theta,
                      sbi_real *logq)
{
    affine_flow *f = impl;
    int D = f->D, E = f->E, K = f->K, e_ld, h_ld;
    if (x) {
        memcpy(f->xin, x, (size_t)n_obs * f->X * sizeof(*x));
        sbi__embedding_forward(&f->embed, f->xin, n_obs);
        sbi_linear_forward(f->head_out, f->embed.out, f->head_w, f->head_b, n_obs, E, 2 * D);
    }
    e_ld = sbi__spread_rows(f->embed.out, n_obs, B, E);
    h_ld = sbi__spread_rows(f->head_out, n_obs, B, 2 * D);
    memcpy(f->u[K + 1], z, (size_t)B * D * sizeof(*z));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    sbi__affine_inverse(f->u[K], f->s_f, f->es_f, f->logdet, f->u[K + 1], f->head_out, h_ld, NULL, D, B, D);
    for (int k = K - 1; k >= 0; --k)
        sbi__coupling_inverse(&f->layers[k], f->u[k], f->logdet, f->u[k + 1], f->embed.out, e_ld, B);
    memcpy(theta, f->u[0], (size_t)B * D * sizeof(*theta));
    if (logq) sbi__latent_logq(logq, f->u[f->K + 1], f->logdet, B, f->D);
    return 0;
}

const sbi_estimator_ops sbi__affine_ops = {
    .family = "affine",
    .impl_size = sizeof(affine_flow),
    .layout = affine_layout,
    .forward = affine_forward,
    .backward = affine_backward,
    .sample = affine_sample,
    .destroy = affine_destroy,
};
