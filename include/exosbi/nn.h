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
 * is the owner's job (sbi_layout_zero_grads, sbi_layout_zero_dacts).
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
/* Reserve an activation of (max_batch, width); *dact receives its gradient view. */
sbi_real *sbi_layout_act(sbi_layout *lay, sbi_real **dact, int width);

/* Deterministic initialisation: tensor i draws from the Philox stream
 * (seed, i, SBI_STREAM_INIT, 0), so the result does not depend on the machine. */
void sbi_layout_init_weights(sbi_layout *lay, uint64_t seed);
void sbi_layout_zero_grads(sbi_layout *lay);
/* Zero the first B rows of every activation gradient (what a backward over B rows touches). */
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

/* The convolutional encoder of a single-channel sequence of L values:
 *   conv1d(1 -> C1, K) + ReLU + maxpool P -> conv1d(C1 -> C2, K) + ReLU
 *   + maxpool P -> flatten -> linear(-> E).
 * Weights "<name>.conv0.w/b", "<name>.conv1.w/b", "<name>.proj.w/b". */
typedef struct sbi_conv_encoder {
    int L, C1, C2, K, P, E;
    int L1, Q1, L2, Q2;                 /* conv0 output, pool0 output, conv1 output, pool1 output lengths */
    sbi_real *w0, *dw0, *b0, *db0;      /* (C1, K, 1), (C1) */
    sbi_real *w1, *dw1, *b1, *db1;      /* (C2, K, C1), (C2) */
    sbi_real *wp, *dwp, *bp, *dbp;      /* (E, Q2 C2), (E) */
    sbi_real *cols0, *dcols0;           /* (max_batch, L1, K) im2col of the input */
    sbi_real *c0, *dc0;                 /* (max_batch, L1, C1) conv0 output */
    sbi_real *r0, *dr0;                 /* (max_batch, L1, C1) ReLU */
    sbi_real *q0, *dq0;                 /* (max_batch, Q1, C1) pooled */
    sbi_real *cols1, *dcols1;           /* (max_batch, L2, K C1) im2col of q0 */
    sbi_real *c1, *dc1;                 /* (max_batch, L2, C2) conv1 output */
    sbi_real *r1, *dr1;                 /* (max_batch, L2, C2) ReLU */
    sbi_real *q1, *dq1;                 /* (max_batch, Q2, C2) pooled, read flat as (Q2 C2) */
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

#endif
