/* Amortized retrieval of one observation with a trained posterior.
 *
 * POSTERIOR.h5 (format "exosbi-posterior"):
 *   /samples (n, D) float64 in physical units, attribute parameter_names
 *   /log_prob (n) float64: log posterior density of each sample, physical units
 *   /parameters/names, /parameters/units (D) strings
 *   /summary/{mean,std,median,lower68,upper68} (D) float64
 *   /observation/<dataset>/{value,uncertainty} (size) float64
 *   root attrs: task, fingerprint, model, observations, n_samples, seed
 */
#ifndef EXOSBI_INFER_H
#define EXOSBI_INFER_H

#include "exosbi/model.h"

#define SBI_POSTERIOR_FORMAT "exosbi-posterior"

typedef struct sbi_infer_options {
    int n_samples;
    uint64_t seed;
    int n_obs;
    char **obs_names; /* (n_obs) dataset names, or NULL entries for "the only dataset" */
    char **obs_paths; /* (n_obs) */
} sbi_infer_options;

typedef struct sbi_infer_result {
    int D;
    int64_t n_samples;
    double *median, *lower68, *upper68, *mean, *std; /* (D), owned */
    double wall_s, sample_s;
} sbi_infer_result;

/* Collective: the samples are drawn in chunks spread over the ranks and
 * gathered; rank 0 writes out_path.  Every rank gets the summary. */
int sbi_infer_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const sbi_infer_options *opt,
                  const char *out_path, sbi_infer_result *res);
void sbi_infer_result_free(sbi_infer_result *r);

/* Assemble the raw observation vector (task->n_outputs) from per-dataset
 * files.  A file whose grid does not match its dataset is SBI_ERR_INCOMPATIBLE. */
int sbi_infer_read_observation(const sbi_task *task, const sbi_infer_options *opt, double *x, double *sigma);

#endif
