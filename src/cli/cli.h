/* The exosbi command line: one function per subcommand, each in its own file.
 * A command parses its options (GNU long options, --help), runs its stage
 * driver and returns an exit status (SBI_OK or an SBI_ERR_* code).  main()
 * makes the communicator, agrees on the status and exits. */
#ifndef EXOSBI_CLI_H
#define EXOSBI_CLI_H

#include <stddef.h>

#include "exosbi/core.h"

typedef int (*sbi_cli_fn)(const sbi_comm *c, int argc, char **argv);

int sbi_cli_simulate(const sbi_comm *c, int argc, char **argv);
int sbi_cli_merge(const sbi_comm *c, int argc, char **argv);
int sbi_cli_train(const sbi_comm *c, int argc, char **argv);
int sbi_cli_sbc(const sbi_comm *c, int argc, char **argv);
int sbi_cli_infer(const sbi_comm *c, int argc, char **argv);
int sbi_cli_predictive(const sbi_comm *c, int argc, char **argv);
int sbi_cli_sensitivity(const sbi_comm *c, int argc, char **argv);
int sbi_cli_inspect(const sbi_comm *c, int argc, char **argv);
int sbi_cli_run(const sbi_comm *c, int argc, char **argv);

/* Shared option handling: --quiet / --verbose set the log level; returns 1
 * when argv[i] was one of them. */
int sbi_cli_common_option(const char *arg);
/* Usage error: records the message (SBI_ERR_INPUT) and hints at --help. */
int sbi_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse "I/K" (0 <= I < K). */
int sbi_cli_parse_shard(const char *text, int *index, int *count);
int sbi_cli_parse_int64(const char *cmd, const char *opt, const char *text, int64_t *value);
int sbi_cli_parse_double(const char *cmd, const char *opt, const char *text, double *value);
/* Parse "NAME=PATH" (or "PATH" alone when name_required is 0, giving *name
 * NULL) into buf (size bytes); *name and *path point into buf. */
int sbi_cli_parse_named_path(const char *cmd, const char *opt, const char *text, int name_required, char *buf,
                             size_t size, char **name, char **path);

#endif
