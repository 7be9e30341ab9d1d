/* The estimator families compiled in: adding one is a file in src/flows and a row here. */
#include "flows/flows_impl.h"

const sbi_estimator_ops *const sbi_estimator_registry[] = {
    &sbi__affine_ops,
    &sbi__nsf_ops,
    &sbi__maf_ops,
    &sbi__naf_ops,
    &sbi__fmpe_ops,
    NULL,
};
