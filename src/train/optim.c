/* AdamW and gradient-norm clipping over flat buffers. */
#include <math.h>

#include "exosbi/optim.h"
#include "nn/nn_impl.h"

void sbi_adamw_step(sbi_real *w, const sbi_real *g, sbi_real *m, sbi_real *v, size_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step)
{
    double t = (double)(step < 1 ? 1 : step);
    double c1 = 1.0 / (1.0 - pow(beta1, t));
    double c2 = 1.0 / (1.0 - pow(beta2, t));
    sbi_real b1 = (sbi_real)beta1, b2 = (sbi_real)beta2;
    sbi_real a1 = (sbi_real)(1.0 - beta1), a2 = (sbi_real)(1.0 - beta2);
    sbi_real rc1 = (sbi_real)c1, rc2 = (sbi_real)c2, reps = (sbi_real)eps;
    sbi_real rlr = (sbi_real)lr, rwd = (sbi_real)weight_decay;
    for (size_t i = 0; i < n; ++i) {
        sbi_real gi = g[i];
        sbi_real mi = b1 * m[i] + a1 * gi;
        sbi_real vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= rlr * (mi * rc1 / (sbi__sqrt(vi * rc2) + reps) + rwd * w[i]);
    }
}

/* Four running sums, which the compiler keeps in one vector register (a
 * single sum is a dependency chain it may not reorder). */
double sbi_grad_norm(const sbi_real *g, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)g[i] * g[i];
        s1 += (double)g[i + 1] * g[i + 1];
        s2 += (double)g[i + 2] * g[i + 2];
        s3 += (double)g[i + 3] * g[i + 3];
    }
    for (; i < n; ++i) s0 += (double)g[i] * g[i];
    return sqrt((s0 + s1) + (s2 + s3));
}

double sbi_clip_grad_norm(sbi_real *g, size_t n, double max_norm)
{
    double norm = sbi_grad_norm(g, n);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        sbi_real scale = (sbi_real)(max_norm / norm);
        for (size_t i = 0; i < n; ++i) g[i] *= scale;
    }
    return norm;
}
