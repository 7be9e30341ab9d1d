/* exosbi core: status codes, error propagation, the communicator context,
 * logging and progress.  Every other module depends on this header.
 *
 * Error model (scaled-down PETSc):
 *   - non-trivial functions return int: 0 on success, an SBI_ERR_* code otherwise;
 *   - SBI_CHECK(cond, code, fmt, ...) raises: it records the message and returns;
 *   - SBI_CALL(expr) propagates: on failure it adds one traceback frame and returns;
 *   - only main() decides how to exit; nothing below it calls exit() or abort().
 * The first message raised on a rank is kept; sbi_error_message() returns it.
 */
#ifndef EXOSBI_CORE_H
#define EXOSBI_CORE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, documented in the README.  They double as error codes. */
enum {
    SBI_OK = 0,
    SBI_ERR_INTERNAL = 1,     /* a bug or an unexpected library failure */
    SBI_ERR_INPUT = 2,        /* usage or invalid input */
    SBI_ERR_INCOMPATIBLE = 3, /* task / model / corpus fingerprints differ */
    SBI_ERR_IO = 4,           /* I/O failure or corrupt data */
    SBI_ERR_REMOTE = 64       /* another rank failed; this rank only follows (internal use) */
};

/* Raise an error: record the formatted message (the first one on this rank wins)
 * and return `code`.  Use through SBI_CHECK / SBI_RAISE. */
int sbi__raise(int code, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Add a traceback frame for an error travelling up the stack; returns code. */
int sbi__trace(int code, const char *file, int line, const char *func);

#define SBI_RAISE(code, ...) return sbi__raise((code), __FILE__, __LINE__, __func__, __VA_ARGS__)

#define SBI_CHECK(cond, code, ...)                                                  \
    do {                                                                            \
        if (!(cond)) return sbi__raise((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)

#define SBI_CALL(expr)                                                              \
    do {                                                                            \
        int sbi__e = (expr);                                                        \
        if (sbi__e) return sbi__trace(sbi__e, __FILE__, __LINE__, __func__);        \
    } while (0)

/* MPI return codes become SBI_ERR_INTERNAL with MPI_Error_string's text. */
int sbi__mpi_error(int mpi_code, const char *file, int line, const char *func, const char *expr);
#define SBI_CALL_MPI(expr)                                                          \
    do {                                                                            \
        int sbi__m = (expr);                                                        \
        if (sbi__m != MPI_SUCCESS)                                                  \
            return sbi__mpi_error(sbi__m, __FILE__, __LINE__, __func__, #expr);      \
    } while (0)

/* Allocation that raises SBI_ERR_INTERNAL naming the size on failure. */
#define SBI_MALLOC(ptr, count)                                                      \
    do {                                                                            \
        size_t sbi__n = (size_t)(count) * sizeof(*(ptr));                           \
        (ptr) = sbi__n ? malloc(sbi__n) : NULL;                                     \
        if (sbi__n && !(ptr))                                                       \
            return sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,       \
                              "out of memory allocating %zu bytes", sbi__n);        \
    } while (0)
#define SBI_CALLOC(ptr, count)                                                      \
    do {                                                                            \
        size_t sbi__n = (size_t)(count);                                            \
        (ptr) = sbi__n ? calloc(sbi__n, sizeof(*(ptr))) : NULL;                     \
        if (sbi__n && !(ptr))                                                       \
            return sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,       \
                              "out of memory allocating %zu bytes", sbi__n * sizeof(*(ptr))); \
    } while (0)

/* The message of the first error raised on this rank ("" when none). */
const char *sbi_error_message(void);
/* Forget the recorded error (tests that provoke errors on purpose use this). */
void sbi_error_clear(void);
/* Print traceback frames to stderr as they are added (--verbose). */
void sbi_error_set_traceback(int on);

/* ---- communicator context ------------------------------------------------ */

/* Made in main() and passed down; nothing below main names MPI_COMM_WORLD. */
typedef struct sbi_comm {
    MPI_Comm comm;
    int rank, size;
} sbi_comm;

int sbi_comm_init(sbi_comm *c, MPI_Comm comm);

/* Agree on an error: every rank passes its local status; all return the same
 * verdict.  A rank that failed gets its own code back; the others get
 * SBI_ERR_REMOTE | the failing code, so they unwind without a message of their
 * own.  Call this before any collective that follows local work that can fail. */
int sbi_comm_agree(const sbi_comm *c, int local_status);
#define SBI_AGREE(c, expr)                                                          \
    do {                                                                            \
        int sbi__a = sbi_comm_agree((c), (expr));                                   \
        if (sbi__a) return sbi__trace(sbi__a, __FILE__, __LINE__, __func__);        \
    } while (0)

/* Final agreement in main(): returns the exit status every rank uses (the
 * failing code, never SBI_ERR_REMOTE) and prints the first failing rank's
 * message once, on rank 0. */
int sbi_comm_finish(const sbi_comm *c, int local_status, const char *prog);

/* Contiguous block of n items owned by `rank` of `size`. */
typedef struct sbi_shard {
    int64_t offset, count;
} sbi_shard;
sbi_shard sbi_shard_block(int64_t n, int rank, int size);

int sbi_comm_sum_double(const sbi_comm *c, double *v, int n);   /* in place */
int sbi_comm_sum_int64(const sbi_comm *c, int64_t *v, int n);   /* in place */
int sbi_comm_max_double(const sbi_comm *c, double *v, int n);   /* in place */
int sbi_comm_bcast(const sbi_comm *c, void *buf, size_t bytes, int root);

/* ---- logging and progress (rank 0 prints) -------------------------------- */

enum { SBI_LOG_QUIET = 0, SBI_LOG_INFO = 1, SBI_LOG_VERBOSE = 2 };
void sbi_log_set_level(int level);
int sbi_log_level(void);
void sbi_log(const sbi_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbi_log_verbose(const sbi_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbi_warn(const sbi_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct sbi_progress {
    const sbi_comm *comm;
    char label[48];
    int64_t total, done;
    double t_start, t_last;
    int tty;
} sbi_progress;
void sbi_progress_start(sbi_progress *p, const sbi_comm *c, const char *label, int64_t total);
void sbi_progress_update(sbi_progress *p, int64_t done);
void sbi_progress_end(sbi_progress *p);
/* Erase a terminal progress bar so that a log line can follow (no-op otherwise). */
void sbi_progress_clear(sbi_progress *p);

double sbi_wtime(void);

/* ---- small utilities ----------------------------------------------------- */

/* SHA-256 of `len` bytes as 64 lowercase hex characters plus NUL. */
int sbi_sha256_hex(const void *data, size_t len, char hex[65]);
/* qsort comparator for doubles in increasing order. */
int sbi_cmp_double(const void *a, const void *b);
/* Linear-interpolated quantile q in [0, 1] of n >= 1 sorted values. */
double sbi_quantile_sorted(const double *s, int64_t n, double q);
/* Read a whole file; *text is NUL-terminated and owned by the caller. */
int sbi_read_file(const char *path, char **text, size_t *len);
/* Rename path.partial -> path atomically (same directory). */
int sbi_file_commit(const char *partial, const char *final_path);
int sbi_file_exists(const char *path);
/* Directory part of path ("." when none), into out[cap]. */
void sbi_dirname(const char *path, char *out, size_t cap);
/* Resolve `rel` against the directory of `base_file` unless it is absolute. */
void sbi_path_resolve(const char *base_file, const char *rel, char *out, size_t cap);

#endif
