/* Tables found by species name in a petitRADTRANS 3 input_data directory: a
 * fake tree written here (two H2O line lists of the main isotopologue, one of
 * 1H2-18O, one CO list, an H2O correlated-k table, an H2-H2 CIA table);
 * names that pick exactly one file, ambiguous and missing names, the
 * input_data default (setting, $pRT_input_data_path, pRT's config file),
 * and the transmission family pointed at the tree.
 * Usage: test_opacity_prt_input_data WORK_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/forward.h"
#include "exosbi/opacity_io.h"
#include "exosbi/task.h"
#include "opacity_fixtures.h"
#include "testutil.h"

static char work[2048], root[2300];

static const char *lbl = "opacities/lines/line_by_line";
static const char *const files[] = {
    "H2O/1H2-16O/1H2-16O__POKAZATEL.R1e6_0.3-28mu.xsec.petitRADTRANS.h5",
    "H2O/1H2-16O/1H2-16O__HITEMP.R1e6_0.3-28mu.xsec.petitRADTRANS.h5",
    "H2O/1H2-18O/1H2-18O__HITRAN.R1e6_0.3-28mu.xsec.petitRADTRANS.h5",
    "CO/12C-16O/12C-16O__HITEMP.R1e6_0.1-250mu.xsec.petitRADTRANS.h5",
};

static void build_tree(void)
{
    char path[4600], dir[4096];
    snprintf(root, sizeof root, "%s/input_data", work);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; ++i) {
        snprintf(path, sizeof path, "%s/%s/%s", root, lbl, files[i]);
        sbi_dirname(path, dir, sizeof dir);
        SBI_ASSERT_EQ_INT(fx_mkdirs(dir), 0);
        SBI_ASSERT_OK(fx_write_line(path, 0));
    }
    /* A correlated-k table and a stray file. */
    snprintf(dir, sizeof dir, "%s/opacities/lines/correlated_k/H2O/1H2-16O", root);
    SBI_ASSERT_EQ_INT(fx_mkdirs(dir), 0);
    snprintf(path, sizeof path, "%s/1H2-16O__POKAZATEL.R1000_0.1-250mu.ktable.petitRADTRANS.h5", dir);
    SBI_ASSERT_OK(fx_write_ck(path));
    snprintf(path, sizeof path, "%s/README.txt", dir);
    fclose(fopen(path, "w"));
    snprintf(dir, sizeof dir, "%s/opacities/continuum/collision_induced_absorptions/H2--H2/H2--H2-NatAbund", root);
    SBI_ASSERT_EQ_INT(fx_mkdirs(dir), 0);
    snprintf(path, sizeof path, "%s/H2--H2-NatAbund__BoRi.R831_0.6-250mu.ciatable.petitRADTRANS.h5", dir);
    SBI_ASSERT_OK(fx_write_cia(path));
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void expect_found(sbi_prt_category cat, const char *species, const char *suffix)
{
    char out[4096] = "";
    SBI_ASSERT_OK(sbi_prt_find_table(root, cat, species, out, sizeof out));
    SBI_ASSERT(ends_with(out, suffix));
    if (!ends_with(out, suffix)) fprintf(stderr, "  %s: found '%s', expected *%s\n", species, out, suffix);
}

static void expect_refused(sbi_prt_category cat, const char *species, const char *part1, const char *part2,
                           const char *absent)
{
    char out[4096] = "";
    const int st = sbi_prt_find_table(root, cat, species, out, sizeof out);
    const char *msg = sbi_error_message();
    SBI_ASSERT_EQ_INT(st, SBI_ERR_INPUT);
    SBI_ASSERT(strstr(msg, species) != NULL);
    SBI_ASSERT(strstr(msg, part1) != NULL);
    if (part2) SBI_ASSERT(strstr(msg, part2) != NULL);
    if (absent) SBI_ASSERT(strstr(msg, absent) == NULL);
    if (st != SBI_ERR_INPUT || !strstr(msg, part1) || (part2 && !strstr(msg, part2)))
        fprintf(stderr, "  %s: message was: %s\n", species, msg);
    sbi_error_clear();
}

static void test_find(void)
{
    /* Exactly one match. */
    expect_found(SBI_PRT_LINE_BY_LINE, "H2O__POKAZATEL", files[0]);
    expect_found(SBI_PRT_LINE_BY_LINE, "1H2-16O__HITEMP", files[1]);
    expect_found(SBI_PRT_LINE_BY_LINE, "H2O__HITEMP.R1e6", files[1]);
    expect_found(SBI_PRT_LINE_BY_LINE, "1H2-18O", files[2]);
    expect_found(SBI_PRT_LINE_BY_LINE, "CO", files[3]);
    expect_found(SBI_PRT_LINE_BY_LINE, "12C-16O.R1e6_0.1-250mu", files[3]);
    expect_found(SBI_PRT_CORRELATED_K, "H2O", "1H2-16O__POKAZATEL.R1000_0.1-250mu.ktable.petitRADTRANS.h5");
    expect_found(SBI_PRT_CIA, "H2--H2", "H2--H2-NatAbund__BoRi.R831_0.6-250mu.ciatable.petitRADTRANS.h5");
    expect_found(SBI_PRT_CIA, "H2--H2-NatAbund__BoRi", "H2--H2-NatAbund__BoRi.R831_0.6-250mu.ciatable.petitRADTRANS.h5");

    /* H2O means the main isotopologue, which has two line lists: both are
     * named, the 18O one is not a candidate. */
    expect_refused(SBI_PRT_LINE_BY_LINE, "H2O", "2 tables match", "1H2-16O__POKAZATEL", "1H2-18O");
    expect_refused(SBI_PRT_LINE_BY_LINE, "H2O.R1e6", "1H2-16O__HITEMP", "1H2-16O__POKAZATEL", NULL);
    expect_refused(SBI_PRT_LINE_BY_LINE, "H2O__EXOMOL", "no *.xsec.petitRADTRANS.h5 file matches", "1H2-16O", NULL);
    expect_refused(SBI_PRT_LINE_BY_LINE, "CH4", "no directory", "H2O", NULL);
    expect_refused(SBI_PRT_CIA, "H2--He", "no directory", "H2--H2", NULL);
    expect_refused(SBI_PRT_CIA, "H2-He", "expected A--B", NULL, NULL);
}

static void test_default_dir(void)
{
    char out[4096], home[2300], dir[2400], ini[2500];
    const char *source = NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    FILE *f;

    snprintf(home, sizeof home, "%s/home", work);
    snprintf(dir, sizeof dir, "%s/.petitradtrans", home);
    SBI_ASSERT_EQ_INT(fx_mkdirs(dir), 0);
    setenv("HOME", home, 1);
    unsetenv("pRT_input_data_path");
    snprintf(ini, sizeof ini, "%s/petitradtrans_config_file.ini", dir);
    remove(ini);
    SBI_ASSERT_EQ_INT(sbi_prt_input_data_dir(NULL, out, sizeof out, &source), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "pRT_input_data_path") != NULL);
    sbi_error_clear();
    /* As petitRADTRANS writes it (configparser lower-cases the key). */
    f = fopen(ini, "w");
    if (f) {
        fprintf(f, "[Default files]\n\n[Paths]\nprt_input_data_path = %s\nprt_outputs_path = /tmp/out\n\n"
                   "[URLs]\nprt_input_data_url = https://example.invalid\n",
                root);
        fclose(f);
    }
    SBI_ASSERT_OK(sbi_prt_input_data_dir("", out, sizeof out, &source));
    SBI_ASSERT(!strcmp(out, root));
    SBI_ASSERT(source && strstr(source, "petitradtrans_config_file.ini"));
    setenv("pRT_input_data_path", "/from/env", 1);
    SBI_ASSERT_OK(sbi_prt_input_data_dir(NULL, out, sizeof out, &source));
    SBI_ASSERT(!strcmp(out, "/from/env"));
    SBI_ASSERT_OK(sbi_prt_input_data_dir("/from/setting", out, sizeof out, &source));
    SBI_ASSERT(!strcmp(out, "/from/setting"));
    /* pRT's default file of a directory settles an ambiguous name (keys
     * are lower-cased by configparser). */
    f = fopen(ini, "w");
    if (f) {
        fprintf(f, "[Default files]\nopacities/lines/line_by_line/h2o/1h2-16o = %s\n\n[Paths]\n"
                   "prt_input_data_path = %s\n",
                strrchr(files[1], '/') + 1, root);
        fclose(f);
    }
    expect_found(SBI_PRT_LINE_BY_LINE, "H2O", files[1]);
    expect_found(SBI_PRT_LINE_BY_LINE, "H2O__POKAZATEL", files[0]);
    remove(ini);
    unsetenv("pRT_input_data_path");
    if (old_home) setenv("HOME", old_home, 1);
    free(old_home);
}

/* ---- the transmission family on the tree ------------------------------------ */

static const char *task_fmt =
    "name: prt-input-data\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: transmission\n"
    "  settings:\n"
    "    input_data: input_data\n"
    "    pressure: {n_layers: 30}\n"
    "    species: [%s]\n"
    "    cia: [{pair: H2-H2}]\n"
    "    model_resolution: 100\n"
    "    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.0, 1.4, 2.0, 2.7, 3.5], uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

static int spectrum(const char *species, double out[5])
{
    char text[4096], path[2300];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    const double t_iso = 1000.0;
    FILE *f;
    int st;
    snprintf(path, sizeof path, "%s/task.yaml", work);
    snprintf(text, sizeof text, task_fmt, species);
    f = fopen(path, "w");
    if (!f) return SBI_ERR_IO;
    fputs(text, f);
    fclose(f);
    st = sbi_task_load(path, &t);
    if (!st) st = sbi_forward_create(t, &fw);
    if (!st) st = sbi_forward_simulate(fw, 1, &t_iso, idx, 1, out);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return st;
}

static void test_family(void)
{
    double a[5], b[5];
    const char *msg;
    SBI_ASSERT_OK(spectrum("{name: H2O, opacity: line_by_line, prt_name: H2O__POKAZATEL}", a));
    for (int i = 0; i < 5; ++i) SBI_ASSERT(isfinite(a[i]) && a[i] > 0.005 && a[i] < 0.05);
    /* The same file named by its isotopologue gives the same spectrum. */
    SBI_ASSERT_OK(spectrum("{name: H2O, opacity: line_by_line, prt_name: 1H2-16O__POKAZATEL.R1e6_0.3-28mu}", b));
    for (int i = 0; i < 5; ++i) SBI_ASSERT_NEAR(b[i], a[i], 0, 0);

    SBI_ASSERT_EQ_INT(spectrum("{name: H2O, opacity: line_by_line}", a), SBI_ERR_INPUT);
    msg = sbi_error_message();
    SBI_ASSERT(strstr(msg, "task.yaml: forward_model.settings.species[0] (H2O)") && strstr(msg, "2 tables match") &&
               strstr(msg, "1H2-16O__HITEMP") && strstr(msg, "1H2-16O__POKAZATEL"));
    sbi_error_clear();
    /* opacity: correlated_k finds the k-table and runs in correlated-k mode:
     * a transit depth of the same order, but not the line-by-line one. */
    SBI_ASSERT_OK(spectrum("{name: H2O, opacity: correlated_k}", b));
    for (int i = 0; i < 5; ++i) SBI_ASSERT(isfinite(b[i]) && b[i] > 0.005 && b[i] < 0.05 && b[i] != a[i]);
    SBI_ASSERT_EQ_INT(spectrum("{name: H2O, prt_name: H2O__POKAZATEL}", a), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "species[0].prt_name") != NULL);
    sbi_error_clear();
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
    fx_mkdirs(work);
    build_tree();
    test_find();
    test_default_dir();
    test_family();
    MPI_Finalize();
    return SBI_TEST_REPORT("opacity_prt_input_data");
}
