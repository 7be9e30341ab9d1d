/* exosbi train TASK CORPUS.h5 -o MODEL.h5 [options] */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/train.h"

static void help(void)
{
    printf("usage: exosbi train TASK CORPUS.h5 -o MODEL.h5 [options]\n\n"
           "Train a neural posterior estimator on a corpus, data-parallel over the MPI ranks.\n"
           "Defaults come from the task's `training` section; flags override them.\n\n"
           "  -o, --output MODEL.h5     the trained model (written as MODEL.h5.partial, then renamed)\n"
           "      --estimator NAME      flow family: affine (coupling), nsf (rational-quadratic spline\n"
           "                            coupling), maf (masked autoregressive), naf (neural\n"
           "                            autoregressive), fmpe (flow matching; its loss is the FM loss)\n"
           "      --embedding NAME      observation encoder: mlp; conv1d (spectra of >= 16 points); or the\n"
           "                            dataset-aware conv1d_full, patch, photometry, hierarchical\n"
           "      --n-sigmoids N --bisection-steps N       naf transform (8) and inverse (50)\n"
           "      --ode-solver rk_adaptive|midpoint --ode-steps N  fmpe sampling (PETSc TS; -ts_* options\n"
           "                            through PETSC_OPTIONS) or a fixed midpoint rule (50 steps)\n"
           "      --time-features K     fmpe: the velocity network sees t and sin, cos(pi 2^k t), k < K (4)\n"
           "      --n-bins N            spline bins, nsf (10)   --tail-bound B  spline interval [-B, B] (3)\n"
           "      --batch-size N        global mini-batch, summed over ranks (256)\n"
           "      --learning-rate X     Adam(W) step size (1e-3)\n"
           "      --max-epochs N        (200)      --min-epochs N   (5)\n"
           "      --patience N          early stopping after N epochs without improvement (20)\n"
           "      --min-delta X         smallest validation improvement that counts (1e-4)\n"
           "      --clip-norm X         global gradient-norm clipping, 0 = off (5)\n"
           "      --weight-decay X      AdamW decoupled weight decay (0)\n"
           "      --lr-decay-patience N halve the learning rate after N epochs without improvement (5; 0 = off)\n"
           "      --lr-decay-factor X   the factor (0.5)   --min-learning-rate X  floor (1e-6)\n"
           "      --lr-schedule NAME    plateau (halve on plateaus; default), cosine (warm-up, then a half\n"
           "                            cosine to --min-learning-rate), constant\n"
           "      --warmup-fraction X   cosine warm-up as a fraction of the schedule (0.02)\n"
           "      --warmup-epochs X     cosine warm-up in epochs (overrides the fraction)\n"
           "      --schedule-epochs X   cosine schedule length in epochs (--max-epochs)\n"
           "      --noise-multiplier X  add X times the observational noise to each training batch (0)\n"
           "      --noise-min-scale X   floor of that noise: X times the dataset's median sigma (0)\n"
           "      --parameter-noise-floor X  jitter the unconstrained parameter targets by N(0, X^2) (0)\n"
           "      --seed N              weight initialisation and shuffling (the task's seed)\n"
           "      --embed-dim N --embed-hidden N --embed-layers N\n"
           "      --n-transforms N --hidden N --hidden-layers N   network sizes\n"
           "      --cache-mb N          per-rank bound on cached corpus rows (1024)\n"
           "      --resume              continue from MODEL.h5.ckpt after an interruption\n"
           "      --verify-sync         check after every step that all ranks hold identical weights\n"
           "      --stop-after-epochs N stop after N epochs, leaving the checkpoint (for staged jobs)\n"
           "      --json                print {epochs, best_val_loss, train_samples_per_s, wall_s} on stdout\n"
           "  -q, --quiet  -v, --verbose  -h, --help\n");
}

int sbi_cli_train(const sbi_comm *c, int argc, char **argv)
{
    enum { O_EST = 256, O_BS, O_LR, O_MAXE, O_MINE, O_PAT, O_MIND, O_CLIP, O_WD, O_SEED, O_ED, O_EH, O_EL, O_NT,
           O_HID, O_HL, O_CACHE, O_LRP, O_LRF, O_LRMIN, O_EMB, O_NBINS, O_TAIL, O_SCHED, O_WFRAC, O_WEP, O_SEP, O_NMUL, O_NMIN, O_PNF, O_NSIG, O_BIS, O_ODE, O_ODES, O_TF, O_RESUME, O_SYNC, O_STOP, O_JSON };
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"estimator", required_argument, 0, O_EST},
        {"batch-size", required_argument, 0, O_BS}, {"learning-rate", required_argument, 0, O_LR},
        {"max-epochs", required_argument, 0, O_MAXE}, {"min-epochs", required_argument, 0, O_MINE},
        {"patience", required_argument, 0, O_PAT}, {"min-delta", required_argument, 0, O_MIND},
        {"clip-norm", required_argument, 0, O_CLIP}, {"weight-decay", required_argument, 0, O_WD},
        {"seed", required_argument, 0, O_SEED}, {"embed-dim", required_argument, 0, O_ED},
        {"embed-hidden", required_argument, 0, O_EH}, {"embed-layers", required_argument, 0, O_EL},
        {"n-transforms", required_argument, 0, O_NT}, {"hidden", required_argument, 0, O_HID},
        {"hidden-layers", required_argument, 0, O_HL}, {"cache-mb", required_argument, 0, O_CACHE},
        {"lr-decay-patience", required_argument, 0, O_LRP}, {"lr-decay-factor", required_argument, 0, O_LRF},
        {"min-learning-rate", required_argument, 0, O_LRMIN}, {"embedding", required_argument, 0, O_EMB},
        {"n-bins", required_argument, 0, O_NBINS}, {"tail-bound", required_argument, 0, O_TAIL},
        {"lr-schedule", required_argument, 0, O_SCHED}, {"warmup-fraction", required_argument, 0, O_WFRAC},
        {"warmup-epochs", required_argument, 0, O_WEP}, {"schedule-epochs", required_argument, 0, O_SEP},
        {"noise-multiplier", required_argument, 0, O_NMUL}, {"noise-min-scale", required_argument, 0, O_NMIN},
        {"parameter-noise-floor", required_argument, 0, O_PNF}, {"n-sigmoids", required_argument, 0, O_NSIG},
        {"bisection-steps", required_argument, 0, O_BIS}, {"ode-solver", required_argument, 0, O_ODE},
        {"ode-steps", required_argument, 0, O_ODES}, {"time-features", required_argument, 0, O_TF},
        {"resume", no_argument, 0, O_RESUME}, {"verify-sync", no_argument, 0, O_SYNC},
        {"stop-after-epochs", required_argument, 0, O_STOP}, {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* Flags are applied after the task's defaults, so keep them until the task is read. */
    struct { int key; const char *val; } flags[64];
    int n_flags = 0, json = 0, ch, st;
    const char *out = NULL;
    sbi_task *task = NULL;
    sbi_train_options opt;
    sbi_train_summary sum;

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
        case O_JSON: json = 1; break;
        case '?': return sbi_cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        default:
            if (n_flags < 64) {
                flags[n_flags].key = ch;
                flags[n_flags].val = optarg;
                ++n_flags;
            }
        }
    }
    if (argc - optind != 2) return sbi_cli_usage_error("train", "expected TASK and CORPUS.h5");
    if (!out) return sbi_cli_usage_error("train", "missing -o MODEL.h5");
    SBI_CALL(sbi_task_load(argv[optind], &task));
    SBI_CALL(sbi_train_options_from_task(task, &opt));
    for (int i = 0; i < n_flags; ++i) {
        const char *v = flags[i].val;
        int64_t iv = 0;
        double dv = 0;
        switch (flags[i].key) {
        case O_EST: snprintf(opt.estimator, sizeof opt.estimator, "%s", v); break;
        case O_EMB: snprintf(opt.embedding, sizeof opt.embedding, "%s", v); break;
        case O_SCHED: snprintf(opt.lr_schedule, sizeof opt.lr_schedule, "%s", v); break;
        case O_ODE: snprintf(opt.ode_solver, sizeof opt.ode_solver, "%s", v); break;
        case O_WFRAC: SBI_CALL(sbi_cli_parse_double("train", "--warmup-fraction", v, &opt.warmup_fraction)); break;
        case O_WEP: SBI_CALL(sbi_cli_parse_double("train", "--warmup-epochs", v, &opt.warmup_epochs)); break;
        case O_SEP: SBI_CALL(sbi_cli_parse_double("train", "--schedule-epochs", v, &opt.schedule_epochs)); break;
        case O_NMUL: SBI_CALL(sbi_cli_parse_double("train", "--noise-multiplier", v, &opt.noise_multiplier)); break;
        case O_NMIN: SBI_CALL(sbi_cli_parse_double("train", "--noise-min-scale", v, &opt.noise_min_scale)); break;
        case O_PNF:
            SBI_CALL(sbi_cli_parse_double("train", "--parameter-noise-floor", v, &opt.parameter_noise_floor));
            break;
        case O_TAIL: SBI_CALL(sbi_cli_parse_double("train", "--tail-bound", v, &opt.tail_bound)); break;
        case O_RESUME: opt.resume = 1; break;
        case O_SYNC: opt.verify_sync = 1; break;
        case O_LR: SBI_CALL(sbi_cli_parse_double("train", "--learning-rate", v, &opt.learning_rate)); break;
        case O_MIND: SBI_CALL(sbi_cli_parse_double("train", "--min-delta", v, &opt.min_delta)); break;
        case O_CLIP: SBI_CALL(sbi_cli_parse_double("train", "--clip-norm", v, &opt.clip_norm)); break;
        case O_WD: SBI_CALL(sbi_cli_parse_double("train", "--weight-decay", v, &opt.weight_decay)); break;
        case O_LRF: SBI_CALL(sbi_cli_parse_double("train", "--lr-decay-factor", v, &opt.lr_decay_factor)); break;
        case O_LRMIN:
            SBI_CALL(sbi_cli_parse_double("train", "--min-learning-rate", v, &opt.min_learning_rate));
            break;
        default:
            {
                const char *name = "option";
                for (int k = 0; longopts[k].name; ++k)
                    if (longopts[k].val == flags[i].key) name = longopts[k].name;
                char opt_text[64];
                snprintf(opt_text, sizeof opt_text, "--%s", name);
                SBI_CALL(sbi_cli_parse_int64("train", opt_text, v, &iv));
            }
            switch (flags[i].key) {
            case O_BS: opt.batch_size = (int)iv; break;
            case O_MAXE: opt.max_epochs = (int)iv; break;
            case O_MINE: opt.min_epochs = (int)iv; break;
            case O_PAT: opt.patience = (int)iv; break;
            case O_SEED: opt.seed = (uint64_t)iv; break;
            case O_ED: opt.embed_dim = (int)iv; break;
            case O_EH: opt.embed_hidden = (int)iv; break;
            case O_EL: opt.embed_layers = (int)iv; break;
            case O_NT: opt.n_transforms = (int)iv; break;
            case O_HID: opt.hidden = (int)iv; break;
            case O_HL: opt.hidden_layers = (int)iv; break;
            case O_CACHE: opt.cache_mb = (int)iv; break;
            case O_LRP: opt.lr_decay_patience = (int)iv; break;
            case O_NBINS: opt.n_bins = (int)iv; break;
            case O_NSIG: opt.n_sigmoids = (int)iv; break;
            case O_BIS: opt.bisection_steps = (int)iv; break;
            case O_ODES: opt.ode_steps = (int)iv; break;
            case O_TF: opt.time_features = (int)iv; break;
            case O_STOP: opt.stop_after_epochs = (int)iv; break;
            }
            (void)dv;
        }
    }
    st = sbi_train_run(c, task, argv[optind + 1], &opt, out, &sum);
    sbi_task_destroy(&task);
    SBI_CALL(st);
    if (sum.epochs < 0) {
        sbi_log(c, "stopped as asked; continue with --resume");
        return 0;
    }
    if (json && c->rank == 0)
        printf("{\"epochs\": %d, \"best_val_loss\": %.8g, \"train_samples_per_s\": %.6g, \"wall_s\": %.6g}\n",
               sum.epochs, sum.best_val_loss, sum.train_samples_per_s, sum.wall_s);
    return 0;
}
