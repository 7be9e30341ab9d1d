/* Data-parallel training of a neural posterior estimator on a corpus.
 *
 * Every rank holds an identical copy of the estimator.  The training split is
 * divided into one contiguous row shard per rank; each step every rank draws
 * batch_size / ranks rows of its shard (reshuffled every epoch from
 * Philox(seed, epoch, rank)), computes its gradient, and one MPI_Allreduce
 * sums the gradient buffers, so the weights stay bitwise identical on every
 * rank.  Rows stream from the corpus through a bounded cache: a shard that
 * fits in --cache-mb is read once; a larger one is read group by group of
 * row blocks, shuffled within each group.
 */
#ifndef EXOSBI_TRAIN_H
#define EXOSBI_TRAIN_H

#include "exosbi/estimator.h"
#include "exosbi/task.h"

typedef struct sbi_train_options {
    char estimator[32];
    int batch_size;        /* global: summed over ranks */
    double learning_rate;
    int max_epochs, min_epochs, patience;
    double min_delta;      /* an epoch improves when val_loss < best - min_delta */
    double clip_norm;      /* global gradient-norm clipping; 0 disables */
    double weight_decay;   /* AdamW decoupled weight decay */
    int lr_decay_patience; /* multiply the rate by lr_decay_factor after this many epochs without
                              improvement (0: constant rate) */
    double lr_decay_factor, min_learning_rate;
    char lr_schedule[16];   /* "plateau" (default), "cosine" or "constant" */
    double warmup_fraction; /* cosine: linear warm-up over this fraction of the schedule (0.02) */
    double warmup_epochs;   /* cosine: warm-up length in epochs; overrides the fraction when > 0 */
    double schedule_epochs; /* cosine: length of the schedule in epochs (0: max_epochs) */
    double noise_multiplier;/* on-the-fly observation noise: this many times the observational sigma (0: off) */
    double noise_min_scale; /* floor of that noise, as a fraction of a dataset's median sigma */
    double parameter_noise_floor; /* std of the jitter on the unconstrained parameter targets (0: off) */
    uint64_t seed;
    int embed_dim, embed_hidden, embed_layers, n_transforms, hidden, hidden_layers; /* 0: defaults */
    char embedding[16];    /* "mlp" or "conv1d"; "": the estimator's default */
    int n_bins;            /* spline bins (nsf); 0: default */
    double tail_bound;     /* spline interval [-B, B] (nsf); 0: default */
    int n_sigmoids, bisection_steps; /* naf; 0: defaults */
    char ode_solver[16];   /* fmpe: "rk_adaptive" or "midpoint"; "": default */
    int ode_steps;         /* fmpe midpoint steps; 0: default */
    int time_features;     /* fmpe: frequencies of the time features (0 to 8); -1: the default (4) */
    int cache_mb;          /* bound on the per-rank read cache */
    int resume;
    int verify_sync;       /* check bitwise weight equality across ranks after every step */
    int stop_after_epochs; /* stop (without finishing) after this many epochs: for resume tests */
} sbi_train_options;

typedef struct sbi_train_summary {
    int epochs, best_epoch;
    double best_val_loss, train_samples_per_s, wall_s;
    int64_t steps;
} sbi_train_summary;

/* Defaults, then the task's `training` section.  Bad values: SBI_ERR_INPUT
 * naming training.<key>. */
int sbi_train_options_from_task(const sbi_task *task, sbi_train_options *opt);
int sbi_train_options_validate(const sbi_train_options *opt);
cJSON *sbi_train_options_to_json(const sbi_train_options *opt);

/* Collective.  Writes model_path (through model_path.partial) and keeps a
 * checkpoint model_path.ckpt after every epoch; with opt->resume, continues
 * from that checkpoint. */
int sbi_train_run(const sbi_comm *c, const sbi_task *task, const char *corpus_path, const sbi_train_options *opt,
                  const char *model_path, sbi_train_summary *summary);

#endif
