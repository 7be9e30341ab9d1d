/* The ops tables of the radiative-transfer families, for the registry. */
#ifndef EXOSBI_RT_FAMILY_H
#define EXOSBI_RT_FAMILY_H

#include "exosbi/forward.h"

extern const sbi_forward_ops sbi__forward_transmission_ops;
extern const sbi_forward_ops sbi__forward_emission_ops;

#endif
