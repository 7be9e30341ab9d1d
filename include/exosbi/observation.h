/* Observed data, one file per dataset, as petitRADTRANS reads them.
 *
 * Text files (sbi_observation_read_text).  Columns, whitespace- or
 * comma-separated, `#` starts a comment:
 *   1: value                       (a dataset without coordinates)
 *   2: value uncertainty
 *   3: coordinate value uncertainty (petitRADTRANS' 3-column files)
 *   4: coordinate bin_width value uncertainty (petitRADTRANS' 4-column files)
 * Every row must have the same number of columns; NaN/inf are refused
 * (SBI_ERR_INPUT naming path:line).  Text files carry no units.
 *
 * FITS files (sbi_observation_read_fits, CFITSIO).  The spectrum is a binary
 * (or ASCII) table with one row per point: the JWST pipeline's x1d product
 * (extension EXTRACT1D with WAVELENGTH, FLUX, FLUX_ERROR) and petitRADTRANS'
 * own layout (extension SPECTRUM with WAVELENGTH, FLUX and ERROR and/or a
 * COVARIANCE column whose cells hold one row of the N x N matrix).  The table
 * is the extension named in CFITSIO's syntax PATH[EXTNAME] or PATH[N]
 * (N counts extensions from 1; 0 is the primary array), else the first table
 * HDU that has both WAVELENGTH and FLUX columns.  The uncertainty is
 * FLUX_ERROR, else ERROR, else the square root of the covariance diagonal,
 * else absent (the task's uncertainty is then used).  Column names are matched
 * without regard to case.
 *
 * Units: the TUNITn strings of the coordinate, value and uncertainty columns
 * are kept in coordinate_unit, value_unit and uncertainty_unit (empty when
 * absent).  A wavelength in a recognised length unit (um, micron, nm,
 * Angstrom, m, cm) is converted to micrometres, petitRADTRANS' wavelength
 * unit and the unit of the task's coordinates; coordinate_unit then reads
 * "um" and coordinate_unit_original keeps the file's string.  Values and
 * uncertainties are never converted: the task's datasets carry no unit, so
 * the file must be in the unit the model was trained on (a JWST x1d FLUX is
 * in Jy, petitRADTRANS' emission models in W m-2 um-1).
 *
 * Missing points.  JWST marks bad pixels with NaN.  A FITS row whose
 * wavelength, value or uncertainty is not finite is kept in place with
 * missing[i] = 1 (its value and uncertainty are then NaN) and counted in
 * n_missing; the reader never fails on them.  What to do with them is the
 * caller's decision (infer refuses observations with missing points that a
 * rebinning does not fill, see include/exosbi/infer.h).
 */
#ifndef EXOSBI_OBSERVATION_H
#define EXOSBI_OBSERVATION_H

#include <stdint.h>

#include "exosbi/core.h"

#define SBI_OBS_UNIT_MAX 72

typedef struct sbi_observation {
    char path[4096];     /* the path as given, with any [HDU] suffix */
    char source[4200];   /* where the numbers came from: path, or path[HDU n EXTNAME] */
    int is_fits;
    int n_columns;       /* text: 1..4; FITS: 3, or 4 with a covariance column */
    int64_t n;
    double *coordinate;  /* (n) or NULL */
    double *bin_width;   /* (n) or NULL */
    double *value;       /* (n) */
    double *uncertainty; /* (n) or NULL */
    double *covariance;  /* (n, n) row-major or NULL (FITS COVARIANCE column) */
    unsigned char *missing; /* (n) 1 where a point is missing, or NULL when none is */
    int64_t n_missing;
    char coordinate_unit[SBI_OBS_UNIT_MAX], value_unit[SBI_OBS_UNIT_MAX], uncertainty_unit[SBI_OBS_UNIT_MAX];
    char coordinate_unit_original[SBI_OBS_UNIT_MAX];
} sbi_observation;

/* Bad content is SBI_ERR_INPUT naming path:line. */
int sbi_observation_read_text(const char *path, sbi_observation *obs);
/* Bad content is SBI_ERR_INPUT naming the file and the HDU or column. */
int sbi_observation_read_fits(const char *path, sbi_observation *obs);
/* Either reader: FITS when the path ends in [HDU], has a .fits/.fit/.fts
 * name (optionally .gz), or the file starts with a FITS header; text otherwise. */
int sbi_observation_read(const char *path, sbi_observation *obs);
void sbi_observation_free(sbi_observation *obs);

/* A square text matrix (n, n) as in the text files above: one row per line,
 * whitespace or commas, `#` comments.  It must be finite, symmetric to 1e-8
 * relative to its largest diagonal element, and positive definite; otherwise
 * SBI_ERR_INPUT naming path:line (or path alone for definiteness).  *n
 * receives its size; *matrix is malloc'd (row-major). */
int sbi_observation_read_matrix(const char *path, int64_t *n, double **matrix);
/* Symmetric positive definite check by a Cholesky factorisation of a copy:
 * 0 when it is, else the (1-based) order of the first non-positive pivot. */
int64_t sbi_matrix_not_positive_definite(int64_t n, const double *a);

/* ---- flux-conserving rebinning ----------------------------------------------
 * Both spectra are piecewise constant over their bins.  Source bins: from the
 * observation's bin widths (coordinate +- width / 2, petitRADTRANS' 4-column
 * files) when it has them, else from
 * neighbouring centres (edges half-way between neighbours; the outer edges
 * mirror the nearest inner ones).  Target bins: from the target centres in
 * the same way.  Target value j is the overlap-weighted mean of the source
 * values that are not missing,
 *   y_j = sum_i o_ij v_i / sum_i o_ij,   o_ij = |bin i intersect bin j|,
 * which conserves the integral of the spectrum over every target bin that
 * the source covers; its uncertainty treats the source errors as independent,
 *   s_j = sqrt(sum_i o_ij^2 s_i^2) / sum_i o_ij,
 * and with a source covariance C the target covariance is W C W^T, W_ij =
 * o_ij / sum_i o_ij.  A target bin is missing when the source's valid points
 * cover less than SBI_REBIN_MIN_COVERAGE of its width (beyond the source's
 * range, or in a gap of missing points), or when no stated source bin
 * overlaps it.  Coverage is measured on the source bins tiled from
 * neighbouring centres even when widths are given, so that gaps between
 * narrower stated bins (petitRADTRANS' example files list bins about half as
 * wide as their spacing) do not count as missing data; with stated widths a
 * target bin inside a detector gap is still missing, as no stated bin reaches
 * it (without widths the bins beside a gap extend half-way across it).  The
 * source coordinates may increase or decrease (they are reordered); they must
 * be strictly monotonic, as must the target centres (increasing), else
 * SBI_ERR_INPUT. */
#define SBI_REBIN_MIN_COVERAGE 0.5

typedef struct sbi_rebin {
    int64_t n_out, n_in;
    int64_t *start, *count; /* (n_out): target j uses entries start[j] .. start[j] + count[j] - 1 of: */
    int64_t *row;           /* the source rows, and */
    double *weight;         /* their weights W_ij */
    double *coverage;       /* (n_out): valid overlap over the target bin width */
    int64_t n_missing;      /* targets below SBI_REBIN_MIN_COVERAGE */
} sbi_rebin;

/* Build the operator for obs onto the n_out increasing target centres. */
int sbi_rebin_make(const sbi_observation *obs, int64_t n_out, const double *centres, sbi_rebin *rb);
/* Apply it: value, uncertainty (may be NULL when the observation has none),
 * missing (n_out, 1 where missing) and, when obs has one, covariance (n_out,
 * n_out; may be NULL to skip).  Missing targets get NaN. */
void sbi_rebin_apply(const sbi_rebin *rb, const sbi_observation *obs, double *value, double *uncertainty,
                     unsigned char *missing, double *covariance);
/* W C W^T for a source covariance C (n_in, n_in) into out (n_out, n_out). */
void sbi_rebin_covariance(const sbi_rebin *rb, const double *c_in, double *c_out);
void sbi_rebin_free(sbi_rebin *rb);

#endif
