/* Small serial HDF5 files: models, checkpoints, reports and posteriors.
 *
 * These are written by one rank (the caller decides which) through HDF5's
 * default driver, as one file with a `format` and `format_version` attribute at
 * its root.  Writers create PATH.partial and rename it to PATH on
 * sbi_h5w_commit, so a crash never leaves a half-written PATH.
 * Paths of datasets may contain groups ("history/val_loss"); missing groups are
 * created.  This module and corpus.h are the only places that call HDF5.
 */
#ifndef EXOSBI_H5FILE_H
#define EXOSBI_H5FILE_H

#include <stdint.h>

#include "exosbi/core.h"

typedef struct sbi_h5w_s *sbi_h5w;
typedef struct sbi_h5r_s *sbi_h5r;

int sbi_h5w_create(const char *path, const char *format, int format_version, sbi_h5w *w);
/* Attributes on the root (obj = NULL or "/") or on an existing group/dataset path. */
int sbi_h5w_attr_string(sbi_h5w w, const char *obj, const char *name, const char *value);
int sbi_h5w_attr_double(sbi_h5w w, const char *obj, const char *name, double value);
int sbi_h5w_attr_int64(sbi_h5w w, const char *obj, const char *name, int64_t value);
/* Datasets of rank 1 or 2 (dims[0] x dims[1]); rank 0 is rejected. */
int sbi_h5w_float(sbi_h5w w, const char *path, int rank, const int64_t *dims, const float *data);
int sbi_h5w_double(sbi_h5w w, const char *path, int rank, const int64_t *dims, const double *data);
int sbi_h5w_int64(sbi_h5w w, const char *path, int rank, const int64_t *dims, const int64_t *data);
/* A 1-D dataset of strings (parameter names, say). */
int sbi_h5w_strings(sbi_h5w w, const char *path, int n, const char *const *strings);
/* Close, flush and rename PATH.partial to PATH. */
int sbi_h5w_commit(sbi_h5w *w);
/* Close and delete PATH.partial (error paths); NULL-safe. */
void sbi_h5w_abort(sbi_h5w *w);

/* Open for reading, checking the root `format` attribute equals `format`
 * (NULL accepts any).  A missing, truncated or foreign file is SBI_ERR_IO
 * naming the path. */
int sbi_h5r_open(const char *path, const char *format, sbi_h5r *r);
void sbi_h5r_close(sbi_h5r *r);
const char *sbi_h5r_path(sbi_h5r r);
int sbi_h5r_has(sbi_h5r r, const char *path);
/* String attributes are returned malloc'ed (caller frees). */
int sbi_h5r_attr_string(sbi_h5r r, const char *obj, const char *name, char **value);
int sbi_h5r_attr_double(sbi_h5r r, const char *obj, const char *name, double *value);
int sbi_h5r_attr_int64(sbi_h5r r, const char *obj, const char *name, int64_t *value);
/* Dataset shape: rank and dims (up to 2). */
int sbi_h5r_shape(sbi_h5r r, const char *path, int *rank, int64_t dims[2]);
/* Read a whole dataset into a malloc'ed buffer (caller frees); dims may be NULL. */
int sbi_h5r_float(sbi_h5r r, const char *path, float **data, int *rank, int64_t dims[2]);
int sbi_h5r_double(sbi_h5r r, const char *path, double **data, int *rank, int64_t dims[2]);
int sbi_h5r_int64(sbi_h5r r, const char *path, int64_t **data, int *rank, int64_t dims[2]);
int sbi_h5r_strings(sbi_h5r r, const char *path, int *n, char ***strings); /* free each, then the array */

/* Identify a file for `exosbi inspect`: its root format attribute (malloc'ed). */
int sbi_h5_file_format(const char *path, char **format, int64_t *format_version);
/* A JSON summary of every group, dataset (shape, type) and root attribute (caller frees). */
int sbi_h5_describe_json(const char *path, char **json_text);

#endif
