/* Task files: the YAML description of one retrieval problem, its priors,
 * parameter spaces and fingerprint.
 *
 * A task is loaded once (sbi_task_load) and is immutable afterwards: every
 * field below is read-only for the rest of the program.  sbi_task_destroy
 * frees it.  All strings are owned by the task.
 */
#ifndef EXOSBI_TASK_H
#define EXOSBI_TASK_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "exosbi/core.h"

#define SBI_NAME_MAX 64
#define SBI_PATH_MAX 4096
/* Version of the preprocessing (normalisation) recipe; part of the fingerprint. */
#define SBI_PREPROCESSING_VERSION 1

typedef enum {
    SBI_PRIOR_UNIFORM = 0,      /* low, high */
    SBI_PRIOR_LOG_UNIFORM,      /* low, high > 0 */
    SBI_PRIOR_NORMAL,           /* mean, std */
    SBI_PRIOR_TRUNCATED_NORMAL  /* mean, std, low, high */
} sbi_prior_kind;

typedef struct sbi_param {
    char name[SBI_NAME_MAX];
    char unit[SBI_NAME_MAX];
    char label[SBI_NAME_MAX];
    sbi_prior_kind prior;
    double low, high;  /* uniform, log_uniform, truncated_normal */
    double mean, std;  /* normal, truncated_normal */
} sbi_param;

typedef enum {
    SBI_MODALITY_SPECTRUM = 0,
    SBI_MODALITY_PHOTOMETRY,
    SBI_MODALITY_TIME_SERIES,
    SBI_MODALITY_AUXILIARY
} sbi_modality;

typedef struct sbi_dataset {
    char name[SBI_NAME_MAX];
    sbi_modality modality;
    int size;             /* number of values of one observation of this dataset */
    double *coordinates;  /* (size) or NULL for a vector without coordinates */
    double *uncertainty;  /* (size): the 1-sigma observational uncertainty per point */
    int has_min, has_max; /* optional value constraints: rows outside are invalid */
    double value_min, value_max;
    int64_t offset;       /* first column of this dataset in the concatenated observation vector */
} sbi_dataset;

typedef enum { SBI_SPLIT_SEQUENTIAL = 0, SBI_SPLIT_RANDOM } sbi_split_policy;
typedef enum { SBI_NOISE_OBSERVATIONAL = 0, SBI_NOISE_NONE } sbi_noise_mode;
enum { SBI_SPLIT_TRAIN = 0, SBI_SPLIT_VALIDATION = 1, SBI_SPLIT_TEST = 2, SBI_N_SPLITS = 3 };
extern const char *const sbi_split_names[SBI_N_SPLITS]; /* "train", "validation", "test" */

typedef struct sbi_task {
    char path[SBI_PATH_MAX];  /* the file it was read from ("" when built from text) */
    char name[256];
    char version[64];

    int n_params;
    sbi_param *params;        /* (n_params), in task order = the order everywhere */

    char family[SBI_NAME_MAX];    /* forward_model.family */
    cJSON *forward_settings;      /* forward_model.settings as JSON (an object, maybe empty) */
    char plugin_library[SBI_PATH_MAX]; /* resolved path, plugin family only */

    int n_datasets;
    sbi_dataset *datasets;    /* (n_datasets) */
    int64_t n_outputs;        /* sum of dataset sizes: length of one observation vector */

    int64_t n_simulations;
    int batch_size;
    uint64_t seed;
    int64_t split_counts[SBI_N_SPLITS]; /* resolved counts; they sum to n_simulations */
    int splits_are_fractions;  /* 1: split_fractions define the counts for any n_simulations;
                                * 0: the counts were given and hold for this n_simulations only */
    double split_fractions[SBI_N_SPLITS]; /* the given fractions (splits_are_fractions only) */
    sbi_split_policy split_policy;
    uint64_t split_seed;
    sbi_noise_mode noise;

    cJSON *training;          /* the `training` mapping (an object, maybe empty) */
    cJSON *json;              /* the whole task as JSON (stored in every output file) */
    char fingerprint[65];     /* SHA-256 hex of the canonical fingerprint payload */
} sbi_task;

/* Dataset `{file: PATH, column: K}` references read whitespace- or comma-separated
 * text columns (K counts from 0; `#` starts a comment), relative to the task file. */

/* Parse and validate a task file.  Any problem is SBI_ERR_INPUT with a message
 * "file:line:column: key.path: what is wrong". */
int sbi_task_load(const char *path, sbi_task **task);
/* The same from YAML text; `origin` names it in messages and resolves relative paths. */
int sbi_task_load_text(const char *text, const char *origin, sbi_task **task);
/* Rebuild a task from the JSON stored in an output file (paths already resolved). */
int sbi_task_from_json(const char *json_text, const char *origin, sbi_task **task);
void sbi_task_destroy(sbi_task **task);

/* Change the number of simulations (the -n flag), rescaling fractional splits.
 * Splits given as counts only hold for their own total: any other n is
 * SBI_ERR_INPUT.  task->json follows the change; the fingerprint does not. */
int sbi_task_set_n_simulations(sbi_task *task, int64_t n);

/* The canonical JSON payload that is hashed into the fingerprint (caller frees). */
int sbi_task_fingerprint_payload(const sbi_task *task, char **json_text);
/* Compare the fingerprint payloads of two tasks.  When they differ, returns
 * SBI_ERR_INCOMPATIBLE with a message listing the differing fields, headed
 * by `what` ("model MODEL.h5 was trained on a different task"). */
int sbi_task_compare(const sbi_task *expected, const sbi_task *found, const char *what);

int sbi_task_param_index(const sbi_task *task, const char *name); /* -1 when absent */
int sbi_task_dataset_index(const sbi_task *task, const char *name);

/* ---- priors and parameter spaces ----------------------------------------
 * physical: the parameter as the user writes it.
 * cube: the prior CDF, in (0, 1).
 * unconstrained: logit(cube) for bounded priors; (x - mean) / std for normal.
 * Every map is elementwise over the n_params columns of row-major (n, n_params)
 * arrays; in and out may alias.  The log|det Jacobian| functions return, per
 * row, log|d out / d in| summed over parameters. */
typedef enum { SBI_SPACE_PHYSICAL = 0, SBI_SPACE_CUBE, SBI_SPACE_UNCONSTRAINED } sbi_space;

double sbi_prior_log_density(const sbi_task *task, const double *theta); /* one row, physical; -inf outside */
int sbi_prior_in_support(const sbi_task *task, const double *theta);
/* Physical value of one parameter from its cube value u in (0, 1).  A cube
 * value near 1 carries absolute, not relative, precision, so deep upper tails
 * are better reached through the unconstrained maps below. */
double sbi_prior_from_cube(const sbi_param *p, double u);
double sbi_prior_to_cube(const sbi_param *p, double x);
/* One parameter between physical and unconstrained space.  Both directions
 * go through the log prior mass below and above x, never through a rounded
 * cube value, so they keep full relative precision in both tails. */
double sbi_prior_to_unconstrained(const sbi_param *p, double x);
double sbi_prior_from_unconstrained(const sbi_param *p, double z);
/* Log prior density of one parameter at physical x; -inf outside its support. */
double sbi_prior_param_log_density(const sbi_param *p, double x);

/* Standard normal CDF and its inverse.  The CDF keeps relative precision in
 * its lower tail (use Phi(-x) for an upper tail); the quantile is within a
 * few ulp of the exact one for any p in (0, 1). */
double sbi_normal_cdf(double x);
double sbi_normal_quantile(double p);

void sbi_space_physical_to_cube(const sbi_task *t, int64_t n, const double *x, double *u);
void sbi_space_cube_to_physical(const sbi_task *t, int64_t n, const double *u, double *x);
void sbi_space_physical_to_unconstrained(const sbi_task *t, int64_t n, const double *x, double *z);
void sbi_space_unconstrained_to_physical(const sbi_task *t, int64_t n, const double *z, double *x);
/* log|dz/dx| per row, for z = physical_to_unconstrained(x). */
void sbi_space_log_jacobian_unconstrained(const sbi_task *t, int64_t n, const double *x, double *logdet);

#endif
