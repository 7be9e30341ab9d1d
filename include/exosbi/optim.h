/* Optimiser kernels over one flat weight buffer (the estimator's): AdamW and
 * global gradient-norm clipping.  Serial loops; the data-parallel trainer
 * sums the gradients across ranks before calling them, so every rank takes
 * the identical step.
 *
 * The Adam moments m and v are sbi_real, the precision of the weights (float
 * in libexosbi, as in PyTorch); the bias corrections and the clipping norm
 * are computed in double.
 */
#ifndef EXOSBI_OPTIM_H
#define EXOSBI_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "exosbi/core.h"
#include "exosbi/nn.h"

/* One AdamW step (Loshchilov & Hutter; PyTorch's torch.optim.AdamW) on n
 * weights w (n) with gradients g (n) and moments m (n), v (n), which start
 * at zero.  step is the 1-based count of steps taken including this one:
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
 *   w -= lr * (m / (1 - beta1^step) / (sqrt(v / (1 - beta2^step)) + eps) + weight_decay * w).
 * The decay is decoupled from the gradient and applies to every weight,
 * biases included.  A step below 1 counts as 1. */
void sbi_adamw_step(sbi_real *w, const sbi_real *g, sbi_real *m, sbi_real *v, size_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step);

/* The Euclidean norm of g (n), accumulated in double. */
double sbi_grad_norm(const sbi_real *g, size_t n);
/* Scale g (n) in place so that its norm is at most max_norm, and return the
 * norm before clipping.  Nothing is scaled when the norm is already within
 * max_norm, when max_norm <= 0, or when the norm is not finite (the caller
 * sees the NaN/Inf in the returned value). */
double sbi_clip_grad_norm(sbi_real *g, size_t n, double max_norm);

/* The sum of a gradient (n) over the ranks of c, in place and identical on
 * every rank: what MPI_Allreduce(MPI_SUM) gives, through a window of node
 * shared memory (src/train/grad_sum.c says why), with the node sums added
 * by MPI_Allreduce between nodes (and MPI_Allreduce alone, with a warning,
 * where no shared window can be had).  Additions go in rank order, so runs
 * on the same ranks give the same bits.  Collective over c: create, run and
 * free on every rank; c must outlive it. */
typedef struct sbi_grad_sum sbi_grad_sum;
int sbi_grad_sum_create(const sbi_comm *c, size_t n, sbi_grad_sum **out);
int sbi_grad_sum_run(sbi_grad_sum *gs, sbi_real *g);
void sbi_grad_sum_free(sbi_grad_sum *gs);
/* Tests: as if every node_size consecutive ranks were a node; node_size < 0:
 * as if no shared window could be had (MPI_Allreduce). */
int sbi__grad_sum_create_grouped(const sbi_comm *c, size_t n, int node_size, sbi_grad_sum **out);

#endif
