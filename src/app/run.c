/* Engine entry points. The tunnel engine (session + mux over the tcp
 * transport) is not wired yet: until it is, both say so plainly and exit
 * with the runtime code, after the configuration has been fully validated. */
#include "app/run.h"

#include "app/cli.h"

int um_run_server(const um_config_t *cfg)
{
    um_cli_error("server",
                 "%s is valid, but the tunnel engine is not built yet in this version "
                 "(use --check to validate only)",
                 cfg->path);
    return UM_EXIT_RUNTIME;
}

int um_run_client(const um_config_t *cfg)
{
    um_cli_error("client", "configuration is valid, but the tunnel engine is not built yet in "
                           "this version (use --check to validate only)");
    (void)cfg;
    return UM_EXIT_RUNTIME;
}
