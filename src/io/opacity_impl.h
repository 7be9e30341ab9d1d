/* Private helpers shared by the opacity readers of src/io (opacity_cia.c,
 * opacity_lines.c): opening a foreign (not exosbi-written) HDF5 file,
 * reading whole numeric datasets with their shape checked, the `units`
 * attribute, and the checks every grid must pass.  Every message names the
 * file and the dataset. */
#ifndef EXOSBI_IO_OPACITY_IMPL_H
#define EXOSBI_IO_OPACITY_IMPL_H

#include <hdf5.h>
#include <stdint.h>

#include "exosbi/core.h"
#include "exosbi/opacity_io.h"
#include "exosbi/rt.h"

/* CIA coefficients in cm^-1 amagat^-2 become cm^5 molecule^-2 on division
 * by the square of the Loschmidt number (shared/data/opacity/README.md). */
#define CIA_AMAGAT_FACTOR (1.0 / (SBI_RT_LOSCHMIDT * SBI_RT_LOSCHMIDT))

/* Open an HDF5 file read-only (SBI_ERR_IO naming it when that fails). */
int sbi__opac_h5_open(const char *path, hid_t *file);
/* Whether the root of `file` has a link `name`. */
int sbi__opac_h5_has(hid_t file, const char *name);
/* Rank (0 for a scalar) and dims of dataset `name`; SBI_ERR_IO naming file
 * and dataset when it is missing or has more than 4 dimensions. */
int sbi__opac_h5_shape(hid_t file, const char *path, const char *name, int *rank, int64_t dims[4]);
/* Read all of numeric dataset `name` as doubles (malloc'ed; *n values),
 * refusing anything that is not an integer or float dataset. */
int sbi__opac_h5_read_all(hid_t file, const char *path, const char *name, double **data, int64_t *n);
/* The `units` attribute of dataset `name` (malloc'ed), or NULL when it has
 * none; with `required`, a missing attribute is SBI_ERR_IO. */
int sbi__opac_h5_units(hid_t file, const char *path, const char *name, int required, char **units);
/* The first string of dataset `name` (1-D list or scalar) into out[cap];
 * "" when the dataset is absent or not a string. */
void sbi__opac_h5_first_string(hid_t file, const char *name, char *out, size_t cap);
/* All strings of a 1-D string dataset `name` (at most `max`), into out. */
int sbi__opac_h5_strings(hid_t file, const char *path, const char *name, int max, char out[][16], int *n);

/* Multiply-by factor from `units` to the wanted unit: kind is "pressure"
 * (bar), "temperature" (K), "wavenumber" (cm^-1), "cross section"
 * (cm^2 molecule^-1) or "cia" (cm^5 molecule^-2; `cm^-1` is read as
 * petitRADTRANS writes it, cm^-1 amagat^-2).  NULL units give the
 * documented unit of the format (factor from `fallback`).  An unknown unit
 * is SBI_ERR_IO naming file and dataset. */
int sbi__opac_units_factor(const char *path, const char *name, const char *kind, const char *units, double fallback,
                           double *factor);

/* Check values (n) are finite, > 0 and strictly increasing (a grid). */
int sbi__opac_check_grid(const char *path, const char *name, int64_t n, const double *v);
/* Check values (n) of a table of coefficients are finite, and set negative
 * ones to zero, as petitRADTRANS's loaders do. */
int sbi__opac_check_table(const char *path, const char *name, int64_t n, double *v);

/* The arrays of a (P, T) table that rank 0 of c holds, on every rank of c:
 * p (n_p) and t (n_t) [double] and v (n_v) [float] are allocated on the
 * other ranks (a failed allocation is agreed on, naming `what`) and
 * broadcast from rank 0.  Collective over c. */
int sbi__opac_bcast_pt_table(const sbi_comm *c, int n_p, int n_t, size_t n_v, double **p, double **t, float **v,
                             const char *what);

#endif
