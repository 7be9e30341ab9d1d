/* Gradient checks (double precision) of the observation encoders: the full
 * spectral convolution encoder, the patch encoder, the photometry encoder
 * and the hierarchical encoder over spectrum, photometry and auxiliary
 * blocks (with each spectral sub-encoder).  L = <r, out> for a fixed random
 * r; every weight and every unmasked input against central differences.
 * Some points are NaN (masked) and one row has a fully masked patch.  The
 * seeds keep every maximum and the median clear of near ties, where the
 * pooled outputs have no derivative. */
#include <mpi.h>
#include <string.h>

#include "exosbi/nn.h"
#include "gradcheck.h"
#include "testutil.h"

#define B 3
#define MAX_X 40
#define MAX_E 4

typedef struct enc_ctx {
    sbi_obs_encoder e;
    sbi_layout lay;
    int X, E;
    double x[B * MAX_X], r[B * MAX_E];
} enc_ctx;

static double enc_loss(void *p)
{
    enc_ctx *c = p;
    double L = 0;
    sbi_obs_encoder_forward(&c->e, c->x, B);
    for (int i = 0; i < B * c->E; ++i) L += c->r[i] * c->e.out[i];
    return L;
}

static float coord[MAX_X], sigma[MAX_X];

/* Inputs with distinct magnitudes away from zero, so that the median and
 * every maximum are stable under the finite-difference steps. */
static void fill_inputs(enc_ctx *c, uint64_t seed)
{
    gc_fill(c->x, (size_t)B * c->X, 1.0, seed);
    for (int i = 0; i < B * c->X; ++i) c->x[i] += c->x[i] < 0 ? -0.2 - 0.003 * i : 0.2 + 0.003 * i;
    /* Row 1 misses scattered points, row 2 the columns 4..7 (a whole patch of 4). */
    c->x[1 * c->X + 2] = NAN;
    c->x[1 * c->X + c->X - 1] = NAN;
    for (int l = 4; l < 8 && l < c->X; ++l) c->x[2 * c->X + l] = NAN;
}

static void check(const char *label, const sbi_obs_encoder_spec *spec, uint64_t seed)
{
    static enc_ctx c;
    static double dx[B * MAX_X];
    char text[96];
    gc_stats s;
    int rc = 0;
    memset(&c, 0, sizeof(c));
    c.X = spec->X;
    c.E = spec->E;
    sbi_layout_init(&c.lay, B);
    rc |= sbi_obs_encoder_layout(&c.e, &c.lay, "enc", spec);
    rc |= sbi_layout_alloc(&c.lay);
    rc |= sbi_obs_encoder_layout(&c.e, &c.lay, "enc", spec);
    rc |= sbi_layout_finish(&c.lay);
    SBI_ASSERT_EQ_INT(rc, 0);
    if (rc) return;
    gc_fill(c.lay.weights, c.lay.n_weights, 0.6, seed);
    fill_inputs(&c, seed + 1);
    gc_fill(c.r, (size_t)B * c.E, 1.0, seed + 2);
    enc_loss(&c);
    sbi_layout_zero_grads(&c.lay);
    sbi_layout_zero_dacts(&c.lay, B);
    memcpy(c.e.dout, c.r, (size_t)B * c.E * sizeof(double));
    memset(dx, 0, sizeof(dx));
    sbi_obs_encoder_backward(&c.e, dx, c.x, B);
    gc_reset(&s);
    for (int i = 0; i < B * c.X; ++i) {
        if (isnan(c.x[i])) {
            SBI_ASSERT(dx[i] == 0);
            continue;
        }
        gc_add(&s, i, dx[i], gc_numeric(enc_loss, &c, &c.x[i], GC_STEP));
    }
    snprintf(text, sizeof(text), "%s d-input", label);
    SBI_ASSERT(gc_report(text, &s));
    gc_reset(&s);
    for (size_t i = 0; i < c.lay.n_weights; ++i)
        gc_add(&s, i, c.lay.grads[i], gc_numeric(enc_loss, &c, &c.lay.weights[i], GC_STEP));
    snprintf(text, sizeof(text), "%s d-weights (%d tensors)", label, c.lay.n_tensors);
    SBI_ASSERT(gc_report(text, &s));
    sbi_layout_free(&c.lay);
}

static sbi_obs_encoder_spec base_spec(int kind, int X)
{
    sbi_obs_encoder_spec s;
    memset(&s, 0, sizeof(s));
    s.kind = kind;
    s.X = X;
    s.E = 3;
    s.H = 4;
    s.E_b = 3;
    s.P = 4;
    s.spectrum_kind = SBI_ENCODER_CONV1D_FULL;
    s.C[0] = 3;
    s.C[1] = 4;
    s.C[2] = 3;
    s.K = 3;
    s.n_blocks = 1;
    s.blocks[0] = (sbi_obs_block){0, X, SBI_BLOCK_SPECTRUM, coord, sigma};
    return s;
}

int main(int argc, char **argv)
{
    sbi_obs_encoder_spec s;
    int status;
    MPI_Init(&argc, &argv);
    for (int i = 0; i < MAX_X; ++i) {
        coord[i] = (float)(-1.0 + 2.0 * i / (MAX_X - 1));
        sigma[i] = (float)(0.1 + 0.01 * (i % 7));
    }
    s = base_spec(SBI_ENCODER_CONV1D_FULL, 14);
    check("conv1d_full", &s, 101);
    s = base_spec(SBI_ENCODER_PATCH, 14);
    check("patch", &s, 111);
    s = base_spec(SBI_ENCODER_PHOTOMETRY, 9);
    s.blocks[0].modality = SBI_BLOCK_PHOTOMETRY;
    check("photometry", &s, 151);
    /* Spectrum 12, photometry 5, auxiliary 3 and a time series of 2. */
    s = base_spec(SBI_ENCODER_HIERARCHICAL, 22);
    s.n_blocks = 4;
    s.blocks[0] = (sbi_obs_block){0, 12, SBI_BLOCK_SPECTRUM, coord, sigma};
    s.blocks[1] = (sbi_obs_block){12, 5, SBI_BLOCK_PHOTOMETRY, coord + 12, sigma + 12};
    s.blocks[2] = (sbi_obs_block){17, 3, SBI_BLOCK_AUXILIARY, NULL, NULL};
    s.blocks[3] = (sbi_obs_block){20, 2, SBI_BLOCK_TIME_SERIES, coord + 20, NULL};
    check("hierarchical (conv1d_full spectra)", &s, 131);
    s.spectrum_kind = SBI_ENCODER_PATCH;
    check("hierarchical (patch spectra)", &s, 141);
    status = SBI_TEST_REPORT("encoder_gradcheck");
    MPI_Finalize();
    return status;
}
