/* Levelled logging through one function. Lines go to one stream (stderr by
 * default) as "TIME LEVEL message". Nothing here formats keys: callers log
 * names and fingerprints (um_log_fingerprint), never key material. */
#ifndef UM_UTIL_LOG_H
#define UM_UTIL_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    UM_LOG_ERROR = 0,
    UM_LOG_WARN = 1,
    UM_LOG_INFO = 2,
    UM_LOG_DEBUG = 3,
    UM_LOG_TRACE = 4,
} um_log_level_t;

void um_log_set_level(um_log_level_t level);
um_log_level_t um_log_get_level(void);
void um_log_set_stream(FILE *f); /* borrowed; NULL restores stderr */
/* Parses "error|warn|info|debug|trace"; 0 or UM_EINVAL. */
int um_log_level_parse(const char *s, um_log_level_t *out);

void um_log(um_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For data-path messages: at most `burst` lines per `interval_ms`, then one
 * "N messages suppressed" line when the window reopens. Zero-init the state. */
typedef struct {
    uint64_t window_start_ms;
    uint32_t count;
    uint32_t suppressed;
} um_ratelimit_t;
void um_log_limited(um_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms, um_log_level_t level,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A short, non-secret name for a public key: the first 8 characters of the
 * base64 of BLAKE2b(key). out must hold 9 bytes. */
void um_log_fingerprint(const uint8_t key[32], char out[9]);

#define UM_ERR(...)   um_log(UM_LOG_ERROR, __VA_ARGS__)
#define UM_WARN(...)  um_log(UM_LOG_WARN, __VA_ARGS__)
#define UM_INFO(...)  um_log(UM_LOG_INFO, __VA_ARGS__)
#define UM_DEBUG(...) um_log(UM_LOG_DEBUG, __VA_ARGS__)

#endif
