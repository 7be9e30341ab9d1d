/* The forward-model registry: `forward_model.family` -> implementation.
 *
 * Adding a family takes one source file that defines its sbi_forward_ops and
 * one row below.  The order of the rows is the order in which the families are
 * listed in error messages.
 */
#include "forward/forward_impl.h"
#include "forward/rt/rt_family.h"

#include <stddef.h>

const sbi_forward_ops *const sbi_forward_registry[] = {
    &sbi__forward_linear_gaussian_ops,
    &sbi__forward_plugin_ops,
    &sbi__forward_transmission_ops,
    &sbi__forward_emission_ops,
    NULL,
};
