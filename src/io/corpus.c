/* The simulation corpus: one parallel-HDF5 file that every rank writes.
 *
 * Writing.  The file is opened through the MPI-IO driver with collective
 * metadata reads and writes, and objects of 1 MiB or more are aligned on
 * 1 MiB boundaries (a multiple of file-system block and stripe sizes; the
 * EXOSBI_HDF5_ALIGNMENT environment variable overrides it in bytes).  Every
 * dataset is created up front with its final size, contiguous and allocated
 * at creation with no fill: a contiguous layout lets each collective write of
 * a rank's row block become one MPI-IO write of a contiguous file range,
 * which is the fastest collective pattern there is, and chunking would only
 * add an index to maintain.  Rows are written with a collective transfer
 * (ranks with no rows select nothing), and progress attributes are flushed
 * after each batch so that a killed run leaves a PATH.partial to resume.
 *
 * Errors.  A failed collective call on one rank must not leave the others
 * waiting in the next one.  Writes therefore go on through every dataset of a
 * call, remember the first failure, and agree on the verdict before returning.
 *
 * Reading.  Datasets are opened collectively by sbi_corpus_open; row and
 * column reads are independent transfers that touch no metadata, so ranks may
 * call them any number of times.
 */
#include "exosbi/corpus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/h5_impl.h"

#ifndef EXOSBI_VERSION
#define EXOSBI_VERSION "unknown"
#endif
#ifndef EXOSBI_GIT_SHA
#define EXOSBI_GIT_SHA "unknown"
#endif

static const char *const split_names[3] = {"train", "validation", "test"};
static const char *const theta_names[3] = {"theta", "theta_cube", "theta_unconstrained"};
enum { STAT_X_MEDIAN, STAT_X_IQR, STAT_X_MEAN, STAT_X_STD, STAT_T_MEAN, STAT_T_STD, N_STATS };
static const char *const stat_paths[N_STATS] = {
    "/normalization/x/median", "/normalization/x/iqr", "/normalization/x/mean",
    "/normalization/x/std", "/normalization/theta_unconstrained/mean", "/normalization/theta_unconstrained/std"};

struct sbi_corpus_s {
    sbi_comm comm;
    char path[4096];     /* the final name */
    char file_path[4108]; /* the file actually open: PATH.partial for a writer */
    int writer, complete;
    hid_t file, dxpl_coll, dxpl_ind;
    sbi_corpus_desc desc; /* owned deep copy */
    int64_t *offsets;     /* (n_datasets) first column of each dataset */
    hid_t theta[3][3];    /* [split][space] */
    hid_t *x[3];          /* [split] -> (n_datasets) */
    hid_t sim_index[3];
    hid_t stats[N_STATS];
    int has_stats;
    int64_t batches_done, invalid_redrawn;
    double io_s;          /* seconds spent in write calls (this rank) */
    int64_t io_bytes;     /* bytes this rank handed to write calls */
};

/* ---- descriptors ---------------------------------------------------------- */

static void desc_clear(sbi_corpus_desc *d)
{
    for (int i = 0; d->param_names && i < d->n_params; ++i) free(d->param_names[i]);
    for (int k = 0; k < d->n_datasets; ++k) {
        if (d->dataset_names) free(d->dataset_names[k]);
        if (d->coordinates) free(d->coordinates[k]);
        if (d->uncertainties) free(d->uncertainties[k]);
    }
    free(d->param_names);
    free(d->dataset_names);
    free(d->dataset_sizes);
    free(d->coordinates);
    free(d->uncertainties);
    free(d->task_json);
    memset(d, 0, sizeof *d);
}

static int dup_doubles(const double *src, int64_t n, double **dst)
{
    *dst = NULL;
    if (!src) return 0;
    SBI_MALLOC(*dst, n);
    memcpy(*dst, src, (size_t)n * sizeof **dst);
    return 0;
}

/* Validate a writer's descriptor: the same checks pass or fail on every rank. */
static int desc_validate(const sbi_corpus_desc *d, const char *path)
{
    int64_t total = 0;
    SBI_CHECK(d->n_params > 0 && d->param_names, SBI_ERR_INTERNAL, "%s: a corpus needs parameters", path);
    SBI_CHECK(d->n_datasets > 0 && d->dataset_names && d->dataset_sizes, SBI_ERR_INTERNAL,
              "%s: a corpus needs datasets", path);
    for (int k = 0; k < d->n_datasets; ++k) {
        SBI_CHECK(d->dataset_sizes[k] > 0, SBI_ERR_INTERNAL, "%s: dataset '%s' has size %lld", path,
                  d->dataset_names[k], (long long)d->dataset_sizes[k]);
        SBI_CHECK(strlen(d->dataset_names[k]) > 0 && !strchr(d->dataset_names[k], '/'), SBI_ERR_INTERNAL,
                  "%s: dataset name '%s' is empty or contains '/'", path, d->dataset_names[k]);
        total += d->dataset_sizes[k];
    }
    SBI_CHECK(total == d->n_outputs, SBI_ERR_INTERNAL, "%s: dataset sizes sum to %lld, n_outputs is %lld", path,
              (long long)total, (long long)d->n_outputs);
    SBI_CHECK(d->index_begin >= 0 && d->index_end >= d->index_begin && d->index_end <= d->n_simulations,
              SBI_ERR_INTERNAL, "%s: index range [%lld, %lld) outside [0, %lld)", path, (long long)d->index_begin,
              (long long)d->index_end, (long long)d->n_simulations);
    SBI_CHECK(d->split_rows[0] >= 0 && d->split_rows[1] >= 0 && d->split_rows[2] >= 0 &&
                  d->split_rows[0] + d->split_rows[1] + d->split_rows[2] == d->index_end - d->index_begin,
              SBI_ERR_INTERNAL, "%s: split rows %lld + %lld + %lld do not add up to the %lld indices held", path,
              (long long)d->split_rows[0], (long long)d->split_rows[1], (long long)d->split_rows[2],
              (long long)(d->index_end - d->index_begin));
    SBI_CHECK(d->shard_count >= 0 && (d->shard_count == 0 || (d->shard_index >= 0 && d->shard_index < d->shard_count)),
              SBI_ERR_INTERNAL, "%s: bad shard %d/%d", path, d->shard_index, d->shard_count);
    SBI_CHECK(d->batch_size > 0, SBI_ERR_INTERNAL, "%s: batch size must be positive", path);
    return 0;
}

static int desc_copy(sbi_corpus_desc *dst, const sbi_corpus_desc *src)
{
    memset(dst, 0, sizeof *dst);
    *dst = *src;
    dst->param_names = NULL;
    dst->dataset_names = NULL;
    dst->dataset_sizes = NULL;
    dst->coordinates = NULL;
    dst->uncertainties = NULL;
    dst->task_json = NULL;
    dst->n_params = 0;
    dst->n_datasets = 0;
    SBI_CALLOC(dst->param_names, src->n_params);
    dst->n_params = src->n_params;
    for (int i = 0; i < src->n_params; ++i) {
        dst->param_names[i] = strdup(src->param_names[i]);
        SBI_CHECK(dst->param_names[i], SBI_ERR_INTERNAL, "out of memory");
    }
    SBI_CALLOC(dst->dataset_names, src->n_datasets);
    SBI_CALLOC(dst->dataset_sizes, src->n_datasets);
    SBI_CALLOC(dst->coordinates, src->n_datasets);
    SBI_CALLOC(dst->uncertainties, src->n_datasets);
    dst->n_datasets = src->n_datasets;
    for (int k = 0; k < src->n_datasets; ++k) {
        dst->dataset_names[k] = strdup(src->dataset_names[k]);
        SBI_CHECK(dst->dataset_names[k], SBI_ERR_INTERNAL, "out of memory");
        dst->dataset_sizes[k] = src->dataset_sizes[k];
        SBI_CALL(dup_doubles(src->coordinates ? src->coordinates[k] : NULL, src->dataset_sizes[k],
                             &dst->coordinates[k]));
        SBI_CALL(dup_doubles(src->uncertainties ? src->uncertainties[k] : NULL, src->dataset_sizes[k],
                             &dst->uncertainties[k]));
    }
    dst->task_json = strdup(src->task_json ? src->task_json : "{}");
    SBI_CHECK(dst->task_json, SBI_ERR_INTERNAL, "out of memory");
    return 0;
}

/* ---- handles -------------------------------------------------------------- */

static int corpus_alloc(const sbi_comm *c, const char *path, int writer, sbi_corpus *out)
{
    sbi_corpus k;
    SBI_CALLOC(k, 1);
    k->comm = *c;
    snprintf(k->path, sizeof k->path, "%s", path);
    snprintf(k->file_path, sizeof k->file_path, writer ? "%s.partial" : "%s", path);
    k->writer = writer;
    k->file = k->dxpl_coll = k->dxpl_ind = H5I_INVALID_HID;
    for (int s = 0; s < 3; ++s) {
        for (int t = 0; t < 3; ++t) k->theta[s][t] = H5I_INVALID_HID;
        k->sim_index[s] = H5I_INVALID_HID;
    }
    for (int i = 0; i < N_STATS; ++i) k->stats[i] = H5I_INVALID_HID;
    *out = k;
    return 0;
}

/* Close every dataset and the file (collective when the file is open), and
 * free the handle. */
static int corpus_release(sbi_corpus k)
{
    herr_t st = 0;
    for (int s = 0; s < 3; ++s) {
        for (int t = 0; t < 3; ++t) sbi__h5_close(&k->theta[s][t]);
        sbi__h5_close(&k->sim_index[s]);
        for (int d = 0; k->x[s] && d < k->desc.n_datasets; ++d) sbi__h5_close(&k->x[s][d]);
        free(k->x[s]);
    }
    for (int i = 0; i < N_STATS; ++i) sbi__h5_close(&k->stats[i]);
    sbi__h5_close(&k->dxpl_coll);
    sbi__h5_close(&k->dxpl_ind);
    if (k->file >= 0) st = H5Fclose(k->file);
    k->file = H5I_INVALID_HID;
    if (st < 0) {
        int e = sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Fclose");
        desc_clear(&k->desc);
        free(k->offsets);
        free(k);
        return e;
    }
    desc_clear(&k->desc);
    free(k->offsets);
    free(k);
    return 0;
}

static int make_offsets(sbi_corpus k)
{
    int64_t off = 0;
    SBI_MALLOC(k->offsets, k->desc.n_datasets);
    for (int d = 0; d < k->desc.n_datasets; ++d) {
        k->offsets[d] = off;
        off += k->desc.dataset_sizes[d];
    }
    for (int s = 0; s < 3; ++s) {
        SBI_MALLOC(k->x[s], k->desc.n_datasets);
        for (int d = 0; d < k->desc.n_datasets; ++d) k->x[s][d] = H5I_INVALID_HID;
    }
    return 0;
}

/* File access for the shared corpus (see the top of this file). */
static int corpus_fapl(const sbi_comm *c, hid_t *fapl)
{
    hsize_t align = 1u << 20;
    const char *env = getenv("EXOSBI_HDF5_ALIGNMENT");
    if (env && atoll(env) > 0) align = (hsize_t)atoll(env);
    SBI_CALL_H5(*fapl = H5Pcreate(H5P_FILE_ACCESS));
    SBI_CALL_H5(H5Pset_fapl_mpio(*fapl, c->comm, MPI_INFO_NULL));
    SBI_CALL_H5(H5Pset_all_coll_metadata_ops(*fapl, 1));
    SBI_CALL_H5(H5Pset_coll_metadata_write(*fapl, 1));
    SBI_CALL_H5(H5Pset_alignment(*fapl, align, align));
    SBI_CALL_H5(H5Pset_libver_bounds(*fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    return 0;
}

static int make_dxpls(sbi_corpus k)
{
    SBI_CALL_H5(k->dxpl_coll = H5Pcreate(H5P_DATASET_XFER));
    SBI_CALL_H5(H5Pset_dxpl_mpio(k->dxpl_coll, H5FD_MPIO_COLLECTIVE));
    SBI_CALL_H5(k->dxpl_ind = H5Pcreate(H5P_DATASET_XFER));
    SBI_CALL_H5(H5Pset_dxpl_mpio(k->dxpl_ind, H5FD_MPIO_INDEPENDENT));
    return 0;
}

/* ---- creation ------------------------------------------------------------- */

/* A dataset allocated now, contiguous, never filled. */
static int create_dataset(sbi_corpus k, const char *name, hid_t ftype, int rank, const hsize_t *dims, hid_t *dset)
{
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
    SBI_CALL_H5_AT(k->file_path, space = H5Screate_simple(rank, dims, NULL));
    SBI_CALL_H5_AT(k->file_path, dcpl = H5Pcreate(H5P_DATASET_CREATE));
    SBI_CALL_H5_AT(k->file_path, H5Pset_layout(dcpl, H5D_CONTIGUOUS));
    SBI_CALL_H5_AT(k->file_path, H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY));
    SBI_CALL_H5_AT(k->file_path, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
    SBI_CALL_H5_AT(k->file_path, lcpl = sbi__h5_lcpl_intermediate());
    *dset = H5Dcreate2(k->file, name, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    SBI_CALL_H5_AT(k->file_path, *dset);
    return 0;
}

/* Write a whole small dataset: rank 0 transfers everything, the others
 * nothing, in one collective call. */
static int write_whole(sbi_corpus k, hid_t dset, hid_t mtype, const void *data)
{
    static const double dummy = 0;
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    hssize_t n;
    herr_t st;
    SBI_CALL_H5_AT(k->file_path, fspace = H5Dget_space(dset));
    n = H5Sget_simple_extent_npoints(fspace);
    if (n == 0) {
        H5Sclose(fspace);
        return 0;
    }
    if (k->comm.rank == 0) {
        mspace = H5Scopy(fspace);
        H5Sselect_all(fspace);
    } else {
        hsize_t one = 1;
        mspace = H5Screate_simple(1, &one, NULL);
        H5Sselect_none(mspace);
        H5Sselect_none(fspace);
    }
    st = H5Dwrite(dset, mtype, mspace, fspace, k->dxpl_coll, k->comm.rank == 0 ? data : (const void *)&dummy);
    H5Sclose(mspace);
    H5Sclose(fspace);
    SBI_CALL_H5_AT(k->file_path, st);
    return 0;
}

static int create_small(sbi_corpus k, const char *name, hid_t ftype, hid_t mtype, hsize_t n, const void *data)
{
    hid_t dset;
    int st;
    SBI_CALL(create_dataset(k, name, ftype, 1, &n, &dset));
    st = write_whole(k, dset, mtype, data);
    H5Dclose(dset);
    SBI_CALL(st);
    return 0;
}

static int write_root_attrs(sbi_corpus k)
{
    const sbi_corpus_desc *d = &k->desc;
    char creator[256];
    hid_t f = k->file;
    snprintf(creator, sizeof creator, "exosbi %s (git %s), %d MPI ranks", EXOSBI_VERSION, EXOSBI_GIT_SHA,
             k->comm.size);
    SBI_CALL(sbi__h5_attr_put_string(f, "format", SBI_CORPUS_FORMAT));
    SBI_CALL(sbi__h5_attr_put_int64(f, "format_version", SBI_CORPUS_FORMAT_VERSION));
    SBI_CALL(sbi__h5_attr_put_string(f, "task", d->task_json));
    SBI_CALL(sbi__h5_attr_put_string(f, "fingerprint", d->fingerprint));
    SBI_CALL(sbi__h5_attr_put_uint64(f, "seed", d->seed));
    SBI_CALL(sbi__h5_attr_put_int64(f, "n_simulations", d->n_simulations));
    SBI_CALL(sbi__h5_attr_put_int64(f, "batch_size", d->batch_size));
    SBI_CALL(sbi__h5_attr_put_int64(f, "n_params", d->n_params));
    SBI_CALL(sbi__h5_attr_put_int64(f, "n_outputs", d->n_outputs));
    SBI_CALL(sbi__h5_attr_put_int64(f, "complete", 0));
    SBI_CALL(sbi__h5_attr_put_int64(f, "batches_done", 0));
    SBI_CALL(sbi__h5_attr_put_int64(f, "invalid_redrawn", 0));
    SBI_CALL(sbi__h5_attr_put_int64(f, "shard_index", d->shard_index));
    SBI_CALL(sbi__h5_attr_put_int64(f, "shard_count", d->shard_count));
    SBI_CALL(sbi__h5_attr_put_int64(f, "index_begin", d->index_begin));
    SBI_CALL(sbi__h5_attr_put_int64(f, "index_end", d->index_end));
    SBI_CALL(sbi__h5_attr_put_string(f, "creator", creator));
    return 0;
}

static int create_layout(sbi_corpus k)
{
    const sbi_corpus_desc *d = &k->desc;
    char name[512];
    hid_t type, group;
    char *packed = NULL;
    int st;

    SBI_CALL(write_root_attrs(k));

    SBI_CALL(sbi__h5_string_type(d->n_params, (const char *const *)d->param_names, &type));
    st = sbi__h5_pack_strings(d->n_params, (const char *const *)d->param_names, H5Tget_size(type), &packed);
    if (!st) st = create_small(k, "/parameters/names", type, type, (hsize_t)d->n_params, packed);
    free(packed);
    H5Tclose(type);
    SBI_CALL(st);

    for (int i = 0; i < d->n_datasets; ++i) {
        snprintf(name, sizeof name, "/datasets/%s", d->dataset_names[i]);
        {
            hid_t lcpl;
            SBI_CALL_H5_AT(k->file_path, lcpl = sbi__h5_lcpl_intermediate());
            group = H5Gcreate2(k->file, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
            H5Pclose(lcpl);
            SBI_CALL_H5_AT(k->file_path, group);
        }
        /* The order of the datasets in the observation vector. */
        st = sbi__h5_attr_put_int64(group, "index", i);
        if (!st) st = sbi__h5_attr_put_int64(group, "offset", k->offsets[i]);
        if (!st) st = sbi__h5_attr_put_int64(group, "size", d->dataset_sizes[i]);
        H5Gclose(group);
        SBI_CALL(st);
        if (d->coordinates && d->coordinates[i]) {
            snprintf(name, sizeof name, "/datasets/%s/coordinates", d->dataset_names[i]);
            SBI_CALL(create_small(k, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)d->dataset_sizes[i],
                                  d->coordinates[i]));
        }
        if (d->uncertainties && d->uncertainties[i]) {
            snprintf(name, sizeof name, "/datasets/%s/uncertainty", d->dataset_names[i]);
            SBI_CALL(create_small(k, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)d->dataset_sizes[i],
                                  d->uncertainties[i]));
        }
    }

    for (int s = 0; s < 3; ++s) {
        hsize_t dims[2] = {(hsize_t)d->split_rows[s], (hsize_t)d->n_params};
        for (int t = 0; t < 3; ++t) {
            snprintf(name, sizeof name, "/%s/%s", split_names[s], theta_names[t]);
            SBI_CALL(create_dataset(k, name, H5T_IEEE_F64LE, 2, dims, &k->theta[s][t]));
        }
        for (int i = 0; i < d->n_datasets; ++i) {
            hsize_t xd[2] = {(hsize_t)d->split_rows[s], (hsize_t)d->dataset_sizes[i]};
            snprintf(name, sizeof name, "/%s/x/%s", split_names[s], d->dataset_names[i]);
            SBI_CALL(create_dataset(k, name, H5T_IEEE_F32LE, 2, xd, &k->x[s][i]));
        }
        snprintf(name, sizeof name, "/%s/sim_index", split_names[s]);
        SBI_CALL(create_dataset(k, name, H5T_STD_I64LE, 1, dims, &k->sim_index[s]));
    }
    /* Make the empty corpus durable, so that a kill before the first batch
     * still leaves a file that resumes. */
    SBI_CALL_H5_AT(k->file_path, H5Fflush(k->file, H5F_SCOPE_GLOBAL));
    return 0;
}

static int create_impl(sbi_corpus k, const sbi_corpus_desc *desc)
{
    hid_t fapl;
    SBI_CALL(desc_validate(desc, k->path));
    SBI_CALL(desc_copy(&k->desc, desc));
    SBI_CALL(make_offsets(k));
    SBI_CALL(make_dxpls(k));
    SBI_CALL(corpus_fapl(&k->comm, &fapl));
    k->file = H5Fcreate(k->file_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    SBI_CALL_H5_AT(k->file_path, k->file);
    SBI_CALL(create_layout(k));
    return 0;
}

int sbi_corpus_create(const sbi_comm *c, const char *path, const sbi_corpus_desc *desc, sbi_corpus *corpus)
{
    sbi_corpus k;
    int st;
    sbi__h5_init();
    *corpus = NULL;
    SBI_CALL(corpus_alloc(c, path, 1, &k));
    st = sbi_comm_agree(c, create_impl(k, desc));
    if (st) {
        corpus_release(k);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *corpus = k;
    return 0;
}

/* ---- opening an existing file --------------------------------------------- */

static int open_file(sbi_corpus k, unsigned flags)
{
    struct stat sb;
    hid_t fapl;
    char msg[640];
    SBI_CHECK(stat(k->file_path, &sb) == 0, SBI_ERR_IO, "%s: cannot open: %s", k->file_path, strerror(errno));
    SBI_CHECK(S_ISREG(sb.st_mode), SBI_ERR_IO, "%s: not a regular file", k->file_path);
    SBI_CALL(corpus_fapl(&k->comm, &fapl));
    k->file = H5Fopen(k->file_path, flags, fapl);
    H5Pclose(fapl);
    if (k->file < 0) {
        sbi__h5_message(msg, sizeof msg);
        SBI_RAISE(SBI_ERR_IO, "%s: not a readable HDF5 file (truncated, corrupt or another format): %s",
                  k->file_path, msg);
    }
    return 0;
}

static int get_i64(sbi_corpus k, const char *name, int64_t *v)
{
    SBI_CALL(sbi__h5_attr_get_int64(k->file, k->file_path, name, v));
    return 0;
}

/* Open a 2-D (or 1-D when ncols < 0) dataset and check its shape; returns its rows. */
static int open_checked(sbi_corpus k, const char *name, int64_t ncols, hid_t *dset, int64_t *rows)
{
    hid_t space;
    hsize_t dims[H5S_MAX_RANK];
    int nd;
    htri_t ok = H5Lexists(k->file, name, H5P_DEFAULT);
    SBI_CHECK(ok > 0, SBI_ERR_IO, "%s: corrupt corpus: dataset '%s' is missing", k->file_path, name);
    SBI_CALL_H5_AT(k->file_path, *dset = H5Dopen2(k->file, name, H5P_DEFAULT));
    SBI_CALL_H5_AT(k->file_path, space = H5Dget_space(*dset));
    nd = H5Sget_simple_extent_ndims(space);
    if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    SBI_CHECK((ncols < 0 && nd == 1) || (ncols >= 0 && nd == 2 && (int64_t)dims[1] == ncols), SBI_ERR_IO,
              "%s: corrupt corpus: dataset '%s' has an unexpected shape", k->file_path, name);
    *rows = (int64_t)dims[0];
    return 0;
}

static int group_exists(sbi_corpus k, const char *name)
{
    htri_t e = H5Lexists(k->file, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

typedef struct name_list {
    int n, cap;
    char **names;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    name_list *l = data;
    (void)g;
    (void)info;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **p = realloc(l->names, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->names = p;
        l->cap = cap;
    }
    l->names[l->n] = strdup(name);
    if (!l->names[l->n]) return -1;
    l->n++;
    return 0;
}

/* Fill k->desc from the file and open every dataset. */
static int load_layout(sbi_corpus k)
{
    sbi_corpus_desc *d = &k->desc;
    char *format = NULL, name[512];
    int64_t v, version;
    hid_t dset;
    name_list list = {0, 0, NULL};
    int st;

    {
        htri_t has = H5Aexists(k->file, "format");
        SBI_CHECK(has > 0, SBI_ERR_IO, "%s: an HDF5 file, but not an exosbi corpus (no 'format' attribute)",
                  k->file_path);
    }
    SBI_CALL(sbi__h5_attr_get_string(k->file, k->file_path, "format", &format));
    st = strcmp(format, SBI_CORPUS_FORMAT);
    if (st) {
        sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__, "%s: is a '%s' file, not an exosbi corpus",
                   k->file_path, format);
        free(format);
        return SBI_ERR_IO;
    }
    free(format);
    SBI_CALL(get_i64(k, "format_version", &version));
    SBI_CHECK(version >= 1 && version <= SBI_CORPUS_FORMAT_VERSION, SBI_ERR_IO,
              "%s: corpus format version %lld is not supported by this exosbi (it reads version %d)", k->file_path,
              (long long)version, SBI_CORPUS_FORMAT_VERSION);
    SBI_CALL(get_i64(k, "complete", &v));
    k->complete = (int)v;
    SBI_CALL(sbi__h5_attr_get_string(k->file, k->file_path, "task", &d->task_json));
    {
        char *fp = NULL;
        SBI_CALL(sbi__h5_attr_get_string(k->file, k->file_path, "fingerprint", &fp));
        snprintf(d->fingerprint, sizeof d->fingerprint, "%s", fp);
        free(fp);
    }
    SBI_CALL(sbi__h5_attr_get_uint64(k->file, k->file_path, "seed", &d->seed));
    SBI_CALL(get_i64(k, "n_simulations", &d->n_simulations));
    SBI_CALL(get_i64(k, "batch_size", &v));
    d->batch_size = (int)v;
    SBI_CALL(get_i64(k, "n_params", &v));
    SBI_CHECK(v > 0 && v < (1 << 20), SBI_ERR_IO, "%s: corrupt corpus: n_params is %lld", k->file_path,
              (long long)v);
    SBI_CALL(get_i64(k, "n_outputs", &d->n_outputs));
    SBI_CALL(get_i64(k, "batches_done", &k->batches_done));
    SBI_CALL(get_i64(k, "invalid_redrawn", &k->invalid_redrawn));
    {
        int64_t si, sc;
        SBI_CALL(get_i64(k, "shard_index", &si));
        SBI_CALL(get_i64(k, "shard_count", &sc));
        d->shard_index = (int)si;
        d->shard_count = (int)sc;
    }
    SBI_CALL(get_i64(k, "index_begin", &d->index_begin));
    SBI_CALL(get_i64(k, "index_end", &d->index_end));

    /* Parameters. */
    SBI_CHECK(group_exists(k, "/parameters") && group_exists(k, "/parameters/names"), SBI_ERR_IO,
              "%s: corrupt corpus: /parameters/names is missing", k->file_path);
    SBI_CALL_H5_AT(k->file_path, dset = H5Dopen2(k->file, "/parameters/names", H5P_DEFAULT));
    {
        int n = 0;
        st = sbi__h5_read_strings(dset, k->file_path, H5P_DEFAULT, &n, &d->param_names);
        H5Dclose(dset);
        SBI_CALL(st);
        d->n_params = n;
        SBI_CHECK(n == (int)v, SBI_ERR_IO, "%s: corrupt corpus: %d parameter names for n_params = %lld",
                  k->file_path, n, (long long)v);
    }

    /* Datasets, in the order of their `index` attribute. */
    SBI_CHECK(group_exists(k, "/datasets"), SBI_ERR_IO, "%s: corrupt corpus: /datasets is missing", k->file_path);
    {
        hid_t g;
        herr_t it;
        SBI_CALL_H5_AT(k->file_path, g = H5Gopen2(k->file, "/datasets", H5P_DEFAULT));
        it = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &list);
        H5Gclose(g);
        if (it < 0) {
            for (int i = 0; i < list.n; ++i) free(list.names[i]);
            free(list.names);
            return sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Literate");
        }
    }
    st = 0;
    d->n_datasets = list.n;
    d->dataset_names = calloc((size_t)(list.n ? list.n : 1), sizeof *d->dataset_names);
    d->dataset_sizes = calloc((size_t)(list.n ? list.n : 1), sizeof *d->dataset_sizes);
    d->coordinates = calloc((size_t)(list.n ? list.n : 1), sizeof *d->coordinates);
    d->uncertainties = calloc((size_t)(list.n ? list.n : 1), sizeof *d->uncertainties);
    if (!d->dataset_names || !d->dataset_sizes || !d->coordinates || !d->uncertainties)
        st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
    for (int i = 0; !st && i < list.n; ++i) {
        hid_t g;
        int64_t idx = -1, size = 0;
        snprintf(name, sizeof name, "/datasets/%s", list.names[i]);
        g = H5Gopen2(k->file, name, H5P_DEFAULT);
        if (g < 0) {
            st = sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Gopen2");
            break;
        }
        st = sbi__h5_attr_get_int64(g, k->file_path, "index", &idx);
        if (!st) st = sbi__h5_attr_get_int64(g, k->file_path, "size", &size);
        H5Gclose(g);
        if (st) break;
        if (idx < 0 || idx >= list.n || d->dataset_names[idx] || size <= 0) {
            st = sbi__raise(SBI_ERR_IO, __FILE__, __LINE__, __func__,
                            "%s: corrupt corpus: bad index or size on /datasets/%s", k->file_path, list.names[i]);
            break;
        }
        d->dataset_names[idx] = list.names[i];
        list.names[i] = NULL;
        d->dataset_sizes[idx] = size;
    }
    for (int i = 0; i < list.n; ++i) free(list.names[i]);
    free(list.names);
    if (st) return sbi__trace(st, __FILE__, __LINE__, __func__);
    SBI_CHECK(d->n_datasets > 0, SBI_ERR_IO, "%s: corrupt corpus: no datasets", k->file_path);
    {
        int64_t total = 0;
        for (int i = 0; i < d->n_datasets; ++i) total += d->dataset_sizes[i];
        SBI_CHECK(total == d->n_outputs, SBI_ERR_IO, "%s: corrupt corpus: dataset sizes sum to %lld, n_outputs %lld",
                  k->file_path, (long long)total, (long long)d->n_outputs);
    }
    SBI_CALL(make_offsets(k));
    for (int i = 0; i < d->n_datasets; ++i) {
        double **arrays[2] = {&d->coordinates[i], &d->uncertainties[i]};
        const char *leaf[2] = {"coordinates", "uncertainty"};
        for (int a = 0; a < 2; ++a) {
            int64_t rows;
            snprintf(name, sizeof name, "/datasets/%s/%s", d->dataset_names[i], leaf[a]);
            if (!group_exists(k, name)) continue;
            SBI_CALL(open_checked(k, name, -1, &dset, &rows));
            if (rows != d->dataset_sizes[i]) {
                H5Dclose(dset);
                SBI_RAISE(SBI_ERR_IO, "%s: corrupt corpus: %s has %lld values", k->file_path, name, (long long)rows);
            }
            *arrays[a] = malloc((size_t)rows * sizeof(double));
            st = *arrays[a] ? 0 : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "out of memory");
            if (!st && H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *arrays[a]) < 0)
                st = sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Dread");
            H5Dclose(dset);
            SBI_CALL(st);
        }
    }

    /* Splits. */
    for (int s = 0; s < 3; ++s) {
        int64_t rows, r2;
        for (int t = 0; t < 3; ++t) {
            snprintf(name, sizeof name, "/%s/%s", split_names[s], theta_names[t]);
            SBI_CALL(open_checked(k, name, d->n_params, &k->theta[s][t], &rows));
            if (t == 0) d->split_rows[s] = rows;
            SBI_CHECK(rows == d->split_rows[s], SBI_ERR_IO, "%s: corrupt corpus: %s has %lld rows, expected %lld",
                      k->file_path, name, (long long)rows, (long long)d->split_rows[s]);
        }
        for (int i = 0; i < d->n_datasets; ++i) {
            snprintf(name, sizeof name, "/%s/x/%s", split_names[s], d->dataset_names[i]);
            SBI_CALL(open_checked(k, name, d->dataset_sizes[i], &k->x[s][i], &r2));
            SBI_CHECK(r2 == d->split_rows[s], SBI_ERR_IO, "%s: corrupt corpus: %s has %lld rows, expected %lld",
                      k->file_path, name, (long long)r2, (long long)d->split_rows[s]);
        }
        snprintf(name, sizeof name, "/%s/sim_index", split_names[s]);
        SBI_CALL(open_checked(k, name, -1, &k->sim_index[s], &r2));
        SBI_CHECK(r2 == d->split_rows[s], SBI_ERR_IO, "%s: corrupt corpus: %s has %lld rows, expected %lld",
                  k->file_path, name, (long long)r2, (long long)d->split_rows[s]);
    }
    SBI_CHECK(d->split_rows[0] + d->split_rows[1] + d->split_rows[2] == d->index_end - d->index_begin, SBI_ERR_IO,
              "%s: corrupt corpus: the splits hold %lld rows for indices [%lld, %lld)", k->file_path,
              (long long)(d->split_rows[0] + d->split_rows[1] + d->split_rows[2]), (long long)d->index_begin,
              (long long)d->index_end);

    /* Normalisation statistics, present once the corpus is complete (not in shards). */
    if (group_exists(k, "/normalization") && group_exists(k, "/normalization/x") &&
        group_exists(k, "/normalization/theta_unconstrained")) {
        int all = 1;
        for (int i = 0; i < N_STATS; ++i) all = all && group_exists(k, stat_paths[i]);
        if (all) {
            for (int i = 0; i < N_STATS; ++i) {
                int64_t rows;
                SBI_CALL(open_checked(k, stat_paths[i], -1, &k->stats[i], &rows));
                SBI_CHECK(rows == (i < STAT_T_MEAN ? d->n_outputs : d->n_params), SBI_ERR_IO,
                          "%s: corrupt corpus: %s has %lld values", k->file_path, stat_paths[i], (long long)rows);
            }
            k->has_stats = 1;
        }
    }
    return 0;
}

static int open_impl(sbi_corpus k)
{
    SBI_CALL(make_dxpls(k));
    SBI_CALL(open_file(k, H5F_ACC_RDONLY));
    SBI_CALL(load_layout(k));
    SBI_CHECK(k->complete, SBI_ERR_IO, "%s is incomplete; resume it with exosbi simulate --resume", k->file_path);
    return 0;
}

int sbi_corpus_open(const sbi_comm *c, const char *path, sbi_corpus *corpus)
{
    sbi_corpus k;
    int st;
    sbi__h5_init();
    *corpus = NULL;
    SBI_CALL(corpus_alloc(c, path, 0, &k));
    st = sbi_comm_agree(c, open_impl(k));
    if (st) {
        corpus_release(k);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *corpus = k;
    return 0;
}

#define MISMATCH(field, fmt, a, b)                                                                           \
    SBI_CHECK((a) == (b), SBI_ERR_INCOMPATIBLE,                                                              \
              "%s cannot be resumed by this run: its " field " is " fmt " but this run's is " fmt                \
              " (delete it to start over)",                                                                  \
              k->file_path, (a), (b))

static int resume_impl(sbi_corpus k, const sbi_corpus_desc *desc)
{
    const sbi_corpus_desc *f = &k->desc;
    SBI_CALL(desc_validate(desc, k->path));
    SBI_CALL(make_dxpls(k));
    SBI_CALL(open_file(k, H5F_ACC_RDWR));
    SBI_CALL(load_layout(k));
    SBI_CHECK(!strcmp(f->fingerprint, desc->fingerprint), SBI_ERR_INCOMPATIBLE,
              "%s was written for a different task (fingerprint %.12s..., this task has %.12s...); "
              "delete it to start over",
              k->file_path, f->fingerprint, desc->fingerprint);
    MISMATCH("n_simulations", "%lld", (long long)f->n_simulations, (long long)desc->n_simulations);
    MISMATCH("batch_size", "%d", f->batch_size, desc->batch_size);
    MISMATCH("seed", "%llu", (unsigned long long)f->seed, (unsigned long long)desc->seed);
    MISMATCH("shard count", "%d", f->shard_count, desc->shard_count);
    MISMATCH("shard index", "%d", f->shard_index, desc->shard_index);
    MISMATCH("first index", "%lld", (long long)f->index_begin, (long long)desc->index_begin);
    MISMATCH("end index", "%lld", (long long)f->index_end, (long long)desc->index_end);
    MISMATCH("number of parameters", "%d", f->n_params, desc->n_params);
    MISMATCH("observation length", "%lld", (long long)f->n_outputs, (long long)desc->n_outputs);
    for (int s = 0; s < 3; ++s) MISMATCH("split size", "%lld", (long long)f->split_rows[s], (long long)desc->split_rows[s]);
    return 0;
}

int sbi_corpus_resume(const sbi_comm *c, const char *path, const sbi_corpus_desc *desc, sbi_corpus *corpus,
                      int64_t *batches_done)
{
    sbi_corpus k;
    int st;
    sbi__h5_init();
    *corpus = NULL;
    SBI_CALL(corpus_alloc(c, path, 1, &k));
    st = sbi_comm_agree(c, resume_impl(k, desc));
    if (st) {
        corpus_release(k);
        return sbi__trace(st, __FILE__, __LINE__, __func__);
    }
    *batches_done = k->batches_done;
    *corpus = k;
    return 0;
}

/* ---- writing rows --------------------------------------------------------- */

/* One collective row write: rows [row0, row0 + count) of dset, taken from
 * columns [col0, col0 + ncols) of a (count, ld) memory buffer. */
static int write_block(sbi_corpus k, hid_t dset, hid_t mtype, int rank, int64_t row0, int64_t count, int64_t ld,
                       int64_t col0, int64_t ncols, const void *buf)
{
    static const double dummy = 0;
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    herr_t st = 0;
    SBI_CALL_H5_AT(k->file_path, fspace = H5Dget_space(dset));
    if (count > 0) {
        hsize_t fstart[2] = {(hsize_t)row0, 0}, fcount[2] = {(hsize_t)count, (hsize_t)ncols};
        hsize_t mdims[2] = {(hsize_t)count, (hsize_t)ld};
        hsize_t mstart[2] = {0, (hsize_t)col0};
        st = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL);
        if (st >= 0) mspace = H5Screate_simple(rank, mdims, NULL);
        if (mspace >= 0 && rank == 2 && (col0 != 0 || ncols != ld))
            st = H5Sselect_hyperslab(mspace, H5S_SELECT_SET, mstart, NULL, fcount, NULL);
    } else {
        hsize_t one[2] = {1, 1};
        st = H5Sselect_none(fspace);
        mspace = H5Screate_simple(rank, one, NULL);
        if (mspace >= 0) st = H5Sselect_none(mspace);
    }
    /* The collective call is made even when a selection failed, so that the
     * other ranks are not left waiting in it. */
    if (st < 0 || mspace < 0) {
        int e = sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Sselect_hyperslab");
        H5Sselect_none(fspace);
        sbi__h5_close(&mspace);
        {
            hsize_t one = 1;
            mspace = H5Screate_simple(1, &one, NULL);
            H5Sselect_none(mspace);
        }
        H5Dwrite(dset, mtype, mspace, fspace, k->dxpl_coll, &dummy);
        H5Sclose(mspace);
        H5Sclose(fspace);
        return e;
    }
    st = H5Dwrite(dset, mtype, mspace, fspace, k->dxpl_coll, count > 0 ? buf : (const void *)&dummy);
    H5Sclose(mspace);
    H5Sclose(fspace);
    SBI_CALL_H5_AT(k->file_path, st);
    return 0;
}

int sbi_corpus_write_rows(sbi_corpus k, int split, int64_t row0, int64_t count, const double *theta,
                          const double *theta_cube, const double *theta_unc, const float *x,
                          const int64_t *sim_index)
{
    const sbi_corpus_desc *d = &k->desc;
    const double *thetas[3] = {theta, theta_cube, theta_unc};
    double t0;
    int st = 0, e;

    if (!k->writer) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "%s is open read-only", k->path);
    else if (split < 0 || split > 2 || count < 0 || row0 < 0 || row0 + count > d->split_rows[split])
        st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                        "%s: rows [%lld, %lld) are outside split %d of %lld rows", k->file_path, (long long)row0,
                        (long long)(row0 + count), split, split >= 0 && split <= 2 ? (long long)d->split_rows[split] : 0LL);
    else if (count > 0 && (!theta || !theta_cube || !theta_unc || !x || !sim_index))
        st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "%s: a row array is missing", k->file_path);
    /* Argument errors are agreed before any collective call.  The agreement
     * also waits for the slowest rank, which is not time spent writing. */
    SBI_AGREE(&k->comm, st);
    t0 = sbi_wtime();

    for (int t = 0; t < 3; ++t) {
        e = write_block(k, k->theta[split][t], H5T_NATIVE_DOUBLE, 2, row0, count, d->n_params, 0, d->n_params,
                        thetas[t]);
        if (!st) st = e;
    }
    for (int i = 0; i < d->n_datasets; ++i) {
        e = write_block(k, k->x[split][i], H5T_NATIVE_FLOAT, 2, row0, count, d->n_outputs, k->offsets[i],
                        d->dataset_sizes[i], x);
        if (!st) st = e;
    }
    e = write_block(k, k->sim_index[split], H5T_NATIVE_INT64, 1, row0, count, 1, 0, 1, sim_index);
    if (!st) st = e;
    k->io_bytes += count * (int64_t)(3 * d->n_params * sizeof(double) + d->n_outputs * sizeof(float) + sizeof(int64_t));
    k->io_s += sbi_wtime() - t0;
    SBI_AGREE(&k->comm, st);
    return 0;
}

int sbi_corpus_mark_progress(sbi_corpus k, int64_t batches_done, int64_t invalid_redrawn)
{
    double t0;
    int st = 0, e;
    SBI_AGREE(&k->comm, k->writer ? 0 : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                                                   "%s is open read-only", k->path));
    t0 = sbi_wtime();
    st = sbi__h5_attr_put_int64(k->file, "batches_done", batches_done);
    e = sbi__h5_attr_put_int64(k->file, "invalid_redrawn", invalid_redrawn);
    if (!st) st = e;
    /* The flush writes the metadata (and the attributes above) collectively;
     * rows written so far are already in the file. */
    if (H5Fflush(k->file, H5F_SCOPE_GLOBAL) < 0 && !st)
        st = sbi__h5_error(k->file_path, __FILE__, __LINE__, __func__, "H5Fflush");
    k->io_s += sbi_wtime() - t0;
    SBI_AGREE(&k->comm, st);
    k->batches_done = batches_done;
    k->invalid_redrawn = invalid_redrawn;
    return 0;
}

/* Create (or, on a resumed file that already has them, reopen) one statistics dataset. */
static int stat_dataset(sbi_corpus k, int which, hsize_t n)
{
    if (k->stats[which] >= 0) return 0;
    if (group_exists(k, "/normalization") && group_exists(k, which < STAT_T_MEAN ? "/normalization/x"
                                                                                   : "/normalization/theta_unconstrained") &&
        group_exists(k, stat_paths[which])) {
        int64_t rows;
        SBI_CALL(open_checked(k, stat_paths[which], -1, &k->stats[which], &rows));
        SBI_CHECK(rows == (int64_t)n, SBI_ERR_IO, "%s: %s has %lld values, expected %llu", k->file_path,
                  stat_paths[which], (long long)rows, (unsigned long long)n);
        return 0;
    }
    SBI_CALL(create_dataset(k, stat_paths[which], H5T_IEEE_F64LE, 1, &n, &k->stats[which]));
    return 0;
}

static int write_stats_impl(sbi_corpus k, const double *const *arrays)
{
    int st = 0, e;
    for (int i = 0; i < N_STATS; ++i) {
        hsize_t n = (hsize_t)(i < STAT_T_MEAN ? k->desc.n_outputs : k->desc.n_params);
        SBI_CALL(stat_dataset(k, i, n));
    }
    for (int i = 0; i < N_STATS; ++i) {
        e = write_whole(k, k->stats[i], H5T_NATIVE_DOUBLE, arrays[i]);
        if (!st) st = e;
    }
    return st;
}

int sbi_corpus_write_stats(sbi_corpus k, const double *x_median, const double *x_iqr, const double *x_mean,
                           const double *x_std, const double *theta_mean, const double *theta_std)
{
    const double *arrays[N_STATS] = {x_median, x_iqr, x_mean, x_std, theta_mean, theta_std};
    double t0;
    int st = 0;
    if (!k->writer) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "%s is open read-only", k->path);
    for (int i = 0; !st && i < N_STATS; ++i)
        if (!arrays[i]) st = sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__, "missing statistics array");
    SBI_AGREE(&k->comm, st);
    t0 = sbi_wtime();
    st = write_stats_impl(k, arrays);
    k->io_s += sbi_wtime() - t0;
    SBI_AGREE(&k->comm, st);
    k->has_stats = 1;
    return 0;
}

int sbi_corpus_commit(sbi_corpus *kp)
{
    sbi_corpus k = *kp;
    char partial[4108], final_path[4096];
    int st = 0;
    if (!k) return 0;
    SBI_AGREE(&k->comm, k->writer ? 0 : sbi__raise(SBI_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                                                   "%s is open read-only", k->path));
    *kp = NULL;
    snprintf(partial, sizeof partial, "%s", k->file_path);
    snprintf(final_path, sizeof final_path, "%s", k->path);
    {
        sbi_comm comm = k->comm;
        st = sbi__h5_attr_put_int64(k->file, "complete", 1);
        {
            int e = corpus_release(k); /* collective close */
            if (!st) st = e;
        }
        SBI_AGREE(&comm, st);
        /* One rank renames; everyone learns whether it worked. */
        SBI_AGREE(&comm, comm.rank == 0 ? sbi_file_commit(partial, final_path) : 0);
    }
    return 0;
}

int sbi_corpus_close(sbi_corpus *kp)
{
    sbi_corpus k = *kp;
    sbi_comm comm;
    if (!k) return 0;
    *kp = NULL;
    comm = k->comm;
    SBI_AGREE(&comm, corpus_release(k));
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

const sbi_corpus_desc *sbi_corpus_get_desc(sbi_corpus k) { return &k->desc; }
int64_t sbi_corpus_invalid_redrawn(sbi_corpus k) { return k->invalid_redrawn; }
int64_t sbi_corpus_batches_done(sbi_corpus k) { return k->batches_done; }
int sbi_corpus_has_stats(sbi_corpus k) { return k->has_stats; }
const char *sbi_corpus_path(sbi_corpus k) { return k->path; }

void sbi_corpus_io_stats(sbi_corpus k, double *write_s, int64_t *bytes)
{
    if (write_s) *write_s = k->io_s;
    if (bytes) *bytes = k->io_bytes;
}

/* Independent read of rows [row0, row0+count) x columns [col0, col0+ncols) of
 * dset into columns [mcol0, mcol0+ncols) of a (count, ld) buffer. */
static int read_block(sbi_corpus k, hid_t dset, hid_t mtype, int rank, int64_t row0, int64_t count, int64_t col0,
                      int64_t ncols, int64_t ld, int64_t mcol0, void *buf)
{
    hid_t fspace, mspace;
    hsize_t fstart[2] = {(hsize_t)row0, (hsize_t)col0}, fcount[2] = {(hsize_t)count, (hsize_t)ncols};
    hsize_t mdims[2] = {(hsize_t)count, (hsize_t)ld}, mstart[2] = {0, (hsize_t)mcol0};
    herr_t st;
    if (count == 0 || ncols == 0) return 0;
    SBI_CALL_H5_AT(k->file_path, fspace = H5Dget_space(dset));
    st = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, fcount, NULL);
    mspace = st >= 0 ? H5Screate_simple(rank, mdims, NULL) : H5I_INVALID_HID;
    if (mspace >= 0 && rank == 2 && (mcol0 != 0 || ncols != ld))
        st = H5Sselect_hyperslab(mspace, H5S_SELECT_SET, mstart, NULL, fcount, NULL);
    if (st >= 0 && mspace >= 0) st = H5Dread(dset, mtype, mspace, fspace, k->dxpl_ind, buf);
    else st = -1;
    sbi__h5_close(&mspace);
    H5Sclose(fspace);
    SBI_CALL_H5_AT(k->file_path, st);
    return 0;
}

static int check_rows(sbi_corpus k, int split, int64_t row0, int64_t count)
{
    SBI_CHECK(split >= 0 && split < 3, SBI_ERR_INTERNAL, "%s: no split %d", k->path, split);
    SBI_CHECK(row0 >= 0 && count >= 0 && row0 + count <= k->desc.split_rows[split], SBI_ERR_INTERNAL,
              "%s: rows [%lld, %lld) are outside the %s split of %lld rows", k->path, (long long)row0,
              (long long)(row0 + count), split_names[split], (long long)k->desc.split_rows[split]);
    return 0;
}

int sbi_corpus_read_rows(sbi_corpus k, int split, int64_t row0, int64_t count, int space, double *theta, float *x,
                         int64_t *sim_index)
{
    const sbi_corpus_desc *d = &k->desc;
    SBI_CALL(check_rows(k, split, row0, count));
    SBI_CHECK(space >= 0 && space < 3, SBI_ERR_INTERNAL, "no parameter space %d", space);
    if (theta)
        SBI_CALL(read_block(k, k->theta[split][space], H5T_NATIVE_DOUBLE, 2, row0, count, 0, d->n_params,
                            d->n_params, 0, theta));
    if (x)
        for (int i = 0; i < d->n_datasets; ++i)
            SBI_CALL(read_block(k, k->x[split][i], H5T_NATIVE_FLOAT, 2, row0, count, 0, d->dataset_sizes[i],
                                d->n_outputs, k->offsets[i], x));
    if (sim_index)
        SBI_CALL(read_block(k, k->sim_index[split], H5T_NATIVE_INT64, 1, row0, count, 0, 1, 1, 0, sim_index));
    return 0;
}

int sbi_corpus_read_x_columns(sbi_corpus k, int split, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols,
                              float *out)
{
    const sbi_corpus_desc *d = &k->desc;
    SBI_CALL(check_rows(k, split, row0, nrows));
    SBI_CHECK(col0 >= 0 && ncols >= 0 && col0 + ncols <= d->n_outputs, SBI_ERR_INTERNAL,
              "%s: columns [%lld, %lld) are outside the %lld outputs", k->path, (long long)col0,
              (long long)(col0 + ncols), (long long)d->n_outputs);
    for (int i = 0; i < d->n_datasets; ++i) {
        int64_t lo = k->offsets[i], hi = lo + d->dataset_sizes[i];
        int64_t a = col0 > lo ? col0 : lo, b = col0 + ncols < hi ? col0 + ncols : hi;
        if (a >= b) continue;
        SBI_CALL(read_block(k, k->x[split][i], H5T_NATIVE_FLOAT, 2, row0, nrows, a - lo, b - a, ncols, a - col0,
                            out));
    }
    return 0;
}

int sbi_corpus_read_stats(sbi_corpus k, double *x_median, double *x_iqr, double *x_mean, double *x_std,
                          double *theta_mean, double *theta_std)
{
    double *arrays[N_STATS] = {x_median, x_iqr, x_mean, x_std, theta_mean, theta_std};
    SBI_CHECK(k->has_stats, SBI_ERR_IO,
              "%s has no normalisation statistics (a shard of a job array: join the shards with exosbi merge)",
              k->path);
    for (int i = 0; i < N_STATS; ++i) {
        if (!arrays[i]) continue;
        SBI_CALL_H5_AT(k->file_path,
                       H5Dread(k->stats[i], H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, k->dxpl_ind, arrays[i]));
    }
    return 0;
}
