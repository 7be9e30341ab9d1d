/* The plugin family: a user's shared library that implements
 * include/exosbi/plugin.h (ABI version 1), loaded with dlopen.
 *
 * The library stays loaded, and its state alive, until the forward model is
 * destroyed.  Every problem found while loading it is an input error that
 * names the library path; a failing simulate call is an internal error.
 */
#include "forward/forward_impl.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "exosbi/plugin.h"

/* Rows handed to the plugin per call; the simulation indices of one block are
 * converted to the ABI's integer type in a stack buffer of this length. */
#define PLUGIN_BLOCK 1024

typedef int (*plugin_init_fn)(const char *, sbi_plugin_info *, void **);
typedef int (*plugin_simulate_fn)(void *, int, const double *, const unsigned long long *, unsigned long long,
                                  double *);
typedef void (*plugin_free_fn)(void *);

typedef struct plugin_state {
    void *handle;       /* dlopen handle, owned */
    void *user;         /* the plugin's own state, released by free_fn */
    int user_live;      /* 1 once init succeeded: free_fn must be called */
    plugin_init_fn init_fn;
    plugin_simulate_fn simulate_fn;
    plugin_free_fn free_fn;
    sbi_plugin_info info;
    char path[SBI_PATH_MAX];
} plugin_state;

static void plugin_destroy(void *state)
{
    plugin_state *s = state;
    if (!s) return;
    if (s->user_live && s->free_fn) s->free_fn(s->user);
    if (s->handle) dlclose(s->handle);
    free(s);
}

static int plugin_symbol(plugin_state *s, const char *origin, const char *name, void **sym)
{
    const char *why;
    dlerror();
    *sym = dlsym(s->handle, name);
    why = dlerror();
    SBI_CHECK(*sym && !why, SBI_ERR_INPUT, "%s: forward_model.library: plugin %s does not export %s: %s", origin,
              s->path, name, why ? why : "the symbol is NULL");
    return SBI_OK;
}

static int plugin_load(const sbi_task *task, plugin_state *s)
{
    const char *origin = sbi__forward_origin(task);
    void *sym;
    char *settings;
    int rc;

    SBI_CHECK(task->plugin_library[0], SBI_ERR_INPUT,
              "%s: forward_model.library: the plugin family needs the path of a shared library", origin);
    snprintf(s->path, sizeof s->path, "%s", task->plugin_library);
    s->handle = dlopen(s->path, RTLD_NOW | RTLD_LOCAL);
    if (!s->handle) {
        const char *why = dlerror();
        SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.library: cannot load plugin %s: %s", origin, s->path,
                  why ? why : "unknown dlopen error");
    }
    /* POSIX guarantees that dlsym's object pointer converts to a function pointer. */
    SBI_CALL(plugin_symbol(s, origin, "sbi_plugin_init", &sym));
    s->init_fn = (plugin_init_fn)sym;
    SBI_CALL(plugin_symbol(s, origin, "sbi_plugin_simulate", &sym));
    s->simulate_fn = (plugin_simulate_fn)sym;
    SBI_CALL(plugin_symbol(s, origin, "sbi_plugin_free", &sym));
    s->free_fn = (plugin_free_fn)sym;

    if (task->forward_settings) {
        SBI_CHECK(cJSON_IsObject(task->forward_settings), SBI_ERR_INPUT,
                  "%s: forward_model.settings: expected a mapping", origin);
        settings = cJSON_PrintUnformatted(task->forward_settings);
        SBI_CHECK(settings, SBI_ERR_INTERNAL, "%s: forward_model.settings: cannot serialise to JSON", origin);
    } else {
        settings = NULL;
    }
    memset(&s->info, 0, sizeof s->info);
    rc = s->init_fn(settings ? settings : "{}", &s->info, &s->user);
    if (rc != 0) {
        char shown[512];
        snprintf(shown, sizeof shown, "%s", settings ? settings : "{}");
        cJSON_free(settings);
        SBI_RAISE(SBI_ERR_INPUT, "%s: forward_model.settings: plugin %s rejected its settings %s (sbi_plugin_init "
                  "returned %d)",
                  origin, s->path, shown, rc);
    }
    cJSON_free(settings);
    s->user_live = 1;

    SBI_CHECK(s->info.abi_version == SBI_PLUGIN_ABI_VERSION, SBI_ERR_INPUT,
              "%s: forward_model.library: plugin %s implements ABI version %d, this program needs %d", origin,
              s->path, s->info.abi_version, SBI_PLUGIN_ABI_VERSION);
    SBI_CHECK(s->info.n_params == task->n_params, SBI_ERR_INPUT,
              "%s: forward_model.library: plugin %s reports n_params = %d but the task has %d parameters", origin,
              s->path, s->info.n_params, task->n_params);
    SBI_CHECK(s->info.n_outputs == task->n_outputs, SBI_ERR_INPUT,
              "%s: forward_model.library: plugin %s reports n_outputs = %d but the datasets total %lld values",
              origin, s->path, s->info.n_outputs, (long long)task->n_outputs);
    return SBI_OK;
}

static int plugin_create(const sbi_task *task, void **state, int64_t *n_outputs)
{
    plugin_state *s;
    int err;

    SBI_CALLOC(s, 1);
    err = plugin_load(task, s);
    if (err) {
        plugin_destroy(s);
        return sbi__trace(err, __FILE__, __LINE__, __func__);
    }
    *state = s;
    *n_outputs = s->info.n_outputs;
    return SBI_OK;
}

static int plugin_simulate(void *state, int64_t n, const double *theta, const uint64_t *sim_index, uint64_t seed,
                           double *out)
{
    const plugin_state *s = state;
    const int64_t p = s->info.n_params, m = s->info.n_outputs;
    unsigned long long index[PLUGIN_BLOCK];

    for (int64_t r0 = 0; r0 < n; r0 += PLUGIN_BLOCK) {
        int rows = (int)(n - r0 < PLUGIN_BLOCK ? n - r0 : PLUGIN_BLOCK), rc;
        for (int r = 0; r < rows; ++r) index[r] = (unsigned long long)sim_index[r0 + r];
        rc = s->simulate_fn(s->user, rows, theta + r0 * p, index, (unsigned long long)seed, out + r0 * m);
        SBI_CHECK(rc == 0, SBI_ERR_INTERNAL,
                  "plugin %s: sbi_plugin_simulate returned %d for simulations %llu..%llu", s->path, rc,
                  index[0], index[rows - 1]);
    }
    return SBI_OK;
}

const sbi_forward_ops sbi__forward_plugin_ops = {
    .family = "plugin",
    .create = plugin_create,
    .simulate = plugin_simulate,
    .destroy = plugin_destroy,
};
