/* The dns transport's client side (docs/PROTOCOL.md section 13): one
 * conversation with the server through a recursive resolver, as a reliable
 * carrier (dns_car.h over rel). Every query carries what rel has to send
 * (or nothing: a poll) and every answer what the server had; many queries
 * are in flight while data flows, and the poll rate backs off when idle
 * (um_rel_poll_interval). Queries go over UDP to `resolver`; an answer with
 * TC is asked again over TCP; with `dot`, every query goes over DNS over
 * TLS (RFC 7858, opportunistic: the resolver's certificate is not checked).
 * A resolver that does not understand EDNS0 (FORMERR) gets plain queries.
 * Three NXDOMAIN answers in a row (the server no longer knows the
 * conversation: it restarted) end the stream with UM_EPIPE, so the layer
 * above dials again and resumes (docs/internals/resumption.md).
 *
 * Ownership: the carrier is the caller's; closing it ends the conversation
 * and frees everything (handles in their close callbacks). */
#ifndef UM_TRANSPORT_DNS_CLIENT_H
#define UM_TRANSPORT_DNS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "transport/carrier.h"
#include "transport/rel.h"

#define UM_DNS_CLI_INFLIGHT_DEFAULT 16
#define UM_DNS_CLI_INFLIGHT_MAX     64
#define UM_DNS_CLI_QUERY_TIMEOUT_MS 2500
#define UM_DNS_CLI_NX_RESET         3

typedef struct {
    const char *zone; /* borrowed for the call */
    uint8_t server_pub[32];
    struct sockaddr_storage resolver;
    bool dot;
    um_rel_cfg_t rel;
    uint32_t inflight; /* 0 = UM_DNS_CLI_INFLIGHT_DEFAULT */
} um_dns_client_cfg_t;

typedef struct {
    uint64_t queries, answers, data_answers, dups, timeouts, tcp_retries, nxdomain, servfail;
    uint64_t bad; /* answers that did not parse or verify */
} um_dns_client_stats_t;

int um_dns_client_new(uv_loop_t *loop, const um_dns_client_cfg_t *cfg, um_carrier_t **out);

#endif
