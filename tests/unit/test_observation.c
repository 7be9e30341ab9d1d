/* Text observation files: every column layout, comments and commas, and the
 * errors for malformed files (file:line in the message). */
#include <string.h>
#include <unistd.h>

#include "exosbi/observation.h"
#include "testutil.h"

static char dir[] = "/tmp/exosbi-obs-XXXXXX";

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

int main(int argc, char **argv)
{
    sbi_observation o;
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) return 1;

    SBI_ASSERT_OK(sbi_observation_read_text(write_tmp("one.txt", "# values\n1.5\n\n-2e-3   # trailing\n3\n"), &o));
    SBI_ASSERT_EQ_INT(o.n, 3);
    SBI_ASSERT_EQ_INT(o.n_columns, 1);
    SBI_ASSERT(o.coordinate == NULL && o.uncertainty == NULL);
    SBI_ASSERT_NEAR(o.value[1], -2e-3, 0, 0);
    sbi_observation_free(&o);

    SBI_ASSERT_OK(sbi_observation_read_text(write_tmp("three.txt", "0.5, 1.0, 0.1\n0.6,2.0,0.2\r\n"), &o));
    SBI_ASSERT_EQ_INT(o.n, 2);
    SBI_ASSERT_NEAR(o.coordinate[1], 0.6, 0, 0);
    SBI_ASSERT_NEAR(o.value[1], 2.0, 0, 0);
    SBI_ASSERT_NEAR(o.uncertainty[0], 0.1, 0, 0);
    sbi_observation_free(&o);

    SBI_ASSERT_OK(sbi_observation_read_text(write_tmp("four.txt", "1 0.1 5 0.5\n2 0.1 6 0.6\n3 0.2 7 0.7\n"), &o));
    SBI_ASSERT_EQ_INT(o.n_columns, 4);
    SBI_ASSERT_NEAR(o.bin_width[2], 0.2, 0, 0);
    SBI_ASSERT_NEAR(o.value[2], 7, 0, 0);
    SBI_ASSERT_NEAR(o.uncertainty[2], 0.7, 0, 0);
    sbi_observation_free(&o);

    {
        struct { const char *name, *text, *want; } bad[] = {
            {"ragged.txt", "1 2\n3 4\n5\n", "ragged.txt:3"},
            {"nan.txt", "1\nnan\n", "nan.txt:2"},
            {"word.txt", "1\n2\nabc\n", "word.txt:3"},
            {"glued.txt", "1\n2x\n", "glued.txt:2"},
            {"empty.txt", "# nothing\n\n", "no data rows"},
            {"negative.txt", "1 -0.5\n", "negative uncertainty"},
            {"five.txt", "1 2 3 4 5\n", "more than 4 columns"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
            int st;
            sbi_error_clear();
            st = sbi_observation_read_text(write_tmp(bad[i].name, bad[i].text), &o);
            SBI_ASSERT_EQ_INT(st, SBI_ERR_INPUT);
            if (!strstr(sbi_error_message(), bad[i].want)) {
                fprintf(stderr, "message '%s' lacks '%s'\n", sbi_error_message(), bad[i].want);
                SBI_ASSERT(0);
            }
        }
        sbi_error_clear();
        SBI_ASSERT_EQ_INT(sbi_observation_read_text("/nonexistent/obs.txt", &o), SBI_ERR_INPUT);
        SBI_ASSERT(strstr(sbi_error_message(), "/nonexistent/obs.txt") != NULL);
    }
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    }
    {
        int rc = SBI_TEST_REPORT("io_observation_text");
        MPI_Finalize();
        return rc;
    }
}
