/* include/exosbi/plugin.h: the ABI a plugin forward model implements (version 1).
 *
 * A task with `forward_model: {family: plugin, library: PATH, settings: {...}}`
 * loads PATH with dlopen and calls these three symbols.  The header is
 * self-contained so a plugin can be built without the rest of exosbi.
 */
#ifndef EXOSBI_PLUGIN_H
#define EXOSBI_PLUGIN_H

#define SBI_PLUGIN_ABI_VERSION 1

typedef struct sbi_plugin_info {
    int abi_version; /* set to SBI_PLUGIN_ABI_VERSION */
    int n_params;    /* must equal the task's number of parameters */
    int n_outputs;   /* length of one simulated observation vector */
} sbi_plugin_info;

/* settings_json: the task's forward_model.settings mapping, as JSON text. 0 = success. */
int sbi_plugin_init(const char *settings_json, sbi_plugin_info *info, void **state);
/* theta: n x n_params physical parameters (row-major); out: n x n_outputs.
   sim_index[r] and seed identify row r so a stochastic simulator is reproducible.
   Returns 0 on success; a row it cannot simulate is filled with NaN. */
int sbi_plugin_simulate(void *state, int n, const double *theta, const unsigned long long *sim_index,
                        unsigned long long seed, double *out);
void sbi_plugin_free(void *state);

#endif
