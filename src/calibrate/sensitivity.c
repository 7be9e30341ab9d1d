/* Local sensitivity: finite-difference Jacobians, Fisher matrices and their
 * spectra at representative posterior points. */
#include "exosbi/calibrate.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate/calibrate_impl.h"
#include "exosbi/dense.h"
#include "exosbi/h5file.h"

static const char *const DIAG_WEAK = "weakly constrained by the data";
static const char *const DIAG_BROAD = "broader than the local curvature";
static const char *const DIAG_NARROW = "narrower than the local curvature";
static const char *const DIAG_OK = "consistent with the local curvature";
static const char *const scheme_names[4] = {"failed", "central", "forward", "backward"};

void sbi_sens_options_default(sbi_sens_options *o)
{
    memset(o, 0, sizeof *o);
    o->n_quantiles = 3;
    o->quantiles[0] = 0.1;
    o->quantiles[1] = 0.5;
    o->quantiles[2] = 0.9;
    o->rel_step = 1e-3;
    o->std_fraction = 0.1;
    o->abs_floor = 1e-5;
    o->max_reductions = 6;
    o->svd_rtol = 1e-3;
    o->ratio_threshold = 1.5;
    o->weak_fraction = 0.15;
}

static void point_free(sbi_sens_point *p)
{
    free(p->theta);
    free(p->step);
    free(p->scheme);
    free(p->jw);
    free(p->sv);
    free(p->fisher);
    free(p->cov);
    free(p->corr);
    free(p->norm);
    free(p->sigma);
}

void sbi_sens_report_free(sbi_sens_report *rep)
{
    for (int p = 0; p < rep->n_points; ++p) point_free(&rep->points[p]);
    free(rep->points);
    free(rep->post_mean);
    free(rep->post_std);
    free(rep->post_median);
    free(rep->post_iqr);
    free(rep->agg_sigma);
    free(rep->agg_norm);
    free(rep->ratio);
    free((void *)rep->diagnosis);
    memset(rep, 0, sizeof *rep);
}

/* Simulate one row; returns 1 when theta is in the prior support and every output is finite. */
static int simulate_ok(const sbi_task *task, sbi_forward fw, const double *theta, double *out, int *status)
{
    uint64_t idx = 0;
    if (!sbi_prior_in_support(task, theta)) return 0;
    *status = sbi_forward_simulate(fw, 1, theta, &idx, 0, out);
    if (*status) return 0;
    for (int64_t k = 0; k < task->n_outputs; ++k)
        if (!isfinite(out[k])) return 0;
    return 1;
}

/* Column j of the whitened Jacobian at theta0, with the step control described in calibrate.h. */
static int jacobian_column(const sbi_task *task, sbi_forward fw, const sbi_sens_options *o, const double *theta0,
                           double post_std, int j, const double *sigma, double *work, double *plus, double *minus,
                           sbi_sens_point *pt)
{
    const int D = task->n_params, X = (int)task->n_outputs;
    double h = fmax(fmax(o->rel_step * fabs(theta0[j]), o->std_fraction * post_std), o->abs_floor);
    int st = 0;
    memcpy(work, theta0, (size_t)D * sizeof *work);
    for (int attempt = 0; attempt <= o->max_reductions; ++attempt, h *= 0.5) {
        int up, down;
        work[j] = theta0[j] + h;
        up = simulate_ok(task, fw, work, plus, &st);
        SBI_CALL(st);
        work[j] = theta0[j] - h;
        down = simulate_ok(task, fw, work, minus, &st);
        SBI_CALL(st);
        if (!up && !down) continue;
        if (up && down) {
            pt->scheme[j] = SBI_FD_CENTRAL;
            for (int k = 0; k < X; ++k) pt->jw[k * D + j] = (plus[k] - minus[k]) / (2.0 * h) / sigma[k];
        } else {
            double *base = up ? minus : plus;
            work[j] = theta0[j];
            SBI_CHECK(simulate_ok(task, fw, work, base, &st) || st, SBI_ERR_INPUT,
                      "sensitivity: the forward model fails at the representative point %s", pt->label);
            SBI_CALL(st);
            pt->scheme[j] = up ? SBI_FD_FORWARD : SBI_FD_BACKWARD;
            for (int k = 0; k < X; ++k)
                pt->jw[k * D + j] = (up ? plus[k] - base[k] : base[k] - minus[k]) / h / sigma[k];
        }
        pt->step[j] = h;
        return 0;
    }
    pt->scheme[j] = SBI_FD_FAILED;
    pt->step[j] = h;
    for (int k = 0; k < X; ++k) pt->jw[k * D + j] = 0.0;
    return 0;
}

/* The spectrum of the whitened Jacobian through LAPACK: pt->sv and the right
 * singular vectors vt (D, D), of which the first min(X, D) rows are used. */
static int point_svd_lapack(int X, int D, sbi_sens_point *pt, double *vt)
{
    const int K = X < D ? X : D;
    double *a, *u = NULL, *superb;
    SBI_MALLOC(a, (size_t)X * D);
    SBI_MALLOC(superb, K > 1 ? K : 1);
    memcpy(a, pt->jw, (size_t)X * D * sizeof *a);
    SBI_CHECK(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'A', X, D, a, D, pt->sv, u, 1, vt, D, superb) == 0,
              SBI_ERR_INTERNAL, "sensitivity: the SVD of the whitened Jacobian at %s did not converge", pt->label);
    free(a);
    free(superb);
    return 0;
}

/* Fisher matrix and damped pseudo-inverse of the whitened Jacobian, from its
 * spectrum pt->sv and right singular vectors vt (min(X, D) rows of length D). */
static int point_algebra(const sbi_sens_options *o, int X, int D, sbi_sens_point *pt, const double *vt)
{
    const int K = X < D ? X : D;
    double smax = K ? pt->sv[0] : 0.0, smin = K ? pt->sv[K - 1] : 0.0;
    pt->effective_rank = 0;
    for (int i = 0; i < K; ++i) pt->effective_rank += pt->sv[i] > o->svd_rtol * smax && pt->sv[i] > 0;
    pt->condition_number = smin > 0 ? smax / smin : INFINITY;
    pt->ridge = 1e-12 * smax * smax;
    for (int i = 0; i < D; ++i)
        for (int j = 0; j < D; ++j) {
            double f = 0.0, cv = 0.0;
            for (int k = 0; k < X; ++k) f += pt->jw[k * D + i] * pt->jw[k * D + j];
            for (int r = 0; r < K; ++r)
                if (pt->sv[r] > o->svd_rtol * smax && pt->sv[r] > 0)
                    cv += vt[r * D + i] * vt[r * D + j] / (pt->sv[r] * pt->sv[r] + pt->ridge);
            pt->fisher[i * D + j] = f;
            pt->cov[i * D + j] = cv;
        }
    for (int i = 0; i < D; ++i) {
        pt->norm[i] = sqrt(pt->fisher[i * D + i]);
        pt->sigma[i] = sqrt(pt->cov[i * D + i]);
    }
    for (int i = 0; i < D; ++i)
        for (int j = 0; j < D; ++j) {
            double den = pt->sigma[i] * pt->sigma[j];
            pt->corr[i * D + j] = den > 0 ? pt->cov[i * D + j] / den : (i == j ? 1.0 : 0.0);
        }
    return 0;
}

static int point_alloc(sbi_sens_point *p, int X, int D)
{
    const int K = X < D ? X : D;
    SBI_CALLOC(p->theta, D);
    SBI_CALLOC(p->step, D);
    SBI_CALLOC(p->scheme, D);
    SBI_CALLOC(p->jw, (size_t)X * D);
    SBI_CALLOC(p->sv, K > 0 ? K : 1);
    SBI_CALLOC(p->fisher, (size_t)D * D);
    SBI_CALLOC(p->cov, (size_t)D * D);
    SBI_CALLOC(p->corr, (size_t)D * D);
    SBI_CALLOC(p->norm, D);
    SBI_CALLOC(p->sigma, D);
    return 0;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, sbi_cmp_double);
    return sbi_quantile_sorted(v, n, 0.5);
}

/* The first half of sbi_sens_compute: posterior summaries, the representative
 * points and their whitened Jacobians; the spectra are left to the caller. */
static int sens_points(const sbi_task *task, sbi_forward fw, int64_t n, const double *samples, const double *logp,
                       const double *sigma, const double *cov, const sbi_sens_options *o, sbi_sens_report *rep)
{
    const int D = task->n_params, X = (int)task->n_outputs;
    double *col, *work, *plus, *minus, *chol = NULL, *ones = NULL;

    memset(rep, 0, sizeof *rep);
    SBI_CHECK(n >= 2, SBI_ERR_INPUT, "sensitivity: at least 2 posterior samples are needed");
    for (int k = 0; k < X; ++k)
        SBI_CHECK(sigma[k] > 0 && isfinite(sigma[k]), SBI_ERR_INPUT,
                  "sensitivity: uncertainty %d of the observation is %g; whitening needs positive uncertainties",
                  k + 1, sigma[k]);
    if (cov) {
        /* Whitening by a full covariance C = L L^T: Jw = L^{-1} J, so that
         * Jw^T Jw = J^T C^{-1} J.  The columns are taken unscaled first. */
        lapack_int info;
        SBI_MALLOC(chol, (size_t)X * X);
        memcpy(chol, cov, (size_t)X * X * sizeof *chol);
        info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', X, chol, X);
        if (info != 0) {
            free(chol);
            SBI_RAISE(SBI_ERR_INPUT,
                      "sensitivity: the observation covariance is not positive definite (Cholesky fails at order %d)",
                      (int)info);
        }
        SBI_MALLOC(ones, X);
        for (int k = 0; k < X; ++k) ones[k] = 1.0;
    }
    rep->D = D;
    rep->X = X;
    SBI_MALLOC(rep->post_mean, D);
    SBI_MALLOC(rep->post_std, D);
    SBI_MALLOC(rep->post_median, D);
    SBI_MALLOC(rep->post_iqr, D);
    SBI_MALLOC(rep->agg_sigma, D);
    SBI_MALLOC(rep->agg_norm, D);
    SBI_MALLOC(rep->ratio, D);
    SBI_MALLOC(rep->diagnosis, D);
    rep->n_points = 1 + (logp != NULL) + o->n_quantiles;
    SBI_CALLOC(rep->points, rep->n_points);
    for (int p = 0; p < rep->n_points; ++p) SBI_CALL(point_alloc(&rep->points[p], X, D));
    SBI_MALLOC(col, n);
    SBI_MALLOC(work, D);
    SBI_MALLOC(plus, X);
    SBI_MALLOC(minus, X);

    /* Posterior summaries and the representative points. */
    for (int j = 0; j < D; ++j) {
        double mu = 0.0, var = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            col[i] = samples[i * D + j];
            mu += col[i];
        }
        mu /= (double)n;
        for (int64_t i = 0; i < n; ++i) var += (col[i] - mu) * (col[i] - mu);
        qsort(col, (size_t)n, sizeof *col, sbi_cmp_double);
        rep->post_mean[j] = mu;
        rep->post_std[j] = sqrt(var / (double)(n - 1));
        rep->post_median[j] = sbi_quantile_sorted(col, n, 0.5);
        rep->post_iqr[j] = sbi_quantile_sorted(col, n, 0.75) - sbi_quantile_sorted(col, n, 0.25);
        rep->points[0].theta[j] = mu;
        for (int q = 0; q < o->n_quantiles; ++q)
            rep->points[1 + (logp != NULL) + q].theta[j] = sbi_quantile_sorted(col, n, o->quantiles[q]);
    }
    snprintf(rep->points[0].label, sizeof rep->points[0].label, "mean");
    if (logp) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; ++i)
            if (logp[i] > logp[best]) best = i;
        memcpy(rep->points[1].theta, samples + best * D, (size_t)D * sizeof(double));
        snprintf(rep->points[1].label, sizeof rep->points[1].label, "highest_density_sample");
    }
    for (int q = 0; q < o->n_quantiles; ++q)
        snprintf(rep->points[1 + (logp != NULL) + q].label, sizeof rep->points[0].label, "quantile_%g",
                 o->quantiles[q]);

    /* The whitened Jacobians, point by point. */
    for (int p = 0; p < rep->n_points; ++p) {
        sbi_sens_point *pt = &rep->points[p];
        for (int j = 0; j < D; ++j)
            SBI_CALL(jacobian_column(task, fw, o, pt->theta, rep->post_std[j], j, cov ? ones : sigma, work, plus,
                                     minus, pt));
        if (cov)
            cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, X, D, 1.0, chol, X, pt->jw,
                        D);
    }
    free(chol);
    free(ones);
    free(col);
    free(work);
    free(plus);
    free(minus);
    return 0;
}

/* The second half: aggregates (medians over points) and the diagnosis, once
 * every point has its algebra. */
static int sens_aggregate(const sbi_sens_options *o, sbi_sens_report *rep)
{
    const int D = rep->D;
    double *tmp, max_resp = 0.0;
    SBI_MALLOC(tmp, rep->n_points);
    for (int j = 0; j < D; ++j) {
        for (int p = 0; p < rep->n_points; ++p) tmp[p] = rep->points[p].sigma[j];
        rep->agg_sigma[j] = median_of(tmp, rep->n_points);
        for (int p = 0; p < rep->n_points; ++p) tmp[p] = rep->points[p].norm[j];
        rep->agg_norm[j] = median_of(tmp, rep->n_points);
        rep->ratio[j] = rep->agg_sigma[j] > 0 ? rep->post_std[j] / rep->agg_sigma[j] : INFINITY;
        max_resp = fmax(max_resp, rep->agg_norm[j] * rep->post_std[j]);
    }
    for (int j = 0; j < D; ++j) {
        double resp = rep->agg_norm[j] * rep->post_std[j];
        if (resp < o->weak_fraction * max_resp || !(rep->agg_sigma[j] > 0)) rep->diagnosis[j] = DIAG_WEAK;
        else if (rep->ratio[j] > o->ratio_threshold) rep->diagnosis[j] = DIAG_BROAD;
        else if (rep->ratio[j] < 1.0 / o->ratio_threshold) rep->diagnosis[j] = DIAG_NARROW;
        else rep->diagnosis[j] = DIAG_OK;
    }
    free(tmp);
    return 0;
}

int sbi_sens_compute(const sbi_task *task, sbi_forward fw, int64_t n, const double *samples, const double *logp,
                     const double *sigma, const double *cov, const sbi_sens_options *o, sbi_sens_report *rep)
{
    const int D = task->n_params, X = (int)task->n_outputs;
    double *vt;
    SBI_CALL(sens_points(task, fw, n, samples, logp, sigma, cov, o, rep));
    SBI_MALLOC(vt, (size_t)D * D);
    for (int p = 0; p < rep->n_points; ++p) {
        SBI_CALL(point_svd_lapack(X, D, &rep->points[p], vt));
        SBI_CALL(point_algebra(o, X, D, &rep->points[p], vt));
    }
    free(vt);
    SBI_CALL(sens_aggregate(o, rep));
    return 0;
}

/* ---- JSON and HDF5 ---- */

static cJSON *json_vector(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; ++i) cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

static cJSON *json_matrix(const double *m, int rows, int cols)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < rows; ++i) cJSON_AddItemToArray(a, json_vector(m + (size_t)i * cols, cols));
    return a;
}

cJSON *sbi_sens_report_to_json(const sbi_task *task, const sbi_sens_report *rep)
{
    const int D = rep->D, X = rep->X, K = X < D ? X : D;
    cJSON *root = cJSON_CreateObject(), *names = cJSON_CreateArray(), *pts = cJSON_CreateArray(),
          *diag = cJSON_CreateObject();
    for (int j = 0; j < D; ++j) cJSON_AddItemToArray(names, cJSON_CreateString(task->params[j].name));
    cJSON_AddItemToObject(root, "parameter_names", names);
    cJSON_AddItemToObject(root, "posterior_mean", json_vector(rep->post_mean, D));
    cJSON_AddItemToObject(root, "posterior_std", json_vector(rep->post_std, D));
    cJSON_AddItemToObject(root, "posterior_median", json_vector(rep->post_median, D));
    cJSON_AddItemToObject(root, "posterior_iqr", json_vector(rep->post_iqr, D));
    for (int p = 0; p < rep->n_points; ++p) {
        const sbi_sens_point *pt = &rep->points[p];
        cJSON *o = cJSON_CreateObject(), *sch = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "label", pt->label);
        cJSON_AddItemToObject(o, "parameters", json_vector(pt->theta, D));
        cJSON_AddItemToObject(o, "finite_difference_steps", json_vector(pt->step, D));
        for (int j = 0; j < D; ++j) cJSON_AddItemToArray(sch, cJSON_CreateString(scheme_names[pt->scheme[j] + 1]));
        cJSON_AddItemToObject(o, "finite_difference_schemes", sch);
        cJSON_AddItemToObject(o, "whitened_jacobian", json_matrix(pt->jw, X, D));
        cJSON_AddItemToObject(o, "singular_values", json_vector(pt->sv, K));
        cJSON_AddNumberToObject(o, "effective_rank", pt->effective_rank);
        if (isfinite(pt->condition_number)) cJSON_AddNumberToObject(o, "condition_number", pt->condition_number);
        else cJSON_AddNullToObject(o, "condition_number");
        cJSON_AddItemToObject(o, "fisher_matrix", json_matrix(pt->fisher, D, D));
        cJSON_AddItemToObject(o, "fisher_covariance", json_matrix(pt->cov, D, D));
        cJSON_AddItemToObject(o, "fisher_correlation", json_matrix(pt->corr, D, D));
        cJSON_AddItemToObject(o, "parameter_sensitivity_norm", json_vector(pt->norm, D));
        cJSON_AddItemToObject(o, "local_sigma", json_vector(pt->sigma, D));
        cJSON_AddNumberToObject(o, "ridge", pt->ridge);
        cJSON_AddItemToArray(pts, o);
    }
    cJSON_AddItemToObject(root, "representative_points", pts);
    cJSON_AddItemToObject(root, "aggregate_local_sigma", json_vector(rep->agg_sigma, D));
    cJSON_AddItemToObject(root, "aggregate_parameter_sensitivity_norm", json_vector(rep->agg_norm, D));
    cJSON_AddItemToObject(root, "posterior_to_local_sigma_ratio", json_vector(rep->ratio, D));
    for (int j = 0; j < D; ++j) cJSON_AddStringToObject(diag, task->params[j].name, rep->diagnosis[j]);
    cJSON_AddItemToObject(root, "parameter_diagnostics", diag);
    return root;
}

static int write_report(const char *path, const sbi_task *task, const char *posterior_path, const char *observations,
                        const double *x, const double *sigma, const double *cov, const sbi_sens_report *rep,
                        const char *payload)
{
    const int D = rep->D, X = rep->X, P = rep->n_points, K = X < D ? X : D;
    sbi_h5w w = NULL;
    int64_t dD[1] = {D}, dX[1] = {X}, dPD[2] = {P, D}, dXD[2] = {X, D}, dDD[2] = {D, D}, dK[1] = {K};
    const char **s;
    double *buf;
    int64_t *sch;
    char p[128];

    SBI_CALL(sbi_h5w_create(path, SBI_SENSITIVITY_FORMAT, 1, &w));
    {
        char *tj = cJSON_PrintUnformatted(task->json);
        SBI_CALL(sbi_h5w_attr_string(w, NULL, "task", tj));
        free(tj);
    }
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "posterior", posterior_path));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "observations", observations));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "payload", payload));
    SBI_MALLOC(s, D > P ? D : P);
    for (int j = 0; j < D; ++j) s[j] = task->params[j].name;
    SBI_CALL(sbi_h5w_strings(w, "parameters/names", D, s));
    for (int j = 0; j < D; ++j) s[j] = task->params[j].unit;
    SBI_CALL(sbi_h5w_strings(w, "parameters/units", D, s));
    SBI_CALL(sbi_h5w_double(w, "posterior/mean", 1, dD, rep->post_mean));
    SBI_CALL(sbi_h5w_double(w, "posterior/std", 1, dD, rep->post_std));
    SBI_CALL(sbi_h5w_double(w, "posterior/median", 1, dD, rep->post_median));
    SBI_CALL(sbi_h5w_double(w, "posterior/iqr", 1, dD, rep->post_iqr));
    SBI_CALL(sbi_h5w_double(w, "observation/value", 1, dX, x));
    SBI_CALL(sbi_h5w_double(w, "observation/uncertainty", 1, dX, sigma));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "whitening", cov ? "covariance" : "uncertainties"));
    if (cov) {
        int64_t dXX[2] = {X, X};
        SBI_CALL(sbi_h5w_double(w, "observation/covariance", 2, dXX, cov));
    }
    for (int q = 0; q < P; ++q) s[q] = rep->points[q].label;
    SBI_CALL(sbi_h5w_strings(w, "points/labels", P, s));
    SBI_MALLOC(buf, (size_t)P * D);
    SBI_MALLOC(sch, (size_t)P * D);
    for (int q = 0; q < P; ++q) memcpy(buf + q * D, rep->points[q].theta, (size_t)D * sizeof *buf);
    SBI_CALL(sbi_h5w_double(w, "points/parameters", 2, dPD, buf));
    for (int q = 0; q < P; ++q) memcpy(buf + q * D, rep->points[q].step, (size_t)D * sizeof *buf);
    SBI_CALL(sbi_h5w_double(w, "points/steps", 2, dPD, buf));
    for (int q = 0; q < P; ++q)
        for (int j = 0; j < D; ++j) sch[q * D + j] = rep->points[q].scheme[j];
    SBI_CALL(sbi_h5w_int64(w, "points/schemes", 2, dPD, sch));
    SBI_CALL(sbi_h5w_attr_string(w, "points/schemes", "legend", "0 central, 1 forward, 2 backward, -1 failed"));
    for (int q = 0; q < P; ++q) {
        const sbi_sens_point *pt = &rep->points[q];
        char g[32];
        snprintf(g, sizeof g, "points/%d", q);
#define PT_WRITE(name, rank, dims, data)                                                                             \
    do {                                                                                                             \
        snprintf(p, sizeof p, "%s/%s", g, name);                                                                     \
        SBI_CALL(sbi_h5w_double(w, p, rank, dims, data));                                                            \
    } while (0)
        PT_WRITE("whitened_jacobian", 2, dXD, pt->jw);
        PT_WRITE("singular_values", 1, dK, pt->sv);
        PT_WRITE("fisher_matrix", 2, dDD, pt->fisher);
        PT_WRITE("fisher_covariance", 2, dDD, pt->cov);
        PT_WRITE("fisher_correlation", 2, dDD, pt->corr);
        PT_WRITE("sensitivity_norm", 1, dD, pt->norm);
        PT_WRITE("local_sigma", 1, dD, pt->sigma);
#undef PT_WRITE
        SBI_CALL(sbi_h5w_attr_string(w, g, "label", pt->label));
        SBI_CALL(sbi_h5w_attr_int64(w, g, "effective_rank", pt->effective_rank));
        SBI_CALL(sbi_h5w_attr_double(w, g, "condition_number", pt->condition_number));
        SBI_CALL(sbi_h5w_attr_double(w, g, "ridge", pt->ridge));
    }
    SBI_CALL(sbi_h5w_double(w, "aggregate/local_sigma", 1, dD, rep->agg_sigma));
    SBI_CALL(sbi_h5w_double(w, "aggregate/sensitivity_norm", 1, dD, rep->agg_norm));
    SBI_CALL(sbi_h5w_double(w, "aggregate/posterior_to_local_sigma_ratio", 1, dD, rep->ratio));
    SBI_CALL(sbi_h5w_strings(w, "diagnosis", D, rep->diagnosis));
    SBI_CALL(sbi_h5w_commit(&w));
    free(s);
    free(buf);
    free(sch);
    return 0;
}

/* Rank 0's first part of sbi_sens_run: read the posterior and compute the
 * representative points and their whitened Jacobians. */
static int sens_rank0_points(const sbi_task *task, const char *posterior_path, const double *sigma,
                             const double *cov, const sbi_sens_options *o, sbi_sens_report *rep)
{
    sbi_h5r r = NULL;
    sbi_forward fw = NULL;
    double *samples = NULL, *logp = NULL;
    char *fp = NULL;
    int rank;
    int64_t dims[2] = {0, 0}, dl[2] = {0, 0};

    SBI_CALL(sbi_h5r_open(posterior_path, "exosbi-posterior", &r));
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "fingerprint", &fp));
    SBI_CHECK(!strcmp(fp, task->fingerprint), SBI_ERR_INCOMPATIBLE,
              "%s: the posterior was made for a different task (fingerprint %.12s, the task's %.12s)",
              posterior_path, fp, task->fingerprint);
    free(fp);
    SBI_CALL(sbi_h5r_double(r, "samples", &samples, &rank, dims));
    SBI_CHECK(rank == 2 && dims[1] == task->n_params, SBI_ERR_IO, "%s: /samples is not (n, %d)", posterior_path,
              task->n_params);
    if (sbi_h5r_has(r, "log_prob")) {
        SBI_CALL(sbi_h5r_double(r, "log_prob", &logp, &rank, dl));
        SBI_CHECK(rank == 1 && dl[0] == dims[0], SBI_ERR_IO, "%s: /log_prob does not match /samples", posterior_path);
    }
    sbi_h5r_close(&r);
    SBI_CALL(sbi_forward_create(task, &fw));
    SBI_CALL(sens_points(task, fw, dims[0], samples, logp, sigma, cov, o, rep));
    sbi_forward_destroy(&fw);
    free(samples);
    free(logp);
    return 0;
}

/* Rank 0's last part: the spectra through LAPACK when they were not computed
 * collectively (serial), the aggregates, and the report. */
static int sens_rank0_write(const sbi_task *task, const char *posterior_path, const double *x, const double *sigma,
                            const double *cov, const char *observations, const sbi_sens_options *o, const char *out_path, int serial,
                            sbi_sens_report *rep, char **json_text)
{
    char *payload;
    cJSON *json;
    if (serial) {
        double *vt;
        SBI_MALLOC(vt, (size_t)rep->D * rep->D);
        for (int p = 0; p < rep->n_points; ++p) {
            SBI_CALL(point_svd_lapack(rep->X, rep->D, &rep->points[p], vt));
            SBI_CALL(point_algebra(o, rep->X, rep->D, &rep->points[p], vt));
        }
        free(vt);
    }
    SBI_CALL(sens_aggregate(o, rep));
    json = sbi_sens_report_to_json(task, rep);
    cJSON_AddStringToObject(json, "whitening", cov ? "covariance" : "uncertainties");
    payload = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    SBI_CHECK(payload, SBI_ERR_INTERNAL, "sensitivity: cannot format the JSON payload");
    SBI_CALL(write_report(out_path, task, posterior_path, observations, x, sigma, cov, rep, payload));
    if (json_text) *json_text = payload;
    else free(payload);
    sbi_sens_report_free(rep);
    return 0;
}

static int sens_alloc_svd(int X, int D, double **jw, double **sv, double **vt)
{
    SBI_MALLOC(*jw, (size_t)X * D);
    SBI_MALLOC(*sv, (X < D ? X : D) > 0 ? (X < D ? X : D) : 1);
    SBI_MALLOC(*vt, (size_t)D * D);
    return 0;
}

/* Rank 0 reads, differentiates and writes.  When the whitened Jacobian is at
 * or above the dense threshold (X * D >= SBI_DENSE_DISTRIBUTED_MIN on more
 * than one rank), every rank takes part in each point's SVD through
 * sbi_dense_svd; otherwise rank 0 does the whole computation with LAPACK. */
int sbi_sens_run(const sbi_comm *c, const sbi_task *task, const char *posterior_path, const double *x,
                 const double *sigma, const double *cov, const char *observations, const sbi_sens_options *o,
                 const char *out_path, char **json_text)
{
    sbi_sens_report rep;
    double *jw = NULL, *sv = NULL, *vt = NULL;
    int st = 0, shape[4] = {0, 0, 0, 0}; /* X, D, points, distributed */

    memset(&rep, 0, sizeof rep);
    if (json_text) *json_text = NULL;
    if (c->rank == 0) {
        st = sens_rank0_points(task, posterior_path, sigma, cov, o, &rep);
        shape[0] = rep.X;
        shape[1] = rep.D;
        shape[2] = rep.n_points;
        shape[3] = !st && sbi_dense_svd_is_distributed(c, rep.X, rep.D);
    }
    SBI_AGREE(c, st);
    SBI_CALL(sbi_comm_bcast(c, shape, sizeof shape, 0));
    if (shape[3]) {
        const int X = shape[0], D = shape[1], K = X < D ? X : D;
        SBI_AGREE(c, sens_alloc_svd(X, D, &jw, &sv, &vt));
        for (int p = 0; p < shape[2]; ++p) {
            if (c->rank == 0) memcpy(jw, rep.points[p].jw, (size_t)X * D * sizeof *jw);
            SBI_CALL(sbi_comm_bcast(c, jw, (size_t)X * D * sizeof *jw, 0));
            SBI_CALL(sbi_dense_svd(c, X, D, jw, sv, NULL, vt));
            if (c->rank == 0) {
                memcpy(rep.points[p].sv, sv, (size_t)K * sizeof *sv);
                st = point_algebra(o, X, D, &rep.points[p], vt);
            }
            SBI_AGREE(c, st);
        }
        free(jw);
        free(sv);
        free(vt);
    }
    if (c->rank == 0)
        st = sens_rank0_write(task, posterior_path, x, sigma, cov, observations, o, out_path, !shape[3], &rep,
                              json_text);
    SBI_AGREE(c, st);
    return 0;
}
