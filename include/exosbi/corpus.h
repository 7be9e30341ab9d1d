/* The simulation corpus: one parallel-HDF5 file shared by all ranks.
 *
 * Layout (format "exosbi-corpus", format_version 1):
 *   /                      attrs: format, format_version, task (JSON), fingerprint, seed,
 *                          n_simulations, batch_size, n_params, n_outputs, complete (0/1),
 *                          batches_done, invalid_redrawn, shard_index, shard_count,
 *                          index_begin, index_end, creator (version, git sha, ranks)
 *   /parameters/names      (n_params) strings
 *   /datasets/<name>       attrs: index (position in the observation vector), offset (first column), size
 *   /datasets/<name>/coordinates (size) float64, present when the dataset has coordinates
 *   /datasets/<name>/uncertainty (size) float64
 *   /<split>/theta         (n_split, n_params) float64, physical
 *   /<split>/theta_cube    (n_split, n_params) float64
 *   /<split>/theta_unconstrained (n_split, n_params) float64
 *   /<split>/x/<name>      (n_split, size) float32, observations per dataset
 *   /<split>/sim_index     (n_split) int64
 *   /normalization/x/{median,iqr,mean,std}        (n_outputs) float64, training split
 *   /normalization/theta_unconstrained/{mean,std} (n_params) float64
 * <split> is train, validation, test.  Rows of a split are in increasing sim_index.
 * A shard (shard_count > 0) has no /normalization.
 * This module knows nothing of tasks: callers describe the layout with plain arrays.
 *
 * The file goes through the MPI-IO driver with collective metadata; datasets
 * are contiguous and allocated at creation, and objects of 1 MiB or more are
 * aligned on 1 MiB (EXOSBI_HDF5_ALIGNMENT=bytes in the environment changes
 * that, for a parallel file system's stripe size, say).  Errors raised on one
 * rank inside a collective call are agreed, so every rank returns the same
 * verdict (the others get SBI_ERR_REMOTE | code).
 */
#ifndef EXOSBI_CORPUS_H
#define EXOSBI_CORPUS_H

#include <stdint.h>

#include "exosbi/core.h"

#define SBI_CORPUS_FORMAT "exosbi-corpus"
#define SBI_CORPUS_FORMAT_VERSION 1

typedef struct sbi_corpus_s *sbi_corpus;

/* What a corpus holds.  For a writer the caller fills it; a reader gets one
 * owned by the corpus (valid until sbi_corpus_close). */
typedef struct sbi_corpus_desc {
    int n_params;
    char **param_names;          /* (n_params) */
    int n_datasets;
    char **dataset_names;        /* (n_datasets) */
    int64_t *dataset_sizes;      /* (n_datasets) */
    double **coordinates;        /* (n_datasets) arrays of dataset_sizes[k], entries may be NULL */
    double **uncertainties;      /* (n_datasets) arrays of dataset_sizes[k] */
    int64_t n_outputs;           /* sum of dataset_sizes */
    int64_t n_simulations;       /* of the whole corpus (all shards) */
    int64_t split_rows[3];       /* rows of each split held by THIS file */
    int batch_size;
    uint64_t seed;
    char *task_json;
    char fingerprint[65];
    int shard_index, shard_count; /* 0, 0 for a whole corpus */
    int64_t index_begin, index_end; /* simulation indices held by this file */
} sbi_corpus_desc;

/* ---- writing (collective over comm) ---- */

/* Create PATH.partial with every dataset allocated. */
int sbi_corpus_create(const sbi_comm *c, const char *path, const sbi_corpus_desc *desc, sbi_corpus *corpus);
/* Reopen PATH.partial of a killed run.  The stored fingerprint, counts and shard
 * must equal desc's (else SBI_ERR_INCOMPATIBLE); *batches_done says where to go on. */
int sbi_corpus_resume(const sbi_comm *c, const char *path, const sbi_corpus_desc *desc, sbi_corpus *corpus,
                      int64_t *batches_done);
/* Every rank calls, each with its own contiguous rows [row0, row0 + count) of
 * split (count may be 0).  theta*: (count, n_params); x: (count, n_outputs)
 * concatenated datasets; sim_index: (count). */
int sbi_corpus_write_rows(sbi_corpus corpus, int split, int64_t row0, int64_t count, const double *theta,
                          const double *theta_cube, const double *theta_unc, const float *x,
                          const int64_t *sim_index);
/* Record progress (collective, then flushed to disk): after this, a killed run
 * resumes at batch `batches_done`. */
int sbi_corpus_mark_progress(sbi_corpus corpus, int64_t batches_done, int64_t invalid_redrawn);
/* Normalisation statistics; every rank passes the same arrays. */
int sbi_corpus_write_stats(sbi_corpus corpus, const double *x_median, const double *x_iqr, const double *x_mean,
                           const double *x_std, const double *theta_mean, const double *theta_std);
/* Mark complete, close and rename PATH.partial -> PATH. */
int sbi_corpus_commit(sbi_corpus *corpus);

/* ---- reading ---- */

/* Open a finished corpus (or a shard) read-only.  Collective over comm.
 * Foreign, truncated or incomplete files are SBI_ERR_IO naming the path. */
int sbi_corpus_open(const sbi_comm *c, const char *path, sbi_corpus *corpus);
const sbi_corpus_desc *sbi_corpus_get_desc(sbi_corpus corpus);
int64_t sbi_corpus_invalid_redrawn(sbi_corpus corpus);
/* Batches recorded by the last sbi_corpus_mark_progress (or found on resume/open). */
int64_t sbi_corpus_batches_done(sbi_corpus corpus);
/* Whether /normalization holds statistics (a shard has none). */
int sbi_corpus_has_stats(sbi_corpus corpus);
/* The corpus's final path (a writer works on PATH.partial until commit). */
const char *sbi_corpus_path(sbi_corpus corpus);
/* This rank's time inside write calls (rows, progress, statistics) and the
 * bytes of rows it handed to them. */
void sbi_corpus_io_stats(sbi_corpus corpus, double *write_s, int64_t *bytes);
/* Independent reads of rows [row0, row0 + count) of split; any pointer may be
 * NULL to skip that array.  space: 0 physical, 1 cube, 2 unconstrained. */
int sbi_corpus_read_rows(sbi_corpus corpus, int split, int64_t row0, int64_t count, int space, double *theta,
                         float *x, int64_t *sim_index);
/* Columns [col0, col0 + ncols) of the concatenated observation vector, rows
 * [row0, row0 + nrows) of split, into out (nrows, ncols). Independent. */
int sbi_corpus_read_x_columns(sbi_corpus corpus, int split, int64_t row0, int64_t nrows, int64_t col0,
                              int64_t ncols, float *out);
/* Normalisation statistics (arrays of n_outputs / n_params, caller-allocated). */
int sbi_corpus_read_stats(sbi_corpus corpus, double *x_median, double *x_iqr, double *x_mean, double *x_std,
                          double *theta_mean, double *theta_std);
/* Close (collective). NULL-safe. A writer that was not committed is closed and
 * left as PATH.partial for --resume. */
int sbi_corpus_close(sbi_corpus *corpus);

#endif
