/* Family "naf": neural autoregressive flow (Huang et al. 2018) with deep
 * sigmoidal transforms, conditioned on an embedding network on x (X -> E),
 * in the normalising direction theta -> z:
 *
 *   u[0] = theta,  u[k+1][o_j] = dsf(u[k][o_j]; p_j)  (k < K, j < D),
 *   z = u[K],  log q(theta | x) = log N(z; 0, I) + sum_k sum_j log dsf'(u[k][o_j]),
 *
 * where o = order[k] (sbi__make_orders, as in the other families) and the
 * pseudo-parameters p_j (SBI__DSF_PARAMS(C) values) come from a MADE network
 * on [u[k][o_0 .. o_{D-1}], e] whose masks let p_j see only the inputs
 * o_0 .. o_{j-1} and the embedding.  The MADE degrees and masking are those of
 * "maf" (src/flows/maf.c): input j has degree j + 1, every embedding input
 * degree 0, hidden unit h degree h mod max(1, D - 1) + min(1, D - 1); output
 * unit q belongs to position q / SBI__DSF_PARAMS(C) and sees the hidden
 * units of lower degree than that position's input.  The last map starts at
 * zero, and a zero parameter vector makes dsf exactly the identity, so the
 * initial flow is the identity.
 *
 * The deep sigmoidal transform of one scalar with C sigmoids is
 *
 *   y = logit(sum_k w_k sigmoid(u_k)),  u_k = a_k x + b_k,
 *   a_k = softplus(raw_k) / log 2,  w = softmax(omega).
 *
 * It is evaluated without forming the sum, which saturates, by log-sum-exp
 * over the log-sigmoids ls_k = log sigmoid(u_k) and lm_k = log sigmoid(-u_k):
 * with t2_k = omega_k + ls_k and t3_k = omega_k + lm_k,
 *
 *   y = lse(t2) - lse(t3),
 *   log y' = lse(t1) - lse(t2) - lse(t3) + lse(omega),  t1_k = omega_k + log a_k + ls_k + lm_k,
 *
 * each lse taken relative to its k = 0 term (ls_0 - lm_0 = u_0 exactly), so
 * that equal sigmoids give y = u_0 and log y' = log a_0 without round-off.
 * The inverse bisects y(x) = target on [min_k x_k, max_k x_k], x_k = (y -
 * b_k) / a_k: at the left end every sigmoid is at most sigmoid(y), so y(x)
 * <= y there, and at the right end y(x) >= y, so the root is always inside
 * and `bisection_steps` halvings leave an error of at most the bracket
 * width times 2^-steps.  Sampling inverts each layer one position at a time
 * (D network passes per layer).  The transform runs in double precision in
 * both builds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flows_impl.h"

#define NAF_DEFAULT_SIGMOIDS 8
#define NAF_DEFAULT_BISECTION 50
#define NAF_MAX_BISECTION 200

/* ---- the deep sigmoidal transform --------------------------------------- */

static double softplus(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }
static double sigmoid(double v)
{
    double e;
    if (v >= 0) return 1 / (1 + exp(-v));
    e = exp(v);
    return e / (1 + e);
}

/* log sum_k exp(v_k - v_0) for v (C); soft (C) = softmax(v) when non-NULL. */
static double lse_rel(const double *v, int C, double *soft)
{
    double m = 0, s = 0, l;
    for (int k = 1; k < C; ++k) m = fmax(m, v[k] - v[0]);
    for (int k = 0; k < C; ++k) s += exp((v[k] - v[0]) - m);
    l = m + log(s);
    if (soft)
        for (int k = 0; k < C; ++k) soft[k] = exp((v[k] - v[0]) - l);
    return l;
}

/* y = dsf(x) for one element with parameters p [raw | b | omega] (3C);
 * *ld = log dsf'(x) and cache (7C) when they are non-NULL. */
static double dsf_element(double *ld, sbi_real *cache, double x, const sbi_real *p, int C)
{
    const double sp0 = softplus(0.0);
    double a[SBI_DSF_MAX_SIGMOIDS], t1[SBI_DSF_MAX_SIGMOIDS], t2[SBI_DSF_MAX_SIGMOIDS],
        t3[SBI_DSF_MAX_SIGMOIDS], om[SBI_DSF_MAX_SIGMOIDS], soft[4][SBI_DSF_MAX_SIGMOIDS];
    double u0 = 0, y, l2, l3;
    for (int k = 0; k < C; ++k) {
        double u, ls, lm;
        a[k] = softplus((double)p[k]) / sp0;
        u = a[k] * x + (double)p[C + k];
        ls = -softplus(-u);
        lm = -softplus(u);
        om[k] = (double)p[2 * C + k];
        t1[k] = om[k] + log(a[k]) + ls + lm;
        t2[k] = om[k] + ls;
        t3[k] = om[k] + lm;
        if (k == 0) u0 = u;
        if (cache) {
            cache[C + k] = (sbi_real)sigmoid(u);
            cache[2 * C + k] = (sbi_real)sigmoid(-u);
        }
    }
    l2 = lse_rel(t2, C, cache ? soft[1] : NULL);
    l3 = lse_rel(t3, C, cache ? soft[2] : NULL);
    /* The bracketed differences vanish exactly when the sigmoids agree. */
    y = u0 + (l2 - l3);
    if (ld) *ld = log(a[0]) + ((lse_rel(t1, C, soft[0]) - l2) + (lse_rel(om, C, soft[3]) - l3));
    if (cache)
        for (int k = 0; k < C; ++k) {
            cache[k] = (sbi_real)a[k];
            cache[3 * C + k] = (sbi_real)(ld ? soft[0][k] : 0);
            cache[4 * C + k] = (sbi_real)soft[1][k];
            cache[5 * C + k] = (sbi_real)soft[2][k];
            cache[6 * C + k] = (sbi_real)(ld ? soft[3][k] : 0);
        }
    return y;
}

void sbi__dsf_forward(sbi_real *out, sbi_real *cache, sbi_real *logdet, const sbi_real *inp, const sbi_real *p,
                      int p_ld, const int *idx, int n, int C, int B, int D)
{
    for (int b = 0; b < B; ++b) {
        double acc = 0;
        for (int j = 0; j < n; ++j) {
            size_t i = (size_t)b * D + (idx ? idx[j] : j);
            double ld;
            out[i] = (sbi_real)dsf_element(&ld, cache + ((size_t)b * n + j) * SBI__DSF_CACHE(C), (double)inp[i],
                                           p + (size_t)b * p_ld + (size_t)j * SBI__DSF_PARAMS(C), C);
            acc += ld;
        }
        logdet[b] += (sbi_real)acc;
    }
}

/* With gy = dL/dy and gl = dL/d log y', and R, P, Q, W the softmaxes of t1,
 * t2, t3 and omega (cached):
 *   dL/dt1 = gl R,  dL/dt2 = (gy - gl) P,  dL/dt3 = -(gy + gl) Q,
 *   dL/domega = dL/dt1 + dL/dt2 + dL/dt3 + gl W,
 *   dL/du = (dL/dt1 + dL/dt2) sigmoid(-u) - (dL/dt1 + dL/dt3) sigmoid(u),
 *   dL/db = dL/du,  dL/da = dL/du x + dL/dt1 / a,  dL/dx = sum_k dL/du a,
 * and da/draw = sigmoid(raw) / log 2. */
void sbi__dsf_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                       const sbi_real *inp, const sbi_real *p, const sbi_real *cache, const int *idx, int n, int C,
                       int B, int D)
{
    const double sp0 = softplus(0.0);
    for (int b = 0; b < B; ++b) {
        double gl = (double)dlogdet[b];
        for (int j = 0; j < n; ++j) {
            size_t i = (size_t)b * D + (idx ? idx[j] : j);
            const sbi_real *c = cache + ((size_t)b * n + j) * SBI__DSF_CACHE(C);
            const sbi_real *pe = p + (size_t)b * n * SBI__DSF_PARAMS(C) + (size_t)j * SBI__DSF_PARAMS(C);
            sbi_real *g = dp + (size_t)b * n * SBI__DSF_PARAMS(C) + (size_t)j * SBI__DSF_PARAMS(C);
            double gy = (double)dout[i], x = (double)inp[i], gx = 0;
            for (int k = 0; k < C; ++k) {
                double a = c[k], sp = c[C + k], sm = c[2 * C + k];
                double g1 = gl * c[3 * C + k], g2 = (gy - gl) * c[4 * C + k], g3 = -(gy + gl) * c[5 * C + k];
                double gu = (g1 + g2) * sm - (g1 + g3) * sp;
                double ga = gu * x + g1 / a;
                g[k] += (sbi_real)(ga * sigmoid((double)pe[k]) / sp0);
                g[C + k] += (sbi_real)gu;
                g[2 * C + k] += (sbi_real)(g1 + g2 + g3 + gl * c[6 * C + k]);
                gx += gu * a;
            }
            dinp[i] += (sbi_real)gx;
        }
    }
}

void sbi__dsf_inverse(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                      int p_ld, const int *idx, int n, int C, int steps, int B, int D)
{
    const double sp0 = softplus(0.0);
    for (int b = 0; b < B; ++b) {
        double acc = 0;
        for (int j = 0; j < n; ++j) {
            size_t i = (size_t)b * D + (idx ? idx[j] : j);
            const sbi_real *pe = p + (size_t)b * p_ld + (size_t)j * SBI__DSF_PARAMS(C);
            double y = (double)out[i], lo = INFINITY, hi = -INFINITY, x, ld;
            for (int k = 0; k < C; ++k) {
                double xk = (y - (double)pe[C + k]) / (softplus((double)pe[k]) / sp0);
                lo = fmin(lo, xk);
                hi = fmax(hi, xk);
            }
            for (int s = 0; s < steps && lo < hi; ++s) {
                double mid = 0.5 * (lo + hi);
                if (dsf_element(NULL, NULL, mid, pe, C) < y)
                    lo = mid;
                else
                    hi = mid;
            }
            x = 0.5 * (lo + hi);
            inp[i] = (sbi_real)x;
            dsf_element(&ld, cache + ((size_t)b * n + j) * SBI__DSF_CACHE(C), (double)inp[i], pe, C);
            acc += ld;
        }
        logdet[b] += (sbi_real)acc;
    }
}

/* ---- the family ---------------------------------------------------------- */

typedef struct naf_layer {
    sbi_mlp net;                        /* (D + E) -> hidden ... -> (D P); net.w[l] point at wm[l] */
    sbi_real *w[SBI_MLP_MAX_LAYERS];    /* the layout's weight views (net.widths[l+1], net.widths[l]) */
    sbi_real *wm[SBI_MLP_MAX_LAYERS];   /* masked copies, into naf_flow.masked */
    sbi_real *mask[SBI_MLP_MAX_LAYERS]; /* 0/1, into naf_flow.masks */
    sbi_real *cat, *dcat;               /* (max_batch, D + E) [u[o], e] */
    sbi_real *cache;                    /* (max_batch, D SBI__DSF_CACHE(C)) */
} naf_layer;

typedef struct naf_flow {
    int D, X, E, K, C, steps; /* C sigmoids per transform, bisection steps */
    int *order;               /* (K, D) autoregressive ordering of each layer */
    naf_layer *layers;        /* (K) */
    sbi_real *masks;          /* every layer's masks, one allocation */
    sbi_real *masked;         /* every layer's masked weights, one allocation */
    size_t n_mask;            /* scalars in masks and in masked */
    sbi_real **u, **du;       /* (K + 1) views, each (max_batch, D): u[0] = theta, u[K] = z */
    sbi__embedding embed;     /* X -> E */
    sbi_real *xin;            /* (max_batch, X) the forward's observations */
    sbi_real *logdet;         /* (max_batch) */
    sbi_real *scratch;        /* (max_batch, D) sampling: the re-evaluated forward of a layer */
    sbi_real *ld_scratch;     /* (max_batch) sampling: log-derivatives of the per-position inversions */
} naf_flow;

static int naf_sigmoids(const sbi_estimator_config *cfg)
{
    return cfg->n_sigmoids ? cfg->n_sigmoids : NAF_DEFAULT_SIGMOIDS;
}
static int naf_bisection(const sbi_estimator_config *cfg)
{
    return cfg->bisection_steps ? cfg->bisection_steps : NAF_DEFAULT_BISECTION;
}

static void naf_defaults(sbi_estimator_config *cfg)
{
    cfg->n_sigmoids = NAF_DEFAULT_SIGMOIDS;
    cfg->bisection_steps = NAF_DEFAULT_BISECTION;
}

static int naf_validate(const sbi_estimator_config *cfg)
{
    SBI_CHECK(cfg->n_sigmoids >= 0 && cfg->n_sigmoids <= SBI_DSF_MAX_SIGMOIDS, SBI_ERR_INPUT,
              "estimator field 'n_sigmoids' is %d, must be in [1, %d] (0: default %d)", cfg->n_sigmoids,
              SBI_DSF_MAX_SIGMOIDS, NAF_DEFAULT_SIGMOIDS);
    SBI_CHECK(cfg->bisection_steps >= 0 && cfg->bisection_steps <= NAF_MAX_BISECTION, SBI_ERR_INPUT,
              "estimator field 'bisection_steps' is %d, must be in [1, %d] (0: default %d)", cfg->bisection_steps,
              NAF_MAX_BISECTION, NAF_DEFAULT_BISECTION);
    return 0;
}

static int naf_layout(void *impl, const sbi_estimator_config *cfg, sbi_layout *lay)
{
    naf_flow *f = impl;
    int D = cfg->n_params, E = cfg->embed_dim, K = cfg->n_transforms, L = cfg->hidden_layers + 1;
    int C = naf_sigmoids(cfg), P = SBI__DSF_PARAMS(C);
    int widths[SBI_MLP_MAX_LAYERS + 1];
    size_t per_layer = 0, off = 0;
    widths[0] = D + E;
    for (int l = 1; l <= cfg->hidden_layers; ++l) widths[l] = cfg->hidden;
    widths[L] = D * P;
    for (int l = 0; l < L; ++l) per_layer += (size_t)widths[l] * widths[l + 1];
    if (!f->order) {
        f->D = D;
        f->X = cfg->n_inputs;
        f->E = E;
        f->K = K;
        f->C = C;
        f->steps = naf_bisection(cfg);
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
        naf_layer *m = &f->layers[k];
        char name[24];
        snprintf(name, sizeof(name), "flow%d.made", k);
        SBI_CALL(sbi_mlp_layout(&m->net, lay, name, L, widths, SBI_ACT_ELU, 1, 1));
        for (int l = 0; l < L; ++l) {
            m->mask[l] = f->masks + off;
            m->wm[l] = f->masked + off;
            sbi__made_mask(m->mask[l], l, L, widths, D, P);
            m->w[l] = m->net.w[l];
            m->net.w[l] = m->wm[l];
            off += (size_t)widths[l] * widths[l + 1];
        }
        m->cat = sbi_layout_act(lay, &m->dcat, D + E);
        m->cache = sbi_layout_act(lay, NULL, D * SBI__DSF_CACHE(C));
    }
    f->xin = sbi_layout_act(lay, NULL, f->X);
    f->logdet = sbi_layout_act(lay, NULL, 1);
    f->scratch = sbi_layout_act(lay, NULL, D);
    f->ld_scratch = sbi_layout_act(lay, NULL, 1);
    for (int k = 0; k < K + 1; ++k) f->u[k] = sbi_layout_act(lay, &f->du[k], D);
    return 0;
}

static void naf_destroy(void *impl)
{
    naf_flow *f = impl;
    free(f->order);
    free(f->layers);
    free(f->u);
    free(f->du);
    free(f->masks);
    free(f->masked);
}

static int naf_forward(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq, sbi_real *z,
                       sbi_real *logdet)
{
    naf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K, C = f->C;
    for (int k = 0; k < f->K; ++k)
        sbi__made_refresh(&f->layers[k].net, f->layers[k].w, f->layers[k].wm, f->layers[k].mask);
    memcpy(f->xin, x, (size_t)B * f->X * sizeof(*x));
    memcpy(f->u[0], theta, (size_t)B * D * sizeof(*theta));
    memset(f->logdet, 0, (size_t)B * sizeof(*f->logdet));
    sbi__embedding_forward(&f->embed, f->xin, B);
    for (int k = 0; k < K; ++k) {
        naf_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        sbi__made_gather(m->cat, o, f->u[k], f->embed.out, E, B, D, E);
        sbi_mlp_forward(&m->net, m->cat, B);
        sbi__dsf_forward(f->u[k + 1], m->cache, f->logdet, f->u[k], m->net.out, D * SBI__DSF_PARAMS(C), o, D, C, B,
                         D);
    }
    sbi__latent_logq(logq, f->u[f->K], f->logdet, B, f->D);
    if (z) memcpy(z, f->u[K], (size_t)B * D * sizeof(*z));
    if (logdet) memcpy(logdet, f->logdet, (size_t)B * sizeof(*logdet));
    return 0;
}

static int naf_backward(void *impl, const sbi_real *dlogq, int B)
{
    naf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K, C = f->C;
    const sbi_real *z = f->u[K];
    sbi_real *dz = f->du[K];
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < D; ++i) dz[(size_t)b * D + i] -= dlogq[b] * z[(size_t)b * D + i];
    for (int k = K - 1; k >= 0; --k) {
        naf_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        sbi__dsf_backward(f->du[k], m->net.dout, f->du[k + 1], dlogq, f->u[k], m->net.out, m->cache, o, D, C, B, D);
        sbi__made_backward(&m->net, m->mask, m->dcat, m->cat, o, f->du[k], f->embed.dout, B, D, E);
    }
    sbi__embedding_backward(&f->embed, f->xin, B);
    return 0;
}

/* One observation; each layer is inverted position by position: pass j
 * fixes u[k][o_j] by bisection from the network output on the positions
 * already known.  The last pass's output is exact for every position, so it
 * also gives the layer's log-determinant at the recovered point. */
static int naf_sample(void *impl, const sbi_real *x, int n_obs, int B, const sbi_real *z, sbi_real *theta,
                      sbi_real *logq)
{
    naf_flow *f = impl;
    int D = f->D, E = f->E, K = f->K, C = f->C, P = SBI__DSF_PARAMS(C), e_ld;
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
        naf_layer *m = &f->layers[k];
        const int *o = f->order + (size_t)k * D;
        memset(f->u[k], 0, (size_t)B * D * sizeof(*f->u[k]));
        memset(f->ld_scratch, 0, (size_t)B * sizeof(*f->ld_scratch));
        for (int j = 0; j < D; ++j) {
            sbi__made_gather(m->cat, o, f->u[k], f->embed.out, e_ld, B, D, E);
            sbi_mlp_forward(&m->net, m->cat, B);
            sbi__dsf_inverse(f->u[k], m->cache, f->ld_scratch, f->u[k + 1], m->net.out + (size_t)j * P, D * P,
                             o + j, 1, C, f->steps, B, D);
        }
        sbi__dsf_forward(f->scratch, m->cache, f->logdet, f->u[k], m->net.out, D * P, o, D, C, B, D);
    }
    memcpy(theta, f->u[0], (size_t)B * D * sizeof(*theta));
    if (logq) sbi__latent_logq(logq, f->u[f->K], f->logdet, B, f->D);
    return 0;
}

const sbi_estimator_ops sbi__naf_ops = {
    .family = "naf",
    .impl_size = sizeof(naf_flow),
    .defaults = naf_defaults,
    .validate = naf_validate,
    .layout = naf_layout,
    .forward = naf_forward,
    .backward = naf_backward,
    .sample = naf_sample,
    .destroy = naf_destroy,
};
