/* Counter-based random numbers (Random123 Philox4x32-10).
 *
 * A stream is keyed by (seed, index, purpose): draw k of simulation i for the
 * prior is the same whichever rank computes it and however many ranks there
 * are.  A stream is a small value struct; it never allocates.
 */
#ifndef EXOSBI_RNG_H
#define EXOSBI_RNG_H

#include <stdint.h>

/* Purposes: distinct streams for the same (seed, index). */
enum {
    SBI_STREAM_PRIOR = 1,
    SBI_STREAM_NOISE = 2,
    SBI_STREAM_SIMULATOR = 3,
    SBI_STREAM_SPLIT = 4,
    SBI_STREAM_SHUFFLE = 5,
    SBI_STREAM_INIT = 6,
    SBI_STREAM_SAMPLE = 7,
    SBI_STREAM_AUGMENT = 8
};

typedef struct sbi_rng {
    uint32_t key[2];
    uint32_t ctr[4];  /* index lo, index hi, purpose, block */
    uint32_t buf[4];
    int avail;        /* unused words left in buf */
    int has_spare;
    double spare;     /* second Box-Muller normal */
} sbi_rng;

/* `sub` separates several independent streams of one purpose (a redraw attempt, say). */
void sbi_rng_init(sbi_rng *r, uint64_t seed, uint64_t index, uint32_t purpose, uint32_t sub);
uint32_t sbi_rng_u32(sbi_rng *r);
uint64_t sbi_rng_u64(sbi_rng *r);
double sbi_rng_uniform(sbi_rng *r);             /* in the open interval (0, 1), 53-bit */
double sbi_rng_normal(sbi_rng *r);              /* standard normal, Box-Muller */
uint64_t sbi_rng_below(sbi_rng *r, uint64_t n); /* uniform integer in [0, n), unbiased */

#endif
