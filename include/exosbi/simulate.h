/* The simulator: prior -> forward model -> noise -> constraints, split
 * assignment, and the corpus-writing stage driver (simulate, resume, shards,
 * merge, normalisation statistics).
 */
#ifndef EXOSBI_SIMULATE_H
#define EXOSBI_SIMULATE_H

#include <stdint.h>

#include "exosbi/corpus.h"
#include "exosbi/forward.h"
#include "exosbi/task.h"

/* Simulate sim indices [index0, index0 + n) with no I/O: theta (n, n_params)
 * physical, x (n, n_outputs) with observational noise.  Invalid rows (NaN/inf,
 * outside a dataset's value constraints) are redrawn with the next sub-stream of
 * Philox(seed, index); *redrawn counts the redraws.  Deterministic in the index. */
int sbi_simulate_rows(const sbi_task *task, sbi_forward fw, int64_t index0, int64_t n, double *theta, double *x,
                      int64_t *redrawn);

/* Split assignment: which split simulation i falls in, and its row there.
 * sequential: train = [0, n_train), validation next, test last;
 * random: a Philox(split_seed) permutation picks the members, rows stay in index order. */
typedef struct sbi_splits_s *sbi_splits;
int sbi_splits_create(const sbi_task *task, sbi_splits *s);
void sbi_splits_destroy(sbi_splits *s);
int sbi_splits_of(sbi_splits s, int64_t index);   /* SBI_SPLIT_* */
int64_t sbi_splits_row(sbi_splits s, int64_t index); /* row of index within its split */
/* Rows of each split among indices [begin, end). */
void sbi_splits_count(sbi_splits s, int64_t begin, int64_t end, int64_t counts[3]);

typedef struct sbi_simulate_options {
    int64_t n_simulations; /* 0: the task's (change it with sbi_task_set_n_simulations first) */
    int resume;            /* continue PATH.partial; start afresh when there is none; accept a complete PATH */
    int shard_index, shard_count; /* shard_count 0: the whole corpus */
    int json;              /* print the JSON summary on stdout (rank 0) */
    int force;             /* overwrite a complete PATH (never a PATH.partial: that needs --resume or deleting) */
} sbi_simulate_options;

/* n_simulations: rows in the file (the shard's for a shard); wall_s: the whole
 * run; simulations_per_s: rows simulated by this run (not those found done on
 * --resume) per wall second; write_s: the slowest rank's time inside corpus
 * writes (rows, progress flushes, statistics); write_mb_per_s: the row bytes
 * of all ranks / write_s, in 10^6 bytes per second. */
typedef struct sbi_simulate_summary {
    int64_t n_simulations;
    double wall_s, simulations_per_s, write_mb_per_s, write_s;
    int64_t invalid_redrawn;
    char fingerprint[65];
} sbi_simulate_summary;

/* Collective: write the corpus (or one shard) to out_path, through
 * out_path.partial, renamed when complete.  Without opt->resume an existing
 * out_path.partial is SBI_ERR_INPUT, and so is an existing out_path unless
 * opt->force.  Shard I of K holds simulations [I*n/K, (I+1)*n/K) and no
 * normalisation statistics (sbi_simulate_merge computes them).  The
 * statistics cover the training split: per output column the exact median
 * and IQR (q75 - q25, linear interpolation) of the first 2^20 training rows,
 * and the mean and population standard deviation of all of them; the same
 * mean and standard deviation of theta_unconstrained.  They are bitwise the
 * same for any number of ranks.  Rows are written, and progress flushed, a
 * few batches at a time (about two seconds of work per flush).  The
 * environment variable EXOSBI_TEST_KILL_AFTER_BATCHES=N makes every rank
 * SIGKILL itself after N batches (the resume tests use it). */
int sbi_simulate_run(const sbi_comm *c, const sbi_task *task, const sbi_simulate_options *opt, const char *out_path,
                     sbi_simulate_summary *summary);
/* Collective: join shards (any order) into one corpus at out_path.  The
 * shards must be all K pieces of one corpus (SBI_ERR_INPUT for a missing or
 * repeated shard, SBI_ERR_INCOMPATIBLE for another task's); the result equals
 * the corpus written in one run. */
int sbi_simulate_merge(const sbi_comm *c, const char *out_path, int n_shards, char *const *shard_paths);
/* Build the corpus descriptor of a task (arrays borrowed from the task, freed by sbi_corpus_desc_free). */
int sbi_corpus_desc_from_task(const sbi_task *task, struct sbi_corpus_desc *desc);
void sbi_corpus_desc_free(struct sbi_corpus_desc *desc);

#endif
