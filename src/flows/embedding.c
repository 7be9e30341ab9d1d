/* The embedding network shared by the families: the residual ELU MLP of the
 * foundation or the convolutional encoder, picked by config.embedding. */
#include <string.h>

#include "flows/flows_impl.h"

int sbi__embedding_kind(const char *name)
{
    if (strcmp(name, "mlp") == 0) return SBI__EMBED_MLP;
    if (strcmp(name, "conv1d") == 0) return SBI__EMBED_CONV1D;
    return -1;
}

int sbi__embedding_layout(sbi__embedding *m, sbi_layout *lay, const sbi_estimator_config *cfg)
{
    int E = cfg->embed_dim;
    m->kind = sbi__embedding_kind(cfg->embedding);
    SBI_CHECK(m->kind >= 0, SBI_ERR_INPUT, "unknown embedding '%s'", cfg->embedding);
    if (m->kind == SBI__EMBED_CONV1D) {
        SBI_CALL(sbi_conv_encoder_layout(&m->conv, lay, "embed", cfg->n_inputs, SBI_CONV1D_CHANNELS0,
                                         SBI_CONV1D_CHANNELS1, SBI_CONV1D_KERNEL, SBI_CONV1D_POOL, E));
        m->out = m->conv.out;
        m->dout = m->conv.dout;
    } else {
        int widths[SBI_MLP_MAX_LAYERS + 1];
        widths[0] = cfg->n_inputs;
        for (int l = 1; l <= cfg->embed_layers; ++l) widths[l] = cfg->embed_hidden;
        widths[cfg->embed_layers + 1] = E;
        SBI_CALL(sbi_mlp_layout(&m->mlp, lay, "embed", cfg->embed_layers + 1, widths, SBI_ACT_ELU, 1, 0));
        m->out = m->mlp.out;
        m->dout = m->mlp.dout;
    }
    return 0;
}

void sbi__embedding_forward(sbi__embedding *m, const sbi_real *x, int B)
{
    if (m->kind == SBI__EMBED_CONV1D)
        sbi_conv_encoder_forward(&m->conv, x, B);
    else
        sbi_mlp_forward(&m->mlp, x, B);
}

void sbi__embedding_backward(sbi__embedding *m, const sbi_real *x, int B)
{
    if (m->kind == SBI__EMBED_CONV1D)
        sbi_conv_encoder_backward(&m->conv, B);
    else
        sbi_mlp_backward(&m->mlp, NULL, x, B);
}
