/* Vectorised sampling of several observations in one call
 * (sbi_estimator_sample_batch), in double precision, for every family:
 * block i of the batch equals sbi_estimator_sample for observation i with the
 * same random stream, draws and log densities, whether the observations fit
 * one flow pass or need several, and whatever the embedding. */
#include <math.h>
#include <mpi.h>
#include <petscsys.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "testutil.h"

static void fill(double *v, size_t n, double scale, uint64_t seed)
{
    sbi_rng r;
    sbi_rng_init(&r, seed, 0, SBI_STREAM_AUGMENT, 0);
    for (size_t i = 0; i < n; ++i) v[i] = scale * (2 * sbi_rng_uniform(&r) - 1);
}

/* Largest |batch - one by one| over n_obs observations with n draws each. */
static void check(const char *family, const char *embedding, const char *solver, int n_obs, int n, double tol)
{
    enum { D = 3, X = 24, MAX_BATCH = 64 };
    sbi_estimator_config cfg;
    sbi_estimator est = NULL;
    size_t rows = (size_t)n_obs * n;
    double *x = malloc(sizeof(double) * n_obs * X), *tb = malloc(sizeof(double) * rows * D);
    double *t1 = malloc(sizeof(double) * rows * D), *lb = malloc(sizeof(double) * rows);
    double *l1 = malloc(sizeof(double) * rows), err = 0, lerr = 0, spread = 0;
    sbi_rng *rng = malloc(sizeof(sbi_rng) * n_obs);

    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, family, D, X));
    strcpy(cfg.embedding, embedding);
    if (solver) strcpy(cfg.ode_solver, solver);
    cfg.embed_hidden = 16;
    cfg.hidden = 16;
    cfg.max_batch = MAX_BATCH;
    cfg.seed = 5;
    SBI_ASSERT_OK(sbi_estimator_create(&cfg, &est));
    fill(sbi_estimator_weights(est), sbi_estimator_n_weights(est), 0.3, 11);
    fill(x, (size_t)n_obs * X, 1.0, 3);

    for (int i = 0; i < n_obs; ++i) sbi_rng_init(&rng[i], 9, (uint64_t)i, SBI_STREAM_SAMPLE, 0);
    SBI_ASSERT_OK(sbi_estimator_sample_batch(est, x, n_obs, n, rng, tb, lb));
    for (int i = 0; i < n_obs; ++i) {
        sbi_rng r;
        sbi_rng_init(&r, 9, (uint64_t)i, SBI_STREAM_SAMPLE, 0);
        SBI_ASSERT_OK(sbi_estimator_sample(est, x + (size_t)i * X, n, &r, t1 + (size_t)i * n * D, l1 + (size_t)i * n));
    }
    for (size_t k = 0; k < rows * D; ++k) err = fmax(err, fabs(tb[k] - t1[k]));
    for (size_t k = 0; k < rows; ++k) lerr = fmax(lerr, fabs(lb[k] - l1[k]));
    /* The observations must matter: the first draw of each differs between observations. */
    for (int i = 1; i < n_obs; ++i) spread = fmax(spread, fabs(tb[(size_t)i * n * D] - tb[0]));
    printf("%-6s %-7s %-11s %2d obs x %3d draws (%d per pass): max |theta diff| = %.2e, max |logq diff| = %.2e\n",
           family, embedding, solver ? solver : "", n_obs, n, sbi_estimator_sample_group(est, n), err, lerr);
    SBI_ASSERT(err <= tol);
    SBI_ASSERT(lerr <= tol);
    SBI_ASSERT(n_obs == 1 || spread > 1e-6);
    sbi_estimator_destroy(&est);
    free(x);
    free(tb);
    free(t1);
    free(lb);
    free(l1);
    free(rng);
}

int main(int argc, char **argv)
{
    static const char *families[] = {"affine", "nsf", "maf", "naf"};
    MPI_Init(&argc, &argv);
    PetscInitializeNoArguments();
    for (int f = 0; f < 4; ++f) {
        check(families[f], "mlp", NULL, 5, 7, 1e-10);  /* one pass of 5 observations */
        check(families[f], "mlp", NULL, 23, 7, 1e-10); /* three passes, the last one short */
        check(families[f], "mlp", NULL, 3, 100, 1e-10); /* too many draws to share a pass */
    }
    check("nsf", "conv1d", NULL, 6, 9, 1e-10);
    check("fmpe", "mlp", "midpoint", 5, 7, 1e-10);
    check("fmpe", "mlp", "midpoint", 23, 7, 1e-10);
    /* Other row counts change the gemm blocking, so the agreement above is
     * to rounding (1e-10), not bitwise.  The adaptive integrator chooses one
     * step size for the whole batch, so a batch agrees with one-by-one runs
     * to the integration tolerance only: at the default 1e-6 the random
     * velocity network here, with its time features up to sin(8 pi t), gives
     * differences of 4e-5 in theta and 3e-4 in log q; at 1e-9, 6e-8 and
     * 8e-7, held to 1e-5. */
    PetscOptionsSetValue(NULL, "-ts_rtol", "1e-9");
    PetscOptionsSetValue(NULL, "-ts_atol", "1e-9");
    check("fmpe", "mlp", "rk_adaptive", 5, 7, 1e-5);
    PetscOptionsClearValue(NULL, "-ts_rtol");
    PetscOptionsClearValue(NULL, "-ts_atol");
    int status = SBI_TEST_REPORT("flow_sample_batch");
    PetscFinalize();
    MPI_Finalize();
    return status;
}
