/* exosbi sensitivity TASK POSTERIOR.h5 OBS -o SENS.h5 [options] */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/calibrate.h"
#include "exosbi/infer.h"

#define MAX_OBS 64

static void help(void)
{
    printf("usage: exosbi sensitivity TASK POSTERIOR.h5 OBS -o SENS.h5 [options]\n"
           "       exosbi sensitivity TASK POSTERIOR.h5 --obs NAME=PATH [...] -o SENS.h5\n\n"
           "Local identifiability of a retrieval: at representative posterior points (the mean,\n"
           "the highest-density sample, per-parameter quantiles) the finite-difference Jacobian\n"
           "of the forward model, whitened by the observation's uncertainties; its singular\n"
           "values, effective rank and condition number; the Fisher matrix, its damped\n"
           "pseudo-inverse covariance and correlations; per-parameter sensitivity, local sigma,\n"
           "posterior-to-local sigma ratio and a diagnosis.  The forward model must be\n"
           "deterministic.\n\n"
           "  -o, --output SENS.h5       the report (HDF5 datasets and a JSON payload attribute)\n"
           "      --obs NAME=PATH        the file of dataset NAME (tasks with several datasets)\n"
           "      --obs-cov [NAME=]PATH  a full covariance matrix (text, one row per line) over the\n"
           "                             dataset's points: whitening by its Cholesky factor, so the\n"
           "                             Fisher matrix is J^T C^-1 J (other datasets: diagonal)\n"
           "      --quantiles A,B,...    representative quantile levels (0.1,0.5,0.9)\n"
           "      --relative-step R      finite-difference step relative to |theta| (1e-3)\n"
           "      --std-fraction F       step as a fraction of the posterior std (0.1)\n"
           "      --absolute-floor H     smallest step (1e-5)\n"
           "      --max-step-reductions N  halvings of a step that fails (6)\n"
           "      --svd-rtol T           relative singular-value cutoff of the effective rank (1e-3)\n"
           "      --json                 print the JSON payload on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

static int parse_positive(const char *opt, const char *text, double *v)
{
    SBI_CALL(sbi_cli_parse_double("sensitivity", opt, text, v));
    if (!(*v > 0)) return sbi_cli_usage_error("sensitivity", "%s must be positive", opt);
    return 0;
}

/* The observation covariance (X, X): each dataset's block is its --obs-cov
 * matrix, or diag(sigma^2) when it has none; datasets are independent. */
static int block_covariance(const sbi_task *task, const double *sigma, const sbi_infer_obs_info *info, double **cov)
{
    const int64_t X = task->n_outputs;
    double *m;
    SBI_CALLOC(m, (size_t)X * X);
    for (int d = 0; d < task->n_datasets; ++d) {
        const sbi_dataset *ds = &task->datasets[d];
        for (int64_t i = 0; i < ds->size; ++i)
            for (int64_t j = 0; j < ds->size; ++j) {
                double v = info[d].covariance ? info[d].covariance[i * ds->size + j]
                                              : (i == j ? sigma[ds->offset + i] * sigma[ds->offset + i] : 0.0);
                m[(ds->offset + i) * X + ds->offset + j] = v;
            }
    }
    *cov = m;
    return 0;
}

int sbi_cli_sensitivity(const sbi_comm *c, int argc, char **argv)
{
    enum { O_OBS = 256, O_COV, O_Q, O_REL, O_STDF, O_FLOOR, O_RED, O_RTOL, O_JSON };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"obs", required_argument, 0, O_OBS},
        {"obs-cov", required_argument, 0, O_COV},
        {"quantiles", required_argument, 0, O_Q}, {"relative-step", required_argument, 0, O_REL},
        {"std-fraction", required_argument, 0, O_STDF}, {"absolute-floor", required_argument, 0, O_FLOOR},
        {"max-step-reductions", required_argument, 0, O_RED}, {"svd-rtol", required_argument, 0, O_RTOL},
        {"json", no_argument, 0, O_JSON}, {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *names[MAX_OBS], *paths[MAX_OBS], buf[MAX_OBS][1024], obs_list[8192] = "", *payload = NULL;
    char *cnames[MAX_OBS], *cpaths[MAX_OBS], cbuf[MAX_OBS][1024];
    sbi_infer_options io;
    sbi_sens_options o;
    sbi_task *task = NULL;
    sbi_infer_obs_info *info = NULL;
    double *x = NULL, *sigma = NULL, *cov = NULL;
    const char *out = NULL;
    int json = 0, ch, st;
    int64_t iv;

    memset(&io, 0, sizeof io);
    io.obs_names = names;
    io.obs_paths = paths;
    io.cov_names = cnames;
    io.cov_paths = cpaths;
    sbi_sens_options_default(&o);
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
            if (io.n_obs == MAX_OBS) return sbi_cli_usage_error("sensitivity", "at most %d --obs", MAX_OBS);
            SBI_CALL(sbi_cli_parse_named_path("sensitivity", "--obs", optarg, 1, buf[io.n_obs], sizeof buf[0], &names[io.n_obs],
                                              &paths[io.n_obs]));
            io.n_obs++;
            break;
        case O_COV:
            if (io.n_cov == MAX_OBS) return sbi_cli_usage_error("sensitivity", "at most %d --obs-cov", MAX_OBS);
            SBI_CALL(sbi_cli_parse_named_path("sensitivity", "--obs-cov", optarg, 0, cbuf[io.n_cov], sizeof cbuf[0],
                                              &cnames[io.n_cov], &cpaths[io.n_cov]));
            io.n_cov++;
            break;
        case O_Q: {
            char qb[512], *tok, *save = NULL;
            snprintf(qb, sizeof qb, "%s", optarg);
            o.n_quantiles = 0;
            for (tok = strtok_r(qb, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o.n_quantiles == SBI_MAX_LEVELS)
                    return sbi_cli_usage_error("sensitivity", "at most %d quantiles", SBI_MAX_LEVELS);
                SBI_CALL(sbi_cli_parse_double("sensitivity", "--quantiles", tok, &o.quantiles[o.n_quantiles]));
                if (!(o.quantiles[o.n_quantiles] >= 0 && o.quantiles[o.n_quantiles] <= 1))
                    return sbi_cli_usage_error("sensitivity", "--quantiles must be in [0, 1]");
                o.n_quantiles++;
            }
            break;
        }
        case O_REL: SBI_CALL(parse_positive("--relative-step", optarg, &o.rel_step)); break;
        case O_STDF: SBI_CALL(parse_positive("--std-fraction", optarg, &o.std_fraction)); break;
        case O_FLOOR: SBI_CALL(parse_positive("--absolute-floor", optarg, &o.abs_floor)); break;
        case O_RTOL: SBI_CALL(parse_positive("--svd-rtol", optarg, &o.svd_rtol)); break;
        case O_RED:
            SBI_CALL(sbi_cli_parse_int64("sensitivity", "--max-step-reductions", optarg, &iv));
            if (iv < 0 || iv > 60) return sbi_cli_usage_error("sensitivity", "--max-step-reductions must be in 0..60");
            o.max_reductions = (int)iv;
            break;
        case O_JSON: json = 1; break;
        default: return sbi_cli_usage_error("sensitivity", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind == 3) {
        if (io.n_obs) return sbi_cli_usage_error("sensitivity", "give OBS or --obs, not both");
        names[0] = NULL;
        paths[0] = argv[optind + 2];
        io.n_obs = 1;
    } else if (argc - optind != 2 || !io.n_obs) {
        return sbi_cli_usage_error("sensitivity", "expected TASK POSTERIOR.h5 OBS");
    }
    if (!out) return sbi_cli_usage_error("sensitivity", "missing -o SENS.h5");
    for (int k = 0; k < io.n_obs; ++k) {
        size_t len = strlen(obs_list);
        snprintf(obs_list + len, sizeof obs_list - len, "%s%s%s%s", k ? ";" : "", names[k] ? names[k] : "",
                 names[k] ? "=" : "", paths[k]);
    }
    SBI_CALL(sbi_task_load(argv[optind], &task));
    SBI_MALLOC(x, task->n_outputs);
    SBI_MALLOC(sigma, task->n_outputs);
    SBI_CALLOC(info, task->n_datasets);
    st = sbi_infer_read_observation_info(c, task, &io, x, sigma, info);
    if (!st && io.n_cov) st = block_covariance(task, sigma, info, &cov);
    sbi_infer_obs_info_free(task->n_datasets, info);
    free(info);
    SBI_AGREE(c, st);
    st = sbi_sens_run(c, task, argv[optind + 1], x, sigma, cov, obs_list, &o, out, &payload);
    if (!st && payload) {
        cJSON *j = cJSON_Parse(payload);
        const cJSON *diag = cJSON_GetObjectItemCaseSensitive(j, "parameter_diagnostics");
        const cJSON *ratio = cJSON_GetObjectItemCaseSensitive(j, "posterior_to_local_sigma_ratio");
        sbi_log(c, "sensitivity -> %s", out);
        sbi_log(c, "  %-16s %12s  %s", "parameter", "post/local", "diagnosis");
        for (int p = 0; p < task->n_params; ++p) {
            const cJSON *r = cJSON_GetArrayItem(ratio, p);
            const cJSON *dg = cJSON_GetObjectItemCaseSensitive(diag, task->params[p].name);
            sbi_log(c, "  %-16s %12.4g  %s", task->params[p].name, cJSON_IsNumber(r) ? r->valuedouble : -1.0,
                    cJSON_IsString(dg) ? dg->valuestring : "");
        }
        cJSON_Delete(j);
        if (json) {
            printf("%s\n", payload);
            fflush(stdout);
        }
    }
    free(payload);
    free(x);
    free(sigma);
    free(cov);
    sbi_task_destroy(&task);
    return st;
}
