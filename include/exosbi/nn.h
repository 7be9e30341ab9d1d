/* Neural-network building blocks: flat weight/activation buffers with named
 * views (sbi_layout), the linear layer, elementwise activations and a
 * multilayer perceptron (sbi_mlp).  Serial kernels on plain arrays; nothing
 * here touches MPI, HDF5 or a file.
 *
 * Dims vocabulary, used by every kernel here and in src/flows:
 *   B      batch rows (B <= max_batch)
 *   C_in   input channels of a linear map, C_out its output channels
 *   N      element count of an elementwise kernel
 *   D      flow parameters, X observation length, E embedding width,
 *   H      hidden width of an MLP
 * Every tensor is row-major: row b of a (B, C) activation starts at [b * C].
 * Weights of a linear map are (C_out, C_in), as in PyTorch's nn.Linear.
 *
 * Kernels take outputs, inputs, parameters, cached statistics, then dims.
 * Backward kernels ACCUMULATE (+=) into every gradient they touch; zeroing
 * is the owner's job (sbi_layout_zero_grads, sbi_layout_zero_dacts).  The
 * exceptions say so: an input gradient a fused kernel overwrites (=) lives in
 * a view from sbi_layout_act_overwritten, which zeroing skips.
 * Kernels never allocate and cannot fail, so they return void.
 */
#ifndef EXOSBI_NN_H
#define EXOSBI_NN_H

#include <stddef.h>
#include <stdint.h>

#include "exosbi/core.h"

/* Network precision.  estimator.h declares the same typedef (C11 accepts the
 * identical repetition, and a mismatch would not compile). */
#ifdef SBI_REAL_DOUBLE
typedef double sbi_real; /* the gradient-check build */
#else
typedef float sbi_real;
#endif

/* ---- layout: one allocation per category, named views into it ----------- */

/* How sbi_layout_init_weights fills a weight tensor. */
enum {
    SBI_INIT_ZERO = 0,   /* all zeros */
    SBI_INIT_UNIFORM = 1 /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear default */
};

typedef struct sbi_tensor_info {
    char name[48]; /* "embed.w0", "flow2.net.b1", ... */
    size_t offset; /* first element in the weight and gradient buffers */
    size_t size;   /* element count */
    int fan_in;    /* inputs feeding each output (scales the init) */
    int init;      /* SBI_INIT_* */
} sbi_tensor_info;

typedef struct sbi_act_info {
    size_t offset; /* first element in the activation buffers */
    int width;     /* scalars per batch row; the view holds max_batch rows */
    int zeroed;    /* 1: sbi_layout_zero_dacts clears its gradient rows */
} sbi_act_info;

/* A layout is built by running the same sequence of sbi_layout_weight /
 * sbi_layout_act calls twice: the counting pass (after sbi_layout_init) only
 * sizes, and returns NULL views; sbi_layout_alloc then makes one allocation
 * each for weights, grads, acts and dacts (plus the tensor tables) and the
 * binding pass returns views into them.  sbi_layout_finish checks that both
 * passes asked for the same thing.  The layout owns every buffer; views stay
 * valid until sbi_layout_free. */
typedef struct sbi_layout {
    int max_batch;               /* rows of every activation view */
    int binding;                 /* 0: counting pass, 1: binding pass */
    size_t n_weights, n_acts;    /* totals, known after the counting pass */
    int n_tensors, n_act_tensors;
    sbi_real *weights, *grads;   /* (n_weights) each */
    sbi_real *acts, *dacts;      /* (n_acts) each */
    sbi_tensor_info *tensors;    /* (n_tensors) */
    sbi_act_info *act_tensors;   /* (n_act_tensors) */
    size_t w_used, a_used;       /* cursors of the current pass */
    int t_used, at_used;
} sbi_layout;

/* Start the counting pass for activations of max_batch rows. */
void sbi_layout_init(sbi_layout *lay, int max_batch);
/* Allocate what the counting pass asked for (weights and grads zeroed) and
 * start the binding pass. */
int sbi_layout_alloc(sbi_layout *lay);
/* End the binding pass: SBI_ERR_INTERNAL when it differs from the counting pass. */
int sbi_layout_finish(const sbi_layout *lay);
/* Free every buffer; the layout returns to an empty counting pass. */
void sbi_layout_free(sbi_layout *lay);

/* Reserve a weight tensor of `size` elements (name formatted like printf).
 * Returns its view (NULL in the counting pass); *grad receives the matching
 * gradient view. */
sbi_real *sbi_layout_weight(sbi_layout *lay, sbi_real **grad, size_t size, int fan_in, int init, const char *fmt,
                            ...) __attribute__((format(printf, 6, 7)));
/* Reserve an activation of (max_batch, width); *dact receives its gradient
 * view, which sbi_layout_zero_dacts clears.  With dact NULL nothing can reach
 * the gradient rows, so they are never cleared. */
sbi_real *sbi_layout_act(sbi_layout *lay, sbi_real **dact, int width);
/* Like sbi_layout_act, for a gradient that its backward overwrites (=) rather
 * than accumulates: sbi_layout_zero_dacts leaves it alone. */
sbi_real *sbi_layout_act_overwritten(sbi_layout *lay, sbi_real **dact, int width);
/* Reserve a scratch buffer of at least n scalars, without gradient and not
 * tied to batch rows (a kernel's working space). */
sbi_real *sbi_layout_scratch(sbi_layout *lay, size_t n);

/* Deterministic initialisation: tensor i draws from the Philox stream
 * (seed, i, SBI_STREAM_INIT, 0), so the result does not depend on the machine. */
void sbi_layout_init_weights(sbi_layout *lay, uint64_t seed);
void sbi_layout_zero_grads(sbi_layout *lay);
/* Zero the first B rows of every accumulated activation gradient (what a
 * backward over B rows touches). */
void sbi_layout_zero_dacts(sbi_layout *lay, int B);

/* ---- linear layer ------------------------------------------------------- */

/* out (B, C_out) = inp (B, C_in) @ w^T + b, with w (C_out, C_in) and b (C_out)
 * or NULL; one gemm. */
void sbi_linear_forward(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int C_in,
                        int C_out);
/* The naive triple loop, kept as the oracle of sbi_linear_forward. */
void sbi_linear_forward_ref(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int C_in,
                            int C_out);
/* dinp (B, C_in) += dout @ w;  dw (C_out, C_in) += dout^T @ inp;  db (C_out) += column sums of dout.
 * dinp and db may be NULL when not wanted. */
void sbi_linear_backward(sbi_real *dinp, sbi_real *dw, sbi_real *db, const sbi_real *dout, const sbi_real *inp,
                         const sbi_real *w, int B, int C_in, int C_out);

/* ---- activations (elementwise, N scalars) ------------------------------ */

enum { SBI_ACT_RELU = 0, SBI_ACT_TANH = 1, SBI_ACT_ELU = 2 };

void sbi_relu_forward(sbi_real *out, const sbi_real *inp, size_t N);
void sbi_relu_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, size_t N);
void sbi_tanh_forward(sbi_real *out, const sbi_real *inp, size_t N);
void sbi_tanh_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *out, size_t N);
/* ELU with alpha = 1: x for x > 0, exp(x) - 1 otherwise. */
void sbi_elu_forward(sbi_real *out, const sbi_real *inp, size_t N);
void sbi_elu_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, const sbi_real *out, size_t N);
/* Dispatch on SBI_ACT_*; backward reads whichever of inp (pre-activation)
 * and out (activation) the function needs. */
void sbi_activation_forward(int act, sbi_real *out, const sbi_real *inp, size_t N);
void sbi_activation_backward(int act, sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, const sbi_real *out,
                             size_t N);
/* "relu", "tanh", "elu"; NULL for an unknown code. */
const char *sbi_activation_name(int act);

/* ---- multilayer perceptron --------------------------------------------- */

#define SBI_MLP_MAX_LAYERS 16

/* L linear maps widths[0] -> widths[1] -> ... -> widths[L], the activation
 * after every map but the last (the output is linear).  With `residual`, a
 * hidden map whose input and output widths agree adds its input:
 * y[l] = y[l-1] + act(pre[l]).  Every pointer is a view into a layout. */
typedef struct sbi_mlp {
    int n_layers;                       /* L */
    int widths[SBI_MLP_MAX_LAYERS + 1]; /* widths[0] input, widths[L] output */
    int activation;                     /* SBI_ACT_* */
    int residual;
    sbi_real *w[SBI_MLP_MAX_LAYERS], *dw[SBI_MLP_MAX_LAYERS];     /* (widths[l+1], widths[l]) */
    sbi_real *b[SBI_MLP_MAX_LAYERS], *db[SBI_MLP_MAX_LAYERS];     /* (widths[l+1]) */
    sbi_real *pre[SBI_MLP_MAX_LAYERS], *dpre[SBI_MLP_MAX_LAYERS]; /* (max_batch, widths[l+1]) pre-activations */
    sbi_real *a[SBI_MLP_MAX_LAYERS], *da[SBI_MLP_MAX_LAYERS];     /* (max_batch, widths[l+1]) act(pre[l]), l < L-1 */
    sbi_real *y[SBI_MLP_MAX_LAYERS], *dy[SBI_MLP_MAX_LAYERS];     /* (max_batch, widths[l+1]) hidden outputs, l < L-1;
                                                                     the same view as a[l] unless residual */
    sbi_real *out, *dout; /* (max_batch, widths[L]): pre[L-1] and its gradient */
} sbi_mlp;

/* Reserve the MLP's weights (named "<name>.w<l>", "<name>.b<l>") and
 * activations in lay.  zero_last: the last map starts at zero, so the
 * network's initial output is exactly zero. */
int sbi_mlp_layout(sbi_mlp *m, sbi_layout *lay, const char *name, int n_layers, const int *widths, int activation,
                   int residual, int zero_last);
/* m->out (B, widths[L]) = MLP(inp (B, widths[0])); caches pre, a, y for backward. */
void sbi_mlp_forward(sbi_mlp *m, const sbi_real *inp, int B);
/* The same, when the caller has already formed the first map's output in
 * m->pre[0] (B, widths[1]) (e.g. with a term shared by every row computed once). */
void sbi_mlp_forward_after_first(sbi_mlp *m, int B);
/* Backward from m->dout (B, widths[L]), which the caller has accumulated:
 * dinp (B, widths[0]) += d/dinp (may be NULL), weight gradients +=.  inp is
 * the forward's input.  Uses the hidden gradient views, which must start at
 * zero (sbi_layout_zero_dacts). */
void sbi_mlp_backward(sbi_mlp *m, sbi_real *dinp, const sbi_real *inp, int B);

/* ---- 1-D convolution and max pooling ----------------------------------- */

/* Sequences are channels-last: row b of a (B, L, C) activation holds L
 * positions of C channels each, position l at [b * L * C + l * C].  A
 * convolution has kernel width K, stride 1 and no padding, so it maps L
 * positions to L_out = L - K + 1; its weights are (C_out, K, C_in) and its
 * bias (C_out).  In this layout the receptive field of output position l is
 * the contiguous run inp[l * C_in .. (l + K) * C_in), so the im2col matrix
 * is a sequence of copies and the convolution one gemm over all B * L_out
 * positions. */

/* out (B, L_out, C_out) = conv1d(inp (B, L, C_in)); cols (B, L_out, K C_in)
 * receives the im2col matrix, which backward reads.  One gemm. */
void sbi_conv1d_forward(sbi_real *out, sbi_real *cols, const sbi_real *inp, const sbi_real *w, const sbi_real *b,
                        int B, int L, int C_in, int C_out, int K);
/* The direct loop nest, kept as the oracle of sbi_conv1d_forward. */
void sbi_conv1d_forward_ref(sbi_real *out, const sbi_real *inp, const sbi_real *w, const sbi_real *b, int B, int L,
                            int C_in, int C_out, int K);
/* dw (C_out, K C_in) += dout^T @ cols;  db (C_out) += column sums of dout;
 * dinp (B, L, C_in) += the transposed convolution of dout, formed in dcols
 * (B, L_out, K C_in), which is overwritten.  dinp (with dcols) and db may be
 * NULL when not wanted. */
void sbi_conv1d_backward(sbi_real *dinp, sbi_real *dcols, sbi_real *dw, sbi_real *db, const sbi_real *dout,
                         const sbi_real *cols, const sbi_real *w, int B, int L, int C_in, int C_out, int K);
/* The direct loop nest of the same gradients (accumulating, dinp may be
 * NULL), kept as the oracle of sbi_conv1d_backward. */
void sbi_conv1d_backward_ref(sbi_real *dinp, sbi_real *dw, sbi_real *db, const sbi_real *dout, const sbi_real *inp,
                             const sbi_real *w, int B, int L, int C_in, int C_out, int K);

/* Max pooling over non-overlapping windows of P positions:
 * out (B, L / P, C), trailing positions that fill no window are dropped. */
void sbi_maxpool1d_forward(sbi_real *out, const sbi_real *inp, int B, int L, int C, int P);
/* dinp (B, L, C) += dout routed to the first maximum of each window. */
void sbi_maxpool1d_backward(sbi_real *dinp, const sbi_real *dout, const sbi_real *inp, int B, int L, int C, int P);

/* Fused conv1d + bias + ReLU + max pooling over windows of P positions, the
 * pair the encoder runs.  ReLU and max commute, so q = relu(max over the
 * window of the convolution), and arg records the window position (0 .. P-1,
 * the first maximum) that backward routes the gradient to; positions that
 * fill no window are never formed.  Kernels of at most SBI_CONV_MAX_KERNEL. */
#define SBI_CONV_MAX_KERNEL 32
/* Batch rows per block of the gemm form, so its pre-activations stay in cache. */
#define SBI_CONV_BLOCK_ROWS 8

/* Single input channel, direct loops (a gemm over K = 5 would be all
 * overhead): q, arg (B, Q, C_out) from inp (B, L), w (C_out, K), b (C_out). */
void sbi_conv1d_pool_1ch_forward(sbi_real *q, sbi_real *arg, const sbi_real *inp, const sbi_real *w,
                                 const sbi_real *b, int B, int L, int C_out, int K, int P);
/* dw (C_out, K) and db (C_out) += the gradients from dq (B, Q, C_out); no
 * input gradient (the input is data). */
void sbi_conv1d_pool_1ch_backward(sbi_real *dw, sbi_real *db, const sbi_real *dq, const sbi_real *q,
                                  const sbi_real *arg, const sbi_real *inp, int B, int L, int C_out, int K, int P);
/* Scalars of scratch that sbi_conv1d_pool_forward and _backward need. */
size_t sbi_conv1d_pool_scratch(int L, int C_in, int C_out, int K, int P);
/* The forms of the fused forward of several input channels.  They give the
 * same q and arg up to rounding (where a window's values differ by a
 * rounding error, either position may be recorded). */
enum {
    SBI_CONV_AUTO = 0,    /* the fastest form the build and shape allow */
    SBI_CONV_GEMM = 1,    /* im2col + gemm: every build and shape */
    SBI_CONV_DIRECT = 2,  /* register-blocked direct kernel: the single-precision AVX2 build, C_out % 16 == 0 */
    SBI_CONV_WINOGRAD = 3 /* Winograd F(4, 5): as DIRECT, and K == 5, P dividing 4 */
};
/* The form sbi_conv1d_pool_forward_form runs when asked for form: form
 * itself where the build and shape allow it, else the first of WINOGRAD,
 * DIRECT, GEMM after it that they allow (AUTO asks for WINOGRAD). */
int sbi_conv1d_pool_form(int form, int C_in, int C_out, int K, int P);
/* A static name of form, for reports. */
const char *sbi_conv1d_pool_form_name(int form);
/* sbi_conv1d_pool_forward in the form that sbi_conv1d_pool_form(form, ...)
 * gives; the scratch is the same. */
void sbi_conv1d_pool_forward_form(sbi_real *q, sbi_real *arg, sbi_real *scratch, const sbi_real *inp,
                                  const sbi_real *w, const sbi_real *b, int B, int L, int C_in, int C_out, int K,
                                  int P, int form);
/* q, arg (B, Q, C_out) from inp (B, L, C_in) in the fastest form the build
 * and shape allow (sbi_conv1d_pool_form(SBI_CONV_AUTO, ...)): in the
 * single-precision AVX2 build, where C_out is a multiple of 16, Winograd
 * F(4, 5) for K = 5 and P dividing 4, else a register-blocked direct
 * convolution; elsewhere im2col + gemm in blocks of SBI_CONV_BLOCK_ROWS
 * rows.  scratch holds sbi_conv1d_pool_scratch(L, C_in, C_out, K, P)
 * scalars. */
void sbi_conv1d_pool_forward(sbi_real *q, sbi_real *arg, sbi_real *scratch, const sbi_real *inp, const sbi_real *w,
                             const sbi_real *b, int B, int L, int C_in, int C_out, int K, int P);
/* dw, db += the weight gradients and dinp (B, L, C_in) = (overwritten; may
 * be NULL) the input gradient from dq (B, Q, C_out), given the forward's
 * input inp and its q, arg; scratch holds sbi_conv1d_pool_scratch(L, C_in,
 * C_out, K, P) scalars.  Only the positions the pooling selected and the ReLU
 * passed carry a gradient.  Where the Winograd forward runs and C_in is a
 * multiple of 16, the backward is its transpose; elsewhere both gradients
 * are sums over those entries alone (the dense gemms would do about 3 times
 * the work at the reference shape). */
void sbi_conv1d_pool_backward(sbi_real *dinp, sbi_real *dw, sbi_real *db, sbi_real *scratch, const sbi_real *dq,
                              const sbi_real *q, const sbi_real *arg, const sbi_real *inp, const sbi_real *w, int B,
                              int L, int C_in, int C_out, int K, int P);
/* sbi_conv1d_pool_backward in the form that sbi_conv1d_pool_form(form, ...)
 * gives: WINOGRAD, where C_in is also a multiple of 16, runs the transpose of
 * the F(4, 5) forward as two matrix products per point (8 / 20 of the dense
 * multiply-adds each, regular where the sparse sums gather); the other forms
 * run the sparse sums.  AUTO (what sbi_conv1d_pool_backward runs) is
 * WINOGRAD where the build and shape allow it.  The forms agree up to
 * rounding. */
void sbi_conv1d_pool_backward_form(sbi_real *dinp, sbi_real *dw, sbi_real *db, sbi_real *scratch,
                                   const sbi_real *dq, const sbi_real *q, const sbi_real *arg, const sbi_real *inp,
                                   const sbi_real *w, int B, int L, int C_in, int C_out, int K, int P, int form);

/* The convolutional encoder of a single-channel sequence of L values:
 *   conv1d(1 -> C1, K) + ReLU + maxpool P -> conv1d(C1 -> C2, K) + ReLU
 *   + maxpool P -> flatten -> linear(-> E),
 * each conv/ReLU/pool triple one fused kernel (sbi_conv1d_pool_*).
 * Weights "<name>.conv0.w/b", "<name>.conv1.w/b", "<name>.proj.w/b". */
typedef struct sbi_conv_encoder {
    int L, C1, C2, K, P, E;
    int L1, Q1, L2, Q2;                 /* conv0 output, pool0 output, conv1 output, pool1 output lengths */
    sbi_real *w0, *dw0, *b0, *db0;      /* (C1, K, 1), (C1) */
    sbi_real *w1, *dw1, *b1, *db1;      /* (C2, K, C1), (C2) */
    sbi_real *wp, *dwp, *bp, *dbp;      /* (E, Q2 C2), (E) */
    sbi_real *xin;                      /* (max_batch, L) the forward's input */
    sbi_real *q0, *dq0;                 /* (max_batch, Q1, C1) pooled; dq0 overwritten by backward */
    sbi_real *arg0;                     /* (max_batch, Q1, C1) window position of each maximum */
    sbi_real *q1, *dq1;                 /* (max_batch, Q2, C2) pooled, read flat as (Q2 C2); dq1 overwritten */
    sbi_real *arg1;                     /* (max_batch, Q2, C2) */
    sbi_real *scratch;                  /* sbi_conv1d_pool_scratch(Q1, C1, C2, K, P) */
    sbi_real *out, *dout;               /* (max_batch, E) */
} sbi_conv_encoder;

/* Smallest sequence the encoder accepts for kernel K and pool P. */
int sbi_conv_encoder_min_length(int K, int P);
/* Reserve the encoder's weights and activations in lay; SBI_ERR_INPUT when
 * L is too short for two convolutions and poolings. */
int sbi_conv_encoder_layout(sbi_conv_encoder *c, sbi_layout *lay, const char *name, int L, int C1, int C2, int K,
                            int P, int E);
/* c->out (B, E) = encoder(inp (B, L)); caches every stage for backward. */
void sbi_conv_encoder_forward(sbi_conv_encoder *c, const sbi_real *inp, int B);
/* Backward from c->dout (B, E), which the caller has accumulated; weight
 * gradients +=.  The input is data, so no input gradient is formed. */
void sbi_conv_encoder_backward(sbi_conv_encoder *c, int B);

/* ---- observation encoders ------------------------------------------------ */

/* The observation vector x (B, X) concatenates blocks (datasets).  A block
 * is a run of L values starting at column `offset`, of one modality (the
 * values of sbi_modality in task.h), with optional static per-point channels
 * that are the same for every row: a normalised coordinate (wavelength, band
 * centre or time, mapped by the task to about [-1, 1]) and the normalised
 * 1-sigma uncertainty.  A NaN in x marks a missing or masked point: every
 * encoder below reads it as mask m = 0, sets all of that point's channels to
 * zero and leaves it out of every pooling, so its value and its static
 * channels have no influence on the embedding.
 *
 * Encoders read full rows of x (row stride X) and know their block's offset;
 * their backward adds the input gradient into dx (B, X) at the block's
 * unmasked columns when dx is not NULL.  Dims: L block length, H hidden
 * width, E output width, P patch length, NP patch count. */
#define SBI_MAX_BLOCKS 8
/* Most columns that can carry static channels. */
#define SBI_MAX_STATIC 2048

enum {
    SBI_BLOCK_SPECTRUM = 0,    /* SBI_MODALITY_SPECTRUM */
    SBI_BLOCK_PHOTOMETRY = 1,  /* SBI_MODALITY_PHOTOMETRY */
    SBI_BLOCK_TIME_SERIES = 2, /* SBI_MODALITY_TIME_SERIES */
    SBI_BLOCK_AUXILIARY = 3    /* SBI_MODALITY_AUXILIARY */
};

typedef struct sbi_obs_block {
    int offset, size, modality; /* columns [offset, offset + size) of x; SBI_BLOCK_* */
    const float *coord;         /* (size) normalised coordinates, or NULL (zero); borrowed */
    const float *sigma;         /* (size) normalised uncertainties, or NULL (zero); borrowed */
} sbi_obs_block;

/* Per-point input channels of one block, (B, L, 4) channels-last:
 * [value m, sigma m, coord m, m] with m = 0 where x is NaN. */
#define SBI_ENC_CHANNELS 4
/* Width of the amplitude branch. */
#define SBI_ENC_AMP_WIDTH 16
/* The amplitude feature is log(SBI_ENC_AMP_EPS + median |value|) over the
 * unmasked points of a row, taken on the normalised values the encoder sees
 * (the lower median for an even count; log(SBI_ENC_AMP_EPS) when every point
 * is masked). */
#define SBI_ENC_AMP_EPS 1e-3
/* Standard deviations in patch summaries are sqrt(variance + this). */
#define SBI_ENC_STD_EPS 1e-4

/* The full spectral convolution encoder (the reference SpectralConv1DEncoder):
 *   channels (B, L, 4) -> conv1d(4 -> C1, K) + ReLU -> conv1d(C1 -> C2, K)
 *   + ReLU -> conv1d(C2 -> C3, K) + ReLU -> masked mean over positions (an
 *   output position counts when the input point at the centre of its
 *   receptive field is unmasked) -> pooled (C3);
 *   amplitude a (1) -> MLP(1 -> A -> A, ELU);
 *   [pooled, amplitude branch] (C3 + A) -> MLP(-> H -> E, ELU).
 * Weights "<name>.conv<i>.w/b", "<name>.amp.w<l>/b<l>", "<name>.head.w<l>/b<l>". */
typedef struct sbi_spectral_conv_encoder {
    int X, offset, L, K, C1, C2, C3, H, E;
    int L1, L2, L3;                /* conv output lengths, L_{i+1} = L_i - K + 1 */
    const float *coord, *sigma;    /* (L) or NULL, borrowed */
    sbi_real *w0, *dw0, *b0, *db0; /* (C1, K, 4), (C1) */
    sbi_real *w1, *dw1, *b1, *db1; /* (C2, K, C1), (C2) */
    sbi_real *w2, *dw2, *b2, *db2; /* (C3, K, C2), (C3) */
    sbi_real *chan, *dchan;        /* (max_batch, L, 4) input channels */
    sbi_real *scratch;             /* (max_batch, L) median selection */
    sbi_real *amp, *damp;          /* (max_batch, 1) amplitude feature */
    sbi_real *amp_arg;             /* (max_batch, 1) point of the median, -1 when none */
    sbi_real *cols0, *dcols0;      /* (max_batch, L1, K 4) */
    sbi_real *c0, *dc0, *r0, *dr0; /* (max_batch, L1, C1) conv output and ReLU */
    sbi_real *cols1, *dcols1;      /* (max_batch, L2, K C1) */
    sbi_real *c1, *dc1, *r1, *dr1; /* (max_batch, L2, C2) */
    sbi_real *cols2, *dcols2;      /* (max_batch, L3, K C2) */
    sbi_real *c2, *dc2, *r2, *dr2; /* (max_batch, L3, C3) */
    sbi_real *pool_w;              /* (max_batch, L3 + 1) pooling weights m / count, then the count */
    sbi_real *feat, *dfeat;        /* (max_batch, C3 + A) [pooled, amplitude branch] */
    sbi_mlp amp_net, head;
    sbi_real *out, *dout; /* (max_batch, E): head.out */
} sbi_spectral_conv_encoder;

/* Smallest block the spectral convolution encoder accepts for kernel K. */
int sbi_spectral_conv_encoder_min_length(int K);
/* Reserve weights and activations for block blk of rows of X values;
 * SBI_ERR_INPUT when the block is shorter than the minimum. */
int sbi_spectral_conv_encoder_layout(sbi_spectral_conv_encoder *c, sbi_layout *lay, const char *name,
                                     const sbi_obs_block *blk, int X, int C1, int C2, int C3, int K, int H, int E);
/* c->out (B, E) from rows x (B, X); caches every stage for backward. */
void sbi_spectral_conv_encoder_forward(sbi_spectral_conv_encoder *c, const sbi_real *x, int B);
/* Backward from c->dout (B, E): weight gradients +=, dx (B, X) += (may be NULL). */
void sbi_spectral_conv_encoder_backward(sbi_spectral_conv_encoder *c, sbi_real *dx, const sbi_real *x, int B);

/* The spectral patch encoder (the reference SpectralPatchEncoder): the block
 * is cut into NP = ceil(L / P) patches (the last may be shorter); each patch
 * is summarised over its unmasked points by SBI_PATCH_FEATURES numbers
 *   [mean value, sqrt(variance + SBI_ENC_STD_EPS), least-squares slope of
 *    value against (position in patch) / P, mean sigma, mean coordinate,
 *    unmasked fraction]
 * (all zero for a patch without unmasked points); a per-patch MLP(6 -> H ->
 * H, ELU) follows, a mean over the patches that have an unmasked point, the
 * amplitude branch, and MLP([pooled, amplitude] -> H -> E, ELU).
 * Weights "<name>.patch.*", "<name>.amp.*", "<name>.head.*". */
#define SBI_PATCH_FEATURES 6
typedef struct sbi_patch_encoder {
    int X, offset, L, P, NP, H, E;
    const float *coord, *sigma;
    sbi_real *chan;         /* (max_batch, L, 4) input channels */
    sbi_real *scratch;      /* (max_batch, L) median selection */
    sbi_real *amp, *damp;   /* (max_batch, 1) amplitude feature */
    sbi_real *amp_arg;      /* (max_batch, 1) point of the median, -1 when none */
    sbi_real *stats;        /* (max_batch, NP, 3) [unmasked count, mean position, sum of squared position deviations] */
    sbi_real *feat;         /* (max_batch, NP, SBI_PATCH_FEATURES) patch summaries */
    sbi_real *dfeat;        /* (max_batch, NP, SBI_PATCH_FEATURES) their gradient */
    sbi_real *pool_w;       /* (max_batch, NP) 1 / (patches with an unmasked point), or 0 */
    sbi_real *cat, *dcat;   /* (max_batch, H + A) [pooled, amplitude branch] */
    sbi_mlp patch_net, amp_net, head;
    sbi_real *out, *dout;   /* (max_batch, E): head.out */
} sbi_patch_encoder;

int sbi_patch_encoder_layout(sbi_patch_encoder *p, sbi_layout *lay, const char *name, const sbi_obs_block *blk,
                             int X, int P, int H, int E);
void sbi_patch_encoder_forward(sbi_patch_encoder *p, const sbi_real *x, int B);
void sbi_patch_encoder_backward(sbi_patch_encoder *p, sbi_real *dx, const sbi_real *x, int B);

/* The photometry encoder (the reference PhotometryPointEncoder): each
 * unmasked point becomes (value, sigma, coord, band width), where the band
 * width is half the coordinate distance between the unmasked neighbours in
 * index order (one-sided at the ends, zero for a lone point; bands are listed
 * in wavelength order); a per-point MLP(4 -> H -> H, ELU); masked mean and
 * masked max over the points (zero without unmasked points); linear(2H -> E).
 * Weights "<name>.point.*", "<name>.proj.w/b". */
typedef struct sbi_photometry_encoder {
    int X, offset, L, H, E;
    const float *coord, *sigma;
    sbi_real *pts, *dpts;     /* (max_batch, L, 4) point features, zero at masked points */
    sbi_real *mask;           /* (max_batch, L) */
    sbi_real *pooled, *dpooled; /* (max_batch, 2H) [mean, max] */
    sbi_real *arg;            /* (max_batch, H) point of each maximum, -1 when none */
    sbi_real *count;          /* (max_batch, 1) unmasked points */
    sbi_mlp point_net;
    sbi_real *wp, *dwp, *bp, *dbp; /* (E, 2H), (E) */
    sbi_real *out, *dout;     /* (max_batch, E) */
} sbi_photometry_encoder;

int sbi_photometry_encoder_layout(sbi_photometry_encoder *p, sbi_layout *lay, const char *name,
                                  const sbi_obs_block *blk, int X, int H, int E);
void sbi_photometry_encoder_forward(sbi_photometry_encoder *p, const sbi_real *x, int B);
void sbi_photometry_encoder_backward(sbi_photometry_encoder *p, sbi_real *dx, const sbi_real *x, int B);

/* A masked MLP over one block (auxiliary and time-series blocks of the
 * hierarchical encoder): input [value m, m] per point (2L), MLP(2L -> H -> E, ELU).
 * Weights "<name>.w<l>/b<l>". */
typedef struct sbi_block_mlp_encoder {
    int X, offset, L, H, E;
    sbi_real *inp, *dinp; /* (max_batch, 2L) */
    sbi_mlp net;
    sbi_real *out, *dout; /* (max_batch, E): net.out */
} sbi_block_mlp_encoder;

int sbi_block_mlp_encoder_layout(sbi_block_mlp_encoder *m, sbi_layout *lay, const char *name,
                                 const sbi_obs_block *blk, int X, int H, int E);
void sbi_block_mlp_encoder_forward(sbi_block_mlp_encoder *m, const sbi_real *x, int B);
void sbi_block_mlp_encoder_backward(sbi_block_mlp_encoder *m, sbi_real *dx, const sbi_real *x, int B);

/* The observation encoder behind the estimator's dataset-aware embeddings.
 * SBI_ENCODER_CONV1D_FULL, _PATCH and _PHOTOMETRY run one encoder over all
 * of x as a single block (static channels concatenated over the blocks).
 * SBI_ENCODER_HIERARCHICAL runs one sub-encoder per block, chosen by
 * modality (spectrum: spectrum_kind, photometry: photometry, time series and
 * auxiliary: block MLP), each to width E_b, and merges them with a DeepSets
 * aggregator: phi = MLP([e_b, one-hot modality] -> H -> H, ELU) per block,
 * the mean over blocks, rho = MLP(H -> H -> E, ELU).  Weights
 * "<name>.blk<i>.*", "<name>.phi.*", "<name>.rho.*" (a single-block encoder:
 * "<name>.*"). */
enum {
    SBI_ENCODER_CONV1D_FULL = 0,
    SBI_ENCODER_PATCH = 1,
    SBI_ENCODER_PHOTOMETRY = 2,
    SBI_ENCODER_BLOCK_MLP = 3,
    SBI_ENCODER_HIERARCHICAL = 4
};
#define SBI_ENC_CONV_CHANNELS0 32
#define SBI_ENC_CONV_CHANNELS1 64
#define SBI_ENC_CONV_CHANNELS2 64
#define SBI_ENC_CONV_KERNEL 5

typedef struct sbi_obs_encoder_spec {
    int kind;          /* SBI_ENCODER_*, not BLOCK_MLP */
    int X;             /* observation length */
    int E;             /* output width */
    int H;             /* hidden width of every MLP */
    int E_b;           /* sub-embedding width of the hierarchical encoder */
    int P;             /* patch length */
    int spectrum_kind; /* SBI_ENCODER_CONV1D_FULL or _PATCH: hierarchical spectra */
    int C[3], K;       /* convolution channels and kernel width */
    int n_blocks;
    sbi_obs_block blocks[SBI_MAX_BLOCKS]; /* consecutive, covering [0, X) */
} sbi_obs_encoder_spec;

typedef struct sbi_block_encoder {
    int kind; /* SBI_ENCODER_CONV1D_FULL, _PATCH, _PHOTOMETRY or _BLOCK_MLP */
    union {
        sbi_spectral_conv_encoder conv;
        sbi_patch_encoder patch;
        sbi_photometry_encoder phot;
        sbi_block_mlp_encoder mlp;
    } u;
    sbi_real *out, *dout; /* (max_batch, width): the sub-encoder's output */
} sbi_block_encoder;

typedef struct sbi_obs_encoder {
    int kind, X, E, E_b, H, n_blocks;
    int modality[SBI_MAX_BLOCKS];
    sbi_block_encoder blocks[SBI_MAX_BLOCKS]; /* one (single-block kinds) or n_blocks */
    sbi_real *phin, *dphin;                   /* (max_batch, n_blocks, E_b + 4) phi inputs */
    sbi_real *agg, *dagg;                     /* (max_batch, H) mean of phi over blocks */
    sbi_mlp phi, rho;
    sbi_real *out, *dout; /* (max_batch, E) */
} sbi_obs_encoder;

/* Check a spec (SBI_ERR_INPUT naming the problem) and reserve the encoder in lay. */
int sbi_obs_encoder_layout(sbi_obs_encoder *e, sbi_layout *lay, const char *name, const sbi_obs_encoder_spec *spec);
/* e->out (B, E) from rows x (B, X) with NaN marking masked points. */
void sbi_obs_encoder_forward(sbi_obs_encoder *e, const sbi_real *x, int B);
/* Backward from e->dout (B, E): weight gradients +=, dx (B, X) += (may be NULL). */
void sbi_obs_encoder_backward(sbi_obs_encoder *e, sbi_real *dx, const sbi_real *x, int B);

#endif
