/* The simulator and the split assignment, without files: rows depend on their
 * index alone (whole block, row by row and split blocks agree bitwise),
 * constraints are enforced by redraws, an impossible constraint is
 * SBI_ERR_INPUT, noise has the stated scale, and both split policies give
 * the right counts with rows in index order. */
#include <math.h>
#include <string.h>

#include "exosbi/simulate.h"
#include "testutil.h"

static const char *task_text(int noise, const char *constraint, const char *policy, int n)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "name: sim-unit\nversion: 1.0.0\n"
             "parameters:\n"
             "  - {name: a, prior: normal, mean: 0.0, std: 1.0}\n"
             "  - {name: b, prior: uniform, low: -1, high: 2}\n"
             "  - {name: c, prior: log_uniform, low: 0.1, high: 10}\n"
             "forward_model: {family: linear_gaussian, settings: {seed: 5, scale: 1.0}}\n"
             "datasets:\n"
             "  - {name: x, modality: auxiliary, size: 4, uncertainty: 0.5%s}\n"
             "  - {name: y, modality: auxiliary, size: 3, uncertainty: [0.1, 0.2, 0.3]}\n"
             "simulation: {n_simulations: %d, batch_size: 64, seed: 99, noise: %s,\n"
             "             splits: {train: 0.7, validation: 0.2, test: 0.1}, split_policy: %s}\n",
             constraint, n, noise ? "observational" : "none", policy);
    return text;
}

static int load(const char *text, sbi_task **task, sbi_forward *fw)
{
    SBI_CALL(sbi_task_load_text(text, "test_simulate.yaml", task));
    SBI_CALL(sbi_forward_create(*task, fw));
    return 0;
}

static void test_determinism(void)
{
    sbi_task *task = NULL;
    sbi_forward fw = NULL;
    enum { N = 200, I0 = 1000 };
    double *t1, *x1, *t2, *x2;
    int64_t red1 = 0, red2 = 0, bad = 0;
    int P, O;
    SBI_ASSERT_OK(load(task_text(1, ", constraints: {min: -1.5}", "random", 5000), &task, &fw));
    if (!fw) return;
    P = task->n_params;
    O = (int)task->n_outputs;
    t1 = malloc(N * P * sizeof *t1);
    t2 = malloc(N * P * sizeof *t2);
    x1 = malloc(N * O * sizeof *x1);
    x2 = malloc(N * O * sizeof *x2);
    SBI_ASSERT_OK(sbi_simulate_rows(task, fw, I0, N, t1, x1, &red1));
    /* Row by row. */
    for (int r = 0; r < N; ++r) SBI_ASSERT_OK(sbi_simulate_rows(task, fw, I0 + r, 1, t2 + r * P, x2 + r * O, &red2));
    SBI_ASSERT(memcmp(t1, t2, N * P * sizeof *t1) == 0);
    SBI_ASSERT(memcmp(x1, x2, N * O * sizeof *x1) == 0);
    SBI_ASSERT_EQ_INT(red1, red2);
    /* Two uneven blocks. */
    memset(t2, 0, N * P * sizeof *t2);
    red2 = 0;
    SBI_ASSERT_OK(sbi_simulate_rows(task, fw, I0, 77, t2, x2, &red2));
    SBI_ASSERT_OK(sbi_simulate_rows(task, fw, I0 + 77, N - 77, t2 + 77 * P, x2 + 77 * O, &red2));
    SBI_ASSERT(memcmp(t1, t2, N * P * sizeof *t1) == 0);
    SBI_ASSERT(memcmp(x1, x2, N * O * sizeof *x1) == 0);
    /* The constraint held, and some rows needed redraws to meet it. */
    for (int r = 0; r < N; ++r)
        for (int j = 0; j < 4; ++j)
            if (!(x1[r * O + j] >= -1.5)) ++bad;
    SBI_ASSERT_EQ_INT(bad, 0);
    SBI_ASSERT(red1 > 0);
    /* Parameters are in their priors' supports. */
    for (int r = 0; r < N; ++r) SBI_ASSERT(sbi_prior_in_support(task, t1 + r * P));
    free(t1);
    free(t2);
    free(x1);
    free(x2);
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&task);
}

static void test_impossible(void)
{
    sbi_task *task = NULL;
    sbi_forward fw = NULL;
    double t[3 * 4], x[7 * 4];
    int64_t red = 0;
    int st;
    SBI_ASSERT_OK(load(task_text(1, ", constraints: {min: 1.0e6}", "sequential", 100), &task, &fw));
    if (!fw) return;
    sbi_error_clear();
    st = sbi_simulate_rows(task, fw, 0, 4, t, x, &red);
    SBI_ASSERT_EQ_INT(st, SBI_ERR_INPUT);
    SBI_ASSERT(strstr(sbi_error_message(), "no valid observation") != NULL);
    SBI_ASSERT(strstr(sbi_error_message(), "'x'") != NULL);
    sbi_error_clear();
    sbi_forward_destroy(&fw);
    sbi_task_destroy(&task);
}

static void test_noise(void)
{
    sbi_task *tn = NULL, *to = NULL;
    sbi_forward fn = NULL, fo = NULL;
    enum { N = 2000 };
    double *t0 = malloc(N * 3 * sizeof(double)), *t1 = malloc(N * 3 * sizeof(double));
    double *x0 = malloc(N * 7 * sizeof(double)), *x1 = malloc(N * 7 * sizeof(double));
    const double *A = NULL;
    double s2[7] = {0}, maxerr = 0;
    int64_t red = 0;
    SBI_ASSERT_OK(load(task_text(0, "", "sequential", N), &tn, &fn));
    SBI_ASSERT_OK(load(task_text(1, "", "sequential", N), &to, &fo));
    if (!fn || !fo) return;
    SBI_ASSERT_OK(sbi_simulate_rows(tn, fn, 0, N, t0, x0, &red));
    SBI_ASSERT_OK(sbi_simulate_rows(to, fo, 0, N, t1, x1, &red));
    SBI_ASSERT_EQ_INT(red, 0);
    SBI_ASSERT(memcmp(t0, t1, N * 3 * sizeof(double)) == 0); /* the prior draws do not depend on the noise */
    SBI_ASSERT_OK(sbi_linear_gaussian_matrices(fn, &A, NULL));
    for (int r = 0; A && r < N; ++r)
        for (int i = 0; i < 7; ++i) {
            double ax = 0;
            for (int j = 0; j < 3; ++j) ax += A[i * 3 + j] * t0[r * 3 + j];
            if (fabs(ax - x0[r * 7 + i]) > maxerr) maxerr = fabs(ax - x0[r * 7 + i]);
            s2[i] += (x1[r * 7 + i] - x0[r * 7 + i]) * (x1[r * 7 + i] - x0[r * 7 + i]);
        }
    SBI_ASSERT(maxerr < 1e-9);
    for (int i = 0; i < 7; ++i) {
        double want = i < 4 ? 0.5 : 0.1 * (i - 3);
        SBI_ASSERT_NEAR(sqrt(s2[i] / N), want, 0.1, 0.0);
    }
    free(t0);
    free(t1);
    free(x0);
    free(x1);
    sbi_forward_destroy(&fn);
    sbi_forward_destroy(&fo);
    sbi_task_destroy(&tn);
    sbi_task_destroy(&to);
}

static void check_splits(const char *policy, int n)
{
    sbi_task *task = NULL;
    sbi_splits s = NULL;
    int64_t next[3] = {0, 0, 0}, counts[3], bad = 0;
    SBI_ASSERT_OK(sbi_task_load_text(task_text(1, "", policy, n), "splits.yaml", &task));
    if (!task) return;
    SBI_ASSERT_OK(sbi_splits_create(task, &s));
    if (!s) return;
    /* Every index has the next row of its split: rows are in index order. */
    for (int64_t i = 0; i < n; ++i) {
        int k = sbi_splits_of(s, i);
        if (k < 0 || k > 2 || sbi_splits_row(s, i) != next[k]) ++bad;
        else next[k]++;
    }
    SBI_ASSERT_EQ_INT(bad, 0);
    for (int k = 0; k < 3; ++k) SBI_ASSERT_EQ_INT(next[k], task->split_counts[k]);
    sbi_splits_count(s, 0, n, counts);
    for (int k = 0; k < 3; ++k) SBI_ASSERT_EQ_INT(counts[k], task->split_counts[k]);
    /* Counts over ranges agree with a brute-force count. */
    for (int64_t a = 0; a < n; a += 997) {
        int64_t b = a + 1531 < n ? a + 1531 : n, brute[3] = {0, 0, 0};
        for (int64_t i = a; i < b; ++i) brute[sbi_splits_of(s, i)]++;
        sbi_splits_count(s, a, b, counts);
        for (int k = 0; k < 3; ++k) SBI_ASSERT_EQ_INT(counts[k], brute[k]);
    }
    sbi_splits_count(s, 10, 10, counts);
    SBI_ASSERT_EQ_INT(counts[0] + counts[1] + counts[2], 0);
    if (!strcmp(policy, "sequential")) {
        SBI_ASSERT_EQ_INT(sbi_splits_of(s, 0), SBI_SPLIT_TRAIN);
        SBI_ASSERT_EQ_INT(sbi_splits_of(s, n - 1), SBI_SPLIT_TEST);
    } else if (n >= 1000) {
        /* Random: the first 100 indices are not all training indices. */
        int64_t c[3];
        sbi_splits_count(s, 0, 100, c);
        SBI_ASSERT(c[0] < 100 && c[0] > 40);
    }
    sbi_splits_destroy(&s);
    SBI_ASSERT(s == NULL);
    sbi_splits_destroy(&s);
    sbi_task_destroy(&task);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    test_determinism();
    test_impossible();
    test_noise();
    check_splits("sequential", 5000);
    check_splits("random", 5000);
    check_splits("random", 2048);
    check_splits("random", 1);
    MPI_Finalize();
    return SBI_TEST_REPORT("simulate_unit");
}
