/* Simulation-based calibration: ranks, histograms, coverage and TARP of held-out cases. */
#include "exosbi/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate/calibrate_impl.h"
#include "exosbi/corpus.h"
#include "exosbi/h5file.h"

void sbi_sbc_options_default(sbi_sbc_options *o)
{
    memset(o, 0, sizeof *o);
    o->split = SBI_SPLIT_TEST;
    o->n_samples = 1000;
    o->n_levels = 3;
    o->levels[0] = 0.5;
    o->levels[1] = 0.8;
    o->levels[2] = 0.95;
    o->n_bins = 20;
    o->seed = 0x5bc;
    o->n_alpha = 101;
}

void sbi_sbc_summary_free(sbi_sbc_summary *s)
{
    free(s->normalized_mean_rank_error);
    s->normalized_mean_rank_error = NULL;
}

double sbi_sbc_expected_coverage(double level, int n_samples)
{
    return n_samples > 1 ? level * (n_samples - 1.0) / (n_samples + 1.0) : 0.0;
}

void sbi_sbc_coverage_from_samples(int n_samples, int D, const double *samples, const double *truth, int n_levels,
                                   const double *levels, int *covered)
{
    double *col = malloc((size_t)n_samples * sizeof *col);
    if (!col) return;
    for (int j = 0; j < D; ++j) {
        for (int s = 0; s < n_samples; ++s) col[s] = samples[(size_t)s * D + j];
        qsort(col, (size_t)n_samples, sizeof *col, sbi_cmp_double);
        for (int l = 0; l < n_levels; ++l) {
            double lo = sbi_quantile_sorted(col, n_samples, 0.5 * (1.0 - levels[l]));
            double hi = sbi_quantile_sorted(col, n_samples, 0.5 * (1.0 + levels[l]));
            covered[l * D + j] = truth[j] >= lo && truth[j] <= hi;
        }
    }
    free(col);
}

double sbi_tarp_fraction(int n_samples, int D, const double *samples, const double *truth, const double *ref)
{
    double d_true = 0.0;
    int64_t closer = 0;
    for (int j = 0; j < D; ++j) d_true += (truth[j] - ref[j]) * (truth[j] - ref[j]);
    for (int s = 0; s < n_samples; ++s) {
        double d = 0.0;
        for (int j = 0; j < D; ++j) {
            double v = samples[(size_t)s * D + j] - ref[j];
            d += v * v;
        }
        closer += d < d_true;
    }
    return (double)closer / (double)n_samples;
}

double sbi_tarp_ecp(int64_t n_cases, const double *f, int n_alpha, double *alpha, double *ecp)
{
    double worst = 0.0;
    for (int k = 0; k < n_alpha; ++k) {
        int64_t below = 0;
        alpha[k] = (double)k / (double)(n_alpha - 1);
        for (int64_t i = 0; i < n_cases; ++i) below += f[i] < alpha[k];
        ecp[k] = n_cases ? (double)below / (double)n_cases : 0.0;
        if (fabs(ecp[k] - alpha[k]) > worst) worst = fabs(ecp[k] - alpha[k]);
    }
    return worst;
}

/* Map physical rows (n, D) in place to the model's standardised unconstrained space. */
static void to_standardized(const sbi_model *m, int64_t n, double *theta)
{
    sbi_space_physical_to_unconstrained(m->task, n, theta, theta);
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < m->D; ++j) theta[i * m->D + j] = (theta[i * m->D + j] - m->theta_mean[j]) / m->theta_std[j];
}

int sbi__gather_rows(const sbi_comm *c, const void *mine, int64_t count, int width, MPI_Datatype type,
                       size_t item_bytes, void *all)
{
    int *counts = NULL, *displs = NULL, n = (int)(count * width);
    if (c->size == 1) {
        memcpy(all, mine, (size_t)n * item_bytes);
        return 0;
    }
    if (c->rank == 0) {
        SBI_MALLOC(counts, c->size);
        SBI_MALLOC(displs, c->size);
    }
    SBI_CALL_MPI(MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, c->comm));
    if (c->rank == 0) {
        displs[0] = 0;
        for (int r = 1; r < c->size; ++r) displs[r] = displs[r - 1] + counts[r - 1];
    }
    SBI_CALL_MPI(MPI_Gatherv(mine, n, type, all, counts, displs, type, 0, c->comm));
    free(counts);
    free(displs);
    return 0;
}

static int write_report(const char *path, const sbi_model *m, const sbi_sbc_options *o, int64_t n, const int64_t *ranks,
                        const double *truths, const double *means, const int64_t *sim_index, const int *covered,
                        const double *tarp_f, const double *tarp_ref, sbi_sbc_summary *sum)
{
    const int D = m->D, L = o->n_levels, NB = o->n_bins;
    int64_t *hist;
    double *cov_pp, *mean_rank, *nmre, *alpha, *ecp;
    int64_t dims2[2], dims1[1];
    sbi_h5w w = NULL;
    const char **names;

    SBI_CALLOC(hist, (size_t)D * NB);
    SBI_CALLOC(cov_pp, (size_t)L * D);
    SBI_CALLOC(mean_rank, D);
    SBI_CALLOC(nmre, D);
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < D; ++j) {
            int64_t r = ranks[i * D + j];
            int bin = (int)((r * NB) / (o->n_samples + 1));
            hist[j * NB + bin] += 1;
            mean_rank[j] += (double)r;
            for (int l = 0; l < L; ++l) cov_pp[l * D + j] += covered[(i * L + l) * D + j];
        }
    for (int j = 0; j < D; ++j) {
        mean_rank[j] /= (double)n;
        nmre[j] = fabs(mean_rank[j] - 0.5 * o->n_samples) / (0.5 * o->n_samples);
    }
    for (int l = 0; l < L; ++l) {
        double tot = 0.0;
        for (int j = 0; j < D; ++j) {
            cov_pp[l * D + j] /= (double)n;
            tot += cov_pp[l * D + j];
        }
        sum->coverage[l] = tot / D;
    }
    memcpy(sum->normalized_mean_rank_error, nmre, (size_t)D * sizeof *nmre);
    SBI_MALLOC(alpha, o->n_alpha);
    SBI_MALLOC(ecp, o->n_alpha);
    sum->tarp_max_distance = sbi_tarp_ecp(n, tarp_f, o->n_alpha, alpha, ecp);

    SBI_CALL(sbi_h5w_create(path, SBI_SBC_FORMAT, 1, &w));
    {
        char *tj = cJSON_PrintUnformatted(m->task->json);
        SBI_CALL(sbi_h5w_attr_string(w, NULL, "task", tj));
        free(tj);
    }
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "fingerprint", m->task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "split", sbi_split_names[o->split]));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_cases", n));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_samples", o->n_samples));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "seed", (int64_t)o->seed));
    SBI_CALL(sbi_h5w_attr_double(w, NULL, "tarp_max_distance", sum->tarp_max_distance));
    dims2[0] = n;
    dims2[1] = D;
    SBI_CALL(sbi_h5w_int64(w, "ranks", 2, dims2, ranks));
    SBI_CALL(sbi_h5w_double(w, "truths", 2, dims2, truths));
    SBI_CALL(sbi_h5w_double(w, "posterior_means", 2, dims2, means));
    dims1[0] = n;
    SBI_CALL(sbi_h5w_int64(w, "sim_index", 1, dims1, sim_index));
    dims2[0] = D;
    dims2[1] = NB;
    SBI_CALL(sbi_h5w_int64(w, "rank_histogram", 2, dims2, hist));
    dims1[0] = L;
    SBI_CALL(sbi_h5w_double(w, "coverage/levels", 1, dims1, o->levels));
    SBI_CALL(sbi_h5w_double(w, "coverage/empirical", 1, dims1, sum->coverage));
    SBI_CALL(sbi_h5w_double(w, "coverage/expected", 1, dims1, sum->expected));
    dims2[0] = L;
    dims2[1] = D;
    SBI_CALL(sbi_h5w_double(w, "coverage/per_parameter", 2, dims2, cov_pp));
    dims1[0] = D;
    SBI_CALL(sbi_h5w_double(w, "mean_rank", 1, dims1, mean_rank));
    SBI_CALL(sbi_h5w_double(w, "normalized_mean_rank_error", 1, dims1, nmre));
    SBI_MALLOC(names, D);
    for (int j = 0; j < D; ++j) names[j] = m->task->params[j].name;
    SBI_CALL(sbi_h5w_strings(w, "parameters/names", D, names));
    free(names);
    dims1[0] = o->n_alpha;
    SBI_CALL(sbi_h5w_double(w, "tarp/alpha", 1, dims1, alpha));
    SBI_CALL(sbi_h5w_double(w, "tarp/ecp", 1, dims1, ecp));
    dims1[0] = n;
    SBI_CALL(sbi_h5w_double(w, "tarp/f", 1, dims1, tarp_f));
    dims2[0] = n;
    dims2[1] = D;
    SBI_CALL(sbi_h5w_double(w, "tarp/references", 2, dims2, tarp_ref));
    SBI_CALL(sbi_h5w_commit(&w));
    free(alpha);
    free(ecp);
    free(hist);
    free(cov_pp);
    free(mean_rank);
    free(nmre);
    return 0;
}

int sbi_sbc_run(const sbi_comm *c, const char *model_path, const char *corpus_path, const sbi_sbc_options *o,
                const char *out_path, sbi_sbc_summary *sum)
{
    sbi_model *m = NULL;
    sbi_corpus corpus = NULL;
    const sbi_corpus_desc *d;
    int64_t n_cases;
    sbi_shard sh;
    int st, D, g, L = o->n_levels;
    sbi_rng *rngs = NULL;
    double *theta = NULL, *samples = NULL, *xd = NULL, *means = NULL, *tarp_f = NULL, *tarp_ref = NULL, *zt = NULL;
    float *xf = NULL;
    int64_t *ranks = NULL, *sidx = NULL;
    int *covered = NULL;
    double t0 = sbi_wtime();
    sbi_progress prog;

    memset(sum, 0, sizeof *sum);
    SBI_CHECK(o->n_samples >= 1 && o->n_levels >= 1 && o->n_levels <= SBI_MAX_LEVELS && o->n_bins >= 1,
              SBI_ERR_INPUT, "sbc: --samples and --levels must be positive");
    SBI_CHECK(o->n_alpha >= 2, SBI_ERR_INPUT, "sbc: the TARP grid needs at least 2 points");
    for (int l = 0; l < L; ++l)
        SBI_CHECK(o->levels[l] > 0 && o->levels[l] < 1, SBI_ERR_INPUT, "sbc: coverage level %g is not in (0, 1)",
                  o->levels[l]);
    st = sbi_model_load(model_path, &m);
    SBI_AGREE(c, st);
    st = sbi_corpus_open(c, corpus_path, &corpus);
    SBI_AGREE(c, st);
    d = sbi_corpus_get_desc(corpus);
    {
        sbi_task *ct = NULL;
        char what[2 * SBI_PATH_MAX];
        st = sbi_task_from_json(d->task_json, corpus_path, &ct);
        snprintf(what, sizeof what, "model %s and corpus %s were made for different tasks", model_path, corpus_path);
        if (!st) st = sbi_task_compare(m->task, ct, what);
        sbi_task_destroy(&ct);
        SBI_AGREE(c, st);
    }
    D = m->D;
    n_cases = d->split_rows[o->split];
    if (o->max_cases > 0 && o->max_cases < n_cases) n_cases = o->max_cases;
    SBI_CHECK(n_cases >= 1, SBI_ERR_INPUT, "%s: the %s split is empty", corpus_path, sbi_split_names[o->split]);
    /* Cases are sampled in groups of g, one vectorised call per group, and
     * ranks hold whole groups: every group, and so every draw, is the same
     * whatever the number of ranks. */
    g = sbi_model_sample_group(m, o->n_samples);
    {
        sbi_shard gs = sbi_shard_block((n_cases + g - 1) / g, c->rank, c->size);
        int64_t end = (gs.offset + gs.count) * g < n_cases ? (gs.offset + gs.count) * g : n_cases;
        sh.offset = gs.offset * g < n_cases ? gs.offset * g : n_cases;
        sh.count = end - sh.offset;
    }

    SBI_MALLOC(theta, (size_t)(sh.count ? sh.count : 1) * D);
    SBI_MALLOC(xf, (size_t)(sh.count ? sh.count : 1) * m->X);
    SBI_MALLOC(sidx, sh.count ? sh.count : 1);
    SBI_MALLOC(xd, (size_t)g * m->X);
    SBI_MALLOC(rngs, g);
    SBI_MALLOC(samples, (size_t)g * o->n_samples * D);
    SBI_MALLOC(ranks, (size_t)(sh.count ? sh.count : 1) * D);
    SBI_MALLOC(means, (size_t)(sh.count ? sh.count : 1) * D);
    SBI_MALLOC(covered, (size_t)(sh.count ? sh.count : 1) * L * D);
    SBI_MALLOC(tarp_f, sh.count ? sh.count : 1);
    SBI_MALLOC(tarp_ref, (size_t)(sh.count ? sh.count : 1) * D);
    SBI_MALLOC(zt, D);
    st = sh.count ? sbi_corpus_read_rows(corpus, o->split, sh.offset, sh.count, 0, theta, xf, sidx) : 0;
    SBI_AGREE(c, st);

    sbi_progress_start(&prog, c, "sbc", sh.count);
    for (int64_t i = 0; i < sh.count; ++i) {
        sbi_rng rng;
        const double *t = theta + i * D;
        double *samples_i = samples + (size_t)((i % g) * o->n_samples * D);
        if (i % g == 0) { /* the next group of cases, sampled in one call */
            int n_obs = (int)(sh.count - i < g ? sh.count - i : g);
            for (size_t k = 0; k < (size_t)n_obs * m->X; ++k) xd[k] = (double)xf[(size_t)i * m->X + k];
            for (int r = 0; r < n_obs; ++r) sbi_rng_init(&rngs[r], o->seed, (uint64_t)sidx[i + r], SBI_STREAM_SAMPLE, 0);
            st = sbi_model_sample_batch(m, xd, n_obs, o->n_samples, rngs, samples, NULL);
            if (st) break;
        }
        for (int j = 0; j < D; ++j) {
            int64_t r = 0;
            double mu = 0.0;
            for (int s = 0; s < o->n_samples; ++s) {
                double v = samples_i[(size_t)s * D + j];
                r += v < t[j];
                mu += v;
            }
            ranks[i * D + j] = r;
            means[i * D + j] = mu / o->n_samples;
        }
        sbi_sbc_coverage_from_samples(o->n_samples, D, samples_i, t, L, o->levels, covered + i * L * D);
        /* TARP works in the standardised unconstrained space, where every parameter has unit spread. */
        sbi_rng_init(&rng, o->seed, (uint64_t)sidx[i], SBI_STREAM_SAMPLE, SBI_TARP_REFERENCE_SUB);
        for (int j = 0; j < D; ++j)
            tarp_ref[i * D + j] = SBI_TARP_REFERENCE_HALF_WIDTH * (2.0 * sbi_rng_uniform(&rng) - 1.0);
        memcpy(zt, t, (size_t)D * sizeof *zt);
        to_standardized(m, 1, zt);
        to_standardized(m, o->n_samples, samples_i);
        tarp_f[i] = sbi_tarp_fraction(o->n_samples, D, samples_i, zt, tarp_ref + i * D);
        sbi_progress_update(&prog, i + 1);
    }
    SBI_AGREE(c, st);
    sbi_progress_clear(&prog);
    for (int l = 0; l < L; ++l) sum->expected[l] = sbi_sbc_expected_coverage(o->levels[l], o->n_samples);

    {
        int64_t *all_ranks = NULL, *all_sidx = NULL;
        double *all_truths = NULL, *all_means = NULL, *all_f = NULL, *all_ref = NULL;
        int *all_cov = NULL;
        if (c->rank == 0) {
            SBI_MALLOC(all_ranks, (size_t)n_cases * D);
            SBI_MALLOC(all_sidx, n_cases);
            SBI_MALLOC(all_truths, (size_t)n_cases * D);
            SBI_MALLOC(all_means, (size_t)n_cases * D);
            SBI_MALLOC(all_cov, (size_t)n_cases * L * D);
            SBI_MALLOC(all_f, n_cases);
            SBI_MALLOC(all_ref, (size_t)n_cases * D);
        }
        SBI_CALL(sbi__gather_rows(c, ranks, sh.count, D, MPI_INT64_T, sizeof(int64_t), all_ranks));
        SBI_CALL(sbi__gather_rows(c, sidx, sh.count, 1, MPI_INT64_T, sizeof(int64_t), all_sidx));
        SBI_CALL(sbi__gather_rows(c, theta, sh.count, D, MPI_DOUBLE, sizeof(double), all_truths));
        SBI_CALL(sbi__gather_rows(c, means, sh.count, D, MPI_DOUBLE, sizeof(double), all_means));
        SBI_CALL(sbi__gather_rows(c, covered, sh.count, L * D, MPI_INT, sizeof(int), all_cov));
        SBI_CALL(sbi__gather_rows(c, tarp_f, sh.count, 1, MPI_DOUBLE, sizeof(double), all_f));
        SBI_CALL(sbi__gather_rows(c, tarp_ref, sh.count, D, MPI_DOUBLE, sizeof(double), all_ref));
        SBI_MALLOC(sum->normalized_mean_rank_error, D);
        st = 0;
        if (c->rank == 0)
            st = write_report(out_path, m, o, n_cases, all_ranks, all_truths, all_means, all_sidx, all_cov, all_f,
                              all_ref, sum);
        SBI_AGREE(c, st);
        free(all_ranks);
        free(all_sidx);
        free(all_truths);
        free(all_means);
        free(all_cov);
        free(all_f);
        free(all_ref);
    }
    SBI_CALL(sbi_comm_bcast(c, sum->coverage, sizeof sum->coverage, 0));
    SBI_CALL(sbi_comm_bcast(c, sum->normalized_mean_rank_error, (size_t)D * sizeof(double), 0));
    SBI_CALL(sbi_comm_bcast(c, &sum->tarp_max_distance, sizeof sum->tarp_max_distance, 0));
    sum->n_cases = n_cases;
    sum->D = D;
    sum->n_levels = L;
    memcpy(sum->levels, o->levels, sizeof o->levels);
    sum->wall_s = sbi_wtime() - t0;

    free(theta);
    free(xf);
    free(sidx);
    free(xd);
    free(rngs);
    free(samples);
    free(ranks);
    free(means);
    free(covered);
    free(tarp_f);
    free(tarp_ref);
    free(zt);
    SBI_CALL(sbi_corpus_close(&corpus));
    sbi_model_destroy(&m);
    return 0;
}
