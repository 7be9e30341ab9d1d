/* Amortized retrieval of one observation, with its out-of-distribution diagnostic. */
#include "exosbi/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/corpus.h"
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

static int match_dataset(const sbi_task *task, const sbi_dataset *ds, const sbi_observation *obs, double *x,
                         double *sigma)
{
    SBI_CHECK(obs->n == ds->size, SBI_ERR_INCOMPATIBLE,
              "%s: %lld values, but dataset '%s' of task %s has %d: the observation is on a different grid",
              obs->path, (long long)obs->n, ds->name, task->path[0] ? task->path : task->name, ds->size);
    if (ds->coordinates && obs->coordinate) {
        for (int i = 0; i < ds->size; ++i) {
            double a = obs->coordinate[i], b = ds->coordinates[i];
            SBI_CHECK(fabs(a - b) <= 1e-6 * fmax(fabs(a), fabs(b)) + 1e-300, SBI_ERR_INCOMPATIBLE,
                      "%s: row %d: coordinate %.9g differs from dataset '%s' coordinate %.9g: the observation is "
                      "on a different grid",
                      obs->path, i + 1, a, ds->name, b);
        }
    }
    for (int i = 0; i < ds->size; ++i) {
        x[i] = obs->value[i];
        sigma[i] = obs->uncertainty ? obs->uncertainty[i] : ds->uncertainty[i];
    }
    return 0;
}

int sbi_infer_read_observation(const sbi_task *task, const sbi_infer_options *opt, double *x, double *sigma)
{
    int *seen;
    SBI_CALLOC(seen, task->n_datasets);
    SBI_CHECK(opt->n_obs >= 1, SBI_ERR_INPUT, "infer: no observation given");
    for (int k = 0; k < opt->n_obs; ++k) {
        int d;
        sbi_observation obs;
        int st;
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
        SBI_CALL(sbi_observation_read_text(opt->obs_paths[k], &obs));
        st = match_dataset(task, &task->datasets[d], &obs, x + task->datasets[d].offset,
                           sigma + task->datasets[d].offset);
        sbi_observation_free(&obs);
        SBI_CALL(st);
    }
    for (int d = 0; d < task->n_datasets; ++d)
        SBI_CHECK(seen[d], SBI_ERR_INPUT, "no observation for dataset '%s' (use --obs %s=PATH)",
                  task->datasets[d].name, task->datasets[d].name);
    free(seen);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(const double *s, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    if (i >= n - 1) return s[n - 1];
    return s[i] + (pos - (double)i) * (s[i + 1] - s[i]);
}

double sbi_ood_distance(const sbi_model *m, const double *x)
{
    double ss = 0.0;
    for (int j = 0; j < m->X; ++j) {
        double z = (x[j] - m->x_shift[j]) / m->x_scale[j];
        ss += z * z;
    }
    return sqrt(ss / (double)m->X);
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
    qsort(dist, (size_t)n, sizeof *dist, cmp_double);
    *threshold = quantile_sorted(dist, n, 1.0 - rate);
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
        qsort(col, (size_t)n, sizeof *col, cmp_double);
        r->mean[j] = mu;
        r->std[j] = n > 1 ? sqrt(var / (double)(n - 1)) : 0.0;
        r->median[j] = quantile_sorted(col, n, 0.5);
        r->lower68[j] = quantile_sorted(col, n, 0.15865525393145707);
        r->upper68[j] = quantile_sorted(col, n, 0.8413447460685429);
    }
    free(col);
    return 0;
}

static int write_posterior(const char *path, const sbi_task *task, const char *model_path,
                           const sbi_infer_options *opt, int64_t n, const double *samples, const double *logq,
                           const double *x, const double *sigma, const sbi_infer_result *r, const char *ood_corpus,
                           int ood_split, double ood_rate)
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
    double *x = NULL, *sigma = NULL, *samples = NULL, *logq = NULL, *mine = NULL, *mine_lq = NULL;
    int st, D = task->n_params, ood_split = SBI_SPLIT_VALIDATION, found;
    int64_t n = opt->n_samples, n_chunks = (n + CHUNK - 1) / CHUNK, my_rows = 0;
    double t0 = sbi_wtime(), ts, ood_rate = opt->ood_rate > 0 ? opt->ood_rate : SBI_OOD_DEFAULT_RATE;
    char ood_corpus[SBI_PATH_MAX];

    memset(res, 0, sizeof *res);
    SBI_CHECK(n >= 1, SBI_ERR_INPUT, "infer: --samples must be at least 1");
    st = sbi_model_load(model_path, &m);
    if (!st) {
        char what[SBI_PATH_MAX + 64];
        snprintf(what, sizeof what, "model %s was trained for a different task", model_path);
        st = sbi_task_compare(task, m->task, what);
    }
    SBI_AGREE(c, st);
    SBI_MALLOC(x, task->n_outputs);
    SBI_MALLOC(sigma, task->n_outputs);
    st = sbi_infer_read_observation(task, opt, x, sigma);
    SBI_AGREE(c, st);
    /* The posterior assumes the noise the corpus was simulated with; say so when the data claim otherwise. */
    {
        int64_t differ = 0;
        for (int d = 0; d < task->n_datasets; ++d)
            for (int i = 0; i < task->datasets[d].size; ++i) {
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
    SBI_CALL(ood_corpus_path(c, model_path, opt->ood_corpus, ood_corpus, sizeof ood_corpus, &found));
    if (found) {
        SBI_CALL(sbi_ood_calibrate(c, m, ood_corpus, ood_rate, &res->ood_threshold, &res->ood_n_calibration,
                                   &ood_split));
    } else {
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
            st = write_posterior(out_path, task, model_path, opt, n, samples, logq, x, sigma, res,
                                 res->ood_n_calibration ? ood_corpus : "", ood_split, ood_rate);
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
    free(x);
    free(sigma);
    free(samples);
    free(logq);
    free(mine);
    free(mine_lq);
    sbi_model_destroy(&m);
    return 0;
}
