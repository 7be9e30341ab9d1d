/* Data-parallel gradients: the full-batch gradient of -mean log q computed on
 * one rank equals the sum over ranks of the sharded gradients (each row weighted
 * by -1/B), reduced with one MPI_Allreduce of the flat gradient buffer.  Built in
 * double precision; run at 1, 2 and 4 ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "exosbi/rng.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    sbi_comm c;
    sbi_estimator_config cfg;
    sbi_estimator est = NULL;
    const int B = 24, D = 4, X = 6;
    sbi_real *x, *t, *logq, *dlogq, *full;
    size_t n;
    double worst = 0.0;

    MPI_Init(&argc, &argv);
    sbi_comm_init(&c, MPI_COMM_WORLD);
    SBI_ASSERT_OK(sbi_estimator_config_default(&cfg, "affine", D, X));
    cfg.max_batch = B;
    cfg.seed = 3;
    SBI_ASSERT_OK(sbi_estimator_create(&cfg, &est));
    n = sbi_estimator_n_weights(est);
    x = malloc(sizeof *x * B * X);
    t = malloc(sizeof *t * B * D);
    logq = malloc(sizeof *logq * B);
    dlogq = malloc(sizeof *dlogq * B);
    full = malloc(sizeof *full * n);
    {
        /* Perturb the weights so that the zero-initialised layers carry gradient too. */
        sbi_rng r;
        sbi_real *w = sbi_estimator_weights(est);
        sbi_rng_init(&r, 1, 0, SBI_STREAM_INIT, 9);
        for (size_t i = 0; i < n; ++i) w[i] += (sbi_real)(0.05 * sbi_rng_normal(&r));
        for (int i = 0; i < B * X; ++i) x[i] = (sbi_real)sbi_rng_normal(&r);
        for (int i = 0; i < B * D; ++i) t[i] = (sbi_real)sbi_rng_normal(&r);
    }
    for (int i = 0; i < B; ++i) dlogq[i] = (sbi_real)(-1.0 / B);

    /* Every rank: the full batch. */
    sbi_estimator_zero_grad(est);
    SBI_ASSERT_OK(sbi_estimator_forward(est, x, t, B, logq));
    SBI_ASSERT_OK(sbi_estimator_backward(est, dlogq, B));
    memcpy(full, sbi_estimator_grads(est), n * sizeof *full);

    /* Each rank its shard, then one Allreduce. */
    {
        sbi_shard s = sbi_shard_block(B, c.rank, c.size);
        sbi_estimator_zero_grad(est);
        if (s.count > 0) {
            SBI_ASSERT_OK(sbi_estimator_forward(est, x + s.offset * X, t + s.offset * D, (int)s.count, logq));
            SBI_ASSERT_OK(sbi_estimator_backward(est, dlogq, (int)s.count));
        }
        MPI_Allreduce(MPI_IN_PLACE, sbi_estimator_grads(est), (int)n, MPI_DOUBLE, MPI_SUM, c.comm);
    }
    {
        const sbi_real *g = sbi_estimator_grads(est);
        double scale = 0.0;
        for (size_t i = 0; i < n; ++i) scale = fmax(scale, fabs(full[i]));
        for (size_t i = 0; i < n; ++i) worst = fmax(worst, fabs(g[i] - full[i]) / (scale + 1e-300));
        if (c.rank == 0) printf("%d ranks: %zu weights, max |sharded - full| / max|grad| = %.3g\n", c.size, n, worst);
        SBI_ASSERT(scale > 0);
        SBI_ASSERT(worst < 1e-12);
    }
    sbi_estimator_destroy(&est);
    free(x);
    free(t);
    free(logq);
    free(dlogq);
    free(full);
    {
        int fails = sbi_test_failures, all = 0;
        MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, c.comm);
        sbi_test_failures = all;
        int rc = c.rank == 0 ? SBI_TEST_REPORT("train_grad_allreduce") : (all ? 1 : 0);
        MPI_Finalize();
        return rc;
    }
}
