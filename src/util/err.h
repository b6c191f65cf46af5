/* umbra error codes: 0 on success, a negative UM_E* code on failure.
 * Codes mirror -errno where one fits; the rest sit above 1000. */
#ifndef UM_UTIL_ERR_H
#define UM_UTIL_ERR_H

enum {
    UM_OK = 0,
    UM_ENOENT = -2,
    UM_EIO = -5,
    UM_EAGAIN = -11, /* decoder: need more bytes; queue: try later */
    UM_ENOMEM = -12,
    UM_EACCES = -13, /* refused by policy */
    UM_EEXIST = -17,
    UM_EINVAL = -22, /* bad argument or malformed local input */
    UM_ENOSPC = -28, /* a bounded buffer or table is full */
    UM_EPIPE = -32,  /* closed */
    UM_ERANGE = -34,
    UM_EPROTO = -71, /* malformed input from a peer */
    UM_EMSGSIZE = -90,
    UM_ETIMEDOUT = -110,
    UM_EAUTH = -1001,   /* authentication failed */
    UM_EREPLAY = -1002, /* replayed or stale first flight */
    UM_ELIMIT = -1003,  /* a configured limit was exceeded */
};

/* Static text for an UM_E* code (or any -errno). Never NULL. */
const char *um_strerror(int err);

#endif
