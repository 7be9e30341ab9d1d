/* Internals of src/flows: the embedding network, the conditional elementwise
 * affine and rational-quadratic spline kernels, the coupling layer built on
 * them, and the family table entries. */
#ifndef EXOSBI_FLOWS_IMPL_H
#define EXOSBI_FLOWS_IMPL_H

#include <string.h>

#include "exosbi/estimator.h"
#include "nn/nn_impl.h"

/* Log-scales are soft-clamped, s = c * tanh(raw / c), so one layer scales by
 * at most exp(+-c) and a bad step cannot overflow exp. */
#define SBI_AFFINE_CLAMP 3.0

/* log N(z; 0, I) of one row z (D). */
static inline double sbi__log_normal(const sbi_real *z, int D)
{
    double ss = 0;
    for (int i = 0; i < D; ++i) ss += (double)z[i] * z[i];
    return -0.5 * ss - 0.5 * D * 1.8378770664093454836; /* log(2 pi) */
}

/* logq (B) = log N(z_b; 0, I) + logdet_b for latent rows z (B, D): the last
 * step of every flow's forward and sample. */
static inline void sbi__latent_logq(sbi_real *logq, const sbi_real *z, const sbi_real *logdet, int B, int D)
{
    for (int b = 0; b < B; ++b) logq[b] = (sbi_real)(sbi__log_normal(z + (size_t)b * D, D) + logdet[b]);
}

/* MADE (Germain et al. 2015) helpers shared by the autoregressive families.
 * sbi__made_mask: the 0/1 mask (C_out, C_in) of map l of L of a net with
 * widths w over D positions; inputs are the D ordered positions (degrees
 * 1..D) followed by context (degree 0).  Output o of the last map belongs to
 * position o / P when P > 0 (P outputs per position, grouped) and to o % D
 * when P == 0 (blocks of D outputs, one per parameter kind). */
void sbi__made_mask(sbi_real *mask, int l, int L, const int *w, int D, int P);
/* wm[l] = w[l] * mask[l] for every map of net (the masked copies used in the passes). */
void sbi__made_refresh(const sbi_mlp *net, sbi_real *const *w, sbi_real *const *wm, sbi_real *const *mask);
/* Sampling several observations at once: rows [0, n_obs) of buf (row
 * width w) are spread in place over B rows in n_obs equal consecutive
 * groups.  Returns the row stride the consumers read buf with: 0 for one
 * observation, which stays a single broadcast row, w otherwise. */
static inline int sbi__spread_rows(sbi_real *buf, int n_obs, int B, int w)
{
    if (n_obs <= 1) return 0;
    int per = B / n_obs;
    for (int b = B - 1; b >= 0; --b)
        if (b / per != b) memcpy(buf + (size_t)b * w, buf + (size_t)(b / per) * w, (size_t)w * sizeof(*buf));
    return w;
}

/* cat (B, D + E) = [v[o], e] for v (B, D); row b of e starts at e + b e_ld. */
void sbi__made_gather(sbi_real *cat, const int *o, const sbi_real *v, const sbi_real *e, int e_ld, int B, int D,
                      int E);
/* The backward pass through one MADE conditioner whose output gradient is in
 * net->dout: the net's backward pass into dcat, the gradients of masked
 * weights zeroed, and dcat scattered back, its first D columns onto du at
 * the positions o and the last E added to the embedding gradient de. */
void sbi__made_backward(sbi_mlp *net, sbi_real *const *mask, sbi_real *dcat, const sbi_real *cat, const int *o,
                        sbi_real *du, sbi_real *de, int B, int D, int E);

/* Conditional elementwise affine on the dims idx[0..n) of (B, D) rows
 * (idx NULL: dims 0..n):
 *   out[b, idx[j]] = inp[b, idx[j]] * exp(s) + shift,  s = c tanh(raw / c),
 * with shift = p[b * p_ld + j] and raw = p[b * p_ld + n + j]; p_ld = 0
 * broadcasts one parameter row to every batch row.  logdet (B) += sum_j s.
 * Caches s and es = exp(s), each (B, n).  Dims outside idx are not written. */
void sbi__affine_forward(sbi_real *out, sbi_real *s, sbi_real *es, sbi_real *logdet, const sbi_real *inp,
                         const sbi_real *p, int p_ld, const int *idx, int n, int B, int D);
/* Backward of sbi__affine_forward (p_ld = 2n): dinp (B, D) += on the idx dims,
 * dp (B, 2n) += , from dout (B, D) and dlogdet (B). */
void sbi__affine_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                          const sbi_real *inp, const sbi_real *s, const sbi_real *es, const int *idx, int n, int B,
                          int D);
/* The inverse: inp[b, idx[j]] = (out[b, idx[j]] - shift) * exp(-s); logdet
 * (B) += sum_j s, the forward's log-determinant at the recovered point. */
void sbi__affine_inverse(sbi_real *inp, sbi_real *s, sbi_real *es, sbi_real *logdet, const sbi_real *out,
                         const sbi_real *p, int p_ld, const int *idx, int n, int B, int D);

/* Rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows") on
 * [-bound, bound] with K bins and identity (linear) tails outside.  The
 * parameters of one element are SBI__RQS_PARAMS(K) unconstrained values
 * [widths (K) | heights (K) | interior derivatives (K - 1)]:
 *   width_k  = min_w + (1 - K min_w) softmax(widths)_k, likewise heights,
 *   d_k = min_d + softplus(raw_k) at the K - 1 interior knots, d = 1 at both
 *   ends, so the spline joins the tails with a continuous slope.
 * The per-element cache holds [width (K) | height (K) | d (K + 1) | bin]
 * (bin -1 outside the bound). */
#define SBI_RQS_MIN_WIDTH 1e-3
#define SBI_RQS_MIN_HEIGHT 1e-3
#define SBI_RQS_MIN_DERIVATIVE 1e-3
#define SBI_RQS_MAX_BINS 64
#define SBI__RQS_PARAMS(K) (3 * (K) - 1)
#define SBI__RQS_CACHE(K) (3 * (K) + 2)
/* The raw derivative for which d = 1: a zero network output with this bias
 * makes every spline the identity. */
#define SBI__RQS_IDENTITY_RAW 0.5397424172369522 /* log(exp(1 - min_d) - 1) */

/* out[b, idx[j]] = spline(inp[b, idx[j]]) with parameters p[b * p_ld + j *
 * SBI__RQS_PARAMS(K) ..] (p_ld = 0 broadcasts one row), logdet (B) += sum of
 * log spline'.  cache (B, n, SBI__RQS_CACHE(K)). */
void sbi__rqs_forward(sbi_real *out, sbi_real *cache, sbi_real *logdet, const sbi_real *inp, const sbi_real *p,
                      int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D);
/* Backward of sbi__rqs_forward with p_ld = n SBI__RQS_PARAMS(K): dinp (B, D)
 * += on the idx dims and dp (B, n SBI__RQS_PARAMS(K)) += , from dout (B, D)
 * and dlogdet (B). */
void sbi__rqs_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                       const sbi_real *inp, const sbi_real *p, const sbi_real *cache, const int *idx, int n, int K,
                       sbi_real bound, int B, int D);
/* The inverse (the root of a quadratic per element): inp[b, idx[j]] from
 * out[b, idx[j]]; logdet (B) += the forward's log-derivative at the
 * recovered point.  cache (B, n, SBI__RQS_CACHE(K)) is scratch: the backward
 * never follows an inverse, and the single-precision build, which works on
 * several rows at a time and forms only the selected bin's derivatives,
 * leaves it untouched. */
void sbi__rqs_inverse(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                      int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D);
/* The element-at-a-time inverse, the oracle of sbi__rqs_inverse; it fills
 * the cache as the forward does. */
void sbi__rqs_inverse_ref(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                          int p_ld, const int *idx, int n, int K, sbi_real bound, int B, int D);

/* The embedding network e (B, E) = net(x (B, X)): the residual ELU MLP of
 * the foundation ("mlp", weights "embed.w<l>", "embed.b<l>") or the
 * convolutional encoder ("conv1d", weights "embed.conv0.w", ...). */
enum { SBI__EMBED_MLP = 0, SBI__EMBED_CONV1D = 1, SBI__EMBED_ENCODER = 2 };
#define SBI_CONV1D_CHANNELS0 32
#define SBI_CONV1D_CHANNELS1 64
#define SBI_CONV1D_KERNEL 5
#define SBI_CONV1D_POOL 2
typedef struct sbi__embedding {
    int kind; /* SBI__EMBED_* */
    sbi_mlp mlp;
    sbi_conv_encoder conv;
    sbi_obs_encoder enc;  /* the dataset-aware encoders (conv1d_full, patch, photometry, hierarchical) */
    sbi_real *out, *dout; /* (max_batch, E) the embedding and its gradient */
} sbi__embedding;

/* SBI__EMBED_* for a config's embedding name, -1 when unknown. */
int sbi__embedding_kind(const char *name);
int sbi__embedding_layout(sbi__embedding *m, sbi_layout *lay, const sbi_estimator_config *cfg);
void sbi__embedding_forward(sbi__embedding *m, const sbi_real *x, int B);
/* Backward from m->dout (B, E); weight gradients +=. */
void sbi__embedding_backward(sbi__embedding *m, const sbi_real *x, int B);

/* One coupling layer on (B, D) rows: the dims trans_idx are scaled
 * and shifted by a conditioner MLP that sees the dims cond_idx and the
 * embedding e (E per row); the dims cond_idx pass through unchanged.  dc may
 * be 0 (D = 1): the conditioner then sees the embedding alone. */
enum { SBI__COUPLING_AFFINE = 0, SBI__COUPLING_SPLINE = 1 };
typedef struct sbi__coupling {
    int kind;             /* SBI__COUPLING_* */
    int n_bins;           /* spline bins K */
    sbi_real bound;       /* spline tail bound */
    int D, dc, dt, E, P;  /* P: conditioner outputs per transformed dim */
    const int *cond_idx;  /* (dc), borrowed from the family */
    const int *trans_idx; /* (dt), borrowed from the family */
    sbi_mlp net;          /* (dc + E) -> hidden ... -> (dt P): affine [shift | raw log-scale], spline
                             per dim [widths | heights | derivatives]; last map zero at init */
    sbi_real *cat, *dcat; /* (max_batch, dc + E) conditioner input [inp[cond_idx], e] */
    sbi_real *s;          /* (max_batch, dt) clamped log-scales */
    sbi_real *es;         /* (max_batch, dt) exp(s) */
    sbi_real *cache;      /* (max_batch, dt SBI__RQS_CACHE(K)) spline cache */
} sbi__coupling;

int sbi__coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E, const int *cond_idx,
                         int dc, const int *trans_idx, int hidden, int hidden_layers);
/* The same with a K-bin spline on [-bound, bound] as the elementwise map. */
int sbi__spline_coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E,
                                const int *cond_idx, int dc, const int *trans_idx, int hidden, int hidden_layers,
                                int n_bins, sbi_real bound);
/* Set the output biases of a spline coupling so that the layer starts as the identity. */
void sbi__coupling_init(sbi__coupling *c);
/* out (B, D) = coupling(inp (B, D); e), logdet (B) += log|det|.  Row b of the
 * embedding starts at e + b * e_ld (e_ld = 0 broadcasts one row). */
void sbi__coupling_forward(sbi__coupling *c, sbi_real *out, sbi_real *logdet, const sbi_real *inp, const sbi_real *e,
                           int e_ld, int B);
/* dinp (B, D) += and de (B, E) += from dout (B, D) and dlogdet (B); inp is
 * the forward's input.  Weight gradients accumulate. */
void sbi__coupling_backward(sbi__coupling *c, sbi_real *dinp, sbi_real *de, const sbi_real *dout,
                            const sbi_real *dlogdet, const sbi_real *inp, int B);
/* inp (B, D) = coupling^{-1}(out (B, D); e), logdet (B) += the forward's log|det|. */
void sbi__coupling_inverse(sbi__coupling *c, sbi_real *inp, sbi_real *logdet, const sbi_real *out, const sbi_real *e,
                           int e_ld, int B);

/* The permutation scheme shared by the families: order (K, D), layer k
 * uses order[k]; layer 0 the identity, odd layers reverse the one before,
 * later even layers a fixed Philox permutation (seed, k, SBI_STREAM_INIT, 1). */
void sbi__make_orders(int *order, int K, int D, uint64_t seed);

/* Deep sigmoidal transform (Huang et al. 2018, "Neural Autoregressive
 * Flows") of one scalar with C sigmoids:
 *   y = logit(sum_k w_k sigmoid(a_k x + b_k)),
 *   a_k = softplus(raw_k) / log 2 > 0,  w = softmax(omega),
 * a strictly increasing bijection of the real line.  The parameters of one
 * element are SBI__DSF_PARAMS(C) unconstrained values [raw (C) | b (C) |
 * omega (C)]; all zero gives exactly y = x.  The per-element cache holds
 * SBI__DSF_CACHE(C) values [a | sigmoid(u) | sigmoid(-u) | R | P | Q | W]
 * (see naf.c). */
#define SBI_DSF_MAX_SIGMOIDS 64
#define SBI__DSF_PARAMS(C) (3 * (C))
#define SBI__DSF_CACHE(C) (7 * (C))

/* out[b, idx[j]] = dsf(inp[b, idx[j]]) with parameters p[b * p_ld + j *
 * SBI__DSF_PARAMS(C) ..] (p_ld = 0 broadcasts one row), logdet (B) += sum of
 * log dsf'.  cache (B, n, SBI__DSF_CACHE(C)).  idx NULL: dims 0..n. */
void sbi__dsf_forward(sbi_real *out, sbi_real *cache, sbi_real *logdet, const sbi_real *inp, const sbi_real *p,
                      int p_ld, const int *idx, int n, int C, int B, int D);
/* Backward of sbi__dsf_forward with p_ld = n SBI__DSF_PARAMS(C): dinp (B, D)
 * += on the idx dims and dp (B, n SBI__DSF_PARAMS(C)) += , from dout (B, D)
 * and dlogdet (B). */
void sbi__dsf_backward(sbi_real *dinp, sbi_real *dp, const sbi_real *dout, const sbi_real *dlogdet,
                       const sbi_real *inp, const sbi_real *p, const sbi_real *cache, const int *idx, int n, int C,
                       int B, int D);
/* The inverse by `steps` bisection steps on the bracket [min_k x_k, max_k
 * x_k], x_k = (y - b_k) / a_k, which always holds the root: inp[b, idx[j]]
 * from out[b, idx[j]]; cache and logdet (B) += as the forward's at the
 * recovered point. */
void sbi__dsf_inverse(sbi_real *inp, sbi_real *cache, sbi_real *logdet, const sbi_real *out, const sbi_real *p,
                      int p_ld, const int *idx, int n, int C, int steps, int B, int D);

/* Flow matching ("fmpe"): the state shared by fmpe.c (the velocity network,
 * its loss and the divergence) and fmpe_ode.c (the ODE integrators). */
enum { SBI__ODE_RK_ADAPTIVE = 0, SBI__ODE_MIDPOINT = 1 };
#define SBI_FMPE_DEFAULT_STEPS 50
#define SBI_FMPE_DEFAULT_TIME_FEATURES 4
#define SBI_FMPE_MAX_TIME_FEATURES 8
/* The Philox purpose of the flow-matching draws (t, z), distinct from the
 * purposes of rng.h. */
#define SBI__STREAM_FMPE 16u
typedef struct sbi__fmpe {
    int D, X, E, H;            /* H: hidden width of the velocity network */
    int e_ld;                  /* row stride of embed.out while sampling: 0 broadcasts row 0 */
    int solver;                /* SBI__ODE_* */
    int steps;                 /* midpoint steps */
    int K;                     /* time features: t, then sin and cos of pi 2^k t for k < K */
    int NT;                    /* 1 + 2 K columns of time features */
    uint64_t seed;             /* cfg.seed: keys the (t, z) draws */
    uint64_t counter;          /* forward calls so far: the Philox index of the next draws */
    sbi__embedding embed;      /* X -> E */
    sbi_mlp net;               /* (D + NT + E) -> H ... -> D velocity; last map zero at init */
    sbi_real *xin;             /* (max_batch, X) the forward's observations */
    sbi_real *cat, *dcat;      /* (max_batch, D + NT + E) [theta_t, time features of t, e] */
    sbi_real *tz;              /* (max_batch, 1 + D) the forward's draws [t, z] */
    sbi_real *target;          /* (max_batch, D) theta - z, the straight-line velocity */
    sbi_real *theta, *vel;     /* (max_batch, D) ODE state and velocity in network precision */
    sbi_real *div;             /* (max_batch) divergence of the velocity */
    sbi_real *tan_y, *tan_pre; /* (max_batch, D H) tangents of the D Jacobian-vector products */
    double *state;             /* (max_batch (D + 1)) ODE state [theta (B, D) | int_0^t div (B)] */
    double *stage;             /* (max_batch (D + 1)) midpoint stage */
    double *rate;              /* (max_batch (D + 1)) right-hand side of the midpoint rule */
    struct _p_TS *ts;          /* PETSc integrator, NULL without PETSc or for "midpoint" */
    struct _p_Vec *u;          /* wraps state for ts */
    int ts_n;                  /* length of u */
    int ode_B, ode_div;        /* rows and divergence flag of the integration in progress */
    int ode_reverse;           /* the integration runs from t = 1 down to 0 (log_prob) */
    double dt0;                /* first step of ts (-ts_dt overrides) */
} sbi__fmpe;

/* v (B, D) = velocity(theta (B, D), t; e), with the embedding in
 * f->embed.out row b * f->e_ld for row b (0: row 0 broadcast); with div non-NULL also div (B)
 * = trace(dv / dtheta), exactly, by D Jacobian-vector products. */
void sbi__fmpe_velocity(sbi__fmpe *f, sbi_real *v, sbi_real *div, const sbi_real *theta, double t, int B);
/* Create the PETSc integrator when "rk_adaptive" is selected and PETSc is
 * initialised (layout); free it (destroy). */
int sbi__fmpe_ode_setup(sbi__fmpe *f);
void sbi__fmpe_ode_destroy(sbi__fmpe *f);
/* Integrate f->state (B rows) from t = 0 to 1: theta' = v and, with
 * with_div, the last B entries accumulate the integral of div v.  With
 * reverse the same ODE runs from t = 1 down to 0 (in s = 1 - t: theta' =
 * -v, and the last B entries accumulate minus the integral of div v). */
int sbi__fmpe_integrate(sbi__fmpe *f, int B, int with_div, int reverse);

/* The families (one row each in registry.c). */
extern const sbi_estimator_ops sbi__affine_ops;
extern const sbi_estimator_ops sbi__nsf_ops;
extern const sbi_estimator_ops sbi__maf_ops;
extern const sbi_estimator_ops sbi__naf_ops;
extern const sbi_estimator_ops sbi__fmpe_ops;

#endif
