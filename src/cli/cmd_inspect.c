/* exosbi inspect FILE [--json]: what a task, corpus, model or report holds. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exosbi/h5file.h"
#include "exosbi/task.h"

static void help(void)
{
    printf("usage: exosbi inspect FILE [--json]\n\n"
           "Describe a task file (parameters, datasets, fingerprint) or an exosbi HDF5 file\n"
           "(corpus, model, checkpoint, SBC report, posterior): its format, attributes and datasets.\n"
           "With --json, a task prints {\"fingerprint\", \"payload\"} (the canonical JSON that is hashed),\n"
           "an HDF5 file its structure as JSON.\n");
}

static const char *prior_name(sbi_prior_kind k)
{
    switch (k) {
    case SBI_PRIOR_UNIFORM: return "uniform";
    case SBI_PRIOR_LOG_UNIFORM: return "log_uniform";
    case SBI_PRIOR_NORMAL: return "normal";
    default: return "truncated_normal";
    }
}

static int inspect_task(const sbi_comm *c, const char *path, int json)
{
    sbi_task *t = NULL;
    char *payload = NULL;
    SBI_CALL(sbi_task_load(path, &t));
    SBI_CALL(sbi_task_fingerprint_payload(t, &payload));
    if (c->rank == 0) {
        if (json) {
            printf("{\"fingerprint\": \"%s\", \"payload\": %s}\n", t->fingerprint, payload);
        } else {
            printf("task %s (version %s) from %s\n", t->name, t->version, path);
            printf("fingerprint %s\n", t->fingerprint);
            printf("forward model: %s\n", t->family);
            printf("%d parameters:\n", t->n_params);
            for (int j = 0; j < t->n_params; ++j) {
                const sbi_param *p = &t->params[j];
                printf("  %-16s %-16s", p->name, prior_name(p->prior));
                if (p->prior == SBI_PRIOR_NORMAL) printf(" mean %g std %g", p->mean, p->std);
                else if (p->prior == SBI_PRIOR_TRUNCATED_NORMAL)
                    printf(" mean %g std %g on [%g, %g]", p->mean, p->std, p->low, p->high);
                else printf(" [%g, %g]", p->low, p->high);
                printf("%s%s\n", p->unit[0] ? " " : "", p->unit);
            }
            printf("%d datasets, %lld values in all:\n", t->n_datasets, (long long)t->n_outputs);
            for (int d = 0; d < t->n_datasets; ++d)
                printf("  %-16s %d values%s\n", t->datasets[d].name, t->datasets[d].size,
                       t->datasets[d].coordinates ? " with coordinates" : "");
            printf("simulation: %lld simulations (train %lld, validation %lld, test %lld), batch %d, seed %llu\n",
                   (long long)t->n_simulations, (long long)t->split_counts[0], (long long)t->split_counts[1],
                   (long long)t->split_counts[2], t->batch_size, (unsigned long long)t->seed);
        }
        fflush(stdout);
    }
    free(payload);
    sbi_task_destroy(&t);
    return 0;
}

int sbi_cli_inspect(const sbi_comm *c, int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
                                             {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
                                             {0, 0, 0, 0}};
    int json = 0, ch;
    const char *path, *dot;
    char *text = NULL, *format = NULL;
    int64_t version = 0;

    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "jhqv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'q': sbi_cli_common_option("--quiet"); break;
        case 'v': sbi_cli_common_option("--verbose"); break;
        case 'h':
            if (c->rank == 0) help();
            return 0;
        default: return sbi_cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return sbi_cli_usage_error("inspect", "expected one FILE");
    path = argv[optind];
    dot = strrchr(path, '.');
    if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))) return inspect_task(c, path, json);
    SBI_CALL(sbi_h5_file_format(path, &format, &version));
    SBI_CALL(sbi_h5_describe_json(path, &text));
    if (c->rank == 0) {
        if (json) {
            printf("%s\n", text);
        } else {
            cJSON *j = cJSON_Parse(text);
            char *pretty = j ? cJSON_Print(j) : NULL;
            printf("%s: %s, format version %lld\n%s\n", path, format, (long long)version, pretty ? pretty : text);
            free(pretty);
            cJSON_Delete(j);
        }
        fflush(stdout);
    }
    free(text);
    free(format);
    return 0;
}
