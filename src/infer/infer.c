/* Amortized retrieval of one observation, with its out-of-distribution diagnostic. */
#include "exosbi/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate/calibrate_impl.h"
#include "exosbi/calibrate.h"
#include "exosbi/corpus.h"
#include "exosbi/forward.h"
#include "exosbi/h5file.h"
#include "exosbi/observation.h"

#define CHUNK 1024

void sbi_infer_result_free(sbi_infer_result *r)
{
    free(r->median);
    free(r->lower68);
    free(r->upper68);
    free(r->mean);
    free(r->std);
    memset(r, 0, sizeof *r);
}

void sbi_infer_obs_info_free(int n, sbi_infer_obs_info *info)
{
    if (!info) return;
    for (int d = 0; d < n; ++d) {
        free(info[d].covariance);
        free(info[d].file_coordinate);
        free(info[d].file_value);
        free(info[d].file_uncertainty);
        free(info[d].file_missing);
        memset(&info[d], 0, sizeof info[d]);
    }
}

/* Does the observation lie on the dataset's grid? *why receives the reason when not. */
static int on_grid(const sbi_dataset *ds, const sbi_observation *obs, char *why, size_t cap)
{
    if (obs->n != ds->size) {
        snprintf(why, cap, "%lld values, but dataset '%s' has %d", (long long)obs->n, ds->name, ds->size);
        return 0;
    }
    if (ds->coordinates && obs->coordinate)
        for (int i = 0; i < ds->size; ++i) {
            double a = obs->coordinate[i], b = ds->coordinates[i];
            if (obs->missing && obs->missing[i] && !isfinite(a)) continue;
            if (!(fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-300)) {
                snprintf(why, cap, "row %d: coordinate %.9g differs from dataset '%s' coordinate %.9g", i + 1, a,
                         ds->name, b);
                return 0;
            }
        }
    return 1;
}

/* Refuse missing points: the model was trained on complete observations. */
static int refuse_missing(const sbi_dataset *ds, const char *source, const unsigned char *missing, int rebinned)
{
    char list[512] = "";
    int64_t n_missing = 0;
    for (int i = 0; i < ds->size; ++i) {
        size_t len = strlen(list);
        if (!missing[i]) continue;
        if (n_missing < 8) {
            if (ds->coordinates)
                snprintf(list + len, sizeof list - len, "%s%d (%.6g)", n_missing ? ", " : "", i + 1,
                         ds->coordinates[i]);
            else
                snprintf(list + len, sizeof list - len, "%s%d", n_missing ? ", " : "", i + 1);
        } else if (n_missing == 8) {
            snprintf(list + len, sizeof list - len, ", ...");
        }
        ++n_missing;
    }
    SBI_CHECK(n_missing == 0, SBI_ERR_INCOMPATIBLE,
              "%s: %lld of %d points of dataset '%s' are missing (%s): point%s %s; the trained model needs every "
              "point%s",
              source, (long long)n_missing, ds->size, ds->name,
              rebinned ? "target bins less than half covered by valid data after rebinning"
                       : "not finite in the file",
              n_missing > 1 ? "s" : "", list,
              rebinned ? "" : " (--rebin onto the dataset's grid averages over them when the file is finer)");
    return 0;
}

/* Check a covariance on the dataset's grid and warn about what the posterior ignores. */
static int check_covariance(const sbi_comm *c, const sbi_dataset *ds, const char *what, const double *cov)
{
    const int n = ds->size;
    int64_t differ = 0, bad;
    double worst = 1.0, max_corr = 0.0;
    for (int i = 0; i < n; ++i) {
        double v = cov[(size_t)i * n + i], t = ds->uncertainty[i] * ds->uncertainty[i];
        SBI_CHECK(isfinite(v) && v > 0, SBI_ERR_INPUT, "%s: variance %d is %g; a covariance needs positive variances",
                  what, i + 1, v);
        if (fabs(v - t) > 0.02 * t) {
            double r = t > 0 ? (v > t ? v / t : t / v) : INFINITY;
            ++differ;
            if (r > worst) worst = r;
        }
        for (int j = 0; j < i; ++j) {
            double r = fabs(cov[(size_t)i * n + j]) / sqrt(v * cov[(size_t)j * n + j]);
            if (r > max_corr) max_corr = r;
        }
    }
    bad = sbi_matrix_not_positive_definite(n, cov);
    SBI_CHECK(!bad, SBI_ERR_INPUT, "%s: the covariance is not positive definite (Cholesky fails at order %lld)", what,
              (long long)bad);
    if (c && differ)
        sbi_warn(c, "%s: the covariance diagonal differs from the task's sigma^2 at %lld of %d points of dataset '%s' "
                    "(by up to a factor %.3g); the posterior assumes the task's independent noise",
                 what, (long long)differ, n, ds->name, worst);
    if (c && max_corr > 0.01)
        sbi_warn(c, "%s: the covariance of dataset '%s' has correlations up to %.3g; the posterior assumes "
                    "independent noise and ignores them",
                 what, ds->name, max_corr);
    return 0;
}

/* Read one dataset's file (and covariance) into x, sigma (the dataset's slice) and info. */
static int read_dataset(const sbi_comm *c, const sbi_task *task, const sbi_dataset *ds, const char *path,
                        const char *cov_path, int rebin, double *x, double *sigma, sbi_infer_obs_info *info)
{
    sbi_observation obs;
    unsigned char *missing = NULL;
    char why[512];
    int st = 0;
    const char *tname = task->path[0] ? task->path : task->name;

    SBI_CALL(sbi_observation_read(path, &obs));
    snprintf(info->source, sizeof info->source, "%s", obs.source);
    info->is_fits = obs.is_fits;
    info->n_file = obs.n;
    info->n_file_missing = obs.n_missing;
    snprintf(info->coordinate_unit, sizeof info->coordinate_unit, "%s", obs.coordinate_unit);
    snprintf(info->value_unit, sizeof info->value_unit, "%s", obs.value_unit);
    snprintf(info->uncertainty_unit, sizeof info->uncertainty_unit, "%s", obs.uncertainty_unit);
    if (cov_path) {
        int64_t n = 0;
        double *m = NULL;
        st = sbi_observation_read_matrix(cov_path, &n, &m);
        if (!st && n != obs.n)
            st = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                            "%s: a %lld x %lld matrix, but %s has %lld points", cov_path, (long long)n, (long long)n,
                            obs.source, (long long)obs.n);
        if (st) {
            free(m);
            sbi_observation_free(&obs);
            return st;
        }
        if (obs.covariance && c)
            sbi_warn(c, "%s: --obs-cov %s replaces the file's COVARIANCE column", obs.source, cov_path);
        free(obs.covariance);
        obs.covariance = m;
    }
    SBI_MALLOC(missing, ds->size);
    if (on_grid(ds, &obs, why, sizeof why)) {
        for (int i = 0; i < ds->size; ++i) {
            missing[i] = obs.missing ? obs.missing[i] : 0;
            x[i] = obs.value[i];
            sigma[i] = obs.uncertainty ? obs.uncertainty[i] : ds->uncertainty[i];
        }
        if (obs.covariance) {
            SBI_MALLOC(info->covariance, (size_t)ds->size * ds->size);
            memcpy(info->covariance, obs.covariance, (size_t)ds->size * ds->size * sizeof(double));
        }
    } else if (!rebin) {
        st = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                        "%s: %s of task %s: the observation is on a different grid (--rebin rebins it onto the "
                        "dataset's grid)",
                        obs.source, why, tname);
    } else if (!ds->coordinates) {
        st = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                        "%s: %s, and dataset '%s' of task %s has no coordinates to rebin onto", obs.source, why,
                        ds->name, tname);
    } else {
        sbi_rebin rb;
        st = sbi_rebin_make(&obs, ds->size, ds->coordinates, &rb);
        if (!st) {
            double *unc = obs.uncertainty ? sigma : NULL;
            if (obs.covariance) {
                info->covariance = malloc((size_t)ds->size * ds->size * sizeof(double));
                if (!info->covariance)
                    st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
            }
            if (!st) {
                sbi_rebin_apply(&rb, &obs, x, unc, missing, info->covariance);
                if (!unc)
                    for (int i = 0; i < ds->size; ++i) sigma[i] = ds->uncertainty[i];
                info->rebinned = 1;
                if (c)
                    sbi_log(c, "%s: %lld points rebinned onto the %d bins of dataset '%s'%s", obs.source,
                            (long long)obs.n, ds->size, ds->name,
                            obs.n_missing ? " (missing points left out)" : "");
            }
            sbi_rebin_free(&rb);
        }
        if (!st) {
            /* Keep the file's points for the record. */
            info->file_coordinate = malloc((size_t)obs.n * sizeof(double));
            info->file_value = malloc((size_t)obs.n * sizeof(double));
            info->file_uncertainty = malloc((size_t)obs.n * sizeof(double));
            info->file_missing = malloc((size_t)obs.n * sizeof(int64_t));
            if (!info->file_coordinate || !info->file_value || !info->file_uncertainty || !info->file_missing) {
                st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
            } else {
                for (int64_t i = 0; i < obs.n; ++i) {
                    info->file_coordinate[i] = obs.coordinate[i];
                    info->file_value[i] = obs.value[i];
                    info->file_uncertainty[i] = obs.uncertainty ? obs.uncertainty[i] : NAN;
                    info->file_missing[i] = obs.missing ? obs.missing[i] : 0;
                }
            }
        }
    }
    if (!st) st = refuse_missing(ds, obs.source, missing, info->rebinned);
    if (!st && info->covariance) {
        char what[4400];
        snprintf(what, sizeof what, "%s", cov_path ? cov_path : obs.source);
        st = check_covariance(c, ds, what, info->covariance);
        if (!st)
            for (int i = 0; i < ds->size; ++i) sigma[i] = sqrt(info->covariance[(size_t)i * ds->size + i]);
    }
    if (!st && c && obs.is_fits)
        sbi_log(c, "%s: %lld points, wavelength [%s]%s%s%s, value [%s], uncertainty [%s], %lld missing", obs.source,
                (long long)obs.n, obs.coordinate_unit, strcmp(obs.coordinate_unit, obs.coordinate_unit_original)
                                                              ? " (file: "
                                                              : "",
                strcmp(obs.coordinate_unit, obs.coordinate_unit_original) ? obs.coordinate_unit_original : "",
                strcmp(obs.coordinate_unit, obs.coordinate_unit_original) ? ")" : "", obs.value_unit,
                obs.uncertainty_unit, (long long)obs.n_missing);
    free(missing);
    sbi_observation_free(&obs);
    return st;
}

int sbi_infer_read_observation_info(const sbi_comm *c, const sbi_task *task, const sbi_infer_options *opt, double *x,
                                    double *sigma, sbi_infer_obs_info *info)
{
    int *seen, st = 0;
    const char **cov;
    SBI_CHECK(opt->n_obs >= 1, SBI_ERR_INPUT, "infer: no observation given");
    SBI_CALLOC(seen, task->n_datasets);
    SBI_CALLOC(cov, task->n_datasets);
    memset(info, 0, (size_t)task->n_datasets * sizeof *info);
    for (int k = 0; k < opt->n_cov; ++k) {
        int d = 0;
        if (opt->cov_names && opt->cov_names[k]) {
            d = sbi_task_dataset_index(task, opt->cov_names[k]);
            SBI_CHECK(d >= 0, SBI_ERR_INPUT, "--obs-cov %s=%s: the task has no dataset '%s'", opt->cov_names[k],
                      opt->cov_paths[k], opt->cov_names[k]);
        } else {
            SBI_CHECK(task->n_datasets == 1, SBI_ERR_INPUT,
                      "the task has %d datasets: give each covariance with --obs-cov NAME=PATH", task->n_datasets);
        }
        SBI_CHECK(!cov[d], SBI_ERR_INPUT, "two covariances for dataset '%s'", task->datasets[d].name);
        cov[d] = opt->cov_paths[k];
    }
    for (int k = 0; k < opt->n_obs && !st; ++k) {
        int d;
        if (opt->obs_names[k]) {
            d = sbi_task_dataset_index(task, opt->obs_names[k]);
            SBI_CHECK(d >= 0, SBI_ERR_INPUT, "--obs %s=%s: the task has no dataset '%s'", opt->obs_names[k],
                      opt->obs_paths[k], opt->obs_names[k]);
        } else {
            SBI_CHECK(task->n_datasets == 1, SBI_ERR_INPUT,
                      "the task has %d datasets: give one file per dataset with --obs NAME=PATH", task->n_datasets);
            d = 0;
        }
        SBI_CHECK(!seen[d], SBI_ERR_INPUT, "dataset '%s' is given twice", task->datasets[d].name);
        seen[d] = 1;
        st = read_dataset(c, task, &task->datasets[d], opt->obs_paths[k], cov[d], opt->rebin,
                          x + task->datasets[d].offset, sigma + task->datasets[d].offset, &info[d]);
    }
    for (int d = 0; d < task->n_datasets && !st; ++d) {
        if (!seen[d])
            st = sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                            "no observation for dataset '%s' (use --obs %s=PATH)", task->datasets[d].name,
                            task->datasets[d].name);
    }
    free(seen);
    free(cov);
    if (st) sbi_infer_obs_info_free(task->n_datasets, info);
    return st;
}

int sbi_infer_read_observation(const sbi_task *task, const sbi_infer_options *opt, double *x, double *sigma)
{
    sbi_infer_obs_info *info;
    int st;
    SBI_CALLOC(info, task->n_datasets);
    st = sbi_infer_read_observation_info(NULL, task, opt, x, sigma, info);
    sbi_infer_obs_info_free(task->n_datasets, info);
    free(info);
    return st;
}

double sbi_ood_distance_raw(int64_t X, const double *shift, const double *scale, const double *x)
{
    double ss = 0.0;
    for (int64_t j = 0; j < X; ++j) {
        double z = (x[j] - shift[j]) / scale[j];
        ss += z * z;
    }
    return sqrt(ss / (double)X);
}

double sbi_ood_distance(const sbi_model *m, const double *x)
{
    return sbi_ood_distance_raw(m->X, m->x_shift, m->x_scale, x);
}

int sbi_ood_calibrate(const sbi_comm *c, const sbi_model *m, const char *corpus_path, double rate, double *threshold,
                      int64_t *n_used, int *split)
{
    sbi_corpus corpus = NULL;
    const sbi_corpus_desc *d;
    int st, sp;
    int64_t n;
    sbi_shard sh;
    float *xf = NULL;
    double *xd = NULL, *dist = NULL;

    *threshold = NAN;
    *n_used = 0;
    *split = SBI_SPLIT_VALIDATION;
    SBI_CHECK(rate > 0 && rate < 1, SBI_ERR_INPUT, "infer: the OOD false-alarm rate %g is not in (0, 1)", rate);
    st = sbi_corpus_open(c, corpus_path, &corpus);
    if (st) {
        sbi_warn(c, "OOD: the calibration corpus %s cannot be read (%s); the threshold is not calibrated",
                 corpus_path, sbi_error_message());
        sbi_error_clear();
        return 0;
    }
    d = sbi_corpus_get_desc(corpus);
    if (strcmp(d->fingerprint, m->task->fingerprint) || d->n_outputs != m->X) {
        sbi_warn(c, "OOD: %s was made for another task; the threshold is not calibrated", corpus_path);
        SBI_CALL(sbi_corpus_close(&corpus));
        return 0;
    }
    sp = d->split_rows[SBI_SPLIT_VALIDATION] > 0 ? SBI_SPLIT_VALIDATION : SBI_SPLIT_TEST;
    n = d->split_rows[sp] < SBI_OOD_MAX_CALIBRATION ? d->split_rows[sp] : SBI_OOD_MAX_CALIBRATION;
    if (n < 1) {
        sbi_warn(c, "OOD: %s has no held-out rows; the threshold is not calibrated", corpus_path);
        SBI_CALL(sbi_corpus_close(&corpus));
        return 0;
    }
    /* Each rank scores its block of rows; the zero-padded sum puts every distance in place on every rank. */
    sh = sbi_shard_block(n, c->rank, c->size);
    SBI_CALLOC(dist, n);
    SBI_MALLOC(xf, (size_t)(sh.count ? sh.count : 1) * m->X);
    SBI_MALLOC(xd, m->X);
    st = sh.count ? sbi_corpus_read_rows(corpus, sp, sh.offset, sh.count, 0, NULL, xf, NULL) : 0;
    SBI_AGREE(c, st);
    for (int64_t i = 0; i < sh.count; ++i) {
        for (int j = 0; j < m->X; ++j) xd[j] = (double)xf[i * m->X + j];
        dist[sh.offset + i] = sbi_ood_distance(m, xd);
    }
    SBI_CALL(sbi_comm_sum_double(c, dist, (int)n));
    qsort(dist, (size_t)n, sizeof *dist, sbi_cmp_double);
    *threshold = sbi_quantile_sorted(dist, n, 1.0 - rate);
    *n_used = n;
    *split = sp;
    free(dist);
    free(xf);
    free(xd);
    SBI_CALL(sbi_corpus_close(&corpus));
    return 0;
}

/* The calibration corpus: --ood-corpus, else the model's `corpus` attribute as
 * given to train, relative to the model's directory, or its file name there.
 * Returns 1 in *found when every rank can see it. */
static int ood_corpus_path(const sbi_comm *c, const char *model_path, const char *given, char *out, size_t cap,
                           int *found)
{
    char *stored = NULL;
    int64_t ok = 0;
    *found = 0;
    out[0] = '\0';
    if (given) {
        snprintf(out, cap, "%s", given);
    } else {
        sbi_h5r r = NULL;
        char cand[SBI_PATH_MAX];
        const char *base;
        SBI_CALL(sbi_h5r_open(model_path, SBI_MODEL_FORMAT, &r));
        if (sbi_h5r_attr_string(r, NULL, "corpus", &stored) != 0) {
            sbi_error_clear();
            stored = NULL;
        }
        sbi_h5r_close(&r);
        if (stored) {
            base = strrchr(stored, '/') ? strrchr(stored, '/') + 1 : stored;
            if (sbi_file_exists(stored)) {
                snprintf(out, cap, "%s", stored);
            } else {
                sbi_path_resolve(model_path, stored, cand, sizeof cand);
                if (!sbi_file_exists(cand)) sbi_path_resolve(model_path, base, cand, sizeof cand);
                snprintf(out, cap, "%s", cand);
            }
            free(stored);
        }
    }
    ok = out[0] && sbi_file_exists(out);
    SBI_CALL(sbi_comm_sum_int64(c, &ok, 1));
    *found = ok == c->size;
    return 0;
}

static int summarize(int64_t n, int D, const double *samples, sbi_infer_result *r)
{
    double *col;
    SBI_MALLOC(col, n);
    for (int j = 0; j < D; ++j) {
        double mu = 0.0, var = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            col[i] = samples[i * D + j];
            mu += col[i];
        }
        mu /= (double)n;
        for (int64_t i = 0; i < n; ++i) var += (col[i] - mu) * (col[i] - mu);
        qsort(col, (size_t)n, sizeof *col, sbi_cmp_double);
        r->mean[j] = mu;
        r->std[j] = n > 1 ? sqrt(var / (double)(n - 1)) : 0.0;
        r->median[j] = sbi_quantile_sorted(col, n, 0.5);
        r->lower68[j] = sbi_quantile_sorted(col, n, 0.15865525393145707);
        r->upper68[j] = sbi_quantile_sorted(col, n, 0.8413447460685429);
    }
    free(col);
    return 0;
}

/* The posterior-predictive band of the observation (rank 0 holds the arrays). */
typedef struct infer_band {
    int M, n_valid;
    double level;
    double *mean, *std, *lower, *upper, *crps; /* (X) */
} infer_band;

static void infer_band_free(infer_band *b)
{
    free(b->mean);
    free(b->std);
    free(b->lower);
    free(b->upper);
    free(b->crps);
    memset(b, 0, sizeof *b);
}

/* Collective: the first M posterior samples (on rank 0) through the forward
 * model, each draw depending on its index alone (see include/exosbi/infer.h). */
static int predictive_band(const sbi_comm *c, const sbi_task *task, const sbi_infer_options *opt, int M,
                           const double *samples, const double *x, infer_band *b)
{
    const int D = task->n_params;
    const int64_t X = task->n_outputs;
    sbi_forward fw = NULL;
    sbi_shard sh = sbi_shard_block(M, c->rank, c->size);
    double *theta = NULL, *pred = NULL, *all = NULL, *sig = NULL, *col = NULL;
    uint64_t *idx = NULL;
    int st;

    memset(b, 0, sizeof *b);
    b->M = M;
    b->level = opt->predictive_level > 0 ? opt->predictive_level : SBI_INFER_DEFAULT_LEVEL;
    st = sbi_forward_create_on(task, c, &fw);
    SBI_AGREE(c, st);
    SBI_MALLOC(theta, (size_t)M * D);
    if (c->rank == 0) memcpy(theta, samples, (size_t)M * D * sizeof *theta);
    SBI_CALL(sbi_comm_bcast(c, theta, (size_t)M * D * sizeof *theta, 0));
    SBI_MALLOC(pred, (size_t)(sh.count ? sh.count : 1) * X);
    SBI_MALLOC(idx, sh.count ? sh.count : 1);
    SBI_MALLOC(sig, X);
    for (int d = 0; d < task->n_datasets; ++d)
        memcpy(sig + task->datasets[d].offset, task->datasets[d].uncertainty,
               (size_t)task->datasets[d].size * sizeof *sig);
    for (int64_t r = 0; r < sh.count; ++r) idx[r] = (uint64_t)(sh.offset + r);
    st = sh.count ? sbi_forward_simulate(fw, sh.count, theta + sh.offset * D, idx, opt->seed + 1, pred) : 0;
    SBI_AGREE(c, st);
    if (task->noise == SBI_NOISE_OBSERVATIONAL)
        for (int64_t r = 0; r < sh.count; ++r) {
            sbi_rng rng;
            double *p = pred + r * X;
            sbi_rng_init(&rng, opt->seed, idx[r], SBI_STREAM_NOISE, 1);
            for (int64_t k = 0; k < X; ++k) p[k] += sig[k] * sbi_rng_normal(&rng);
        }
    if (c->rank == 0) SBI_MALLOC(all, (size_t)M * X);
    SBI_CALL(sbi__gather_rows(c, pred, sh.count, (int)X, MPI_DOUBLE, sizeof(double), all));
    if (c->rank == 0) {
        /* Keep the draws that simulated, in order. */
        for (int r = 0; r < M; ++r) {
            const double *p = all + (size_t)r * X;
            int ok = 1;
            for (int64_t k = 0; k < X && ok; ++k) ok = isfinite(p[k]);
            if (!ok) continue;
            if (b->n_valid != r) memmove(all + (size_t)b->n_valid * X, p, (size_t)X * sizeof *p);
            b->n_valid++;
        }
        SBI_MALLOC(b->mean, X);
        SBI_MALLOC(b->std, X);
        SBI_MALLOC(b->lower, X);
        SBI_MALLOC(b->upper, X);
        SBI_MALLOC(b->crps, X);
        SBI_MALLOC(col, M);
        sbi_ppc_band(b->n_valid, (int)X, all, x, b->level, b->mean, b->std, b->lower, b->upper, b->crps, col);
    }
    free(theta);
    free(pred);
    free(idx);
    free(sig);
    free(all);
    free(col);
    sbi_forward_destroy(&fw);
    return 0;
}

/* The details of one dataset's observation under /observation/<name>. */
static int write_obs_info(sbi_h5w w, const sbi_dataset *ds, const sbi_infer_obs_info *in)
{
    char g[256], p[320];
    snprintf(g, sizeof g, "observation/%s", ds->name);
    if (in->covariance) {
        int64_t d2[2] = {ds->size, ds->size};
        snprintf(p, sizeof p, "%s/covariance", g);
        SBI_CALL(sbi_h5w_double(w, p, 2, d2, in->covariance));
    }
    if (in->rebinned) {
        int64_t d1[1] = {in->n_file};
        snprintf(p, sizeof p, "%s/file_coordinate", g);
        SBI_CALL(sbi_h5w_double(w, p, 1, d1, in->file_coordinate));
        snprintf(p, sizeof p, "%s/file_value", g);
        SBI_CALL(sbi_h5w_double(w, p, 1, d1, in->file_value));
        snprintf(p, sizeof p, "%s/file_uncertainty", g);
        SBI_CALL(sbi_h5w_double(w, p, 1, d1, in->file_uncertainty));
        snprintf(p, sizeof p, "%s/file_missing", g);
        SBI_CALL(sbi_h5w_int64(w, p, 1, d1, in->file_missing));
    }
    SBI_CALL(sbi_h5w_attr_string(w, g, "source", in->source));
    SBI_CALL(sbi_h5w_attr_string(w, g, "format", in->is_fits ? "fits" : "text"));
    SBI_CALL(sbi_h5w_attr_string(w, g, "coordinate_unit", in->coordinate_unit));
    SBI_CALL(sbi_h5w_attr_string(w, g, "value_unit", in->value_unit));
    SBI_CALL(sbi_h5w_attr_string(w, g, "uncertainty_unit", in->uncertainty_unit));
    SBI_CALL(sbi_h5w_attr_int64(w, g, "rebinned", in->rebinned));
    SBI_CALL(sbi_h5w_attr_int64(w, g, "n_file_points", in->n_file));
    SBI_CALL(sbi_h5w_attr_int64(w, g, "n_file_missing", in->n_file_missing));
    return 0;
}

static int write_posterior(const char *path, const sbi_task *task, const char *model_path,
                           const sbi_infer_options *opt, int64_t n, const double *samples, const double *logq,
                           const double *x, const double *sigma, const sbi_infer_obs_info *info,
                           const infer_band *band, const sbi_infer_result *r, const char *ood_corpus, int ood_split,
                           double ood_rate)
{
    const int D = task->n_params;
    sbi_h5w w = NULL;
    int64_t dims[2] = {n, D}, dD[1] = {D};
    const char **names, **units;
    char obs_list[8192] = "";

    SBI_CALL(sbi_h5w_create(path, SBI_POSTERIOR_FORMAT, 1, &w));
    {
        char *tj = cJSON_PrintUnformatted(task->json);
        SBI_CALL(sbi_h5w_attr_string(w, NULL, "task", tj));
        free(tj);
    }
    for (int k = 0; k < opt->n_obs; ++k) {
        size_t len = strlen(obs_list);
        snprintf(obs_list + len, sizeof obs_list - len, "%s%s%s%s", k ? ";" : "",
                 opt->obs_names[k] ? opt->obs_names[k] : "", opt->obs_names[k] ? "=" : "", opt->obs_paths[k]);
    }
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "model", model_path));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "observations", obs_list));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_samples", n));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "seed", (int64_t)opt->seed));
    SBI_CALL(sbi_h5w_double(w, "samples", 2, dims, samples));
    {
        char pn[8192] = "";
        for (int j = 0; j < D; ++j) {
            size_t len = strlen(pn);
            snprintf(pn + len, sizeof pn - len, "%s%s", j ? "," : "", task->params[j].name);
        }
        SBI_CALL(sbi_h5w_attr_string(w, "samples", "parameter_names", pn));
    }
    SBI_CALL(sbi_h5w_double(w, "log_prob", 1, dims, logq));
    SBI_MALLOC(names, D);
    SBI_MALLOC(units, D);
    for (int j = 0; j < D; ++j) {
        names[j] = task->params[j].name;
        units[j] = task->params[j].unit;
    }
    SBI_CALL(sbi_h5w_strings(w, "parameters/names", D, names));
    SBI_CALL(sbi_h5w_strings(w, "parameters/units", D, units));
    for (int j = 0; j < D; ++j) names[j] = task->params[j].label;
    SBI_CALL(sbi_h5w_strings(w, "parameters/labels", D, names));
    free(names);
    free(units);
    SBI_CALL(sbi_h5w_double(w, "summary/mean", 1, dD, r->mean));
    SBI_CALL(sbi_h5w_double(w, "summary/std", 1, dD, r->std));
    SBI_CALL(sbi_h5w_double(w, "summary/median", 1, dD, r->median));
    SBI_CALL(sbi_h5w_double(w, "summary/lower68", 1, dD, r->lower68));
    SBI_CALL(sbi_h5w_double(w, "summary/upper68", 1, dD, r->upper68));
    for (int d = 0; d < task->n_datasets; ++d) {
        const sbi_dataset *ds = &task->datasets[d];
        char p[256];
        int64_t dn[1] = {ds->size};
        snprintf(p, sizeof p, "observation/%s/value", ds->name);
        SBI_CALL(sbi_h5w_double(w, p, 1, dn, x + ds->offset));
        snprintf(p, sizeof p, "observation/%s/uncertainty", ds->name);
        SBI_CALL(sbi_h5w_double(w, p, 1, dn, sigma + ds->offset));
        if (ds->coordinates) {
            snprintf(p, sizeof p, "observation/%s/coordinates", ds->name);
            SBI_CALL(sbi_h5w_double(w, p, 1, dn, ds->coordinates));
        }
        SBI_CALL(write_obs_info(w, ds, &info[d]));
        if (band) {
            static const char *const what[5] = {"mean", "std", "lower", "upper", "crps"};
            const double *arr[5] = {band->mean, band->std, band->lower, band->upper, band->crps};
            double inside = 0.0;
            for (int a = 0; a < 5; ++a) {
                snprintf(p, sizeof p, "predictive/%s/%s", ds->name, what[a]);
                SBI_CALL(sbi_h5w_double(w, p, 1, dn, arr[a] + ds->offset));
            }
            for (int i = 0; i < ds->size; ++i) {
                int64_t k = ds->offset + i;
                inside += x[k] >= band->lower[k] && x[k] <= band->upper[k];
            }
            snprintf(p, sizeof p, "predictive/%s", ds->name);
            SBI_CALL(sbi_h5w_attr_double(w, p, "coverage", band->n_valid ? inside / ds->size : NAN));
        }
    }
    if (band) {
        SBI_CALL(sbi_h5w_attr_double(w, "predictive", "level", band->level));
        SBI_CALL(sbi_h5w_attr_int64(w, "predictive", "n_forward_samples", band->M));
        SBI_CALL(sbi_h5w_attr_int64(w, "predictive", "n_valid", band->n_valid));
        SBI_CALL(sbi_h5w_attr_int64(w, "predictive", "seed", (int64_t)opt->seed));
    }
    {
        int64_t one[1] = {1}, flag = r->ood_flag;
        SBI_CALL(sbi_h5w_double(w, "ood/distance", 1, one, &r->ood_distance));
        SBI_CALL(sbi_h5w_double(w, "ood/threshold", 1, one, &r->ood_threshold));
        SBI_CALL(sbi_h5w_int64(w, "ood/flag", 1, one, &flag));
        SBI_CALL(sbi_h5w_attr_string(w, "ood", "statistic",
                                     "root mean square of robust z-scores (x - median) / (IQR / 1.349)"));
        SBI_CALL(sbi_h5w_attr_double(w, "ood", "false_alarm_rate", ood_rate));
        SBI_CALL(sbi_h5w_attr_string(w, "ood", "calibration_corpus", ood_corpus));
        SBI_CALL(sbi_h5w_attr_string(w, "ood", "calibration_split",
                                     r->ood_n_calibration ? sbi_split_names[ood_split] : ""));
        SBI_CALL(sbi_h5w_attr_int64(w, "ood", "n_calibration", r->ood_n_calibration));
    }
    SBI_CALL(sbi_h5w_commit(&w));
    return 0;
}

int sbi_infer_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const sbi_infer_options *opt,
                  const char *out_path, sbi_infer_result *res)
{
    sbi_model *m = NULL;
    sbi_infer_obs_info *info = NULL;
    infer_band band;
    double *x = NULL, *sigma = NULL, *samples = NULL, *logq = NULL, *mine = NULL, *mine_lq = NULL;
    int st, D = task->n_params, ood_split = SBI_SPLIT_VALIDATION, found, M = 0;
    int64_t n = opt->n_samples, n_chunks = (n + CHUNK - 1) / CHUNK, my_rows = 0;
    double t0 = sbi_wtime(), ts, ood_rate = opt->ood_rate > 0 ? opt->ood_rate : SBI_OOD_DEFAULT_RATE;
    char ood_corpus[SBI_PATH_MAX];

    memset(res, 0, sizeof *res);
    memset(&band, 0, sizeof band);
    SBI_CHECK(n >= 1, SBI_ERR_INPUT, "infer: --samples must be at least 1");
    if (opt->predictive) {
        M = opt->n_forward > 0 ? opt->n_forward : (n < SBI_INFER_DEFAULT_FORWARD ? (int)n : SBI_INFER_DEFAULT_FORWARD);
        SBI_CHECK(M <= n, SBI_ERR_INPUT, "infer: --forward-samples %d exceeds --samples %lld", M, (long long)n);
        SBI_CHECK(opt->predictive_level == 0 || (opt->predictive_level > 0 && opt->predictive_level < 1),
                  SBI_ERR_INPUT, "infer: --level %g is not in (0, 1)", opt->predictive_level);
    }
    st = sbi_model_load(model_path, &m);
    if (!st) {
        char what[SBI_PATH_MAX + 64];
        snprintf(what, sizeof what, "model %s was trained for a different task", model_path);
        st = sbi_task_compare(task, m->task, what);
    }
    SBI_AGREE(c, st);
    SBI_MALLOC(x, task->n_outputs);
    SBI_MALLOC(sigma, task->n_outputs);
    SBI_CALLOC(info, task->n_datasets);
    st = sbi_infer_read_observation_info(c, task, opt, x, sigma, info);
    SBI_AGREE(c, st);
    /* The posterior assumes the noise the corpus was simulated with; say so when the data claim otherwise
     * (a dataset with a covariance was checked against the task's noise already). */
    {
        int64_t differ = 0;
        for (int d = 0; d < task->n_datasets; ++d)
            for (int i = 0; i < task->datasets[d].size && !info[d].covariance; ++i) {
                double a = sigma[task->datasets[d].offset + i], b = task->datasets[d].uncertainty[i];
                differ += fabs(a - b) > 0.01 * fabs(b) + 1e-300;
            }
        if (differ && task->noise == SBI_NOISE_OBSERVATIONAL)
            sbi_warn(c, "%lld observed uncertainties differ by more than 1%% from the task's; the posterior "
                        "assumes the task's noise model", (long long)differ);
    }
    /* Out-of-distribution diagnostic: every rank computes the same distance and threshold. */
    res->ood_distance = sbi_ood_distance(m, x);
    res->ood_threshold = NAN;
    res->ood_flag = -1;
    if (!opt->ood_corpus && m->n_ood > 0) {
        /* The distances of held-out rows that train stored in the model: no corpus needed. */
        SBI_CHECK(ood_rate > 0 && ood_rate < 1, SBI_ERR_INPUT, "infer: the OOD false-alarm rate %g is not in (0, 1)",
                  ood_rate);
        res->ood_threshold = sbi_quantile_sorted(m->ood_distances, m->n_ood, 1.0 - ood_rate);
        res->ood_n_calibration = m->n_ood;
        ood_split = m->ood_split;
        snprintf(ood_corpus, sizeof ood_corpus, "%s (distances stored in the model)", model_path);
    } else {
        SBI_CALL(ood_corpus_path(c, model_path, opt->ood_corpus, ood_corpus, sizeof ood_corpus, &found));
        if (found)
            SBI_CALL(sbi_ood_calibrate(c, m, ood_corpus, ood_rate, &res->ood_threshold, &res->ood_n_calibration,
                                       &ood_split));
        else
            sbi_warn(c, "OOD: no calibration corpus (%s); the distance %.3g is reported without a threshold "
                        "(give --ood-corpus CORPUS.h5)", ood_corpus[0] ? ood_corpus : "the model names none",
                     res->ood_distance);
    }
    if (res->ood_n_calibration > 0) {
        res->ood_flag = res->ood_distance > res->ood_threshold;
        if (res->ood_flag)
            sbi_warn(c, "\n"
                        "  *** OUT OF DISTRIBUTION ***\n"
                        "  The observation is %.3g robust standard deviations (RMS) from the median of the\n"
                        "  training observations; %.0f%% of held-out simulations lie within %.3g.  The model\n"
                        "  has not seen data like this: do not trust this posterior.",
                     res->ood_distance, 100.0 * (1.0 - ood_rate), res->ood_threshold);
    }
    /* Chunk k of CHUNK draws comes from Philox(seed, k): the same samples on any number of ranks. */
    for (int64_t k = c->rank; k < n_chunks; k += c->size) my_rows += (k + 1) * CHUNK > n ? n - k * CHUNK : CHUNK;
    SBI_MALLOC(mine, (size_t)(my_rows ? my_rows : 1) * D);
    SBI_MALLOC(mine_lq, my_rows ? my_rows : 1);
    ts = sbi_wtime();
    {
        int64_t at = 0;
        st = 0;
        for (int64_t k = c->rank; k < n_chunks && !st; k += c->size) {
            int rows = (int)((k + 1) * CHUNK > n ? n - k * CHUNK : CHUNK);
            sbi_rng rng;
            sbi_rng_init(&rng, opt->seed, (uint64_t)k, SBI_STREAM_SAMPLE, 1);
            st = sbi_model_sample(m, x, rows, &rng, mine + at * D, mine_lq + at);
            at += rows;
        }
    }
    SBI_AGREE(c, st);
    res->sample_s = sbi_wtime() - ts;
    if (c->rank == 0) {
        SBI_MALLOC(samples, (size_t)n * D);
        SBI_MALLOC(logq, n);
    }
    /* Reassemble chunks in order: rank r holds chunks r, r + size, ... */
    if (c->size == 1) {
        memcpy(samples, mine, (size_t)n * D * sizeof(double));
        memcpy(logq, mine_lq, (size_t)n * sizeof(double));
    } else {
        int64_t at = 0;
        for (int64_t k = 0; k < n_chunks; ++k) {
            int owner = (int)(k % c->size);
            int rows = (int)((k + 1) * CHUNK > n ? n - k * CHUNK : CHUNK);
            if (owner == 0 && c->rank == 0) {
                memcpy(samples + k * CHUNK * D, mine + at * D, (size_t)rows * D * sizeof(double));
                memcpy(logq + k * CHUNK, mine_lq + at, (size_t)rows * sizeof(double));
                at += rows;
            } else if (c->rank == 0) {
                SBI_CALL_MPI(MPI_Recv(samples + k * CHUNK * D, rows * D, MPI_DOUBLE, owner, (int)(2 * k), c->comm,
                                      MPI_STATUS_IGNORE));
                SBI_CALL_MPI(MPI_Recv(logq + k * CHUNK, rows, MPI_DOUBLE, owner, (int)(2 * k + 1), c->comm,
                                      MPI_STATUS_IGNORE));
            } else if (c->rank == owner) {
                SBI_CALL_MPI(MPI_Send(mine + at * D, rows * D, MPI_DOUBLE, 0, (int)(2 * k), c->comm));
                SBI_CALL_MPI(MPI_Send(mine_lq + at, rows, MPI_DOUBLE, 0, (int)(2 * k + 1), c->comm));
                at += rows;
            }
        }
    }
    if (opt->predictive) {
        double ts2 = sbi_wtime();
        SBI_CALL(predictive_band(c, task, opt, M, samples, x, &band));
        res->predictive = 1;
        res->n_forward = M;
        if (c->rank == 0) {
            double inside = 0.0;
            for (int64_t k = 0; k < task->n_outputs; ++k) inside += x[k] >= band.lower[k] && x[k] <= band.upper[k];
            res->n_valid = band.n_valid;
            res->predictive_coverage = band.n_valid ? inside / (double)task->n_outputs : NAN;
        }
        {
            double v[2] = {(double)res->n_valid, res->predictive_coverage};
            SBI_CALL(sbi_comm_bcast(c, v, sizeof v, 0));
            res->n_valid = (int64_t)v[0];
            res->predictive_coverage = v[1];
        }
        if (band.n_valid < M && c->rank == 0)
            sbi_warn(c, "predictive: %d of %d posterior draws could not be simulated and are left out",
                     M - band.n_valid, M);
        sbi_log_verbose(c, "predictive band from %d draws in %.3f s", M, sbi_wtime() - ts2);
    }
    res->D = D;
    res->n_samples = n;
    SBI_MALLOC(res->median, D);
    SBI_MALLOC(res->lower68, D);
    SBI_MALLOC(res->upper68, D);
    SBI_MALLOC(res->mean, D);
    SBI_MALLOC(res->std, D);
    st = 0;
    if (c->rank == 0) {
        st = summarize(n, D, samples, res);
        if (!st)
            st = write_posterior(out_path, task, model_path, opt, n, samples, logq, x, sigma, info,
                                 opt->predictive ? &band : NULL, res, res->ood_n_calibration ? ood_corpus : "",
                                 ood_split, ood_rate);
    }
    SBI_AGREE(c, st);
    {
        double buf[5 * 64];
        int k = D <= 64 ? D : 64;
        if (c->rank == 0)
            for (int j = 0; j < k; ++j) {
                buf[j] = res->median[j];
                buf[64 + j] = res->lower68[j];
                buf[128 + j] = res->upper68[j];
                buf[192 + j] = res->mean[j];
                buf[256 + j] = res->std[j];
            }
        SBI_CALL(sbi_comm_bcast(c, buf, sizeof buf, 0));
        for (int j = 0; j < k; ++j) {
            res->median[j] = buf[j];
            res->lower68[j] = buf[64 + j];
            res->upper68[j] = buf[128 + j];
            res->mean[j] = buf[192 + j];
            res->std[j] = buf[256 + j];
        }
    }
    res->wall_s = sbi_wtime() - t0;
    infer_band_free(&band);
    sbi_infer_obs_info_free(task->n_datasets, info);
    free(info);
    free(x);
    free(sigma);
    free(samples);
    free(logq);
    free(mine);
    free(mine_lq);
    sbi_model_destroy(&m);
    return 0;
}
