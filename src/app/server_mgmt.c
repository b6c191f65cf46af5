/* The server engine's management (docs/internals/management.md): per-client
 * byte accounts, quota and expiry enforcement, the management socket's
 * requests (JSON through jansson) and the runtime changes they make, which
 * are written back into the config file and then reloaded from it, so the
 * file stays the source of truth. See server_int.h. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "app/control.h"
#include "app/link.h"
#include "app/mgmt.h"
#include "app/server_int.h"

#define ACCT_MS      100         /* quota checks and byte accounting */
#define CFG_FILE_MAX (64u << 20) /* a config read for an edit */

static int64_t wall_s(void)
{
    return (int64_t)(um_wall_ms() / 1000);
}

/* ---- accounts (sorted by key: found by binary search) ---- */

static srv_acct_t *acct_find(srv_t *s, const uint8_t key[32], bool create)
{
    size_t lo = 0, hi = s->n_acct;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(s->acct[mid].key, key, 32);
        if (c == 0) return &s->acct[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create) return NULL;
    if (s->n_acct == s->cap_acct) {
        size_t cap = s->cap_acct ? s->cap_acct * 2 : 16;
        srv_acct_t *na = realloc(s->acct, cap * sizeof(*na));
        if (!na) return NULL;
        s->acct = na;
        s->cap_acct = cap;
    }
    memmove(&s->acct[lo + 1], &s->acct[lo], (s->n_acct - lo) * sizeof(*s->acct));
    s->n_acct++;
    memset(&s->acct[lo], 0, sizeof(*s->acct));
    memcpy(s->acct[lo].key, key, 32);
    return &s->acct[lo];
}

/* Moves the session's payload bytes since the last call into its client's
 * account. */
static srv_acct_t *acct_session(srv_sess_t *ss)
{
    srv_t *s = ss->srv;
    um_tunnel_stats_t st;
    um_tunnel_stats(ss->t, &st);
    srv_acct_t *a = acct_find(s, ss->client_key, true);
    if (!a) return NULL;
    uint64_t din = st.payload_in - ss->acct_in, dout = st.payload_out - ss->acct_out;
    ss->acct_in = st.payload_in;
    ss->acct_out = st.payload_out;
    a->in += din;
    a->out += dout;
    if (din || dout) a->last_seen = wall_s();
    return a;
}

/* Why a client may not be served now (its GOAWAY code), or 0. */
static int refused_why(srv_t *s, const uint8_t key[32])
{
    const um_peer_client_t *pc = srv_find_client(s, key);
    if (!pc) return 0;
    if (pc->expires && wall_s() >= pc->expires) return UM_MUX_GOAWAY_EXPIRED;
    srv_acct_t *a = pc->quota ? acct_find(s, key, false) : NULL;
    if (a && a->in + a->out >= pc->quota) return UM_MUX_GOAWAY_QUOTA;
    return 0;
}

static const char *code_text(int code)
{
    switch (code) {
    case UM_MUX_GOAWAY_QUOTA: return "quota used up";
    case UM_MUX_GOAWAY_EXPIRED: return "access expired";
    case UM_MUX_GOAWAY_REVOKED: return "key removed";
    case UM_MUX_GOAWAY_KICKED: return "kicked by the operator";
    default: return "closed";
    }
}

static void end_session(srv_sess_t *ss, int code)
{
    if (um_tunnel_is_down(ss->t)) return;
    um_log_limited(&ss->srv->rl_ends, 20, 60000, UM_LOG_INFO,
                   "session %" PRIu64 " of %s (%s): %s, closing", ss->id, ss->name, ss->fp,
                   code_text(code));
    if (code == UM_MUX_GOAWAY_QUOTA) ss->srv->m_quota_ends++;
    if (code == UM_MUX_GOAWAY_EXPIRED) ss->srv->m_expiry_ends++;
    um_tunnel_close_code(ss->t, (uint8_t)code);
}

bool srv_mgmt_session_up(srv_sess_t *ss)
{
    srv_t *s = ss->srv;
    ss->id = ++s->next_sess_id;
    srv_acct_t *a = acct_find(s, ss->client_key, true);
    if (a) a->last_seen = wall_s();
    int why = refused_why(s, ss->client_key);
    if (why) {
        end_session(ss, why);
        return false;
    }
    return true;
}

void srv_mgmt_session_down(srv_sess_t *ss)
{
    um_tunnel_stats_t st;
    um_tunnel_stats(ss->t, &st);
    ss->srv->m_streams_done += st.streams_opened;
    acct_session(ss);
}

void srv_mgmt_account_all(srv_t *s)
{
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next)
        acct_session(ss);
}

const srv_acct_t *srv_mgmt_account(srv_t *s, const uint8_t key[32])
{
    return acct_find(s, key, false);
}

static void on_acct(uv_timer_t *t)
{
    srv_t *s = t->data;
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next) {
        if (um_tunnel_is_down(ss->t)) continue;
        acct_session(ss);
        int why = refused_why(s, ss->client_key);
        if (why) end_session(ss, why);
    }
}

/* ---- config file edits ---- */

static char *read_file(const char *path, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (len < cap) break;
        if (cap >= CFG_FILE_MAX) {
            free(b);
            b = NULL;
            snprintf(err, errlen, "%s: larger than %u MiB", path, CFG_FILE_MAX >> 20);
            fclose(f);
            return NULL;
        }
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) break;
        b = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        snprintf(err, errlen, "cannot read %s", path);
        return NULL;
    }
    b[len] = '\0';
    *n = len;
    return b;
}

/* Writes text into the config file and reloads it; on a failed reload the
 * old text goes back. 0, or -1 with err set. */
static int commit(srv_t *s, const char *old, size_t oldn, const char *text, size_t n, char *err,
                  size_t errlen)
{
    if (um_cfgedit_write(s->path, text, n, err, errlen) != 0) return -1;
    if (srv_reload(s, err, errlen) != 0) {
        char e2[UM_ERR_MAX];
        um_cfgedit_write(s->path, old, oldn, e2, sizeof(e2));
        return -1;
    }
    return 0;
}

/* ---- requests ---- */

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
    char b[UM_ERR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    return json_pack("{s:b,s:s}", "ok", 0, "error", b);
}

static json_t *client_json(srv_t *s, const um_peer_client_t *pc)
{
    char key[UM_KEY_B64_LEN + 1], q[32], ex[16], seen[32];
    um_key_to_b64(key, pc->public_key);
    um_format_quota(q, sizeof(q), pc->quota);
    um_format_expiry(ex, sizeof(ex), pc->expires);
    srv_acct_t *a = acct_find(s, pc->public_key, false);
    json_t *sess = json_array();
    uint64_t streams = 0;
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next) {
        if (memcmp(ss->client_key, pc->public_key, 32) != 0 || um_tunnel_is_down(ss->t)) continue;
        um_tunnel_stats_t st;
        um_tunnel_stats(ss->t, &st);
        streams += st.streams_open;
        json_array_append_new(
            sess, json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "id", (json_int_t)ss->id, "streams",
                            (json_int_t)st.streams_open, "bytes_in", (json_int_t)st.payload_in,
                            "bytes_out", (json_int_t)st.payload_out, "resumptions",
                            (json_int_t)ss->resumptions, "detached", ss->detached_since != 0));
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:I,s:I,s:I}", "name", pc->name, "public_key", key,
                          "sessions", sess, "streams", (json_int_t)streams, "bytes_in",
                          (json_int_t)(a ? a->in : 0), "bytes_out", (json_int_t)(a ? a->out : 0));
    if (!o) return NULL;
    if (a && a->last_seen) {
        um_format_time(seen, sizeof(seen), a->last_seen);
        json_object_set_new(o, "last_seen", json_string(seen));
    } else {
        json_object_set_new(o, "last_seen", json_null());
    }
    json_object_set_new(o, "quota", json_integer((json_int_t)pc->quota));
    json_object_set_new(o, "quota_text", json_string(q));
    json_object_set_new(o, "expires", json_string(ex));
    int why = refused_why(s, pc->public_key);
    json_object_set_new(o, "state",
                        json_string(why == UM_MUX_GOAWAY_QUOTA     ? "over-quota"
                                    : why == UM_MUX_GOAWAY_EXPIRED ? "expired"
                                                                   : "active"));
    return o;
}

static json_t *do_clients(srv_t *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < s->cfg.n_clients; i++)
        json_array_append_new(arr, client_json(s, &s->cfg.clients[i]));
    return json_pack("{s:b,s:o,s:I}", "ok", 1, "clients", arr, "sessions",
                     (json_int_t)s->n_sessions);
}

static const um_peer_client_t *by_name(const srv_t *s, const char *name)
{
    for (size_t i = 0; i < s->cfg.n_clients; i++)
        if (!strcmp(s->cfg.clients[i].name, name)) return &s->cfg.clients[i];
    return NULL;
}

static json_t *do_add(srv_t *s, const um_mgmt_req_t *rq)
{
    char err[UM_ERR_MAX];
    size_t n, nn;
    char *text = read_file(s->path, &n, err, sizeof(err));
    if (!text) return fail("%s", err);
    if (um_cfgedit_has_section(text, n, "client", rq->name) || by_name(s, rq->name)) {
        free(text);
        return fail("a client named '%s' exists already", rq->name);
    }
    uint8_t priv[32], pub[32];
    char link[UM_LINK_MAX], key[UM_KEY_B64_LEN + 1], q[32] = "", ex[16] = "";
    um_key_generate(priv);
    um_key_public(pub, priv);
    int r = um_server_link(&s->cfg, priv, rq->name, link, sizeof(link), err, sizeof(err));
    sodium_memzero(priv, sizeof(priv));
    if (r != 0) {
        free(text);
        return fail("%s", err);
    }
    um_key_to_b64(key, pub);
    if (rq->has_quota && rq->quota) um_format_quota(q, sizeof(q), rq->quota);
    if (rq->has_expires && rq->expires) um_format_expiry(ex, sizeof(ex), rq->expires);
    char sec[512];
    int w =
        snprintf(sec, sizeof(sec), "%s[client \"%s\"]\npublic-key = %s\n%s%s%s%s%s%s",
                 n && text[n - 1] != '\n' ? "\n\n" : "\n", rq->name, key, q[0] ? "quota = " : "", q,
                 q[0] ? "\n" : "", ex[0] ? "expires = " : "", ex, ex[0] ? "\n" : "");
    nn = n + (size_t)w;
    char *out = malloc(nn + 1);
    json_t *res = NULL;
    if (!out) {
        res = fail("out of memory");
    } else {
        memcpy(out, text, n);
        memcpy(out + n, sec, (size_t)w + 1);
        if (commit(s, text, n, out, nn, err, sizeof(err)) != 0)
            res = fail("%s", err);
        else
            res = json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "name", rq->name, "public_key", key,
                            "link", link);
        UM_INFO("management: added client %s", rq->name);
    }
    sodium_memzero(link, sizeof(link));
    free(out);
    free(text);
    return res;
}

/* remove-client, set-quota, set-expiry: one edit of the file, then reload. */
static json_t *do_edit(srv_t *s, const um_mgmt_req_t *rq)
{
    char err[UM_ERR_MAX], v[32];
    size_t n, nn = 0;
    if (!by_name(s, rq->name)) return fail("no client named '%s'", rq->name);
    char *text = read_file(s->path, &n, err, sizeof(err));
    if (!text) return fail("%s", err);
    char *out = NULL;
    const char *what = "removed";
    if (rq->op == UM_MGMT_REMOVE) {
        out = um_cfgedit_remove_section(text, n, "client", rq->name, &nn);
    } else if (rq->op == UM_MGMT_SET_QUOTA) {
        um_format_quota(v, sizeof(v), rq->quota);
        out = um_cfgedit_set_key(text, n, "client", rq->name, "quota", rq->quota ? v : NULL, &nn);
        what = "quota set";
    } else {
        um_format_expiry(v, sizeof(v), rq->expires);
        out =
            um_cfgedit_set_key(text, n, "client", rq->name, "expires", rq->expires ? v : NULL, &nn);
        what = "expiry set";
    }
    json_t *res;
    if (!out)
        res = fail(nn == 0 ? "[client \"%s\"] is not in %s (edited by hand? reload it first)"
                           : "out of memory",
                   rq->name, s->path);
    else if (commit(s, text, n, out, nn, err, sizeof(err)) != 0)
        res = fail("%s", err);
    else {
        UM_INFO("management: client %s: %s", rq->name, what);
        res = json_pack("{s:b,s:s}", "ok", 1, "name", rq->name);
        /* Quota or expiry now in force: checked at once. */
        on_acct(&s->acct_timer);
    }
    free(out);
    free(text);
    return res;
}

static json_t *do_kick(srv_t *s, const um_mgmt_req_t *rq)
{
    json_t *ids = json_array();
    for (srv_sess_t *ss = s->sessions; ss; ss = ss->next) {
        if (um_tunnel_is_down(ss->t)) continue;
        if (rq->session ? ss->id != rq->session : strcmp(ss->name, rq->name) != 0) continue;
        json_array_append_new(ids, json_integer((json_int_t)ss->id));
        end_session(ss, UM_MUX_GOAWAY_KICKED);
    }
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        if (rq->session) return fail("no live session %" PRIu64, rq->session);
        return fail("no live session of a client named '%s'", rq->name);
    }
    return json_pack("{s:b,s:o}", "ok", 1, "kicked", ids);
}

/* jansson's memory is wiped when freed: answers carry new clients' keys. */
static void *j_alloc(size_t n)
{
    size_t *p = malloc(n + sizeof(max_align_t));
    if (!p) return NULL;
    *p = n;
    return (char *)p + sizeof(max_align_t);
}

static void j_free(void *q)
{
    if (!q) return;
    char *p = (char *)q - sizeof(max_align_t);
    sodium_memzero(p, *(size_t *)p + sizeof(max_align_t));
    free(p);
}

static char *on_request(const char *req, size_t n, size_t *outn, void *ud)
{
    srv_t *s = ud;
    um_mgmt_req_t rq;
    char err[256];
    json_t *res;
    if (um_mgmt_parse(req, n, &rq, err, sizeof(err)) != 0)
        res = fail("%s", err);
    else if (s->stopping)
        res = fail("the server is shutting down");
    else
        switch (rq.op) {
        case UM_MGMT_CLIENTS: res = do_clients(s); break;
        case UM_MGMT_ADD: res = do_add(s, &rq); break;
        case UM_MGMT_KICK: res = do_kick(s, &rq); break;
        default: res = do_edit(s, &rq); break;
        }
    if (!res) return NULL;
    char *text = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    if (!text) return NULL;
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (out) {
        memcpy(out, text, len);
        out[len] = '\n';
        out[len + 1] = '\0';
        *outn = len + 1;
    }
    j_free(text); /* json_dumps allocates through j_alloc, wiped on the way out */
    return out;
}

void srv_mgmt_start(srv_t *s)
{
    json_set_alloc_funcs(j_alloc, j_free);
    uv_timer_init(s->loop, &s->acct_timer);
    s->acct_timer.data = s;
    uv_timer_start(&s->acct_timer, on_acct, ACCT_MS, ACCT_MS);
    const char *cp = s->cfg.server_control;
    if (!strcmp(cp, "off")) return;
    char path[UM_CONTROL_PATH_MAX], why[256] = "";
    int r = 0;
    if (cp[0])
        snprintf(path, sizeof(path), "%s", cp);
    else
        r = um_control_default_path_named(path, sizeof(path), "umbra-server.sock", true, why,
                                          sizeof(why));
    if (r == 0) r = um_control_start_requests(s->loop, path, on_request, s, &s->ctl);
    if (r == UM_EEXIST)
        UM_WARN("another umbra server answers on %s; this one has no management socket", path);
    else if (r != 0)
        UM_WARN("no management socket%s%s: %s", cp[0] || !why[0] ? " at " : "",
                cp[0] || !why[0] ? path : "", why[0] ? why : um_strerror(r));
    else
        UM_INFO("management socket %s", path);
}

void srv_mgmt_stop(srv_t *s)
{
    um_control_stop(s->ctl);
    s->ctl = NULL;
    free(s->acct);
    s->acct = NULL;
    s->n_acct = s->cap_acct = 0;
}
