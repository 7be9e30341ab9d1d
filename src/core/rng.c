/* Philox4x32-10 streams keyed by (seed, index, purpose, sub). */
#include "exosbi/rng.h"

#include <Random123/philox.h>
#include <math.h>

void sbi_rng_init(sbi_rng *r, uint64_t seed, uint64_t index, uint32_t purpose, uint32_t sub)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = (uint32_t)index;
    r->ctr[1] = (uint32_t)(index >> 32);
    /* purpose in the top byte, the sub-stream below: 2^24 sub-streams of 2^32 blocks each. */
    r->ctr[2] = (purpose << 24) ^ (sub & 0xffffffu);
    r->ctr[3] = 0;
    r->avail = 0;
    r->has_spare = 0;
    r->spare = 0.0;
}

static void refill(sbi_rng *r)
{
    philox4x32_ctr_t c = {{r->ctr[0], r->ctr[1], r->ctr[2], r->ctr[3]}};
    philox4x32_key_t k = {{r->key[0], r->key[1]}};
    philox4x32_ctr_t out = philox4x32(c, k);
    for (int i = 0; i < 4; ++i) r->buf[i] = out.v[i];
    r->ctr[3] += 1;
    r->avail = 4;
}

uint32_t sbi_rng_u32(sbi_rng *r)
{
    if (r->avail == 0) refill(r);
    return r->buf[4 - r->avail--];
}

uint64_t sbi_rng_u64(sbi_rng *r)
{
    uint64_t hi = sbi_rng_u32(r);
    return (hi << 32) | sbi_rng_u32(r);
}

double sbi_rng_uniform(sbi_rng *r)
{
    /* 53 random bits, offset by half an ulp so neither 0 nor 1 can occur. */
    uint64_t bits = sbi_rng_u64(r) >> 11;
    return ((double)bits + 0.5) * (1.0 / 9007199254740992.0);
}

double sbi_rng_normal(sbi_rng *r)
{
    double u1, u2, rad;
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    u1 = sbi_rng_uniform(r);
    u2 = sbi_rng_uniform(r);
    rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return rad * cos(2.0 * M_PI * u2);
}

uint64_t sbi_rng_below(sbi_rng *r, uint64_t n)
{
    uint64_t limit, x;
    if (n <= 1) return 0;
    limit = UINT64_MAX - UINT64_MAX % n;
    do {
        x = sbi_rng_u64(r);
    } while (x >= limit);
    return x % n;
}
