/* Multilayer perceptron over views of a layout. */
#include <string.h>

#include "nn/nn_impl.h"

/* Hidden map l adds its input when residual and the widths agree. */
static int is_residual(const sbi_mlp *m, int l)
{
    return m->residual && l >= 1 && l < m->n_layers - 1 && m->widths[l] == m->widths[l + 1];
}

int sbi_mlp_layout(sbi_mlp *m, sbi_layout *lay, const char *name, int n_layers, const int *widths, int activation,
                   int residual, int zero_last)
{
    SBI_CHECK(n_layers >= 1 && n_layers <= SBI_MLP_MAX_LAYERS, SBI_ERR_INPUT,
              "%s: an MLP needs 1 to %d linear maps, got %d", name, SBI_MLP_MAX_LAYERS, n_layers);
    SBI_CHECK(sbi_activation_name(activation), SBI_ERR_INPUT, "%s: unknown activation %d", name, activation);
    for (int l = 0; l <= n_layers; ++l)
        SBI_CHECK(widths[l] >= 1, SBI_ERR_INPUT, "%s: width %d is %d, must be >= 1", name, l, widths[l]);
    memset(m, 0, sizeof(*m));
    m->n_layers = n_layers;
    memcpy(m->widths, widths, (size_t)(n_layers + 1) * sizeof(*widths));
    m->activation = activation;
    m->residual = residual;
    for (int l = 0; l < n_layers; ++l) {
        int cin = widths[l], cout = widths[l + 1];
        int init = (zero_last && l == n_layers - 1) ? SBI_INIT_ZERO : SBI_INIT_UNIFORM;
        m->w[l] = sbi_layout_weight(lay, &m->dw[l], (size_t)cout * cin, cin, init, "%s.w%d", name, l);
        m->b[l] = sbi_layout_weight(lay, &m->db[l], (size_t)cout, cin, init, "%s.b%d", name, l);
        m->pre[l] = sbi_layout_act(lay, &m->dpre[l], cout);
        if (l < n_layers - 1) {
            m->a[l] = sbi_layout_act(lay, &m->da[l], cout);
            if (is_residual(m, l)) {
                m->y[l] = sbi_layout_act(lay, &m->dy[l], cout);
            } else {
                m->y[l] = m->a[l];
                m->dy[l] = m->da[l];
            }
        }
    }
    m->out = m->pre[n_layers - 1];
    m->dout = m->dpre[n_layers - 1];
    return 0;
}

/* Layers l0 .. L-1, reading inp (B, widths[l0]); pre[l0] is formed by the
 * caller when skip_first. */
static void mlp_forward_from(sbi_mlp *m, const sbi_real *inp, int B, int skip_first)
{
    const sbi_real *cur = inp; /* (B, widths[l]) */
    for (int l = 0; l < m->n_layers; ++l) {
        int cout = m->widths[l + 1];
        size_t n = (size_t)B * cout;
        if (l > 0 || !skip_first) sbi_linear_forward(m->pre[l], cur, m->w[l], m->b[l], B, m->widths[l], cout);
        if (l == m->n_layers - 1) break;
        sbi_activation_forward(m->activation, m->a[l], m->pre[l], n);
        if (is_residual(m, l)) {
            for (size_t i = 0; i < n; ++i) m->y[l][i] = cur[i] + m->a[l][i];
        }
        cur = m->y[l];
    }
}

void sbi_mlp_forward(sbi_mlp *m, const sbi_real *inp, int B) { mlp_forward_from(m, inp, B, 0); }

/* Layer 0 is never residual, so its input is not read. */
void sbi_mlp_forward_after_first(sbi_mlp *m, int B) { mlp_forward_from(m, NULL, B, 1); }

void sbi_mlp_backward(sbi_mlp *m, sbi_real *dinp, const sbi_real *inp, int B)
{
    for (int l = m->n_layers - 1; l >= 0; --l) {
        int cin = m->widths[l], cout = m->widths[l + 1];
        size_t n = (size_t)B * cout;
        const sbi_real *x = l ? m->y[l - 1] : inp;  /* (B, cin) */
        sbi_real *dx = l ? m->dy[l - 1] : dinp;     /* (B, cin) or NULL */
        if (l < m->n_layers - 1) {
            if (is_residual(m, l)) {
                /* y[l] = y[l-1] + a[l]: the gradient reaches both terms. */
                for (size_t i = 0; i < n; ++i) {
                    m->da[l][i] += m->dy[l][i];
                    dx[i] += m->dy[l][i];
                }
            }
            sbi_activation_backward(m->activation, m->dpre[l], m->da[l], m->pre[l], m->a[l], n);
        }
        sbi_linear_backward(dx, m->dw[l], m->db[l], m->dpre[l], x, m->w[l], B, cin, cout);
    }
}
