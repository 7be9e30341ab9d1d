/* Throughput of the affine estimator (default architecture, single precision):
 *   training: forward + backward (+ AdamW) steps of 256 rows, D = 10, X = 20;
 *   sampling: 10,000 posterior draws for one observation.
 * Prints samples per second; run with OPENBLAS_NUM_THREADS=1 for per-core
 * numbers.  Usage: bench_flow [D X batch steps] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "exosbi/estimator.h"
#include "exosbi/optim.h"

static int run(int D, int X, int batch, int steps)
{
    enum { N_SAMPLES = 10000 };
    sbi_estimator_config cfg;
    sbi_estimator est = NULL;
    sbi_real *x, *theta, *logq, *dlogq, *m, *v, *draws, *draws_logq;
    size_t n;
    sbi_rng r;
    double t0, t_fb, t_step, t_sample;
    SBI_CALL(sbi_estimator_config_default(&cfg, "affine", D, X));
    SBI_CHECK(batch <= cfg.max_batch, SBI_ERR_INPUT, "batch must be <= %d", cfg.max_batch);
    SBI_CALL(sbi_estimator_create(&cfg, &est));
    n = sbi_estimator_n_weights(est);
    SBI_MALLOC(x, (size_t)batch * X);
    SBI_MALLOC(theta, (size_t)batch * D);
    SBI_MALLOC(logq, batch);
    SBI_MALLOC(dlogq, batch);
    SBI_CALLOC(m, n);
    SBI_CALLOC(v, n);
    SBI_MALLOC(draws, (size_t)N_SAMPLES * D);
    SBI_MALLOC(draws_logq, N_SAMPLES);
    sbi_rng_init(&r, 1, 0, SBI_STREAM_AUGMENT, 0);
    for (size_t i = 0; i < (size_t)batch * X; ++i) x[i] = (sbi_real)sbi_rng_normal(&r);
    for (size_t i = 0; i < (size_t)batch * D; ++i) theta[i] = (sbi_real)sbi_rng_normal(&r);
    for (int b = 0; b < batch; ++b) dlogq[b] = (sbi_real)(-1.0 / batch);
    printf("affine estimator: D=%d X=%d E=%d, %d transforms, hidden %dx%d, embedding %dx%d, %zu weights\n", D, X,
           cfg.embed_dim, cfg.n_transforms, cfg.hidden, cfg.hidden_layers, cfg.embed_hidden, cfg.embed_layers, n);

    /* Warm up, then forward + backward only. */
    for (int s = 0; s < 10; ++s) {
        sbi_estimator_zero_grad(est);
        SBI_CALL(sbi_estimator_forward(est, x, theta, batch, logq));
        SBI_CALL(sbi_estimator_backward(est, dlogq, batch));
    }
    t0 = sbi_wtime();
    for (int s = 0; s < steps; ++s) {
        sbi_estimator_zero_grad(est);
        SBI_CALL(sbi_estimator_forward(est, x, theta, batch, logq));
        SBI_CALL(sbi_estimator_backward(est, dlogq, batch));
    }
    t_fb = sbi_wtime() - t0;
    /* Whole optimiser steps: forward, backward, clipping and AdamW. */
    t0 = sbi_wtime();
    for (int s = 0; s < steps; ++s) {
        sbi_estimator_zero_grad(est);
        SBI_CALL(sbi_estimator_forward(est, x, theta, batch, logq));
        SBI_CALL(sbi_estimator_backward(est, dlogq, batch));
        sbi_clip_grad_norm(sbi_estimator_grads(est), n, 5.0);
        sbi_adamw_step(sbi_estimator_weights(est), sbi_estimator_grads(est), m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0.0,
                       s + 1);
    }
    t_step = sbi_wtime() - t0;
    printf("train forward+backward: %d steps of %d rows in %.3f s: %.0f samples/s (%.3f ms/step)\n", steps, batch,
           t_fb, (double)steps * batch / t_fb, 1e3 * t_fb / steps);
    printf("train full step (+clip+AdamW): %.0f samples/s (%.3f ms/step)\n", (double)steps * batch / t_step,
           1e3 * t_step / steps);

    sbi_rng_init(&r, 2, 0, SBI_STREAM_SAMPLE, 0);
    SBI_CALL(sbi_estimator_sample(est, x, N_SAMPLES, &r, draws, draws_logq));
    t0 = sbi_wtime();
    for (int rep = 0; rep < 5; ++rep) SBI_CALL(sbi_estimator_sample(est, x, N_SAMPLES, &r, draws, draws_logq));
    t_sample = (sbi_wtime() - t0) / 5;
    printf("sampling: %d draws (with logq) for one observation in %.4f s: %.0f samples/s\n", N_SAMPLES, t_sample,
           N_SAMPLES / t_sample);

    sbi_estimator_destroy(&est);
    free(x);
    free(theta);
    free(logq);
    free(dlogq);
    free(m);
    free(v);
    free(draws);
    free(draws_logq);
    return 0;
}

int main(int argc, char **argv)
{
    int D = 10, X = 20, batch = 256, steps = 200, rc;
    MPI_Init(&argc, &argv);
    if (argc == 5) {
        D = atoi(argv[1]);
        X = atoi(argv[2]);
        batch = atoi(argv[3]);
        steps = atoi(argv[4]);
    }
    rc = run(D, X, batch, steps);
    if (rc) fprintf(stderr, "bench_flow: %s\n", sbi_error_message());
    MPI_Finalize();
    return rc;
}
