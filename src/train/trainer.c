/* The data-parallel trainer: options, the streaming row loader, the epoch
 * loop with one gradient Allreduce per step, validation, early stopping,
 * checkpoints and the model file. */
#include "exosbi/train.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/corpus.h"
#include "exosbi/h5file.h"
#include "exosbi/infer.h"
#include "exosbi/model.h"
#include "exosbi/optim.h"
#include "exosbi/rng.h"

#ifdef SBI_REAL_DOUBLE
#define SBI_MPI_REAL MPI_DOUBLE
#else
#define SBI_MPI_REAL MPI_FLOAT
#endif

#define CKPT_FORMAT "exosbi-checkpoint"
#define BLOCK_ROWS 4096

/* ---- options ------------------------------------------------------------- */

int sbi_train_options_from_task(const sbi_task *task, sbi_train_options *opt)
{
    const cJSON *t = task->training, *item;
    memset(opt, 0, sizeof *opt);
    snprintf(opt->estimator, sizeof opt->estimator, "affine");
    opt->batch_size = 256;
    opt->learning_rate = 1e-3;
    opt->max_epochs = 200;
    opt->min_epochs = 5;
    opt->patience = 20;
    opt->min_delta = 1e-4;
    opt->clip_norm = 5.0;
    opt->weight_decay = 0.0;
    opt->seed = task->seed;
    opt->cache_mb = 1024;
    opt->lr_decay_patience = 5;
    snprintf(opt->lr_schedule, sizeof opt->lr_schedule, "plateau");
    opt->warmup_fraction = 0.02;
    opt->lr_decay_factor = 0.5;
    opt->min_learning_rate = 1e-6;
    opt->time_features = -1;
    if (!t) return sbi_train_options_validate(opt);
    cJSON_ArrayForEach(item, t)
    {
        const char *k = item->string;
        if (!strcmp(k, "estimator")) {
            SBI_CHECK(cJSON_IsString(item), SBI_ERR_INPUT, "%s: training.estimator: expected a string", task->path);
            snprintf(opt->estimator, sizeof opt->estimator, "%s", item->valuestring);
            continue;
        }
        if (!strcmp(k, "ode_solver")) {
            SBI_CHECK(cJSON_IsString(item), SBI_ERR_INPUT, "%s: training.ode_solver: expected a string", task->path);
            snprintf(opt->ode_solver, sizeof opt->ode_solver, "%s", item->valuestring);
            continue;
        }
        if (!strcmp(k, "lr_schedule")) {
            SBI_CHECK(cJSON_IsString(item), SBI_ERR_INPUT, "%s: training.lr_schedule: expected a string", task->path);
            snprintf(opt->lr_schedule, sizeof opt->lr_schedule, "%s", item->valuestring);
            continue;
        }
        if (!strcmp(k, "embedding")) {
            SBI_CHECK(cJSON_IsString(item), SBI_ERR_INPUT, "%s: training.embedding: expected a string", task->path);
            snprintf(opt->embedding, sizeof opt->embedding, "%s", item->valuestring);
            continue;
        }
        SBI_CHECK(cJSON_IsNumber(item), SBI_ERR_INPUT, "%s: training.%s: expected a number", task->path, k);
        double v = item->valuedouble;
        if (!strcmp(k, "batch_size")) opt->batch_size = (int)v;
        else if (!strcmp(k, "learning_rate")) opt->learning_rate = v;
        else if (!strcmp(k, "max_epochs")) opt->max_epochs = (int)v;
        else if (!strcmp(k, "min_epochs")) opt->min_epochs = (int)v;
        else if (!strcmp(k, "patience")) opt->patience = (int)v;
        else if (!strcmp(k, "min_delta")) opt->min_delta = v;
        else if (!strcmp(k, "clip_norm")) opt->clip_norm = v;
        else if (!strcmp(k, "weight_decay")) opt->weight_decay = v;
        else if (!strcmp(k, "seed")) opt->seed = (uint64_t)v;
        else if (!strcmp(k, "embed_dim")) opt->embed_dim = (int)v;
        else if (!strcmp(k, "embed_hidden")) opt->embed_hidden = (int)v;
        else if (!strcmp(k, "embed_layers")) opt->embed_layers = (int)v;
        else if (!strcmp(k, "n_transforms")) opt->n_transforms = (int)v;
        else if (!strcmp(k, "hidden")) opt->hidden = (int)v;
        else if (!strcmp(k, "hidden_layers")) opt->hidden_layers = (int)v;
        else if (!strcmp(k, "cache_mb")) opt->cache_mb = (int)v;
        else if (!strcmp(k, "n_bins")) opt->n_bins = (int)v;
        else if (!strcmp(k, "n_sigmoids")) opt->n_sigmoids = (int)v;
        else if (!strcmp(k, "bisection_steps")) opt->bisection_steps = (int)v;
        else if (!strcmp(k, "ode_steps")) opt->ode_steps = (int)v;
        else if (!strcmp(k, "time_features")) opt->time_features = (int)v;
        else if (!strcmp(k, "warmup_fraction")) opt->warmup_fraction = v;
        else if (!strcmp(k, "warmup_epochs")) opt->warmup_epochs = v;
        else if (!strcmp(k, "schedule_epochs")) opt->schedule_epochs = v;
        else if (!strcmp(k, "noise_multiplier")) opt->noise_multiplier = v;
        else if (!strcmp(k, "noise_min_scale")) opt->noise_min_scale = v;
        else if (!strcmp(k, "parameter_noise_floor")) opt->parameter_noise_floor = v;
        else if (!strcmp(k, "tail_bound")) opt->tail_bound = v;
        else if (!strcmp(k, "lr_decay_patience")) opt->lr_decay_patience = (int)v;
        else if (!strcmp(k, "lr_decay_factor")) opt->lr_decay_factor = v;
        else if (!strcmp(k, "min_learning_rate")) opt->min_learning_rate = v;
        /* Keys read by other stages (sbc_samples) are ignored here. */
    }
    return sbi_train_options_validate(opt);
}

int sbi_train_options_validate(const sbi_train_options *o)
{
    SBI_CHECK(o->batch_size >= 1, SBI_ERR_INPUT, "training.batch_size: must be at least 1 (got %d)", o->batch_size);
    SBI_CHECK(o->learning_rate > 0 && isfinite(o->learning_rate), SBI_ERR_INPUT,
              "training.learning_rate: must be positive (got %g)", o->learning_rate);
    SBI_CHECK(o->max_epochs >= 1, SBI_ERR_INPUT, "training.max_epochs: must be at least 1 (got %d)", o->max_epochs);
    SBI_CHECK(o->min_epochs >= 0, SBI_ERR_INPUT, "training.min_epochs: must be >= 0 (got %d)", o->min_epochs);
    SBI_CHECK(o->patience >= 1, SBI_ERR_INPUT, "training.patience: must be at least 1 (got %d)", o->patience);
    SBI_CHECK(o->min_delta >= 0 && isfinite(o->min_delta), SBI_ERR_INPUT, "training.min_delta: must be >= 0");
    SBI_CHECK(o->clip_norm >= 0 && isfinite(o->clip_norm), SBI_ERR_INPUT, "training.clip_norm: must be >= 0");
    SBI_CHECK(o->weight_decay >= 0 && isfinite(o->weight_decay), SBI_ERR_INPUT,
              "training.weight_decay: must be >= 0");
    SBI_CHECK(o->lr_decay_patience >= 0, SBI_ERR_INPUT, "training.lr_decay_patience: must be >= 0 (0: constant rate)");
    /* -1 is the unset default; the estimator bounds it above. */
    SBI_CHECK(o->time_features >= -1, SBI_ERR_INPUT, "training.time_features: must be >= 0 (got %d)",
              o->time_features);
    SBI_CHECK(o->lr_decay_factor > 0 && o->lr_decay_factor < 1, SBI_ERR_INPUT,
              "training.lr_decay_factor: must be in (0, 1) (got %g)", o->lr_decay_factor);
    SBI_CHECK(o->min_learning_rate >= 0 && isfinite(o->min_learning_rate), SBI_ERR_INPUT,
              "training.min_learning_rate: must be >= 0");
    SBI_CHECK(o->cache_mb >= 1, SBI_ERR_INPUT, "training.cache_mb: must be at least 1 (got %d)", o->cache_mb);
    SBI_CHECK(!strcmp(o->lr_schedule, "plateau") || !strcmp(o->lr_schedule, "cosine") ||
                  !strcmp(o->lr_schedule, "constant"),
              SBI_ERR_INPUT, "training.lr_schedule: must be plateau, cosine or constant (got '%s')", o->lr_schedule);
    SBI_CHECK(o->warmup_fraction >= 0 && o->warmup_fraction < 1 && o->warmup_epochs >= 0 && o->schedule_epochs >= 0,
              SBI_ERR_INPUT, "training.warmup_fraction must be in [0, 1); warmup_epochs, schedule_epochs >= 0");
    SBI_CHECK(o->noise_multiplier >= 0 && o->noise_min_scale >= 0 && o->parameter_noise_floor >= 0 &&
                  isfinite(o->noise_multiplier + o->noise_min_scale + o->parameter_noise_floor),
              SBI_ERR_INPUT, "training.noise_multiplier, noise_min_scale, parameter_noise_floor: must be >= 0");
    SBI_CHECK(o->n_bins >= 0 && o->tail_bound >= 0 && isfinite(o->tail_bound), SBI_ERR_INPUT,
              "training.n_bins and training.tail_bound: must be positive");
    SBI_CHECK(o->embed_dim >= 0 && o->embed_hidden >= 0 && o->embed_layers >= 0 && o->n_transforms >= 0 &&
                  o->hidden >= 0 && o->hidden_layers >= 0,
              SBI_ERR_INPUT, "training: network sizes must be non-negative");
    return 0;
}

cJSON *sbi_train_options_to_json(const sbi_train_options *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "estimator", o->estimator);
    cJSON_AddNumberToObject(j, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(j, "learning_rate", o->learning_rate);
    cJSON_AddNumberToObject(j, "max_epochs", o->max_epochs);
    cJSON_AddNumberToObject(j, "min_epochs", o->min_epochs);
    cJSON_AddNumberToObject(j, "patience", o->patience);
    cJSON_AddNumberToObject(j, "min_delta", o->min_delta);
    cJSON_AddNumberToObject(j, "clip_norm", o->clip_norm);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "cache_mb", o->cache_mb);
    cJSON_AddStringToObject(j, "embedding", o->embedding);
    cJSON_AddStringToObject(j, "lr_schedule", o->lr_schedule);
    cJSON_AddNumberToObject(j, "n_sigmoids", o->n_sigmoids);
    cJSON_AddNumberToObject(j, "bisection_steps", o->bisection_steps);
    cJSON_AddStringToObject(j, "ode_solver", o->ode_solver);
    cJSON_AddNumberToObject(j, "ode_steps", o->ode_steps);
    cJSON_AddNumberToObject(j, "time_features", o->time_features);
    cJSON_AddNumberToObject(j, "warmup_fraction", o->warmup_fraction);
    cJSON_AddNumberToObject(j, "warmup_epochs", o->warmup_epochs);
    cJSON_AddNumberToObject(j, "schedule_epochs", o->schedule_epochs);
    cJSON_AddNumberToObject(j, "noise_multiplier", o->noise_multiplier);
    cJSON_AddNumberToObject(j, "noise_min_scale", o->noise_min_scale);
    cJSON_AddNumberToObject(j, "parameter_noise_floor", o->parameter_noise_floor);
    cJSON_AddNumberToObject(j, "n_bins", o->n_bins);
    cJSON_AddNumberToObject(j, "tail_bound", o->tail_bound);
    cJSON_AddNumberToObject(j, "lr_decay_patience", o->lr_decay_patience);
    cJSON_AddNumberToObject(j, "lr_decay_factor", o->lr_decay_factor);
    cJSON_AddNumberToObject(j, "min_learning_rate", o->min_learning_rate);
    return j;
}

/* ---- the row loader ------------------------------------------------------
 * This rank's shard of a split is rows [row0, row0 + nrows).  It is cut into
 * blocks of BLOCK_ROWS rows; a group is as many blocks as fit in the cache.
 * The cache holds normalised rows (sbi_real) so steps only gather. */

typedef struct loader {
    sbi_corpus corpus;
    int split, D, X;
    int64_t row0, nrows;
    int64_t n_blocks, group_blocks, n_groups, cap_rows;
    sbi_real *xc, *tc;    /* (cap_rows, X), (cap_rows, D): the cache */
    int64_t cached_rows;  /* rows now in the cache */
    int64_t *order;       /* (cap_rows) shuffled positions in the cache */
    int64_t *block_perm;  /* (n_blocks) */
    int64_t loaded_group; /* -1: none; in single-group mode the cache is filled once */
    float *xraw;          /* (BLOCK_ROWS, X) staging */
    double *traw;         /* (BLOCK_ROWS, D) staging */
    const double *x_shift, *x_scale, *t_mean, *t_std;
} loader;

static int loader_init(loader *L, sbi_corpus corpus, int split, sbi_shard shard, int D, int X, int64_t cache_bytes,
                       const double *x_shift, const double *x_scale, const double *t_mean, const double *t_std)
{
    int64_t row_bytes = (int64_t)sizeof(sbi_real) * (X + D) + (int64_t)sizeof(int64_t);
    memset(L, 0, sizeof *L);
    L->corpus = corpus;
    L->split = split;
    L->D = D;
    L->X = X;
    L->row0 = shard.offset;
    L->nrows = shard.count;
    L->n_blocks = (shard.count + BLOCK_ROWS - 1) / BLOCK_ROWS;
    L->group_blocks = cache_bytes / (row_bytes * BLOCK_ROWS);
    if (L->group_blocks < 1) L->group_blocks = 1;
    if (L->group_blocks > L->n_blocks) L->group_blocks = L->n_blocks > 0 ? L->n_blocks : 1;
    L->n_groups = (L->n_blocks + L->group_blocks - 1) / L->group_blocks;
    L->cap_rows = L->group_blocks * BLOCK_ROWS;
    if (L->cap_rows > shard.count) L->cap_rows = shard.count > 0 ? shard.count : 1;
    L->loaded_group = -1;
    L->x_shift = x_shift;
    L->x_scale = x_scale;
    L->t_mean = t_mean;
    L->t_std = t_std;
    SBI_MALLOC(L->xc, (size_t)L->cap_rows * X);
    SBI_MALLOC(L->tc, (size_t)L->cap_rows * D);
    SBI_MALLOC(L->order, L->cap_rows);
    SBI_MALLOC(L->block_perm, L->n_blocks > 0 ? L->n_blocks : 1);
    SBI_MALLOC(L->xraw, (size_t)BLOCK_ROWS * X);
    SBI_MALLOC(L->traw, (size_t)BLOCK_ROWS * D);
    return 0;
}

static void loader_free(loader *L)
{
    free(L->xc);
    free(L->tc);
    free(L->order);
    free(L->block_perm);
    free(L->xraw);
    free(L->traw);
}

/* Read rows [first, first + n) of the shard into the cache at position at. */
static int loader_read(loader *L, int64_t first, int64_t n, int64_t at)
{
    const int D = L->D, X = L->X;
    for (int64_t done = 0; done < n; done += BLOCK_ROWS) {
        int64_t k = n - done < BLOCK_ROWS ? n - done : BLOCK_ROWS;
        SBI_CALL(sbi_corpus_read_rows(L->corpus, L->split, L->row0 + first + done, k, 2, L->traw, L->xraw, NULL));
        for (int64_t i = 0; i < k; ++i) {
            sbi_real *xd = L->xc + (size_t)(at + done + i) * X, *td = L->tc + (size_t)(at + done + i) * D;
            const float *xs = L->xraw + (size_t)i * X;
            const double *ts = L->traw + (size_t)i * D;
            for (int j = 0; j < X; ++j) xd[j] = (sbi_real)(((double)xs[j] - L->x_shift[j]) / L->x_scale[j]);
            for (int j = 0; j < D; ++j) td[j] = (sbi_real)((ts[j] - L->t_mean[j]) / L->t_std[j]);
        }
    }
    return 0;
}

static void shuffle(int64_t *a, int64_t n, sbi_rng *r)
{
    for (int64_t i = n - 1; i > 0; --i) {
        int64_t j = (int64_t)sbi_rng_below(r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Load group g of this epoch and shuffle its rows. */
static int loader_group(loader *L, int64_t g, uint64_t seed, int epoch, int rank)
{
    sbi_rng r;
    if (L->n_groups > 1 || L->loaded_group < 0) {
        int64_t at = 0;
        for (int64_t b = g * L->group_blocks; b < (g + 1) * L->group_blocks && b < L->n_blocks; ++b) {
            int64_t blk = L->block_perm[b], first = blk * BLOCK_ROWS;
            int64_t n = L->nrows - first < BLOCK_ROWS ? L->nrows - first : BLOCK_ROWS;
            SBI_CALL(loader_read(L, first, n, at));
            at += n;
        }
        L->cached_rows = at;
        L->loaded_group = g;
    }
    for (int64_t i = 0; i < L->cached_rows; ++i) L->order[i] = i;
    sbi_rng_init(&r, seed, ((uint64_t)epoch << 24) | (uint64_t)g, SBI_STREAM_SHUFFLE, (uint32_t)rank);
    shuffle(L->order, L->cached_rows, &r);
    return 0;
}

static void loader_epoch(loader *L, uint64_t seed, int epoch, int rank)
{
    sbi_rng r;
    for (int64_t b = 0; b < L->n_blocks; ++b) L->block_perm[b] = b;
    if (L->n_groups > 1) {
        sbi_rng_init(&r, seed, (uint64_t)epoch, SBI_STREAM_SHUFFLE, 0x800000u | (uint32_t)rank);
        shuffle(L->block_perm, L->n_blocks, &r);
    }
}

/* ---- checkpoints and the model file ---------------------------------------- */

/* The training history, one value per epoch, stored under /history in the
 * model and the checkpoint.  The closure diagnostics measure, on validation
 * rows, how well the flow inverts: max |T^-1(T(theta)) - theta|, the largest
 * difference of log q computed through the forward and the inverse pass, and
 * the fraction of latent coordinates at or beyond the spline bound. */
enum { H_EPOCH, H_TRAIN, H_VAL, H_LR, H_WALL, H_CLOSURE, H_LOGDET_CLOSURE, H_BOUND_RATE, N_HIST };
static const char *const history_names[N_HIST] = {
    "history/epoch", "history/train_loss", "history/val_loss", "history/learning_rate", "history/wall_s",
    "history/inverse_closure", "history/logdet_closure", "history/bound_rate"};

typedef struct train_state {
    int epoch;          /* epochs completed */
    int64_t step;
    double best_val;
    int best_epoch, bad_epochs;
    double lr;          /* the current learning rate (reduced on plateaus) */
    uint64_t draw_counter; /* the estimator's own random draws so far (flow matching) */
    int bad_since_decay;
    int n_hist;
    double *hist[N_HIST]; /* (N_HIST, max_epochs): one column per history_names entry */
} train_state;

static int write_real(sbi_h5w w, const char *path, const sbi_real *data, size_t n)
{
    int64_t dims[1] = {(int64_t)n};
#ifdef SBI_REAL_DOUBLE
    SBI_CALL(sbi_h5w_double(w, path, 1, dims, data));
#else
    SBI_CALL(sbi_h5w_float(w, path, 1, dims, data));
#endif
    return 0;
}

static int read_real(sbi_h5r r, const char *path, sbi_real *out, size_t n)
{
    int rank;
    int64_t dims[2] = {0, 0};
#ifdef SBI_REAL_DOUBLE
    double *buf = NULL;
    SBI_CALL(sbi_h5r_double(r, path, &buf, &rank, dims));
#else
    float *buf = NULL;
    SBI_CALL(sbi_h5r_float(r, path, &buf, &rank, dims));
#endif
    if (rank != 1 || (size_t)dims[0] != n) {
        free(buf);
        SBI_RAISE(SBI_ERR_INCOMPATIBLE, "%s: %s has %lld values, this estimator has %zu", sbi_h5r_path(r), path,
                  (long long)dims[0], n);
    }
    memcpy(out, buf, n * sizeof *out);
    free(buf);
    return 0;
}

static int write_history(sbi_h5w w, const train_state *s)
{
    int64_t dims[1] = {s->n_hist};
    if (s->n_hist == 0) return 0;
    for (int k = 0; k < N_HIST; ++k) SBI_CALL(sbi_h5w_double(w, history_names[k], 1, dims, s->hist[k]));
    return 0;
}

static int write_checkpoint(const char *path, const sbi_task *task, const char *options_json, int n_ranks,
                            const train_state *s, const sbi_real *w, const sbi_real *m, const sbi_real *v,
                            const sbi_real *best, size_t n)
{
    sbi_h5w h = NULL;
    SBI_CALL(sbi_h5w_create(path, CKPT_FORMAT, 1, &h));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "training_options", options_json));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "n_ranks", n_ranks));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "epoch", s->epoch));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "step", s->step));
    SBI_CALL(sbi_h5w_attr_double(h, NULL, "best_val_loss", s->best_val));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "best_epoch", s->best_epoch));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "bad_epochs", s->bad_epochs));
    SBI_CALL(sbi_h5w_attr_double(h, NULL, "learning_rate", s->lr));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "bad_since_decay", s->bad_since_decay));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "draw_counter", (int64_t)s->draw_counter));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "real_bytes", (int64_t)sizeof(sbi_real)));
    SBI_CALL(write_real(h, "weights", w, n));
    SBI_CALL(write_real(h, "adam_m", m, n));
    SBI_CALL(write_real(h, "adam_v", v, n));
    SBI_CALL(write_real(h, "best_weights", best, n));
    SBI_CALL(write_history(h, s));
    SBI_CALL(sbi_h5w_commit(&h));
    return 0;
}

/* Rank 0 reads the checkpoint; the caller broadcasts. */
static int read_checkpoint(const char *path, const sbi_task *task, const char *options_json, int n_ranks,
                           train_state *s, sbi_real *w, sbi_real *m, sbi_real *v, sbi_real *best, size_t n,
                           int max_epochs)
{
    sbi_h5r r = NULL;
    char *fp = NULL, *opts = NULL;
    int64_t e, st, be, bad, nr, rb;
    SBI_CALL(sbi_h5r_open(path, CKPT_FORMAT, &r));
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "fingerprint", &fp));
    if (strcmp(fp, task->fingerprint)) {
        free(fp);
        SBI_RAISE(SBI_ERR_INCOMPATIBLE, "%s: checkpoint of a different task (fingerprint differs); delete it to start over",
                  path);
    }
    free(fp);
    SBI_CALL(sbi_h5r_attr_string(r, NULL, "training_options", &opts));
    if (strcmp(opts, options_json)) {
        free(opts);
        SBI_RAISE(SBI_ERR_INCOMPATIBLE, "%s: checkpoint was written with different training options; "
                  "resume with the same options or delete it", path);
    }
    free(opts);
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "real_bytes", &rb));
    SBI_CHECK(rb == (int64_t)sizeof(sbi_real), SBI_ERR_INCOMPATIBLE, "%s: checkpoint precision differs", path);
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "n_ranks", &nr));
    if (nr != n_ranks)
        fprintf(stderr, "warning: %s was written by %lld ranks, resuming on %d: the result will not be bitwise "
                        "identical to an uninterrupted run\n", path, (long long)nr, n_ranks);
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "epoch", &e));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "step", &st));
    SBI_CALL(sbi_h5r_attr_double(r, NULL, "best_val_loss", &s->best_val));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "best_epoch", &be));
    SBI_CALL(sbi_h5r_attr_int64(r, NULL, "bad_epochs", &bad));
    SBI_CALL(sbi_h5r_attr_double(r, NULL, "learning_rate", &s->lr));
    {
        int64_t bsd = 0;
        SBI_CALL(sbi_h5r_attr_int64(r, NULL, "bad_since_decay", &bsd));
        s->bad_since_decay = (int)bsd;
        SBI_CALL(sbi_h5r_attr_int64(r, NULL, "draw_counter", &bsd));
        s->draw_counter = (uint64_t)bsd;
    }
    s->epoch = (int)e;
    s->step = st;
    s->best_epoch = (int)be;
    s->bad_epochs = (int)bad;
    SBI_CALL(read_real(r, "weights", w, n));
    SBI_CALL(read_real(r, "adam_m", m, n));
    SBI_CALL(read_real(r, "adam_v", v, n));
    SBI_CALL(read_real(r, "best_weights", best, n));
    s->n_hist = 0;
    if (sbi_h5r_has(r, "history/epoch")) {
        for (int k = 0; k < N_HIST; ++k) {
            double *buf = NULL;
            int rank;
            int64_t dims[2] = {0, 0};
            SBI_CALL(sbi_h5r_double(r, history_names[k], &buf, &rank, dims));
            if (dims[0] > max_epochs) {
                free(buf);
                SBI_RAISE(SBI_ERR_IO, "%s: history longer than max_epochs", path);
            }
            memcpy(s->hist[k], buf, (size_t)dims[0] * sizeof(double));
            s->n_hist = (int)dims[0];
            free(buf);
        }
    }
    sbi_h5r_close(&r);
    return 0;
}

static int write_model(const char *path, const sbi_task *task, sbi_estimator est, const sbi_real *best,
                       const char *options_json, const char *corpus_path, int n_ranks, const train_state *s,
                       const double *x_shift, const double *x_scale, const double *t_mean, const double *t_std,
                       const double *ood, int64_t n_ood)
{
    sbi_h5w h = NULL;
    size_t n = sbi_estimator_n_weights(est);
    int64_t dX[1] = {task->n_outputs}, dD[1] = {task->n_params}, dW[1] = {(int64_t)n};
    const char **names;
    char *arch;
    float *wf;
    cJSON *aj = sbi_estimator_config_to_json(sbi_estimator_get_config(est));
    char creator[256];

    arch = cJSON_PrintUnformatted(aj);
    cJSON_Delete(aj);
    SBI_CALL(sbi_h5w_create(path, SBI_MODEL_FORMAT, SBI_MODEL_FORMAT_VERSION, &h));
    {
        char *tj = cJSON_PrintUnformatted(task->json);
        SBI_CALL(sbi_h5w_attr_string(h, NULL, "task", tj));
        free(tj);
    }
    snprintf(creator, sizeof creator, "exosbi %s (%s), %d ranks", EXOSBI_VERSION, EXOSBI_GIT_SHA, n_ranks);
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "fingerprint", task->fingerprint));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "estimator", sbi_estimator_get_config(est)->family));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "architecture", arch));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "training_options", options_json));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "corpus", corpus_path));
    SBI_CALL(sbi_h5w_attr_string(h, NULL, "creator", creator));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "n_ranks", n_ranks));
    SBI_CALL(sbi_h5w_attr_int64(h, NULL, "best_epoch", s->best_epoch));
    SBI_CALL(sbi_h5w_attr_double(h, NULL, "best_val_loss", s->best_val));
    free(arch);
    SBI_MALLOC(wf, n);
    for (size_t i = 0; i < n; ++i) wf[i] = (float)best[i];
    SBI_CALL(sbi_h5w_float(h, "weights", 1, dW, wf));
    free(wf);
    SBI_MALLOC(names, task->n_params);
    for (int j = 0; j < task->n_params; ++j) names[j] = task->params[j].name;
    SBI_CALL(sbi_h5w_strings(h, "parameters/names", task->n_params, names));
    free(names);
    SBI_CALL(sbi_h5w_double(h, "normalization/x/shift", 1, dX, x_shift));
    SBI_CALL(sbi_h5w_double(h, "normalization/x/scale", 1, dX, x_scale));
    SBI_CALL(sbi_h5w_double(h, "normalization/theta/mean", 1, dD, t_mean));
    SBI_CALL(sbi_h5w_double(h, "normalization/theta/std", 1, dD, t_std));
    SBI_CALL(write_history(h, s));
    {
        int64_t dn[1] = {n_ood};
        SBI_CALL(sbi_h5w_double(h, "ood/calibration_distances", 1, dn, ood));
        SBI_CALL(sbi_h5w_attr_int64(h, "ood", "split", SBI_SPLIT_VALIDATION));
    }
    SBI_CALL(sbi_h5w_commit(&h));
    return 0;
}

/* ---- the training loop ----------------------------------------------------- */

typedef struct trainer {
    const sbi_comm *c;
    const sbi_task *task;
    const sbi_train_options *opt;
    sbi_corpus corpus;
    sbi_estimator est;
    int D, X, b; /* b: rows per rank per step */
    loader train, val;
    double *x_shift, *x_scale, *t_mean, *t_std;
    sbi_real *m, *v, *best;
    sbi_grad_sum *gs; /* the gradient sum over the ranks */
    sbi_real *xb, *tb, *logq, *dlogq; /* (b, X), (b, D), (b), (b) */
    double *aug_sigma;                /* (X) std of the augmentation noise in normalised units, or NULL */
    int64_t steps_per_epoch;
    char *options_json;
    train_state s;
} trainer;

static int gather_batch(trainer *T, int64_t pos)
{
    loader *L = &T->train;
    for (int i = 0; i < T->b; ++i) {
        int64_t r = L->order[pos + i];
        memcpy(T->xb + (size_t)i * T->X, L->xc + (size_t)r * T->X, (size_t)T->X * sizeof(sbi_real));
        memcpy(T->tb + (size_t)i * T->D, L->tc + (size_t)r * T->D, (size_t)T->D * sizeof(sbi_real));
    }
    return 0;
}

/* The out-of-distribution distances (infer.h) of the first
 * SBI_OOD_MAX_CALIBRATION validation rows, sorted, on every rank: the rows and
 * arithmetic infer's calibration uses, stored so that infer needs no corpus. */
static int ood_distances(trainer *T, double **out, int64_t *n_out)
{
    loader *L = &T->val;
    int64_t n = sbi_corpus_get_desc(T->corpus)->split_rows[SBI_SPLIT_VALIDATION], hi;
    double *dist, *xd;
    int st = 0;
    if (n > SBI_OOD_MAX_CALIBRATION) n = SBI_OOD_MAX_CALIBRATION;
    hi = L->row0 + L->nrows < n ? L->row0 + L->nrows : n;
    SBI_CALLOC(dist, n);
    SBI_MALLOC(xd, T->X);
    for (int64_t r = L->row0; r < hi && !st; r += BLOCK_ROWS) {
        int64_t k = hi - r < BLOCK_ROWS ? hi - r : BLOCK_ROWS;
        st = sbi_corpus_read_rows(L->corpus, SBI_SPLIT_VALIDATION, r, k, 0, NULL, L->xraw, NULL);
        for (int64_t i = 0; i < k && !st; ++i) {
            for (int j = 0; j < T->X; ++j) xd[j] = (double)L->xraw[(size_t)i * T->X + j];
            dist[r + i] = sbi_ood_distance_raw(T->X, T->x_shift, T->x_scale, xd);
        }
    }
    free(xd);
    SBI_AGREE(T->c, st);
    /* One rank holds each row, the others add zeros: the sum is exact. */
    SBI_CALL(sbi_comm_sum_double(T->c, dist, (int)n));
    qsort(dist, (size_t)n, sizeof *dist, sbi_cmp_double);
    *out = dist;
    *n_out = n;
    return 0;
}

/* Mean validation loss over every rank's validation shard.  A family that
 * draws its own noise in forward (fmpe: the time and the base point of each
 * row) gets the same draws at every validation, from the counter
 * VALIDATION_DRAWS + k size + rank for batch k of each rank, kept apart
 * from the training counters, which resume where they were.  Fresh draws
 * each epoch would make the validation loss vary by more than it improves,
 * and the best epoch, the plateau decay and early stopping would follow
 * that noise. */
#define VALIDATION_DRAWS (UINT64_C(1) << 63)

static int validate(trainer *T, double *val_loss)
{
    loader *L = &T->val;
    const int mb = sbi_estimator_get_config(T->est)->max_batch;
    const uint64_t train_draws = sbi_estimator_get_draw_counter(T->est);
    uint64_t batch = 0;
    double sums[2] = {0.0, 0.0};
    int64_t chunks = (L->nrows + L->cap_rows - 1) / L->cap_rows, all_chunks = chunks;
    /* Every rank runs the same number of agreement rounds, however its shard divides. */
    SBI_CALL_MPI(MPI_Allreduce(&chunks, &all_chunks, 1, MPI_INT64_T, MPI_MAX, T->c->comm));
    for (int64_t ch = 0; ch < all_chunks; ++ch) {
        int64_t first = ch * L->cap_rows;
        int64_t n = first >= L->nrows ? 0 : (L->nrows - first < L->cap_rows ? L->nrows - first : L->cap_rows);
        int st = n > 0 ? loader_read(L, first, n, 0) : 0;
        for (int64_t s = 0; s < n && !st; s += mb) {
            int k = (int)(n - s < mb ? n - s : mb);
            /* Batch k of rank r draws from counter k size + r: the same
             * draws at every validation, different ones on every rank. */
            sbi_estimator_set_draw_counter(T->est, VALIDATION_DRAWS + batch++ * (uint64_t)T->c->size +
                                                       (uint64_t)T->c->rank);
            st = sbi_estimator_forward(T->est, L->xc + (size_t)s * T->X, L->tc + (size_t)s * T->D, k, T->logq);
            for (int i = 0; i < k && !st; ++i) sums[0] -= (double)T->logq[i];
            sums[1] += k;
        }
        SBI_AGREE(T->c, st);
    }
    sbi_estimator_set_draw_counter(T->est, train_draws);
    SBI_CALL(sbi_comm_sum_double(T->c, sums, 2));
    SBI_CHECK(sums[1] > 0, SBI_ERR_INPUT, "the validation split is empty: give simulation.splits a validation part");
    *val_loss = sums[0] / sums[1];
    return 0;
}

static int weights_in_sync(trainer *T)
{
    size_t n = sbi_estimator_n_weights(T->est);
    sbi_real *w = sbi_estimator_weights(T->est), *mx;
    int ok = 1;
    SBI_MALLOC(mx, n);
    SBI_CALL_MPI(MPI_Allreduce(w, mx, (int)n, SBI_MPI_REAL, MPI_MAX, T->c->comm));
    ok = memcmp(mx, w, n * sizeof *w) == 0;
    free(mx);
    SBI_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, T->c->comm));
    SBI_CHECK(ok, SBI_ERR_INTERNAL, "weights differ across ranks after step %lld", (long long)T->s.step);
    return 0;
}

/* The block structure the dataset-aware encoders need: one block per dataset
 * with its modality, each column's coordinate mapped to [-1, 1] within its
 * dataset (in log when all are positive; an index ramp without coordinates),
 * and its uncertainty in the normalised units of x. */
static int set_blocks(trainer *T, const sbi_corpus_desc *d, sbi_estimator_config *cfg)
{
    int size[SBI_MAX_BLOCKS], mod[SBI_MAX_BLOCKS], st;
    double *coord = NULL, *sigma = NULL;
    const sbi_task *t = T->task;
    SBI_CHECK(t->n_datasets <= SBI_MAX_BLOCKS, SBI_ERR_INPUT,
              "%s: the %s encoder takes at most %d datasets, the task has %d", t->path, cfg->embedding,
              SBI_MAX_BLOCKS, t->n_datasets);
    if (d->n_outputs <= SBI_MAX_STATIC) {
        SBI_MALLOC(coord, d->n_outputs);
        SBI_MALLOC(sigma, d->n_outputs);
    }
    for (int k = 0; k < t->n_datasets; ++k) {
        const sbi_dataset *ds = &t->datasets[k];
        size[k] = ds->size;
        mod[k] = (int)ds->modality;
        if (!coord) continue;
        {
            int positive = ds->coordinates != NULL;
            double lo = INFINITY, hi = -INFINITY;
            for (int j = 0; positive && j < ds->size; ++j) positive = ds->coordinates[j] > 0;
            for (int j = 0; j < ds->size; ++j) {
                double c = ds->coordinates ? (positive ? log(ds->coordinates[j]) : ds->coordinates[j]) : j;
                coord[ds->offset + j] = c;
                lo = fmin(lo, c);
                hi = fmax(hi, c);
            }
            for (int j = 0; j < ds->size; ++j) {
                int64_t col = ds->offset + j;
                coord[col] = hi > lo ? 2.0 * (coord[col] - lo) / (hi - lo) - 1.0 : 0.0;
                sigma[col] = ds->uncertainty[j] / T->x_scale[col];
            }
        }
    }
    st = sbi_estimator_config_set_blocks(cfg, t->n_datasets, size, mod, coord, sigma);
    free(coord);
    free(sigma);
    return st;
}

static int setup(trainer *T, const char *corpus_path)
{
    const sbi_corpus_desc *d;
    sbi_estimator_config cfg;
    const sbi_train_options *o = T->opt;
    double *med, *iqr, *mean, *std;
    int64_t n_train, n_val, min_rows;
    int64_t cache_bytes = (int64_t)o->cache_mb << 20;
    cJSON *oj;
    int st;

    st = sbi_corpus_open(T->c, corpus_path, &T->corpus);
    SBI_AGREE(T->c, st);
    d = sbi_corpus_get_desc(T->corpus);
    {
        sbi_task *ct = NULL;
        st = sbi_task_from_json(d->task_json, corpus_path, &ct);
        if (!st) {
            char what[SBI_PATH_MAX + 64];
            snprintf(what, sizeof what, "corpus %s was simulated for a different task", corpus_path);
            st = sbi_task_compare(T->task, ct, what);
        }
        sbi_task_destroy(&ct);
        SBI_AGREE(T->c, st);
    }
    T->D = d->n_params;
    T->X = (int)d->n_outputs;
    n_train = d->split_rows[SBI_SPLIT_TRAIN];
    n_val = d->split_rows[SBI_SPLIT_VALIDATION];
    T->b = o->batch_size / T->c->size;
    if (T->b < 1) T->b = 1;
    min_rows = n_train / T->c->size;
    SBI_CHECK(min_rows >= T->b, SBI_ERR_INPUT,
              "%s: the training split has %lld rows, too few for batches of %d on %d ranks", corpus_path,
              (long long)n_train, o->batch_size, T->c->size);
    SBI_CHECK(n_val >= 1, SBI_ERR_INPUT, "%s: the validation split is empty", corpus_path);

    SBI_MALLOC(med, T->X);
    SBI_MALLOC(iqr, T->X);
    SBI_MALLOC(mean, T->X);
    SBI_MALLOC(std, T->X);
    SBI_MALLOC(T->x_shift, T->X);
    SBI_MALLOC(T->x_scale, T->X);
    SBI_MALLOC(T->t_mean, T->D);
    SBI_MALLOC(T->t_std, T->D);
    st = sbi_corpus_read_stats(T->corpus, med, iqr, mean, std, T->t_mean, T->t_std);
    SBI_AGREE(T->c, st);
    sbi_model_x_scaling(T->X, med, iqr, std, T->x_shift, T->x_scale);
    for (int j = 0; j < T->D; ++j)
        if (!(T->t_std[j] > 0) || !isfinite(T->t_std[j])) T->t_std[j] = 1.0;
    free(med);
    free(iqr);
    free(mean);
    free(std);

    /* Observation-noise augmentation: sigma_j = multiplier * uncertainty_j / scale_j in the
     * normalised units the network sees, floored at noise_min_scale times the dataset's
     * median normalised uncertainty (so noise-free points still get some). */
    if (o->noise_multiplier > 0 || o->noise_min_scale > 0) {
        SBI_MALLOC(T->aug_sigma, T->X);
        for (int k = 0; k < d->n_datasets; ++k) {
            int64_t off = 0, m = d->dataset_sizes[k];
            double *tmp;
            for (int q = 0; q < k; ++q) off += d->dataset_sizes[q];
            SBI_MALLOC(tmp, m);
            for (int64_t j = 0; j < m; ++j) tmp[j] = d->uncertainties[k][j] / T->x_scale[off + j];
            for (int64_t a = 1; a < m; ++a)
                for (int64_t b2 = a; b2 > 0 && tmp[b2 - 1] > tmp[b2]; --b2) {
                    double t = tmp[b2];
                    tmp[b2] = tmp[b2 - 1];
                    tmp[b2 - 1] = t;
                }
            {
                double typical = m ? tmp[m / 2] : 0.0;
                for (int64_t j = 0; j < m; ++j) {
                    double sj = o->noise_multiplier * d->uncertainties[k][j] / T->x_scale[off + j];
                    T->aug_sigma[off + j] = sj > o->noise_min_scale * typical ? sj : o->noise_min_scale * typical;
                }
            }
            free(tmp);
        }
    }
    SBI_CALL(sbi_estimator_config_default(&cfg, o->estimator, T->D, T->X));
    if (o->embed_dim) cfg.embed_dim = o->embed_dim;
    if (o->embed_hidden) cfg.embed_hidden = o->embed_hidden;
    if (o->embed_layers) cfg.embed_layers = o->embed_layers;
    if (o->n_transforms) cfg.n_transforms = o->n_transforms;
    if (o->hidden) cfg.hidden = o->hidden;
    if (o->hidden_layers) cfg.hidden_layers = o->hidden_layers;
    if (o->embedding[0]) snprintf(cfg.embedding, sizeof cfg.embedding, "%s", o->embedding);
    if (o->n_bins) cfg.n_bins = o->n_bins;
    if (o->tail_bound > 0) cfg.tail_bound = o->tail_bound;
    if (o->n_sigmoids) cfg.n_sigmoids = o->n_sigmoids;
    if (o->bisection_steps) cfg.bisection_steps = o->bisection_steps;
    if (o->ode_solver[0]) snprintf(cfg.ode_solver, sizeof cfg.ode_solver, "%s", o->ode_solver);
    if (o->ode_steps) cfg.ode_steps = o->ode_steps;
    if (o->time_features >= 0) cfg.time_features = o->time_features;
    if (!strcmp(cfg.embedding, "conv1d_full") || !strcmp(cfg.embedding, "patch") ||
        !strcmp(cfg.embedding, "photometry") || !strcmp(cfg.embedding, "hierarchical"))
        SBI_CALL(set_blocks(T, d, &cfg));
    /* Activations scale with max_batch: a convolutional encoder keeps it at the batch size. */
    if (strcmp(cfg.embedding, "mlp")) cfg.max_batch = T->b > 64 ? T->b : 64;
    cfg.seed = o->seed;
    if (cfg.max_batch < T->b) cfg.max_batch = T->b;
    SBI_CALL(sbi_estimator_create(&cfg, &T->est));

    SBI_CALL(loader_init(&T->train, T->corpus, SBI_SPLIT_TRAIN, sbi_shard_block(n_train, T->c->rank, T->c->size),
                         T->D, T->X, cache_bytes, T->x_shift, T->x_scale, T->t_mean, T->t_std));
    SBI_CALL(loader_init(&T->val, T->corpus, SBI_SPLIT_VALIDATION, sbi_shard_block(n_val, T->c->rank, T->c->size),
                         T->D, T->X, cache_bytes / 8 > 1 ? cache_bytes / 8 : 1, T->x_shift, T->x_scale, T->t_mean,
                         T->t_std));
    {
        size_t n = sbi_estimator_n_weights(T->est);
        SBI_CALLOC(T->m, n);
        SBI_CALLOC(T->v, n);
        SBI_MALLOC(T->best, n);
        memcpy(T->best, sbi_estimator_weights(T->est), n * sizeof(sbi_real));
    }
    SBI_MALLOC(T->xb, (size_t)T->b * T->X);
    SBI_MALLOC(T->tb, (size_t)T->b * T->D);
    SBI_MALLOC(T->logq, cfg.max_batch);
    SBI_MALLOC(T->dlogq, cfg.max_batch);
    for (int k = 0; k < N_HIST; ++k) SBI_CALLOC(T->s.hist[k], o->max_epochs);
    T->s.best_val = INFINITY;
    T->s.lr = o->learning_rate;
    T->s.best_epoch = -1;
    oj = sbi_train_options_to_json(o);
    cJSON_AddItemToObject(oj, "architecture", sbi_estimator_config_to_json(&cfg));
    T->options_json = cJSON_PrintUnformatted(oj);
    cJSON_Delete(oj);
    return 0;
}

static void teardown(trainer *T)
{
    loader_free(&T->train);
    loader_free(&T->val);
    sbi_estimator_destroy(&T->est);
    sbi_corpus_close(&T->corpus);
    free(T->x_shift);
    free(T->x_scale);
    free(T->t_mean);
    free(T->t_std);
    free(T->m);
    free(T->v);
    free(T->best);
    free(T->xb);
    free(T->tb);
    free(T->logq);
    free(T->dlogq);
    free(T->aug_sigma);
    free(T->options_json);
    sbi_grad_sum_free(T->gs);
    for (int k = 0; k < N_HIST; ++k) free(T->s.hist[k]);
}

static int resume_state(trainer *T, const char *ckpt)
{
    size_t n = sbi_estimator_n_weights(T->est);
    int have = 0, st = 0;
    if (T->c->rank == 0) {
        have = sbi_file_exists(ckpt);
        if (have)
            st = read_checkpoint(ckpt, T->task, T->options_json, T->c->size, &T->s, sbi_estimator_weights(T->est),
                                 T->m, T->v, T->best, n, T->opt->max_epochs);
    }
    SBI_AGREE(T->c, st);
    SBI_CALL(sbi_comm_bcast(T->c, &have, sizeof have, 0));
    if (!have) {
        sbi_warn(T->c, "no checkpoint %s: starting from the beginning", ckpt);
        return 0;
    }
    {
        double scal[9] = {T->s.epoch, (double)T->s.step, T->s.best_val, T->s.best_epoch, T->s.bad_epochs,
                          T->s.n_hist, T->s.lr, T->s.bad_since_decay, (double)T->s.draw_counter};
        SBI_CALL(sbi_comm_bcast(T->c, scal, sizeof scal, 0));
        T->s.epoch = (int)scal[0];
        T->s.step = (int64_t)scal[1];
        T->s.best_val = scal[2];
        T->s.best_epoch = (int)scal[3];
        T->s.bad_epochs = (int)scal[4];
        T->s.n_hist = (int)scal[5];
        T->s.lr = scal[6];
        T->s.bad_since_decay = (int)scal[7];
        T->s.draw_counter = (uint64_t)scal[8];
        sbi_estimator_set_draw_counter(T->est, T->s.draw_counter);
    }
    SBI_CALL(sbi_comm_bcast(T->c, sbi_estimator_weights(T->est), n * sizeof(sbi_real), 0));
    SBI_CALL(sbi_comm_bcast(T->c, T->m, n * sizeof(sbi_real), 0));
    SBI_CALL(sbi_comm_bcast(T->c, T->v, n * sizeof(sbi_real), 0));
    SBI_CALL(sbi_comm_bcast(T->c, T->best, n * sizeof(sbi_real), 0));
    {
        for (int k = 0; k < N_HIST; ++k)
            SBI_CALL(sbi_comm_bcast(T->c, T->s.hist[k], (size_t)T->s.n_hist * sizeof(double), 0));
    }
    sbi_log(T->c, "resuming after epoch %d (step %lld, best validation loss %.5f)", T->s.epoch,
            (long long)T->s.step, T->s.best_val);
    return 0;
}

/* The learning rate of a step.  plateau and constant: the state's rate (halved on
 * plateaus by the epoch loop for plateau).  cosine: a linear warm-up from 0, then a
 * half cosine down to min_learning_rate over schedule_epochs (default max_epochs). */
static double lr_at(const trainer *T, int64_t step)
{
    const sbi_train_options *o = T->opt;
    double total, warm, p;
    if (strcmp(o->lr_schedule, "cosine")) return T->s.lr;
    total = (o->schedule_epochs > 0 ? o->schedule_epochs : o->max_epochs) * (double)T->steps_per_epoch;
    warm = o->warmup_epochs > 0 ? o->warmup_epochs * (double)T->steps_per_epoch : o->warmup_fraction * total;
    if (step < warm) return o->learning_rate * (double)(step + 1) / warm;
    p = total > warm ? ((double)step - warm) / (total - warm) : 1.0;
    if (p > 1.0) p = 1.0;
    return o->min_learning_rate + 0.5 * (o->learning_rate - o->min_learning_rate) * (1.0 + cos(M_PI * p));
}

/* Noise on the training batch: observations get N(0, aug_sigma^2) in normalised
 * units, parameter targets N(0, floor^2) in unconstrained units.  Keyed by
 * (seed, step, rank), so a resumed run draws the same noise. */
static void augment_batch(trainer *T)
{
    const sbi_train_options *o = T->opt;
    sbi_rng r;
    if (!T->aug_sigma && o->parameter_noise_floor <= 0) return;
    sbi_rng_init(&r, o->seed, (uint64_t)T->s.step, SBI_STREAM_AUGMENT, (uint32_t)T->c->rank);
    if (T->aug_sigma)
        for (int i = 0; i < T->b; ++i)
            for (int j = 0; j < T->X; ++j)
                T->xb[(size_t)i * T->X + j] += (sbi_real)(T->aug_sigma[j] * sbi_rng_normal(&r));
    if (o->parameter_noise_floor > 0)
        for (int i = 0; i < T->b; ++i)
            for (int j = 0; j < T->D; ++j)
                T->tb[(size_t)i * T->D + j] += (sbi_real)(o->parameter_noise_floor / T->t_std[j] * sbi_rng_normal(&r));
}

/* Closure diagnostics on up to 32 validation rows of every rank (max over ranks):
 * diag[0] = max |T^-1(T(theta)) - theta|, diag[1] = max |log q forward - log q
 * inverse|, diag[2] = fraction of latent coordinates with |z| >= the spline bound.
 * A family without an explicit inverse reports NaN. */
static int closure_diagnostics(trainer *T, double diag[3])
{
    loader *L = &T->val;
    const sbi_estimator_config *cfg = sbi_estimator_get_config(T->est);
    int k = (int)(L->nrows < 32 ? L->nrows : 32), st = 0;
    double loc[3] = {0.0, 0.0, 0.0}, cnt[2] = {0.0, 0.0};
    sbi_real z[64], th[64], lq1, lq2, ld;
    if (T->D > 64) k = 0;
    if (k > 0) st = loader_read(L, 0, k, 0);
    for (int i = 0; i < k && !st; ++i) {
        const sbi_real *x = L->xc + (size_t)i * T->X, *t = L->tc + (size_t)i * T->D;
        double lz = 0.0;
        st = sbi_estimator_transform(T->est, x, t, 1, z, &ld);
        if (!st) st = sbi_estimator_inverse(T->est, x, z, 1, th, &lq2);
        if (st) break;
        for (int j = 0; j < T->D; ++j) {
            loc[0] = fmax(loc[0], fabs((double)th[j] - (double)t[j]));
            lz += -0.5 * (double)z[j] * (double)z[j] - 0.9189385332046727;
            cnt[0] += fabs((double)z[j]) >= cfg->tail_bound;
        }
        lq1 = (sbi_real)(lz + (double)ld);
        loc[1] = fmax(loc[1], fabs((double)lq1 - (double)lq2));
        cnt[1] += T->D;
    }
    if (st) {
        /* The family has no explicit inverse (flow matching): no closure to report. */
        sbi_error_clear();
        loc[0] = loc[1] = INFINITY;
    }
    SBI_CALL(sbi_comm_max_double(T->c, loc, 2));
    SBI_CALL(sbi_comm_sum_double(T->c, cnt, 2));
    diag[0] = isinf(loc[0]) ? NAN : loc[0];
    diag[1] = isinf(loc[1]) ? NAN : loc[1];
    diag[2] = cnt[1] > 0 ? cnt[0] / cnt[1] : NAN;
    return 0;
}

static int run_epochs(trainer *T, const char *ckpt, sbi_train_summary *sum)
{
    const sbi_train_options *o = T->opt;
    size_t n = sbi_estimator_n_weights(T->est);
    sbi_real *w = sbi_estimator_weights(T->est), *g = sbi_estimator_grads(T->est);
    int64_t steps_per_epoch, rows_done = 0;
    double t0 = sbi_wtime(), t_steps = 0.0;
    int epochs_this_run = 0;

    /* Every rank runs the same number of steps: the smallest shard bounds it,
     * less one batch per group for the rows a group boundary leaves over. */
    {
        int64_t mine = T->train.nrows / T->b - (T->train.n_groups > 1 ? T->train.n_groups : 0);
        int64_t all = mine;
        SBI_CALL_MPI(MPI_Allreduce(&mine, &all, 1, MPI_INT64_T, MPI_MIN, T->c->comm));
        steps_per_epoch = all;
        T->steps_per_epoch = all;
        SBI_CHECK(steps_per_epoch >= 1, SBI_ERR_INPUT, "too few training rows per rank for one step of %d rows",
                  T->b);
    }
    for (int i = 0; i < T->b; ++i) T->dlogq[i] = (sbi_real)(-1.0 / ((double)T->b * T->c->size));

    while (T->s.epoch < o->max_epochs) {
        int epoch = T->s.epoch;
        double loss_sum = 0.0, val_loss = 0.0, t_ep = sbi_wtime(), lr_epoch = lr_at(T, T->s.step), diag[3] = {0, 0, 0};
        int64_t step_in_epoch = 0, pos = 0, grp = 0;
        sbi_progress prog;
        int st;

        loader_epoch(&T->train, o->seed, epoch, T->c->rank);
        st = loader_group(&T->train, 0, o->seed, epoch, T->c->rank);
        SBI_AGREE(T->c, st);
        sbi_progress_start(&prog, T->c, "train", steps_per_epoch);
        while (step_in_epoch < steps_per_epoch) {
            double ts = sbi_wtime(), local = 0.0, red[2], loss_buf[1];
            /* Ranks change cache groups at different steps, so a failure here is not
             * agreed on the spot: it rides on the per-step loss reduction below. */
            st = 0;
            if (pos + T->b > T->train.cached_rows) {
                ++grp;
                pos = 0;
                st = loader_group(&T->train, grp, o->seed, epoch, T->c->rank);
            }
            sbi_estimator_zero_grad(T->est);
            if (!st) {
                gather_batch(T, pos);
                augment_batch(T);
                pos += T->b;
                st = sbi_estimator_forward(T->est, T->xb, T->tb, T->b, T->logq);
                if (!st) st = sbi_estimator_backward(T->est, T->dlogq, T->b);
                for (int i = 0; i < T->b; ++i) local -= (double)T->logq[i];
            }
            SBI_CALL(sbi_grad_sum_run(T->gs, g));
            red[0] = local;
            red[1] = st ? 1.0 : 0.0;
            SBI_CALL(sbi_comm_sum_double(T->c, red, 2));
            if (red[1] > 0) SBI_AGREE(T->c, st);
            loss_buf[0] = red[0];
            SBI_CHECK(isfinite(loss_buf[0]), SBI_ERR_INTERNAL,
                      "training diverged: non-finite loss at epoch %d, step %lld; lower the learning rate "
                      "(now %g) or check the corpus for extreme values", epoch + 1, (long long)T->s.step,
                      T->s.lr);
            loss_sum += loss_buf[0];
            if (o->clip_norm > 0) sbi_clip_grad_norm(g, n, o->clip_norm);
            {
                double lr = lr_at(T, T->s.step);
                T->s.step += 1;
                sbi_adamw_step(w, g, T->m, T->v, n, lr, 0.9, 0.999, 1e-8, o->weight_decay, T->s.step);
            }
            if (o->verify_sync) SBI_CALL(weights_in_sync(T));
            ++step_in_epoch;
            rows_done += (int64_t)T->b * T->c->size;
            t_steps += sbi_wtime() - ts;
            sbi_progress_update(&prog, step_in_epoch);
        }
        sbi_progress_clear(&prog);
        SBI_CALL(validate(T, &val_loss));
        SBI_CALL(closure_diagnostics(T, diag));
        {
            train_state *s = &T->s;
            double train_loss = loss_sum / ((double)steps_per_epoch * T->b * T->c->size);
            int improved = val_loss < s->best_val - o->min_delta;
            if (val_loss < s->best_val) {
                memcpy(T->best, w, n * sizeof *w);
                s->best_epoch = epoch;
                s->best_val = val_loss;
            }
            s->bad_epochs = improved ? 0 : s->bad_epochs + 1;
            s->bad_since_decay = improved ? 0 : s->bad_since_decay + 1;
            s->hist[H_EPOCH][s->n_hist] = epoch + 1;
            s->hist[H_TRAIN][s->n_hist] = train_loss;
            s->hist[H_VAL][s->n_hist] = val_loss;
            s->hist[H_LR][s->n_hist] = lr_epoch;
            s->hist[H_WALL][s->n_hist] = sbi_wtime() - t_ep;
            s->hist[H_CLOSURE][s->n_hist] = diag[0];
            s->hist[H_LOGDET_CLOSURE][s->n_hist] = diag[1];
            s->hist[H_BOUND_RATE][s->n_hist] = diag[2];
            s->n_hist++;
            s->epoch = epoch + 1;
            sbi_log(T->c, "epoch %3d  train %.5f  validation %.5f%s  lr %.3g  (%.1fs)", epoch + 1, train_loss,
                    val_loss, improved ? "  *" : "   ", lr_epoch, sbi_wtime() - t_ep);
            sbi_log_verbose(T->c, "           closure %.3g  log-det closure %.3g  at the spline bound %.4f", diag[0],
                            diag[1], diag[2]);
            /* Reduce the step on a plateau: halving it lets Adam settle into the minimum it circles. */
            if (!strcmp(o->lr_schedule, "plateau") && o->lr_decay_patience > 0 && s->bad_since_decay >= o->lr_decay_patience &&
                s->lr * o->lr_decay_factor >= o->min_learning_rate) {
                s->lr *= o->lr_decay_factor;
                s->bad_since_decay = 0;
            }
        }
        st = 0;
        T->s.draw_counter = sbi_estimator_get_draw_counter(T->est);
        if (T->c->rank == 0)
            st = write_checkpoint(ckpt, T->task, T->options_json, T->c->size, &T->s, w, T->m, T->v, T->best, n);
        SBI_AGREE(T->c, st);
        ++epochs_this_run;
        if (T->s.epoch >= o->min_epochs && T->s.bad_epochs >= o->patience) {
            sbi_log(T->c, "early stop: no improvement for %d epochs", o->patience);
            break;
        }
        if (o->stop_after_epochs > 0 && epochs_this_run >= o->stop_after_epochs) {
            sum->epochs = -1;
            return 0;
        }
        if (getenv("EXOSBI_TEST_KILL_AFTER_EPOCHS") && T->c->rank == 0 &&
            epochs_this_run >= atoi(getenv("EXOSBI_TEST_KILL_AFTER_EPOCHS")))
            raise(SIGKILL);
    }
    sum->epochs = T->s.epoch;
    sum->best_epoch = T->s.best_epoch + 1;
    sum->best_val_loss = T->s.best_val;
    sum->steps = T->s.step;
    sum->wall_s = sbi_wtime() - t0;
    sum->train_samples_per_s = t_steps > 0 ? (double)rows_done / t_steps : 0.0;
    return 0;
}

int sbi_train_run(const sbi_comm *c, const sbi_task *task, const char *corpus_path, const sbi_train_options *opt,
                  const char *model_path, sbi_train_summary *summary)
{
    trainer T;
    char ckpt[SBI_PATH_MAX + 16];
    double *ood = NULL;
    int64_t n_ood = 0;
    int st;

    memset(&T, 0, sizeof T);
    memset(summary, 0, sizeof *summary);
    T.c = c;
    T.task = task;
    T.opt = opt;
    SBI_CALL(sbi_train_options_validate(opt));
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model_path);
    SBI_CALL(setup(&T, corpus_path));
    SBI_CALL(sbi_grad_sum_create(c, sbi_estimator_n_weights(T.est), &T.gs));
    sbi_log(c, "training %s on %lld rows (%d ranks x %d rows per step), %zu weights", opt->estimator,
            (long long)sbi_corpus_get_desc(T.corpus)->split_rows[SBI_SPLIT_TRAIN], c->size, T.b,
            sbi_estimator_n_weights(T.est));
    if (T.train.n_groups > 1)
        sbi_log(c, "streaming: each rank's %lld training rows are read in %lld groups of up to %lld rows "
                   "(--cache-mb %d)", (long long)T.train.nrows, (long long)T.train.n_groups,
                (long long)T.train.cap_rows, opt->cache_mb);
    if (opt->resume) SBI_CALL(resume_state(&T, ckpt));
    SBI_CALL(run_epochs(&T, ckpt, summary));
    if (summary->epochs < 0) {
        teardown(&T);
        return 0;
    }
    SBI_CALL(ood_distances(&T, &ood, &n_ood));
    st = 0;
    if (c->rank == 0) {
        st = write_model(model_path, task, T.est, T.best, T.options_json, corpus_path, c->size, &T.s, T.x_shift,
                         T.x_scale, T.t_mean, T.t_std, ood, n_ood);
        if (!st) remove(ckpt);
    }
    free(ood);
    SBI_AGREE(c, st);
    sbi_log(c, "wrote %s (best validation loss %.5f at epoch %d)", model_path, T.s.best_val, T.s.best_epoch + 1);
    teardown(&T);
    return 0;
}
