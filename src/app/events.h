/* Machine-readable events as JSON lines ("--events FILE|-"):
 *   {"ts":"2026-11-21T23:05:39.123Z","event":"session_up","server":"vps","rtt_ms":12}
 * One line per event, flushed at once. Values are never secrets. */
#ifndef UM_APP_EVENTS_H
#define UM_APP_EVENTS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;   /* NULL: events disabled */
    int owned; /* f was opened here and is closed by um_events_close */
    char line[2048];
    size_t len;
} um_events_t;

/* path "-" is standard output; NULL or "" disables events. 0 or UM_EIO. */
int um_events_open(um_events_t *e, const char *path);
void um_events_close(um_events_t *e);

/* Builds one event: begin, any number of fields, end (which writes it). */
void um_ev_begin(um_events_t *e, const char *event);
void um_ev_str(um_events_t *e, const char *key, const char *value);
void um_ev_int(um_events_t *e, const char *key, int64_t value);
void um_ev_end(um_events_t *e);

/* Appends s to out as a JSON string body (no quotes); returns length used,
 * never more than cap-1; always NUL-terminates when cap > 0. */
size_t um_json_escape(char *out, size_t cap, const char *s);

#endif
