/* The "two moons" simulator (Greenberg, Nonnenmacher & Macke 2019; the sbibm
 * benchmark task), as an exosbi plugin forward model (ABI version 1).
 *
 * Parameters: theta = (theta1, theta2).  Outputs: x = (x1, x2).  For each row
 *   a ~ U(-pi/2, pi/2),  r ~ N(0.1, 0.01^2),
 *   p = (r cos(a) + offset, r sin(a)),
 *   x1 = p1 - |theta1 + theta2| / sqrt(2),
 *   x2 = p2 + (-theta1 + theta2) / sqrt(2).
 * The posterior is bimodal (two crescents), which makes it a standard test of
 * whether a flow can represent a multimodal density.
 *
 * Settings (JSON object): {"offset": number} (default 0.25).  Any other key
 * makes sbi_plugin_init fail.
 *
 * Randomness is counter-based: the draws of a row depend only on (seed,
 * sim_index[row]), through a splitmix64 hash, so a row is reproduced exactly
 * whatever batch or process computes it.  The file depends on libc and libm
 * only; it never links exosbi.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/plugin.h"

#define TWO_MOONS_PI 3.14159265358979323846

typedef struct two_moons {
    double offset; /* horizontal shift of the moon, settings.offset */
} two_moons;

/* ---- counter-based uniforms ---------------------------------------------- */

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Draw k of row `index` for `seed`, uniform in the open interval (0, 1). */
static double uniform(uint64_t seed, uint64_t index, uint64_t k)
{
    uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ index) + k);
    return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* ---- a minimal reader for the settings object ------------------------------
 * It accepts a JSON object whose keys are plain strings; only "offset" with a
 * number value is known.  It returns 0 on success. */

static const char *skip_space(const char *s)
{
    while (*s && isspace((unsigned char)*s)) ++s;
    return s;
}

/* Read a JSON string without escapes into key[cap]; returns the text after it or NULL. */
static const char *read_key(const char *s, char *key, size_t cap)
{
    size_t n = 0;
    if (*s != '"') return NULL;
    ++s;
    while (*s && *s != '"') {
        if (*s == '\\' || n + 1 >= cap) return NULL;
        key[n++] = *s++;
    }
    if (*s != '"') return NULL;
    key[n] = '\0';
    return s + 1;
}

static int parse_settings(const char *json, two_moons *tm)
{
    const char *s;
    if (!json) return 0;
    s = skip_space(json);
    if (*s != '{') return 1;
    s = skip_space(s + 1);
    if (*s == '}') return *skip_space(s + 1) != '\0';
    for (;;) {
        char key[64], *end;
        double v;
        s = read_key(s, key, sizeof key);
        if (!s) return 1;
        s = skip_space(s);
        if (*s != ':') return 1;
        s = skip_space(s + 1);
        if (strcmp(key, "offset") != 0) return 1;
        v = strtod(s, &end);
        if (end == s || !isfinite(v)) return 1;
        tm->offset = v;
        s = skip_space(end);
        if (*s == ',') {
            s = skip_space(s + 1);
            continue;
        }
        if (*s != '}') return 1;
        return *skip_space(s + 1) != '\0';
    }
}

/* ---- the ABI ------------------------------------------------------------ */

int sbi_plugin_init(const char *settings_json, sbi_plugin_info *info, void **state)
{
    two_moons *tm;
    if (!info || !state) return 1;
    tm = malloc(sizeof *tm);
    if (!tm) return 2;
    tm->offset = 0.25;
    if (parse_settings(settings_json, tm) != 0) {
        free(tm);
        return 3;
    }
    info->abi_version = SBI_PLUGIN_ABI_VERSION;
    info->n_params = 2;
    info->n_outputs = 2;
    *state = tm;
    return 0;
}

int sbi_plugin_simulate(void *state, int n, const double *theta, const unsigned long long *sim_index,
                        unsigned long long seed, double *out)
{
    const two_moons *tm = state;
    const double inv_sqrt2 = 0.70710678118654752440;
    if (!tm || n < 0) return 1;
    if (n > 0 && (!theta || !sim_index || !out)) return 1;
    for (int i = 0; i < n; ++i) {
        const double t1 = theta[2 * i], t2 = theta[2 * i + 1];
        const uint64_t idx = (uint64_t)sim_index[i];
        double a, r, u1, u2;
        if (!isfinite(t1) || !isfinite(t2)) {
            out[2 * i] = NAN;
            out[2 * i + 1] = NAN;
            continue;
        }
        a = TWO_MOONS_PI * (uniform(seed, idx, 0) - 0.5);
        u1 = uniform(seed, idx, 1);
        u2 = uniform(seed, idx, 2);
        r = 0.1 + 0.01 * sqrt(-2.0 * log(u1)) * cos(2.0 * TWO_MOONS_PI * u2);
        out[2 * i] = r * cos(a) + tm->offset - fabs(t1 + t2) * inv_sqrt2;
        out[2 * i + 1] = r * sin(a) + (-t1 + t2) * inv_sqrt2;
    }
    return 0;
}

void sbi_plugin_free(void *state) { free(state); }
