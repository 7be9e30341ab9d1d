/* Internals shared by src/nn and src/flows: the BLAS and libm entry points
 * that match sbi_real, so kernels read the same in both builds. */
#ifndef EXOSBI_NN_IMPL_H
#define EXOSBI_NN_IMPL_H

#include <cblas.h>
#include <math.h>

#include "exosbi/nn.h"

#ifdef SBI_REAL_DOUBLE
#define sbi__gemm cblas_dgemm
#define sbi__exp exp
#define sbi__sqrt sqrt
#define sbi__tanh tanh
#define sbi__log log
#define sbi__log1p log1p
#else
#define sbi__gemm cblas_sgemm
#define sbi__exp expf
#define sbi__sqrt sqrtf
#define sbi__tanh tanhf
#define sbi__log logf
#define sbi__log1p log1pf
#endif

#endif
