/* Loading a trained posterior and drawing from it in physical units. */
#include "exosbi/model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/h5file.h"

void sbi_model_x_scaling(int64_t X, const double *median, const double *iqr, const double *std, double *shift,
                         double *scale)
{
    for (int64_t j = 0; j < X; ++j) {
        double s = iqr[j] / 1.349;
        if (!(s > 1e-12 * fabs(median[j])) || !isfinite(s)) s = std ? std[j] : 0.0;
        if (!(s > 0.0) || !isfinite(s)) s = 1.0;
        shift[j] = median[j];
        scale[j] = s;
    }
}

static int read_vector(sbi_h5r r, const char *path, int64_t n, double **out)
{
    int rank;
    int64_t dims[2] = {0, 0};
    SBI_CALL(sbi_h5r_double(r, path, out, &rank, dims));
    SBI_CHECK(rank == 1 && dims[0] == n, SBI_ERR_IO, "%s: %s has %lld values, expected %lld", sbi_h5r_path(r), path,
              (long long)dims[0], (long long)n);
    return 0;
}

int sbi_model_load(const char *path, sbi_model **model)
{
    sbi_h5r r = NULL;
    sbi_model *m;
    char *task_json = NULL, *arch = NULL;
    float *w = NULL;
    int rank;
    int64_t dims[2] = {0, 0};
    sbi_estimator_config cfg;
    cJSON *arch_json;
    int status;

    SBI_CALLOC(m, 1);
    *model = m;
    SBI_CALL(sbi_h5r_open(path, SBI_MODEL_FORMAT, &r));
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "task", &task_json));
    SBI_CALL(sbi_task_from_json(task_json, path, &m->task));
    free(task_json);
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "architecture", &arch));
    arch_json = cJSON_Parse(arch);
    free(arch);
    SBI_CHECK(arch_json, SBI_ERR_IO, "%s: the architecture attribute is not valid JSON", path);
    status = sbi_estimator_config_from_json(arch_json, &cfg);
    cJSON_Delete(arch_json);
    SBI_CALL(status);
    SBI_CHECK(cfg.n_params == m->task->n_params && cfg.n_inputs == m->task->n_outputs, SBI_ERR_IO,
              "%s: the architecture (%d parameters, %d inputs) does not match its task (%d, %lld)", path,
              cfg.n_params, cfg.n_inputs, m->task->n_params, (long long)m->task->n_outputs);
    /* Sampling works in passes of max_batch rows, several observations to a
     * pass when their draws fit (SBC: a few cases of 1,000 draws); a
     * convolutional encoder keeps its trained size. */
    if (cfg.max_batch < 4096 && !strcmp(cfg.embedding, "mlp")) cfg.max_batch = 4096;
    SBI_CALL(sbi_estimator_create(&cfg, &m->est));
    m->D = cfg.n_params;
    m->X = cfg.n_inputs;

    SBI_CALL(sbi_h5r_float(r, "weights", &w, &rank, dims));
    SBI_CHECK(rank == 1 && (size_t)dims[0] == sbi_estimator_n_weights(m->est), SBI_ERR_IO,
              "%s: /weights has %lld values, the architecture needs %zu", path, (long long)dims[0],
              sbi_estimator_n_weights(m->est));
    {
        sbi_real *dst = sbi_estimator_weights(m->est);
        for (int64_t i = 0; i < dims[0]; ++i) dst[i] = (sbi_real)w[i];
    }
    free(w);
    SBI_CALL(read_vector(r, "normalization/x/shift", m->X, &m->x_shift));
    SBI_CALL(read_vector(r, "normalization/x/scale", m->X, &m->x_scale));
    SBI_CALL(read_vector(r, "normalization/theta/mean", m->D, &m->theta_mean));
    SBI_CALL(read_vector(r, "normalization/theta/std", m->D, &m->theta_std));
    if (sbi_h5r_has(r, "ood/calibration_distances")) {
        int rk;
        int64_t dd[2] = {0, 0};
        SBI_CALL(sbi_h5r_double(r, "ood/calibration_distances", &m->ood_distances, &rk, dd));
        SBI_CHECK(rk == 1 && dd[0] >= 1, SBI_ERR_IO, "%s: /ood/calibration_distances is not a non-empty vector", path);
        for (int64_t i = 0; i < dd[0]; ++i)
            SBI_CHECK(isfinite(m->ood_distances[i]) && (i == 0 || m->ood_distances[i] >= m->ood_distances[i - 1]),
                      SBI_ERR_IO, "%s: /ood/calibration_distances is not sorted and finite (value %lld)", path,
                      (long long)i);
        m->n_ood = dd[0];
        {
            int64_t sp = 0;
            SBI_CALL(sbi_h5r_attr_int64(r, "ood", "split", &sp));
            SBI_CHECK(sp >= 0 && sp < SBI_N_SPLITS, SBI_ERR_IO, "%s: /ood split %lld is not a split", path,
                      (long long)sp);
            m->ood_split = (int)sp;
        }
    }
    {
        int64_t be = 0;
        SBI_CALL(sbi_h5r_attr_double(r, NULL, "best_val_loss", &m->best_val_loss));
        SBI_CALL(sbi_h5r_attr_int64(r, NULL, "best_epoch", &be));
        m->best_epoch = (int)be;
    }
    sbi_h5r_close(&r);
    return 0;
}

void sbi_model_destroy(sbi_model **model)
{
    sbi_model *m;
    if (!model || !*model) return;
    m = *model;
    sbi_task_destroy(&m->task);
    sbi_estimator_destroy(&m->est);
    free(m->x_shift);
    free(m->x_scale);
    free(m->ood_distances);
    free(m->theta_mean);
    free(m->theta_std);
    free(m);
    *model = NULL;
}

void sbi_model_normalize_x(const sbi_model *m, const double *x, sbi_real *xn)
{
    for (int j = 0; j < m->X; ++j) xn[j] = (sbi_real)((x[j] - m->x_shift[j]) / m->x_scale[j]);
}

void sbi_model_normalize_x_float(const sbi_model *m, const float *x, sbi_real *xn)
{
    for (int j = 0; j < m->X; ++j) xn[j] = (sbi_real)(((double)x[j] - m->x_shift[j]) / m->x_scale[j]);
}

/* k normalised draws tz (k, D) with their log density lq into physical
 * units: out (k, D), logq (k) (may be NULL); ldj (k) is scratch. */
static void to_physical(const sbi_model *m, int k, const sbi_real *tz, const sbi_real *lq, double *out,
                        double *logq, double *ldj)
{
    const int D = m->D;
    double log_std = 0.0;
    for (int j = 0; j < D; ++j) log_std += log(m->theta_std[j]);
    for (int i = 0; i < k; ++i)
        for (int j = 0; j < D; ++j) out[i * D + j] = (double)tz[i * D + j] * m->theta_std[j] + m->theta_mean[j];
    /* out now holds unconstrained values; map them to physical units in place. */
    sbi_space_unconstrained_to_physical(m->task, k, out, out);
    if (logq) {
        /* q_phys(x) = q_norm(z) |dz/du| |du/dx|, z = (u - mean) / std, u = unconstrained(x). */
        sbi_space_log_jacobian_unconstrained(m->task, k, out, ldj);
        for (int i = 0; i < k; ++i) logq[i] = (double)lq[i] - log_std + ldj[i];
    }
}

int sbi_model_sample(sbi_model *m, const double *x, int n, sbi_rng *rng, double *theta, double *logq)
{
    const int D = m->D, chunk = 1024;
    sbi_real *xn, *tz, *lq;
    double *ldj;
    SBI_MALLOC(xn, m->X);
    SBI_MALLOC(tz, (size_t)chunk * D);
    SBI_MALLOC(lq, chunk);
    SBI_MALLOC(ldj, chunk);
    sbi_model_normalize_x(m, x, xn);
    for (int s = 0; s < n; s += chunk) {
        int k = n - s < chunk ? n - s : chunk;
        SBI_CALL(sbi_estimator_sample(m->est, xn, k, rng, tz, lq));
        to_physical(m, k, tz, lq, theta + (size_t)s * D, logq ? logq + s : NULL, ldj);
    }
    free(xn);
    free(tz);
    free(lq);
    free(ldj);
    return 0;
}

int sbi_model_sample_group(const sbi_model *m, int n)
{
    return sbi_estimator_sample_group(m->est, n);
}

int sbi_model_sample_batch(sbi_model *m, const double *x, int n_obs, int n, sbi_rng *rng, double *theta,
                           double *logq)
{
    const int D = m->D, X = m->X;
    sbi_real *xn, *tz, *lq;
    double *ldj;
    size_t rows = (size_t)n_obs * n;
    SBI_CHECK(n >= 0 && n_obs >= 0 && rows <= INT_MAX, SBI_ERR_INPUT, "cannot draw %d samples for %d observations",
              n, n_obs);
    if (!rows) return 0;
    SBI_MALLOC(xn, (size_t)n_obs * X);
    SBI_MALLOC(tz, rows * D);
    SBI_MALLOC(lq, rows);
    SBI_MALLOC(ldj, rows);
    for (int i = 0; i < n_obs; ++i) sbi_model_normalize_x(m, x + (size_t)i * X, xn + (size_t)i * X);
    SBI_CALL(sbi_estimator_sample_batch(m->est, xn, n_obs, n, rng, tz, lq));
    to_physical(m, (int)rows, tz, lq, theta, logq, ldj);
    free(xn);
    free(tz);
    free(lq);
    free(ldj);
    return 0;
}
