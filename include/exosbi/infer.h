/* Amortized retrieval of one observation with a trained posterior.
 *
 * POSTERIOR.h5 (format "exosbi-posterior"):
 *   /samples (n, D) float64 in physical units, attribute parameter_names
 *   /log_prob (n) float64: log posterior density of each sample, physical units
 *   /parameters/names, /parameters/units (D) strings
 *   /summary/{mean,std,median,lower68,upper68} (D) float64
 *   /observation/<dataset>/{value,uncertainty} (size) float64
 *   /ood/distance, /ood/threshold (1) float64, /ood/flag (1) int64: the
 *     out-of-distribution diagnostic below; attributes on /ood: statistic,
 *     false_alarm_rate, calibration_corpus, calibration_split, n_calibration
 *   root attrs: task, fingerprint, model, observations, n_samples, seed
 *
 * Out-of-distribution diagnostic.  The distance of an observation x from the
 * training support is the root mean square of its robust z-scores,
 *   d(x) = sqrt(mean_j ((x_j - median_j) / (IQR_j / 1.349))^2),
 * with the training-split median and IQR the model normalises with (so a
 * typical training observation has d near 1 whatever the data's units).  Its
 * threshold is calibrated on held-out simulations: the (1 - rate) quantile of
 * d over at most SBI_OOD_MAX_CALIBRATION rows of the validation split (the
 * test split when that is empty) of the model's corpus, so that an
 * in-distribution observation is flagged with probability `rate` (1% by
 * default).  The corpus is the one named by the model's root attribute
 * `corpus` (as given to train, then relative to the model's directory, then
 * its file name in the model's directory), or --ood-corpus; it must have the
 * model's fingerprint.  Without a readable corpus the threshold is NaN and the
 * flag -1 (not calibrated).  flag 1 (outside) is also announced by a warning.
 */
#ifndef EXOSBI_INFER_H
#define EXOSBI_INFER_H

#include "exosbi/model.h"

#define SBI_POSTERIOR_FORMAT "exosbi-posterior"
#define SBI_OOD_DEFAULT_RATE 0.01
#define SBI_OOD_MAX_CALIBRATION 4096

typedef struct sbi_infer_options {
    int n_samples;
    uint64_t seed;
    int n_obs;
    char **obs_names; /* (n_obs) dataset names, or NULL entries for "the only dataset" */
    char **obs_paths; /* (n_obs) */
    double ood_rate;        /* false-alarm rate of the OOD threshold; 0 selects SBI_OOD_DEFAULT_RATE */
    const char *ood_corpus; /* calibration corpus; NULL: the model's `corpus` attribute */
} sbi_infer_options;

typedef struct sbi_infer_result {
    int D;
    int64_t n_samples;
    double *median, *lower68, *upper68, *mean, *std; /* (D), owned */
    double wall_s, sample_s;
    double ood_distance, ood_threshold; /* threshold NaN when not calibrated */
    int ood_flag;                       /* 1 outside the training support, 0 inside, -1 not calibrated */
    int64_t ood_n_calibration;
} sbi_infer_result;

/* Collective: the samples are drawn in chunks spread over the ranks and
 * gathered; rank 0 writes out_path.  Every rank gets the summary. */
int sbi_infer_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const sbi_infer_options *opt,
                  const char *out_path, sbi_infer_result *res);
void sbi_infer_result_free(sbi_infer_result *r);

/* Assemble the raw observation vector (task->n_outputs) from per-dataset
 * files.  A file whose grid does not match its dataset is SBI_ERR_INCOMPATIBLE. */
int sbi_infer_read_observation(const sbi_task *task, const sbi_infer_options *opt, double *x, double *sigma);

/* The OOD distance d(x) above for one raw observation x (X). */
double sbi_ood_distance(const sbi_model *m, const double *x);
/* Calibrate the OOD threshold (collective): the (1 - rate) quantile of d over
 * held-out rows of corpus_path.  *n_used is 0 and *threshold NaN, with a
 * warning, when the corpus cannot be used; that is not an error. */
int sbi_ood_calibrate(const sbi_comm *c, const sbi_model *m, const char *corpus_path, double rate, double *threshold,
                      int64_t *n_used, int *split);

#endif
