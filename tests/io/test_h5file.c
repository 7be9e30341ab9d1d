/* Serial HDF5 files: a round trip of every type, commit/abort, and the
 * refusal of missing, truncated and foreign files with SBI_ERR_IO naming the
 * path.  Usage: test_io_h5file OUTPUT_DIR */
#include <hdf5.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exosbi/h5file.h"
#include "testutil.h"

static char dir[1024];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* The call fails with SBI_ERR_IO and its message names `path`. */
#define ASSERT_IO_ERROR(expr, path)                                                                          \
    do {                                                                                                     \
        int st__;                                                                                            \
        sbi_error_clear();                                                                                   \
        st__ = (expr);                                                                                       \
        SBI_ASSERT_EQ_INT(st__, SBI_ERR_IO);                                                                 \
        if (!strstr(sbi_error_message(), (path))) {                                                          \
            ++sbi_test_failures;                                                                             \
            fprintf(stderr, "%s:%d: message '%s' does not name %s\n", __FILE__, __LINE__, sbi_error_message(), \
                    (path));                                                                                 \
        }                                                                                                    \
        sbi_error_clear();                                                                                   \
    } while (0)

static void test_round_trip(void)
{
    char path[1200], partial[1300];
    sbi_h5w w = NULL;
    sbi_h5r r = NULL;
    const float f[6] = {1.5f, -2.25f, 3.0f, 1e-30f, 4e30f, 0.0f};
    const double d[3] = {3.141592653589793, -1e-300, 2.5};
    const int64_t i64[4] = {-9007199254740993LL, 0, 42, 9007199254740993LL};
    const char *names[3] = {"theta_1", "", "a much longer parameter name"};
    int64_t dims2[2] = {2, 3}, dims1[1] = {3}, dims4[1] = {4}, dims0[2] = {0, 5};
    float *fr = NULL;
    double *dr = NULL, dv = 0;
    int64_t *ir = NULL, iv = 0, shape[2], ver = 0;
    char *s = NULL, **strs = NULL, *fmt = NULL, *json = NULL;
    int rank = 0, n = 0;

    path_of(path, sizeof path, "roundtrip.h5");
    snprintf(partial, sizeof partial, "%s.partial", path);
    unlink(path);
    SBI_ASSERT_OK(sbi_h5w_create(path, "exosbi-test", 3, &w));
    SBI_ASSERT(access(partial, F_OK) == 0);
    SBI_ASSERT(access(path, F_OK) != 0);
    SBI_ASSERT_OK(sbi_h5w_float(w, "weights", 2, dims2, f));
    SBI_ASSERT_OK(sbi_h5w_double(w, "history/deep/val_loss", 1, dims1, d));
    SBI_ASSERT_OK(sbi_h5w_int64(w, "counts", 1, dims4, i64));
    SBI_ASSERT_OK(sbi_h5w_float(w, "empty", 2, dims0, NULL));
    SBI_ASSERT_OK(sbi_h5w_strings(w, "parameters/names", 3, names));
    SBI_ASSERT_OK(sbi_h5w_attr_string(w, NULL, "task", "{\"name\": \"θ test\"}"));
    SBI_ASSERT_OK(sbi_h5w_attr_double(w, "/", "best", -0.125));
    SBI_ASSERT_OK(sbi_h5w_attr_int64(w, "history/deep", "epoch", 1234567890123LL));
    SBI_ASSERT_OK(sbi_h5w_attr_int64(w, NULL, "epoch", 7));
    SBI_ASSERT_OK(sbi_h5w_attr_int64(w, NULL, "epoch", 8)); /* overwrite */
    sbi_error_clear();
    SBI_ASSERT(sbi_h5w_attr_int64(w, "no/such/group", "x", 1) == SBI_ERR_IO);
    SBI_ASSERT(sbi_h5w_double(w, "scalar", 0, dims1, d) != 0);
    sbi_error_clear();
    SBI_ASSERT_OK(sbi_h5w_commit(&w));
    SBI_ASSERT(w == NULL);
    SBI_ASSERT(access(partial, F_OK) != 0);
    SBI_ASSERT(access(path, F_OK) == 0);

    SBI_ASSERT_OK(sbi_h5r_open(path, "exosbi-test", &r));
    if (!r) return;
    SBI_ASSERT(!strcmp(sbi_h5r_path(r), path));
    SBI_ASSERT(sbi_h5r_has(r, "history/deep/val_loss"));
    SBI_ASSERT(sbi_h5r_has(r, "/weights"));
    SBI_ASSERT(!sbi_h5r_has(r, "history/nope/val_loss"));
    SBI_ASSERT(!sbi_h5r_has(r, "nothing"));
    SBI_ASSERT_OK(sbi_h5r_shape(r, "weights", &rank, shape));
    SBI_ASSERT_EQ_INT(rank, 2);
    SBI_ASSERT_EQ_INT(shape[0], 2);
    SBI_ASSERT_EQ_INT(shape[1], 3);
    SBI_ASSERT_OK(sbi_h5r_float(r, "weights", &fr, &rank, shape));
    for (int i = 0; fr && i < 6; ++i) SBI_ASSERT(fr[i] == f[i]);
    SBI_ASSERT_OK(sbi_h5r_double(r, "history/deep/val_loss", &dr, &rank, shape));
    SBI_ASSERT_EQ_INT(rank, 1);
    SBI_ASSERT_EQ_INT(shape[0], 3);
    for (int i = 0; dr && i < 3; ++i) SBI_ASSERT(dr[i] == d[i]);
    free(dr);
    dr = NULL;
    /* Floats read as doubles convert exactly. */
    SBI_ASSERT_OK(sbi_h5r_double(r, "weights", &dr, NULL, NULL));
    for (int i = 0; dr && i < 6; ++i) SBI_ASSERT(dr[i] == (double)f[i]);
    SBI_ASSERT_OK(sbi_h5r_int64(r, "counts", &ir, &rank, shape));
    for (int i = 0; ir && i < 4; ++i) SBI_ASSERT_EQ_INT(ir[i], i64[i]);
    free(fr);
    fr = NULL;
    SBI_ASSERT_OK(sbi_h5r_float(r, "empty", &fr, &rank, shape));
    SBI_ASSERT_EQ_INT(shape[0], 0);
    SBI_ASSERT_EQ_INT(shape[1], 5);
    SBI_ASSERT_OK(sbi_h5r_strings(r, "parameters/names", &n, &strs));
    SBI_ASSERT_EQ_INT(n, 3);
    for (int i = 0; strs && i < n; ++i) {
        SBI_ASSERT(!strcmp(strs[i], names[i]));
        free(strs[i]);
    }
    free(strs);
    SBI_ASSERT_OK(sbi_h5r_attr_string(r, NULL, "task", &s));
    SBI_ASSERT(s && !strcmp(s, "{\"name\": \"θ test\"}"));
    free(s);
    s = NULL;
    SBI_ASSERT_OK(sbi_h5r_attr_string(r, "/", "format", &s));
    SBI_ASSERT(s && !strcmp(s, "exosbi-test"));
    free(s);
    SBI_ASSERT_OK(sbi_h5r_attr_double(r, NULL, "best", &dv));
    SBI_ASSERT(dv == -0.125);
    SBI_ASSERT_OK(sbi_h5r_attr_int64(r, "history/deep", "epoch", &iv));
    SBI_ASSERT_EQ_INT(iv, 1234567890123LL);
    SBI_ASSERT_OK(sbi_h5r_attr_int64(r, NULL, "epoch", &iv));
    SBI_ASSERT_EQ_INT(iv, 8);
    SBI_ASSERT_OK(sbi_h5r_attr_int64(r, NULL, "format_version", &iv));
    SBI_ASSERT_EQ_INT(iv, 3);
    free(dr);
    dr = NULL;
    /* Missing things are SBI_ERR_IO naming the file. */
    ASSERT_IO_ERROR(sbi_h5r_attr_int64(r, NULL, "nope", &iv), path);
    ASSERT_IO_ERROR(sbi_h5r_double(r, "history/none", &dr, NULL, NULL), path);
    ASSERT_IO_ERROR(sbi_h5r_attr_int64(r, NULL, "task", &iv), path); /* a string is not a number */
    free(dr);
    free(fr);
    free(ir);
    sbi_h5r_close(&r);
    SBI_ASSERT(r == NULL);
    sbi_h5r_close(&r); /* NULL-safe */

    SBI_ASSERT_OK(sbi_h5_file_format(path, &fmt, &ver));
    SBI_ASSERT(fmt && !strcmp(fmt, "exosbi-test"));
    SBI_ASSERT_EQ_INT(ver, 3);
    free(fmt);
    SBI_ASSERT_OK(sbi_h5_describe_json(path, &json));
    SBI_ASSERT(json && strstr(json, "\"format\":\"exosbi-test\""));
    SBI_ASSERT(json && strstr(json, "\"/history/deep/val_loss\""));
    SBI_ASSERT(json && strstr(json, "\"shape\":[2,3]"));
    SBI_ASSERT(json && strstr(json, "\"type\":\"float32\""));
    SBI_ASSERT(json && strstr(json, "\"type\":\"int64\""));
    SBI_ASSERT(json && strstr(json, "\"/history/deep\""));
    SBI_ASSERT(json && strstr(json, "\"epoch\":8"));
    free(json);

    /* The wrong format is refused. */
    ASSERT_IO_ERROR(sbi_h5r_open(path, "exosbi-model", &r), path);
    SBI_ASSERT(r == NULL);
}

static void test_abort(void)
{
    char path[1200], partial[1300];
    sbi_h5w w = NULL;
    int64_t dims[1] = {2};
    const double d[2] = {1, 2};
    path_of(path, sizeof path, "aborted.h5");
    snprintf(partial, sizeof partial, "%s.partial", path);
    unlink(path);
    SBI_ASSERT_OK(sbi_h5w_create(path, "exosbi-test", 1, &w));
    SBI_ASSERT_OK(sbi_h5w_double(w, "x", 1, dims, d));
    sbi_h5w_abort(&w);
    SBI_ASSERT(w == NULL);
    sbi_h5w_abort(&w);
    SBI_ASSERT(access(partial, F_OK) != 0);
    SBI_ASSERT(access(path, F_OK) != 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Copy the first `bytes` of src to dst. */
static void truncate_copy(const char *src, const char *dst, long bytes)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[4096];
    long left = bytes;
    while (in && out && left > 0) {
        size_t n = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, in);
        if (n == 0) break;
        fwrite(buf, 1, n, out);
        left -= (long)n;
    }
    if (in) fclose(in);
    if (out) fclose(out);
}

static void test_bad_files(void)
{
    char path[1200], text[1200], trunc[1200], bare[1200], missing[1200], good[1200];
    sbi_h5r r = NULL;
    char *fmt = NULL, *json = NULL;
    int64_t v;
    struct stat st;
    sbi_h5w w = NULL;
    int64_t dims[1] = {4000};
    double *big = calloc(4000, sizeof *big);

    /* A real file with enough data that a truncated copy misses some of it. */
    path_of(good, sizeof good, "good.h5");
    SBI_ASSERT_OK(sbi_h5w_create(good, "exosbi-test", 1, &w));
    SBI_ASSERT_OK(sbi_h5w_double(w, "big", 1, dims, big));
    SBI_ASSERT_OK(sbi_h5w_commit(&w));
    free(big);

    path_of(text, sizeof text, "notes.txt");
    write_text(text, "this is not an HDF5 file\n1 2 3\n");
    ASSERT_IO_ERROR(sbi_h5r_open(text, NULL, &r), text);
    ASSERT_IO_ERROR(sbi_h5_file_format(text, &fmt, &v), text);
    ASSERT_IO_ERROR(sbi_h5_describe_json(text, &json), text);

    path_of(trunc, sizeof trunc, "truncated.h5");
    SBI_ASSERT(stat(good, &st) == 0);
    truncate_copy(good, trunc, (long)st.st_size / 2);
    ASSERT_IO_ERROR(sbi_h5r_open(trunc, "exosbi-test", &r), trunc);
    truncate_copy(good, trunc, 100);
    ASSERT_IO_ERROR(sbi_h5r_open(trunc, "exosbi-test", &r), trunc);

    /* An HDF5 file that exosbi did not write (no format attribute). */
    path_of(bare, sizeof bare, "bare.h5");
    {
        hid_t f = H5Fcreate(bare, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        SBI_ASSERT(f >= 0);
        if (f >= 0) H5Fclose(f);
    }
    ASSERT_IO_ERROR(sbi_h5r_open(bare, NULL, &r), bare);
    ASSERT_IO_ERROR(sbi_h5_file_format(bare, &fmt, &v), bare);
    /* describe works on any HDF5 file, with a null format. */
    SBI_ASSERT_OK(sbi_h5_describe_json(bare, &json));
    SBI_ASSERT(json && strstr(json, "\"format\":null"));
    free(json);

    path_of(missing, sizeof missing, "does_not_exist.h5");
    ASSERT_IO_ERROR(sbi_h5r_open(missing, NULL, &r), missing);
    path_of(path, sizeof path, "");
    ASSERT_IO_ERROR(sbi_h5r_open(path, NULL, &r), path); /* a directory */
    SBI_ASSERT(r == NULL);
}

/* mkdir -p */
static void make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    make_dirs(dir);
    test_round_trip();
    test_abort();
    test_bad_files();
    MPI_Finalize();
    return SBI_TEST_REPORT("io_h5file");
}
