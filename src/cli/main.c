/* exosbi: amortized Bayesian retrievals of exoplanet atmospheres.
 *
 *   mpirun -n N exosbi <command> [options]
 *
 * main() is the only place that owns MPI_COMM_WORLD, initialises PETSc, and
 * turns a status into an exit code; every rank exits with the same status. */
#include <cblas.h>
#include <petscsys.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    sbi_cli_fn fn;
    const char *summary;
} commands[] = {
    {"simulate", sbi_cli_simulate, "write a prior-predictive training corpus (parallel HDF5)"},
    {"merge", sbi_cli_merge, "join corpus shards written by a job array"},
    {"train", sbi_cli_train, "train a neural posterior estimator (data-parallel)"},
    {"sbc", sbi_cli_sbc, "simulation-based calibration: ranks and coverage on held-out cases"},
    {"predictive", sbi_cli_predictive, "posterior-predictive report on held-out cases"},
    {"infer", sbi_cli_infer, "amortized retrieval of one observation (with an out-of-distribution check)"},
    {"sensitivity", sbi_cli_sensitivity, "local Jacobian / Fisher identifiability report for a posterior"},
    {"inspect", sbi_cli_inspect, "describe a task, corpus, model or report"},
    {"run", sbi_cli_run, "the whole pipeline end to end: simulate, train, sbc, infer"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpirun -n N exosbi <command> [options]\n"
            "       exosbi <command> --help\n\n"
            "Amortized Bayesian retrievals of exoplanet atmospheres.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; ++i) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\noptions for every command: --quiet, --verbose, --help\n"
            "exit status: 0 success, 2 usage or invalid input, 3 incompatible task/model/corpus,\n"
            "             4 I/O or corrupt data, 1 internal error.\n");
}

int sbi_cli_common_option(const char *arg)
{
    if (!strcmp(arg, "--quiet") || !strcmp(arg, "-q")) {
        sbi_log_set_level(SBI_LOG_QUIET);
        return 1;
    }
    if (!strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
        sbi_log_set_level(SBI_LOG_VERBOSE);
        sbi_error_set_traceback(1);
        return 1;
    }
    return 0;
}

int sbi_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__, "%s: %s (see 'exosbi %s --help')", cmd, msg, cmd);
}

int sbi_cli_parse_shard(const char *text, int *index, int *count)
{
    char *end;
    long i = strtol(text, &end, 10), k;
    if (end == text || *end != '/') return sbi_cli_usage_error("simulate", "--shard expects I/K, got '%s'", text);
    k = strtol(end + 1, &end, 10);
    if (*end || k < 1 || i < 0 || i >= k)
        return sbi_cli_usage_error("simulate", "--shard expects I/K with 0 <= I < K, got '%s'", text);
    *index = (int)i;
    *count = (int)k;
    return 0;
}

int sbi_cli_parse_int64(const char *cmd, const char *opt, const char *text, int64_t *value)
{
    char *end;
    long long v;
    if (!text) return sbi_cli_usage_error(cmd, "%s needs a value", opt);
    v = strtoll(text, &end, 10);
    if (end == text || *end) return sbi_cli_usage_error(cmd, "%s expects an integer, got '%s'", opt, text);
    *value = v;
    return 0;
}

int sbi_cli_parse_double(const char *cmd, const char *opt, const char *text, double *value)
{
    char *end;
    double v;
    if (!text) return sbi_cli_usage_error(cmd, "%s needs a value", opt);
    v = strtod(text, &end);
    if (end == text || *end) return sbi_cli_usage_error(cmd, "%s expects a number, got '%s'", opt, text);
    *value = v;
    return 0;
}

int sbi_cli_parse_named_path(const char *cmd, const char *opt, const char *text, int name_required, char *buf,
                             size_t size, char **name, char **path)
{
    char *eq;
    if (!text) return sbi_cli_usage_error(cmd, "%s needs a value", opt);
    if (strlen(text) >= size) return sbi_cli_usage_error(cmd, "%s: '%s' is longer than %zu bytes", opt, text, size - 1);
    snprintf(buf, size, "%s", text);
    eq = strchr(buf, '=');
    if ((!eq && name_required) || (eq && (eq == buf || !eq[1])))
        return sbi_cli_usage_error(cmd, "%s expects %s, got '%s'", opt, name_required ? "NAME=PATH" : "[NAME=]PATH",
                                   text);
    if (eq) *eq = '\0';
    *name = eq ? buf : NULL;
    *path = eq ? eq + 1 : buf;
    return 0;
}

int main(int argc, char **argv)
{
    sbi_comm comm;
    int status = 0, found = 0, provided;

    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    openblas_set_num_threads(1);
    /* PETSc reads no command-line options here; TS/TAO options come from PETSC_OPTIONS. */
    if (PetscInitializeNoArguments() != 0) {
        fprintf(stderr, "exosbi: error: PETSc failed to initialise\n");
        MPI_Abort(MPI_COMM_WORLD, SBI_ERR_INTERNAL);
    }
    sbi_comm_init(&comm, MPI_COMM_WORLD);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (comm.rank == 0) usage(stdout);
        status = argc < 2 ? SBI_ERR_INPUT : 0;
        found = 1;
    } else if (!strcmp(argv[1], "--version")) {
        if (comm.rank == 0) printf("exosbi %s\n", EXOSBI_VERSION);
        found = 1;
    } else {
        for (int i = 0; i < N_COMMANDS; ++i) {
            if (!strcmp(argv[1], commands[i].name)) {
                status = commands[i].fn(&comm, argc - 1, argv + 1);
                found = 1;
                break;
            }
        }
    }
    if (!found) {
        if (comm.rank == 0) {
            fprintf(stderr, "exosbi: unknown command '%s'\n\n", argv[1]);
            usage(stderr);
        }
        status = SBI_ERR_INPUT;
        sbi__raise(status, __FILE__, __LINE__, __func__, "unknown command '%s'", argv[1]);
    }
    status = sbi_comm_finish(&comm, status, "exosbi");
    PetscFinalize();
    MPI_Finalize();
    return status;
}
