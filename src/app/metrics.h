/* The metrics endpoint of 'umbra server' and 'umbra client' (metrics = ADDR,
 * --metrics ADDR; docs/CONFIG.md): a small HTTP/1.1 responder on the loop
 * that answers GET /metrics with the Prometheus text exposition format
 * (version 0.0.4) and everything else with 404. One request per
 * connection; requests are bounded (UM_METRICS_REQ_MAX bytes, header
 * included), so are connections at once and their lifetime. */
#ifndef UM_APP_METRICS_H
#define UM_APP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/addr.h"

#define UM_METRICS_REQ_MAX    4096
#define UM_METRICS_CONNS_MAX  32
#define UM_METRICS_TIMEOUT_MS 5000

/* A growing text (the exposition), NUL-terminated; oom once an append
 * failed (the text is then dropped and the answer is a 500). */
typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} um_mtext_t;

void um_mtext_printf(um_mtext_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help\n# TYPE name type\n" */
void um_mtext_family(um_mtext_t *t, const char *name, const char *type, const char *help);
/* One sample: name{label="value"} v (label NULL: no labels); the label
 * value is escaped (backslash, quote, newline). */
void um_mtext_sample(um_mtext_t *t, const char *name, const char *label, const char *value,
                     double v);
void um_mtext_free(um_mtext_t *t);

/* A histogram family: counts per bucket (not cumulative; counts[nb] is
 * above every bound), bounds in seconds, ascending. */
void um_mtext_hist(um_mtext_t *t, const char *name, const char *help, const double *bounds,
                   const uint64_t *counts, size_t nb, double sum);

/* The loop thread's CPU time (user, system) and the loop's idle time, in
 * seconds, as counters umbra_cpu_seconds_total{mode} and
 * umbra_loop_idle_seconds_total (the loop must have been configured with
 * UV_METRICS_IDLE_TIME, which um_metrics_start does). */
void um_mtext_loop(um_mtext_t *t, uv_loop_t *loop);

/* What a request asks for: 200 for GET /metrics (a query string is
 * ignored), 404 for any other well-formed request line, 400 for a
 * malformed one, 0 when the header is not complete yet (no empty line in
 * n bytes). Pure. */
int um_metrics_route(const char *req, size_t n);

typedef struct um_metrics um_metrics_t;
typedef void (*um_metrics_render_cb)(um_mtext_t *t, void *ud);

/* Listens on addr (an IP literal and port). 0, or a UM_E* code. */
int um_metrics_start(uv_loop_t *loop, const um_addr_t *addr, um_metrics_render_cb cb, void *ud,
                     um_metrics_t **out);
/* Closes the listener and every connection; memory freed on close. NULL is
 * a no-op. */
void um_metrics_stop(um_metrics_t *m);

#endif
