/* A trained posterior: the estimator, the task it was trained for and the
 * normalisation that maps physical parameters and raw observations into the
 * estimator's spaces.  Stored as MODEL.h5 (format "exosbi-model"):
 *
 *   /                         attrs: format, format_version, task (JSON), fingerprint,
 *                             estimator (family), architecture (JSON),
 *                             training_options (JSON), corpus, n_ranks,
 *                             best_epoch, best_val_loss, creator
 *   /weights                  (n_weights) float32
 *   /parameters/names         (D) strings
 *   /normalization/x/{shift,scale}          (X) float64: x_norm = (x - shift) / scale
 *   /normalization/theta/{mean,std}         (D) float64: on the unconstrained parameters
 *   /history/{epoch,train_loss,val_loss,learning_rate,wall_s}  (epochs)
 *
 * Any model loads through sbi_model_load without naming its family.
 */
#ifndef EXOSBI_MODEL_H
#define EXOSBI_MODEL_H

#include "exosbi/estimator.h"
#include "exosbi/task.h"

#define SBI_MODEL_FORMAT "exosbi-model"
#define SBI_MODEL_FORMAT_VERSION 1

typedef struct sbi_model {
    sbi_task *task;          /* owned */
    sbi_estimator est;       /* owned */
    int D, X;
    double *x_shift, *x_scale;       /* (X) */
    double *ood_distances;           /* (n_ood) sorted OOD distances of validation rows, or NULL (older files) */
    int64_t n_ood;
    int ood_split;                   /* the split they come from (SBI_SPLIT_*) */
    double *theta_mean, *theta_std;  /* (D) */
    double best_val_loss;
    int best_epoch;
} sbi_model;

/* Observation normalisation from corpus statistics: shift = median, scale =
 * IQR / 1.349 (a standard deviation for Gaussian data), falling back to the
 * standard deviation and then to 1 for constant columns. */
void sbi_model_x_scaling(int64_t X, const double *median, const double *iqr, const double *std, double *shift,
                         double *scale);

int sbi_model_load(const char *path, sbi_model **model);
void sbi_model_destroy(sbi_model **model);

/* Normalise one raw observation x (X) into xn (X). */
void sbi_model_normalize_x(const sbi_model *m, const double *x, sbi_real *xn);
void sbi_model_normalize_x_float(const sbi_model *m, const float *x, sbi_real *xn);

/* n posterior draws for one raw observation x (X): theta (n, D) in physical
 * units and, when logq is not NULL, their log density in physical units. */
int sbi_model_sample(sbi_model *m, const double *x, int n, sbi_rng *rng, double *theta, double *logq);
/* n draws for each of n_obs raw observations x (n_obs, X) in one vectorised
 * call: theta (n_obs n, D), block i from rng[i], equal to sbi_model_sample of
 * observation i up to float rounding (see sbi_estimator_sample_batch).
 * Everything is held at once: callers pass groups of about
 * sbi_model_sample_group(m, n) observations, the number one flow pass takes. */
int sbi_model_sample_batch(sbi_model *m, const double *x, int n_obs, int n, sbi_rng *rng, double *theta,
                           double *logq);
int sbi_model_sample_group(const sbi_model *m, int n);

#endif
