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
 * SBC.h5 (format "exosbi-sbc"):
 *   /ranks (n_cases, D) int64, /truths and /posterior_means (n_cases, D) float64,
 *   /sim_index (n_cases) int64, /rank_histogram (D, n_bins) int64,
 *   /coverage/levels (L), /coverage/empirical (L) (all parameters),
 *   /coverage/per_parameter (L, D), /mean_rank (D), /normalized_mean_rank_error (D),
 *   /parameters/names; root attrs: task, fingerprint, split, n_cases, n_samples.
 */
#ifndef EXOSBI_CALIBRATE_H
#define EXOSBI_CALIBRATE_H

#include "exosbi/model.h"

#define SBI_SBC_FORMAT "exosbi-sbc"
#define SBI_MAX_LEVELS 16

typedef struct sbi_sbc_options {
    int split;          /* SBI_SPLIT_TEST by default */
    int n_samples;      /* posterior draws per case */
    int64_t max_cases;  /* 0: every case of the split */
    int n_levels;
    double levels[SBI_MAX_LEVELS];
    int n_bins;         /* rank histogram bins */
    uint64_t seed;
} sbi_sbc_options;

typedef struct sbi_sbc_summary {
    int64_t n_cases;
    int D, n_levels;
    double levels[SBI_MAX_LEVELS];
    double coverage[SBI_MAX_LEVELS];
    double *normalized_mean_rank_error; /* (D), owned: free with sbi_sbc_summary_free */
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

#endif
