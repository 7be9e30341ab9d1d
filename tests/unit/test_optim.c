/* AdamW against a hand computation, and global gradient-norm clipping. */
#include <mpi.h>

#include "exosbi/optim.h"
#include "testutil.h"

static void check_adamw(void)
{
    enum { N = 3 };
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    sbi_real w[N] = {1.0f, -2.0f, 0.5f}, m[N] = {0}, v[N] = {0};
    const sbi_real g1[N] = {0.1f, -0.3f, 2.0f}, g2[N] = {-0.2f, 0.4f, 1.0f};
    double we[N], me[N] = {0}, ve[N] = {0};
    for (int i = 0; i < N; ++i) we[i] = w[i];
    /* Step 1: the bias-corrected moments are g and g^2, so the update is
     * g / (|g| + eps) + wd * w. */
    sbi_adamw_step(w, g1, m, v, N, lr, b1, b2, eps, wd, 1);
    for (int i = 0; i < N; ++i) {
        double expect = we[i] - lr * (g1[i] / (fabs(g1[i]) + eps) + wd * we[i]);
        SBI_ASSERT_NEAR(w[i], expect, 1e-6, 1e-7);
        me[i] = (1 - b1) * g1[i];
        ve[i] = (1 - b2) * g1[i] * g1[i];
        SBI_ASSERT_NEAR(m[i], me[i], 1e-6, 0);
        SBI_ASSERT_NEAR(v[i], ve[i], 1e-6, 0);
        we[i] = expect;
    }
    /* Step 2 written out. */
    sbi_adamw_step(w, g2, m, v, N, lr, b1, b2, eps, wd, 2);
    for (int i = 0; i < N; ++i) {
        double mi = b1 * me[i] + (1 - b1) * g2[i], vi = b2 * ve[i] + (1 - b2) * g2[i] * g2[i];
        double mh = mi / (1 - b1 * b1), vh = vi / (1 - b2 * b2);
        double expect = we[i] - lr * (mh / (sqrt(vh) + eps) + wd * we[i]);
        SBI_ASSERT_NEAR(w[i], expect, 1e-6, 1e-7);
    }
}

static void check_clip(void)
{
    sbi_real g[4] = {3, 0, -4, 0}, h[2] = {0.3f, 0.4f}, bad[2] = {NAN, 1};
    double norm = sbi_clip_grad_norm(g, 4, 1.0);
    SBI_ASSERT_NEAR(norm, 5.0, 1e-12, 0);
    SBI_ASSERT_NEAR(sbi_grad_norm(g, 4), 1.0, 1e-6, 0);
    SBI_ASSERT_NEAR(g[0], 0.6, 1e-6, 0);
    SBI_ASSERT_NEAR(g[2], -0.8, 1e-6, 0);
    /* Within the bound, or clipping off: untouched. */
    SBI_ASSERT_NEAR(sbi_clip_grad_norm(h, 2, 1.0), 0.5, 1e-6, 0);
    SBI_ASSERT(h[0] == 0.3f && h[1] == 0.4f);
    SBI_ASSERT_NEAR(sbi_clip_grad_norm(g, 4, 0.0), 1.0, 1e-6, 0);
    SBI_ASSERT(isnan(sbi_clip_grad_norm(bad, 2, 1.0)) && bad[1] == 1);
}

int main(int argc, char **argv)
{
    int status;
    MPI_Init(&argc, &argv);
    check_adamw();
    check_clip();
    status = SBI_TEST_REPORT("optim_adamw");
    MPI_Finalize();
    return status;
}
