/* Priors and parameter spaces: the normal CDF and quantile, round trips
 * between physical, cube and unconstrained space (tails included), the
 * log-Jacobian against finite differences, densities against the CDF, and the
 * row-wise maps. */
#include <float.h>
#include <math.h>
#include <mpi.h>
#include <string.h>

#include "exosbi/task.h"
#include "testutil.h"

static sbi_param make(sbi_prior_kind kind, double a, double b, double c, double d)
{
    sbi_param p;
    memset(&p, 0, sizeof p);
    p.prior = kind;
    if (kind == SBI_PRIOR_UNIFORM || kind == SBI_PRIOR_LOG_UNIFORM) {
        p.low = a;
        p.high = b;
    } else {
        p.mean = a;
        p.std = b;
        p.low = c;
        p.high = d;
    }
    snprintf(p.name, sizeof p.name, "p");
    return p;
}

/* One prior of every kind, truncated normals in the body and in both tails. */
static sbi_param priors[9];
static const char *prior_names[9] = {"uniform",         "uniform far from 0", "log_uniform",
                                     "normal",          "truncated body",     "truncated upper tail",
                                     "truncated lower", "truncated far tail", "truncated narrow"};

static void setup_priors(void)
{
    priors[0] = make(SBI_PRIOR_UNIFORM, -3.0, 7.0, 0, 0);
    priors[1] = make(SBI_PRIOR_UNIFORM, 1000.0, 1001.0, 0, 0);
    priors[2] = make(SBI_PRIOR_LOG_UNIFORM, 1e-3, 1e3, 0, 0);
    priors[3] = make(SBI_PRIOR_NORMAL, 1.5, 0.7, 0, 0);
    priors[4] = make(SBI_PRIOR_TRUNCATED_NORMAL, 1200.0, 300.0, 500.0, 2500.0);
    priors[5] = make(SBI_PRIOR_TRUNCATED_NORMAL, 0.0, 1.0, 5.0, 10.0);
    priors[6] = make(SBI_PRIOR_TRUNCATED_NORMAL, 2.0, 0.5, -6.0, -1.0);
    priors[7] = make(SBI_PRIOR_TRUNCATED_NORMAL, 0.0, 1.0, 40.0, 45.0);
    priors[8] = make(SBI_PRIOR_TRUNCATED_NORMAL, 3.0, 2.0, 2.9, 3.1);
}

static double density(const sbi_param *p, double x) { return exp(sbi_prior_param_log_density(p, x)); }

/* A length over which the prior changes little near x: the distance to the
 * nearest bound, and at most the spread of the prior. */
static double local_scale(const sbi_param *p, double x)
{
    double s = p->prior == SBI_PRIOR_UNIFORM ? p->high - p->low : p->prior == SBI_PRIOR_LOG_UNIFORM ? x : p->std;
    if (p->prior != SBI_PRIOR_NORMAL) {
        if (x - p->low < s) s = x - p->low;
        if (p->high - x < s) s = p->high - x;
    }
    return s;
}

static void test_normal(void)
{
    SBI_ASSERT_NEAR(sbi_normal_cdf(1.0), 0.8413447460685429, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_normal_cdf(-1.0), 0.15865525393145707, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_normal_cdf(0.0), 0.5, 0, 0);
    SBI_ASSERT_NEAR(sbi_normal_cdf(-10.0), 7.6198530241604696e-24, 1e-13, 0);
    SBI_ASSERT_NEAR(sbi_normal_cdf(-37.0), 5.725571222524e-300, 1e-11, 0);
    SBI_ASSERT_NEAR(sbi_normal_quantile(0.975), 1.959963984540054, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_normal_quantile(0.025), -1.959963984540054, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_normal_quantile(1e-10), -6.361340902404056, 1e-14, 0);
    SBI_ASSERT_NEAR(sbi_normal_quantile(0.8413447460685429), 1.0, 1e-14, 0);
    SBI_ASSERT_NEAR(sbi_normal_quantile(0.5), 0.0, 0, 0);
    SBI_ASSERT(isinf(sbi_normal_quantile(0.0)) && sbi_normal_quantile(0.0) < 0);
    SBI_ASSERT(isinf(sbi_normal_quantile(1.0)) && sbi_normal_quantile(1.0) > 0);
    /* The lower tail holds relative precision all the way down. */
    for (double x = -37.0; x <= 0.0; x += 0.37)
        SBI_ASSERT_NEAR(sbi_normal_quantile(sbi_normal_cdf(x)), x, 1e-14, 1e-15);
    /* Phi(Phi^-1(p)) = p up to the rounding of the quantile x, which moves p
     * by a relative |x| * ulp(x). */
    for (double p = 1e-300; p < 0.5; p *= 7.3) {
        double x = sbi_normal_quantile(p);
        SBI_ASSERT_NEAR(sbi_normal_cdf(x), p, 1e-15 + 2 * DBL_EPSILON * (1 + x * x), 0);
    }
}

static void test_uniform_cube(void)
{
    const sbi_param *p = &priors[0];
    const double xs[5] = {-3.0, -2.5, 0.0, 3.3, 7.0};
    for (int i = 0; i < 5; ++i) SBI_ASSERT_NEAR(sbi_prior_to_cube(p, xs[i]), (xs[i] + 3.0) / 10.0, 1e-15, 1e-16);
    SBI_ASSERT_NEAR(sbi_prior_from_cube(p, 0.25), -0.5, 1e-15, 0);
    /* log_uniform: uniform in log x. */
    SBI_ASSERT_NEAR(sbi_prior_to_cube(&priors[2], 1.0), 0.5, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_prior_from_cube(&priors[2], 0.75), 31.622776601683793, 1e-14, 0);
    /* normal: the CDF of the standardised value. */
    SBI_ASSERT_NEAR(sbi_prior_to_cube(&priors[3], 1.5 + 0.7), 0.8413447460685429, 1e-15, 0);
    SBI_ASSERT_NEAR(sbi_prior_to_unconstrained(&priors[3], 1.5 - 1.4), -2.0, 1e-15, 0);
}

/* Round trips for every prior at cube values from 1e-12 to 1 - 1e-12.  Each
 * tolerance is 1e-12 relative plus the error that rounding the intermediate
 * value (u, x or z) to a double forces on the result. */
static void test_round_trips(void)
{
    static const double us[] = {1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.3, 0.5, 0.7, 0.9, 1 - 1e-3, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12};
    const int nu = (int)(sizeof us / sizeof us[0]);
    for (int k = 0; k < 9; ++k) {
        const sbi_param *p = &priors[k];
        for (int i = 0; i < nu; ++i) {
            double u = us[i], x = sbi_prior_from_cube(p, u), f = density(p, x);
            double u2, x2, z, x3;
            /* x = offset + scale * (...) cannot be more precise than the offset's last bit. */
            double offset_ulp = 4 * DBL_EPSILON * (fabs(p->low) + fabs(p->high) + fabs(p->mean));
            int before = sbi_test_failures;
            SBI_ASSERT(isfinite(x));
            SBI_ASSERT(sbi_prior_param_log_density(p, x) > -INFINITY);
            /* physical -> cube -> physical */
            u2 = sbi_prior_to_cube(p, x);
            x2 = sbi_prior_from_cube(p, u2);
            SBI_ASSERT_NEAR(x2, x, 1e-12, offset_ulp + 4 * DBL_EPSILON * u / f);
            /* cube -> physical -> cube */
            SBI_ASSERT_NEAR(u2, u, 0, 1e-12 * fmin(u, 1 - u) + 4 * DBL_EPSILON * fabs(x) * f);
            /* physical -> unconstrained -> physical, precise in both tails */
            z = sbi_prior_to_unconstrained(p, x);
            SBI_ASSERT(isfinite(z));
            x3 = sbi_prior_from_unconstrained(p, z);
            SBI_ASSERT_NEAR(x3, x, 1e-12, offset_ulp);
            /* unconstrained is logit(cube) for bounded priors, up to the
             * rounding of a cube value near 1 */
            if (p->prior != SBI_PRIOR_NORMAL)
                SBI_ASSERT_NEAR(z, log(u2 / (1 - u2)), 1e-12, 1e-12 + (u2 > 0.5 ? 4 * DBL_EPSILON / (1 - u2) : 0));
            if (sbi_test_failures != before) fprintf(stderr, "  (prior %s, u = %.17g)\n", prior_names[k], u);
        }
        /* Extreme unconstrained values stay inside the support. */
        for (double z = -800; z <= 800; z += 400) {
            double x = sbi_prior_from_unconstrained(p, z);
            SBI_ASSERT(isfinite(x));
            if (p->prior != SBI_PRIOR_NORMAL) SBI_ASSERT(x >= p->low && x <= p->high);
        }
    }
}

/* log|dz/dx| against a central difference of z(x), and the density against a
 * central difference of the CDF. */
static void test_jacobian_and_density(void)
{
    static const double us[] = {1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-6};
    for (int k = 0; k < 9; ++k) {
        const sbi_param *p = &priors[k];
        sbi_task t;
        memset(&t, 0, sizeof t);
        t.n_params = 1;
        t.params = (sbi_param *)p;
        for (size_t i = 0; i < sizeof us / sizeof us[0]; ++i) {
            /* The step is taken between representable points xp and xm. */
            double x = sbi_prior_from_cube(p, us[i]), h = 1e-4 * local_scale(p, x), logdet;
            double xp = x + h, xm = x - h;
            double dz = (sbi_prior_to_unconstrained(p, xp) - sbi_prior_to_unconstrained(p, xm)) / (xp - xm);
            double dF = (sbi_prior_to_cube(p, xp) - sbi_prior_to_cube(p, xm)) / (xp - xm);
            int before = sbi_test_failures;
            sbi_space_log_jacobian_unconstrained(&t, 1, &x, &logdet);
            SBI_ASSERT_NEAR(exp(logdet), fabs(dz), 1e-6, 0);
            if (us[i] > 1e-3 && us[i] < 1 - 1e-3) SBI_ASSERT_NEAR(density(p, x), dF, 1e-6, 0);
            if (sbi_test_failures != before) fprintf(stderr, "  (prior %s, u = %.17g)\n", prior_names[k], us[i]);
        }
    }
}

static void test_support_and_rows(void)
{
    sbi_param ps[4];
    sbi_task t;
    double x[3 * 4] = {-2.9, 0.002, 1.0, 600.0, 6.9, 999.0, -4.0, 2400.0, 0.0, 1.0, 1.5, 1200.0};
    double u[12], z[12], back[12], logdet[3], want;
    ps[0] = priors[0];
    ps[1] = priors[2];
    ps[2] = priors[3];
    ps[3] = priors[4];
    memset(&t, 0, sizeof t);
    t.n_params = 4;
    t.params = ps;

    want = -log(10.0) + (-log(0.002) - log(log(1e6))) + (-0.5 * pow(-0.5 / 0.7, 2) - log(0.7) - 0.5 * log(2 * M_PI)) +
           sbi_prior_param_log_density(&ps[3], 600.0);
    SBI_ASSERT_NEAR(sbi_prior_log_density(&t, x), want, 1e-14, 0);
    SBI_ASSERT(sbi_prior_in_support(&t, x));
    {
        double out[4] = {7.5, 1.0, 0.0, 1200.0};
        SBI_ASSERT(!sbi_prior_in_support(&t, out));
        SBI_ASSERT(sbi_prior_log_density(&t, out) == -INFINITY);
        out[0] = 0.0;
        out[3] = 2500.1;
        SBI_ASSERT(!sbi_prior_in_support(&t, out));
        out[3] = 1200.0;
        out[1] = 1e-4;
        SBI_ASSERT(!sbi_prior_in_support(&t, out));
        out[1] = 1.0;
        out[2] = NAN;
        SBI_ASSERT(!sbi_prior_in_support(&t, out));
    }
    SBI_ASSERT_NEAR(sbi_prior_param_log_density(&ps[0], 7.0), -log(10.0), 1e-15, 0);

    /* Row maps agree with the per-parameter maps and may work in place. */
    sbi_space_physical_to_cube(&t, 3, x, u);
    sbi_space_physical_to_unconstrained(&t, 3, x, z);
    sbi_space_log_jacobian_unconstrained(&t, 3, x, logdet);
    for (int i = 0; i < 3; ++i) {
        double s = 0.0;
        for (int j = 0; j < 4; ++j) {
            double h = 1e-5 * local_scale(&ps[j], x[i * 4 + j]), xj = x[i * 4 + j], xp = xj + h, xm = xj - h;
            SBI_ASSERT_NEAR(u[i * 4 + j], sbi_prior_to_cube(&ps[j], xj), 0, 0);
            SBI_ASSERT_NEAR(z[i * 4 + j], sbi_prior_to_unconstrained(&ps[j], xj), 0, 0);
            s += log(fabs(sbi_prior_to_unconstrained(&ps[j], xp) - sbi_prior_to_unconstrained(&ps[j], xm)) / (xp - xm));
        }
        SBI_ASSERT_NEAR(logdet[i], s, 0, 1e-6 * (1 + fabs(s)));
    }
    memcpy(back, u, sizeof back);
    sbi_space_cube_to_physical(&t, 3, back, back);
    for (int k = 0; k < 12; ++k) SBI_ASSERT_NEAR(back[k], x[k], 1e-12, 1e-13);
    memcpy(back, z, sizeof back);
    sbi_space_unconstrained_to_physical(&t, 3, back, back);
    for (int k = 0; k < 12; ++k) SBI_ASSERT_NEAR(back[k], x[k], 1e-12, 1e-13);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    setup_priors();
    test_normal();
    test_uniform_cube();
    test_round_trips();
    test_jacobian_and_density();
    test_support_and_rows();
    MPI_Finalize();
    return SBI_TEST_REPORT("test_task_spaces");
}
