/* Finite-difference gradient checks for the double-precision build.
 *
 * A check perturbs one scalar p of the inputs or weights, re-evaluates a
 * scalar loss and compares the analytic derivative a with the numerical one
 * n through rel = |a - n| / max(GC_FLOOR, |a| + |n|).  n is the central
 * difference at step h, improved by one Richardson step with h / 2
 * (error O(h^4)).  Its round-off is about 1e-16 |L| / h, some 1e-12 for
 * losses of order one, so derivatives below GC_FLOOR = 1e-5 are in effect
 * compared absolutely, to GC_TOL * GC_FLOOR = 1e-11. */
#ifndef EXOSBI_GRADCHECK_H
#define EXOSBI_GRADCHECK_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "exosbi/core.h"
#include "exosbi/rng.h"

#define GC_TOL 1e-6
#define GC_STEP 1e-4
#define GC_FLOOR 1e-5

/* A scalar loss of whatever the context holds. */
typedef double (*gc_loss_fn)(void *ctx);

static inline double gc_numeric(gc_loss_fn f, void *ctx, double *p, double h)
{
    double p0 = *p, fp, fm, d1, d2;
    *p = p0 + h;
    fp = f(ctx);
    *p = p0 - h;
    fm = f(ctx);
    d1 = (fp - fm) / (2 * h);
    *p = p0 + h / 2;
    fp = f(ctx);
    *p = p0 - h / 2;
    fm = f(ctx);
    d2 = (fp - fm) / h;
    *p = p0;
    return (4 * d2 - d1) / 3;
}

static inline double gc_rel(double a, double n)
{
    double den = fabs(a) + fabs(n);
    return fabs(a - n) / (den > GC_FLOOR ? den : GC_FLOOR);
}

/* Worst mismatch over a group of checked scalars. */
typedef struct gc_stats {
    double worst, a, n;
    size_t idx, count;
} gc_stats;

static inline void gc_reset(gc_stats *s)
{
    s->worst = s->a = s->n = 0;
    s->idx = s->count = 0;
}

static inline void gc_add(gc_stats *s, size_t idx, double a, double n)
{
    double r = gc_rel(a, n);
    if (s->count == 0 || r > s->worst || r != r) {
        s->worst = r;
        s->idx = idx;
        s->a = a;
        s->n = n;
    }
    s->count++;
}

/* Print the group's worst index and both values; 1 when it passes. */
static inline int gc_report(const char *label, const gc_stats *s)
{
    int ok = s->worst < GC_TOL && s->worst == s->worst;
    printf("%-34s %6zu checked, max rel %.3e at %zu (analytic %.12e, numeric %.12e) %s\n", label, s->count, s->worst,
           s->idx, s->a, s->n, ok ? "ok" : "FAIL");
    return ok;
}

/* Fill v (n) with U(-scale, scale) from a Philox stream. */
static inline void gc_fill(double *v, size_t n, double scale, uint64_t seed)
{
    sbi_rng r;
    sbi_rng_init(&r, seed, 0, SBI_STREAM_AUGMENT, 0);
    for (size_t i = 0; i < n; ++i) v[i] = scale * (2 * sbi_rng_uniform(&r) - 1);
}

#endif
