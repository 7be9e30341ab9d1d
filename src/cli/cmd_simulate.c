/* exosbi simulate TASK -o CORPUS.h5 [-n N] [--resume] [--shard I/K] [--force] [--json] */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/simulate.h"

static void help(void)
{
    printf("usage: mpirun -n N exosbi simulate TASK -o CORPUS.h5 [options]\n\n"
           "Simulate a prior-predictive training corpus: parameters from the prior, observations from the\n"
           "forward model plus observational noise, written by all ranks into one parallel-HDF5 file.\n"
           "The file is bitwise the same for any number of ranks.\n\n"
           "  -o, --output CORPUS.h5   the corpus (written as CORPUS.h5.partial, renamed when complete)\n"
           "  -n, --n-simulations N    override simulation.n_simulations (fractional splits are rescaled)\n"
           "      --resume             continue CORPUS.h5.partial after an interruption; starts afresh when\n"
           "                           there is none, and accepts a complete CORPUS.h5 as it is\n"
           "      --shard I/K          write only piece I of K (simulations [I*n/K, (I+1)*n/K)) for a job\n"
           "                           array; join the pieces with 'exosbi merge'\n"
           "      --force              overwrite an existing complete CORPUS.h5\n"
           "      --json               print {n_simulations, wall_s, simulations_per_s, write_mb_per_s,\n"
           "                           invalid_redrawn, fingerprint} on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n\n"
           "exit status: 0 done, 2 bad task or options (or an unfinished CORPUS.h5.partial without --resume),\n"
           "             3 --resume of another task's corpus, 4 I/O error.\n");
}

int sbi_cli_simulate(const sbi_comm *c, int argc, char **argv)
{
    enum { O_RESUME = 256, O_SHARD, O_FORCE, O_JSON };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"n-simulations", required_argument, 0, 'n'},
        {"resume", no_argument, 0, O_RESUME},  {"shard", required_argument, 0, O_SHARD},
        {"force", no_argument, 0, O_FORCE},    {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, 'q'},        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    sbi_simulate_options opt;
    sbi_simulate_summary sum;
    sbi_task *task = NULL;
    const char *out = NULL;
    int64_t n_sims = 0;
    int ch, st;

    memset(&opt, 0, sizeof opt);
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:n:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'n':
            SBI_CALL(sbi_cli_parse_int64("simulate", "--n-simulations", optarg, &n_sims));
            if (n_sims <= 0) return sbi_cli_usage_error("simulate", "--n-simulations must be positive");
            break;
        case O_RESUME: opt.resume = 1; break;
        case O_SHARD: SBI_CALL(sbi_cli_parse_shard(optarg, &opt.shard_index, &opt.shard_count)); break;
        case O_FORCE: opt.force = 1; break;
        case O_JSON: opt.json = 1; break;
        case 'q': sbi_cli_common_option("--quiet"); break;
        case 'v': sbi_cli_common_option("--verbose"); break;
        case 'h':
            if (c->rank == 0) help();
            return 0;
        default:
            return sbi_cli_usage_error("simulate", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return sbi_cli_usage_error("simulate", "expected one TASK file");
    if (!out) return sbi_cli_usage_error("simulate", "missing -o CORPUS.h5");

    SBI_AGREE(c, sbi_task_load(argv[optind], &task));
    st = n_sims > 0 ? sbi_task_set_n_simulations(task, n_sims) : 0;
    st = sbi_comm_agree(c, st);
    if (!st) st = sbi_simulate_run(c, task, &opt, out, &sum);
    sbi_task_destroy(&task);
    SBI_CALL(st);
    if (opt.json && c->rank == 0) {
        printf("{\"n_simulations\": %lld, \"wall_s\": %.6g, \"simulations_per_s\": %.6g, \"write_mb_per_s\": %.6g, "
               "\"invalid_redrawn\": %lld, \"fingerprint\": \"%s\"}\n",
               (long long)sum.n_simulations, sum.wall_s, sum.simulations_per_s, sum.write_mb_per_s,
               (long long)sum.invalid_redrawn, sum.fingerprint);
        fflush(stdout);
    }
    return 0;
}
