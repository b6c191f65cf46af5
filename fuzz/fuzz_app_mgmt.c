/* Fuzz the management socket's request validation (app/mgmt.h): jansson
 * parses, um_mgmt_parse decides. Whatever it accepts must be a complete,
 * consistent request: a valid name where one is needed, exactly one target
 * of a kick, the values of set-quota and set-expiry present, and the values
 * must format back into text the value parsers read to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    um_mgmt_req_t rq;
    char err[256], t[64];
    if (um_mgmt_parse((const char *)data, size, &rq, err, sizeof(err)) != 0) {
        if (!memchr(err, 0, sizeof(err)) || !err[0]) abort(); /* a reason, terminated */
        return 0;
    }
    if (rq.op > UM_MGMT_SET_EXPIRY) abort();
    if (rq.name[0] && !um_name_valid(rq.name)) abort();
    if (rq.op != UM_MGMT_CLIENTS && rq.op != UM_MGMT_KICK && !rq.name[0]) abort();
    if (rq.op == UM_MGMT_KICK && !rq.name[0] == !rq.session) abort();
    if (rq.op == UM_MGMT_SET_QUOTA && !rq.has_quota) abort();
    if (rq.op == UM_MGMT_SET_EXPIRY && !rq.has_expires) abort();
    if (rq.has_quota) {
        uint64_t q;
        um_format_quota(t, sizeof(t), rq.quota);
        if (um_parse_quota(&q, t) != 0 || q != rq.quota) abort();
    }
    if (rq.has_expires) {
        int64_t e;
        um_format_expiry(t, sizeof(t), rq.expires);
        if (um_parse_expiry(&e, t) != 0 || e != rq.expires) abort();
    }
    return 0;
}
