/* exosbi infer (placeholder until the command lands). */
#include "cli/cli.h"

int sbi_cli_infer(const sbi_comm *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    SBI_RAISE(SBI_ERR_INTERNAL, "'infer' is not available in this build");
}
