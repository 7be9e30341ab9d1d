/* The corpus-writing stage: simulate, resume, shards, merge.
 *
 * sbi_simulate_run walks the file's simulation indices in batches of
 * task->batch_size, taken a few consecutive batches at a time (a write unit,
 * sized as next_group explains).  In every unit each rank owns the contiguous
 * block sbi_shard_block(unit_len, rank, size), simulates it, and writes the
 * rows of each split with one collective hyperslab write; the progress
 * attributes (batches done) are then flushed, so a killed run resumes at the
 * first unfinished batch.  Rows
 * depend on their simulation index alone (see simulator.c), so the file is
 * bitwise the same for any number of ranks, resumed or not, and a merge of
 * shards equals the corpus written in one go.
 *
 * Errors raised on one rank (a forward model failing, say) are agreed with
 * SBI_AGREE before the next collective call, so no rank is left waiting.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "simulate/simulate_impl.h"

/* ---- descriptors ------------------------------------------------------------ */

int sbi_corpus_desc_from_task(const sbi_task *task, sbi_corpus_desc *desc)
{
    memset(desc, 0, sizeof *desc);
    SBI_CALLOC(desc->param_names, task->n_params);
    SBI_CALLOC(desc->dataset_names, task->n_datasets);
    SBI_CALLOC(desc->dataset_sizes, task->n_datasets);
    SBI_CALLOC(desc->coordinates, task->n_datasets);
    SBI_CALLOC(desc->uncertainties, task->n_datasets);
    desc->n_params = task->n_params;
    for (int i = 0; i < task->n_params; ++i) desc->param_names[i] = (char *)task->params[i].name;
    desc->n_datasets = task->n_datasets;
    for (int k = 0; k < task->n_datasets; ++k) {
        desc->dataset_names[k] = (char *)task->datasets[k].name;
        desc->dataset_sizes[k] = task->datasets[k].size;
        desc->coordinates[k] = task->datasets[k].coordinates;
        desc->uncertainties[k] = task->datasets[k].uncertainty;
    }
    desc->n_outputs = task->n_outputs;
    desc->n_simulations = task->n_simulations;
    memcpy(desc->split_rows, task->split_counts, sizeof desc->split_rows);
    desc->batch_size = task->batch_size;
    desc->seed = task->seed;
    desc->task_json = task->json ? cJSON_PrintUnformatted(task->json) : strdup("{}");
    SBI_CHECK(desc->task_json, SBI_ERR_INTERNAL, "out of memory printing the task");
    snprintf(desc->fingerprint, sizeof desc->fingerprint, "%s", task->fingerprint);
    desc->shard_index = desc->shard_count = 0;
    desc->index_begin = 0;
    desc->index_end = task->n_simulations;
    return 0;
}

void sbi_corpus_desc_free(sbi_corpus_desc *desc)
{
    free(desc->param_names);
    free(desc->dataset_names);
    free(desc->dataset_sizes);
    free(desc->coordinates);
    free(desc->uncertainties);
    free(desc->task_json);
    memset(desc, 0, sizeof *desc);
}

/* ---- simulate ------------------------------------------------------------- */

/* The rank's rows of one batch, simulated, then grouped by split (each group
 * in index order). */
typedef struct run_buffers {
    int64_t cap;          /* rows the buffers hold */
    double *theta;        /* (cap, P) physical, block order */
    double *x;            /* (cap, O) block order */
    double *t[3];         /* (cap, P) physical, cube, unconstrained; grouped by split */
    float *xf;            /* (cap, O) grouped by split */
    int64_t *index;       /* (cap) grouped by split */
} run_buffers;

static void buffers_free(run_buffers *b)
{
    free(b->theta);
    free(b->x);
    for (int k = 0; k < 3; ++k) free(b->t[k]);
    free(b->xf);
    free(b->index);
    memset(b, 0, sizeof *b);
}

static int buffers_alloc(run_buffers *b, int64_t cap, int P, int64_t O)
{
    memset(b, 0, sizeof *b);
    if (cap < 1) cap = 1;
    b->cap = cap;
    SBI_MALLOC(b->theta, cap * P);
    SBI_MALLOC(b->x, cap * O);
    for (int k = 0; k < 3; ++k) SBI_MALLOC(b->t[k], cap * P);
    SBI_MALLOC(b->xf, cap * O);
    SBI_MALLOC(b->index, cap);
    return 0;
}

/* Grow the buffers to hold `rows` rows (they never shrink). */
static int buffers_reserve(run_buffers *b, int64_t rows, int P, int64_t O)
{
    if (rows <= b->cap) return 0;
    buffers_free(b);
    SBI_CALL(buffers_alloc(b, rows, P, O));
    return 0;
}

/* Write units.  Rows are written and progress is flushed once per unit of
 * consecutive batches, never per batch: a flush syncs the file to the disk,
 * and one per small batch would cost more than the writes themselves.  The
 * unit starts at one batch and is resized after each one so that it takes
 * about UNIT_SECONDS (the most work a kill can lose) and holds at most
 * UNIT_MAX_BYTES of rows (the buffers' size).  The size only depends on
 * values every rank shares (the slowest rank's time), so all ranks agree on
 * it, and it never changes what is written: each row depends on its index. */
#define UNIT_SECONDS 2.0
#define UNIT_MAX_BYTES ((int64_t)256 << 20)

static int64_t next_group(int64_t group, int64_t batches, double seconds, int64_t batch_bytes)
{
    int64_t most = UNIT_MAX_BYTES / (batch_bytes > 0 ? batch_bytes : 1), want;
    double per_batch = seconds / (double)(batches > 0 ? batches : 1);
    if (most < 1) most = 1;
    want = per_batch > 0 ? (int64_t)(UNIT_SECONDS / per_batch) : most;
    /* Grow by at most 4x at a time, so one fast unit cannot overshoot. */
    if (want > 4 * group) want = 4 * group;
    if (want > most) want = most;
    return want < 1 ? 1 : want;
}

/* Simulate indices [i0, i0 + n) and group them by split: on return, split s
 * holds counts[s] rows starting at row first[s] of the buffers. */
static int simulate_block(const sbi_task *task, sbi_forward fw, sbi_splits splits, run_buffers *b, int64_t i0,
                          int64_t n, int64_t counts[3], int64_t first[3], int64_t *redrawn)
{
    const int P = task->n_params;
    const int64_t O = task->n_outputs;
    int64_t pos[3];
    SBI_CALL(sbi_simulate_rows(task, fw, i0, n, b->theta, b->x, redrawn));
    sbi_splits_count(splits, i0, i0 + n, counts);
    first[0] = 0;
    first[1] = counts[0];
    first[2] = counts[0] + counts[1];
    memcpy(pos, first, sizeof pos);
    for (int64_t r = 0; r < n; ++r) {
        int s = sbi_splits_of(splits, i0 + r);
        int64_t q = pos[s]++;
        memcpy(b->t[0] + q * P, b->theta + r * P, (size_t)P * sizeof(double));
        for (int64_t j = 0; j < O; ++j) b->xf[q * O + j] = (float)b->x[r * O + j];
        b->index[q] = i0 + r;
    }
    sbi_space_physical_to_cube(task, n, b->t[0], b->t[1]);
    sbi_space_physical_to_unconstrained(task, n, b->t[0], b->t[2]);
    return 0;
}

/* The kill switch of the resume tests: EXOSBI_TEST_KILL_AFTER_BATCHES=N makes
 * every rank SIGKILL itself once N batches of this run are on disk. */
static int64_t kill_after_batches(void)
{
    const char *env = getenv("EXOSBI_TEST_KILL_AFTER_BATCHES");
    return env && atoll(env) > 0 ? atoll(env) : 0;
}

typedef struct run_state {
    sbi_corpus corpus;
    sbi_splits splits;
    sbi_forward fw;
    run_buffers buf;
    sbi_corpus_desc desc;
    int have_desc;
} run_state;

/* Check what is on disk against the options: 1 in *done when a complete
 * corpus already answers a --resume. */
static int check_outputs(const sbi_simulate_options *opt, const char *out_path, const char *partial, int *done)
{
    *done = 0;
    if (opt->resume) {
        if (!sbi_file_exists(partial) && sbi_file_exists(out_path)) *done = 1;
        return 0;
    }
    SBI_CHECK(!sbi_file_exists(partial), SBI_ERR_INPUT,
              "%s exists (an interrupted run?): continue it with --resume, or delete it to start over", partial);
    SBI_CHECK(opt->force || !sbi_file_exists(out_path), SBI_ERR_INPUT,
              "%s exists: use --force to overwrite it (or --resume to accept it as it is)", out_path);
    return 0;
}

/* A --resume of a corpus that is already complete: check it is this task's. */
static int already_complete(const sbi_comm *c, const sbi_task *task, const char *out_path, int64_t begin,
                            int64_t end, sbi_simulate_summary *summary)
{
    sbi_corpus k;
    const sbi_corpus_desc *d;
    int st = 0;
    SBI_CALL(sbi_corpus_open(c, out_path, &k));
    d = sbi_corpus_get_desc(k);
    if (strcmp(d->fingerprint, task->fingerprint) != 0)
        st = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                        "%s was written for a different task (fingerprint %.12s..., this task has %.12s...)", out_path,
                        d->fingerprint, task->fingerprint);
    else if (d->n_simulations != task->n_simulations || d->index_begin != begin || d->index_end != end)
        st = sbi__raise(SBI_ERR_INCOMPATIBLE, __FILE__, __LINE__, __func__,
                        "%s holds simulations [%lld, %lld) of %lld, this run asks for [%lld, %lld) of %lld", out_path,
                        (long long)d->index_begin, (long long)d->index_end, (long long)d->n_simulations,
                        (long long)begin, (long long)end, (long long)task->n_simulations);
    if (!st) {
        summary->n_simulations = d->index_end - d->index_begin;
        summary->invalid_redrawn = sbi_corpus_invalid_redrawn(k);
    }
    {
        int e = sbi_corpus_close(&k);
        if (!st) st = e;
    }
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    sbi_log(c, "%s is already complete; nothing to resume", out_path);
    return 0;
}

static int run_body(const sbi_comm *c, const sbi_task *task, const sbi_simulate_options *opt, const char *out_path,
                    sbi_simulate_summary *summary, run_state *S)
{
    const int P = task->n_params;
    const int64_t O = task->n_outputs, n = task->n_simulations, B = task->batch_size;
    const int64_t kill_after = kill_after_batches();
    const int64_t row_bytes = 3 * P * (int64_t)sizeof(double) + O * (int64_t)sizeof(float) + (int64_t)sizeof(int64_t);
    char partial[4200];
    int64_t begin = 0, end = n, batches_done = 0, n_batches, invalid = 0, simulated = 0;
    int done = 0;
    sbi_progress prog;
    double t0 = sbi_wtime(), write_s;
    int64_t bytes;

    snprintf(partial, sizeof partial, "%s.partial", out_path);
    SBI_CHECK(opt->n_simulations == 0 || opt->n_simulations == n, SBI_ERR_INPUT,
              "the task was loaded for %lld simulations but %lld were asked for (sbi_task_set_n_simulations first)",
              (long long)n, (long long)opt->n_simulations);
    SBI_CHECK(B > 0, SBI_ERR_INPUT, "simulation.batch_size must be positive");
    if (opt->shard_count > 0) {
        SBI_CHECK(opt->shard_index >= 0 && opt->shard_index < opt->shard_count, SBI_ERR_INPUT,
                  "--shard %d/%d: the shard index must be in [0, %d)", opt->shard_index, opt->shard_count,
                  opt->shard_count);
        SBI_CHECK(opt->shard_count <= n, SBI_ERR_INPUT, "--shard %d/%d: more shards than the %lld simulations",
                  opt->shard_index, opt->shard_count, (long long)n);
        begin = (int64_t)opt->shard_index * n / opt->shard_count;
        end = ((int64_t)opt->shard_index + 1) * n / opt->shard_count;
    }
    memset(summary, 0, sizeof *summary);
    snprintf(summary->fingerprint, sizeof summary->fingerprint, "%s", task->fingerprint);

    SBI_AGREE(c, check_outputs(opt, out_path, partial, &done));
    if (done) {
        SBI_CALL(already_complete(c, task, out_path, begin, end, summary));
        summary->wall_s = sbi_wtime() - t0;
        return 0;
    }

    /* Local set-up: any failure is agreed before the file is created. */
    {
        int st = sbi_corpus_desc_from_task(task, &S->desc);
        S->have_desc = !st;
        if (!st) st = sbi_splits_create(task, &S->splits);
        if (!st) st = sbi_forward_create_on(task, c, &S->fw);
        if (!st) st = buffers_alloc(&S->buf, (B + c->size - 1) / c->size, P, O);
        SBI_AGREE(c, st);
    }
    S->desc.shard_index = opt->shard_count > 0 ? opt->shard_index : 0;
    S->desc.shard_count = opt->shard_count > 0 ? opt->shard_count : 0;
    S->desc.index_begin = begin;
    S->desc.index_end = end;
    sbi_splits_count(S->splits, begin, end, S->desc.split_rows);

    if (opt->resume && sbi_file_exists(partial)) {
        SBI_CALL(sbi_corpus_resume(c, out_path, &S->desc, &S->corpus, &batches_done));
        invalid = sbi_corpus_invalid_redrawn(S->corpus);
        sbi_log(c, "resuming %s at batch %lld", partial, (long long)batches_done);
    } else {
        if (opt->resume) sbi_log(c, "no %s to resume; starting from the beginning", partial);
        SBI_CALL(sbi_corpus_create(c, out_path, &S->desc, &S->corpus));
    }

    n_batches = (end - begin + B - 1) / B;
    sbi_progress_start(&prog, c, opt->shard_count > 0 ? "simulate (shard)" : "simulate", end - begin);
    for (int64_t b = batches_done, group = 1, b_end; b < n_batches; b = b_end) {
        int64_t lo, hi, counts[3], first[3], redrawn = 0, row0[3], i0;
        double t_unit = sbi_wtime();
        sbi_shard blk;
        b_end = b + group < n_batches ? b + group : n_batches;
        if (kill_after > 0 && b_end > batches_done + kill_after && b < batches_done + kill_after)
            b_end = batches_done + kill_after;
        lo = begin + b * B;
        hi = begin + b_end * B < end ? begin + b_end * B : end;
        blk = sbi_shard_block(hi - lo, c->rank, c->size);
        i0 = lo + blk.offset;
        SBI_AGREE(c, buffers_reserve(&S->buf, blk.count, P, O));
        SBI_AGREE(c, simulate_block(task, S->fw, S->splits, &S->buf, i0, blk.count, counts, first, &redrawn));
        sbi_splits_count(S->splits, begin, i0, row0);
        for (int s = 0; s < 3; ++s) {
            const int64_t q = first[s];
            SBI_CALL(sbi_corpus_write_rows(S->corpus, s, row0[s], counts[s], S->buf.t[0] + q * P,
                                           S->buf.t[1] + q * P, S->buf.t[2] + q * P, S->buf.xf + q * O,
                                           S->buf.index + q));
        }
        SBI_CALL(sbi_comm_sum_int64(c, &redrawn, 1));
        invalid += redrawn;
        SBI_CALL(sbi_corpus_mark_progress(S->corpus, b_end, invalid));
        simulated += hi - lo;
        if (kill_after > 0 && b_end - batches_done >= kill_after) raise(SIGKILL);
        sbi_progress_update(&prog, hi - begin);
        t_unit = sbi_wtime() - t_unit;
        SBI_CALL(sbi_comm_max_double(c, &t_unit, 1));
        group = next_group(group, b_end - b, t_unit, B * row_bytes);
    }
    sbi_progress_end(&prog);

    /* A shard has no statistics: the merge computes them over the whole training split. */
    if (opt->shard_count == 0) SBI_CALL(sbi__simulate_write_stats(c, S->corpus));

    sbi_corpus_io_stats(S->corpus, &write_s, &bytes);
    SBI_CALL(sbi_corpus_commit(&S->corpus));
    SBI_CALL(sbi_comm_max_double(c, &write_s, 1));
    SBI_CALL(sbi_comm_sum_int64(c, &bytes, 1));

    summary->n_simulations = end - begin;
    summary->wall_s = sbi_wtime() - t0;
    summary->simulations_per_s = summary->wall_s > 0 ? (double)simulated / summary->wall_s : 0;
    summary->write_s = write_s;
    summary->write_mb_per_s = write_s > 0 ? (double)bytes / write_s / 1e6 : 0;
    summary->invalid_redrawn = invalid;
    sbi_log(c, "wrote %s: %lld simulations%s in %.2f s (%.4g simulations/s; writes %.1f MB/s, %.1f%% of the time)",
            out_path, (long long)(end - begin), opt->shard_count > 0 ? " (one shard)" : "", summary->wall_s,
            summary->simulations_per_s, summary->write_mb_per_s,
            summary->wall_s > 0 ? 100.0 * write_s / summary->wall_s : 0.0);
    if (invalid) sbi_log(c, "%lld invalid simulations were redrawn", (long long)invalid);
    return 0;
}

int sbi_simulate_run(const sbi_comm *c, const sbi_task *task, const sbi_simulate_options *opt, const char *out_path,
                     sbi_simulate_summary *summary)
{
    run_state S;
    int st;
    memset(&S, 0, sizeof S);
    st = run_body(c, task, opt, out_path, summary, &S);
    /* Every failure above was agreed, so all ranks close the file together;
     * an unfinished writer stays PATH.partial for --resume. */
    if (S.corpus) sbi_corpus_close(&S.corpus);
    buffers_free(&S.buf);
    sbi_forward_destroy(&S.fw);
    sbi_splits_destroy(&S.splits);
    if (S.have_desc) sbi_corpus_desc_free(&S.desc);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}

/* ---- merge ---------------------------------------------------------------- */

/* What the merge needs to know of each shard. */
typedef struct shard_info {
    const char *path;
    char fingerprint[65];
    int64_t n_simulations, begin, end, rows[3], invalid;
    int index, count, batch_size;
    uint64_t seed;
} shard_info;

static int cmp_shard(const void *a, const void *b)
{
    const shard_info *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int inspect_shard(const sbi_comm *c, const char *path, shard_info *s)
{
    sbi_corpus k;
    const sbi_corpus_desc *d;
    SBI_CALL(sbi_corpus_open(c, path, &k));
    d = sbi_corpus_get_desc(k);
    s->path = path;
    snprintf(s->fingerprint, sizeof s->fingerprint, "%s", d->fingerprint);
    s->n_simulations = d->n_simulations;
    s->begin = d->index_begin;
    s->end = d->index_end;
    memcpy(s->rows, d->split_rows, sizeof s->rows);
    s->invalid = sbi_corpus_invalid_redrawn(k);
    s->index = d->shard_index;
    s->count = d->shard_count;
    s->batch_size = d->batch_size;
    s->seed = d->seed;
    SBI_CALL(sbi_corpus_close(&k));
    return 0;
}

/* The shards must be the K pieces of one corpus: same task and size, each
 * index once, covering [0, n) without gaps or overlaps. */
static int check_shards(shard_info *s, int n)
{
    for (int i = 0; i < n; ++i) {
        SBI_CHECK(s[i].count > 0, SBI_ERR_INPUT, "%s is a whole corpus, not a shard (written without --shard)",
                  s[i].path);
        SBI_CHECK(!strcmp(s[i].fingerprint, s[0].fingerprint), SBI_ERR_INCOMPATIBLE,
                  "%s and %s were written for different tasks (fingerprints %.12s... and %.12s...)", s[0].path,
                  s[i].path, s[0].fingerprint, s[i].fingerprint);
        SBI_CHECK(s[i].n_simulations == s[0].n_simulations && s[i].count == s[0].count &&
                      s[i].batch_size == s[0].batch_size && s[i].seed == s[0].seed,
                  SBI_ERR_INCOMPATIBLE,
                  "%s and %s are shards of different corpora (%lld simulations in %d shards, seed %llu, vs %lld in "
                  "%d shards, seed %llu)",
                  s[0].path, s[i].path, (long long)s[0].n_simulations, s[0].count, (unsigned long long)s[0].seed,
                  (long long)s[i].n_simulations, s[i].count, (unsigned long long)s[i].seed);
    }
    qsort(s, (size_t)n, sizeof *s, cmp_shard);
    for (int i = 1; i < n; ++i)
        SBI_CHECK(s[i].index != s[i - 1].index, SBI_ERR_INPUT, "%s and %s are the same shard (%d/%d)",
                  s[i - 1].path, s[i].path, s[i].index, s[i].count);
    {
        int K = s[0].count;
        for (int i = 0, want = 0; want < K; ++want) {
            if (i < n && s[i].index == want) {
                ++i;
                continue;
            }
            SBI_RAISE(SBI_ERR_INPUT, "shard %d/%d (simulations [%lld, %lld)) is missing among the %d files given",
                      want, K, (long long)((int64_t)want * s[0].n_simulations / K),
                      (long long)(((int64_t)want + 1) * s[0].n_simulations / K), n);
        }
    }
    for (int i = 0; i < n; ++i) {
        int64_t want_begin = i == 0 ? 0 : s[i - 1].end;
        SBI_CHECK(s[i].begin == want_begin && s[i].end >= s[i].begin, SBI_ERR_INPUT,
                  "%s holds simulations [%lld, %lld), expected to start at %lld", s[i].path, (long long)s[i].begin,
                  (long long)s[i].end, (long long)want_begin);
    }
    SBI_CHECK(s[n - 1].end == s[0].n_simulations, SBI_ERR_INPUT,
              "the shards end at simulation %lld of %lld", (long long)s[n - 1].end, (long long)s[0].n_simulations);
    return 0;
}

/* Rows copied per rank and call. */
#define MERGE_CHUNK ((int64_t)1 << 15)

/* Copy every split of one shard into the output at row offsets out_row0[]. */
static int copy_shard(const sbi_comm *c, sbi_corpus out, const char *path, const int64_t out_row0[3],
                      run_buffers *b)
{
    sbi_corpus in;
    const sbi_corpus_desc *d;
    int st = 0;
    SBI_CALL(sbi_corpus_open(c, path, &in));
    d = sbi_corpus_get_desc(in);
    for (int s = 0; !st && s < 3; ++s) {
        const int64_t R = d->split_rows[s];
        const sbi_shard blk = sbi_shard_block(R, c->rank, c->size);
        /* Every rank makes the same number of collective writes. */
        const int64_t most = (R + c->size - 1) / c->size, calls = (most + MERGE_CHUNK - 1) / MERGE_CHUNK;
        for (int64_t it = 0; !st && it < calls; ++it) {
            int64_t r0 = blk.offset + it * MERGE_CHUNK, m = blk.count - it * MERGE_CHUNK;
            int e = 0;
            if (m > MERGE_CHUNK) m = MERGE_CHUNK;
            if (m < 0) m = 0;
            for (int t = 0; !e && t < 3; ++t)
                e = sbi_corpus_read_rows(in, s, r0, m, t, b->t[t], t == 0 ? b->xf : NULL, t == 0 ? b->index : NULL);
            st = sbi_comm_agree(c, e);
            if (!st)
                st = sbi_corpus_write_rows(out, s, out_row0[s] + r0, m, b->t[0], b->t[1], b->t[2], b->xf, b->index);
        }
    }
    {
        int e = sbi_corpus_close(&in);
        if (!st) st = e;
    }
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}

static int merge_body(const sbi_comm *c, const char *out_path, int n_shards, char *const *paths, shard_info *info,
                      sbi_corpus *out, run_buffers *buf)
{
    int64_t row0[3] = {0, 0, 0}, invalid = 0;
    double t0 = sbi_wtime();
    SBI_CHECK(n_shards > 0, SBI_ERR_INPUT, "merge: no shards given");
    for (int i = 0; i < n_shards; ++i) SBI_CALL(inspect_shard(c, paths[i], &info[i]));
    SBI_AGREE(c, check_shards(info, n_shards));

    /* The output's descriptor: the first shard's, widened to the whole corpus. */
    {
        sbi_corpus first;
        sbi_corpus_desc d;
        int st;
        SBI_CALL(sbi_corpus_open(c, info[0].path, &first));
        d = *sbi_corpus_get_desc(first);
        d.shard_index = d.shard_count = 0;
        d.index_begin = 0;
        d.index_end = d.n_simulations;
        d.split_rows[0] = d.split_rows[1] = d.split_rows[2] = 0;
        for (int i = 0; i < n_shards; ++i)
            for (int s = 0; s < 3; ++s) d.split_rows[s] += info[i].rows[s];
        st = buffers_alloc(buf, MERGE_CHUNK, d.n_params, d.n_outputs);
        st = sbi_comm_agree(c, st);
        if (!st) st = sbi_corpus_create(c, out_path, &d, out);
        {
            int e = sbi_corpus_close(&first);
            if (!st) st = e;
        }
        SBI_CALL(st);
    }
    for (int i = 0; i < n_shards; ++i) {
        SBI_CALL(copy_shard(c, *out, info[i].path, row0, buf));
        for (int s = 0; s < 3; ++s) row0[s] += info[i].rows[s];
        invalid += info[i].invalid;
    }
    {
        const sbi_corpus_desc *d = sbi_corpus_get_desc(*out);
        SBI_CALL(sbi_corpus_mark_progress(*out, (d->n_simulations + d->batch_size - 1) / d->batch_size, invalid));
    }
    SBI_CALL(sbi__simulate_write_stats(c, *out));
    SBI_CALL(sbi_corpus_commit(out));
    sbi_log(c, "merged %d shards into %s (%lld simulations) in %.2f s", n_shards, out_path,
            (long long)(row0[0] + row0[1] + row0[2]), sbi_wtime() - t0);
    return 0;
}

int sbi_simulate_merge(const sbi_comm *c, const char *out_path, int n_shards, char *const *shard_paths)
{
    shard_info *info = calloc((size_t)(n_shards > 0 ? n_shards : 1), sizeof *info);
    sbi_corpus out = NULL;
    run_buffers buf;
    int st;
    memset(&buf, 0, sizeof buf);
    st = sbi_comm_agree(c, info ? 0 : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory"));
    if (!st) st = merge_body(c, out_path, n_shards, shard_paths, info, &out, &buf);
    if (out) sbi_corpus_close(&out);
    buffers_free(&buf);
    free(info);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    return 0;
}
