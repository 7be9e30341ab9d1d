/* Private layout of a forward model and the symbols shared by the files of
 * src/forward.  Nothing outside src/forward includes this header.
 */
#ifndef EXOSBI_FORWARD_IMPL_H
#define EXOSBI_FORWARD_IMPL_H

#include "exosbi/forward.h"

/* A created forward model.  `ops` points at a registry row (static storage);
 * `state` is owned by the model and released by ops->destroy. */
struct sbi_forward_s {
    const sbi_forward_ops *ops;
    void *state;
    int64_t n_outputs; /* length of one simulated observation vector */
};

/* One ops table per family; registry.c lists them. */
extern const sbi_forward_ops sbi__forward_linear_gaussian_ops;
extern const sbi_forward_ops sbi__forward_plugin_ops;

/* The name that heads every message about a task: its file, or "task" when
 * it was built from text without a file.  The pointer is borrowed from the task. */
const char *sbi__forward_origin(const sbi_task *task);

#endif
