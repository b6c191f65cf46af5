#include "util/err.h"

#include <string.h>

const char *um_strerror(int err)
{
    switch (err) {
    case UM_OK: return "success";
    case UM_EAGAIN: return "need more data";
    case UM_EINVAL: return "invalid argument";
    case UM_ENOSPC: return "buffer or table full";
    case UM_EPROTO: return "protocol error";
    case UM_EAUTH: return "authentication failed";
    case UM_EREPLAY: return "replayed or stale message";
    case UM_ELIMIT: return "limit exceeded";
    case UM_EACCES: return "not allowed by policy";
    case UM_EPIPE: return "closed";
    default: break;
    }
    if (err < 0 && err > -1000) return strerror(-err);
    return "unknown error";
}
