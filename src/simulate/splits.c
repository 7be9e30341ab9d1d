/* Split assignment: which split each simulation index falls in, and its row
 * there.  Rows of a split are in increasing index order under both policies,
 * so any contiguous block of indices maps to one contiguous row range per
 * split (which is what lets every rank write its block with one hyperslab). */
#include <stdlib.h>
#include <string.h>

#include "exosbi/rng.h"
#include "exosbi/simulate.h"

/* The random policy keeps the split of every index (one byte each) and the
 * split counts before every STRIDE-th index, so a row lookup scans at most
 * STRIDE - 1 bytes. */
#define STRIDE 1024

struct sbi_splits_s {
    int64_t n;
    int64_t counts[3];
    int random;
    uint8_t *which;         /* (n) split of each index; random policy only */
    int64_t (*before)[3];   /* (n / STRIDE + 1) counts before index b * STRIDE */
};

int sbi_splits_create(const sbi_task *task, sbi_splits *out)
{
    sbi_splits s;
    int64_t n = task->n_simulations;
    *out = NULL;
    SBI_CHECK(n > 0, SBI_ERR_INPUT, "simulation.n_simulations must be positive, got %lld", (long long)n);
    SBI_CHECK(task->split_counts[0] >= 0 && task->split_counts[1] >= 0 && task->split_counts[2] >= 0 &&
                  task->split_counts[0] + task->split_counts[1] + task->split_counts[2] == n,
              SBI_ERR_INPUT, "simulation.splits: %lld + %lld + %lld rows do not add up to %lld simulations",
              (long long)task->split_counts[0], (long long)task->split_counts[1], (long long)task->split_counts[2],
              (long long)n);
    SBI_CALLOC(s, 1);
    s->n = n;
    memcpy(s->counts, task->split_counts, sizeof s->counts);
    s->random = task->split_policy == SBI_SPLIT_RANDOM;
    if (s->random) {
        uint32_t *perm;
        sbi_rng rng;
        int64_t nb = n / STRIDE + 1, c[3] = {0, 0, 0};
        if (n > (int64_t)UINT32_MAX) {
            free(s);
            SBI_RAISE(SBI_ERR_INPUT, "simulation.split_policy: random splits support at most %u simulations",
                      UINT32_MAX);
        }
        perm = malloc((size_t)n * sizeof *perm);
        s->which = malloc((size_t)n);
        s->before = malloc((size_t)nb * sizeof *s->before);
        if (!perm || !s->which || !s->before) {
            free(perm);
            sbi_splits_destroy(&s);
            SBI_RAISE(SBI_ERR_INTERNAL, "out of memory assigning %lld simulations to splits", (long long)n);
        }
        /* Fisher-Yates: the first n_train entries of the permutation are the
         * training indices, the next n_validation the validation ones. */
        for (int64_t i = 0; i < n; ++i) perm[i] = (uint32_t)i;
        sbi_rng_init(&rng, task->split_seed, 0, SBI_STREAM_SPLIT, 0);
        for (int64_t i = n - 1; i > 0; --i) {
            int64_t j = (int64_t)sbi_rng_below(&rng, (uint64_t)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int64_t p = 0; p < n; ++p)
            s->which[perm[p]] = p < s->counts[0] ? 0 : p < s->counts[0] + s->counts[1] ? 1 : 2;
        free(perm);
        for (int64_t i = 0; i < n; ++i) {
            if (i % STRIDE == 0) memcpy(s->before[i / STRIDE], c, sizeof c);
            c[s->which[i]]++;
        }
        if (n % STRIDE == 0) memcpy(s->before[n / STRIDE], c, sizeof c);
    }
    *out = s;
    return 0;
}

void sbi_splits_destroy(sbi_splits *sp)
{
    sbi_splits s = *sp;
    if (!s) return;
    *sp = NULL;
    free(s->which);
    free(s->before);
    free(s);
}

int sbi_splits_of(sbi_splits s, int64_t index)
{
    if (s->random) return s->which[index];
    if (index < s->counts[0]) return SBI_SPLIT_TRAIN;
    if (index < s->counts[0] + s->counts[1]) return SBI_SPLIT_VALIDATION;
    return SBI_SPLIT_TEST;
}

/* Rows of each split among indices [0, end). */
static void prefix(sbi_splits s, int64_t end, int64_t c[3])
{
    if (!s->random) {
        int64_t lo = 0;
        for (int k = 0; k < 3; ++k) {
            int64_t hi = lo + s->counts[k];
            c[k] = end <= lo ? 0 : end >= hi ? s->counts[k] : end - lo;
            lo = hi;
        }
        return;
    }
    {
        int64_t b = end / STRIDE;
        memcpy(c, s->before[b], 3 * sizeof *c);
        for (int64_t i = b * STRIDE; i < end; ++i) c[s->which[i]]++;
    }
}

int64_t sbi_splits_row(sbi_splits s, int64_t index)
{
    int64_t c[3];
    prefix(s, index, c);
    return c[sbi_splits_of(s, index)];
}

void sbi_splits_count(sbi_splits s, int64_t begin, int64_t end, int64_t counts[3])
{
    int64_t a[3], b[3];
    if (end <= begin) {
        counts[0] = counts[1] = counts[2] = 0;
        return;
    }
    prefix(s, begin, a);
    prefix(s, end, b);
    for (int k = 0; k < 3; ++k) counts[k] = b[k] - a[k];
}
