/* Internals of src/flows: the conditional elementwise affine kernel, the
 * affine coupling layer built on it, and the family table entries. */
#ifndef EXOSBI_FLOWS_IMPL_H
#define EXOSBI_FLOWS_IMPL_H

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

/* One affine coupling layer on (B, D) rows: the dims trans_idx are scaled
 * and shifted by a conditioner MLP that sees the dims cond_idx and the
 * embedding e (E per row); the dims cond_idx pass through unchanged.  dc may
 * be 0 (D = 1): the conditioner then sees the embedding alone. */
typedef struct sbi__coupling {
    int D, dc, dt, E;
    const int *cond_idx;  /* (dc), borrowed from the family */
    const int *trans_idx; /* (dt), borrowed from the family */
    sbi_mlp net;          /* (dc + E) -> hidden ... -> (2 dt): [shift | raw log-scale]; last map zero at init */
    sbi_real *cat, *dcat; /* (max_batch, dc + E) conditioner input [inp[cond_idx], e] */
    sbi_real *s;          /* (max_batch, dt) clamped log-scales */
    sbi_real *es;         /* (max_batch, dt) exp(s) */
} sbi__coupling;

int sbi__coupling_layout(sbi__coupling *c, sbi_layout *lay, const char *name, int D, int E, const int *cond_idx,
                         int dc, const int *trans_idx, int hidden, int hidden_layers);
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

/* The families (one row each in registry.c). */
extern const sbi_estimator_ops sbi__affine_ops;

#endif
