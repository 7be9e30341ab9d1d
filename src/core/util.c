/* Hashing, file helpers. */
#include "exosbi/core.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int sbi_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    SBI_CHECK(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32, SBI_ERR_INTERNAL,
              "SHA-256 digest failed");
    for (unsigned int i = 0; i < n; ++i) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
    return 0;
}

int sbi_read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long size;
    char *buf;
    SBI_CHECK(f, SBI_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        SBI_RAISE(SBI_ERR_IO, "%s: cannot read", path);
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        SBI_RAISE(SBI_ERR_INTERNAL, "%s: out of memory", path);
    }
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        fclose(f);
        SBI_RAISE(SBI_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    buf[size] = '\0';
    *text = buf;
    if (len) *len = (size_t)size;
    return 0;
}

int sbi_file_commit(const char *partial, const char *final_path)
{
    SBI_CHECK(rename(partial, final_path) == 0, SBI_ERR_IO, "cannot rename %s to %s: %s", partial, final_path,
              strerror(errno));
    return 0;
}

int sbi_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void sbi_dirname(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

void sbi_path_resolve(const char *base_file, const char *rel, char *out, size_t cap)
{
    char dir[4096];
    if (rel[0] == '/') {
        snprintf(out, cap, "%s", rel);
        return;
    }
    sbi_dirname(base_file, dir, sizeof dir);
    snprintf(out, cap, "%s/%s", dir, rel);
}

int sbi_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sbi_quantile_sorted(const double *s, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    if (i >= n - 1) return s[n - 1];
    if (i < 0) return s[0];
    return s[i] + (pos - (double)i) * (s[i + 1] - s[i]);
}
