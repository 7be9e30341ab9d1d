/* Flux-conserving rebinning of observations and text covariance matrices:
 * a linear spectrum on a fine grid rebinned onto a coarse one is exact, the
 * integral is conserved on misaligned grids, errors propagate as independent,
 * missing points and the ends of the data leave bins missing, and bad matrix
 * files name file:line. */
#include <string.h>
#include <unistd.h>

#include "exosbi/observation.h"
#include "testutil.h"

#define NF 40
#define K 4
#define NC (NF / K)

static char dir[] = "/tmp/exosbi-rebin-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* A fine observation: NF bins of width h from 1.0, value a + b * centre, error s. */
static void fine(sbi_observation *o, double *c, double *v, double *e, double *w, int with_width)
{
    const double h = 0.01;
    memset(o, 0, sizeof *o);
    snprintf(o->source, sizeof o->source, "fine");
    for (int i = 0; i < NF; ++i) {
        c[i] = 1.0 + (i + 0.5) * h;
        v[i] = 3.0 - 2.0 * c[i];
        e[i] = 0.2;
        w[i] = h;
    }
    o->n = NF;
    o->coordinate = c;
    o->value = v;
    o->uncertainty = e;
    o->bin_width = with_width ? w : NULL;
}

int main(int argc, char **argv)
{
    double c[NF], v[NF], e[NF], w[NF], C[NC], y[NC], s[NC], cov[NC * NC];
    unsigned char miss[NC];
    sbi_observation o;
    sbi_rebin rb;
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) return 1;

    /* A linear spectrum: coarse bins of K fine bins each, centres the means of theirs. */
    for (int with_width = 0; with_width < 2; ++with_width) {
        fine(&o, c, v, e, w, with_width);
        for (int j = 0; j < NC; ++j) {
            C[j] = 0.0;
            for (int k = 0; k < K; ++k) C[j] += c[j * K + k] / K;
        }
        SBI_ASSERT_OK(sbi_rebin_make(&o, NC, C, &rb));
        SBI_ASSERT_EQ_INT(rb.n_missing, 0);
        sbi_rebin_apply(&rb, &o, y, s, miss, NULL);
        for (int j = 0; j < NC; ++j) {
            SBI_ASSERT_EQ_INT(miss[j], 0);
            SBI_ASSERT_NEAR(y[j], 3.0 - 2.0 * C[j], 1e-13, 1e-13);
            SBI_ASSERT_NEAR(s[j], 0.2 / sqrt((double)K), 1e-12, 0);
            SBI_ASSERT_NEAR(rb.coverage[j], 1.0, 1e-9, 0);
        }
        sbi_rebin_free(&rb);
    }

    /* Decreasing source wavelengths (as in some x1d products) give the same result. */
    {
        double cr[NF], vr[NF], er[NF], y2[NC], s2[NC];
        sbi_observation r;
        fine(&o, c, v, e, w, 0);
        for (int i = 0; i < NF; ++i) {
            cr[i] = c[NF - 1 - i];
            vr[i] = v[NF - 1 - i];
            er[i] = e[NF - 1 - i];
        }
        r = o;
        r.coordinate = cr;
        r.value = vr;
        r.uncertainty = er;
        SBI_ASSERT_OK(sbi_rebin_make(&o, NC, C, &rb));
        sbi_rebin_apply(&rb, &o, y, s, miss, NULL);
        sbi_rebin_free(&rb);
        SBI_ASSERT_OK(sbi_rebin_make(&r, NC, C, &rb));
        sbi_rebin_apply(&rb, &r, y2, s2, miss, NULL);
        sbi_rebin_free(&rb);
        for (int j = 0; j < NC; ++j) {
            SBI_ASSERT_NEAR(y2[j], y[j], 1e-14, 1e-14);
            SBI_ASSERT_NEAR(s2[j], s[j], 1e-14, 0);
        }
    }

    /* Misaligned grids conserve the integral of any spectrum over the common range. */
    {
        const int n7 = 7;
        double C7[7], y7[7], s7[7], in = 0.0, out = 0.0;
        unsigned char m7[7];
        fine(&o, c, v, e, w, 0);
        for (int i = 0; i < NF; ++i) {
            v[i] = sin(7.0 * c[i]) + 0.3 * i;
            in += v[i] * 0.01;
        }
        for (int j = 0; j < n7; ++j) C7[j] = 1.0 + (j + 0.5) * 0.4 / n7;
        SBI_ASSERT_OK(sbi_rebin_make(&o, n7, C7, &rb));
        sbi_rebin_apply(&rb, &o, y7, s7, m7, NULL);
        for (int j = 0; j < n7; ++j) out += y7[j] * 0.4 / n7;
        SBI_ASSERT_NEAR(out, in, 1e-12, 0);
        sbi_rebin_free(&rb);
    }

    /* Covariance: W C W^T; a diagonal C gives the independent-error variances. */
    {
        double cin[NF * NF];
        fine(&o, c, v, e, w, 0);
        memset(cin, 0, sizeof cin);
        for (int i = 0; i < NF; ++i) cin[i * NF + i] = e[i] * e[i];
        o.covariance = cin;
        SBI_ASSERT_OK(sbi_rebin_make(&o, NC, C, &rb));
        sbi_rebin_apply(&rb, &o, y, s, miss, cov);
        for (int j = 0; j < NC; ++j) {
            SBI_ASSERT_NEAR(cov[j * NC + j], s[j] * s[j], 1e-12, 0);
            if (j) SBI_ASSERT_NEAR(cov[j * NC + j - 1], 0, 0, 1e-15);
        }
        /* Full correlation of the source gives full correlation of the targets. */
        for (int i = 0; i < NF * NF; ++i) cin[i] = 0.04;
        sbi_rebin_covariance(&rb, cin, cov);
        SBI_ASSERT_NEAR(cov[0 * NC + 5], 0.04, 1e-12, 0);
        sbi_rebin_free(&rb);
        o.covariance = NULL;
    }

    /* Missing points: one of four leaves the bin (mean of the other three); three of four lose it. */
    {
        unsigned char fm[NF];
        fine(&o, c, v, e, w, 0);
        memset(fm, 0, sizeof fm);
        fm[5] = 1;
        fm[8] = fm[9] = fm[10] = 1;
        o.missing = fm;
        o.n_missing = 4;
        v[5] = v[8] = v[9] = v[10] = NAN;
        SBI_ASSERT_OK(sbi_rebin_make(&o, NC, C, &rb));
        sbi_rebin_apply(&rb, &o, y, s, miss, NULL);
        SBI_ASSERT_EQ_INT(rb.n_missing, 1);
        SBI_ASSERT_EQ_INT(miss[1], 0);
        SBI_ASSERT_NEAR(rb.coverage[1], 0.75, 1e-9, 0);
        SBI_ASSERT_NEAR(y[1], (v[4] + v[6] + v[7]) / 3.0, 1e-14, 0);
        SBI_ASSERT_NEAR(s[1], 0.2 / sqrt(3.0), 1e-12, 0);
        SBI_ASSERT_EQ_INT(miss[2], 1);
        SBI_ASSERT(isnan(y[2]));
        sbi_rebin_free(&rb);
    }

    /* Target bins beyond the data are missing; a target grid that is not increasing is refused. */
    {
        double C3[3] = {1.38, 1.42, 1.46}, y3[3], s3[3];
        unsigned char m3[3];
        fine(&o, c, v, e, w, 0);
        SBI_ASSERT_OK(sbi_rebin_make(&o, 3, C3, &rb));
        sbi_rebin_apply(&rb, &o, y3, s3, m3, NULL);
        SBI_ASSERT(m3[0] == 0 && m3[1] == 1 && m3[2] == 1);
        SBI_ASSERT_EQ_INT(rb.n_missing, 2);
        sbi_rebin_free(&rb);
        C3[1] = 1.3;
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_rebin_make(&o, 3, C3, &rb), SBI_ERR_INPUT);
        sbi_error_clear();
        o.coordinate = NULL;
        SBI_ASSERT_EQ_INT(sbi_rebin_make(&o, NC, C, &rb), SBI_ERR_INCOMPATIBLE);
        sbi_error_clear();
    }

    /* Text covariance matrices. */
    {
        int64_t n = 0;
        double *m = NULL;
        SBI_ASSERT_OK(sbi_observation_read_matrix(write_tmp("c.txt", "# C\n4, 1, 0\n1 9 0\n0 0 16 # last\n"), &n, &m));
        SBI_ASSERT_EQ_INT(n, 3);
        SBI_ASSERT(m && m[1] == 1 && m[8] == 16);
        free(m);
        m = NULL;
        {
            struct { const char *name, *text, *want; } bad[] = {
                {"asym.txt", "4 1\n2 9\n", "asym.txt:2"},
                {"ragged.txt", "4 1\n1\n", "ragged.txt:2"},
                {"tall.txt", "4 1\n1 9\n0 0\n", "tall.txt:3"},
                {"short.txt", "4 1 0\n1 9 0\n", "2 rows of 3 columns"},
                {"word.txt", "4 x\n1 9\n", "word.txt:1"},
                {"diag.txt", "1 0\n0 -1\n", "diag.txt:2"},
                {"indef.txt", "1 2\n2 1\n", "not positive definite"},
            };
            for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
                int st;
                sbi_error_clear();
                st = sbi_observation_read_matrix(write_tmp(bad[i].name, bad[i].text), &n, &m);
                SBI_ASSERT_EQ_INT(st, SBI_ERR_INPUT);
                SBI_ASSERT(m == NULL);
                if (!strstr(sbi_error_message(), bad[i].want)) {
                    fprintf(stderr, "message '%s' lacks '%s'\n", sbi_error_message(), bad[i].want);
                    SBI_ASSERT(0);
                }
            }
            sbi_error_clear();
        }
    }
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    }
    {
        int rc = SBI_TEST_REPORT("io_observation_rebin");
        MPI_Finalize();
        return rc;
    }
}
