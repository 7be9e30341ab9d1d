/* exosbi sbc MODEL.h5 CORPUS.h5 -o SBC.h5 [options] */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/calibrate.h"

static void help(void)
{
    printf("usage: exosbi sbc MODEL.h5 CORPUS.h5 -o SBC.h5 [options]\n\n"
           "Simulation-based calibration on held-out simulations: SBC ranks, rank histograms,\n"
           "coverage of central credible intervals, mean rank and normalised mean-rank error,\n"
           "and the TARP expected-coverage curve with its largest distance from the diagonal.\n"
           "Cases are spread over the ranks; the report does not depend on the rank count.\n\n"
           "  -o, --output SBC.h5      the report\n"
           "      --split NAME         test (default), validation or train\n"
           "      --samples N          posterior draws per case (1000)\n"
           "      --max-cases N        use at most the first N cases of the split\n"
           "      --levels A,B,...     coverage levels (0.5,0.8,0.95)\n"
           "      --bins N             rank histogram bins (20)\n"
           "      --seed N             sampling seed\n"
           "      --tarp-points N      points of the TARP credibility grid from 0 to 1 (101)\n"
           "      --json               print {n_cases, coverage, coverage_expected,\n"
           "                           normalized_mean_rank_error, tarp_max_distance} on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

int sbi_cli_sbc(const sbi_comm *c, int argc, char **argv)
{
    enum { O_SPLIT = 256, O_SAMPLES, O_MAX, O_LEVELS, O_BINS, O_SEED, O_JSON, O_TARP };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"split", required_argument, 0, O_SPLIT},
        {"samples", required_argument, 0, O_SAMPLES}, {"max-cases", required_argument, 0, O_MAX},
        {"levels", required_argument, 0, O_LEVELS}, {"bins", required_argument, 0, O_BINS},
        {"seed", required_argument, 0, O_SEED}, {"json", no_argument, 0, O_JSON},
        {"tarp-points", required_argument, 0, O_TARP},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sbi_sbc_options o;
    sbi_sbc_summary s;
    const char *out = NULL;
    int json = 0, ch;
    int64_t iv;

    sbi_sbc_options_default(&o);
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
            if (k == SBI_N_SPLITS) return sbi_cli_usage_error("sbc", "--split must be train, validation or test");
            o.split = k;
            break;
        }
        case O_SAMPLES:
            SBI_CALL(sbi_cli_parse_int64("sbc", "--samples", optarg, &iv));
            if (iv < 1 || iv > 1000000) return sbi_cli_usage_error("sbc", "--samples must be in 1..1000000");
            o.n_samples = (int)iv;
            break;
        case O_MAX: SBI_CALL(sbi_cli_parse_int64("sbc", "--max-cases", optarg, &o.max_cases)); break;
        case O_BINS:
            SBI_CALL(sbi_cli_parse_int64("sbc", "--bins", optarg, &iv));
            if (iv < 1 || iv > 10000) return sbi_cli_usage_error("sbc", "--bins must be in 1..10000");
            o.n_bins = (int)iv;
            break;
        case O_TARP:
            SBI_CALL(sbi_cli_parse_int64("sbc", "--tarp-points", optarg, &iv));
            if (iv < 2 || iv > 100001) return sbi_cli_usage_error("sbc", "--tarp-points must be in 2..100001");
            o.n_alpha = (int)iv;
            break;
        case O_SEED:
            SBI_CALL(sbi_cli_parse_int64("sbc", "--seed", optarg, &iv));
            o.seed = (uint64_t)iv;
            break;
        case O_LEVELS: {
            char buf[512], *tok, *save = NULL;
            snprintf(buf, sizeof buf, "%s", optarg);
            o.n_levels = 0;
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o.n_levels == SBI_MAX_LEVELS) return sbi_cli_usage_error("sbc", "at most %d levels", SBI_MAX_LEVELS);
                SBI_CALL(sbi_cli_parse_double("sbc", "--levels", tok, &o.levels[o.n_levels]));
                o.n_levels++;
            }
            break;
        }
        case O_JSON: json = 1; break;
        default: return sbi_cli_usage_error("sbc", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return sbi_cli_usage_error("sbc", "expected MODEL.h5 and CORPUS.h5");
    if (!out) return sbi_cli_usage_error("sbc", "missing -o SBC.h5");
    SBI_CALL(sbi_sbc_run(c, argv[optind], argv[optind + 1], &o, out, &s));
    sbi_log(c, "sbc: %lld %s cases, %d draws each (%.1fs)", (long long)s.n_cases, sbi_split_names[o.split],
            o.n_samples, s.wall_s);
    for (int l = 0; l < s.n_levels; ++l)
        sbi_log(c, "  coverage at %.2f: %.4f (calibrated with %d draws: %.4f)", s.levels[l], s.coverage[l], o.n_samples,
                s.expected[l]);
    sbi_log(c, "  TARP: largest distance of the expected coverage from the diagonal %.4f", s.tarp_max_distance);
    if (json && c->rank == 0) {
        printf("{\"n_cases\": %lld, \"coverage\": {", (long long)s.n_cases);
        for (int l = 0; l < s.n_levels; ++l) printf("%s\"%g\": %.6g", l ? ", " : "", s.levels[l], s.coverage[l]);
        printf("}, \"coverage_expected\": {");
        for (int l = 0; l < s.n_levels; ++l) printf("%s\"%g\": %.6g", l ? ", " : "", s.levels[l], s.expected[l]);
        printf("}, \"normalized_mean_rank_error\": [");
        for (int j = 0; j < s.D; ++j) printf("%s%.6g", j ? ", " : "", s.normalized_mean_rank_error[j]);
        printf("], \"tarp_max_distance\": %.6g}\n", s.tarp_max_distance);
    }
    sbi_sbc_summary_free(&s);
    return 0;
}
