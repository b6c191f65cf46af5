/* libcurl loaded on first use: see curl_dl.h. */
#include "app/curl_dl.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "util/log.h"

static um_curl_t fns;
static bool tried, ok;

static bool sym(void *lib, const char *name, void *out)
{
    void *p = dlsym(lib, name);
    if (!p) {
        UM_WARN("libcurl: no symbol %s", name);
        return false;
    }
    /* POSIX: a data pointer from dlsym holds the function's address. */
    memcpy(out, &p, sizeof(p));
    return true;
}

const um_curl_t *um_curl_get(void)
{
    if (tried) return ok ? &fns : NULL;
    tried = true;
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        UM_WARN("cannot load libcurl (list-url fetches need it): %s", dlerror());
        return NULL;
    }
    CURLcode (*global_init)(long flags) = NULL;
    if (!sym(lib, "curl_global_init", &global_init) ||
        !sym(lib, "curl_easy_init", &fns.easy_init) ||
        !sym(lib, "curl_easy_setopt", &fns.easy_setopt) ||
        !sym(lib, "curl_easy_perform", &fns.easy_perform) ||
        !sym(lib, "curl_easy_cleanup", &fns.easy_cleanup) ||
        !sym(lib, "curl_easy_strerror", &fns.easy_strerror))
        return NULL;
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        UM_WARN("libcurl: curl_global_init failed");
        return NULL;
    }
    ok = true;
    return &fns;
}
