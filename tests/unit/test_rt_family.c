/* The transmission and emission families built from task files: shapes and
 * magnitudes of the spectra, cloud decks, the mapping of parameters onto
 * model inputs, and the task files in inputs/ (argv[1], argv[2]). */
#include <math.h>
#include <string.h>

#include "exosbi/forward.h"
#include "exosbi/rt.h"
#include "testutil.h"

static const char *trans_head =
    "name: rt-trans\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: R_pl, prior: uniform, low: 1.0, high: 1.5}\n"
    "  - {name: T_iso, prior: uniform, low: 500, high: 1500}\n"
    "  - {name: log_X_H2O, prior: uniform, low: -8, high: -2}\n"
    "  - {name: log_P_cloud, prior: uniform, low: -4, high: 2}\n"
    "%s"
    "forward_model:\n"
    "  family: transmission\n"
    "  settings:\n"
    "    pressure: {n_layers: 60}\n"
    "    species: [H2O]\n"
    "    model_resolution: 200\n"
    "    fixed: {R_star: 1.0, log_g: 3.0%s}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [0.8, 1.0, 1.15, 1.4, 1.6, 2.0, 2.7, 3.5, 4.5], uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

static int load(const char *extra_param, const char *extra_fixed, sbi_task **t, sbi_forward *fw)
{
    char text[4096];
    int err;
    snprintf(text, sizeof text, trans_head, extra_param, extra_fixed);
    *t = NULL;
    *fw = NULL;
    err = sbi_task_load_text(text, "rt-test.yaml", t);
    if (err) return err;
    return sbi_forward_create(*t, fw);
}

static void test_transmission(void)
{
    sbi_task *t;
    sbi_forward fw;
    /* Rows: clear; a deck at 1e-4 bar; abundances summing past 1. */
    double theta[3 * 4] = {1.2, 1000, -4, 2.0, 1.2, 1000, -4, -4.0, 1.2, 1000, 0.5, 2.0};
    const uint64_t idx[3] = {0, 1, 2};
    double out[3 * 9];

    SBI_ASSERT_OK(load("", "", &t, &fw));
    if (!fw) {
        sbi_task_destroy(&t);
        return;
    }
    SBI_ASSERT_EQ_INT(sbi_forward_n_outputs(fw), 9);
    SBI_ASSERT_OK(sbi_forward_simulate(fw, 3, theta, idx, 1, out));
    {
        /* Depths near (R_pl / R_*)^2 = (1.2 R_jup / R_sun)^2 = 0.0152. */
        const double base = pow(1.2 * SBI_RT_R_JUP / SBI_RT_R_SUN, 2);
        for (int i = 0; i < 9; ++i) SBI_ASSERT(out[i] > 0.9 * base && out[i] < 1.3 * base);
        /* Water absorbs more at 1.4 and 2.7 um than in the 1.6 um window. */
        SBI_ASSERT(out[3] > out[4]);
        SBI_ASSERT(out[6] > out[4]);
        /* A high deck flattens the spectrum. */
        {
            double spread_clear = 0, spread_cloudy = 0;
            for (int i = 1; i < 9; ++i) {
                spread_clear = fmax(spread_clear, fabs(out[i] - out[0]));
                spread_cloudy = fmax(spread_cloudy, fabs(out[9 + i] - out[9]));
            }
            SBI_ASSERT(spread_cloudy < 0.3 * spread_clear);
        }
        /* Abundances summing to more than 1 cannot be simulated: NaN row. */
        SBI_ASSERT(isnan(out[18]));
    }
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
}

static void expect_error(const char *extra_param, const char *extra_fixed, const char *needle)
{
    sbi_task *t;
    sbi_forward fw;
    int err = load(extra_param, extra_fixed, &t, &fw);
    SBI_ASSERT_EQ_INT(err, SBI_ERR_INPUT);
    if (!strstr(sbi_error_message(), needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", sbi_error_message(), needle);
        SBI_ASSERT(0);
    }
    /* Messages are headed by the task's file, or "task" for a task built from text. */
    SBI_ASSERT(strncmp(sbi_error_message(), "task: ", 6) == 0 || strncmp(sbi_error_message(), "rt-test.yaml", 12) == 0);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    sbi_error_clear();
}

static void test_errors(void)
{
    expect_error("  - {name: log_X_CO, prior: uniform, low: -8, high: -2}\n", "", "'log_X_CO'");
    expect_error("  - {name: T_int, prior: uniform, low: 100, high: 200}\n", "", "'T_int'");
    expect_error("", ", R_pl: 1.0", "R_pl");
    expect_error("", ", P_cloud: 1.0", "fixed.P_cloud");
}

static const char *emis_text =
    "name: rt-emis\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 500, high: 1500}\n"
    "forward_model:\n"
    "  family: emission\n"
    "  settings:\n"
    "    pressure: {n_layers: 40}\n"
    "    species: [H2O, CO]\n"
    "    fixed: {R_pl: 1.0, log_g: 4.5, distance: 10.0, log_X_H2O: -3.0, log_X_CO: -3.5}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.0, 1.25, 1.6, 2.2, 3.0, 4.0], uncertainty: 1e-17}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

static void test_emission(void)
{
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const double theta[1] = {1200.0};
    const uint64_t idx[1] = {0};
    double out[6];
    SBI_ASSERT_OK(sbi_task_load_text(emis_text, "rt-emis.yaml", &t));
    if (t) SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, idx, 1, out));
        /* An isothermal atmosphere emits pi B_lambda(T) whatever its opacity:
         * the binned flux is the bin average of the diluted Planck function
         * (bin widths: the smaller spacing to a neighbouring centre). */
        static const double width[6] = {0.25, 0.25, 0.35, 0.6, 0.8, 1.0};
        const double dil = pow(SBI_RT_R_JUP / (10.0 * SBI_RT_PARSEC), 2);
        for (int i = 0; i < 6; ++i) {
            const double c = t->datasets[0].coordinates[i], a = c - 0.5 * width[i];
            const int m = 4000;
            double sum = 0.0;
            for (int k = 0; k <= m; ++k) {
                const double lam = a + width[i] * k / m, nu = SBI_RT_C / (lam * 1e-4);
                const double f = SBI_RT_PI * sbi_rt_planck_nu(nu, 1200.0) * SBI_RT_C / pow(lam * 1e-4, 2) * dil * 1e-7;
                sum += (k == 0 || k == m ? 0.5 : 1.0) * f;
            }
            SBI_ASSERT_NEAR(out[i], sum / m, 2e-4, 0);
        }
    }
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
}

static void test_task_file(const char *path)
{
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    SBI_ASSERT_OK(sbi_task_load(path, &t));
    if (t) SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) {
        const int64_t m = sbi_forward_n_outputs(fw);
        double *theta = malloc((size_t)t->n_params * sizeof *theta), *out = malloc((size_t)m * sizeof *out);
        const uint64_t idx[1] = {0};
        for (int j = 0; j < t->n_params; ++j) theta[j] = 0.5 * (t->params[j].low + t->params[j].high);
        SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, theta, idx, 1, out));
        for (int64_t i = 0; i < m; ++i) SBI_ASSERT(isfinite(out[i]));
        free(theta);
        free(out);
    }
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
}

int main(int argc, char **argv)
{
    test_transmission();
    test_errors();
    test_emission();
    for (int a = 1; a < argc; ++a) test_task_file(argv[a]);
    return SBI_TEST_REPORT("test_rt_family");
}
