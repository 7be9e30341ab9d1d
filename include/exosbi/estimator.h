/* Neural posterior estimators: an observation embedding network followed by a
 * conditional normalising flow, behind one interface so that the trainer,
 * calibration and inference never name a family.
 *
 * Conventions: the estimator works in the *normalised* spaces the trainer
 * hands it: theta is the unconstrained parameter standardised with the
 * training-set mean/std, x the observation vector scaled with the training-set
 * median/IQR.  Dims: B batch rows, D parameters, X observation length.
 * Each estimator owns one flat buffer of weights and one of gradients (so an
 * optimiser step or an MPI_Allreduce is one call), and activations sized for
 * config.max_batch rows, all allocated by sbi_estimator_create; forward,
 * backward and sample never allocate.
 */
#ifndef EXOSBI_ESTIMATOR_H
#define EXOSBI_ESTIMATOR_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "exosbi/core.h"
#include "exosbi/nn.h"
#include "exosbi/rng.h"

#ifdef SBI_REAL_DOUBLE
typedef double sbi_real; /* the gradient-check build */
#else
typedef float sbi_real;
#endif

typedef struct sbi_estimator_config {
    char family[32];   /* "affine" (affine coupling), "nsf" (spline coupling), "maf" (masked autoregressive) */
    int n_params;      /* D */
    int n_inputs;      /* X */
    int embed_dim;     /* E: width of the embedding fed to the flow */
    int embed_hidden;  /* hidden width of the embedding MLP */
    int embed_layers;  /* hidden layers of the embedding MLP (0: one linear map X -> E) */
    int n_transforms;  /* flow layers */
    int hidden;        /* hidden width of each conditioner */
    int hidden_layers; /* hidden layers of each conditioner (>= 1) */
    uint64_t seed;     /* weight initialisation */
    int max_batch;     /* activations are sized for this many rows */
    /* Added after the first model files; optional in JSON, with the defaults below. */
    char embedding[16]; /* "mlp" (default: embed_hidden x embed_layers residual MLP) or "conv1d"
                           (conv 1->32 k5, ReLU, pool 2, conv 32->64 k5, ReLU, pool 2, linear -> E;
                           needs n_inputs >= 16; ignores embed_hidden and embed_layers), or one of
                           the dataset-aware encoders described with the block fields below */
    int n_bins;         /* spline bins of "nsf" (default 10) */
    double tail_bound;  /* splines act on [-tail_bound, tail_bound], identity outside (default 3) */
    /* Family settings of "naf" and "fmpe".  Zero (an empty string) selects
     * the default, so configurations written before these fields existed stay
     * valid; the other families ignore them. */
    int n_sigmoids;      /* "naf": sigmoids per deep sigmoidal transform (default 8, JSON "n_sigmoids") */
    int bisection_steps; /* "naf": bisection steps of the inverse (default 50, JSON "bisection_steps") */
    char ode_solver[16]; /* "fmpe": "rk_adaptive" (default: PETSc TSRK with error control, tuned by the
                            -ts_* options) or "midpoint" (fixed steps), JSON "ode_solver" */
    int ode_steps;       /* "fmpe": steps of the midpoint rule (default 50, JSON "ode_steps") */
    int time_features;   /* "fmpe": the velocity network sees t and sin, cos (pi 2^k t) for k < K =
                            time_features (0 to 8; JSON "time_features").  Unlike the fields above,
                            0 is a value (t alone, what files written before the field hold): new
                            configurations get SBI_FMPE_DEFAULT_TIME_FEATURES. */
    /* The block structure of x for the dataset-aware embeddings "conv1d_full",
     * "patch", "photometry" and "hierarchical" (nn.h, observation encoders),
     * which use embed_hidden as their hidden width.  Optional in JSON; all
     * zero (what the defaults and older model files give) means one
     * auxiliary block of n_inputs values without static channels.  JSON:
     * "blocks": [{"size": n, "modality": "spectrum" | "photometry" |
     * "time_series" | "auxiliary", "coordinates": [n numbers],
     * "uncertainty": [n numbers]}, ...] (the two arrays optional), and
     * "patch_size", "block_embed_dim", "spectrum_encoder". */
    int n_blocks;                       /* 0, or 1 to SBI_MAX_BLOCKS */
    int block_size[SBI_MAX_BLOCKS];     /* values per block, in column order, summing to n_inputs */
    int block_modality[SBI_MAX_BLOCKS]; /* SBI_BLOCK_* (the values of sbi_modality) */
    int n_static;                       /* 0 (no static channels) or n_inputs (<= SBI_MAX_STATIC) */
    float static_coord[SBI_MAX_STATIC]; /* (n_static) coordinate per column, normalised per block */
    float static_sigma[SBI_MAX_STATIC]; /* (n_static) 1-sigma uncertainty per column, in units of normalised x */
    int patch_size;                     /* patch length of "patch" (0: SBI_DEFAULT_PATCH_SIZE) */
    int block_embed_dim;                /* per-block width of "hierarchical" (0: embed_dim) */
    char spectrum_encoder[16];          /* spectra in "hierarchical": "conv1d_full" (also "") or "patch" */
} sbi_estimator_config;

#define SBI_DEFAULT_PATCH_SIZE 32

/* The block-structure fields above, for the code that handles the rest of
 * the configuration.  to_json adds to the object j only the fields that
 * differ from their defaults, so older configurations keep their JSON;
 * from_json reads those present in json (the rest keep their defaults) and
 * leaves the checks to sbi_estimator_blocks_check, which needs n_inputs and
 * embedding set; SBI_ERR_INPUT names the field. */
int sbi_estimator_blocks_to_json(const sbi_estimator_config *cfg, cJSON *j);
int sbi_estimator_blocks_from_json(const cJSON *json, sbi_estimator_config *cfg);
int sbi_estimator_blocks_check(const sbi_estimator_config *cfg);
/* The JSON keys the two handle; NULL-terminated. */
extern const char *const sbi_estimator_block_keys[];
/* Set the block structure: n blocks of size[i] values and modality[i]
 * (SBI_BLOCK_*), with coord and sigma (n_inputs each, either may be NULL
 * for zeros; both NULL for no static channels). */
int sbi_estimator_config_set_blocks(sbi_estimator_config *cfg, int n, const int *size, const int *modality,
                                    const double *coord, const double *sigma);
/* The observation-encoder description of a configuration whose embedding
 * is one of the dataset-aware kinds; its block pointers borrow cfg's static
 * arrays, so cfg must outlive the encoder built from it. */
int sbi_estimator_encoder_spec(const sbi_estimator_config *cfg, sbi_obs_encoder_spec *spec);

/* Defaults for a family and problem size. */
int sbi_estimator_config_default(sbi_estimator_config *cfg, const char *family, int n_params, int n_inputs);
/* Round trip through JSON (stored in MODEL.h5 as the architecture). */
cJSON *sbi_estimator_config_to_json(const sbi_estimator_config *cfg);
/* Unknown family, missing or bad fields: SBI_ERR_INPUT naming the field. */
int sbi_estimator_config_from_json(const cJSON *json, sbi_estimator_config *cfg);

typedef struct sbi_estimator_s *sbi_estimator;

/* Allocate weights, gradients and activations; initialise the weights
 * deterministically from cfg->seed. */
int sbi_estimator_create(const sbi_estimator_config *cfg, sbi_estimator *est);
void sbi_estimator_destroy(sbi_estimator *est);
const sbi_estimator_config *sbi_estimator_get_config(sbi_estimator est);

size_t sbi_estimator_n_weights(sbi_estimator est);
sbi_real *sbi_estimator_weights(sbi_estimator est); /* (n_weights), borrowed */
sbi_real *sbi_estimator_grads(sbi_estimator est);   /* (n_weights), borrowed */
void sbi_estimator_zero_grad(sbi_estimator est);

/* logq (B) = log q(theta | x) for B <= max_batch rows; x (B, X), theta (B, D).
 * Caches what backward needs.  Family "fmpe" has no closed-form density: its
 * forward returns minus the per-row conditional flow-matching loss, so that
 * the trainer's objective -mean(logq) is the flow-matching loss and its
 * validation "loss" is that loss, not a negative log-likelihood (see
 * src/flows/fmpe.c); its sample and inverse return the true log q. */
int sbi_estimator_forward(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq);
/* After forward: grads += d(sum_b dlogq[b] * logq[b]) / d weights. */
int sbi_estimator_backward(sbi_estimator est, const sbi_real *dlogq, int B);
/* logq (n) = log q(theta | x) for n rows of x (n, X) and theta (n, D), any
 * n (in chunks of max_batch), for every family: forward's logq for the
 * flows, the backward ODE integration for "fmpe", whose forward returns its
 * training loss instead.  Caches nothing for backward. */
int sbi_estimator_log_prob(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int n, sbi_real *logq);
/* n draws theta (n, D) from q(. | x) for one observation x (X), with their
 * logq (n) (may be NULL).  Any n: works in chunks of max_batch. */
int sbi_estimator_sample(sbi_estimator est, const sbi_real *x, int n, sbi_rng *rng, sbi_real *theta,
                         sbi_real *logq);
/* n draws for each of n_obs observations x (n_obs, X): theta (n_obs n, D)
 * holds the draws of observation i in rows [i n, (i + 1) n), its latent
 * normals taken from rng[i] in the order sbi_estimator_sample takes them, so
 * block i is sbi_estimator_sample(x_i, n, &rng[i]) up to float rounding.  The
 * embeddings of a group of observations run as one batch and the group's
 * draws go through the flow in one pass: sbi_estimator_sample_group(est, n)
 * observations per pass (at least 1). */
int sbi_estimator_sample_batch(sbi_estimator est, const sbi_real *x, int n_obs, int n, sbi_rng *rng,
                               sbi_real *theta, sbi_real *logq);
int sbi_estimator_sample_group(sbi_estimator est, int n);

/* Flow families.  z (B, D) = T(theta; x) and logdet (B) = log|det dT/dtheta|
 * for B <= max_batch rows of x (B, X), theta (B, D); like forward, it caches
 * what backward needs. */
int sbi_estimator_transform(sbi_estimator est, const sbi_real *x, const sbi_real *theta, int B, sbi_real *z,
                            sbi_real *logdet);
/* The inverse for one observation x (X): theta (n, D) = T^{-1}(z; x) for
 * given latent points z (n, D), with logq (n) (may be NULL).  Any n.
 * sbi_estimator_sample is this with z ~ N(0, I).  Sampling reuses the
 * activation buffers, so a backward must follow its own forward directly. */
int sbi_estimator_inverse(sbi_estimator est, const sbi_real *x, const sbi_real *z, int n, sbi_real *theta,
                          sbi_real *logq);
/* The weight tensors (name, offset, size) in buffer order; borrowed, valid
 * until sbi_estimator_destroy. */
/* Families that draw random numbers during training (fmpe) keep a counter of
 * their draws; the trainer checkpoints it so a resumed run draws the same.
 * Other families report 0 and ignore the setter. */
uint64_t sbi_estimator_get_draw_counter(sbi_estimator est);
void sbi_estimator_set_draw_counter(sbi_estimator est, uint64_t counter);
int sbi_estimator_n_tensors(sbi_estimator est);
const sbi_tensor_info *sbi_estimator_tensors(sbi_estimator est);
/* Estimator families compiled in ("affine", "nsf", "maf"), for help texts; NULL past the end. */
const char *sbi_estimator_family_name(int i);

/* ---- implementing a family ----
 * A family is one file in src/flows defining a sbi_estimator_ops plus one row
 * of sbi_estimator_registry (src/flows/registry.c); the trainer, calibration
 * and inference only see the functions above.  The generic code owns the
 * layout (weights, grads, acts, dacts: see nn.h), initialises every weight
 * tensor from its table entry, checks arguments, zeroes the activation
 * gradients before backward, draws the latent normals and splits work into
 * chunks of max_batch rows.  A family describes its tensors and runs its
 * kernels on B <= max_batch rows; it never allocates after layout. */
typedef struct sbi_estimator_ops {
    const char *family;
    size_t impl_size; /* bytes of the family's state, zeroed before the first layout call */
    /* Optional: adjust the generic defaults of sbi_estimator_config_default. */
    void (*defaults)(sbi_estimator_config *cfg);
    /* Optional: family checks after the generic ones; SBI_ERR_INPUT naming the field. */
    int (*validate)(const sbi_estimator_config *cfg);
    /* Reserve every weight and activation with sbi_layout_weight / sbi_layout_act.
     * Called twice, for the counting and the binding pass, asking for the same
     * sequence both times.  May allocate small bookkeeping (index tables) on
     * the first call; destroy frees it. */
    int (*layout)(void *impl, const sbi_estimator_config *cfg, sbi_layout *lay);
    /* Optional: adjust weights after the generic initialisation. */
    void (*init)(void *impl, const sbi_estimator_config *cfg);
    /* logq (B) for x (B, X), theta (B, D); z (B, D) and logdet (B) are NULL or
     * receive the latent point and log|det dz/dtheta|. */
    int (*forward)(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq, sbi_real *z,
                   sbi_real *logdet);
    /* grads += d(sum_b dlogq[b] * logq[b]) / d weights after forward over the
     * same B rows; the first B rows of every activation gradient are zero on entry. */
    int (*backward)(void *impl, const sbi_real *dlogq, int B);
    /* n_obs observations x (n_obs, X), B rows in n_obs equal consecutive
     * groups (row b belongs to observation b / (B / n_obs)); z (B, D) ->
     * theta (B, D) and logq (B) (NULL allowed).  n_obs <= B <= max_batch.
     * x NULL (with n_obs = 1): the observation of the previous sample call,
     * whose embedding the family still holds; sbi_estimator_sample and
     * sbi_estimator_inverse pass it for every chunk after the first. */
    int (*sample)(void *impl, const sbi_real *x, int n_obs, int B, const sbi_real *z, sbi_real *theta,
                  sbi_real *logq);
    /* Optional, for families whose forward is not log q ("fmpe"): the true
     * logq (B) for x (B, X), theta (B, D); the flows leave it NULL and
     * sbi_estimator_log_prob calls forward. */
    int (*log_prob)(void *impl, const sbi_real *x, const sbi_real *theta, int B, sbi_real *logq);
    /* Optional: free what layout allocated (never the layout's buffers). */
    void (*destroy)(void *impl);
    /* Optional, for families whose forward draws random numbers ("fmpe"):
     * the number of forward calls so far, which keys the next draws.  A
     * resumed training run restores it to continue the same sequence. */
    uint64_t (*get_draw_counter)(const void *impl);
    void (*set_draw_counter)(void *impl, uint64_t counter);
} sbi_estimator_ops;
extern const sbi_estimator_ops *const sbi_estimator_registry[]; /* NULL-terminated */

#endif
