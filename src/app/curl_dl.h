/* libcurl loaded on first use. Only a client with a list-url fetches over
 * HTTP(S), yet linking libcurl maps it and its two dozen dependencies
 * (GnuTLS, Kerberos, LDAP, libssh2, nghttp2, ...) into every process at
 * start: about 4 MiB of resident mappings in an idle client or server. So
 * the library is opened (dlopen, libcurl.so.4) the first time a fetch needs
 * it, and kept until exit.
 *
 * um_curl_get() runs on the loop thread; the table it returns is read-only
 * after that and may be used from the thread pool. */
#ifndef UM_APP_CURL_DL_H
#define UM_APP_CURL_DL_H

#include <curl/curl.h>

typedef struct {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode r);
} um_curl_t;

/* The functions, libcurl loaded and globally initialised on the first call;
 * NULL when it cannot be (why: logged once at warning). */
const um_curl_t *um_curl_get(void);

#endif
