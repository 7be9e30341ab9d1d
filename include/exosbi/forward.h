/* Forward models: the interface every family implements and the registry
 * that maps `forward_model.family` to an implementation.
 *
 * A forward model maps physical parameters to one noise-free (or, for a
 * stochastic simulator, already noisy) observation vector of task->n_outputs
 * values: the datasets concatenated in task order.  It is a serial object: it
 * never sees MPI or a file after creation.
 */
#ifndef EXOSBI_FORWARD_H
#define EXOSBI_FORWARD_H

#include <stdint.h>

#include "exosbi/task.h"

typedef struct sbi_forward_s *sbi_forward;

/* Build the task's forward model (looks the family up in the registry). */
int sbi_forward_create(const sbi_task *task, sbi_forward *fw);
/* The same, collective over c: a family that reads tables (transmission,
 * emission) reads each one on rank 0 of c and broadcasts it, and every rank
 * returns the same verdict (sbi_comm_agree's codes).  Families without
 * tables are created on every rank as by sbi_forward_create.  The model is
 * serial after creation; each rank destroys its own. */
int sbi_forward_create_on(const sbi_task *task, const sbi_comm *c, sbi_forward *fw);
void sbi_forward_destroy(sbi_forward *fw);

/* theta: (n, n_params) physical; out: (n, n_outputs).  sim_index[r] and seed
 * identify row r so that stochastic simulators are reproducible.  A row that
 * cannot be simulated is filled with NaN (the simulator redraws it). */
int sbi_forward_simulate(sbi_forward fw, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                         double *out);
int64_t sbi_forward_n_outputs(sbi_forward fw);
const char *sbi_forward_family(sbi_forward fw);

/* ---- implementing a family ------------------------------------------------ */

typedef struct sbi_forward_ops {
    const char *family;
    /* Create the state from the task; set *n_outputs. */
    int (*create)(const sbi_task *task, void **state, int64_t *n_outputs);
    /* Optional: create collectively over c (tables read once, shared). */
    int (*create_on)(const sbi_task *task, const sbi_comm *c, void **state, int64_t *n_outputs);
    int (*simulate)(void *state, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                    double *out);
    void (*destroy)(void *state);
} sbi_forward_ops;

/* The registry: one row per family, NULL-terminated (src/forward/registry.c). */
extern const sbi_forward_ops *const sbi_forward_registry[];

/* ---- linear-Gaussian family: x = A theta + b ------------------------------
 * settings: {"A": [[...], ...], "b": [...]} (n_outputs x n_params and n_outputs),
 * or {"seed": s, "scale": c} to draw A with N(0, c^2 / n_params) entries and b = 0
 * (scale defaults to 1; row i comes from the Philox stream (s, i, SBI_STREAM_INIT)).
 * With independent normal priors and observational noise the posterior is
 * Gaussian; sbi_linear_gaussian_posterior returns it exactly. */
/* Borrow A (n_outputs, n_params) and b (n_outputs), row-major; either pointer
 * may be NULL.  They stay valid until fw is destroyed.  SBI_ERR_INPUT when fw
 * is not a linear_gaussian model. */
int sbi_linear_gaussian_matrices(sbi_forward fw, const double **A, const double **b);
/* x: (n_outputs) observation.  mean: (n_params); cov: (n_params, n_params).
 * The noise is N(0, sigma_i^2) per output, sigma being the dataset
 * uncertainties concatenated in task order, whatever simulation.noise says.
 * SBI_ERR_INPUT when a prior is not normal or an uncertainty is not positive. */
int sbi_linear_gaussian_posterior(const sbi_task *task, sbi_forward fw, const double *x, double *mean, double *cov);

#endif
