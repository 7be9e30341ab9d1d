/* Error recording and traceback frames. */
#include "exosbi/core.h"

#include <stdarg.h>
#include <string.h>

static char sbi__message[4096];
static int sbi__have_message;
static int sbi__traceback;

int sbi__raise(int code, const char *file, int line, const char *func, const char *fmt, ...)
{
    if (!sbi__have_message) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sbi__message, sizeof sbi__message, fmt, ap);
        va_end(ap);
        sbi__have_message = 1;
    }
    if (sbi__traceback) fprintf(stderr, "  [raised] %s:%d %s\n", file, line, func);
    return code;
}

int sbi__trace(int code, const char *file, int line, const char *func)
{
    if (sbi__traceback && !(code & SBI_ERR_REMOTE)) fprintf(stderr, "  [trace]  %s:%d %s\n", file, line, func);
    return code;
}

int sbi__mpi_error(int mpi_code, const char *file, int line, const char *func, const char *expr)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", mpi_code);
    return sbi__raise(SBI_ERR_INTERNAL, file, line, func, "%s failed: %s", expr, text);
}

const char *sbi_error_message(void) { return sbi__have_message ? sbi__message : ""; }

void sbi_error_clear(void)
{
    sbi__message[0] = '\0';
    sbi__have_message = 0;
}

void sbi_error_set_traceback(int on) { sbi__traceback = on; }
