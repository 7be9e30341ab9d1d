/* Training and sampling throughput on the reference shape, single
 * precision:
 *   233-value spectra -> conv1d(1 -> 32, k5) + ReLU + maxpool 2 ->
 *   conv1d(32 -> 64, k5) + ReLU + maxpool 2 -> linear(-> 64) -> neural spline
 *   flow with 5 transforms, 50 hidden units (two-block residual
 *   conditioners), 10 bins, 8 parameters; batches of 200 rows.
 * Prints training samples/s of the data-parallel step (forward + backward +
 * gradient sum over the ranks + clipping + AdamW, BATCH / size rows per
 * rank) with the CPU time of each phase, and on several ranks the time of
 * the gradient sum alone (sbi_grad_sum, which the trainer uses, against
 * MPI_Allreduce, after a barrier); on one rank also a per-layer breakdown
 * measured on standalone copies of the layers with the same shapes, conv1's
 * fused forward in each form the build allows (the encoder runs the first
 * one listed) beside the naive direct loops, and posterior samples/s for 10,000
 * draws.  Layer timings are CPU time of the thread, which a shared machine
 * disturbs less than the wall clock.  BLAS runs one thread per rank; run
 * under scripts/mpirun -n 2 for two ranks.
 * Usage: bench_train_reference [steps] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exosbi/estimator.h"
#include "exosbi/optim.h"
#include "flows/flows_impl.h"

enum { X = 233, D = 8, E = 64, BATCH = 200, N_TRANSFORMS = 5, HIDDEN = 50, BINS = 10, N_SAMPLES = 10000 };

static void fill_normal(sbi_real *v, size_t n, sbi_rng *r)
{
    for (size_t i = 0; i < n; ++i) v[i] = (sbi_real)sbi_rng_normal(r);
}

/* printf on rank 0 only (llm.c's printf0). */
#define printf0(comm, ...)                           \
    do {                                             \
        if ((comm)->rank == 0) printf(__VA_ARGS__);  \
    } while (0)

/* CPU seconds of this thread: on a shared machine the wall clock also counts
 * the time other processes hold the core, this clock does not. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds per call of a timed block, over reps repetitions after one warm-up. */
#define TIME_PER_CALL(result, reps, block)          \
    do {                                            \
        double t0_;                                 \
        block;                                      \
        t0_ = cpu_seconds();                        \
        for (int rep_ = 0; rep_ < (reps); ++rep_) { \
            block;                                  \
        }                                           \
        (result) = (cpu_seconds() - t0_) / (reps);  \
    } while (0)

static void row(const char *name, double fwd, double bwd, double total)
{
    printf("  %-28s %8.3f ms %8.3f ms %6.1f%%\n", name, 1e3 * fwd, 1e3 * bwd, 100 * (fwd + bwd) / total);
}

/* Standalone layers of the reference shape, timed one at a time. */
static int breakdown(int reps, double step_time)
{
    sbi_layout lay;
    sbi_conv_encoder c;
    sbi__coupling cp[N_TRANSFORMS];
    int order[N_TRANSFORMS * D];
    sbi_real *x, *u, *u2, *du, *du2, *e, *ld, *dld, *head, *s0, *es0, *dhead;
    sbi_real *hw, *dhw, *hb, *dhb, *c1;
    double f, b, total = 0;
    sbi_rng r;
    int rc = 0;
    sbi__make_orders(order, N_TRANSFORMS, D, 0);
    sbi_layout_init(&lay, BATCH);
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) SBI_CALL(sbi_layout_alloc(&lay));
        SBI_CALL(sbi_conv_encoder_layout(&c, &lay, "embed", X, 32, 64, 5, 2, E));
        for (int k = 0; k < N_TRANSFORMS; ++k)
            rc |= sbi__spline_coupling_layout(&cp[k], &lay, "flow", D, E, order + k * D, D / 2, order + k * D + D / 2,
                                              HIDDEN, 2, BINS, 3.0f);
        hw = sbi_layout_weight(&lay, &dhw, 2 * D * E, E, SBI_INIT_UNIFORM, "head_w");
        hb = sbi_layout_weight(&lay, &dhb, 2 * D, E, SBI_INIT_UNIFORM, "head_b");
        x = sbi_layout_act(&lay, NULL, X);
        u = sbi_layout_act(&lay, &du, D);
        u2 = sbi_layout_act(&lay, &du2, D);
        ld = sbi_layout_act(&lay, &dld, 1);
        head = sbi_layout_act(&lay, &dhead, 2 * D);
        s0 = sbi_layout_act(&lay, NULL, D);
        es0 = sbi_layout_act(&lay, NULL, D);
        c1 = sbi_layout_act(&lay, NULL, (X - 4) / 2 * 64);
    }
    SBI_CHECK(!rc, SBI_ERR_INTERNAL, "coupling layout failed");
    SBI_CALL(sbi_layout_finish(&lay));
    sbi_layout_init_weights(&lay, 1);
    sbi_rng_init(&r, 3, 0, SBI_STREAM_AUGMENT, 0);
    fill_normal(x, (size_t)BATCH * X, &r);
    fill_normal(u, (size_t)BATCH * D, &r);
    fill_normal(du2, (size_t)BATCH * D, &r);
    fill_normal(dld, BATCH, &r);
    fill_normal(c.dout, (size_t)BATCH * E, &r);
    e = c.out;

    printf("per-layer time per batch of %d rows (standalone copies; forward, backward, share of the full step):\n",
           BATCH);
#define STAGE(name, fwd_block, bwd_block)       \
    TIME_PER_CALL(f, reps, fwd_block);          \
    TIME_PER_CALL(b, reps, bwd_block);          \
    row(name, f, b, step_time);                 \
    total += f + b;
    sbi_conv_encoder_forward(&c, x, BATCH);
    STAGE("encoder conv0+relu+pool0",
          sbi_conv1d_pool_1ch_forward(c.q0, c.arg0, c.xin, c.w0, c.b0, BATCH, X, 32, 5, 2),
          sbi_conv1d_pool_1ch_backward(c.dw0, c.db0, c.dq0, c.q0, c.arg0, c.xin, BATCH, X, 32, 5, 2));
    STAGE("encoder conv1+relu+pool1",
          sbi_conv1d_pool_forward(c.q1, c.arg1, c.scratch, c.q0, c.w1, c.b1, BATCH, c.Q1, 32, 64, 5, 2),
          sbi_conv1d_pool_backward(c.dq0, c.dw1, c.db1, c.scratch, c.dq1, c.q1, c.arg1, c.q0, c.w1, BATCH, c.Q1,
                                   32, 64, 5, 2));
    STAGE("encoder linear (3520->64)", sbi_linear_forward(c.out, c.q1, c.wp, c.bp, BATCH, c.Q2 * 64, E),
          sbi_linear_backward(c.dq1, c.dwp, c.dbp, c.dout, c.q1, c.wp, BATCH, c.Q2 * 64, E));
    STAGE("flow leading affine", (sbi_linear_forward(head, e, hw, hb, BATCH, E, 2 * D),
                                  sbi__affine_forward(u2, s0, es0, ld, u, head, 2 * D, NULL, D, BATCH, D)),
          (sbi__affine_backward(du, dhead, du2, dld, u, s0, es0, NULL, D, BATCH, D),
           sbi_linear_backward(c.dout, dhw, dhb, dhead, e, hw, BATCH, E, 2 * D)));
    for (int k = 0; k < N_TRANSFORMS; ++k) {
        char name[40];
        snprintf(name, sizeof(name), "flow spline coupling %d", k);
        STAGE(name, sbi__coupling_forward(&cp[k], u2, ld, u, e, E, BATCH),
              sbi__coupling_backward(&cp[k], du, c.dout, du2, dld, u, BATCH));
    }
#undef STAGE
    printf("  %-28s %8.3f ms of the %.3f ms step (the rest: latent density, zeroing, clipping, AdamW)\n",
           "sum of layers", 1e3 * total, 1e3 * step_time);

    /* The fused kernel in the form the encoder runs and in the others the
     * build allows, against the naive loops. */
    TIME_PER_CALL(b, 2, sbi_conv1d_forward_ref(c1, c.q0, c.w1, c.b1, BATCH, c.Q1, 32, 64, 5));
    printf("conv1 forward (fused conv + relu + pool), %s as the encoder runs it:",
           sbi_conv1d_pool_form_name(sbi_conv1d_pool_form(SBI_CONV_AUTO, 32, 64, 5, 2)));
    for (int form = SBI_CONV_WINOGRAD; form >= SBI_CONV_GEMM; --form) {
        if (sbi_conv1d_pool_form(form, 32, 64, 5, 2) != form) continue;
        TIME_PER_CALL(f, reps,
                      sbi_conv1d_pool_forward_form(c.q1, c.arg1, c.scratch, c.q0, c.w1, c.b1, BATCH, c.Q1, 32, 64, 5,
                                                   2, form));
        printf(" %s %.3f ms,", sbi_conv1d_pool_form_name(form), 1e3 * f);
    }
    printf(" naive convolution loops %.3f ms\n", 1e3 * b);
    /* The backward without the input gradient (dinp NULL) is the weight
     * gradient with the ReLU/pool routing; the input gradient is the rest.
     * Winograd (the transpose of the forward, as the encoder runs it) and
     * the sparse sums over the routed entries (the other forms). */
    for (int form = SBI_CONV_WINOGRAD; form >= SBI_CONV_DIRECT; --form) {
        int ran = sbi_conv1d_pool_form(form, 32, 64, 5, 2);
        if (form == SBI_CONV_WINOGRAD && ran != form) continue;
        TIME_PER_CALL(f, reps,
                      sbi_conv1d_pool_backward_form(c.dq0, c.dw1, c.db1, c.scratch, c.dq1, c.q1, c.arg1, c.q0, c.w1,
                                                    BATCH, c.Q1, 32, 64, 5, 2, form));
        TIME_PER_CALL(b, reps,
                      sbi_conv1d_pool_backward_form(NULL, c.dw1, c.db1, c.scratch, c.dq1, c.q1, c.arg1, c.q0, c.w1,
                                                    BATCH, c.Q1, 32, 64, 5, 2, form));
        printf("conv1 backward, %-16s %.3f ms = weight gradient (with the relu/pool routing) %.3f ms + input "
               "gradient %.3f ms\n",
               ran == SBI_CONV_WINOGRAD ? "winograd F(4,5):" : "sparse sums:", 1e3 * f, 1e3 * b, 1e3 * (f - b));
    }
    sbi_layout_free(&lay);
    return 0;
}

/* The data-parallel training step of the trainer: each rank takes BATCH /
 * size rows, one MPI_Allreduce of the gradient, clipping and AdamW. */
static int run(const sbi_comm *comm, int steps)
{
    sbi_estimator_config cfg;
    sbi_estimator est = NULL;
    sbi_real *x, *theta, *logq, *dlogq, *m, *v, *draws, *draws_logq, *g;
    sbi_grad_sum *gs = NULL;
    size_t n;
    sbi_rng r;
    int B = BATCH / comm->size;
    double t0, t_step, t_sample, cpu[6] = {0}, tc;
    SBI_CALL(sbi_estimator_config_default(&cfg, "nsf", D, X));
    strcpy(cfg.embedding, "conv1d");
    cfg.embed_dim = E;
    cfg.n_transforms = N_TRANSFORMS;
    cfg.hidden = HIDDEN;
    cfg.hidden_layers = 2;
    cfg.n_bins = BINS;
    cfg.max_batch = BATCH;
    SBI_CALL(sbi_estimator_create(&cfg, &est));
    SBI_CALL(sbi_grad_sum_create(comm, sbi_estimator_n_weights(est), &gs));
    n = sbi_estimator_n_weights(est);
    g = sbi_estimator_grads(est);
    SBI_MALLOC(x, (size_t)BATCH * X);
    SBI_MALLOC(theta, (size_t)BATCH * D);
    SBI_MALLOC(logq, BATCH);
    SBI_MALLOC(dlogq, BATCH);
    SBI_CALLOC(m, n);
    SBI_CALLOC(v, n);
    SBI_MALLOC(draws, (size_t)N_SAMPLES * D);
    SBI_MALLOC(draws_logq, N_SAMPLES);
    sbi_rng_init(&r, 1, (uint64_t)comm->rank, SBI_STREAM_AUGMENT, 0);
    fill_normal(x, (size_t)BATCH * X, &r);
    fill_normal(theta, (size_t)BATCH * D, &r);
    for (int b = 0; b < BATCH; ++b) dlogq[b] = (sbi_real)(-1.0 / BATCH);
    printf0(comm, "nsf + conv1d: X=%d D=%d E=%d, %d transforms, hidden %dx%d, %d bins, batch %d, %zu weights\n", X, D,
            E, cfg.n_transforms, cfg.hidden, cfg.hidden_layers, cfg.n_bins, BATCH, n);

    for (int s = 0; s < 3; ++s) {
        sbi_estimator_zero_grad(est);
        SBI_CALL(sbi_estimator_forward(est, x, theta, B, logq));
        SBI_CALL(sbi_estimator_backward(est, dlogq, B));
    }
    SBI_CALL_MPI(MPI_Barrier(comm->comm));
    t0 = sbi_wtime();
    for (int s = 0; s < steps; ++s) {
        tc = cpu_seconds();
        sbi_estimator_zero_grad(est);
        cpu[0] += cpu_seconds() - tc;
        tc = cpu_seconds();
        SBI_CALL(sbi_estimator_forward(est, x, theta, B, logq));
        cpu[1] += cpu_seconds() - tc;
        tc = cpu_seconds();
        SBI_CALL(sbi_estimator_backward(est, dlogq, B));
        cpu[2] += cpu_seconds() - tc;
        tc = cpu_seconds();
        SBI_CALL(sbi_grad_sum_run(gs, g));
        cpu[3] += cpu_seconds() - tc;
        tc = cpu_seconds();
        sbi_clip_grad_norm(g, n, 5.0);
        cpu[4] += cpu_seconds() - tc;
        tc = cpu_seconds();
        sbi_adamw_step(sbi_estimator_weights(est), g, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0.0, s + 1);
        cpu[5] += cpu_seconds() - tc;
    }
    SBI_CALL_MPI(MPI_Barrier(comm->comm));
    t_step = (sbi_wtime() - t0) / steps;
    tc = cpu[0] + cpu[1] + cpu[2] + cpu[3] + cpu[4] + cpu[5];
    printf0(comm, "training on %d rank(s) of %d rows: %d steps, %.3f ms/step wall: %.0f samples/s (%.0f per rank)\n",
            comm->size, B, steps, 1e3 * t_step, BATCH / t_step, BATCH / t_step / comm->size);
    printf0(comm,
            "  rank 0 CPU time per step %.3f ms (%.0f samples/s per core): zero_grad %.3f, forward %.3f, backward "
            "%.3f, allreduce %.3f, clip %.3f, adamw %.3f ms\n",
            1e3 * tc / steps, B * steps / tc, 1e3 * cpu[0] / steps, 1e3 * cpu[1] / steps, 1e3 * cpu[2] / steps,
            1e3 * cpu[3] / steps, 1e3 * cpu[4] / steps, 1e3 * cpu[5] / steps);
    if (comm->size > 1) {
        double t_gs = 0.0, t_ar = 0.0, t1;
        for (int s = 0; s < steps; ++s) {
            SBI_CALL_MPI(MPI_Barrier(comm->comm));
            t1 = sbi_wtime();
            SBI_CALL(sbi_grad_sum_run(gs, g));
            t_gs += sbi_wtime() - t1;
            SBI_CALL_MPI(MPI_Barrier(comm->comm));
            t1 = sbi_wtime();
            SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, comm->comm));
            t_ar += sbi_wtime() - t1;
        }
        printf0(comm, "  gradient sum alone (%zu floats, after a barrier, wall): sbi_grad_sum %.3f ms, MPI_Allreduce "
                      "%.3f ms\n", n, 1e3 * t_gs / steps, 1e3 * t_ar / steps);
    }
    if (comm->size == 1) {
        SBI_CALL(breakdown(steps, tc / steps));

        sbi_rng_init(&r, 2, 0, SBI_STREAM_SAMPLE, 0);
        SBI_CALL(sbi_estimator_sample(est, x, N_SAMPLES, &r, draws, draws_logq));
        t0 = sbi_wtime();
        tc = cpu_seconds();
        for (int rep = 0; rep < 5; ++rep) SBI_CALL(sbi_estimator_sample(est, x, N_SAMPLES, &r, draws, draws_logq));
        tc = (cpu_seconds() - tc) / 5;
        t_sample = (sbi_wtime() - t0) / 5;
        printf("sampling: %d draws (with logq) for one observation in %.4f s wall, %.4f s CPU: %.0f samples/s "
               "(%.0f per CPU second)\n",
               N_SAMPLES, t_sample, tc, N_SAMPLES / t_sample, N_SAMPLES / tc);
    }

    sbi_grad_sum_free(gs);
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
    int steps = argc > 1 ? atoi(argv[1]) : 30, rc;
    sbi_comm comm;
    MPI_Init(&argc, &argv);
    openblas_set_num_threads(1); /* per-core numbers: one BLAS thread per rank, as the CLI */
    rc = sbi_comm_init(&comm, MPI_COMM_WORLD);
    if (!rc) rc = run(&comm, steps > 0 ? steps : 30);
    if (rc) {
        fprintf(stderr, "bench_train_reference: %s\n", sbi_error_message());
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    return rc;
}
