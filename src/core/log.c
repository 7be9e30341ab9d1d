/* Rank-0 logging and progress reports with rate and ETA. */
#include "exosbi/core.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int sbi__log_level = SBI_LOG_INFO;

void sbi_log_set_level(int level) { sbi__log_level = level; }
int sbi_log_level(void) { return sbi__log_level; }

static void vlog(const sbi_comm *c, FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    if (c && c->rank != 0) return;
    if (prefix) fputs(prefix, f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
}

void sbi_log(const sbi_comm *c, const char *fmt, ...)
{
    va_list ap;
    if (sbi__log_level < SBI_LOG_INFO) return;
    va_start(ap, fmt);
    vlog(c, stderr, NULL, fmt, ap);
    va_end(ap);
}

void sbi_log_verbose(const sbi_comm *c, const char *fmt, ...)
{
    va_list ap;
    if (sbi__log_level < SBI_LOG_VERBOSE) return;
    va_start(ap, fmt);
    vlog(c, stderr, NULL, fmt, ap);
    va_end(ap);
}

void sbi_warn(const sbi_comm *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(c, stderr, "warning: ", fmt, ap);
    va_end(ap);
}

double sbi_wtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sbi_progress_start(sbi_progress *p, const sbi_comm *c, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->comm = c;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = p->t_last = sbi_wtime();
    p->tty = isatty(fileno(stderr));
}

static void fmt_secs(double s, char *out, size_t cap)
{
    if (s < 0 || s > 1e7) snprintf(out, cap, "--");
    else if (s < 60) snprintf(out, cap, "%.0fs", s);
    else if (s < 3600) snprintf(out, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void progress_print(sbi_progress *p, double now, int final)
{
    double el = now - p->t_start, rate = el > 0 ? (double)p->done / el : 0.0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
    double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0;
    char e[16], t[16];
    fmt_secs(eta, e, sizeof e);
    fmt_secs(el, t, sizeof t);
    if (p->tty) {
        int width = 24, fill = (int)(pct / 100.0 * width + 0.5), i;
        fprintf(stderr, "\r%s [", p->label);
        for (i = 0; i < width; ++i) fputc(i < fill ? '#' : '.', stderr);
        fprintf(stderr, "] %5.1f%% %lld/%lld  %.4g/s  %s %s%s", pct, (long long)p->done, (long long)p->total, rate,
                final ? "elapsed" : "eta", final ? t : e, final ? "\n" : "   ");
    } else {
        fprintf(stderr, "%s: %5.1f%% %lld/%lld  %.4g/s  %s %s\n", p->label, pct, (long long)p->done,
                (long long)p->total, rate, final ? "elapsed" : "eta", final ? t : e);
    }
    fflush(stderr);
}

void sbi_progress_update(sbi_progress *p, int64_t done)
{
    double now;
    p->done = done;
    if (!p->comm || p->comm->rank != 0 || sbi__log_level < SBI_LOG_INFO) return;
    now = sbi_wtime();
    if (now - p->t_last < (p->tty ? 0.2 : 5.0)) return;
    p->t_last = now;
    progress_print(p, now, 0);
}

void sbi_progress_end(sbi_progress *p)
{
    if (!p->comm || p->comm->rank != 0 || sbi__log_level < SBI_LOG_INFO) return;
    progress_print(p, sbi_wtime(), 1);
}

void sbi_progress_clear(sbi_progress *p)
{
    if (!p->comm || p->comm->rank != 0 || !p->tty || sbi__log_level < SBI_LOG_INFO) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
