/* Private helpers shared by the HDF5 layouts of src/io (h5file.c, corpus.c).
 *
 * SBI_CALL_H5(expr) checks one HDF5 call: a negative herr_t / hid_t / htri_t
 * becomes SBI_ERR_IO carrying the top message of HDF5's error stack (and the
 * innermost one, which usually says what is really wrong).  Assignments work
 * too, since their value is the assigned handle:
 *     SBI_CALL_H5(dset = H5Dopen2(file, "/train/theta", H5P_DEFAULT));
 * SBI_CALL_H5_AT(path, expr) does the same and names the file in the message.
 * HDF5's automatic error printing is switched off by sbi__h5_init(), which
 * every entry point of src/io calls first.
 */
#ifndef EXOSBI_IO_H5_IMPL_H
#define EXOSBI_IO_H5_IMPL_H

#include <hdf5.h>
#include <stdint.h>

#include "exosbi/core.h"

/* Switch off HDF5's own error printing (idempotent). */
void sbi__h5_init(void);
/* Describe the current HDF5 error stack in msg[cap] ("" when it is empty). */
void sbi__h5_message(char *msg, size_t cap);
/* Raise SBI_ERR_IO for a failed HDF5 call; path may be NULL. */
int sbi__h5_error(const char *path, const char *file, int line, const char *func, const char *expr);

#define SBI_CALL_H5(expr)                                                                   \
    do {                                                                                    \
        if ((int64_t)(expr) < 0) return sbi__h5_error(NULL, __FILE__, __LINE__, __func__, #expr); \
    } while (0)

#define SBI_CALL_H5_AT(path, expr)                                                          \
    do {                                                                                    \
        if ((int64_t)(expr) < 0) return sbi__h5_error((path), __FILE__, __LINE__, __func__, #expr); \
    } while (0)

/* Close any kind of HDF5 handle; invalid handles are ignored.  Sets *id to
 * H5I_INVALID_HID. */
void sbi__h5_close(hid_t *id);

/* ---- attributes (scalar; created or overwritten) ---- */
int sbi__h5_attr_put_string(hid_t obj, const char *name, const char *value);
int sbi__h5_attr_put_int64(hid_t obj, const char *name, int64_t value);
int sbi__h5_attr_put_uint64(hid_t obj, const char *name, uint64_t value);
int sbi__h5_attr_put_double(hid_t obj, const char *name, double value);
/* Readers raise SBI_ERR_IO naming `path` (the file, for messages) when the
 * attribute is missing or of the wrong class.  Strings are malloc'ed. */
int sbi__h5_attr_get_string(hid_t obj, const char *path, const char *name, char **value);
int sbi__h5_attr_get_int64(hid_t obj, const char *path, const char *name, int64_t *value);
int sbi__h5_attr_get_uint64(hid_t obj, const char *path, const char *name, uint64_t *value);
int sbi__h5_attr_get_double(hid_t obj, const char *path, const char *name, double *value);

/* A fixed-length, NUL-terminated string type wide enough for every string in
 * strings[n] (caller closes it). */
int sbi__h5_string_type(int n, const char *const *strings, hid_t *type);
/* Pack strings[n] into a (n, width) char buffer for that type (caller frees). */
int sbi__h5_pack_strings(int n, const char *const *strings, size_t width, char **packed);
/* Read a 1-D dataset of strings (fixed or variable length) into malloc'ed
 * strings; *strings and each entry are freed by the caller. */
int sbi__h5_read_strings(hid_t dset, const char *path, hid_t dxpl, int *n, char ***strings);

/* Create every missing group along `path` (a/b/c creates a and a/b). */
hid_t sbi__h5_lcpl_intermediate(void);

/* A short name of a stored datatype: float32, float64, int64, uint64, string, ... */
void sbi__h5_type_name(hid_t type, char *out, size_t cap);

#endif
