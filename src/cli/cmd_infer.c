/* exosbi infer TASK MODEL.h5 [OBS] -o POSTERIOR.h5 [options] */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/infer.h"

#define MAX_OBS 64

static void help(void)
{
    printf("usage: exosbi infer TASK MODEL.h5 OBS -o POSTERIOR.h5 [options]\n"
           "       exosbi infer TASK MODEL.h5 --obs NAME=PATH [--obs NAME=PATH ...] -o POSTERIOR.h5\n\n"
           "Amortized retrieval: posterior samples for one observation, in physical units.\n"
           "OBS is a text file with columns `coordinate value uncertainty` (also petitRADTRANS'\n"
           "4-column files with a bin width), `value uncertainty`, or one value per line; or a\n"
           "FITS table with WAVELENGTH, FLUX and FLUX_ERROR (or ERROR, or COVARIANCE) columns:\n"
           "a JWST x1d file (the EXTRACT1D extension) or petitRADTRANS' SPECTRUM extension.\n"
           "PATH[EXT] picks the FITS extension by name or number; by default the first table\n"
           "with WAVELENGTH and FLUX is read.  Wavelengths in a known unit (TUNITn) become um.\n"
           "NaN rows of a FITS table are missing points: the model needs every point of its\n"
           "grid, so they are refused (exit 3) unless --rebin averages over them.\n\n"
           "  -o, --output FILE     POSTERIOR.h5: /samples, /log_prob, /summary, /observation\n"
           "      --obs NAME=PATH   the file of dataset NAME (tasks with several datasets)\n"
           "      --rebin           rebin an observation on another grid onto the dataset's\n"
           "                        coordinates, conserving flux (bin edges half-way between\n"
           "                        centres, or from a 4-column file's widths; independent errors)\n"
           "      --obs-cov [NAME=]PATH  a full covariance matrix (text, one row per line) over the\n"
           "                        file's points; stored in POSTERIOR.h5 and compared with the\n"
           "                        task's noise, which the posterior assumes\n"
           "      --samples N       number of posterior draws (10000)\n"
           "      --seed N          sampling seed (0)\n"
           "      --predictive      add the posterior-predictive band of the observation:\n"
           "                        /predictive/NAME/{mean,std,lower,upper,crps}\n"
           "      --forward-samples M  posterior draws through the forward model (256)\n"
           "      --level A         central predictive interval (0.9)\n"
           "      --ood-corpus FILE calibrate the out-of-distribution threshold on this corpus's\n"
           "                        held-out rows (default: the corpus the model was trained on)\n"
           "      --ood-rate P      false-alarm rate of that threshold (0.01)\n"
           "      --json            print the summary as JSON on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

int sbi_cli_infer(const sbi_comm *c, int argc, char **argv)
{
    enum { O_OBS = 256, O_SAMPLES, O_SEED, O_JSON, O_OOD_CORPUS, O_OOD_RATE, O_REBIN, O_COV, O_PRED, O_FORWARD,
           O_LEVEL };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"obs", required_argument, 0, O_OBS},
        {"samples", required_argument, 0, O_SAMPLES}, {"seed", required_argument, 0, O_SEED},
        {"json", no_argument, 0, O_JSON}, {"ood-corpus", required_argument, 0, O_OOD_CORPUS},
        {"ood-rate", required_argument, 0, O_OOD_RATE}, {"rebin", no_argument, 0, O_REBIN},
        {"obs-cov", required_argument, 0, O_COV}, {"predictive", no_argument, 0, O_PRED},
        {"forward-samples", required_argument, 0, O_FORWARD}, {"level", required_argument, 0, O_LEVEL},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *names[MAX_OBS], *paths[MAX_OBS], *cnames[MAX_OBS], *cpaths[MAX_OBS];
    char buf[MAX_OBS][1024], cbuf[MAX_OBS][1024];
    sbi_infer_options o;
    sbi_infer_result r;
    sbi_task *task = NULL;
    const char *out = NULL;
    int json = 0, ch, st;
    int64_t iv;

    memset(&o, 0, sizeof o);
    o.n_samples = 10000;
    o.obs_names = names;
    o.obs_paths = paths;
    o.cov_names = cnames;
    o.cov_paths = cpaths;
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
        case O_OBS:
            if (o.n_obs == MAX_OBS) return sbi_cli_usage_error("infer", "at most %d --obs", MAX_OBS);
            SBI_CALL(sbi_cli_parse_named_path("infer", "--obs", optarg, 1, buf[o.n_obs], sizeof buf[0], &names[o.n_obs],
                                              &paths[o.n_obs]));
            o.n_obs++;
            break;
        case O_COV:
            if (o.n_cov == MAX_OBS) return sbi_cli_usage_error("infer", "at most %d --obs-cov", MAX_OBS);
            SBI_CALL(sbi_cli_parse_named_path("infer", "--obs-cov", optarg, 0, cbuf[o.n_cov], sizeof cbuf[0],
                                              &cnames[o.n_cov], &cpaths[o.n_cov]));
            o.n_cov++;
            break;
        case O_REBIN: o.rebin = 1; break;
        case O_PRED: o.predictive = 1; break;
        case O_FORWARD:
            SBI_CALL(sbi_cli_parse_int64("infer", "--forward-samples", optarg, &iv));
            if (iv < 1 || iv > 10000000) return sbi_cli_usage_error("infer", "--forward-samples must be in 1..1e7");
            o.n_forward = (int)iv;
            break;
        case O_LEVEL:
            SBI_CALL(sbi_cli_parse_double("infer", "--level", optarg, &o.predictive_level));
            if (!(o.predictive_level > 0 && o.predictive_level < 1))
                return sbi_cli_usage_error("infer", "--level must be in (0, 1)");
            break;
        case O_SAMPLES:
            SBI_CALL(sbi_cli_parse_int64("infer", "--samples", optarg, &iv));
            if (iv < 1 || iv > 100000000) return sbi_cli_usage_error("infer", "--samples must be in 1..1e8");
            o.n_samples = (int)iv;
            break;
        case O_SEED:
            SBI_CALL(sbi_cli_parse_int64("infer", "--seed", optarg, &iv));
            o.seed = (uint64_t)iv;
            break;
        case O_JSON: json = 1; break;
        case O_OOD_CORPUS: o.ood_corpus = optarg; break;
        case O_OOD_RATE:
            SBI_CALL(sbi_cli_parse_double("infer", "--ood-rate", optarg, &o.ood_rate));
            if (!(o.ood_rate > 0 && o.ood_rate < 1)) return sbi_cli_usage_error("infer", "--ood-rate must be in (0, 1)");
            break;
        default: return sbi_cli_usage_error("infer", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind == 3) {
        if (o.n_obs) return sbi_cli_usage_error("infer", "give OBS or --obs, not both");
        names[0] = NULL;
        paths[0] = argv[optind + 2];
        o.n_obs = 1;
    } else if (argc - optind != 2) {
        return sbi_cli_usage_error("infer", "expected TASK MODEL.h5 OBS");
    }
    if (!o.n_obs) return sbi_cli_usage_error("infer", "no observation: give OBS or --obs NAME=PATH");
    if (!out) return sbi_cli_usage_error("infer", "missing -o POSTERIOR.h5");
    if ((o.n_forward || o.predictive_level > 0) && !o.predictive)
        return sbi_cli_usage_error("infer", "--forward-samples and --level need --predictive");
    if (o.predictive && o.n_forward > o.n_samples)
        return sbi_cli_usage_error("infer", "--forward-samples %d exceeds --samples %d", o.n_forward, o.n_samples);
    SBI_CALL(sbi_task_load(argv[optind], &task));
    st = sbi_infer_run(c, task, argv[optind + 1], &o, out, &r);
    if (st) {
        sbi_task_destroy(&task);
        return st;
    }
    if (c->rank == 0) {
        if (json) {
            printf("{\"n_samples\": %lld, \"sample_s\": %.6g, \"samples_per_s\": %.6g, \"parameters\": {",
                   (long long)r.n_samples, r.sample_s, r.sample_s > 0 ? (double)r.n_samples / r.sample_s : 0.0);
            for (int j = 0; j < r.D; ++j)
                printf("%s\"%s\": {\"median\": %.9g, \"lower68\": %.9g, \"upper68\": %.9g, \"mean\": %.9g, "
                       "\"std\": %.9g}",
                       j ? ", " : "", task->params[j].name, r.median[j], r.lower68[j], r.upper68[j], r.mean[j],
                       r.std[j]);
            printf("}, \"ood\": {\"distance\": %.6g, \"threshold\": ", r.ood_distance);
            if (r.ood_flag >= 0) printf("%.6g", r.ood_threshold);
            else printf("null");
            printf(", \"flag\": %d}", r.ood_flag);
            if (r.predictive)
                printf(", \"predictive\": {\"n_forward_samples\": %lld, \"n_valid\": %lld, \"coverage\": %.6g}",
                       (long long)r.n_forward, (long long)r.n_valid, r.predictive_coverage);
            printf("}\n");
        } else {
            printf("%lld posterior samples in %.3f s -> %s\n", (long long)r.n_samples, r.sample_s, out);
            printf("%-16s %14s %14s %14s\n", "parameter", "median", "-68%", "+68%");
            for (int j = 0; j < r.D; ++j)
                printf("%-16s %14.6g %14.6g %14.6g %s\n", task->params[j].name, r.median[j],
                       r.lower68[j] - r.median[j], r.upper68[j] - r.median[j], task->params[j].unit);
            if (r.ood_flag >= 0)
                printf("out-of-distribution distance %.3g (threshold %.3g): %s\n", r.ood_distance, r.ood_threshold,
                       r.ood_flag ? "OUTSIDE the training support" : "inside the training support");
            else
                printf("out-of-distribution distance %.3g (no calibrated threshold)\n", r.ood_distance);
            if (r.predictive)
                printf("posterior predictive: %lld of %lld draws simulated; %.1f%% of the observed points inside "
                       "the central band\n",
                       (long long)r.n_valid, (long long)r.n_forward, 100.0 * r.predictive_coverage);
        }
        fflush(stdout);
    }
    sbi_infer_result_free(&r);
    sbi_task_destroy(&task);
    return 0;
}
