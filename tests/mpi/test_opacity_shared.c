/* Opacity tables read once per communicator (run at 1, 2 and 4 ranks):
 * every rank ends up with a line table, a CIA table and a rebinned
 * correlated-k table bitwise identical to what a rank reading alone gets, a
 * transmission model created collectively (with a line table or a k-table)
 * gives every rank the same spectrum, and a malformed table of either kind
 * gives every rank the same error status without a hang.
 * Usage: test_opacity_shared WORK_DIR */
#include <stdio.h>
#include <string.h>

#include "exosbi/forward.h"
#include "exosbi/opacity_io.h"
#include "exosbi/rt.h"
#include "exosbi/task.h"
#include "opacity_fixtures.h"
#include "testutil.h"

static char work[2048];
static sbi_comm comm;

/* FNV-1a of n bytes. */
static uint64_t hash_bytes(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Whether every rank passed the same value. */
static int same_everywhere(uint64_t h)
{
    uint64_t lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm.comm);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm.comm);
    return lo == hi;
}

/* The status every rank must see for an error of `code` found by rank 0. */
static void expect_agreed(int st, int code)
{
    const int want = comm.rank == 0 ? code : (comm.size > 1 ? (SBI_ERR_REMOTE | code) : code);
    SBI_ASSERT_EQ_INT(st, want);
    SBI_ASSERT(same_everywhere((uint64_t)(st & ~SBI_ERR_REMOTE)));
    sbi_error_clear();
}

static void test_tables(const char *line_path, const char *cia_path)
{
    double nu[500];
    sbi_line_sampled shared, alone;
    sbi_cia_table cs, ca;

    for (int l = 0; l < 500; ++l) nu[l] = 1e4 / (0.5 * exp(log(12.0) * l / 499.0));
    SBI_ASSERT_OK(sbi_line_table_sample_on(&comm, line_path, SBI_LINE_AUTO, 500, nu, &shared));
    SBI_ASSERT_OK(sbi_line_table_sample_on(NULL, line_path, SBI_LINE_AUTO, 500, nu, &alone));
    if (shared.sigma && alone.sigma) {
        const size_t n = (size_t)shared.n_p * shared.n_t * shared.w;
        SBI_ASSERT_EQ_INT(shared.format, SBI_LINE_PRT_LBL);
        SBI_ASSERT_EQ_INT(shared.n_p, FX_NP);
        SBI_ASSERT_EQ_INT(shared.n_t, FX_NT);
        SBI_ASSERT(!strcmp(shared.mol_name, "H2O") && shared.mol_mass == alone.mol_mass);
        SBI_ASSERT(!memcmp(shared.sigma, alone.sigma, n * sizeof *shared.sigma));
        SBI_ASSERT(!memcmp(shared.p, alone.p, FX_NP * sizeof *shared.p));
        SBI_ASSERT(!memcmp(shared.t, alone.t, FX_NT * sizeof *shared.t));
        SBI_ASSERT(same_everywhere(hash_bytes(shared.sigma, n * sizeof *shared.sigma)));
        /* At a table point the resampled value is the table's. */
        {
            const double nu_j = 1000.0 * exp(log(25.0) * 200 / (FX_NNU - 1.0));
            double one = 0;
            sbi_line_sampled at;
            SBI_ASSERT_OK(sbi_line_table_sample_on(&comm, line_path, SBI_LINE_AUTO, 1, &nu_j, &at));
            if (at.sigma) one = at.sigma[1 * FX_NT + 2];
            SBI_ASSERT_NEAR(one, fx_line_sigma(1, 2, 200), 1e-6, 0);
            sbi_line_sampled_free(&at);
        }
    }
    sbi_line_sampled_free(&shared);
    sbi_line_sampled_free(&alone);

    SBI_ASSERT_OK(sbi_cia_table_read_on(&comm, cia_path, SBI_CIA_AUTO, &cs));
    SBI_ASSERT_OK(sbi_cia_table_read(cia_path, SBI_CIA_AUTO, &ca));
    if (cs.alpha && ca.alpha) {
        SBI_ASSERT_EQ_INT(cs.n_t, ca.n_t);
        SBI_ASSERT_EQ_INT(cs.n_nu, ca.n_nu);
        SBI_ASSERT_EQ_INT(cs.format, SBI_CIA_PRT_HDF5);
        SBI_ASSERT(!strcmp(cs.species[0], "H2") && !strcmp(cs.species[1], "H2"));
        SBI_ASSERT(!memcmp(cs.alpha, ca.alpha, (size_t)ca.n_t * ca.n_nu * sizeof *ca.alpha));
        SBI_ASSERT(!memcmp(cs.nu, ca.nu, (size_t)ca.n_nu * sizeof *ca.nu));
        SBI_ASSERT(same_everywhere(hash_bytes(cs.alpha, (size_t)cs.n_t * cs.n_nu * sizeof *cs.alpha)));
    }
    sbi_cia_table_free(&cs);
    sbi_cia_table_free(&ca);
}

/* The k-table rebinned onto 60 model bins, shared and alone. */
static void test_ck_table(const char *ck_path, const char *bad_ck_path)
{
    enum { W = 60 };
    double lam[W], nu_lo[W], nu_hi[W];
    sbi_ck_rebinned shared, alone;

    for (int l = 0; l < W; ++l) lam[l] = 0.6 * exp(log(12.0) * l / (W - 1.0));
    sbi_rt_ck_model_bins(W, lam, nu_lo, nu_hi);
    SBI_ASSERT_OK(sbi_ck_table_rebin_on(&comm, ck_path, W, nu_lo, nu_hi, &shared));
    SBI_ASSERT_OK(sbi_ck_table_rebin_on(NULL, ck_path, W, nu_lo, nu_hi, &alone));
    if (shared.k && alone.k) {
        const size_t n = (size_t)shared.n_p * shared.n_t * shared.w * shared.n_g;
        SBI_ASSERT_EQ_INT(shared.n_p, FX_NP);
        SBI_ASSERT_EQ_INT(shared.n_t, FX_NT);
        SBI_ASSERT_EQ_INT(shared.n_g, 4);
        SBI_ASSERT_EQ_INT(shared.w, W);
        SBI_ASSERT(!strcmp(shared.mol_name, "H2O") && shared.mol_mass == alone.mol_mass);
        SBI_ASSERT(!memcmp(shared.g, alone.g, sizeof shared.g));
        SBI_ASSERT(!memcmp(shared.weights, alone.weights, sizeof shared.weights));
        SBI_ASSERT(!memcmp(shared.k, alone.k, n * sizeof *shared.k));
        SBI_ASSERT(!memcmp(shared.p, alone.p, FX_NP * sizeof *shared.p));
        SBI_ASSERT(!memcmp(shared.t, alone.t, FX_NT * sizeof *shared.t));
        SBI_ASSERT(same_everywhere(hash_bytes(shared.k, n * sizeof *shared.k)));
        /* A model bin inside one table bin takes its distribution. */
        SBI_ASSERT(shared.k[0] > 0);
    }
    sbi_ck_rebinned_free(&shared);
    sbi_ck_rebinned_free(&alone);
    SBI_ASSERT(sbi_opacity_file_is_ck_on(&comm, ck_path) == 1);
    SBI_ASSERT(sbi_opacity_file_is_ck_on(&comm, "/nonexistent/none.h5") == 0);
    /* Malformed and missing: the same status everywhere, nothing held. */
    expect_agreed(sbi_ck_table_rebin_on(&comm, bad_ck_path, W, nu_lo, nu_hi, &shared), SBI_ERR_IO);
    SBI_ASSERT(shared.k == NULL);
    expect_agreed(sbi_ck_table_rebin_on(&comm, "/nonexistent/none.h5", W, nu_lo, nu_hi, &shared), SBI_ERR_IO);
}

static const char *task_fmt =
    "name: shared-tables\n"
    "version: 1.0.0\n"
    "parameters:\n"
    "  - {name: T_iso, prior: uniform, low: 800, high: 1200}\n"
    "forward_model:\n"
    "  family: transmission\n"
    "  settings:\n"
    "    pressure: {n_layers: 30}\n"
    "%s"
    "    species: [{name: H2O, opacity: %s}]\n"
    "    cia: [{pair: H2-H2, file: %s}]\n"
    "    model_resolution: 150\n"
    "    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0}\n"
    "datasets:\n"
    "  - {name: s, modality: spectrum, coordinates: [1.0, 1.4, 2.0, 2.7, 3.5], uncertainty: 1e-4}\n"
    "simulation:\n"
    "  n_simulations: 10\n"
    "  batch_size: 5\n"
    "  seed: 1\n"
    "  splits: {train: 0.8, validation: 0.1, test: 0.1}\n"
    "  noise: observational\n";

/* Extra settings lines (the correlated-k overlap) for the next spectra. */
static const char *extra_settings = "";

/* Create collectively (or alone, with c NULL) and simulate one row. */
static int spectrum(const char *line, const char *cia, const sbi_comm *c, double out[5])
{
    char text[8192];
    sbi_task *t = NULL;
    sbi_forward fw = NULL;
    const uint64_t idx[1] = {0};
    const double t_iso = 1000.0;
    int st;
    snprintf(text, sizeof text, task_fmt, extra_settings, line, cia);
    st = sbi_task_load_text(text, "shared.yaml", &t);
    if (!st) st = c ? sbi_forward_create_on(t, c, &fw) : sbi_forward_create(t, &fw);
    if (!st) st = sbi_forward_simulate(fw, 1, &t_iso, idx, 1, out);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&t);
    return st;
}

static void test_family(const char *line_path, const char *bad_path, const char *cia_path)
{
    double a[5], b[5];
    SBI_ASSERT_OK(spectrum(line_path, cia_path, &comm, a));
    SBI_ASSERT_OK(spectrum(line_path, cia_path, NULL, b));
    SBI_ASSERT(!memcmp(a, b, sizeof a));
    SBI_ASSERT(same_everywhere(hash_bytes(a, sizeof a)));
    for (int i = 0; i < 5; ++i) SBI_ASSERT(isfinite(a[i]) && a[i] > 0);

    /* The malformed table through the model: the same status everywhere,
     * the message (rank 0's) names the settings entry and the file. */
    {
        const int st = spectrum(bad_path, cia_path, &comm, a);
        if (comm.rank == 0)
            SBI_ASSERT(strstr(sbi_error_message(), "species[0] (H2O)") && strstr(sbi_error_message(), "bad.xsec"));
        expect_agreed(st, SBI_ERR_IO);
    }
    /* A missing CIA file: the same. */
    expect_agreed(spectrum(line_path, "/nonexistent/cia.h5", &comm, a), SBI_ERR_IO);
}

/* The same with a correlated-k species, for each overlap treatment. */
static void test_family_ck(const char *ck_path, const char *bad_ck_path, const char *cia_path)
{
    static const char *const overlap[3] = {"    ck_overlap: resort\n", "    ck_overlap: product\n", "    ck_overlap: aee\n"};
    double a[5], b[5];
    for (int m = 0; m < 3; ++m) {
        extra_settings = overlap[m];
        SBI_ASSERT_OK(spectrum(ck_path, cia_path, &comm, a));
        SBI_ASSERT_OK(spectrum(ck_path, cia_path, NULL, b));
        SBI_ASSERT(!memcmp(a, b, sizeof a));
        SBI_ASSERT(same_everywhere(hash_bytes(a, sizeof a)));
        for (int i = 0; i < 5; ++i) SBI_ASSERT(isfinite(a[i]) && a[i] > 0);
    }
    {
        const int st = spectrum(bad_ck_path, cia_path, &comm, a);
        if (comm.rank == 0)
            SBI_ASSERT(strstr(sbi_error_message(), "species[0] (H2O)") && strstr(sbi_error_message(), "bad.ktable") &&
                       strstr(sbi_error_message(), "'kcoeff'"));
        expect_agreed(st, SBI_ERR_IO);
    }
    extra_settings = "";
}

int main(int argc, char **argv)
{
    char line_path[2300], bad_path[2300], cia_path[2300], ck_path[2300], bad_ck_path[2300];
    int rc, fail;
    MPI_Init(&argc, &argv);
    sbi_comm_init(&comm, MPI_COMM_WORLD);
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    snprintf(line_path, sizeof line_path, "%s/H2O.xsec.petitRADTRANS.h5", work);
    snprintf(bad_path, sizeof bad_path, "%s/bad.xsec.petitRADTRANS.h5", work);
    snprintf(cia_path, sizeof cia_path, "%s/H2--H2.ciatable.petitRADTRANS.h5", work);
    snprintf(ck_path, sizeof ck_path, "%s/H2O.ktable.petitRADTRANS.h5", work);
    snprintf(bad_ck_path, sizeof bad_ck_path, "%s/bad.ktable.petitRADTRANS.h5", work);
    if (comm.rank == 0) {
        SBI_ASSERT_EQ_INT(fx_mkdirs(work), 0);
        SBI_ASSERT_OK(fx_write_line(line_path, 0));
        SBI_ASSERT_OK(fx_write_line(bad_path, 1));
        SBI_ASSERT_OK(fx_write_cia(cia_path));
        SBI_ASSERT_OK(fx_write_ck_table(ck_path, 0));
        SBI_ASSERT_OK(fx_write_ck_table(bad_ck_path, 1));
    }
    MPI_Barrier(comm.comm);

    test_tables(line_path, cia_path);
    /* The malformed table read directly. */
    {
        const double nu[3] = {2000.0, 5000.0, 8000.0};
        sbi_line_sampled s;
        expect_agreed(sbi_line_table_sample_on(&comm, bad_path, SBI_LINE_AUTO, 3, nu, &s), SBI_ERR_IO);
        SBI_ASSERT(s.sigma == NULL);
        expect_agreed(sbi_line_table_sample_on(&comm, "/nonexistent/none.h5", SBI_LINE_AUTO, 3, nu, &s), SBI_ERR_IO);
    }
    test_family(line_path, bad_path, cia_path);
    test_ck_table(ck_path, bad_ck_path);
    test_family_ck(ck_path, bad_ck_path, cia_path);

    fail = sbi_test_failures;
    MPI_Allreduce(MPI_IN_PLACE, &fail, 1, MPI_INT, MPI_MAX, comm.comm);
    if (comm.rank == 0) rc = SBI_TEST_REPORT("opacity_shared");
    else rc = fail ? 1 : 0;
    MPI_Finalize();
    return fail ? 1 : rc;
}
