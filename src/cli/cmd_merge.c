/* exosbi merge -o CORPUS.h5 SHARD... */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/simulate.h"

static void help(void)
{
    printf("usage: mpirun -n N exosbi merge -o CORPUS.h5 SHARD.h5...\n\n"
           "Join the shards written by 'exosbi simulate --shard I/K' (a job array) into one corpus, in any\n"
           "order, and compute its normalisation statistics.  The result is bitwise the same as the corpus\n"
           "written in one run.  Every shard 0..K-1 must be given exactly once.\n\n"
           "  -o, --output CORPUS.h5   the merged corpus (written as CORPUS.h5.partial, then renamed)\n"
           "      --force              overwrite an existing CORPUS.h5\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n\n"
           "exit status: 0 done, 2 missing or repeated shards, 3 shards of different tasks, 4 I/O error\n"
           "             (an unreadable, truncated or unfinished shard).\n");
}

int sbi_cli_merge(const sbi_comm *c, int argc, char **argv)
{
    enum { O_FORCE = 256 };
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'}, {"force", no_argument, 0, O_FORCE},
                                             {"quiet", no_argument, 0, 'q'},        {"verbose", no_argument, 0, 'v'},
                                             {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *out = NULL;
    int ch, force = 0;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case O_FORCE: force = 1; break;
        case 'q': sbi_cli_common_option("--quiet"); break;
        case 'v': sbi_cli_common_option("--verbose"); break;
        case 'h':
            if (c->rank == 0) help();
            return 0;
        default: return sbi_cli_usage_error("merge", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!out) return sbi_cli_usage_error("merge", "missing -o CORPUS.h5");
    if (argc - optind < 1) return sbi_cli_usage_error("merge", "no shards given");
    for (int i = optind; i < argc; ++i)
        if (!strcmp(argv[i], out)) return sbi_cli_usage_error("merge", "the output %s is also given as a shard", out);
    SBI_AGREE(c, force || !sbi_file_exists(out)
                     ? 0
                     : sbi__raise(SBI_ERR_INPUT, __FILE__, __LINE__, __func__,
                                  "%s exists: use --force to overwrite it", out));
    SBI_CALL(sbi_simulate_merge(c, out, argc - optind, argv + optind));
    return 0;
}
