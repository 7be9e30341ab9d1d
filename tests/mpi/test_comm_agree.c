/* Agreement on errors: when one rank fails, every rank learns the failing
 * code through one reduction (the followers get SBI_ERR_REMOTE with it), and
 * sbi_comm_finish gives every rank the same exit status.  Also checks the
 * sharding helper covers 0..n exactly once.  Run at 1, 2 and 4 ranks. */
#include "testutil.h"

static int fail_on_last(const sbi_comm *c)
{
    SBI_CHECK(c->rank != c->size - 1, SBI_ERR_IO, "rank %d: cannot read /nonexistent", c->rank);
    return 0;
}

int main(int argc, char **argv)
{
    sbi_comm c;
    int st, fin;
    MPI_Init(&argc, &argv);
    sbi_comm_init(&c, MPI_COMM_WORLD);

    SBI_ASSERT_EQ_INT(sbi_comm_agree(&c, 0), 0);
    st = sbi_comm_agree(&c, fail_on_last(&c));
    if (c.rank == c.size - 1) SBI_ASSERT_EQ_INT(st, SBI_ERR_IO);
    else SBI_ASSERT_EQ_INT(st, SBI_ERR_REMOTE | SBI_ERR_IO);
    fin = sbi_comm_finish(&c, st, "test");
    SBI_ASSERT_EQ_INT(fin, SBI_ERR_IO);
    sbi_error_clear();

    /* Two ranks failing with different codes: the lowest failing rank's code wins. */
    if (c.size > 1) {
        int mine = c.rank == 1 ? SBI_ERR_INPUT : (c.rank == c.size - 1 ? SBI_ERR_IO : 0);
        st = sbi_comm_agree(&c, mine);
        fin = sbi_comm_finish(&c, st, "test");
        SBI_ASSERT_EQ_INT(fin, SBI_ERR_INPUT);
    }
    for (int64_t n = 0; n < 50; n += 7) {
        int64_t total = 0, prev_end = 0;
        for (int r = 0; r < c.size; ++r) {
            sbi_shard s = sbi_shard_block(n, r, c.size);
            SBI_ASSERT_EQ_INT(s.offset, prev_end);
            prev_end = s.offset + s.count;
            total += s.count;
        }
        SBI_ASSERT_EQ_INT(total, n);
    }
    {
        double v[2] = {1.0, (double)c.rank};
        SBI_ASSERT_OK(sbi_comm_sum_double(&c, v, 2));
        SBI_ASSERT_NEAR(v[0], c.size, 0, 0);
        SBI_ASSERT_NEAR(v[1], c.size * (c.size - 1) / 2.0, 0, 0);
    }
    {
        int fails = sbi_test_failures, all = 0;
        MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, c.comm);
        sbi_test_failures = all;
        int rc = c.rank == 0 ? SBI_TEST_REPORT("core_comm_agree") : (all ? 1 : 0);
        MPI_Finalize();
        return rc;
    }
}
