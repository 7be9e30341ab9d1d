/* Observed data read from text files, one file per dataset.
 *
 * Columns (whitespace- or comma-separated, `#` starts a comment):
 *   1: value                       (a dataset without coordinates)
 *   2: value uncertainty
 *   3: coordinate value uncertainty (petitRADTRANS' 3-column files)
 *   4: coordinate bin_width value uncertainty (petitRADTRANS' 4-column files)
 * Every row must have the same number of columns; NaN/inf are refused.
 */
#ifndef EXOSBI_OBSERVATION_H
#define EXOSBI_OBSERVATION_H

#include <stdint.h>

#include "exosbi/core.h"

typedef struct sbi_observation {
    char path[4096];
    int64_t n;
    int n_columns;
    double *coordinate;  /* (n) or NULL */
    double *bin_width;   /* (n) or NULL */
    double *value;       /* (n) */
    double *uncertainty; /* (n) or NULL */
} sbi_observation;

/* Bad content is SBI_ERR_INPUT naming path:line. */
int sbi_observation_read_text(const char *path, sbi_observation *obs);
void sbi_observation_free(sbi_observation *obs);

#endif
