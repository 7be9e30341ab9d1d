/* Local sensitivity on the linear-Gaussian task x = A theta + b: the Jacobian
 * is A at every point, so the Fisher covariance must equal (A^T S^-1 A)^-1,
 * S = diag(sigma^2), to 1e-6 relative (central differences are exact for a
 * linear model up to rounding, and the ridge is 1e-12 s_max^2).  Also: the
 * step control falls back to one-sided differences at a prior bound, and a
 * parameter the data do not see is diagnosed as weakly constrained.  With a
 * full, correlated observation covariance S the same identity holds with
 * that S. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/calibrate.h"
#include "exosbi/forward.h"
#include "exosbi/rng.h"
#include "testutil.h"

static const char *lg_task =
    "name: sens-test\n"
    "version: 1\n"
    "parameters:\n"
    "  - {name: a, prior: normal, mean: 0.0, std: 1.0}\n"
    "  - {name: b, prior: normal, mean: 1.0, std: 2.0}\n"
    "  - {name: c, prior: normal, mean: -1.0, std: 0.5}\n"
    "  - {name: d, prior: normal, mean: 0.0, std: 1.0}\n"
    "forward_model:\n"
    "  family: linear_gaussian\n"
    "  settings: {seed: 5, scale: 1.0}\n"
    "datasets:\n"
    "  - {name: x, modality: auxiliary, size: 12, uncertainty: 0.3}\n"
    "simulation: {n_simulations: 100, seed: 1}\n";

/* A bounded parameter next to one the model ignores (its column of A is zero). */
static const char *bounded_task =
    "name: sens-bounded\n"
    "version: 1\n"
    "parameters:\n"
    "  - {name: u, prior: uniform, low: 0.0, high: 1.0}\n"
    "  - {name: v, prior: normal, mean: 0.0, std: 1.0}\n"
    "forward_model:\n"
    "  family: linear_gaussian\n"
    "  settings: {A: [[2.0, 0.0], [1.0, 0.0], [0.5, 0.0]], b: [0.0, 0.0, 0.0]}\n"
    "datasets:\n"
    "  - {name: x, modality: auxiliary, size: 3, uncertainty: [0.1, 0.2, 0.3]}\n"
    "simulation: {n_simulations: 100, seed: 1}\n";

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    {
        sbi_task *t = NULL;
        sbi_forward fw = NULL;
        sbi_sens_options o;
        sbi_sens_report rep;
        const double *A;
        const int D = 4, X = 12, n = 400;
        double F[16], sigma[12], *s = malloc(sizeof(double) * n * D), *lp = malloc(sizeof(double) * n), worst = 0;
        SBI_ASSERT_OK(sbi_task_load_text(lg_task, "sens-test.yaml", &t));
        SBI_ASSERT_OK(sbi_forward_create(t, &fw));
        SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fw, &A, NULL));
        for (int k = 0; k < X; ++k) sigma[k] = 0.3;
        for (int i = 0; i < n; ++i) {
            sbi_rng r;
            sbi_rng_init(&r, 7, (uint64_t)i, SBI_STREAM_SAMPLE, 0);
            lp[i] = 0.0;
            for (int j = 0; j < D; ++j) {
                double z = sbi_rng_normal(&r);
                s[i * D + j] = t->params[j].mean + 0.1 * t->params[j].std * z;
                lp[i] -= 0.5 * z * z;
            }
        }
        /* (A^T S^-1 A)^-1 by Cholesky. */
        for (int i = 0; i < D; ++i)
            for (int j = 0; j < D; ++j) {
                F[i * D + j] = 0.0;
                for (int k = 0; k < X; ++k) F[i * D + j] += A[k * D + i] * A[k * D + j] / (sigma[k] * sigma[k]);
            }
        SBI_ASSERT_EQ_INT(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', D, F, D), 0);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', D, F, D), 0);
        for (int i = 0; i < D; ++i)
            for (int j = i + 1; j < D; ++j) F[i * D + j] = F[j * D + i];
        sbi_sens_options_default(&o);
        SBI_ASSERT_OK(sbi_sens_compute(t, fw, n, s, lp, sigma, NULL, &o, &rep));
        SBI_ASSERT_EQ_INT(rep.n_points, 5);
        for (int p = 0; p < rep.n_points; ++p) {
            SBI_ASSERT_EQ_INT(rep.points[p].effective_rank, D);
            for (int i = 0; i < D * D; ++i) {
                double scale = sqrt(F[(i / D) * D + i / D] * F[(i % D) * D + i % D]);
                double e = fabs(rep.points[p].cov[i] - F[i]) / scale;
                if (e > worst) worst = e;
                SBI_ASSERT_NEAR(rep.points[p].cov[i], F[i], 1e-6, 1e-6 * scale);
            }
            for (int j = 0; j < D; ++j) SBI_ASSERT_EQ_INT(rep.points[p].scheme[j], SBI_FD_CENTRAL);
        }
        printf("Fisher covariance vs (A^T S^-1 A)^-1: worst error %.3g of sqrt(C_ii C_jj)\n", worst);
        {
            cJSON *j = sbi_sens_report_to_json(t, &rep);
            SBI_ASSERT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "representative_points")) == 5);
            cJSON_Delete(j);
        }
        sbi_sens_report_free(&rep);
        sbi_forward_destroy(&fw);
        sbi_task_destroy(&t);
        free(s);
        free(lp);
    }
    {
        /* u's posterior piles up at the bound 0: the lower quantile point needs a forward difference. */
        sbi_task *t = NULL;
        sbi_forward fw = NULL;
        sbi_sens_options o;
        sbi_sens_report rep;
        const int n = 200;
        double sigma[3] = {0.1, 0.2, 0.3}, s[400];
        SBI_ASSERT_OK(sbi_task_load_text(bounded_task, "sens-bounded.yaml", &t));
        SBI_ASSERT_OK(sbi_forward_create(t, &fw));
        for (int i = 0; i < n; ++i) {
            s[2 * i] = 1e-7 + 0.02 * i / n;
            s[2 * i + 1] = -1.0 + 2.0 * i / n;
        }
        sbi_sens_options_default(&o);
        o.n_quantiles = 1;
        o.quantiles[0] = 0.0;
        SBI_ASSERT_OK(sbi_sens_compute(t, fw, n, s, NULL, sigma, NULL, &o, &rep));
        SBI_ASSERT_EQ_INT(rep.n_points, 2);
        SBI_ASSERT_EQ_INT(rep.points[1].scheme[0], SBI_FD_FORWARD);
        SBI_ASSERT_NEAR(rep.points[1].jw[0 * 2 + 0], 2.0 / 0.1, 1e-9, 0);
        SBI_ASSERT_EQ_INT(rep.points[0].effective_rank, 1);
        SBI_ASSERT(!strcmp(rep.diagnosis[1], "weakly constrained by the data"));
        SBI_ASSERT(isinf(rep.points[0].condition_number));
        sbi_sens_report_free(&rep);
        sbi_forward_destroy(&fw);
        sbi_task_destroy(&t);
    }
    {
        /* A correlated covariance S_kl = 0.09 * 0.6^|k - l|: whitening by its
         * Cholesky factor gives Fisher covariance (A^T S^-1 A)^-1, which differs
         * from the diagonal answer. */
        sbi_task *t = NULL;
        sbi_forward fw = NULL;
        sbi_sens_options o;
        sbi_sens_report rep;
        const double *A;
        enum { D = 4, X = 12, N = 400 };
        double S[X * X], Si[X * X], F[D * D], Fd[D * D], sigma[X], s[N * D], worst = 0, moved = 0;
        SBI_ASSERT_OK(sbi_task_load_text(lg_task, "sens-test.yaml", &t));
        SBI_ASSERT_OK(sbi_forward_create(t, &fw));
        SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fw, &A, NULL));
        for (int k = 0; k < X; ++k) {
            sigma[k] = 0.3;
            for (int l = 0; l < X; ++l) S[k * X + l] = 0.09 * pow(0.6, abs(k - l));
        }
        for (int i = 0; i < N; ++i) {
            sbi_rng r;
            sbi_rng_init(&r, 8, (uint64_t)i, SBI_STREAM_SAMPLE, 0);
            for (int j = 0; j < D; ++j) s[i * D + j] = t->params[j].mean + 0.1 * t->params[j].std * sbi_rng_normal(&r);
        }
        memcpy(Si, S, sizeof S);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', X, Si, X), 0);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', X, Si, X), 0);
        for (int k = 0; k < X; ++k)
            for (int l = k + 1; l < X; ++l) Si[k * X + l] = Si[l * X + k];
        for (int i = 0; i < D; ++i)
            for (int j = 0; j < D; ++j) {
                F[i * D + j] = Fd[i * D + j] = 0.0;
                for (int k = 0; k < X; ++k) {
                    Fd[i * D + j] += A[k * D + i] * A[k * D + j] / (sigma[k] * sigma[k]);
                    for (int l = 0; l < X; ++l) F[i * D + j] += A[k * D + i] * Si[k * X + l] * A[l * D + j];
                }
            }
        SBI_ASSERT_EQ_INT(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', D, F, D), 0);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', D, F, D), 0);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', D, Fd, D), 0);
        SBI_ASSERT_EQ_INT(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', D, Fd, D), 0);
        for (int i = 0; i < D; ++i)
            for (int j = i + 1; j < D; ++j) {
                F[i * D + j] = F[j * D + i];
                Fd[i * D + j] = Fd[j * D + i];
            }
        sbi_sens_options_default(&o);
        SBI_ASSERT_OK(sbi_sens_compute(t, fw, N, s, NULL, sigma, S, &o, &rep));
        for (int p = 0; p < rep.n_points; ++p)
            for (int i = 0; i < D * D; ++i) {
                double scale = sqrt(F[(i / D) * D + i / D] * F[(i % D) * D + i % D]);
                worst = fmax(worst, fabs(rep.points[p].cov[i] - F[i]) / scale);
                moved = fmax(moved, fabs(Fd[i] - F[i]) / scale);
                SBI_ASSERT_NEAR(rep.points[p].cov[i], F[i], 1e-6, 1e-6 * scale);
            }
        printf("Fisher covariance with a correlated S vs (A^T S^-1 A)^-1: worst error %.3g; the diagonal-S answer "
               "differs by %.3g\n",
               worst, moved);
        SBI_ASSERT(moved > 1e-2); /* the correlations matter, so the check above can fail */
        /* A covariance that is not positive definite is an input error. */
        S[1] = S[X] = 0.2;
        sbi_sens_report_free(&rep);
        SBI_ASSERT(sbi_sens_compute(t, fw, N, s, NULL, sigma, S, &o, &rep) == SBI_ERR_INPUT);
        sbi_sens_report_free(&rep);
        sbi_forward_destroy(&fw);
        sbi_task_destroy(&t);
    }
    {
        int rc = SBI_TEST_REPORT("calibrate_sensitivity");
        MPI_Finalize();
        return rc;
    }
}
