/* Masked points have no influence on the observation encoders: for every
 * encoder kind, changing the NaN payload of masked points and the static
 * channels (coordinate, uncertainty) at masked columns leaves the embedding
 * bitwise unchanged, while changing an unmasked value does change it.  The
 * photometry encoder over a block with masked points also equals the same
 * encoder over the block without them. */
#include <mpi.h>
#include <string.h>

#include "exosbi/nn.h"
#include "testutil.h"

#define B 4
#define MAX_X 64
#define E_OUT 16

static float coord[MAX_X], sigma[MAX_X];

/* Columns masked in every row; row 2 also misses columns 20..27. */
static const int masked[] = {3, 10, 11, 12, 30, 41, 47};
#define N_MASKED ((int)(sizeof(masked) / sizeof(masked[0])))

static int build(sbi_obs_encoder *e, sbi_layout *lay, const sbi_obs_encoder_spec *spec, uint64_t seed)
{
    sbi_layout_init(lay, B);
    SBI_CALL(sbi_obs_encoder_layout(e, lay, "enc", spec));
    SBI_CALL(sbi_layout_alloc(lay));
    SBI_CALL(sbi_obs_encoder_layout(e, lay, "enc", spec));
    SBI_CALL(sbi_layout_finish(lay));
    sbi_layout_init_weights(lay, seed);
    return 0;
}

static void fill(float *x, int X, int nan_variant)
{
    for (int b = 0; b < B; ++b)
        for (int l = 0; l < X; ++l) x[b * X + l] = (float)(0.8 * sin(0.37 * l + 1.3 * b) + 0.05 * b);
    for (int b = 0; b < B; ++b)
        for (int k = 0; k < N_MASKED; ++k)
            if (masked[k] < X) x[b * X + masked[k]] = nan_variant ? -nanf("0x5a5") : NAN;
    for (int l = 20; l < 28 && l < X; ++l) x[2 * X + l] = nan_variant ? nanf("7") : NAN;
}

static void check_kind(const char *label, const sbi_obs_encoder_spec *spec)
{
    static float x[B * MAX_X], out0[B * E_OUT];
    sbi_obs_encoder e;
    sbi_layout lay;
    int X = spec->X, E = spec->E, same;
    float keep_c[N_MASKED], keep_s[N_MASKED];
    SBI_ASSERT_OK(build(&e, &lay, spec, 7));
    if (sbi_test_failures) return;
    fill(x, X, 0);
    sbi_obs_encoder_forward(&e, x, B);
    memcpy(out0, e.out, (size_t)B * E * sizeof(float));
    for (int i = 0; i < B * E; ++i) SBI_ASSERT(isfinite(out0[i]));
    /* Other NaN payloads and other static channels at the masked columns. */
    fill(x, X, 1);
    for (int k = 0; k < N_MASKED; ++k) {
        keep_c[k] = coord[masked[k]];
        keep_s[k] = sigma[masked[k]];
        coord[masked[k]] += 5.0f;
        sigma[masked[k]] *= 30.0f;
    }
    sbi_obs_encoder_forward(&e, x, B);
    same = memcmp(out0, e.out, (size_t)B * E * sizeof(float)) == 0;
    printf("%-36s masked points changed: embedding %s\n", label, same ? "bitwise unchanged" : "CHANGED");
    SBI_ASSERT(same);
    for (int k = 0; k < N_MASKED; ++k) {
        coord[masked[k]] = keep_c[k];
        sigma[masked[k]] = keep_s[k];
    }
    /* The test is not vacuous: an unmasked value moves the embedding. */
    fill(x, X, 0);
    x[3 * X + 1] += 0.5f;
    sbi_obs_encoder_forward(&e, x, B);
    SBI_ASSERT(memcmp(out0 + 3 * E, e.out + 3 * E, (size_t)E * sizeof(float)) != 0);
    sbi_layout_free(&lay);
}

static sbi_obs_encoder_spec spec_of(int kind, int X, int modality)
{
    sbi_obs_encoder_spec s;
    memset(&s, 0, sizeof(s));
    s.kind = kind;
    s.X = X;
    s.E = E_OUT;
    s.H = 32;
    s.E_b = 12;
    s.P = 8;
    s.spectrum_kind = SBI_ENCODER_CONV1D_FULL;
    s.C[0] = SBI_ENC_CONV_CHANNELS0;
    s.C[1] = SBI_ENC_CONV_CHANNELS1;
    s.C[2] = SBI_ENC_CONV_CHANNELS2;
    s.K = SBI_ENC_CONV_KERNEL;
    s.n_blocks = 1;
    s.blocks[0] = (sbi_obs_block){0, X, modality, coord, sigma};
    return s;
}

/* Photometry with masked points equals photometry over the kept points. */
static void check_photometry_subset(void)
{
    enum { L = 9 };
    static const int drop[] = {2, 5, 6};
    float x[B * L], xs[B * L], cs[L], ss[L], worst = 0;
    sbi_obs_encoder full, sub;
    sbi_layout lf, ls;
    sbi_obs_encoder_spec sf = spec_of(SBI_ENCODER_PHOTOMETRY, L, SBI_BLOCK_PHOTOMETRY), sp;
    int n = 0;
    for (int l = 0; l < L; ++l) {
        int keep = l != drop[0] && l != drop[1] && l != drop[2];
        for (int b = 0; b < B; ++b) x[b * L + l] = keep ? (float)(0.3 * l - 0.2 * b) : NAN;
        if (!keep) continue;
        cs[n] = coord[l];
        ss[n] = sigma[l];
        for (int b = 0; b < B; ++b) xs[b * (L - 3) + n] = x[b * L + l];
        ++n;
    }
    sp = spec_of(SBI_ENCODER_PHOTOMETRY, n, SBI_BLOCK_PHOTOMETRY);
    sp.blocks[0].coord = cs;
    sp.blocks[0].sigma = ss;
    SBI_ASSERT_OK(build(&full, &lf, &sf, 3));
    SBI_ASSERT_OK(build(&sub, &ls, &sp, 3));
    if (sbi_test_failures) return;
    SBI_ASSERT_EQ_INT(lf.n_weights, ls.n_weights);
    sbi_obs_encoder_forward(&full, x, B);
    sbi_obs_encoder_forward(&sub, xs, B);
    for (int i = 0; i < B * E_OUT; ++i) {
        float d = fabsf(full.out[i] - sub.out[i]);
        worst = d > worst ? d : worst;
    }
    printf("photometry masked vs dropped points: max diff %.3e\n", worst);
    SBI_ASSERT(worst <= 1e-6f);
    sbi_layout_free(&lf);
    sbi_layout_free(&ls);
}

int main(int argc, char **argv)
{
    sbi_obs_encoder_spec s;
    int status;
    MPI_Init(&argc, &argv);
    for (int i = 0; i < MAX_X; ++i) {
        coord[i] = (float)(-1.0 + 2.0 * i / (MAX_X - 1));
        sigma[i] = (float)(0.05 + 0.01 * (i % 5));
    }
    s = spec_of(SBI_ENCODER_CONV1D_FULL, 60, SBI_BLOCK_SPECTRUM);
    check_kind("conv1d_full", &s);
    s = spec_of(SBI_ENCODER_PATCH, 60, SBI_BLOCK_SPECTRUM);
    check_kind("patch", &s);
    s = spec_of(SBI_ENCODER_PHOTOMETRY, 50, SBI_BLOCK_PHOTOMETRY);
    check_kind("photometry", &s);
    /* Spectrum 40, photometry 6, auxiliary 4, time series 5. */
    s = spec_of(SBI_ENCODER_HIERARCHICAL, 55, SBI_BLOCK_SPECTRUM);
    s.n_blocks = 4;
    s.blocks[0] = (sbi_obs_block){0, 40, SBI_BLOCK_SPECTRUM, coord, sigma};
    s.blocks[1] = (sbi_obs_block){40, 6, SBI_BLOCK_PHOTOMETRY, coord + 40, sigma + 40};
    s.blocks[2] = (sbi_obs_block){46, 4, SBI_BLOCK_AUXILIARY, NULL, NULL};
    s.blocks[3] = (sbi_obs_block){50, 5, SBI_BLOCK_TIME_SERIES, coord + 50, sigma + 50};
    check_kind("hierarchical (conv1d_full spectra)", &s);
    s.spectrum_kind = SBI_ENCODER_PATCH;
    check_kind("hierarchical (patch spectra)", &s);
    check_photometry_subset();
    status = SBI_TEST_REPORT("encoder_mask");
    MPI_Finalize();
    return status;
}
