/* Amortized retrieval of one observation with a trained posterior.
 *
 * POSTERIOR.h5 (format "exosbi-posterior"):
 *   /samples (n, D) float64 in physical units, attribute parameter_names
 *   /log_prob (n) float64: log posterior density of each sample, physical units
 *   /parameters/names, /parameters/units (D) strings
 *   /summary/{mean,std,median,lower68,upper68} (D) float64
 *   /observation/<dataset>/{value,uncertainty} (size) float64: what the model
 *     was conditioned on (after any rebinning), with /coordinates (size) when the
 *     dataset has them, /covariance (size, size) when one was given, and when
 *     the file was rebinned /file_coordinate, /file_value, /file_uncertainty
 *     (points in the file) and /file_missing (int64, 1 = missing); attributes
 *     source (path and HDU), format ("text" or "fits"), coordinate_unit,
 *     value_unit, uncertainty_unit (the file's TUNITn; "" for text files),
 *     rebinned (0/1), n_file_points, n_file_missing
 *   /predictive/<dataset>/{mean,std,lower,upper,crps} (size) float64, only with
 *     --predictive: the posterior-predictive band below; attributes coverage
 *     (fraction of observed points inside [lower, upper]); attributes on
 *     /predictive: level, n_forward_samples, n_valid, seed
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
 * default).  train stores those distances, sorted, in MODEL.h5
 * (/ood/calibration_distances, attribute split), so infer needs no corpus;
 * for model files without them, or with --ood-corpus, the distances are
 * computed from a corpus: the one named by the model's root attribute
 * `corpus` (as given to train, then relative to the model's directory, then
 * its file name in the model's directory), or --ood-corpus; it must have the
 * model's fingerprint.  Without a readable corpus the threshold is NaN and the
 * flag -1 (not calibrated).  flag 1 (outside) is also announced by a warning.
 *
 * Observations.  Each dataset's file is read by sbi_observation_read (text or
 * FITS, include/exosbi/observation.h).  Without rebinning it must be on the
 * dataset's grid: as many points, and the same coordinates (relative 1e-6)
 * where both have them, else SBI_ERR_INCOMPATIBLE.  With opt->rebin (the
 * --rebin option) a file on another grid is rebinned flux-conservingly onto
 * the dataset's coordinates (sbi_rebin_*); a file already on the grid is used
 * as it is.  Missing points (NaN rows of a FITS table, or target bins that the
 * valid data cover less than half of after rebinning) cannot be given to the
 * model, which was trained on complete observations: they are
 * SBI_ERR_INCOMPATIBLE, the message giving their number and the first few.
 *
 * Covariance.  The posterior assumes independent Gaussian noise with the
 * task's sigma (it is what the corpus was simulated with).  A full covariance
 * matrix for a dataset (opt->cov_paths, a text matrix over the file's points;
 * or a FITS COVARIANCE column) is validated (symmetric, positive definite),
 * rebinned with the observation (W C W^T), stored in POSTERIOR.h5, and its
 * diagonal becomes the dataset's uncertainty; a warning says when that
 * diagonal differs from the task's sigma^2 by more than 2% or when it has
 * correlations above 1% (the posterior ignores both).
 *
 * Posterior predictive (opt->predictive).  The first M = n_forward posterior
 * samples (the samples do not depend on the rank count) go through the forward
 * model: draw r is simulated as sim_index r with seed `seed + 1`, and with
 * observational noise gets N(0, sigma_task^2) from Philox(seed, r,
 * SBI_STREAM_NOISE, 1).  Draws are spread over the ranks in blocks and
 * gathered at rank 0, so the band is the same on any number of ranks.  Draws
 * the forward model cannot simulate are left out (n_valid counts the others);
 * the band is sbi_ppc_band (include/exosbi/calibrate.h) at `predictive_level`.
 */
#ifndef EXOSBI_INFER_H
#define EXOSBI_INFER_H

#include "exosbi/model.h"

#define SBI_POSTERIOR_FORMAT "exosbi-posterior"
#define SBI_OOD_DEFAULT_RATE 0.01
#define SBI_OOD_MAX_CALIBRATION 4096
#define SBI_INFER_DEFAULT_FORWARD 256 /* predictive draws, capped at the number of samples */
#define SBI_INFER_DEFAULT_LEVEL 0.9

typedef struct sbi_infer_options {
    int n_samples;
    uint64_t seed;
    int n_obs;
    char **obs_names; /* (n_obs) dataset names, or NULL entries for "the only dataset" */
    char **obs_paths; /* (n_obs) */
    double ood_rate;        /* false-alarm rate of the OOD threshold; 0 selects SBI_OOD_DEFAULT_RATE */
    const char *ood_corpus; /* calibration corpus; NULL: the model's `corpus` attribute */
    int rebin;              /* rebin files on another grid onto the datasets' coordinates */
    int n_cov;
    char **cov_names;       /* (n_cov) dataset names, or NULL entries for "the only dataset" */
    char **cov_paths;       /* (n_cov) text covariance matrices */
    int predictive;         /* add the posterior-predictive band */
    int n_forward;          /* its draws; 0: SBI_INFER_DEFAULT_FORWARD or n_samples if fewer */
    double predictive_level; /* 0: SBI_INFER_DEFAULT_LEVEL */
} sbi_infer_options;

/* What was read for one dataset, beyond the values and uncertainties. */
typedef struct sbi_infer_obs_info {
    char source[4200];
    int is_fits, rebinned;
    int64_t n_file, n_file_missing;
    char coordinate_unit[72], value_unit[72], uncertainty_unit[72];
    double *covariance;          /* (size, size) or NULL */
    double *file_coordinate, *file_value, *file_uncertainty; /* (n_file), only when rebinned */
    int64_t *file_missing;       /* (n_file), only when rebinned */
} sbi_infer_obs_info;

typedef struct sbi_infer_result {
    int D;
    int64_t n_samples;
    double *median, *lower68, *upper68, *mean, *std; /* (D), owned */
    double wall_s, sample_s;
    double ood_distance, ood_threshold; /* threshold NaN when not calibrated */
    int ood_flag;                       /* 1 outside the training support, 0 inside, -1 not calibrated */
    int64_t ood_n_calibration;
    int predictive;                     /* 1 when the band was computed */
    int64_t n_forward, n_valid;         /* predictive draws, and those that simulated */
    double predictive_coverage;         /* fraction of all observed points inside the band */
} sbi_infer_result;

/* Collective: the samples are drawn in chunks spread over the ranks and
 * gathered; rank 0 writes out_path.  Every rank gets the summary. */
int sbi_infer_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const sbi_infer_options *opt,
                  const char *out_path, sbi_infer_result *res);
void sbi_infer_result_free(sbi_infer_result *r);

/* Assemble the raw observation vector (task->n_outputs) from per-dataset
 * files.  A file whose grid does not match its dataset is SBI_ERR_INCOMPATIBLE. */
int sbi_infer_read_observation(const sbi_task *task, const sbi_infer_options *opt, double *x, double *sigma);
/* The same with the details of each dataset (info: n_datasets entries, freed
 * with sbi_infer_obs_info_free), and the covariance handling above.  c (may
 * be NULL) is where warnings go. */
int sbi_infer_read_observation_info(const sbi_comm *c, const sbi_task *task, const sbi_infer_options *opt, double *x,
                                    double *sigma, sbi_infer_obs_info *info);
void sbi_infer_obs_info_free(int n, sbi_infer_obs_info *info);

/* The OOD distance d(x) above for one raw observation x (X). */
double sbi_ood_distance(const sbi_model *m, const double *x);
/* The same from the normalisation alone: shift, scale (X). */
double sbi_ood_distance_raw(int64_t X, const double *shift, const double *scale, const double *x);
/* Calibrate the OOD threshold (collective): the (1 - rate) quantile of d over
 * held-out rows of corpus_path.  *n_used is 0 and *threshold NaN, with a
 * warning, when the corpus cannot be used; that is not an error. */
int sbi_ood_calibrate(const sbi_comm *c, const sbi_model *m, const char *corpus_path, double rate, double *threshold,
                      int64_t *n_used, int *split);

#endif
