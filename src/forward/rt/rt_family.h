/* The ops tables of the radiative-transfer families, for the registry. */
#ifndef EXOSBI_RT_FAMILY_H
#define EXOSBI_RT_FAMILY_H

#include <cjson/cJSON.h>

#include "exosbi/forward.h"
#include "exosbi/rt.h"

extern const sbi_forward_ops sbi__forward_transmission_ops;
extern const sbi_forward_ops sbi__forward_emission_ops;

/* The bands of a photometric dataset, from its settings (filters.c).
 * band[i].lambda / .trans point into curve[i] (NULL for a top-hat). */
typedef struct sbi__rt_bands {
    int n;
    int photon; /* 1: weight by T(l) l; 0: by T(l) */
    sbi_rt_band *band; /* (n) */
    double **curve;    /* (n) owned filter curves */
} sbi__rt_bands;

/* node: settings.datasets.NAME.bands; weighting: its `weighting` (or NULL);
 * what: "datasets.NAME" for messages.  Errors are SBI_ERR_INPUT naming the
 * task file, the key and, for a filter file, its line. */
int sbi__rt_bands_parse(const sbi_task *task, const cJSON *node, const cJSON *weighting, const char *what, int size,
                        int photon_default, sbi__rt_bands *out);
void sbi__rt_bands_free(sbi__rt_bands *b);

#endif
