/* The running engines behind 'umbra server' and 'umbra client'. Each takes a
 * validated config (borrowed for the call) and returns a CLI exit code. */
#ifndef UM_APP_RUN_H
#define UM_APP_RUN_H

#include "app/config.h"

int um_run_server(const um_config_t *cfg);
int um_run_client(const um_config_t *cfg);

#endif
