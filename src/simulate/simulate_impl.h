/* Private to src/simulate: the normalisation statistics shared by
 * sbi_simulate_run and sbi_simulate_merge. */
#ifndef EXOSBI_SIMULATE_IMPL_H
#define EXOSBI_SIMULATE_IMPL_H

#include "exosbi/corpus.h"
#include "exosbi/simulate.h"

/* The median and IQR of each output column are computed exactly over the
 * first SBI__STATS_MAX_ROWS training rows (a column of that many floats is
 * selected in memory); means and standard deviations use every training row. */
#define SBI__STATS_MAX_ROWS ((int64_t)1 << 20)

/* Collective: compute the statistics of the training split of a corpus open
 * for writing (every row written and flushed) and store them with
 * sbi_corpus_write_stats.  The result does not depend on the number of ranks. */
int sbi__simulate_write_stats(const sbi_comm *c, sbi_corpus corpus);

#endif
