/* Family "nsf": neural spline flow (Durkan et al. 2019).  An embedding
 * network on x (X -> E) conditions an elementwise affine map followed by a
 * stack of rational-quadratic spline coupling layers, in the normalising
 * direction theta -> z:
 *
 *   u[0] = theta,  u[1] = u[0] * exp(s_0(e)) + t_0(e),
 *   u[k+2] = coupling_k(u[k+1]; e)  (k < K),  z = u[K+1],
 *   log q(theta | x) = log N(z; 0, I) + sum of the layers' log|det|.
 *
 * The leading affine map moves each posterior into the standardised range
 * where the splines act ([-tail_bound, tail_bound], with n_bins bins and
 * identity tails).  The coupling layers split and permute the dims exactly
 * as the family "affine" does (sbi__make_orders); their conditioners are
 * residual ELU MLPs giving the widths, heights and interior derivatives of
 * every transformed dim.  The head and the last map of every conditioner
 * start at zero and the derivative biases at the value for slope 1, so the
 * initial flow is the identity.
 */
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"

/* Fixed weight tensors: X(name, elements, fan_in, init). */
#define NSF_WEIGHTS(X)                                                                      \
    X(head_w, (size_t)2 * D * E, E, SBI_INIT_ZERO) /* (2D, E) leading [shift | raw] from e */ \
    X(head_b, (size_t)2 * D, E, SBI_INIT_ZERO)     /* (2D) */

/* Fixed activations: X(name, width per row). */
#define NSF_ACTS(X)                                                             \
    X(xin, n_x)         /* (max_batch, X) the forward's observations */        \
    X(head_out, 2 * D)  /* (max_batch, 2D) leading [shift | raw log-scale] */  \
    X(s_0, D)           /* (max_batch, D) leading clamped log-scales */        \
    X(es_0, D)          /* (max_batch, D) exp(s_0) */                          \
    X(logdet, 1)        /* (max_batch) sum of every layer's log|det| */

#define NSF_DECLARE(name, ...) sbi_real *name, *d##name;

typedef struct nsf_flow {
    int D, X, E, K;
    int *order;            /* (K, D) dim ordering of each coupling layer */
    sbi__coupling *layers; /* (K) */
    sbi_real **u, **du;    /* (K + 2) views, each (max_batch, D): u[0] = theta, u[K + 1] = z */
    sbi__embedding embed;  /* X -> E */
    NSF_WEIGHTS(NSF_DECLARE)
    NSF_ACTS(NSF_DECLARE)
} nsf_flow;

static int nsf_layout(void *impl, const sbi_estimator_config *cfg, sbi_layout *lay)
{
    nsf_flow *f = impl;
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
        SBI_CALL(sbi__spline_coupling_layout(&f->layers[k], lay, name, D, E, o, dc, o + dc, cfg->hidden,
                                             cfg->hidden_layers, cfg->n_bins, (sbi_real)cfg->tail_bound));
    }
#define NSF_LAYOUT_W(name, size, fan_in, init) f->name = sbi_layout_weight(lay, &f->d##name, size, fan_in, init, #name);
#define NSF_LAYOUT_A(name, width) f->name = sbi_layout_act(lay, &f->d##name, width);
    NSF_WEIGHTS(NSF_LAYOUT_W)
    NSF_ACTS(NSF_LAYOUT_A)
    for (int k = 0; k < K + 2; ++k) f->u[k] = sbi_layout_act(lay, &f->du[k], D);
    return 0;
}

static void nsf_init(void *impl, const sbi_estimator_config *cfg)
{
    nsf_flow *f = impl;
    (void)cfg;
    for (int k = 0; k < f->K; ++k) sbi__coupling_init(&f->layers[k]);
}

static void nsf_destroy(void *impl)
{
    nsf_flow *f = impl;
    free(f->order);
    free(f->layers);
    free(f->u);
    free(f->du);
}

static int nsf_forward(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq, sbi_real *z,
                       sbi_real *logdet)
{
    nsf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    const sbi_real *e; /* (B, E) */
    memcpy(f->xin, x, (size_t)B * f->X * sizeof(*x));
    memcpy(f->u[0], theta, (size_t)B * D * sizeof(*theta));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    sbi__embedding_forward(&f->embed, f->xin, B);
    e = f->embed.out;
    sbi_linear_forward(f->head_out, e, f->head_w, f->head_b, B, E, 2 * D);
    sbi__affine_forward(f->u[1], f->s_0, f->es_0, f->logdet, f->u[0], f->head_out, 2 * D, NULL, D, B, D);
    for (int k = 0; k < K; ++k) sbi__coupling_forward(&f->layers[k], f->u[k + 2], f->logdet, f->u[k + 1], e, E, B);
    sbi__latent_logq(logq, f->u[f->K + 1], f->logdet, B, f->D);
    if (z) memcpy(z, f->u[K + 1], (size_t)B * D * sizeof(*z));
    if (logdet) memcpy(logdet, f->logdet, (size_t)B * sizeof(*logdet));
    return 0;
}

static int nsf_backward(void *impl, const sbi_real *dlogq, int B)
{
    nsf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K;
    const sbi_real *z = f->u[K + 1];
    sbi_real *dz = f->du[K + 1];
    /* d log N(z) / dz = -z; the log-determinants enter logq with weight 1. */
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < D; ++i) dz[(size_t)b * D + i] -= dlogq[b] * z[(size_t)b * D + i];
    for (int k = K - 1; k >= 0; --k)
        sbi__coupling_backward(&f->layers[k], f->du[k + 1], f->embed.dout, f->du[k + 2], dlogq, f->u[k + 1], B);
    sbi__affine_backward(f->du[0], f->dhead_out, f->du[1], dlogq, f->u[0], f->s_0, f->es_0, NULL, D, B, D);
    sbi_linear_backward(f->embed.dout, f->dhead_w, f->dhead_b, f->dhead_out, f->embed.out, f->head_w, B, E, 2 * D);
    sbi__embedding_backward(&f->embed, f->xin, B);
    return 0;
}

/* The embedding and the head run once per observation; one observation is
 * broadcast (row stride 0) to the B latent rows, several are spread over
 * their groups of rows. */
static int nsf_sample(void *impl, const sbi_real *x, int n_obs, int B, const sbi_real *z, sbi_real *theta,
                      sbi_real *logq)
{
    nsf_flow *f = impl;
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
    for (int k = K - 1; k >= 0; --k)
        sbi__coupling_inverse(&f->layers[k], f->u[k + 1], f->logdet, f->u[k + 2], f->embed.out, e_ld, B);
    sbi__affine_inverse(f->u[0], f->s_0, f->es_0, f->logdet, f->u[1], f->head_out, h_ld, NULL, D, B, D);
    memcpy(theta, f->u[0], (size_t)B * D * sizeof(*theta));
    if (logq) sbi__latent_logq(logq, f->u[f->K + 1], f->logdet, B, f->D);
    return 0;
}

const sbi_estimator_ops sbi__nsf_ops = {
    .family = "nsf",
    .impl_size = sizeof(nsf_flow),
    .layout = nsf_layout,
    .init = nsf_init,
    .forward = nsf_forward,
    .backward = nsf_backward,
    .sample = nsf_sample,
    .destroy = nsf_destroy,
};
