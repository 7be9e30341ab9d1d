/* Readers of tabulated opacities: collision-induced absorption (CIA) tables
 * and molecular line cross-section tables (src/io/opacity_*.c).
 *
 * These functions are the only code that opens opacity files; the kernels of
 * src/forward/rt receive plain arrays.  Formats (shared/FORWARD_MODEL.md 1(e),
 * 2, and shared/data/opacity/README.md):
 *   - CIA, petitRADTRANS 3 HDF5 (`*.ciatable.petitRADTRANS.h5`): `alpha`
 *     (n_T, n_nu) [cm^-1 amagat^-2], `wavenumbers` (n_nu) [cm^-1], `t` (n_T)
 *     [K], `mol_name` (2), `mol_mass` (2) [amu];
 *   - CIA, HITRAN `.cia` text (Richard et al. 2012, JQSRT 113, 1276): blocks of
 *     a header line (pair A20, nu_min F10.3, nu_max F10.3, npts I7, T F7.1,
 *     ...) followed by npts lines `nu sigma` [cm^-1, cm^5 molecule^-2];
 *   - CIA, the sectioned text tables of pyratbay (`@SPECIES`, `@TEMPERATURES`,
 *     `@DATA`: one row per wavenumber, one column per temperature)
 *     [cm^-1 amagat^-2];
 *   - lines, petitRADTRANS 3 line-by-line HDF5 (`*.xsec.petitRADTRANS.h5`):
 *     `xsecarr` (n_p, n_T, n_nu) [cm^2 molecule^-1], `bin_edges` (n_nu)
 *     [cm^-1] (the wavenumber points), `p` [bar], `t` [K], `mol_mass` [amu];
 *   - lines, ExoMolOP / TauREx 3 HDF5 (`*.xsec.TauREx.h5`): the same datasets,
 *     `p` with a mandatory `units` attribute (TauREx
 *     `taurex/opacity/hdf5opacity.py` converts it).
 *
 * Errors: a missing or unreadable file, a missing dataset or attribute, a
 * wrong shape, a non-finite or negative value, or a grid that is not
 * positive and strictly increasing is SBI_ERR_IO with a message naming the
 * file and the dataset (or line).  Units the reader does not know are
 * SBI_ERR_IO too.  Everything returned is in cgs units, and CIA
 * coefficients are converted to cm^5 molecule^-2.
 */
#ifndef EXOSBI_OPACITY_IO_H
#define EXOSBI_OPACITY_IO_H

#include <stdint.h>

#include "exosbi/core.h"

/* ---- collision-induced absorption ------------------------------------- */

typedef enum {
    SBI_CIA_AUTO = 0,  /* from the file's first bytes and its name */
    SBI_CIA_PRT_HDF5,  /* petitRADTRANS 3 `alpha` table */
    SBI_CIA_HITRAN,    /* HITRAN `.cia` blocks */
    SBI_CIA_SECTIONED  /* pyratbay / Borysow `@SPECIES @TEMPERATURES @DATA` text */
} sbi_cia_format;

/* One CIA table on a rectangular (temperature, wavenumber) grid. */
typedef struct sbi_cia_table {
    char species[2][16]; /* the colliding pair as the file names it ("" when it does not) */
    sbi_cia_format format;
    int n_t, n_nu;
    double *t;     /* (n_t) [K], strictly increasing */
    double *nu;    /* (n_nu) [cm^-1], strictly increasing */
    double *alpha; /* (n_t, n_nu) [cm^5 molecule^-2], >= 0 */
} sbi_cia_table;

/* Read `path` into *tab (fields owned by *tab; free with sbi_cia_table_free).
 *
 * HITRAN files hold one block per (temperature, wavenumber range).  Blocks
 * of the same temperature are joined; the table's wavenumbers are the union
 * of all blocks' wavenumbers, and each temperature row is the linear
 * interpolation in wavenumber of its own blocks, zero where none of them
 * reaches. */
int sbi_cia_table_read(const char *path, sbi_cia_format format, sbi_cia_table *tab);
void sbi_cia_table_free(sbi_cia_table *tab);
/* The format's name: "petitRADTRANS HDF5", "HITRAN", "sectioned text". */
const char *sbi_cia_format_name(sbi_cia_format format);

/* ---- line cross-section tables ---------------------------------------- */

typedef enum {
    SBI_LINE_AUTO = 0,  /* petitRADTRANS when `Date_ID` starts with "petitRADTRANS"
                           or the name contains ".petitRADTRANS.", else TauREx */
    SBI_LINE_PRT_LBL,   /* petitRADTRANS 3 line-by-line `xsecarr` */
    SBI_LINE_TAUREX     /* ExoMolOP / TauREx 3 `xsecarr` */
} sbi_line_format;

/* An open line table: its grids are read, the cross sections are read on
 * demand row by row (a table of 10^6 wavenumbers and 10^2 (P, T) points is
 * gigabytes; only the wavenumbers a model needs are ever held). */
typedef struct sbi_line_file_s *sbi_line_file;

typedef struct sbi_line_info {
    sbi_line_format format;
    char mol_name[32]; /* "" when the file has no `mol_name` */
    double mol_mass;   /* [amu]; 0 when the file has no `mol_mass` */
    int n_p, n_t;
    int64_t n_nu;
    const double *p;  /* (n_p) [bar], strictly increasing */
    const double *t;  /* (n_t) [K], strictly increasing */
    const double *nu; /* (n_nu) [cm^-1], strictly increasing */
} sbi_line_info;

/* Open `path`, check every dataset's shape and units, and read the grids.
 * info's arrays belong to the file handle. */
int sbi_line_file_open(const char *path, sbi_line_format format, sbi_line_file *f, sbi_line_info *info);
/* sigma (count) [cm^2 molecule^-1] = xsecarr[ip][it][j0 .. j0 + count);
 * a non-finite or negative value is SBI_ERR_IO naming the file, the dataset
 * and the (P, T) point. */
int sbi_line_file_read(sbi_line_file f, int ip, int it, int64_t j0, int64_t count, double *sigma);
void sbi_line_file_close(sbi_line_file *f);
const char *sbi_line_format_name(sbi_line_format format);

/* ---- reading once per communicator ------------------------------------ */

/* The *_on readers are collective over c.  With c NULL or of one rank the
 * calling rank reads alone.  Otherwise rank 0 of c reads, every rank
 * returns the same verdict (the failing code; on the ranks other than 0 it
 * carries SBI_ERR_REMOTE, see sbi_comm_agree) and, on success, every rank
 * holds an identical copy broadcast from rank 0 (src/io/opacity_shared.c
 * says why a broadcast rather than a shared-memory window). */
int sbi_cia_table_read_on(const sbi_comm *c, const char *path, sbi_cia_format format, sbi_cia_table *tab);

/* A line table resampled onto given wavenumbers: each (P, T) row linear in
 * wavenumber between the table's points, zero outside the table (the point
 * sampling petitRADTRANS applies to its line-by-line tables). */
typedef struct sbi_line_sampled {
    sbi_line_format format;
    char mol_name[32]; /* "" when the file has none */
    double mol_mass;   /* [amu]; 0 when the file has none */
    int n_p, n_t, w;
    double *p;         /* (n_p) [bar] */
    double *t;         /* (n_t) [K] */
    float *sigma;      /* (n_p, n_t, w) [cm^2 molecule^-1] */
} sbi_line_sampled;

/* Read `path` and resample it at nu (w) [cm^-1] (any order).  Only the rows'
 * wavenumbers that nu reaches are read.  Free with sbi_line_sampled_free. */
int sbi_line_table_sample_on(const sbi_comm *c, const char *path, sbi_line_format format, int w, const double *nu,
                             sbi_line_sampled *out);
void sbi_line_sampled_free(sbi_line_sampled *s);

/* ---- petitRADTRANS input_data ------------------------------------------ */

/* The three table kinds of a petitRADTRANS 3 `input_data` directory
 * (`petitRADTRANS/config/configuration.py: get_input_data_subpaths`):
 *   opacities/lines/line_by_line/<base>/<isotopologue>/<name>.xsec.petitRADTRANS.h5
 *   opacities/lines/correlated_k/<base>/<isotopologue>/<name>.ktable.petitRADTRANS.h5
 *   opacities/continuum/collision_induced_absorptions/<A--B>/<A--B-NatAbund>/<name>.ciatable.petitRADTRANS.h5 */
typedef enum { SBI_PRT_LINE_BY_LINE = 0, SBI_PRT_CORRELATED_K, SBI_PRT_CIA } sbi_prt_category;

/* "line_by_line", "correlated_k", "collision_induced_absorptions". */
const char *sbi_prt_category_name(sbi_prt_category category);

/* The input_data directory to use, into out[cap]: `setting` when it is not
 * NULL or empty, else $pRT_input_data_path, else `prt_input_data_path` of
 * the [Paths] section of ~/.petitradtrans/petitradtrans_config_file.ini
 * (where petitRADTRANS 3 keeps it).  *source names where it came from.
 * SBI_ERR_INPUT when none gives one. */
int sbi_prt_input_data_dir(const char *setting, char *out, size_t cap, const char **source);

/* The table of `species`, a petitRADTRANS species name
 * ([isotopes]name[-NatAbund][__source][.spectral info], e.g. H2O,
 * 1H2-16O__POKAZATEL, H2O.R1e6, H2--He for a CIA pair), under input_data.
 * The name's isotopes, source and spectral info narrow the candidates; a
 * name without isotopes means its main isotopologue (H2O: 1H2-16O), or the
 * natural-abundance one, when the directory has it.  Exactly one candidate
 * is the answer; of several, the one petitRADTRANS' configuration file names
 * in [Default files] for its directory; otherwise none or several is
 * SBI_ERR_INPUT naming the species, the directory searched and the
 * candidates. */
int sbi_prt_find_table(const char *input_data, sbi_prt_category category, const char *species, char *out,
                       size_t cap);
/* The same, collective over c: rank 0 searches, the path is broadcast. */
int sbi_prt_find_table_on(const sbi_comm *c, const char *input_data, sbi_prt_category category,
                          const char *species, char *out, size_t cap);

/* ---- correlated-k tables ------------------------------------------------
 * petitRADTRANS 3 `*.ktable.petitRADTRANS.h5` (writer `Radtrans.write_out_
 * rebin_ck_opacities` / `__file_conversion.py`; the ExoMolOP k-tables of
 * Chubb et al. 2021 use the same layout):
 *   kcoeff       (n_p, n_T, n_nu, n_g) [cm^2 molecule^-1], attribute `units`
 *                ("cm^2/molecule"), g fastest;
 *   bin_edges    (n_nu + 1) [cm^-1], increasing: the spectral bins;
 *   bin_centers  (n_nu) [cm^-1] (checked to lie in their bins when present);
 *   p            (n_p) [bar], attribute `units` ("bar");  t (n_T) [K];
 *   samples      (n_g) g-points in (0, 1), increasing;  weights (n_g) > 0,
 *                summing to 1 (pRT's default: two 8-point Gauss-Legendre sets
 *                on [0, 0.9] and [0.9, 1]);  ngauss (= n_g, when present);
 *   mol_mass     [amu];  mol_name;  method ("petit_samples"), wlrange [um],
 *                wnrange [cm^-1], DOI, Date_ID (not needed, not read).
 * Both `units` attributes are required (pRT and ExoMol write them); a table
 * without them, with a wrong shape, a grid that is not finite, positive and
 * strictly increasing, g-points outside (0, 1) or weights that do not sum
 * to 1 is SBI_ERR_IO naming the file and the dataset, like the readers
 * above.  Negative coefficients count as zero (pRT's loader). */

/* Most g-points a table may have. */
#define SBI_CK_MAX_G 64

typedef struct sbi_ck_file_s *sbi_ck_file;

typedef struct sbi_ck_info {
    char mol_name[32];      /* "" when the file has no `mol_name` */
    double mol_mass;        /* [amu]; 0 when the file has no `mol_mass` */
    int n_p, n_t, n_g;
    int64_t n_nu;           /* spectral bins */
    const double *p;        /* (n_p) [bar] */
    const double *t;        /* (n_t) [K] */
    const double *edges;    /* (n_nu + 1) [cm^-1], strictly increasing */
    const double *g;        /* (n_g) in (0, 1), strictly increasing */
    const double *weights;  /* (n_g), normalised to sum 1 */
} sbi_ck_info;

/* Whether `path` is an HDF5 file with a `kcoeff` dataset (a correlated-k
 * table); 0 for anything else, including files that cannot be opened. */
int sbi_opacity_file_is_ck(const char *path);
/* Open `path`, check it as above and read its grids (owned by the handle). */
int sbi_ck_file_open(const char *path, sbi_ck_file *f, sbi_ck_info *info);
/* k (count, n_g) [cm^2 molecule^-1] = kcoeff[ip][it][j0 .. j0 + count][:];
 * a non-finite value is SBI_ERR_IO naming the file, the dataset, the index
 * and the (P, T) point. */
int sbi_ck_file_read(sbi_ck_file f, int ip, int it, int64_t j0, int64_t count, double *k);
void sbi_ck_file_close(sbi_ck_file *f);

/* A correlated-k table rebinned onto model bins (sbi_rt_ck_rebin), read
 * once per communicator like the *_on readers above: rank 0 of c opens,
 * reads the table bins that reach the model bins and rebins them, every
 * rank returns the same verdict, and on success every rank holds an
 * identical copy.  Free with sbi_ck_rebinned_free. */
typedef struct sbi_ck_rebinned {
    char mol_name[32];                /* "" when the file has none */
    double mol_mass;                  /* [amu]; 0 when the file has none */
    int n_p, n_t, n_g, w;
    double g[SBI_CK_MAX_G];           /* (n_g) g-points */
    double weights[SBI_CK_MAX_G];     /* (n_g), normalised to sum 1 */
    double *p;                        /* (n_p) [bar] */
    double *t;                        /* (n_t) [K] */
    float *k;                         /* (n_p, n_t, w, n_g) [cm^2 molecule^-1] */
} sbi_ck_rebinned;

/* nu_lo, nu_hi (w) [cm^-1]: the model bins (sbi_rt_ck_model_bins). */
int sbi_ck_table_rebin_on(const sbi_comm *c, const char *path, int w, const double *nu_lo, const double *nu_hi,
                          sbi_ck_rebinned *out);
void sbi_ck_rebinned_free(sbi_ck_rebinned *r);
/* sbi_opacity_file_is_ck decided by rank 0 of c, the answer broadcast
 * (collective; c NULL: the calling rank alone). */
int sbi_opacity_file_is_ck_on(const sbi_comm *c, const char *path);

/* ---- small HDF5 files for tests and examples --------------------------- */

/* A dataset for sbi_opacity_h5_write: numbers (data, rank <= 4) or, with
 * `strings`, a 1-D list of n = dims[0] strings; `units`, when not NULL, is
 * written as the dataset's `units` attribute, as petitRADTRANS writes it. */
typedef struct sbi_opacity_h5_dataset {
    const char *name;
    int rank;
    int64_t dims[4];
    const double *data;
    const char *const *strings;
    const char *units;
} sbi_opacity_h5_dataset;

/* Write a new HDF5 file holding exactly these datasets (float64 numbers). */
int sbi_opacity_h5_write(const char *path, int n, const sbi_opacity_h5_dataset *datasets);

#endif
