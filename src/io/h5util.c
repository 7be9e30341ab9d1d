/* HDF5 helpers shared by the file layouts: error translation, scalar
 * attributes and string datasets. */
#include "io/h5_impl.h"

#include <stdlib.h>
#include <string.h>

void sbi__h5_init(void)
{
    static int done;
    if (done) return;
    /* Errors are reported through SBI_CALL_H5, never printed by the library. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    done = 1;
}

typedef struct stack_walk {
    char top_func[128], top[256], inner[256];
    int n;
} stack_walk;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    stack_walk *w = data;
    const char *desc = e->desc && e->desc[0] ? e->desc : "";
    if (n == 0) {
        snprintf(w->top_func, sizeof w->top_func, "%s", e->func_name ? e->func_name : "HDF5");
        snprintf(w->top, sizeof w->top, "%s", desc);
    }
    snprintf(w->inner, sizeof w->inner, "%s", desc);
    w->n = (int)n + 1;
    return 0;
}

void sbi__h5_message(char *msg, size_t cap)
{
    stack_walk w;
    memset(&w, 0, sizeof w);
    /* Walking downward starts at the API call and ends where the error was first detected. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    if (w.n == 0) {
        snprintf(msg, cap, "%s", "");
    } else if (w.n == 1 || !strcmp(w.top, w.inner) || !w.inner[0]) {
        snprintf(msg, cap, "%s: %s", w.top_func, w.top);
    } else {
        snprintf(msg, cap, "%s: %s (%s)", w.top_func, w.top, w.inner);
    }
    H5Eclear2(H5E_DEFAULT);
}

int sbi__h5_error(const char *path, const char *file, int line, const char *func, const char *expr)
{
    char msg[640];
    sbi__h5_message(msg, sizeof msg);
    if (!msg[0]) snprintf(msg, sizeof msg, "%s failed", expr);
    if (path) return sbi__raise(SBI_ERR_IO, file, line, func, "%s: %s", path, msg);
    return sbi__raise(SBI_ERR_IO, file, line, func, "%s", msg);
}

void sbi__h5_close(hid_t *id)
{
    if (*id < 0) {
        *id = H5I_INVALID_HID;
        return;
    }
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
}

/* Write a scalar attribute of `type` from `buf`, creating it when absent. */
static int attr_put(hid_t obj, const char *name, hid_t type, const void *buf)
{
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    htri_t exists;
    SBI_CALL_H5(exists = H5Aexists(obj, name));
    if (exists) {
        SBI_CALL_H5(attr = H5Aopen(obj, name, H5P_DEFAULT));
    } else {
        SBI_CALL_H5(space = H5Screate(H5S_SCALAR));
        attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        H5Sclose(space);
        SBI_CALL_H5(attr);
    }
    herr_t st = H5Awrite(attr, type, buf);
    H5Aclose(attr);
    SBI_CALL_H5(st);
    return 0;
}

static int vlen_string_type(hid_t *type)
{
    SBI_CALL_H5(*type = H5Tcopy(H5T_C_S1));
    SBI_CALL_H5(H5Tset_size(*type, H5T_VARIABLE));
    SBI_CALL_H5(H5Tset_cset(*type, H5T_CSET_UTF8));
    return 0;
}

int sbi__h5_attr_put_string(hid_t obj, const char *name, const char *value)
{
    hid_t type;
    int st;
    SBI_CALL(vlen_string_type(&type));
    st = attr_put(obj, name, type, &value);
    H5Tclose(type);
    SBI_CALL(st);
    return 0;
}

int sbi__h5_attr_put_int64(hid_t obj, const char *name, int64_t value)
{
    SBI_CALL(attr_put(obj, name, H5T_NATIVE_INT64, &value));
    return 0;
}

int sbi__h5_attr_put_uint64(hid_t obj, const char *name, uint64_t value)
{
    SBI_CALL(attr_put(obj, name, H5T_NATIVE_UINT64, &value));
    return 0;
}

int sbi__h5_attr_put_double(hid_t obj, const char *name, double value)
{
    SBI_CALL(attr_put(obj, name, H5T_NATIVE_DOUBLE, &value));
    return 0;
}

/* Open attribute `name` of obj, checking it is a scalar (or one-element) of class cls. */
static int attr_open(hid_t obj, const char *path, const char *name, H5T_class_t cls, hid_t *attr)
{
    htri_t exists;
    hid_t type, space;
    H5T_class_t found;
    hssize_t npoints;
    SBI_CALL_H5_AT(path, exists = H5Aexists(obj, name));
    SBI_CHECK(exists > 0, SBI_ERR_IO, "%s: attribute '%s' is missing", path, name);
    SBI_CALL_H5_AT(path, *attr = H5Aopen(obj, name, H5P_DEFAULT));
    type = H5Aget_type(*attr);
    space = H5Aget_space(*attr);
    found = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (found != cls || npoints != 1) {
        H5Aclose(*attr);
        *attr = H5I_INVALID_HID;
        SBI_RAISE(SBI_ERR_IO, "%s: attribute '%s' has an unexpected type or shape", path, name);
    }
    return 0;
}

int sbi__h5_attr_get_string(hid_t obj, const char *path, const char *name, char **value)
{
    hid_t attr = H5I_INVALID_HID, ftype = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    htri_t is_vlen;
    int st = 0;
    *value = NULL;
    SBI_CALL(attr_open(obj, path, name, H5T_STRING, &attr));
    ftype = H5Aget_type(attr);
    is_vlen = ftype >= 0 ? H5Tis_variable_str(ftype) : -1;
    if (is_vlen < 0) {
        st = sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Tis_variable_str");
    } else if (is_vlen) {
        char *s = NULL;
        if (vlen_string_type(&mtype) == 0 && H5Aread(attr, mtype, &s) >= 0) {
            *value = strdup(s ? s : "");
            H5free_memory(s);
        } else {
            st = sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Aread");
        }
    } else {
        size_t len = H5Tget_size(ftype);
        char *s = calloc(len + 1, 1);
        mtype = H5Tcopy(ftype);
        if (!s) {
            st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
        } else if (H5Aread(attr, mtype, s) < 0) {
            free(s);
            st = sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Aread");
        } else {
            *value = s;
        }
    }
    sbi__h5_close(&mtype);
    sbi__h5_close(&ftype);
    H5Aclose(attr);
    if (!st && !*value) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    return st;
}

static int attr_get_number(hid_t obj, const char *path, const char *name, hid_t mtype, void *value)
{
    hid_t attr = H5I_INVALID_HID;
    herr_t st;
    htri_t exists;
    SBI_CALL_H5_AT(path, exists = H5Aexists(obj, name));
    SBI_CHECK(exists > 0, SBI_ERR_IO, "%s: attribute '%s' is missing", path, name);
    /* Integers and floats convert into each other; anything else is refused. */
    {
        hid_t type;
        H5T_class_t cls;
        SBI_CALL_H5_AT(path, attr = H5Aopen(obj, name, H5P_DEFAULT));
        type = H5Aget_type(attr);
        cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
        if (type >= 0) H5Tclose(type);
        if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
            H5Aclose(attr);
            SBI_RAISE(SBI_ERR_IO, "%s: attribute '%s' is not a number", path, name);
        }
    }
    st = H5Aread(attr, mtype, value);
    H5Aclose(attr);
    SBI_CALL_H5_AT(path, st);
    return 0;
}

int sbi__h5_attr_get_int64(hid_t obj, const char *path, const char *name, int64_t *value)
{
    SBI_CALL(attr_get_number(obj, path, name, H5T_NATIVE_INT64, value));
    return 0;
}

int sbi__h5_attr_get_uint64(hid_t obj, const char *path, const char *name, uint64_t *value)
{
    SBI_CALL(attr_get_number(obj, path, name, H5T_NATIVE_UINT64, value));
    return 0;
}

int sbi__h5_attr_get_double(hid_t obj, const char *path, const char *name, double *value)
{
    SBI_CALL(attr_get_number(obj, path, name, H5T_NATIVE_DOUBLE, value));
    return 0;
}

int sbi__h5_string_type(int n, const char *const *strings, hid_t *type)
{
    size_t width = 1;
    for (int i = 0; i < n; ++i) {
        size_t len = strlen(strings[i]) + 1;
        if (len > width) width = len;
    }
    SBI_CALL_H5(*type = H5Tcopy(H5T_C_S1));
    SBI_CALL_H5(H5Tset_size(*type, width));
    SBI_CALL_H5(H5Tset_strpad(*type, H5T_STR_NULLTERM));
    SBI_CALL_H5(H5Tset_cset(*type, H5T_CSET_UTF8));
    return 0;
}

int sbi__h5_pack_strings(int n, const char *const *strings, size_t width, char **packed)
{
    char *buf;
    SBI_CALLOC(buf, (size_t)(n > 0 ? n : 1) * width);
    for (int i = 0; i < n; ++i) memcpy(buf + (size_t)i * width, strings[i], strlen(strings[i]));
    *packed = buf;
    return 0;
}

int sbi__h5_read_strings(hid_t dset, const char *path, hid_t dxpl, int *n, char ***strings)
{
    hid_t ftype = H5I_INVALID_HID, space = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    hsize_t dims[1] = {0};
    htri_t is_vlen;
    char **out = NULL;
    int rank;

    *n = 0;
    *strings = NULL;
    SBI_CALL_H5_AT(path, space = H5Dget_space(dset));
    rank = H5Sget_simple_extent_ndims(space);
    if (rank == 1) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    SBI_CHECK(rank == 1, SBI_ERR_IO, "%s: a string list must be one-dimensional", path);
    SBI_CALL_H5_AT(path, ftype = H5Dget_type(dset));
    if (H5Tget_class(ftype) != H5T_STRING) {
        H5Tclose(ftype);
        SBI_RAISE(SBI_ERR_IO, "%s: expected a dataset of strings", path);
    }
    is_vlen = H5Tis_variable_str(ftype);
    out = calloc(dims[0] > 0 ? dims[0] : 1, sizeof *out);
    if (!out) {
        H5Tclose(ftype);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory");
    }
    if (is_vlen > 0) {
        char **tmp = calloc(dims[0] > 0 ? dims[0] : 1, sizeof *tmp);
        herr_t st = -1;
        if (tmp && vlen_string_type(&mtype) == 0) st = H5Dread(dset, mtype, H5S_ALL, H5S_ALL, dxpl, tmp);
        if (st >= 0) {
            for (hsize_t i = 0; i < dims[0]; ++i) out[i] = strdup(tmp[i] ? tmp[i] : "");
            space = H5Dget_space(dset);
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, tmp);
            H5Sclose(space);
        }
        free(tmp);
        sbi__h5_close(&mtype);
        H5Tclose(ftype);
        if (st < 0) {
            free(out);
            return sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Dread");
        }
    } else {
        size_t width = H5Tget_size(ftype);
        char *buf = calloc((dims[0] > 0 ? dims[0] : 1) * width + 1, 1);
        herr_t st = -1;
        mtype = H5Tcopy(ftype);
        if (buf) st = H5Dread(dset, mtype, H5S_ALL, H5S_ALL, dxpl, buf);
        if (st >= 0) {
            for (hsize_t i = 0; i < dims[0]; ++i) out[i] = strndup(buf + i * width, width);
        }
        free(buf);
        sbi__h5_close(&mtype);
        H5Tclose(ftype);
        if (st < 0) {
            free(out);
            return sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Dread");
        }
    }
    for (hsize_t i = 0; i < dims[0]; ++i) {
        if (!out[i]) {
            for (hsize_t j = 0; j < dims[0]; ++j) free(out[j]);
            free(out);
            SBI_RAISE(SBI_ERR_INTERNAL, "out of memory");
        }
    }
    *n = (int)dims[0];
    *strings = out;
    return 0;
}

hid_t sbi__h5_lcpl_intermediate(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return H5I_INVALID_HID;
    }
    return lcpl;
}

void sbi__h5_type_name(hid_t type, char *out, size_t cap)
{
    size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_FLOAT: snprintf(out, cap, "float%zu", 8 * size); break;
    case H5T_INTEGER:
        snprintf(out, cap, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", 8 * size);
        break;
    case H5T_STRING: snprintf(out, cap, "string"); break;
    case H5T_COMPOUND: snprintf(out, cap, "compound"); break;
    case H5T_ENUM: snprintf(out, cap, "enum"); break;
    case H5T_ARRAY: snprintf(out, cap, "array"); break;
    case H5T_VLEN: snprintf(out, cap, "vlen"); break;
    default: snprintf(out, cap, "other"); break;
    }
}
