/* The ODE integrators of family "fmpe": PETSc TSRK with error control and
 * the fixed-step midpoint rule.  The state of B rows is one array of doubles
 * [theta (B, D) | int_0^t div v (B)], the divergence part present only when
 * log q is wanted.
 *
 * The TS is made when the estimator is created: TSRK of type 5dp
 * (Dormand-Prince 5(4), the reference's dopri5), absolute and relative
 * tolerances 1e-6, first step 0.05, then TSSetFromOptions, so PETSc's -ts_*
 * options (from PETSC_OPTIONS or the command line PETSc was initialised
 * with) override any of them.  It needs PETSc initialised before
 * sbi_estimator_create, and the estimator destroyed before PetscFinalize.
 * PETSc sizes the integrator's work vectors on the first solve; a solve
 * with another row count (the last chunk of a draw) makes a new integrator
 * with the same settings. */
#include <petscts.h>

#include "flows/flows_impl.h"

#define FMPE_RTOL 1e-6
#define FMPE_ATOL 1e-6
#define FMPE_DT0 0.05
#define FMPE_MAX_STEPS 100000

/* PETSc error codes become SBI_ERR_INTERNAL naming the call. */
#define FMPE_CALL_PETSC(expr)                                                                            \
    do {                                                                                                 \
        PetscErrorCode fmpe__e = (expr);                                                                 \
        if (fmpe__e)                                                                                     \
            return sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "PETSc error %d in %s",    \
                              (int)fmpe__e, #expr);                                                      \
    } while (0)

/* rate = d state / dt at time t for B rows; reversed, t is s = 1 - t of the
 * flow and the rate changes sign. */
static void fmpe_rate(sbi__fmpe *f, double *rate, const double *state, double t, int B, int with_div)
{
    size_t n = (size_t)B * f->D;
    double sign = f->ode_reverse ? -1.0 : 1.0;
    for (size_t i = 0; i < n; ++i) f->theta[i] = (sbi_real)state[i];
    sbi__fmpe_velocity(f, f->vel, with_div ? f->div : NULL, f->theta, f->ode_reverse ? 1.0 - t : t, B);
    for (size_t i = 0; i < n; ++i) rate[i] = sign * (double)f->vel[i];
    if (with_div)
        for (int b = 0; b < B; ++b) rate[n + b] = sign * (double)f->div[b];
}

static PetscErrorCode ts_rhs(TS ts, PetscReal t, Vec U, Vec F, void *ctx)
{
    sbi__fmpe *f = ctx;
    const PetscScalar *u;
    PetscScalar *r;
    PetscCall(VecGetArrayRead(U, &u));
    PetscCall(VecGetArray(F, &r));
    fmpe_rate(f, r, u, (double)t, f->ode_B, f->ode_div);
    PetscCall(VecRestoreArray(F, &r));
    PetscCall(VecRestoreArrayRead(U, &u));
    return 0;
}

static int ts_create(sbi__fmpe *f)
{
    TS ts;
    FMPE_CALL_PETSC(TSCreate(PETSC_COMM_SELF, &ts));
    f->ts = ts;
    FMPE_CALL_PETSC(TSSetProblemType(ts, TS_NONLINEAR));
    FMPE_CALL_PETSC(TSSetType(ts, TSRK));
    FMPE_CALL_PETSC(TSRKSetType(ts, TSRK5DP));
    FMPE_CALL_PETSC(TSSetRHSFunction(ts, NULL, ts_rhs, f));
    FMPE_CALL_PETSC(TSSetTolerances(ts, FMPE_ATOL, NULL, FMPE_RTOL, NULL));
    FMPE_CALL_PETSC(TSSetMaxTime(ts, 1.0));
    FMPE_CALL_PETSC(TSSetMaxSteps(ts, FMPE_MAX_STEPS));
    FMPE_CALL_PETSC(TSSetExactFinalTime(ts, TS_EXACTFINALTIME_MATCHSTEP));
    FMPE_CALL_PETSC(TSSetTimeStep(ts, FMPE_DT0));
    FMPE_CALL_PETSC(TSSetFromOptions(ts));
    FMPE_CALL_PETSC(TSGetTimeStep(ts, &f->dt0));
    return 0;
}

int sbi__fmpe_ode_setup(sbi__fmpe *f)
{
    PetscBool up;
    FMPE_CALL_PETSC(PetscInitialized(&up));
    if (f->solver != SBI__ODE_RK_ADAPTIVE || !up) return 0;
    SBI_CALL(ts_create(f));
    return 0;
}

void sbi__fmpe_ode_destroy(sbi__fmpe *f)
{
    PetscBool done = PETSC_FALSE;
    if (!f->ts && !f->u) return;
    /* After PetscFinalize the objects are gone with PETSc's memory. */
    if (PetscFinalized(&done) == 0 && done) return;
    (void)VecDestroy(&f->u);
    (void)TSDestroy(&f->ts);
}

static int integrate_ts(sbi__fmpe *f, int n)
{
    TSConvergedReason reason;
    if (n != f->ts_n) {
        /* TSReset leaves work vectors of the old length behind (the error
         * estimate's among them), so a new length gets a new integrator. */
        FMPE_CALL_PETSC(VecDestroy(&f->u));
        FMPE_CALL_PETSC(TSDestroy(&f->ts));
        SBI_CALL(ts_create(f));
        FMPE_CALL_PETSC(VecCreateSeqWithArray(PETSC_COMM_SELF, 1, n, f->state, &f->u));
        f->ts_n = n;
    }
    FMPE_CALL_PETSC(TSSetTime(f->ts, 0.0));
    FMPE_CALL_PETSC(TSSetStepNumber(f->ts, 0));
    FMPE_CALL_PETSC(TSSetTimeStep(f->ts, f->dt0));
    FMPE_CALL_PETSC(TSSolve(f->ts, f->u));
    FMPE_CALL_PETSC(TSGetConvergedReason(f->ts, &reason));
    SBI_CHECK(reason > 0, SBI_ERR_INTERNAL, "fmpe: the ODE integration stopped before t = 1 (%s)",
              TSConvergedReasons[reason]);
    return 0;
}

/* theta_{k+1} = theta_k + h v(theta_k + h/2 v(theta_k, t_k), t_k + h/2). */
static void integrate_midpoint(sbi__fmpe *f, int n, int B, int with_div)
{
    double h = 1.0 / f->steps;
    for (int s = 0; s < f->steps; ++s) {
        double t = s * h;
        fmpe_rate(f, f->rate, f->state, t, B, with_div);
        for (int i = 0; i < n; ++i) f->stage[i] = f->state[i] + 0.5 * h * f->rate[i];
        fmpe_rate(f, f->rate, f->stage, t + 0.5 * h, B, with_div);
        for (int i = 0; i < n; ++i) f->state[i] += h * f->rate[i];
    }
}

int sbi__fmpe_integrate(sbi__fmpe *f, int B, int with_div, int reverse)
{
    int n = B * f->D + (with_div ? B : 0);
    f->ode_B = B;
    f->ode_div = with_div;
    f->ode_reverse = reverse;
    if (f->solver == SBI__ODE_MIDPOINT) {
        integrate_midpoint(f, n, B, with_div);
        return 0;
    }
    SBI_CHECK(f->ts, SBI_ERR_INPUT,
              "fmpe: ode_solver \"rk_adaptive\" needs PETSc initialised (PetscInitializeNoArguments) before the "
              "estimator is created; \"midpoint\" does not");
    SBI_CALL(integrate_ts(f, n));
    return 0;
}
