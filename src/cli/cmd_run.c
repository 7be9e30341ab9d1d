/* exosbi run (placeholder until the command lands). */
#include "cli/cli.h"

int sbi_cli_run(const sbi_comm *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    SBI_RAISE(SBI_ERR_INTERNAL, "'run' is not available in this build");
}
