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
 *   /coverage/per_parameter (L, D), /mean_rank (D), /normalized_mean_rank_error (D),
 *   /parameters/names,
 *   /tarp/alpha (n_alpha), /tarp/ecp (n_alpha), /tarp/f (n_cases), /tarp/references (n_cases, D);
 *   root attrs: task, fingerprint, split, n_cases, n_samples, seed, tarp_max_distance.
 */
#ifndef EXOSBI_CALIBRATE_H
#define EXOSBI_CALIBRATE_H

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
void sbi_sbc_coverage_from_samples(int n_samples, int D, const double *samples, const double *truth,
                                   int n_levels, const double *levels, int *covered /* (n_levels, D) */);
/* TARP: the fraction of the n_samples draws (n_samples, D) that lie closer
 * (Euclidean) to the reference point ref (D) than truth (D) does. */
double sbi_tarp_fraction(int n_samples, int D, const double *samples, const double *truth, const double *ref);
/* The expected coverage curve from the fractions f (n_cases): alpha (n_alpha)
 * = k / (n_alpha - 1), ecp (n_alpha) = fraction of cases with f < alpha.
 * Returns max |ecp - alpha|.  n_alpha >= 2. */
double sbi_tarp_ecp(int64_t n_cases, const double *f, int n_alpha, double *alpha, double *ecp);

#endif
