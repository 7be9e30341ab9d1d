/* Calibration of a trained posterior on held-out simulations.
 *
 * Simulation-based calibration: for each held-out case (theta*, x) draw N
 * posterior samples; the rank of theta*_j among the samples of parameter j
 * is uniform on {0..N} when the posterior is calibrated.  Coverage at level a
 * is the fraction of cases whose central a-interval (the empirical
 * (1-a)/2 and (1+a)/2 quantiles) contains theta*.  Cases are scattered across
 * ranks; the samples of case i come from Philox(seed, sim_index_i), so the
 * report is the same on any number of ranks.
 *
 * TARP (Lemos et al. 2023, "Sampling-based accuracy testing of posterior
 * estimators"): in the model's standardised unconstrained parameter space
 * (unconstrained parameters minus the training mean, over the training std)
 * each case i gets a reference point r_i drawn uniformly from the box
 * [-2, 2]^D by Philox(seed, sim_index_i, SBI_STREAM_SAMPLE, SBI_TARP_REFERENCE_SUB),
 * so it depends on the case alone.  f_i is the fraction of posterior draws
 * closer to r_i (Euclidean) than the true parameter; the expected coverage
 * probability ECP(alpha) is the fraction of cases with f_i < alpha, on the
 * grid alpha = k / (n_alpha - 1).  A calibrated posterior gives ECP(alpha) =
 * alpha up to a bias below 1 / (n_samples + 1) and sampling noise; the report
 * gives max |ECP(alpha) - alpha| as tarp_max_distance.
 *
 * SBC.h5 (format "exosbi-sbc"):
 *   /ranks (n_cases, D) int64, /truths and /posterior_means (n_cases, D) float64,
 *   /sim_index (n_cases) int64, /rank_histogram (D, n_bins) int64,
 *   /coverage/levels (L), /coverage/empirical (L) (all parameters),
 *   /coverage/expected (L): what a calibrated posterior gives with n_samples
 *   draws, level (n - 1) / (n + 1), as the interval's ends are interpolated
 *   quantiles of the draws (sbi_sbc_expected_coverage),
 *   /coverage/per_parameter (L, D), /mean_rank (D), /normalized_mean_rank_error (D),
 *   /parameters/names,
 *   /tarp/alpha (n_alpha), /tarp/ecp (n_alpha), /tarp/f (n_cases), /tarp/references (n_cases, D);
 *   root attrs: task, fingerprint, split, n_cases, n_samples, seed, tarp_max_distance.
 */
#ifndef EXOSBI_CALIBRATE_H
#define EXOSBI_CALIBRATE_H

#include "exosbi/forward.h"
#include "exosbi/model.h"

#define SBI_SBC_FORMAT "exosbi-sbc"
#define SBI_MAX_LEVELS 16
#define SBI_TARP_REFERENCE_SUB 2 /* Philox sub-stream of the TARP reference points */
#define SBI_TARP_REFERENCE_HALF_WIDTH 2.0

typedef struct sbi_sbc_options {
    int split;          /* SBI_SPLIT_TEST by default */
    int n_samples;      /* posterior draws per case */
    int64_t max_cases;  /* 0: every case of the split */
    int n_levels;
    double levels[SBI_MAX_LEVELS];
    int n_bins;         /* rank histogram bins */
    uint64_t seed;
    int n_alpha;        /* TARP credibility grid points, from 0 to 1 (101) */
} sbi_sbc_options;

typedef struct sbi_sbc_summary {
    int64_t n_cases;
    int D, n_levels;
    double levels[SBI_MAX_LEVELS];
    double coverage[SBI_MAX_LEVELS];
    double expected[SBI_MAX_LEVELS]; /* sbi_sbc_expected_coverage of each level */
    double *normalized_mean_rank_error; /* (D), owned: free with sbi_sbc_summary_free */
    double tarp_max_distance;           /* max over alpha of |ECP(alpha) - alpha| */
    double wall_s;
} sbi_sbc_summary;

void sbi_sbc_options_default(sbi_sbc_options *o);
/* Collective.  Rank 0 writes out_path. */
int sbi_sbc_run(const sbi_comm *c, const char *model_path, const char *corpus_path, const sbi_sbc_options *opt,
                const char *out_path, sbi_sbc_summary *summary);
void sbi_sbc_summary_free(sbi_sbc_summary *s);

/* The statistics, exposed for tests.  ranks: (n_cases, D) in [0, n_samples]. */
/* The coverage of the central interval between the interpolated (1 -
 * level)/2 and (1 + level)/2 quantiles of n_samples draws when the truth is
 * one more draw from the same distribution: level (n - 1) / (n + 1), since
 * the k-th of n sorted uniform draws has mean k / (n + 1). */
double sbi_sbc_expected_coverage(double level, int n_samples);

void sbi_sbc_coverage_from_samples(int n_samples, int D, const double *samples, const double *truth,
                                   int n_levels, const double *levels, int *covered /* (n_levels, D) */);
/* TARP: the fraction of the n_samples draws (n_samples, D) that lie closer
 * (Euclidean) to the reference point ref (D) than truth (D) does. */
double sbi_tarp_fraction(int n_samples, int D, const double *samples, const double *truth, const double *ref);
/* The expected coverage curve from the fractions f (n_cases): alpha (n_alpha)
 * = k / (n_alpha - 1), ecp (n_alpha) = fraction of cases with f < alpha.
 * Returns max |ecp - alpha|.  n_alpha >= 2. */
double sbi_tarp_ecp(int64_t n_cases, const double *f, int n_alpha, double *alpha, double *ecp);

/* ---- posterior-predictive report -------------------------------------------
 * Per held-out case (x_obs, sim_index s): N posterior draws from
 * Philox(seed, s, SBI_STREAM_SAMPLE, 0), of which the first M go through the
 * forward model (row r is simulated as index s * M + r with seed seed + 1,
 * so stochastic simulators are reproducible); with observational noise
 * each predictive draw r gets N(0, sigma^2) from Philox(seed, s,
 * SBI_STREAM_NOISE, 1 + r).  Rows the forward model cannot simulate (NaN)
 * are left out and counted.  Per observed point: predictive mean, std
 * (M - 1 denominator), the central `level` interval (linear-interpolated
 * empirical quantiles) and the ensemble CRPS
 *   CRPS = (1/M) sum_r |y_r - x| - (1/(2 M^2)) sum_r sum_r' |y_r - y_r'|.
 * Per case and dataset: coverage (fraction of points inside their interval),
 * MAE = mean |mean - x|, MAE in units of sigma, the median over points of
 * (upper - lower) / sigma, and the mean CRPS (sigma is the task's dataset
 * uncertainty; ratios are NaN where sigma is 0).  The summary is the mean over
 * cases, except the width ratio, which is the median over cases.  Everything
 * is on the original observation scale.  Cases are scattered over the ranks
 * in contiguous blocks; a case depends on its sim_index alone, so the report
 * is the same on any number of ranks.
 *
 * With a checkpoint directory every finished case is written there as
 * case_<sim_index>.h5 (atomically, through .partial) and read back instead
 * of recomputed on a later run with the same settings; a checkpoint made
 * with other settings is SBI_ERR_INCOMPATIBLE.
 *
 * PPC.h5 (format "exosbi-ppc"):
 *   /sim_index (n_cases) int64, /n_valid (n_cases) int64 (draws that simulated),
 *   /datasets/names (n_datasets) strings,
 *   /datasets/<name>/{observed,mean,std,lower,upper} (n_cases, size) float64,
 *   /datasets/<name>/uncertainty (size), /datasets/<name>/coordinates (size) when the dataset has them,
 *   /per_case/{coverage,mae,mae_sigma,median_width_over_sigma,crps} (n_cases, n_datasets),
 *   /summary/{coverage,mae,mae_sigma,median_width_over_sigma,crps} (n_datasets);
 *   root attrs: task, fingerprint, model, corpus, split, n_cases, n_samples,
 *   n_forward_samples, level, seed.
 */
#define SBI_PPC_FORMAT "exosbi-ppc"
#define SBI_PPC_N_STATS 5 /* coverage, mae, mae_sigma, median_width_over_sigma, crps */

typedef struct sbi_ppc_options {
    int split;                  /* SBI_SPLIT_TEST by default */
    int n_samples;              /* posterior draws per case (256) */
    int n_forward;              /* draws through the forward model; 0: all n_samples */
    int64_t max_cases;          /* 0: every case of the split */
    double level;               /* central predictive interval (0.9) */
    uint64_t seed;
    const char *checkpoint_dir; /* NULL: no checkpoints */
} sbi_ppc_options;

typedef struct sbi_ppc_summary {
    int64_t n_cases, n_resumed; /* n_resumed: cases read back from checkpoints */
    int n_datasets;
    double *stats;              /* (SBI_PPC_N_STATS, n_datasets), owned */
    double wall_s;
} sbi_ppc_summary;

void sbi_ppc_options_default(sbi_ppc_options *o);
/* Collective.  Rank 0 writes out_path. */
int sbi_ppc_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const char *corpus_path,
                const sbi_ppc_options *opt, const char *out_path, sbi_ppc_summary *summary);
void sbi_ppc_summary_free(sbi_ppc_summary *s);
extern const char *const sbi_ppc_stat_names[SBI_PPC_N_STATS];

/* The ensemble CRPS above of the M values y against x; sorts y in place. */
double sbi_crps_ensemble(int M, double *y, double x);
/* The per-point band of an ensemble pred (M, X) of valid predictive draws
 * against the observation x (X): mean, std (M - 1 denominator), the central
 * `level` interval [lower, upper] (linear-interpolated empirical quantiles)
 * and the ensemble CRPS, each (X); NaN everywhere when M is 0.  col is
 * scratch (M).  Shared by the predictive report and `infer --predictive`. */
void sbi_ppc_band(int M, int X, const double *pred, const double *x, double level, double *mean, double *std,
                  double *lower, double *upper, double *crps, double *col);

/* ---- local sensitivity report ----------------------------------------------
 * For one observation and its posterior samples: at representative points
 * (the posterior mean, the highest-density sample, and the per-parameter
 * quantiles at `quantiles`, clamped into the prior support) the Jacobian
 * J = d model / d theta of the (deterministic) forward model by finite
 * differences.  Step of parameter j: h_j = max(rel_step |theta_j|,
 * std_fraction * posterior std_j, abs_floor); central differences when
 * theta +- h stay in the prior support and simulate, else forward (theta + h),
 * else backward (theta - h); when none works h is halved, at most
 * max_reductions times, and then the column is zero and the scheme "failed".
 * J is whitened by the observational uncertainties (row k over sigma_k), or,
 * given a full observation covariance C = L L^T, by L^{-1} (Jw = L^{-1} J, so
 * that Jw^T Jw = J^T C^{-1} J), and decomposed: sbi_sens_compute uses LAPACKE_dgesvd; sbi_sens_run does the same
 * on rank 0 unless X * D >= SBI_DENSE_DISTRIBUTED_MIN (2^20, see
 * exosbi/dense.h) on more than one rank, in which case every rank joins a
 * ScaLAPACK pdgesvd through sbi_dense_svd.  Singular values s, effective rank (s_i >
 * svd_rtol * s_max), condition number s_max / s_min (inf when s_min is 0),
 * Fisher matrix F = Jw^T Jw, the damped pseudo-inverse covariance
 * C = sum over the effective directions v_i v_i^T / (s_i^2 + ridge), ridge =
 * 1e-12 s_max^2, its correlation matrix, the sensitivity norm sqrt(F_jj) and
 * local sigma sqrt(C_jj).  Aggregates over the points are medians;
 * posterior_to_local_sigma_ratio = posterior std / aggregate local sigma.
 * Diagnosis per parameter (in this order):
 *   "weakly constrained by the data": sensitivity norm times posterior std
 *     (the whitened response to a one-sigma move) below weak_fraction of the
 *     largest such value over parameters, or a zero local sigma;
 *   "broader than the local curvature": ratio above ratio_threshold;
 *   "narrower than the local curvature": ratio below 1 / ratio_threshold
 *     (the prior, or non-linearity, constrains it more than the data do locally);
 *   "consistent with the local curvature" otherwise.
 * The matrices are small (D x D, X x D), so rank 0 computes them alone with
 * LAPACK; ScaLAPACK is not needed at these sizes.
 *
 * SENS.h5 (format "exosbi-sensitivity"): root attrs task, fingerprint,
 * posterior, observations, whitening ("uncertainties" or "covariance"),
 * payload (the whole report as JSON);
 *   /parameters/names (D), /posterior/{mean,std,median,iqr} (D),
 *   /observation/{value,uncertainty} (X), /observation/covariance (X, X) when given,
 *   /points/labels (P) strings, /points/parameters, /points/steps (P, D),
 *   /points/schemes (P, D) int64 (0 central, 1 forward, 2 backward, -1 failed),
 *   /points/<p>/{whitened_jacobian (X, D), singular_values (min(X, D)),
 *     fisher_matrix, fisher_covariance, fisher_correlation (D, D),
 *     sensitivity_norm, local_sigma (D)} with attrs label, effective_rank,
 *     condition_number, ridge;
 *   /aggregate/{local_sigma, sensitivity_norm, posterior_to_local_sigma_ratio} (D),
 *   /diagnosis (D) strings.
 */
#define SBI_SENSITIVITY_FORMAT "exosbi-sensitivity"
enum { SBI_FD_FAILED = -1, SBI_FD_CENTRAL = 0, SBI_FD_FORWARD = 1, SBI_FD_BACKWARD = 2 };

typedef struct sbi_sens_options {
    int n_quantiles;
    double quantiles[SBI_MAX_LEVELS]; /* (0.1, 0.5, 0.9) */
    double rel_step, std_fraction, abs_floor; /* 1e-3, 0.1, 1e-5 */
    int max_reductions;                       /* 6 */
    double svd_rtol;                          /* 1e-3 */
    double ratio_threshold;                   /* 1.5 */
    double weak_fraction;                     /* 0.15 */
} sbi_sens_options;

typedef struct sbi_sens_point {
    char label[32];
    double *theta, *step; /* (D) */
    int *scheme;          /* (D) SBI_FD_* */
    double *jw;           /* (X, D) whitened Jacobian */
    double *sv;           /* (min(X, D)) */
    int effective_rank;
    double condition_number, ridge;
    double *fisher, *cov, *corr; /* (D, D) */
    double *norm, *sigma;        /* (D) */
} sbi_sens_point;

typedef struct sbi_sens_report {
    int D, X, n_points;
    sbi_sens_point *points;                                /* (n_points), owned */
    double *post_mean, *post_std, *post_median, *post_iqr; /* (D) */
    double *agg_sigma, *agg_norm, *ratio;                  /* (D) */
    const char **diagnosis;                                /* (D) static strings */
} sbi_sens_report;

void sbi_sens_options_default(sbi_sens_options *o);
/* The report for samples (n, D) with log densities logp (n, may be NULL: the
 * highest-density point is then left out) and observational uncertainties
 * sigma (X, all positive), or the full covariance cov (X, X) row-major when
 * not NULL (then sigma only serves the report).  Serial. */
int sbi_sens_compute(const sbi_task *task, sbi_forward fw, int64_t n, const double *samples, const double *logp,
                     const double *sigma, const double *cov, const sbi_sens_options *o, sbi_sens_report *rep);
void sbi_sens_report_free(sbi_sens_report *rep);
/* The report as JSON (caller deletes). */
cJSON *sbi_sens_report_to_json(const sbi_task *task, const sbi_sens_report *rep);
/* Collective: reads the posterior samples, checks they belong to task, and on
 * rank 0 computes the report and writes out_path.  x and sigma (X) are the
 * observation, cov (X, X, or NULL; read on rank 0 only) its covariance.
 * *json_text (rank 0, may be NULL) receives the JSON payload. */
int sbi_sens_run(const sbi_comm *c, const sbi_task *task, const char *posterior_path, const double *x,
                 const double *sigma, const double *cov, const char *observations, const sbi_sens_options *o,
                 const char *out_path, char **json_text);

#endif
