/* Posterior-predictive report of held-out cases, with per-case checkpoints. */
#include "exosbi/calibrate.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calibrate/calibrate_impl.h"
#include "exosbi/corpus.h"
#include "exosbi/forward.h"
#include "exosbi/h5file.h"

#define PPC_CASE_FORMAT "exosbi-ppc-case"

const char *const sbi_ppc_stat_names[SBI_PPC_N_STATS] = {"coverage", "mae", "mae_sigma", "median_width_over_sigma",
                                                          "crps"};

void sbi_ppc_options_default(sbi_ppc_options *o)
{
    memset(o, 0, sizeof *o);
    o->split = SBI_SPLIT_TEST;
    o->n_samples = 256;
    o->level = 0.9;
    o->seed = 0x99c;
}

void sbi_ppc_summary_free(sbi_ppc_summary *s)
{
    free(s->stats);
    s->stats = NULL;
}

double sbi_crps_ensemble(int M, double *y, double x)
{
    double spread = 0.0, pair = 0.0;
    qsort(y, (size_t)M, sizeof *y, sbi_cmp_double);
    /* sum_r sum_r' |y_r - y_r'| = 2 sum_i (2i - M + 1) y_(i) over the sorted values (i from 0). */
    for (int i = 0; i < M; ++i) {
        spread += fabs(y[i] - x);
        pair += (2.0 * i - M + 1.0) * y[i];
    }
    return spread / M - pair / ((double)M * (double)M);
}

void sbi_ppc_band(int M, int X, const double *pred, const double *x, double level, double *mean, double *std,
                  double *lower, double *upper, double *crps, double *col)
{
    for (int k = 0; k < X; ++k) {
        double mu = 0.0, var = 0.0, cr;
        if (!M) {
            mean[k] = std[k] = lower[k] = upper[k] = crps[k] = NAN;
            continue;
        }
        for (int r = 0; r < M; ++r) {
            col[r] = pred[(size_t)r * X + k];
            mu += col[r];
        }
        mu /= M;
        for (int r = 0; r < M; ++r) var += (col[r] - mu) * (col[r] - mu);
        cr = sbi_crps_ensemble(M, col, x[k]);
        mean[k] = mu;
        std[k] = M > 1 ? sqrt(var / (M - 1)) : 0.0;
        lower[k] = sbi_quantile_sorted(col, M, 0.5 * (1.0 - level));
        upper[k] = sbi_quantile_sorted(col, M, 0.5 * (1.0 + level));
        crps[k] = cr;
    }
}

/* One case's results, packed in a row of doubles: observed, mean, std, lower,
 * upper (X each), the statistics (SBI_PPC_N_STATS, n_datasets), n_valid. */
typedef struct ppc_layout {
    int X, ND, width;
    int obs, mean, std, lower, upper, stats, valid;
} ppc_layout;

static ppc_layout ppc_layout_make(int X, int ND)
{
    ppc_layout l;
    l.X = X;
    l.ND = ND;
    l.obs = 0;
    l.mean = X;
    l.std = 2 * X;
    l.lower = 3 * X;
    l.upper = 4 * X;
    l.stats = 5 * X;
    l.valid = 5 * X + SBI_PPC_N_STATS * ND;
    l.width = l.valid + 1;
    return l;
}

/* Scratch for one case, allocated once per run. */
typedef struct ppc_work {
    double *theta;  /* (N, D) posterior draws */
    double *pred;   /* (M, X) predictive draws */
    double *col;    /* (M) one output over the valid draws */
    double *ratio;  /* (largest dataset size) */
    double *sigma;  /* (X) the task's uncertainties, concatenated */
    double *crps;   /* (X) CRPS of each observed point */
    double *xobs;   /* (X) */
    uint64_t *idx;  /* (M) */
} ppc_work;

static int ppc_case(sbi_model *m, sbi_forward fw, const sbi_task *task, const sbi_ppc_options *o, int M, int64_t sim,
                    const float *xf, ppc_work *w, const ppc_layout *L, double *row)
{
    const int X = m->X;
    sbi_rng rng;
    int n_valid = 0;

    for (int k = 0; k < X; ++k) w->xobs[k] = row[L->obs + k] = (double)xf[k];
    sbi_rng_init(&rng, o->seed, (uint64_t)sim, SBI_STREAM_SAMPLE, 0);
    SBI_CALL(sbi_model_sample(m, w->xobs, o->n_samples, &rng, w->theta, NULL));
    for (int r = 0; r < M; ++r) w->idx[r] = (uint64_t)sim * (uint64_t)M + (uint64_t)r;
    SBI_CALL(sbi_forward_simulate(fw, M, w->theta, w->idx, o->seed + 1, w->pred));
    /* Keep the draws that simulated, in order, adding the observational noise of draw r. */
    for (int r = 0; r < M; ++r) {
        const double *p = w->pred + (size_t)r * X;
        int ok = 1;
        for (int k = 0; k < X && ok; ++k) ok = isfinite(p[k]);
        if (!ok) continue;
        if (n_valid != r) memmove(w->pred + (size_t)n_valid * X, p, (size_t)X * sizeof *p);
        if (task->noise == SBI_NOISE_OBSERVATIONAL) {
            double *q = w->pred + (size_t)n_valid * X;
            sbi_rng_init(&rng, o->seed, (uint64_t)sim, SBI_STREAM_NOISE, 1u + (uint32_t)r);
            for (int k = 0; k < X; ++k) q[k] += w->sigma[k] * sbi_rng_normal(&rng);
        }
        n_valid++;
    }
    row[L->valid] = n_valid;
    sbi_ppc_band(n_valid, X, w->pred, w->xobs, o->level, row + L->mean, row + L->std, row + L->lower,
                 row + L->upper, w->crps, w->col);
    for (int d = 0; d < task->n_datasets; ++d) {
        const sbi_dataset *ds = &task->datasets[d];
        double cov = 0.0, mae = 0.0, maes = 0.0, crps = 0.0;
        int zero_sigma = 0;
        for (int i = 0; i < ds->size; ++i) {
            int k = (int)ds->offset + i;
            double e = fabs(row[L->mean + k] - w->xobs[k]);
            cov += w->xobs[k] >= row[L->lower + k] && w->xobs[k] <= row[L->upper + k];
            mae += e;
            crps += n_valid ? w->crps[k] : NAN;
            if (w->sigma[k] > 0) {
                maes += e / w->sigma[k];
                w->ratio[i] = (row[L->upper + k] - row[L->lower + k]) / w->sigma[k];
            } else {
                zero_sigma = 1;
            }
        }
        if (!n_valid) cov = mae = NAN;
        if (zero_sigma || !n_valid) {
            maes = NAN;
            w->ratio[0] = NAN;
        } else {
            qsort(w->ratio, (size_t)ds->size, sizeof *w->ratio, sbi_cmp_double);
            w->ratio[0] = sbi_quantile_sorted(w->ratio, ds->size, 0.5);
        }
        row[L->stats + 0 * L->ND + d] = cov / ds->size;
        row[L->stats + 1 * L->ND + d] = mae / ds->size;
        row[L->stats + 2 * L->ND + d] = maes / ds->size;
        row[L->stats + 3 * L->ND + d] = w->ratio[0];
        row[L->stats + 4 * L->ND + d] = crps / ds->size;
    }
    return 0;
}

/* ---- checkpoints: one small file per finished case ---- */

static void case_path(const char *dir, int64_t sim, char *out, size_t cap)
{
    snprintf(out, cap, "%s/case_%lld.h5", dir, (long long)sim);
}

static int write_case(const char *dir, const sbi_task *task, const sbi_ppc_options *o, int M, int64_t sim,
                      const ppc_layout *L, const double *row)
{
    char path[SBI_PATH_MAX + 64];
    int64_t dims[1] = {L->width};
    sbi_h5w w = NULL;
    case_path(dir, sim, path, sizeof path);
    SBI_CALL(sbi_h5w_create(path, PPC_CASE_FORMAT, 1, &w));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "sim_index", sim));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_samples", o->n_samples));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_forward_samples", M));
    SBI_CALL(sbi_h5w_attr_double(w, NULL, "level", o->level));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "seed", (int64_t)o->seed));
    SBI_CALL(sbi_h5w_double(w, "row", 1, dims, row));
    SBI_CALL(sbi_h5w_commit(&w));
    return 0;
}

/* Read case `sim` back into row; *found is 0 when there is no checkpoint. */
static int read_case(const char *dir, const sbi_task *task, const sbi_ppc_options *o, int M, int64_t sim,
                     const ppc_layout *L, double *row, int *found)
{
    char path[SBI_PATH_MAX + 64], *fp = NULL;
    int64_t n_samples, n_forward, seed, idx;
    double level, *data = NULL;
    int rank;
    int64_t dims[2] = {0, 0};
    sbi_h5r r = NULL;
    case_path(dir, sim, path, sizeof path);
    *found = sbi_file_exists(path);
    if (!*found) return 0;
    SBI_CALL(sbi_h5r_open(path, PPC_CASE_FORMAT, &r));
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "fingerprint", &fp));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "sim_index", &idx));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "n_samples", &n_samples));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "n_forward_samples", &n_forward));
    SBI_CALL(sbi_h5r_attr_double(r, NULL, "level", &level));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "seed", &seed));
    SBI_CHECK(!strcmp(fp, task->fingerprint) && idx == sim && n_samples == o->n_samples && n_forward == M &&
                  level == o->level && (uint64_t)seed == o->seed,
              SBI_ERR_INCOMPATIBLE,
              "%s: checkpoint made with other settings (task, --samples, --forward-samples, --level or --seed); "
              "use another --checkpoint-dir or empty this one",
              path);
    free(fp);
    SBI_CALL(sbi_h5r_double(r, "row", &data, &rank, dims));
    SBI_CHECK(rank == 1 && dims[0] == L->width, SBI_ERR_IO, "%s: /row has %lld values, expected %d", path,
              (long long)dims[0], L->width);
    memcpy(row, data, (size_t)L->width * sizeof *row);
    free(data);
    sbi_h5r_close(&r);
    return 0;
}

static int make_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        SBI_CHECK(S_ISDIR(sb.st_mode), SBI_ERR_IO, "--checkpoint-dir %s exists and is not a directory", dir);
        return 0;
    }
    SBI_CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST, SBI_ERR_IO, "cannot create --checkpoint-dir %s: %s", dir,
              strerror(errno));
    return 0;
}

/* ---- the report ---- */

static int write_report(const char *path, const sbi_task *task, const char *model_path, const char *corpus_path,
                        const sbi_ppc_options *o, int M, int64_t n, const int64_t *sidx, const double *rows,
                        const ppc_layout *L, sbi_ppc_summary *sum)
{
    const int ND = task->n_datasets;
    sbi_h5w w = NULL;
    int64_t *valid, dims[2];
    double *buf, *col;
    const char **names;
    char p[256];
    size_t cap = (size_t)n * (L->X > SBI_PPC_N_STATS * ND ? L->X : SBI_PPC_N_STATS * ND);

    SBI_MALLOC(valid, n);
    SBI_MALLOC(buf, cap);
    SBI_MALLOC(col, n);
    for (int64_t i = 0; i < n; ++i) valid[i] = (int64_t)rows[i * L->width + L->valid];
    /* Summary: the mean over cases, but the median over cases of the width ratio. */
    for (int s = 0; s < SBI_PPC_N_STATS; ++s)
        for (int d = 0; d < ND; ++d) {
            double acc = 0.0;
            for (int64_t i = 0; i < n; ++i) col[i] = rows[i * L->width + L->stats + s * ND + d];
            if (s == 3) {
                qsort(col, (size_t)n, sizeof *col, sbi_cmp_double);
                acc = sbi_quantile_sorted(col, n, 0.5);
            } else {
                for (int64_t i = 0; i < n; ++i) acc += col[i];
                acc /= (double)n;
            }
            sum->stats[s * ND + d] = acc;
        }

    SBI_CALL(sbi_h5w_create(path, SBI_PPC_FORMAT, 1, &w));
    {
        char *tj = cJSON_PrintUnformatted(task->json);
        SBI_CALL(sbi_h5w_attr_string(w, NULL, "task", tj));
        free(tj);
    }
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "model", model_path));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "corpus", corpus_path));
    SBI_CALL(sbi_h5w_attr_string(w, NULL, "split", sbi_split_names[o->split]));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_cases", n));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_samples", o->n_samples));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "n_forward_samples", M));
    SBI_CALL(sbi_h5w_attr_double(w, NULL, "level", o->level));
    SBI_CALL(sbi_h5w_attr_int64(w, NULL, "seed", (int64_t)o->seed));
    dims[0] = n;
    SBI_CALL(sbi_h5w_int64(w, "sim_index", 1, dims, sidx));
    SBI_CALL(sbi_h5w_int64(w, "n_valid", 1, dims, valid));
    SBI_MALLOC(names, ND);
    for (int d = 0; d < ND; ++d) names[d] = task->datasets[d].name;
    SBI_CALL(sbi_h5w_strings(w, "datasets/names", ND, names));
    free(names);
    for (int d = 0; d < ND; ++d) {
        const sbi_dataset *ds = &task->datasets[d];
        static const char *const what[5] = {"observed", "mean", "std", "lower", "upper"};
        const int at[5] = {L->obs, L->mean, L->std, L->lower, L->upper};
        int64_t d1[1] = {ds->size};
        for (int a = 0; a < 5; ++a) {
            for (int64_t i = 0; i < n; ++i)
                memcpy(buf + i * ds->size, rows + i * L->width + at[a] + ds->offset,
                       (size_t)ds->size * sizeof *buf);
            snprintf(p, sizeof p, "datasets/%s/%s", ds->name, what[a]);
            dims[0] = n;
            dims[1] = ds->size;
            SBI_CALL(sbi_h5w_double(w, p, 2, dims, buf));
        }
        snprintf(p, sizeof p, "datasets/%s/uncertainty", ds->name);
        SBI_CALL(sbi_h5w_double(w, p, 1, d1, ds->uncertainty));
        if (ds->coordinates) {
            snprintf(p, sizeof p, "datasets/%s/coordinates", ds->name);
            SBI_CALL(sbi_h5w_double(w, p, 1, d1, ds->coordinates));
        }
    }
    for (int s = 0; s < SBI_PPC_N_STATS; ++s) {
        int64_t d1[1] = {ND};
        for (int64_t i = 0; i < n; ++i)
            memcpy(buf + i * ND, rows + i * L->width + L->stats + s * ND, (size_t)ND * sizeof *buf);
        snprintf(p, sizeof p, "per_case/%s", sbi_ppc_stat_names[s]);
        dims[0] = n;
        dims[1] = ND;
        SBI_CALL(sbi_h5w_double(w, p, 2, dims, buf));
        snprintf(p, sizeof p, "summary/%s", sbi_ppc_stat_names[s]);
        SBI_CALL(sbi_h5w_double(w, p, 1, d1, sum->stats + s * ND));
    }
    SBI_CALL(sbi_h5w_commit(&w));
    free(valid);
    free(buf);
    free(col);
    return 0;
}

int sbi_ppc_run(const sbi_comm *c, const sbi_task *task, const char *model_path, const char *corpus_path,
                const sbi_ppc_options *o, const char *out_path, sbi_ppc_summary *sum)
{
    sbi_model *m = NULL;
    sbi_corpus corpus = NULL;
    sbi_forward fw = NULL;
    const sbi_corpus_desc *d;
    ppc_layout L;
    ppc_work w;
    sbi_shard sh;
    sbi_progress prog;
    int st, M, max_size = 1;
    int64_t n_cases, *sidx = NULL, *all_sidx = NULL, computed = 0, resumed = 0;
    float *xf = NULL;
    double *rows = NULL, *all_rows = NULL, t0 = sbi_wtime();
    const char *kill_env = getenv("EXOSBI_TEST_KILL_AFTER_CASES");

    memset(sum, 0, sizeof *sum);
    memset(&w, 0, sizeof w);
    SBI_CHECK(o->n_samples >= 1, SBI_ERR_INPUT, "predictive: --samples must be at least 1");
    SBI_CHECK(o->n_forward >= 0 && o->n_forward <= o->n_samples, SBI_ERR_INPUT,
              "predictive: --forward-samples must be in 1..--samples (%d)", o->n_samples);
    SBI_CHECK(o->level > 0 && o->level < 1, SBI_ERR_INPUT, "predictive: --level %g is not in (0, 1)", o->level);
    M = o->n_forward ? o->n_forward : o->n_samples;
    st = sbi_model_load(model_path, &m);
    if (!st) {
        char what[SBI_PATH_MAX + 64];
        snprintf(what, sizeof what, "model %s was trained for a different task", model_path);
        st = sbi_task_compare(task, m->task, what);
    }
    SBI_AGREE(c, st);
    st = sbi_corpus_open(c, corpus_path, &corpus);
    SBI_AGREE(c, st);
    d = sbi_corpus_get_desc(corpus);
    {
        sbi_task *ct = NULL;
        char what[SBI_PATH_MAX + 64];
        st = sbi_task_from_json(d->task_json, corpus_path, &ct);
        snprintf(what, sizeof what, "corpus %s was simulated for a different task", corpus_path);
        if (!st) st = sbi_task_compare(task, ct, what);
        sbi_task_destroy(&ct);
        SBI_AGREE(c, st);
    }
    st = sbi_forward_create_on(task, c, &fw);
    SBI_AGREE(c, st);
    n_cases = d->split_rows[o->split];
    if (o->max_cases > 0 && o->max_cases < n_cases) n_cases = o->max_cases;
    SBI_CHECK(n_cases >= 1, SBI_ERR_INPUT, "%s: the %s split is empty", corpus_path, sbi_split_names[o->split]);
    L = ppc_layout_make(m->X, task->n_datasets);
    sh = sbi_shard_block(n_cases, c->rank, c->size);

    for (int k = 0; k < task->n_datasets; ++k)
        if (task->datasets[k].size > max_size) max_size = task->datasets[k].size;
    SBI_MALLOC(w.theta, (size_t)o->n_samples * m->D);
    SBI_MALLOC(w.pred, (size_t)M * m->X);
    SBI_MALLOC(w.col, M);
    SBI_MALLOC(w.ratio, max_size);
    SBI_MALLOC(w.sigma, m->X);
    SBI_MALLOC(w.xobs, m->X);
    SBI_MALLOC(w.crps, m->X);
    SBI_MALLOC(w.idx, M);
    for (int k = 0; k < task->n_datasets; ++k)
        memcpy(w.sigma + task->datasets[k].offset, task->datasets[k].uncertainty,
               (size_t)task->datasets[k].size * sizeof(double));
    SBI_MALLOC(xf, (size_t)(sh.count ? sh.count : 1) * m->X);
    SBI_MALLOC(sidx, sh.count ? sh.count : 1);
    SBI_MALLOC(rows, (size_t)(sh.count ? sh.count : 1) * L.width);
    st = sh.count ? sbi_corpus_read_rows(corpus, o->split, sh.offset, sh.count, 0, NULL, xf, sidx) : 0;
    SBI_AGREE(c, st);
    st = 0;
    if (o->checkpoint_dir && c->rank == 0) st = make_dir(o->checkpoint_dir);
    SBI_AGREE(c, st);

    sbi_progress_start(&prog, c, "predictive", sh.count);
    for (int64_t i = 0; i < sh.count && !st; ++i) {
        double *row = rows + i * L.width;
        int found = 0;
        if (o->checkpoint_dir) st = read_case(o->checkpoint_dir, task, o, M, sidx[i], &L, row, &found);
        if (st) break;
        if (found) {
            resumed++;
        } else {
            st = ppc_case(m, fw, task, o, M, sidx[i], xf + i * m->X, &w, &L, row);
            if (!st && o->checkpoint_dir) st = write_case(o->checkpoint_dir, task, o, M, sidx[i], &L, row);
            computed++;
            /* Tests of the resume path: die like a killed job after this many new cases. */
            if (!st && kill_env && computed >= atoll(kill_env)) raise(SIGKILL);
        }
        sbi_progress_update(&prog, i + 1);
    }
    SBI_AGREE(c, st);
    sbi_progress_clear(&prog);

    if (c->rank == 0) {
        SBI_MALLOC(all_rows, (size_t)n_cases * L.width);
        SBI_MALLOC(all_sidx, n_cases);
    }
    SBI_CALL(sbi__gather_rows(c, rows, sh.count, L.width, MPI_DOUBLE, sizeof(double), all_rows));
    SBI_CALL(sbi__gather_rows(c, sidx, sh.count, 1, MPI_INT64_T, sizeof(int64_t), all_sidx));
    SBI_MALLOC(sum->stats, (size_t)SBI_PPC_N_STATS * task->n_datasets);
    st = 0;
    if (c->rank == 0)
        st = write_report(out_path, task, model_path, corpus_path, o, M, n_cases, all_sidx, all_rows, &L, sum);
    SBI_AGREE(c, st);
    SBI_CALL(sbi_comm_bcast(c, sum->stats, (size_t)SBI_PPC_N_STATS * task->n_datasets * sizeof(double), 0));
    SBI_CALL(sbi_comm_sum_int64(c, &resumed, 1));
    sum->n_cases = n_cases;
    sum->n_resumed = resumed;
    sum->n_datasets = task->n_datasets;
    sum->wall_s = sbi_wtime() - t0;

    free(all_rows);
    free(all_sidx);
    free(rows);
    free(sidx);
    free(xf);
    free(w.theta);
    free(w.pred);
    free(w.col);
    free(w.ratio);
    free(w.sigma);
    free(w.xobs);
    free(w.crps);
    free(w.idx);
    sbi_forward_destroy(&fw);
    SBI_CALL(sbi_corpus_close(&corpus));
    sbi_model_destroy(&m);
    return 0;
}
