/* Data-parallel gradients: the full-batch gradient of -mean log q computed on
 * one rank equals the sum over ranks of the sharded gradients (each row weighted
 * by -1/B), reduced as the trainer does (sbi_grad_sum), and that sum is exact
 * on integer-valued buffers of lengths that do not divide into the ranks'
 * slices, equal on every rank and the same bits when repeated.  Built in
 * double precision; run at 1, 2 and 4 ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/estimator.h"
#include "exosbi/optim.h"
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
        sbi_grad_sum *gs = NULL;
        SBI_ASSERT_OK(sbi_grad_sum_create(&c, n, &gs));
        SBI_ASSERT_OK(sbi_grad_sum_run(gs, sbi_estimator_grads(est)));
        sbi_grad_sum_free(gs);
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
    /* Exact sums: entry i of rank r is i + 1000 r + 1, so the sum is
     * size (i + 1) + 1000 size (size - 1) / 2; twice, the same buffers. */
    {
        /* Then as if on nodes of 1 and 2 ranks (the node leaders add the
         * node sums with MPI_Allreduce), and as if no shared window could
         * be had (MPI_Allreduce alone). */
        const size_t lens[6] = {1, 37, 4099, 37, 4099, 4099};
        const int grouped[6] = {0, 0, 0, 1, 2, -1};
        for (int k = 0; k < 6; ++k) {
            sbi_grad_sum *gs = NULL;
            sbi_real *v = malloc(sizeof *v * lens[k]), *first = malloc(sizeof *first * lens[k]);
            double bad = 0.0, diff = 0.0, lo = 0.0, hi = 0.0;
            if (!grouped[k])
                SBI_ASSERT_OK(sbi_grad_sum_create(&c, lens[k], &gs));
            else
                SBI_ASSERT_OK(sbi__grad_sum_create_grouped(&c, lens[k], grouped[k], &gs));
            for (int rep = 0; rep < 2; ++rep) {
                for (size_t i = 0; i < lens[k]; ++i) v[i] = (sbi_real)((double)i + 1000.0 * c.rank + 1.0);
                SBI_ASSERT_OK(sbi_grad_sum_run(gs, v));
                for (size_t i = 0; i < lens[k]; ++i) {
                    const double want = c.size * ((double)i + 1.0) + 1000.0 * c.size * (c.size - 1) / 2.0;
                    bad = fmax(bad, fabs((double)v[i] - want));
                    if (rep) diff = fmax(diff, fabs((double)v[i] - (double)first[i]));
                }
                memcpy(first, v, sizeof *v * lens[k]);
            }
            /* The same on every rank: the smallest and largest of a checksum. */
            {
                double sum = 0.0;
                for (size_t i = 0; i < lens[k]; ++i) sum += (double)v[i] * (double)(i % 7 + 1);
                MPI_Allreduce(&sum, &lo, 1, MPI_DOUBLE, MPI_MIN, c.comm);
                MPI_Allreduce(&sum, &hi, 1, MPI_DOUBLE, MPI_MAX, c.comm);
            }
            SBI_ASSERT(bad == 0.0);
            SBI_ASSERT(diff == 0.0);
            SBI_ASSERT(lo == hi);
            sbi_grad_sum_free(gs);
            free(v);
            free(first);
        }
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
