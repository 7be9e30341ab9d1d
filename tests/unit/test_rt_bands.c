/* Photometric bands: band-averaging weights against hand computation (a
 * top-hat over a linear spectrum is its mean; a triangular filter curve
 * weights a linear spectrum at the triangle's centroid), photon-counting
 * weighting, a photometric dataset in the transmission family against the
 * same band as a spectral bin, and malformed filter files and settings.
 * Usage: test_rt_bands WORK_DIR */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "exosbi/forward.h"
#include "exosbi/rt.h"
#include "exosbi/task.h"
#include "testutil.h"

static char work[2048];

/* A grid uniform in ln lambda over [0.5, 5] um, as the families build it. */
enum { W = 801 };
static double lambda[W];

static void make_grid(void)
{
    for (int l = 0; l < W; ++l) lambda[l] = 0.5 * exp(log(10.0) * l / (W - 1.0));
}

static double apply_one(const sbi_rt_band *bd, int photon, const double *f)
{
    sbi_rt_binning bin;
    double out = NAN;
    SBI_ASSERT_OK(sbi_rt_band_weights(W, lambda, 1, bd, photon, &bin));
    if (bin.row) sbi_rt_binning_apply(&bin, f, &out);
    sbi_rt_binning_destroy(&bin);
    return out;
}

static void test_kernel(void)
{
    const double a = 0.02, b = -0.003; /* F(l) = a + b l */
    static double f[W];
    for (int l = 0; l < W; ++l) f[l] = a + b * lambda[l];

    /* Top-hat, edges between grid points: the mean of a linear function is
     * its value at the band centre; photon weighting shifts it to
     * int l^2 / int l = (2/3)(hi^3 - lo^3) / (hi^2 - lo^2). */
    {
        const sbi_rt_band th = {1.2345, 2.0711, 0, NULL, NULL};
        const double lc = 2.0 / 3.0 * (pow(th.hi, 3) - pow(th.lo, 3)) / (th.hi * th.hi - th.lo * th.lo);
        SBI_ASSERT_NEAR(apply_one(&th, 0, f), a + b * 0.5 * (th.lo + th.hi), 1e-13, 0);
        SBI_ASSERT_NEAR(apply_one(&th, 1, f), a + b * lc, 1e-13, 0);
    }
    /* Triangle 1.1 -> 1.6 (peak) -> 1.9 um, zero-padded: with plain weighting
     * a linear spectrum is taken at the centroid (1.1 + 1.6 + 1.9) / 3. */
    {
        const double fl[5] = {0.9, 1.1, 1.6, 1.9, 2.5}, ft[5] = {0.0, 0.0, 0.8, 0.0, 0.0};
        const sbi_rt_band tri = {0.9, 2.5, 5, fl, ft};
        /* Photon weighting by hand: int F T l / int T l with T piecewise
         * linear, done with the midpoint rule on 2e5 points per side. */
        double num = 0, den = 0;
        for (int side = 0; side < 2; ++side) {
            const double x0 = side ? 1.6 : 1.1, x1 = side ? 1.9 : 1.6;
            const int m = 200000;
            for (int i = 0; i < m; ++i) {
                const double x = x0 + (i + 0.5) * (x1 - x0) / m;
                const double t = side ? 0.8 * (1.9 - x) / 0.3 : 0.8 * (x - 1.1) / 0.5;
                const double dx = (x1 - x0) / m;
                num += (a + b * x) * t * x * dx;
                den += t * x * dx;
            }
        }
        SBI_ASSERT_NEAR(apply_one(&tri, 0, f), a + b * (1.1 + 1.6 + 1.9) / 3.0, 1e-13, 0);
        SBI_ASSERT_NEAR(apply_one(&tri, 1, f), num / den, 1e-10, 0);
    }
    /* A constant spectrum stays constant under any filter and weighting. */
    {
        static double one[W];
        const double fl[4] = {3.0, 3.3, 3.4, 4.2}, ft[4] = {0.1, 0.9, 0.2, 0.05};
        const sbi_rt_band bd = {3.0, 4.2, 4, fl, ft};
        for (int l = 0; l < W; ++l) one[l] = 7.5;
        SBI_ASSERT_NEAR(apply_one(&bd, 1, one), 7.5, 1e-14, 0);
        SBI_ASSERT_NEAR(apply_one(&bd, 0, one), 7.5, 1e-14, 0);
    }
    /* Outside the model grid: an input error naming the band. */
    {
        const sbi_rt_band out = {0.4, 1.0, 0, NULL, NULL};
        sbi_rt_binning bin;
        SBI_ASSERT_EQ_INT(sbi_rt_band_weights(W, lambda, 1, &out, 0, &bin), SBI_ERR_INPUT);
        SBI_ASSERT(strstr(sbi_error_message(), "band 0") != NULL);
        sbi_rt_binning_destroy(&bin);
        sbi_error_clear();
    }
}

/* ---- the transmission family with a photometric dataset --------------------- */

static const char *task_fmt =
    "name: rt-bands\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: transmission\n"
    "  settings:\n"
    "    pressure: {n_layers: 40}\n"
    "    species: [H2O]\n"
    "    model_resolution: 300\n"
    "    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0}\n"
    "    datasets:\n"
    "      s: {bin_widths: [0.5, 0.6]}\n"
    "      phot: {%s}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.25, 2.3], uncertainty: 1e-4}\n"
    "  - {name: phot, modality: photometry, size: %d, uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

/* The task is written to WORK/task.yaml, so filter paths resolve against WORK. */
static int run(const char *phot, int size, double *out)
{
    char text[8192], path[2300];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    const double t_iso = 1000.0;
    FILE *f;
    int st;
    snprintf(path, sizeof path, "%s/task.yaml", work);
    snprintf(text, sizeof text, task_fmt, phot, size);
    f = fopen(path, "w");
    if (!f) return SBI_ERR_IO;
    fputs(text, f);
    fclose(f);
    st = sbi_task_load(path, &t);
    if (!st) st = sbi_forward_create(t, &fw);
    if (!st && out) st = sbi_forward_simulate(fw, 1, &t_iso, idx, 1, out);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return st;
}

static void write_file(const char *name, const char *text)
{
    char path[2300];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", work, name);
    f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void expect_input_error(const char *phot, int size, const char *part1, const char *part2)
{
    const int st = run(phot, size, NULL);
    const char *msg = sbi_error_message();
    SBI_ASSERT_EQ_INT(st, SBI_ERR_INPUT);
    SBI_ASSERT(strstr(msg, part1) != NULL);
    if (part2) SBI_ASSERT(strstr(msg, part2) != NULL);
    if (st != SBI_ERR_INPUT || !strstr(msg, part1) || (part2 && !strstr(msg, part2)))
        fprintf(stderr, "  settings {%s}: message was: %s\n", phot, msg);
    sbi_error_clear();
}

static void test_family(void)
{
    double out[2 + 3];
    write_file("tri.txt", "# wavelength [um]  transmission\n1.9 0\n2.0 0\n2.3 1\n2.6 0\n2.7 0\n");
    write_file("tri_flat.txt", "2.0, 0.7\n2.6, 0.7\n");

    /* A top-hat with plain weighting is the flux-conserving bin of the same
     * edges; a flat filter over [2.0, 2.6] is the spectral bin 2.3 +- 0.3. */
    SBI_ASSERT_OK(run("bands: [[1.0, 1.5], {filter: tri.txt}, {filter: tri_flat.txt}]", 3, out));
    SBI_ASSERT_NEAR(out[2], out[0], 1e-12, 0);
    SBI_ASSERT_NEAR(out[4], out[1], 1e-12, 0);
    SBI_ASSERT(out[3] > 0.005 && out[3] < 0.05);
    /* Photon weighting differs from plain weighting on a sloped spectrum, but little. */
    {
        double ph[5];
        SBI_ASSERT_OK(run("bands: [[1.0, 1.5], {filter: tri.txt}, {filter: tri_flat.txt}], weighting: photon", 3, ph));
        SBI_ASSERT(ph[2] != out[2]);
        SBI_ASSERT_NEAR(ph[2], out[2], 1e-2, 0);
    }

    /* Malformed filter files name the file, its line and the settings key. */
    write_file("bad_neg.txt", "1.0 0.1\n1.2 -0.5\n1.4 0.1\n");
    expect_input_error("bands: [{filter: bad_neg.txt}]", 1, "bad_neg.txt:2", "datasets.phot.bands[0].filter");
    write_file("bad_order.txt", "1.0 0.1\n1.4 0.5\n1.2 0.1\n");
    expect_input_error("bands: [{filter: bad_order.txt}]", 1, "bad_order.txt:3", "increasing");
    write_file("bad_col.txt", "# one column\n1.0\n");
    expect_input_error("bands: [{filter: bad_col.txt}]", 1, "bad_col.txt:2", "two columns");
    write_file("bad_num.txt", "1.0 0.1\n1.2 abc\n");
    expect_input_error("bands: [{filter: bad_num.txt}]", 1, "bad_num.txt:2", "'abc'");
    write_file("bad_zero.txt", "1.0 0\n1.2 0\n");
    expect_input_error("bands: [{filter: bad_zero.txt}]", 1, "bad_zero.txt", "zero everywhere");
    write_file("bad_short.txt", "1.0 0.5\n");
    expect_input_error("bands: [{filter: bad_short.txt}]", 1, "bad_short.txt", "two points");
    expect_input_error("bands: [{filter: none.txt}]", 1, "none.txt", "cannot open");
    /* Settings. */
    expect_input_error("bands: [[1.0, 1.5]]", 2, "datasets.phot.bands", "has 1 bands but the dataset has 2");
    expect_input_error("bands: [[1.5, 1.0]]", 1, "datasets.phot.bands[0]", "lambda_min < lambda_max");
    expect_input_error("bands: [{file: tri.txt}]", 1, "datasets.phot.bands[0].file", "unknown key");
    expect_input_error("bands: [[1.0, 1.5]], weighting: energy", 1, "datasets.phot.weighting", "photon or plain");
    expect_input_error("bands: [[1.0, 1.5]], bin_widths: [0.1]", 1, "datasets.phot", "not both");
    expect_input_error("bands: 3", 1, "datasets.phot.bands", "expected a list");
}

/* The emission family weights bands by photon counts unless told otherwise. */
static const char *emis_fmt =
    "name: rt-bands-emission\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: emission\n"
    "  settings:\n"
    "    pressure: {n_layers: 30}\n"
    "    species: [H2O]\n"
    "    model_resolution: 200\n"
    "    fixed: {R_pl: 1.0, log_g: 4.5, distance: 10.0, log_X_H2O: -3.5}\n"
    "    datasets:\n"
    "      phot: {bands: [[1.0, 2.5]]%s}\n"
    "datasets:\n"
    "  - {name: phot, modality: photometry, size: 1, uncertainty: 1e-17}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

static double emission_band(const char *extra)
{
    char text[4096];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    const double t_iso = 1000.0;
    double out = NAN;
    snprintf(text, sizeof text, emis_fmt, extra);
    SBI_ASSERT_OK(sbi_task_load_text(text, "emission.yaml", &t));
    if (t) SBI_ASSERT_OK(sbi_forward_create(t, &fw));
    if (fw) SBI_ASSERT_OK(sbi_forward_simulate(fw, 1, &t_iso, idx, 1, &out));
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return out;
}

static void test_emission_default(void)
{
    const double def = emission_band(""), photon = emission_band(", weighting: photon");
    const double plain = emission_band(", weighting: plain");
    SBI_ASSERT(isfinite(def) && def > 0);
    SBI_ASSERT_NEAR(def, photon, 0, 0);
    SBI_ASSERT(fabs(plain - photon) > 1e-6 * photon);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    mkdir(work, 0755);
    make_grid();
    test_kernel();
    test_family();
    test_emission_default();
    MPI_Finalize();
    return SBI_TEST_REPORT("rt_bands");
}
