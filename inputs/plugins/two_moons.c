/* placeholder */
#include "exosbi/plugin.h"
int sbi_plugin_init(const char *settings_json, sbi_plugin_info *info, void **state) { (void)settings_json; (void)info; (void)state; return 1; }
int sbi_plugin_simulate(void *state, int n, const double *theta, const unsigned long long *sim_index, unsigned long long seed, double *out) { (void)state; (void)n; (void)theta; (void)sim_index; (void)seed; (void)out; return 1; }
void sbi_plugin_free(void *state) { (void)state; }
