/* Memory budget accounting: see budget.h. */
#include "mux/budget.h"

#include <stdlib.h>

void um_membudget_init(um_membudget_t *b, uint64_t limit, uint64_t floor, uint64_t reserve)
{
    b->limit = limit;
    b->floor = limit && floor > limit ? limit : floor;
    b->reserve = reserve > b->floor ? b->floor : reserve;
    b->used = 0;
    b->active = 0;
}

um_memacct_t *um_memacct_new(um_membudget_t *b, uint64_t cap)
{
    um_memacct_t *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->b = b;
    a->cap = cap;
    a->refs = 1;
    return a;
}

void um_memacct_ref(um_memacct_t *a)
{
    a->refs++;
}

void um_memacct_unref(um_memacct_t *a)
{
    if (!a || --a->refs > 0) return;
    free(a);
}

void um_memacct_attach(um_memacct_t *a)
{
    a->refs++;
    if (a->users++ == 0 && a->b) a->b->active++;
}

void um_memacct_detach(um_memacct_t *a)
{
    if (--a->users == 0 && a->b) a->b->active--;
    um_memacct_unref(a);
}

uint64_t um_memacct_share(const um_memacct_t *a)
{
    uint64_t share = UINT64_MAX;
    const um_membudget_t *b = a->b;
    if (b && b->limit) {
        share = b->limit / (b->active ? b->active : 1);
        if (share < b->floor) share = b->floor;
    }
    if (a->cap && a->cap < share) share = a->cap;
    return share;
}

bool um_memacct_fits(const um_memacct_t *a, uint64_t n)
{
    uint64_t share = um_memacct_share(a);
    if (a->used > share || n > share - a->used) return false;
    const um_membudget_t *b = a->b;
    if (!b || !b->limit || (b->used <= b->limit && n <= b->limit - b->used)) return true;
    return a->used <= b->reserve && n <= b->reserve - a->used; /* the server is full */
}

void um_memacct_charge(um_memacct_t *a, uint64_t n)
{
    a->used += n;
    if (a->b) a->b->used += n;
}

void um_memacct_release(um_memacct_t *a, uint64_t n)
{
    a->used -= n;
    if (a->b) a->b->used -= n;
}
