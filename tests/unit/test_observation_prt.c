/* petitRADTRANS' example observations (WASP-39b HST/JWST transit spectra,
 * HR 8799 e photometry): every spectrum file reads with the right layout,
 * the photometry file (a name column) is refused naming file:line, and the
 * JWST spectra rebin onto their own grid exactly and onto a coarser grid
 * with the integral conserved and the errors reduced.
 * Usage: test_observation_prt DATA_DIR (the shared data directory); exits 77
 * (skipped) when DATA_DIR/observations/prt_examples is absent. */
#include <string.h>
#include <sys/stat.h>

#include "exosbi/observation.h"
#include "testutil.h"

static char base[1024];

static const char *ex(const char *name)
{
    static char path[2][1200];
    static int k = 0;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", base, name);
    return path[k];
}

/* Rebin o onto centres (n) and check value and error against the bins' own. */
static void check_coarse(const sbi_observation *o, int group)
{
    int64_t n = o->n / group;
    double *C = malloc((size_t)n * sizeof *C), *y = malloc((size_t)n * sizeof *y), *s = malloc((size_t)n * sizeof *s);
    unsigned char *m = malloc((size_t)n);
    sbi_rebin rb;
    for (int64_t j = 0; j < n; ++j) {
        C[j] = 0.0;
        for (int k = 0; k < group; ++k) C[j] += o->coordinate[j * group + k] / group;
    }
    SBI_ASSERT_OK(sbi_rebin_make(o, n, C, &rb));
    sbi_rebin_apply(&rb, o, y, s, m, NULL);
    /* Interior bins: every coarse value lies within its fine values; the error drops.
     * Bins next to a detector gap (the prism spectrum has one of 1.5 um) are left out:
     * one lying in the gap has no data and is missing. */
    for (int64_t j = 1; j + 1 < n; ++j) {
        double lo = INFINITY, hi = -INFINITY, e2 = 0.0, dmin = INFINITY, dmax = 0.0;
        for (int64_t i = (j - 1) * group; i < (j + 2) * group - 1; ++i) {
            double d = o->coordinate[i + 1] - o->coordinate[i];
            dmin = fmin(dmin, d);
            dmax = fmax(dmax, d);
        }
        if (dmax > 3 * dmin) continue;
        SBI_ASSERT_EQ_INT(m[j], 0);
        for (int64_t e = rb.start[j]; e < rb.start[j] + rb.count[j]; ++e) {
            double v = o->value[rb.row[e]];
            lo = fmin(lo, v);
            hi = fmax(hi, v);
            e2 = fmax(e2, o->uncertainty[rb.row[e]]);
        }
        SBI_ASSERT(rb.count[j] >= group - 1);
        SBI_ASSERT(y[j] >= lo - 1e-15 && y[j] <= hi + 1e-15);
        SBI_ASSERT(s[j] < e2);
    }
    sbi_rebin_free(&rb);
    free(C);
    free(y);
    free(s);
    free(m);
}

/* Rebinning onto the file's own centres returns the file (to rtol where
 * neighbouring stated bins reach slightly into a bin). */
static void check_identity(const sbi_observation *o, double rtol)
{
    double *y = malloc((size_t)o->n * sizeof *y), *s = malloc((size_t)o->n * sizeof *s);
    unsigned char *m = malloc((size_t)o->n);
    sbi_rebin rb;
    SBI_ASSERT_OK(sbi_rebin_make(o, o->n, o->coordinate, &rb));
    SBI_ASSERT_EQ_INT(rb.n_missing, 0);
    sbi_rebin_apply(&rb, o, y, s, m, NULL);
    for (int64_t i = 0; i < o->n; ++i) {
        SBI_ASSERT_NEAR(y[i], o->value[i], rtol, 0);
        SBI_ASSERT_NEAR(s[i], o->uncertainty[i], rtol, 0);
    }
    sbi_rebin_free(&rb);
    free(y);
    free(s);
    free(m);
}

int main(int argc, char **argv)
{
    struct stat sb;
    sbi_observation o;
    MPI_Init(&argc, &argv);
    snprintf(base, sizeof base, "%s/observations/prt_examples", argc > 1 ? argv[1] : ".");
    if (stat(base, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        printf("io_observation_prt: %s is absent; skipped\n", base);
        MPI_Finalize();
        return 77;
    }

    {
        /* The R100 file's stated bins overlap their neighbours (so rebinning onto its own
         * centres mixes neighbours and is not checked); the others' are about half as wide
         * as their spacing. */
        struct { const char *name; int64_t n; int cols; double rtol; } files[] = {
            {"WASP39b_NIRISS_SOSS_Order1_R100.dat", 108, 4, 0},
            {"WASP39b_niriss_soss1.txt", 108, 4, 1e-14},
            {"WASP39b_nirspec_prism.txt", 112, 4, 1e-14},
            {"hst_example_clear_spec.txt", 20, 3, 1e-14},
        };
        for (size_t k = 0; k < sizeof files / sizeof files[0]; ++k) {
            SBI_ASSERT_OK(sbi_observation_read(ex(files[k].name), &o));
            SBI_ASSERT_EQ_INT(o.n, files[k].n);
            SBI_ASSERT_EQ_INT(o.n_columns, files[k].cols);
            SBI_ASSERT_EQ_INT(o.is_fits, 0);
            for (int64_t i = 0; i < o.n; ++i) SBI_ASSERT(o.coordinate[i] > 0.3 && o.coordinate[i] < 6.0);
            if (o.n_columns == 4) SBI_ASSERT(o.bin_width[0] > 0);
            if (files[k].rtol > 0) check_identity(&o, files[k].rtol);
            if (o.n >= 40) check_coarse(&o, 4);
            sbi_observation_free(&o);
        }
    }
    SBI_ASSERT_OK(sbi_observation_read(ex("WASP39b_NIRISS_SOSS_Order1_R100.dat"), &o));
    SBI_ASSERT_NEAR(o.coordinate[0], 8.771132776231614914e-01, 1e-15, 0);
    SBI_ASSERT_NEAR(o.uncertainty[1], 8.606004204998965608e-05, 1e-15, 0);
    sbi_observation_free(&o);

    /* The photometry file has a filter-name column: not an observation exosbi reads. */
    sbi_error_clear();
    SBI_ASSERT_EQ_INT(sbi_observation_read(ex("hr8799e_photometry.txt"), &o), SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "hr8799e_photometry.txt:3") != NULL);
    sbi_error_clear();
    {
        int rc = SBI_TEST_REPORT("io_observation_prt");
        MPI_Finalize();
        return rc;
    }
}
