/* Serial HDF5 files (models, checkpoints, reports, posteriors), written by one
 * rank through the default driver.  A writer works on PATH.partial and renames
 * it on commit; a reader checks the root `format` attribute first. */
#include "exosbi/h5file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5_impl.h"

struct sbi_h5w_s {
    char path[4096];
    char partial[4108];
    hid_t file;
};

struct sbi_h5r_s {
    char path[4096];
    hid_t file;
};

/* File access: the 1.8 object format as the oldest, so attributes larger than
 * 64 KiB (a task's JSON text, say) go to dense storage. */
static hid_t file_access_plist(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* ---- writing ------------------------------------------------------------ */

int sbi_h5w_create(const char *path, const char *format, int format_version, sbi_h5w *out)
{
    sbi_h5w w;
    hid_t fapl, root = H5I_INVALID_HID;
    int st = 0;

    sbi__h5_init();
    *out = NULL;
    SBI_CHECK(path && path[0] && format && format[0], SBI_ERR_INTERNAL, "sbi_h5w_create: empty path or format");
    SBI_CALLOC(w, 1);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->partial, sizeof w->partial, "%s.partial", path);
    SBI_CALL_H5(fapl = file_access_plist());
    w->file = H5Fcreate(w->partial, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (w->file < 0) {
        free(w);
        return sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Fcreate");
    }
    root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    if (root < 0) st = sbi__h5_error(w->partial, __FILE__, __LINE__, __func__, "H5Gopen2");
    if (!st) st = sbi__h5_attr_put_string(root, "format", format);
    if (!st) st = sbi__h5_attr_put_int64(root, "format_version", format_version);
    sbi__h5_close(&root);
    if (st) {
        sbi_h5w_abort(&w);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *out = w;
    return 0;
}

/* Open the object an attribute goes on: the root for NULL or "/". */
static int open_object(hid_t file, const char *fpath, const char *obj, hid_t *id)
{
    const char *name = obj && obj[0] ? obj : "/";
    *id = H5Oopen(file, name, H5P_DEFAULT);
    SBI_CHECK(*id >= 0, SBI_ERR_IO, "%s: no object '%s' to attach an attribute to", fpath, name);
    return 0;
}

int sbi_h5w_attr_string(sbi_h5w w, const char *obj, const char *name, const char *value)
{
    hid_t id;
    int st;
    SBI_CALL(open_object(w->file, w->partial, obj, &id));
    st = sbi__h5_attr_put_string(id, name, value ? value : "");
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

int sbi_h5w_attr_double(sbi_h5w w, const char *obj, const char *name, double value)
{
    hid_t id;
    int st;
    SBI_CALL(open_object(w->file, w->partial, obj, &id));
    st = sbi__h5_attr_put_double(id, name, value);
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

int sbi_h5w_attr_int64(sbi_h5w w, const char *obj, const char *name, int64_t value)
{
    hid_t id;
    int st;
    SBI_CALL(open_object(w->file, w->partial, obj, &id));
    st = sbi__h5_attr_put_int64(id, name, value);
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

/* Create dataset `path` of (rank, dims) and write data (converted from mtype). */
static int write_dataset(sbi_h5w w, const char *path, int rank, const int64_t *dims, hid_t mtype, hid_t ftype,
                         const void *data)
{
    hsize_t hd[2];
    hid_t space = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int64_t n = 1;
    herr_t st;

    SBI_CHECK(rank == 1 || rank == 2, SBI_ERR_INTERNAL, "%s: dataset '%s' must have rank 1 or 2, not %d", w->partial,
              path, rank);
    for (int i = 0; i < rank; ++i) {
        SBI_CHECK(dims[i] >= 0, SBI_ERR_INTERNAL, "%s: negative dimension for '%s'", w->partial, path);
        hd[i] = (hsize_t)dims[i];
        n *= dims[i];
    }
    SBI_CHECK(n == 0 || data, SBI_ERR_INTERNAL, "%s: no data for '%s'", w->partial, path);
    SBI_CALL_H5_AT(w->partial, space = H5Screate_simple(rank, hd, NULL));
    lcpl = sbi__h5_lcpl_intermediate();
    dset = lcpl >= 0 ? H5Dcreate2(w->file, path, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    sbi__h5_close(&lcpl);
    sbi__h5_close(&space);
    SBI_CALL_H5_AT(w->partial, dset);
    st = n > 0 ? H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
    H5Dclose(dset);
    SBI_CALL_H5_AT(w->partial, st);
    return 0;
}

int sbi_h5w_float(sbi_h5w w, const char *path, int rank, const int64_t *dims, const float *data)
{
    SBI_CALL(write_dataset(w, path, rank, dims, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, data));
    return 0;
}

int sbi_h5w_double(sbi_h5w w, const char *path, int rank, const int64_t *dims, const double *data)
{
    SBI_CALL(write_dataset(w, path, rank, dims, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, data));
    return 0;
}

int sbi_h5w_int64(sbi_h5w w, const char *path, int rank, const int64_t *dims, const int64_t *data)
{
    SBI_CALL(write_dataset(w, path, rank, dims, H5T_NATIVE_INT64, H5T_STD_I64LE, data));
    return 0;
}

int sbi_h5w_strings(sbi_h5w w, const char *path, int n, const char *const *strings)
{
    hid_t type;
    char *packed = NULL;
    int64_t dims[1] = {n};
    int st;
    SBI_CHECK(n >= 0, SBI_ERR_INTERNAL, "%s: negative string count for '%s'", w->partial, path);
    SBI_CALL(sbi__h5_string_type(n, strings, &type));
    st = sbi__h5_pack_strings(n, strings, H5Tget_size(type), &packed);
    if (!st) st = write_dataset(w, path, 1, dims, type, type, packed);
    free(packed);
    H5Tclose(type);
    SBI_CALL(st);
    return 0;
}

int sbi_h5w_commit(sbi_h5w *wp)
{
    sbi_h5w w = *wp;
    int st;
    if (!w) return 0;
    *wp = NULL;
    if (H5Fclose(w->file) < 0) {
        st = sbi__h5_error(w->partial, __FILE__, __LINE__, __func__, "H5Fclose");
        unlink(w->partial);
        free(w);
        return st;
    }
    st = sbi_file_commit(w->partial, w->path);
    free(w);
    SBI_CALL(st);
    return 0;
}

void sbi_h5w_abort(sbi_h5w *wp)
{
    sbi_h5w w = *wp;
    if (!w) return;
    *wp = NULL;
    sbi__h5_close(&w->file);
    unlink(w->partial);
    free(w);
}

/* ---- reading ------------------------------------------------------------ */

/* Open any HDF5 file read-only; missing, truncated and non-HDF5 files are
 * SBI_ERR_IO naming the path. */
static int open_readonly(const char *path, hid_t *file)
{
    struct stat st;
    char msg[640];
    hid_t fapl;
    sbi__h5_init();
    SBI_CHECK(stat(path, &st) == 0, SBI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    SBI_CHECK(S_ISREG(st.st_mode), SBI_ERR_IO, "%s: not a regular file", path);
    SBI_CALL_H5_AT(path, fapl = file_access_plist());
    *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (*file < 0) {
        sbi__h5_message(msg, sizeof msg);
        SBI_RAISE(SBI_ERR_IO, "%s: not a readable HDF5 file (truncated, corrupt or another format): %s", path,
                  msg);
    }
    return 0;
}

/* Check the root `format` attribute; expected NULL accepts any exosbi file. */
static int check_format(hid_t file, const char *path, const char *expected, char **format_out, int64_t *version)
{
    char *format = NULL;
    int64_t v = 0;
    htri_t has;
    SBI_CALL_H5_AT(path, has = H5Aexists(file, "format"));
    SBI_CHECK(has > 0, SBI_ERR_IO, "%s: an HDF5 file, but not one written by exosbi (no 'format' attribute)", path);
    SBI_CALL(sbi__h5_attr_get_string(file, path, "format", &format));
    if (H5Aexists(file, "format_version") > 0) {
        int st = sbi__h5_attr_get_int64(file, path, "format_version", &v);
        if (st) {
            free(format);
            return sbi__trace(st, __FILE__, __LINE__, __func__);
        }
    }
    if (expected && strcmp(format, expected) != 0) {
        sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s: is a '%s' file, expected '%s'", path, format,
                   expected);
        free(format);
        return SBI_ERR_IO;
    }
    if (format_out) *format_out = format;
    else free(format);
    if (version) *version = v;
    return 0;
}

int sbi_h5r_open(const char *path, const char *format, sbi_h5r *out)
{
    sbi_h5r r;
    hid_t file;
    int st;
    *out = NULL;
    SBI_CALL(open_readonly(path, &file));
    st = check_format(file, path, format, NULL, NULL);
    if (st) {
        H5Fclose(file);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        H5Fclose(file);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory");
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    r->file = file;
    *out = r;
    return 0;
}

void sbi_h5r_close(sbi_h5r *rp)
{
    sbi_h5r r = *rp;
    if (!r) return;
    *rp = NULL;
    sbi__h5_close(&r->file);
    free(r);
}

const char *sbi_h5r_path(sbi_h5r r) { return r->path; }

/* Whether every link along `path` exists (H5Lexists fails on a missing parent). */
static int path_exists(hid_t file, const char *path)
{
    char buf[1024];
    size_t len = strlen(path);
    if (len == 0 || !strcmp(path, "/")) return 1;
    if (len >= sizeof buf) return 0;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; ++i) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (!(buf[0] == '/' && buf[1] == '\0') && H5Lexists(file, buf, H5P_DEFAULT) <= 0) return 0;
            buf[i] = saved;
        }
    }
    return 1;
}

int sbi_h5r_has(sbi_h5r r, const char *path)
{
    int ok = path_exists(r->file, path);
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

static int reader_object(sbi_h5r r, const char *obj, hid_t *id)
{
    const char *name = obj && obj[0] ? obj : "/";
    SBI_CHECK(path_exists(r->file, name), SBI_ERR_IO, "%s: no object '%s'", r->path, name);
    SBI_CALL_H5_AT(r->path, *id = H5Oopen(r->file, name, H5P_DEFAULT));
    return 0;
}

int sbi_h5r_attr_string(sbi_h5r r, const char *obj, const char *name, char **value)
{
    hid_t id;
    int st;
    SBI_CALL(reader_object(r, obj, &id));
    st = sbi__h5_attr_get_string(id, r->path, name, value);
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

int sbi_h5r_attr_double(sbi_h5r r, const char *obj, const char *name, double *value)
{
    hid_t id;
    int st;
    SBI_CALL(reader_object(r, obj, &id));
    st = sbi__h5_attr_get_double(id, r->path, name, value);
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

int sbi_h5r_attr_int64(sbi_h5r r, const char *obj, const char *name, int64_t *value)
{
    hid_t id;
    int st;
    SBI_CALL(reader_object(r, obj, &id));
    st = sbi__h5_attr_get_int64(id, r->path, name, value);
    H5Oclose(id);
    SBI_CALL(st);
    return 0;
}

/* Open dataset `path` and return its rank (<= 2) and dims. */
static int open_dataset(sbi_h5r r, const char *path, hid_t *dset, int *rank, int64_t dims[2])
{
    hid_t space;
    hsize_t hd[H5S_MAX_RANK];
    int nd;
    SBI_CHECK(path_exists(r->file, path), SBI_ERR_IO, "%s: no dataset '%s'", r->path, path);
    SBI_CALL_H5_AT(r->path, *dset = H5Dopen2(r->file, path, H5P_DEFAULT));
    space = H5Dget_space(*dset);
    nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (nd >= 0 && nd <= 2) H5Sget_simple_extent_dims(space, hd, NULL);
    if (space >= 0) H5Sclose(space);
    if (nd < 1 || nd > 2) {
        H5Dclose(*dset);
        SBI_RAISE(SBI_ERR_IO, "%s: dataset '%s' has rank %d (expected 1 or 2)", r->path, path, nd);
    }
    *rank = nd;
    dims[0] = (int64_t)hd[0];
    dims[1] = nd == 2 ? (int64_t)hd[1] : 1;
    return 0;
}

int sbi_h5r_shape(sbi_h5r r, const char *path, int *rank, int64_t dims[2])
{
    hid_t dset;
    SBI_CALL(open_dataset(r, path, &dset, rank, dims));
    H5Dclose(dset);
    return 0;
}

static int read_dataset(sbi_h5r r, const char *path, hid_t mtype, size_t elem, H5T_class_t want, void **data,
                        int *rank_out, int64_t dims_out[2])
{
    hid_t dset, ftype;
    int rank;
    int64_t dims[2];
    H5T_class_t cls;
    size_t n;
    void *buf;
    herr_t st;

    *data = NULL;
    SBI_CALL(open_dataset(r, path, &dset, &rank, dims));
    ftype = H5Dget_type(dset);
    cls = ftype >= 0 ? H5Tget_class(ftype) : H5T_NO_CLASS;
    if (ftype >= 0) H5Tclose(ftype);
    if (cls != want && !(cls == H5T_INTEGER && want == H5T_FLOAT)) {
        H5Dclose(dset);
        SBI_RAISE(SBI_ERR_IO, "%s: dataset '%s' has an unexpected type", r->path, path);
    }
    n = (size_t)dims[0] * (size_t)dims[1];
    buf = malloc(n > 0 ? n * elem : 1);
    if (!buf) {
        H5Dclose(dset);
        SBI_RAISE(SBI_ERR_INTERNAL, "out of memory reading %s:%s", r->path, path);
    }
    st = n > 0 ? H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    H5Dclose(dset);
    if (st < 0) {
        free(buf);
        return sbi__h5_error(r->path, __FILE__, __LINE__, __func__, "H5Dread");
    }
    *data = buf;
    if (rank_out) *rank_out = rank;
    if (dims_out) {
        dims_out[0] = dims[0];
        dims_out[1] = rank == 2 ? dims[1] : 0;
    }
    return 0;
}

int sbi_h5r_float(sbi_h5r r, const char *path, float **data, int *rank, int64_t dims[2])
{
    SBI_CALL(read_dataset(r, path, H5T_NATIVE_FLOAT, sizeof(float), H5T_FLOAT, (void **)data, rank, dims));
    return 0;
}

int sbi_h5r_double(sbi_h5r r, const char *path, double **data, int *rank, int64_t dims[2])
{
    SBI_CALL(read_dataset(r, path, H5T_NATIVE_DOUBLE, sizeof(double), H5T_FLOAT, (void **)data, rank, dims));
    return 0;
}

int sbi_h5r_int64(sbi_h5r r, const char *path, int64_t **data, int *rank, int64_t dims[2])
{
    SBI_CALL(read_dataset(r, path, H5T_NATIVE_INT64, sizeof(int64_t), H5T_INTEGER, (void **)data, rank, dims));
    return 0;
}

int sbi_h5r_strings(sbi_h5r r, const char *path, int *n, char ***strings)
{
    hid_t dset;
    int st;
    SBI_CHECK(path_exists(r->file, path), SBI_ERR_IO, "%s: no dataset '%s'", r->path, path);
    SBI_CALL_H5_AT(r->path, dset = H5Dopen2(r->file, path, H5P_DEFAULT));
    st = sbi__h5_read_strings(dset, r->path, H5P_DEFAULT, n, strings);
    H5Dclose(dset);
    SBI_CALL(st);
    return 0;
}

/* ---- identification and description ------------------------------------- */

int sbi_h5_file_format(const char *path, char **format, int64_t *format_version)
{
    hid_t file;
    int st;
    SBI_CALL(open_readonly(path, &file));
    st = check_format(file, path, NULL, format, format_version);
    H5Fclose(file);
    SBI_CALL(st);
    return 0;
}

/* An attribute's value as JSON: strings, numbers, or arrays of numbers. */
static cJSON *attr_to_json(hid_t obj, const char *fpath, const char *name)
{
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT), type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    cJSON *out = NULL;
    H5T_class_t cls;
    hssize_t n;
    if (attr < 0) return NULL;
    type = H5Aget_type(attr);
    space = H5Aget_space(attr);
    cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (cls == H5T_STRING && n == 1) {
        char *s = NULL;
        if (sbi__h5_attr_get_string(obj, fpath, name, &s) == 0) out = cJSON_CreateString(s);
        free(s);
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1 && n <= 4096) {
        int is_int = cls == H5T_INTEGER, is_unsigned = is_int && H5Tget_sign(type) == H5T_SGN_NONE;
        void *buf = malloc((size_t)n * 8);
        hid_t mtype = !is_int ? H5T_NATIVE_DOUBLE : is_unsigned ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64;
        if (buf && H5Aread(attr, mtype, buf) >= 0) {
            cJSON *arr = n > 1 ? cJSON_CreateArray() : NULL;
            for (hssize_t i = 0; i < n; ++i) {
                cJSON *v;
                if (!is_int) {
                    v = cJSON_CreateNumber(((double *)buf)[i]);
                } else if (is_unsigned) {
                    uint64_t u = ((uint64_t *)buf)[i];
                    char text[32];
                    snprintf(text, sizeof text, "%llu", (unsigned long long)u);
                    /* Integers beyond 2^53 would lose digits as JSON numbers. */
                    v = u <= (1ull << 53) ? cJSON_CreateNumber((double)u) : cJSON_CreateString(text);
                } else {
                    int64_t s = ((int64_t *)buf)[i];
                    char text[32];
                    snprintf(text, sizeof text, "%lld", (long long)s);
                    v = (s <= (1ll << 53) && s >= -(1ll << 53)) ? cJSON_CreateNumber((double)s)
                                                                : cJSON_CreateString(text);
                }
                if (arr) cJSON_AddItemToArray(arr, v);
                else out = v;
            }
            if (arr) out = arr;
        }
        free(buf);
    } else {
        char tname[32];
        sbi__h5_type_name(type, tname, sizeof tname);
        out = cJSON_CreateString(tname);
    }
    sbi__h5_close(&type);
    sbi__h5_close(&space);
    H5Aclose(attr);
    H5Eclear2(H5E_DEFAULT);
    return out;
}

typedef struct describe_ctx {
    hid_t file;
    const char *path;
    cJSON *groups, *datasets;
} describe_ctx;

static herr_t describe_link(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    describe_ctx *d = data;
    char full[1100];
    hid_t obj;
    (void)group;
    if (info->type != H5L_TYPE_HARD) return 0;
    snprintf(full, sizeof full, "/%s", name);
    obj = H5Oopen(d->file, name, H5P_DEFAULT);
    if (obj < 0) return -1;
    if (H5Iget_type(obj) == H5I_GROUP) {
        cJSON_AddItemToArray(d->groups, cJSON_CreateString(full));
    } else if (H5Iget_type(obj) == H5I_DATASET) {
        cJSON *ds = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        hid_t space = H5Dget_space(obj), type = H5Dget_type(obj);
        hsize_t dims[H5S_MAX_RANK];
        int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : 0;
        char tname[32] = "unknown";
        if (nd > 0) H5Sget_simple_extent_dims(space, dims, NULL);
        for (int i = 0; i < nd; ++i) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)dims[i]));
        if (type >= 0) sbi__h5_type_name(type, tname, sizeof tname);
        cJSON_AddStringToObject(ds, "name", full);
        cJSON_AddItemToObject(ds, "shape", shape);
        cJSON_AddStringToObject(ds, "type", tname);
        cJSON_AddItemToArray(d->datasets, ds);
        sbi__h5_close(&space);
        sbi__h5_close(&type);
    }
    H5Oclose(obj);
    return 0;
}

static herr_t collect_attr_name(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)obj;
    (void)info;
    cJSON_AddItemToArray((cJSON *)data, cJSON_CreateString(name));
    return 0;
}

int sbi_h5_describe_json(const char *path, char **json_text)
{
    hid_t file;
    cJSON *root, *attrs, *names;
    describe_ctx d;
    herr_t st;
    char *text;

    *json_text = NULL;
    SBI_CALL(open_readonly(path, &file));
    root = cJSON_CreateObject();
    attrs = cJSON_CreateObject();
    names = cJSON_CreateArray();
    d.file = file;
    d.path = path;
    d.groups = cJSON_CreateArray();
    d.datasets = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "path", path);
    st = H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_attr_name, names);
    if (st >= 0) {
        cJSON *n;
        cJSON_ArrayForEach(n, names)
        {
            cJSON *v = attr_to_json(file, path, n->valuestring);
            if (v) cJSON_AddItemToObject(attrs, n->valuestring, v);
        }
        st = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, describe_link, &d);
    }
    if (st < 0) {
        int e = sbi__h5_error(path, __FILE__, __LINE__, __func__, "H5Lvisit");
        cJSON_Delete(root);
        cJSON_Delete(attrs);
        cJSON_Delete(names);
        cJSON_Delete(d.groups);
        cJSON_Delete(d.datasets);
        H5Fclose(file);
        return e;
    }
    cJSON_Delete(names);
    {
        cJSON *fmt = cJSON_GetObjectItemCaseSensitive(attrs, "format");
        cJSON *ver = cJSON_GetObjectItemCaseSensitive(attrs, "format_version");
        cJSON_AddItemToObject(root, "format", cJSON_IsString(fmt) ? cJSON_CreateString(fmt->valuestring)
                                                                  : cJSON_CreateNull());
        cJSON_AddItemToObject(root, "format_version",
                              cJSON_IsNumber(ver) ? cJSON_CreateNumber(ver->valuedouble) : cJSON_CreateNull());
    }
    cJSON_AddItemToObject(root, "attributes", attrs);
    cJSON_AddItemToObject(root, "groups", d.groups);
    cJSON_AddItemToObject(root, "datasets", d.datasets);
    H5Fclose(file);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    SBI_CHECK(text, SBI_ERR_INTERNAL, "out of memory describing %s", path);
    *json_text = text;
    return 0;
}
