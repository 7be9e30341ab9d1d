/* exosbi predictive TASK MODEL.h5 CORPUS.h5 -o PPC.h5 [options] */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/calibrate.h"

static void help(void)
{
    printf("usage: exosbi predictive TASK MODEL.h5 CORPUS.h5 -o PPC.h5 [options]\n\n"
           "Posterior-predictive report on held-out simulations: per case, posterior draws go\n"
           "through the forward model (plus the task's observational noise); the predictive mean,\n"
           "std and central interval of every observed point, the interval's coverage, MAE, MAE\n"
           "in units of the uncertainty, the median interval width over the uncertainty and the\n"
           "CRPS, on the original observation scale.  Cases are spread over the ranks; the\n"
           "report does not depend on the rank count.\n\n"
           "  -o, --output PPC.h5        the report\n"
           "      --split NAME           test (default), validation or train\n"
           "      --max-cases N          use at most the first N cases of the split\n"
           "      --samples N            posterior draws per case (256)\n"
           "      --forward-samples M    of which M go through the forward model (all)\n"
           "      --level A              central predictive interval (0.9)\n"
           "      --seed N               sampling seed\n"
           "      --checkpoint-dir D     keep each finished case in D; a rerun resumes from them\n"
           "      --json                 print {n_cases, resumed, datasets: {NAME: {coverage, mae,\n"
           "                             mae_sigma, median_width_over_sigma, crps}}} on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

int sbi_cli_predictive(const sbi_comm *c, int argc, char **argv)
{
    enum { O_SPLIT = 256, O_MAX, O_SAMPLES, O_FORWARD, O_LEVEL, O_SEED, O_CKPT, O_JSON };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"split", required_argument, 0, O_SPLIT},
        {"max-cases", required_argument, 0, O_MAX}, {"samples", required_argument, 0, O_SAMPLES},
        {"forward-samples", required_argument, 0, O_FORWARD}, {"level", required_argument, 0, O_LEVEL},
        {"seed", required_argument, 0, O_SEED}, {"checkpoint-dir", required_argument, 0, O_CKPT},
        {"json", no_argument, 0, O_JSON}, {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    sbi_ppc_options o;
    sbi_ppc_summary s;
    sbi_task *task = NULL;
    const char *out = NULL;
    int json = 0, ch, st;
    int64_t iv;

    sbi_ppc_options_default(&o);
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'q': sbi_cli_common_option("--quiet"); break;
        case 'v': sbi_cli_common_option("--verbose"); break;
        case 'h':
            if (c->rank == 0) help();
            return 0;
        case O_SPLIT: {
            int k;
            for (k = 0; k < SBI_N_SPLITS; ++k)
                if (!strcmp(optarg, sbi_split_names[k])) break;
            if (k == SBI_N_SPLITS)
                return sbi_cli_usage_error("predictive", "--split must be train, validation or test");
            o.split = k;
            break;
        }
        case O_MAX: SBI_CALL(sbi_cli_parse_int64("predictive", "--max-cases", optarg, &o.max_cases)); break;
        case O_SAMPLES:
            SBI_CALL(sbi_cli_parse_int64("predictive", "--samples", optarg, &iv));
            if (iv < 1 || iv > 1000000) return sbi_cli_usage_error("predictive", "--samples must be in 1..1000000");
            o.n_samples = (int)iv;
            break;
        case O_FORWARD:
            SBI_CALL(sbi_cli_parse_int64("predictive", "--forward-samples", optarg, &iv));
            if (iv < 1 || iv > 1000000)
                return sbi_cli_usage_error("predictive", "--forward-samples must be in 1..1000000");
            o.n_forward = (int)iv;
            break;
        case O_LEVEL:
            SBI_CALL(sbi_cli_parse_double("predictive", "--level", optarg, &o.level));
            if (!(o.level > 0 && o.level < 1)) return sbi_cli_usage_error("predictive", "--level must be in (0, 1)");
            break;
        case O_SEED:
            SBI_CALL(sbi_cli_parse_int64("predictive", "--seed", optarg, &iv));
            o.seed = (uint64_t)iv;
            break;
        case O_CKPT: o.checkpoint_dir = optarg; break;
        case O_JSON: json = 1; break;
        default: return sbi_cli_usage_error("predictive", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 3) return sbi_cli_usage_error("predictive", "expected TASK MODEL.h5 CORPUS.h5");
    if (!out) return sbi_cli_usage_error("predictive", "missing -o PPC.h5");
    if (o.n_forward > o.n_samples)
        return sbi_cli_usage_error("predictive", "--forward-samples (%d) exceeds --samples (%d)", o.n_forward,
                                   o.n_samples);
    SBI_CALL(sbi_task_load(argv[optind], &task));
    st = sbi_ppc_run(c, task, argv[optind + 1], argv[optind + 2], &o, out, &s);
    if (st) {
        sbi_task_destroy(&task);
        return st;
    }
    sbi_log(c, "predictive: %lld %s cases (%lld from checkpoints), %d draws, %d through the forward model (%.1fs)",
            (long long)s.n_cases, sbi_split_names[o.split], (long long)s.n_resumed, o.n_samples,
            o.n_forward ? o.n_forward : o.n_samples, s.wall_s);
    for (int d = 0; d < s.n_datasets; ++d)
        sbi_log(c, "  %-12s coverage at %.2f: %.4f  MAE %.4g (%.3g sigma)  width/sigma %.3g  CRPS %.4g",
                task->datasets[d].name, o.level, s.stats[0 * s.n_datasets + d], s.stats[1 * s.n_datasets + d],
                s.stats[2 * s.n_datasets + d], s.stats[3 * s.n_datasets + d], s.stats[4 * s.n_datasets + d]);
    if (json && c->rank == 0) {
        printf("{\"n_cases\": %lld, \"resumed\": %lld, \"level\": %g, \"datasets\": {", (long long)s.n_cases,
               (long long)s.n_resumed, o.level);
        for (int d = 0; d < s.n_datasets; ++d) {
            printf("%s\"%s\": {", d ? ", " : "", task->datasets[d].name);
            for (int k = 0; k < SBI_PPC_N_STATS; ++k) {
                double v = s.stats[k * s.n_datasets + d];
                printf("%s\"%s\": ", k ? ", " : "", sbi_ppc_stat_names[k]);
                if (isfinite(v)) printf("%.6g", v);
                else printf("null");
            }
            printf("}");
        }
        printf("}}\n");
        fflush(stdout);
    }
    sbi_ppc_summary_free(&s);
    sbi_task_destroy(&task);
    return 0;
}
