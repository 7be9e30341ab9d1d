/* Masked autoencoder (MADE) helpers shared by the autoregressive flows (maf, naf). */
#include <string.h>

#include "flows/flows_impl.h"

/* Degree of hidden unit h: 1..D-1 in turn (1 when D = 1), so every hidden
 * unit sees a proper prefix of the ordered positions. */
static int hidden_degree(int h, int D) { return h % (D - 1 > 1 ? D - 1 : 1) + (D - 1 < 1 ? D - 1 : 1); }

void sbi__made_mask(sbi_real *mask, int l, int L, const int *w, int D, int P)
{
    for (int o = 0; o < w[l + 1]; ++o)
        for (int i = 0; i < w[l]; ++i) {
            int in_deg = l == 0 ? (i < D ? i + 1 : 0) : hidden_degree(i, D);
            int pos = P > 0 ? o / P : o % D;
            int ok = l == L - 1 ? pos + 1 > in_deg : hidden_degree(o, D) >= in_deg;
            mask[(size_t)o * w[l] + i] = ok ? 1 : 0;
        }
}

void sbi__made_refresh(const sbi_mlp *net, sbi_real *const *w, sbi_real *const *wm, sbi_real *const *mask)
{
    for (int l = 0; l < net->n_layers; ++l) {
        size_t n = (size_t)net->widths[l] * net->widths[l + 1];
        for (size_t i = 0; i < n; ++i) wm[l][i] = w[l][i] * mask[l][i];
    }
}

void sbi__made_gather(sbi_real *cat, const int *o, const sbi_real *v, const sbi_real *e, int e_ld, int B, int D,
                      int E)
{
    for (int b = 0; b < B; ++b) {
        sbi_real *cb = cat + (size_t)b * (D + E);
        const sbi_real *vb = v + (size_t)b * D;
        for (int j = 0; j < D; ++j) cb[j] = vb[o[j]];
        memcpy(cb + D, e + (size_t)b * e_ld, (size_t)E * sizeof(*cb));
    }
}

void sbi__made_backward(sbi_mlp *net, sbi_real *const *mask, sbi_real *dcat, const sbi_real *cat, const int *o,
                        sbi_real *du, sbi_real *de, int B, int D, int E)
{
    sbi_mlp_backward(net, dcat, cat, B);
    for (int l = 0; l < net->n_layers; ++l) {
        size_t n = (size_t)net->widths[l] * net->widths[l + 1];
        for (size_t i = 0; i < n; ++i) net->dw[l][i] *= mask[l][i];
    }
    for (int b = 0; b < B; ++b) {
        const sbi_real *gb = dcat + (size_t)b * (D + E);
        sbi_real *ub = du + (size_t)b * D, *eb = de + (size_t)b * E;
        for (int j = 0; j < D; ++j) ub[o[j]] += gb[j];
        for (int q = 0; q < E; ++q) eb[q] += gb[D + q];
    }
}
