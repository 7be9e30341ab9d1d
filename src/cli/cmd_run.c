/* exosbi run TASK -o DIR: simulate, train, calibrate and infer in one go. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "exosbi/calibrate.h"
#include "exosbi/corpus.h"
#include "exosbi/forward.h"
#include "exosbi/infer.h"
#include "exosbi/simulate.h"
#include "exosbi/train.h"

static void help(void)
{
    printf("usage: exosbi run TASK -o DIR [options]\n\n"
           "The whole pipeline with the task's defaults:\n"
           "  DIR/corpus.h5      simulate (resumed when DIR/corpus.h5.partial exists)\n"
           "  DIR/model.h5       train (resumed from DIR/model.h5.ckpt)\n"
           "  DIR/sbc.h5         simulation-based calibration on the test split\n"
           "  DIR/observation.txt, DIR/posterior.h5  amortized retrieval of the first test case,\n"
           "                     with the out-of-distribution check\n"
           "  DIR/ppc.h5         posterior-predictive report on 50 test cases\n"
           "  DIR/sensitivity.h5 local Fisher/Jacobian report at the retrieved posterior\n"
           "  DIR/index.html     figures, when /usr/bin/python3 with h5py and matplotlib is present\n"
           "Stages whose output exists are skipped, so an interrupted run continues where it stopped.\n\n"
           "  -o, --output DIR\n"
           "  -n N                 number of simulations (the task's)\n"
           "      --max-epochs N   training epochs at most\n"
           "      --sbc-samples N  posterior draws per SBC case (500)\n"
           "      --samples N      posterior draws for the retrieval (10000)\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

static int stage_done(const sbi_comm *c, const char *path)
{
    int e = c->rank == 0 ? sbi_file_exists(path) : 0;
    sbi_comm_bcast(c, &e, sizeof e, 0);
    return e;
}

/* Write the first test case of the corpus as one observation file per dataset. */
static int write_observation(const sbi_comm *c, const sbi_task *t, const char *corpus_path, const char *dir,
                             char paths[][4096], double *truth)
{
    sbi_corpus corpus = NULL;
    float *x;
    int st = 0;
    SBI_MALLOC(x, t->n_outputs);
    SBI_CALL(sbi_corpus_open(c, corpus_path, &corpus));
    st = sbi_corpus_read_rows(corpus, SBI_SPLIT_TEST, 0, 1, 0, truth, x, NULL);
    SBI_AGREE(c, st);
    for (int d = 0; d < t->n_datasets && !st; ++d) {
        const sbi_dataset *ds = &t->datasets[d];
        snprintf(paths[d], 4096, "%s/observation%s%s.txt", dir, t->n_datasets > 1 ? "_" : "",
                 t->n_datasets > 1 ? ds->name : "");
        if (c->rank == 0) {
            FILE *f = fopen(paths[d], "w");
            if (!f) {
                st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s: cannot write: %s", paths[d],
                                strerror(errno));
                break;
            }
            fprintf(f, "# simulated observation: first test case of %s\n", corpus_path);
            fprintf(f, ds->coordinates ? "# coordinate value uncertainty\n" : "# value uncertainty\n");
            for (int i = 0; i < ds->size; ++i) {
                if (ds->coordinates) fprintf(f, "%.9g ", ds->coordinates[i]);
                fprintf(f, "%.9g %.9g\n", (double)x[ds->offset + i], ds->uncertainty[i]);
            }
            fclose(f);
        }
    }
    SBI_AGREE(c, st);
    free(x);
    SBI_CALL(sbi_corpus_close(&corpus));
    return 0;
}

/* For the linear-Gaussian family with normal priors, print the exact posterior beside the amortized one. */
static void compare_exact(const sbi_comm *c, const sbi_task *t, const sbi_infer_options *io,
                          const sbi_infer_result *r)
{
    sbi_forward fw = NULL;
    double *x = NULL, *sig = NULL, *mean = NULL, *cov = NULL;
    if (strcmp(t->family, "linear_gaussian")) return;
    for (int j = 0; j < t->n_params; ++j)
        if (t->params[j].prior != SBI_PRIOR_NORMAL) return;
    x = malloc((size_t)t->n_outputs * sizeof *x);
    sig = malloc((size_t)t->n_outputs * sizeof *sig);
    mean = malloc((size_t)t->n_params * sizeof *mean);
    cov = malloc((size_t)t->n_params * t->n_params * sizeof *cov);
    if (x && sig && mean && cov && !sbi_forward_create(t, &fw) && !sbi_infer_read_observation(t, io, x, sig) &&
        !sbi_linear_gaussian_posterior(t, fw, x, mean, cov)) {
        sbi_log(c, "exact posterior (linear-Gaussian) vs amortized:");
        sbi_log(c, "  %-12s %12s %12s %12s %12s %10s", "parameter", "exact mean", "amortized", "exact std",
                "amortized", "bias/std");
        for (int j = 0; j < t->n_params; ++j) {
            double s = sqrt(cov[j * t->n_params + j]);
            sbi_log(c, "  %-12s %12.5g %12.5g %12.5g %12.5g %+10.3f", t->params[j].name, mean[j], r->mean[j], s,
                    r->std[j], (r->mean[j] - mean[j]) / s);
        }
    }
    sbi_error_clear();
    sbi_forward_destroy(&fw);
    free(x);
    free(sig);
    free(mean);
    free(cov);
}

static void make_figures(const sbi_comm *c, const char *dir)
{
    char script[4096], cmd[8192];
    if (c->rank != 0) return;
    snprintf(script, sizeof script, "%s/postprocess/report.py", EXOSBI_SOURCE_DIR);
    if (access("/usr/bin/python3", X_OK) != 0 || access(script, R_OK) != 0) {
        sbi_log(c, "figures: skipped (needs /usr/bin/python3 with h5py and matplotlib, and %s)", script);
        return;
    }
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
    if (system(cmd) == 0) sbi_log(c, "figures: %s/index.html", dir);
    else sbi_warn(c, "figures: %s failed; the HDF5 outputs are complete", script);
}

int sbi_cli_run(const sbi_comm *c, int argc, char **argv)
{
    enum { O_MAXE = 256, O_SBCS, O_SAMPLES };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"max-epochs", required_argument, 0, O_MAXE},
        {"sbc-samples", required_argument, 0, O_SBCS}, {"samples", required_argument, 0, O_SAMPLES},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL;
    int64_t n_sims = 0, max_epochs = 0, sbc_samples = 500, n_samples = 10000;
    char corpus[4096], model[4096], sbc[4096], post[4096], ppc[4096], sens[4096], partial[4200];
    char (*obs_paths)[4096] = NULL;
    char **names = NULL, **paths = NULL;
    sbi_task *t = NULL;
    double *truth = NULL, t0 = sbi_wtime();
    int ch, sbc_given = 0;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:n:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': dir = optarg; break;
        case 'n': SBI_CALL(sbi_cli_parse_int64("run", "-n", optarg, &n_sims)); break;
        case O_MAXE: SBI_CALL(sbi_cli_parse_int64("run", "--max-epochs", optarg, &max_epochs)); break;
        case O_SBCS:
            SBI_CALL(sbi_cli_parse_int64("run", "--sbc-samples", optarg, &sbc_samples));
            sbc_given = 1;
            break;
        case O_SAMPLES: SBI_CALL(sbi_cli_parse_int64("run", "--samples", optarg, &n_samples)); break;
        case 'q': sbi_cli_common_option("--quiet"); break;
        case 'v': sbi_cli_common_option("--verbose"); break;
        case 'h':
            if (c->rank == 0) help();
            return 0;
        default: return sbi_cli_usage_error("run", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return sbi_cli_usage_error("run", "expected one TASK file");
    if (!dir) return sbi_cli_usage_error("run", "missing -o DIR");
    if (sbc_samples < 1 || n_samples < 1) return sbi_cli_usage_error("run", "sample counts must be positive");
    SBI_CALL(sbi_task_load(argv[optind], &t));
    if (!sbc_given) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->training, "sbc_samples");
        if (cJSON_IsNumber(v) && v->valuedouble >= 1) sbc_samples = (int64_t)v->valuedouble;
    }
    if (n_sims > 0) SBI_CALL(sbi_task_set_n_simulations(t, n_sims));
    {
        int st = 0;
        if (c->rank == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
            st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s: cannot create: %s", dir, strerror(errno));
        SBI_AGREE(c, st);
    }
    snprintf(corpus, sizeof corpus, "%s/corpus.h5", dir);
    snprintf(model, sizeof model, "%s/model.h5", dir);
    snprintf(sbc, sizeof sbc, "%s/sbc.h5", dir);
    snprintf(post, sizeof post, "%s/posterior.h5", dir);
    snprintf(ppc, sizeof ppc, "%s/ppc.h5", dir);
    snprintf(sens, sizeof sens, "%s/sensitivity.h5", dir);

    sbi_log(c, "== 1/6 simulate -> %s", corpus);
    if (stage_done(c, corpus)) {
        sbi_log(c, "   exists; kept");
    } else {
        sbi_simulate_options so;
        sbi_simulate_summary ss;
        memset(&so, 0, sizeof so);
        snprintf(partial, sizeof partial, "%s.partial", corpus);
        so.resume = stage_done(c, partial);
        SBI_CALL(sbi_simulate_run(c, t, &so, corpus, &ss));
        sbi_log(c, "   %lld simulations in %.1fs (%.0f/s, writes %.0f MB/s)", (long long)ss.n_simulations, ss.wall_s,
                ss.simulations_per_s, ss.write_mb_per_s);
    }

    sbi_log(c, "== 2/6 train -> %s", model);
    if (stage_done(c, model)) {
        sbi_log(c, "   exists; kept");
    } else {
        sbi_train_options to;
        sbi_train_summary ts;
        char ckpt[4200];
        SBI_CALL(sbi_train_options_from_task(t, &to));
        if (max_epochs > 0) to.max_epochs = (int)max_epochs;
        snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
        to.resume = stage_done(c, ckpt);
        SBI_CALL(sbi_train_run(c, t, corpus, &to, model, &ts));
        sbi_log(c, "   %d epochs in %.1fs, %.0f samples/s, best validation loss %.4f", ts.epochs, ts.wall_s,
                ts.train_samples_per_s, ts.best_val_loss);
    }

    sbi_log(c, "== 3/6 sbc -> %s", sbc);
    {
        sbi_sbc_options o;
        sbi_sbc_summary s;
        sbi_sbc_options_default(&o);
        o.n_samples = (int)sbc_samples;
        SBI_CALL(sbi_sbc_run(c, model, corpus, &o, sbc, &s));
        for (int l = 0; l < s.n_levels; ++l)
            sbi_log(c, "   coverage at %.2f: %.3f (%lld cases)", s.levels[l], s.coverage[l], (long long)s.n_cases);
        sbi_sbc_summary_free(&s);
    }

    sbi_log(c, "== 4/6 infer -> %s", post);
    {
        sbi_infer_options io;
        sbi_infer_result r;
        SBI_MALLOC(obs_paths, t->n_datasets);
        SBI_MALLOC(names, t->n_datasets);
        SBI_MALLOC(paths, t->n_datasets);
        SBI_MALLOC(truth, t->n_params);
        SBI_CALL(write_observation(c, t, corpus, dir, obs_paths, truth));
        for (int d = 0; d < t->n_datasets; ++d) {
            names[d] = t->datasets[d].name;
            paths[d] = obs_paths[d];
        }
        memset(&io, 0, sizeof io);
        io.n_samples = (int)n_samples;
        io.n_obs = t->n_datasets;
        io.obs_names = names;
        io.obs_paths = paths;
        SBI_CALL(sbi_infer_run(c, t, model, &io, post, &r));
        sbi_log(c, "   %lld samples in %.3fs", (long long)r.n_samples, r.sample_s);
        sbi_log(c, "   %-14s %12s %12s %12s", "parameter", "truth", "median", "68% interval");
        for (int j = 0; j < t->n_params; ++j)
            sbi_log(c, "   %-14s %12.5g %12.5g [%.5g, %.5g] %s", t->params[j].name, truth[j], r.median[j],
                    r.lower68[j], r.upper68[j], t->params[j].unit);
        compare_exact(c, t, &io, &r);
        sbi_infer_result_free(&r);

        sbi_log(c, "== 5/6 predictive -> %s", ppc);
        {
            sbi_ppc_options po;
            sbi_ppc_summary ps;
            sbi_ppc_options_default(&po);
            po.max_cases = 50;
            po.n_samples = 128;
            po.n_forward = 32;
            SBI_CALL(sbi_ppc_run(c, t, model, corpus, &po, ppc, &ps));
            for (int d = 0; d < ps.n_datasets; ++d)
                sbi_log(c, "   %s: %.0f%% interval covers %.3f of the observed points, CRPS %.4g (%lld cases)",
                        t->datasets[d].name, 100 * po.level, ps.stats[0 * ps.n_datasets + d],
                        ps.stats[4 * ps.n_datasets + d], (long long)ps.n_cases);
            sbi_ppc_summary_free(&ps);
        }

        sbi_log(c, "== 6/6 sensitivity -> %s", sens);
        {
            sbi_sens_options so;
            double *x = NULL, *sigma = NULL;
            int st;
            sbi_sens_options_default(&so);
            SBI_MALLOC(x, t->n_outputs);
            SBI_MALLOC(sigma, t->n_outputs);
            st = sbi_infer_read_observation(t, &io, x, sigma);
            SBI_AGREE(c, st);
            SBI_CALL(sbi_sens_run(c, t, post, x, sigma, NULL, paths[0], &so, sens, NULL));
            free(x);
            free(sigma);
        }
    }
    make_figures(c, dir);
    sbi_log(c, "done in %.1fs: %s", sbi_wtime() - t0, dir);
    free(obs_paths);
    free(names);
    free(paths);
    free(truth);
    sbi_task_destroy(&t);
    return 0;
}
