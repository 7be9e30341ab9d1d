/* Priors and parameter spaces.
 *
 * Every bounded prior is handled through two functions of physical x: the log
 * prior mass below x (log F) and above x (log S).  The cube value is F, the
 * unconstrained value is log F - log S = logit(F).  Computing both tails
 * directly, instead of S = 1 - F, keeps full relative precision at both ends
 * of the support, and the inverse maps pick whichever tail is smaller.
 *
 * The normal tail functions work in log space (log Q(t), Q = 1 - Phi), so a
 * truncated normal whose interval lies far in a tail still has finite cube and
 * unconstrained values.
 */
#include "exosbi/task.h"

#include <float.h>
#include <math.h>

#define SBI_SQRT1_2 0.70710678118654752440
#define SBI_LOG_SQRT_2PI 0.91893853320467274178
#define SBI_SQRT_2PI 2.50662827463100050242
#define SBI_LOG_HALF (-0.69314718055994530942)

const char *const sbi_split_names[SBI_N_SPLITS] = {"train", "validation", "test"};

/* ---- standard normal ----------------------------------------------------- */

double sbi_normal_cdf(double x) { return 0.5 * erfc(-x * SBI_SQRT1_2); }

/* Acklam's rational approximation (relative error 1.2e-9) for p in (0, 0.5],
 * followed by one Halley step on Phi(x) - p, which brings it to rounding
 * level.  The residual is formed with erf near the centre and with erfc in
 * the tail so that it carries relative, not absolute, precision. */
static double normal_quantile_lower(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    const double p_low = 0.02425;
    double x, e, u;
    if (p <= 0.0) return -INFINITY;
    if (p < p_low) {
        double q = sqrt(-2.0 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
        e = 0.5 * erfc(-x * SBI_SQRT1_2) - p;
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
        e = 0.5 * erf(x * SBI_SQRT1_2) - q;
    }
    u = e * SBI_SQRT_2PI * exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}

double sbi_normal_quantile(double p)
{
    if (isnan(p)) return NAN;
    if (p <= 0.5) return normal_quantile_lower(p);
    if (p >= 1.0) return INFINITY;
    return -normal_quantile_lower(1.0 - p); /* 1 - p is exact for p in [0.5, 1] */
}

/* log Q(t), Q(t) = 1 - Phi(t), accurate for every t.  Beyond t = 36 erfc is
 * close to underflow and the asymptotic series of the Mills ratio takes over
 * (its first omitted term is below 1e-16 there). */
static double log_q(double t)
{
    if (t < 0.0) return log1p(-0.5 * erfc(-t * SBI_SQRT1_2));
    if (t < 36.0) return log(0.5 * erfc(t * SBI_SQRT1_2));
    if (isinf(t)) return -INFINITY;
    {
        double r = 1.0 / (t * t);
        double s = r * (-1.0 + r * (3.0 + r * (-15.0 + r * (105.0 + r * (-945.0 + r * 10395.0)))));
        return -0.5 * t * t - log(t) - SBI_LOG_SQRT_2PI + log1p(s);
    }
}

/* The t with log Q(t) = lq. */
static double inv_log_q(double lq)
{
    if (lq >= 0.0) return -INFINITY;
    if (lq >= SBI_LOG_HALF) return sbi_normal_quantile(-expm1(lq));
    if (lq > -700.0) return -normal_quantile_lower(exp(lq));
    if (isinf(lq)) return INFINITY;
    {
        /* Far tail: fixed-point start from the leading asymptotics, then
         * Newton on log Q, whose slope is -phi(t) / Q(t). */
        double t = sqrt(-2.0 * lq);
        for (int i = 0; i < 4; ++i) t = sqrt(2.0 * (-lq - log(t) - SBI_LOG_SQRT_2PI));
        for (int i = 0; i < 6; ++i) {
            double lqt = log_q(t);
            double slope = -exp(-0.5 * t * t - SBI_LOG_SQRT_2PI - lqt);
            double step = (lqt - lq) / slope;
            t -= step;
            if (fabs(step) <= 1e-16 * t) break;
        }
        return t;
    }
}

/* log(Phi(hi) - Phi(lo)) for lo <= hi, without cancellation in either tail.
 * A narrow interval uses the expansion around its midpoint m, width d:
 *   phi(m) d [1 + He2(m) d^2 / 24 + He4(m) d^4 / 1920 + ...],
 * whose first omitted term is below 1e-22 for d max(1, |m|) < 1e-3. */
static double log_phi_diff(double lo, double hi)
{
    double d = hi - lo, m = 0.5 * (lo + hi);
    if (!(lo < hi)) return -INFINITY;
    if (d * fmax(1.0, fabs(m)) < 1e-3) {
        double m2 = m * m, d2 = d * d;
        double s = (m2 - 1.0) * d2 / 24.0 + (m2 * m2 - 6.0 * m2 + 3.0) * d2 * d2 / 1920.0;
        return -0.5 * m2 - SBI_LOG_SQRT_2PI + log(d) + log1p(s);
    }
    if (lo >= 0.0) {
        double la = log_q(lo), lb = log_q(hi);
        return la + log(-expm1(lb - la));
    }
    if (hi <= 0.0) {
        double la = log_q(-hi), lb = log_q(-lo);
        return la + log(-expm1(lb - la));
    }
    return log(0.5 * (erf(hi * SBI_SQRT1_2) + erf(-lo * SBI_SQRT1_2)));
}

static double log_add_exp(double a, double b)
{
    double m = a > b ? a : b;
    if (isinf(m)) return m;
    return m + log1p(exp(-fabs(a - b)));
}

/* The t in [alpha, beta] with log(Phi(t) - Phi(alpha)) = target, for targets
 * at most half of the interval's mass (the caller reflects the upper half). */
static double trunc_lower_inverse(double alpha, double target)
{
    if (alpha >= 0.0) {
        double la = log_q(alpha);
        return inv_log_q(la + log1p(-exp(target - la)));
    }
    {
        double lp = log_add_exp(log_q(-alpha), target); /* log Phi(t) */
        if (lp <= SBI_LOG_HALF) return -inv_log_q(lp);
        return inv_log_q(log(-expm1(lp)));
    }
}

/* ---- one parameter -------------------------------------------------------- */

/* Standardised truncation bounds and the log mass between them. */
static void trunc_setup(const sbi_param *p, double *alpha, double *beta, double *lmass)
{
    *alpha = (p->low - p->mean) / p->std;
    *beta = (p->high - p->mean) / p->std;
    *lmass = log_phi_diff(*alpha, *beta);
}

/* log F(x) and log S(x): the log prior mass below and above x. */
static void log_tails(const sbi_param *p, double x, double *lf, double *ls)
{
    switch (p->prior) {
    case SBI_PRIOR_UNIFORM: {
        double w = p->high - p->low;
        *lf = log((x - p->low) / w);
        *ls = log((p->high - x) / w);
        return;
    }
    case SBI_PRIOR_LOG_UNIFORM: {
        double span = log(p->high / p->low);
        *lf = log(log1p((x - p->low) / p->low) / span);
        *ls = log(log1p((p->high - x) / x) / span);
        return;
    }
    case SBI_PRIOR_NORMAL: {
        double t = (x - p->mean) / p->std;
        *lf = log_q(-t);
        *ls = log_q(t);
        return;
    }
    case SBI_PRIOR_TRUNCATED_NORMAL: {
        double alpha, beta, lmass, t = (x - p->mean) / p->std;
        trunc_setup(p, &alpha, &beta, &lmass);
        *lf = log_phi_diff(alpha, t) - lmass;
        *ls = log_phi_diff(t, beta) - lmass;
        return;
    }
    }
    *lf = *ls = NAN;
}

/* Physical x whose lower mass is exp(lf); meant for lf <= log(1/2). */
static double from_log_lower(const sbi_param *p, double lf)
{
    switch (p->prior) {
    case SBI_PRIOR_UNIFORM: return p->low + (p->high - p->low) * exp(lf);
    case SBI_PRIOR_LOG_UNIFORM: return p->low + p->low * expm1(exp(lf) * log(p->high / p->low));
    case SBI_PRIOR_NORMAL: return p->mean - p->std * inv_log_q(lf);
    case SBI_PRIOR_TRUNCATED_NORMAL: {
        double alpha, beta, lmass;
        trunc_setup(p, &alpha, &beta, &lmass);
        return p->mean + p->std * trunc_lower_inverse(alpha, lf + lmass);
    }
    }
    return NAN;
}

/* Physical x whose upper mass is exp(ls); meant for ls <= log(1/2). */
static double from_log_upper(const sbi_param *p, double ls)
{
    switch (p->prior) {
    case SBI_PRIOR_UNIFORM: return p->high - (p->high - p->low) * exp(ls);
    case SBI_PRIOR_LOG_UNIFORM: return p->high + p->high * expm1(-exp(ls) * log(p->high / p->low));
    case SBI_PRIOR_NORMAL: return p->mean + p->std * inv_log_q(ls);
    case SBI_PRIOR_TRUNCATED_NORMAL: {
        /* Reflection t -> -t maps the upper tail of [alpha, beta] onto the
         * lower tail of [-beta, -alpha]. */
        double alpha, beta, lmass;
        trunc_setup(p, &alpha, &beta, &lmass);
        return p->mean - p->std * trunc_lower_inverse(-beta, ls + lmass);
    }
    }
    return NAN;
}

double sbi_prior_to_cube(const sbi_param *p, double x)
{
    double lf, ls;
    if (p->prior == SBI_PRIOR_NORMAL) return sbi_normal_cdf((x - p->mean) / p->std);
    log_tails(p, x, &lf, &ls);
    return lf <= SBI_LOG_HALF ? exp(lf) : -expm1(ls);
}

double sbi_prior_from_cube(const sbi_param *p, double u)
{
    if (p->prior == SBI_PRIOR_NORMAL) return p->mean + p->std * sbi_normal_quantile(u);
    if (u <= 0.5) return from_log_lower(p, log(u));
    return from_log_upper(p, log1p(-u));
}

double sbi_prior_to_unconstrained(const sbi_param *p, double x)
{
    double lf, ls;
    if (p->prior == SBI_PRIOR_NORMAL) return (x - p->mean) / p->std;
    log_tails(p, x, &lf, &ls);
    return lf - ls;
}

double sbi_prior_from_unconstrained(const sbi_param *p, double z)
{
    if (p->prior == SBI_PRIOR_NORMAL) return p->mean + p->std * z;
    /* log sigmoid(z) for z <= 0 and log sigmoid(-z) for z > 0, never overflowing. */
    if (z <= 0.0) return from_log_lower(p, z - log1p(exp(z)));
    return from_log_upper(p, -z - log1p(exp(-z)));
}

double sbi_prior_param_log_density(const sbi_param *p, double x)
{
    switch (p->prior) {
    case SBI_PRIOR_UNIFORM:
        if (!(x >= p->low && x <= p->high)) return -INFINITY;
        return -log(p->high - p->low);
    case SBI_PRIOR_LOG_UNIFORM:
        if (!(x >= p->low && x <= p->high)) return -INFINITY;
        return -log(x) - log(log(p->high / p->low));
    case SBI_PRIOR_NORMAL: {
        double t = (x - p->mean) / p->std;
        if (!isfinite(t)) return -INFINITY;
        return -0.5 * t * t - log(p->std) - SBI_LOG_SQRT_2PI;
    }
    case SBI_PRIOR_TRUNCATED_NORMAL: {
        double alpha, beta, lmass, t = (x - p->mean) / p->std;
        if (!(x >= p->low && x <= p->high)) return -INFINITY;
        trunc_setup(p, &alpha, &beta, &lmass);
        return -0.5 * t * t - log(p->std) - SBI_LOG_SQRT_2PI - lmass;
    }
    }
    return -INFINITY;
}

/* log|dz/dx| of one parameter: for bounded priors z = logit(F(x)), so
 * dz/dx = f(x) / (F(x) S(x)). */
static double param_log_jacobian(const sbi_param *p, double x)
{
    double lf, ls;
    if (p->prior == SBI_PRIOR_NORMAL) return -log(p->std);
    log_tails(p, x, &lf, &ls);
    return sbi_prior_param_log_density(p, x) - lf - ls;
}

/* ---- whole rows ------------------------------------------------------------ */

double sbi_prior_log_density(const sbi_task *task, const double *theta)
{
    double sum = 0.0;
    for (int j = 0; j < task->n_params; ++j) {
        double l = sbi_prior_param_log_density(&task->params[j], theta[j]);
        if (l == -INFINITY) return -INFINITY;
        sum += l;
    }
    return sum;
}

int sbi_prior_in_support(const sbi_task *task, const double *theta)
{
    for (int j = 0; j < task->n_params; ++j)
        if (sbi_prior_param_log_density(&task->params[j], theta[j]) == -INFINITY) return 0;
    return 1;
}

void sbi_space_physical_to_cube(const sbi_task *t, int64_t n, const double *x, double *u)
{
    const int d = t->n_params;
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < d; ++j) u[i * d + j] = sbi_prior_to_cube(&t->params[j], x[i * d + j]);
}

void sbi_space_cube_to_physical(const sbi_task *t, int64_t n, const double *u, double *x)
{
    const int d = t->n_params;
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < d; ++j) x[i * d + j] = sbi_prior_from_cube(&t->params[j], u[i * d + j]);
}

void sbi_space_physical_to_unconstrained(const sbi_task *t, int64_t n, const double *x, double *z)
{
    const int d = t->n_params;
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < d; ++j) z[i * d + j] = sbi_prior_to_unconstrained(&t->params[j], x[i * d + j]);
}

void sbi_space_unconstrained_to_physical(const sbi_task *t, int64_t n, const double *z, double *x)
{
    const int d = t->n_params;
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < d; ++j) x[i * d + j] = sbi_prior_from_unconstrained(&t->params[j], z[i * d + j]);
}

void sbi_space_log_jacobian_unconstrained(const sbi_task *t, int64_t n, const double *x, double *logdet)
{
    const int d = t->n_params;
    for (int64_t i = 0; i < n; ++i) {
        double s = 0.0;
        for (int j = 0; j < d; ++j) s += param_log_jacobian(&t->params[j], x[i * d + j]);
        logdet[i] = s;
    }
}
