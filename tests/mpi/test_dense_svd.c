/* The distributed SVD (ScaLAPACK, forced through EXOSBI_DENSE_FORCE_DISTRIBUTED)
 * against LAPACKE_dgesvd: singular values to 1e-10 relative, U diag(s) VT
 * reconstructs A to 1e-10, and every output is bitwise identical on every
 * rank.  Tall, wide and tiny matrices, with and without the singular vectors;
 * the serial path is checked the same way.  Run at 1, 2 and 4 ranks. */
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/dense.h"
#include "testutil.h"

/* A fixed pseudo-random matrix in [-1, 1), the same on every rank. */
static void fill_matrix(double *a, int m, int n, unsigned seed)
{
    unsigned long x = seed * 2654435761ul + 1;
    for (long i = 0; i < (long)m * n; ++i) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        a[i] = (double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
}

/* Whether v is the same on every rank: the maximum and the minimum over the
 * ranks must both equal the local value, entry by entry. */
static int same_on_all_ranks(const sbi_comm *c, const double *v, int n)
{
    double *mx = malloc((size_t)n * sizeof *mx), *mn = malloc((size_t)n * sizeof *mn);
    int bad = 0;
    MPI_Allreduce(v, mx, n, MPI_DOUBLE, MPI_MAX, c->comm);
    MPI_Allreduce(v, mn, n, MPI_DOUBLE, MPI_MIN, c->comm);
    for (int i = 0; i < n; ++i) bad += mx[i] != v[i] || mn[i] != v[i];
    free(mx);
    free(mn);
    return bad == 0;
}

static void check_case(const sbi_comm *c, int m, int n, unsigned seed, int want_vectors)
{
    const int k = m < n ? m : n;
    double *a = malloc((size_t)m * n * sizeof *a), *ref = malloc((size_t)m * n * sizeof *ref);
    double *s_ref = malloc((size_t)k * sizeof *s_ref), *superb = malloc((size_t)k * sizeof *superb);
    double *s = malloc((size_t)k * sizeof *s), *u = NULL, *vt = NULL, amax = 0.0, err = 0.0;
    fill_matrix(a, m, n, seed);
    memcpy(ref, a, (size_t)m * n * sizeof *ref);
    SBI_ASSERT_EQ_INT(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', m, n, ref, n, s_ref, NULL, 1, NULL, n, superb), 0);
    if (want_vectors) {
        u = malloc((size_t)m * k * sizeof *u);
        vt = malloc((size_t)k * n * sizeof *vt);
    }
    SBI_ASSERT_OK(sbi_dense_svd(c, m, n, a, s, u, vt));
    for (int i = 0; i < k; ++i) SBI_ASSERT_NEAR(s[i], s_ref[i], 1e-10, 1e-10 * s_ref[0]);
    SBI_ASSERT(same_on_all_ranks(c, s, k));
    if (want_vectors) {
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
                double r = 0.0;
                for (int l = 0; l < k; ++l) r += u[(size_t)i * k + l] * s[l] * vt[(size_t)l * n + j];
                err = fmax(err, fabs(r - a[(size_t)i * n + j]));
                amax = fmax(amax, fabs(a[(size_t)i * n + j]));
            }
        SBI_ASSERT_NEAR(err, 0.0, 0, 1e-10 * amax);
        SBI_ASSERT(same_on_all_ranks(c, u, m * k));
        SBI_ASSERT(same_on_all_ranks(c, vt, k * n));
    }
    free(a);
    free(ref);
    free(s_ref);
    free(superb);
    free(s);
    free(u);
    free(vt);
}

int main(int argc, char **argv)
{
    static const int shapes[][2] = {{300, 40}, {40, 300}, {7, 3}, {3, 7}, {1, 5}};
    sbi_comm c;
    MPI_Init(&argc, &argv);
    sbi_comm_init(&c, MPI_COMM_WORLD);

    /* Below the threshold the serial path is taken unless it is forced. */
    SBI_ASSERT_EQ_INT(sbi_dense_svd_is_distributed(&c, 300, 40), 0);
    SBI_ASSERT_EQ_INT(sbi_dense_svd_is_distributed(&c, 1024, 1024), c.size > 1);
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); ++i) check_case(&c, shapes[i][0], shapes[i][1], 1u + i, 1);

    setenv("EXOSBI_DENSE_FORCE_DISTRIBUTED", "1", 1);
    SBI_ASSERT_EQ_INT(sbi_dense_svd_is_distributed(&c, 7, 3), 1);
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); ++i) {
        check_case(&c, shapes[i][0], shapes[i][1], 11u + i, 1);
        check_case(&c, shapes[i][0], shapes[i][1], 21u + i, 0);
    }
    /* The grid is left each time: repeated calls keep working. */
    for (int rep = 0; rep < 3; ++rep) check_case(&c, 7, 3, 31u, 1);
    unsetenv("EXOSBI_DENSE_FORCE_DISTRIBUTED");

    {
        int fails = sbi_test_failures, all = 0;
        MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, c.comm);
        sbi_test_failures = all;
        int rc = c.rank == 0 ? SBI_TEST_REPORT("dense_svd") : (all ? 1 : 0);
        MPI_Finalize();
        return rc;
    }
}
