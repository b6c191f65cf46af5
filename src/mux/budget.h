/* A memory budget for buffered stream bytes: one um_membudget_t per server
 * (all clients together) and one um_memacct_t per client key (shared by that
 * client's sessions). Pure accounting, no I/O, no clock: the mux charges
 * what it has committed to hold for a stream (the receive credit it granted
 * and not yet received, the bytes received and not yet read, the bytes
 * written and not yet sent) and asks before committing more. Design:
 * docs/internals/mux.md ("Memory budget").
 *
 * A client's share is min(cap, max(floor, limit / active clients)), where a
 * client is active while at least one mux uses its account, and cap is the
 * configured per-client limit (0: none). A commitment of n more bytes fits
 * when the client stays within its share and the server within its limit;
 * or, whatever the others hold, when the client stays within the reserve
 * (so a client that arrives while the budget is full still gets its first
 * streams: the total is bounded by limit + active clients x reserve).
 *
 * Ownership: the budget is the caller's (it must outlive every account).
 * Accounts are reference counted: um_memacct_new() returns one reference,
 * every mux using the account takes one (um_memacct_attach) and gives it
 * back (um_memacct_detach); the last unref frees it. */
#ifndef UM_MUX_BUDGET_H
#define UM_MUX_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t limit;   /* bytes, every client together; 0: no limit */
    uint64_t floor;   /* a client's share is never below this (nor above limit) */
    uint64_t reserve; /* every client may hold this much even when the limit is reached */
    uint64_t used;    /* charged by every account */
    uint32_t active;  /* accounts with at least one mux attached */
} um_membudget_t;

typedef struct um_memacct {
    um_membudget_t *b;
    uint64_t cap;   /* per-client cap; 0: the share alone */
    uint64_t used;  /* charged by this client's muxes */
    uint32_t users; /* muxes attached */
    uint32_t refs;
} um_memacct_t;

void um_membudget_init(um_membudget_t *b, uint64_t limit, uint64_t floor, uint64_t reserve);

/* NULL on allocation failure. */
um_memacct_t *um_memacct_new(um_membudget_t *b, uint64_t cap);
void um_memacct_ref(um_memacct_t *a);
void um_memacct_unref(um_memacct_t *a);
/* A mux starts/stops using the account (takes/drops a reference). */
void um_memacct_attach(um_memacct_t *a);
void um_memacct_detach(um_memacct_t *a);

/* This client's share now, in bytes (UINT64_MAX: unlimited). */
uint64_t um_memacct_share(const um_memacct_t *a);
/* True when n more bytes keep the client within its share and the server
 * within its limit (n = 0: "not over"). */
bool um_memacct_fits(const um_memacct_t *a, uint64_t n);
void um_memacct_charge(um_memacct_t *a, uint64_t n);
void um_memacct_release(um_memacct_t *a, uint64_t n); /* n <= what was charged */

#endif
