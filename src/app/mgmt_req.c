/* The values of the per-client keys quota and expires, and the validation
 * of control socket requests (app/mgmt.h). Pure: jansson parses, this file
 * decides what a request means. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "app/mgmt.h"
#include "util/err.h"

#define QUOTA_MAX (1ull << 60)

int um_parse_quota(uint64_t *out, const char *s)
{
    if (!strcmp(s, "off") || !strcmp(s, "none")) {
        *out = 0;
        return 0;
    }
    uint64_t v = 0;
    size_t i = 0;
    if (s[0] < '0' || s[0] > '9') return UM_EINVAL;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (QUOTA_MAX - 9) / 10) return UM_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    unsigned shift = 0;
    switch (s[i]) {
    case '\0': break;
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    case 't':
    case 'T': shift = 40; break;
    default: return UM_EINVAL;
    }
    if (s[i] && s[i + 1]) return UM_EINVAL;
    if (v > (QUOTA_MAX >> shift)) return UM_EINVAL;
    *out = v << shift;
    return 0;
}

void um_format_quota(char *out, size_t cap, uint64_t v)
{
    static const char suf[] = "tgmk";
    if (!v) {
        snprintf(out, cap, "off");
        return;
    }
    for (int i = 0; i < 4; i++) {
        unsigned shift = 40u - 10u * (unsigned)i;
        if (v % (1ull << shift) == 0) {
            snprintf(out, cap, "%" PRIu64 "%c", v >> shift, suf[i]);
            return;
        }
    }
    snprintf(out, cap, "%" PRIu64, v);
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

int um_parse_expiry(int64_t *out, const char *s)
{
    if (!strcmp(s, "never") || !strcmp(s, "off")) {
        *out = 0;
        return 0;
    }
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return UM_EINVAL;
    unsigned v[3] = {0, 0, 0};
    static const int at[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < len[f]; k++) {
            char c = s[at[f] + k];
            if (c < '0' || c > '9') return UM_EINVAL;
            v[f] = v[f] * 10 + (unsigned)(c - '0');
        }
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1])
        return UM_EINVAL;
    bool leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
    if (v[1] == 2 && v[2] == 29 && !leap) return UM_EINVAL;
    *out = (days_from_civil(v[0], v[1], v[2]) + 1) * 86400;
    return 0;
}

void um_format_expiry(char *out, size_t cap, int64_t t)
{
    if (!t) {
        snprintf(out, cap, "never");
        return;
    }
    int y;
    unsigned m, d;
    civil_from_days(t / 86400 - 1, &y, &m, &d);
    snprintf(out, cap, "%04d-%02u-%02u", y, m, d);
}

void um_format_time(char *out, size_t cap, int64_t t)
{
    int y;
    unsigned m, d;
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t sec = t - days * 86400;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04d-%02u-%02uT%02u:%02u:%02uZ", y, m, d, (unsigned)(sec / 3600),
             (unsigned)(sec / 60 % 60), (unsigned)(sec % 60));
}

static const struct {
    const char *cmd;
    um_mgmt_op_t op;
    const char *members; /* allowed besides "cmd", space-separated */
} ops[] = {
    {"clients", UM_MGMT_CLIENTS, ""},
    {"add-client", UM_MGMT_ADD, " name quota expires "},
    {"remove-client", UM_MGMT_REMOVE, " name "},
    {"kick", UM_MGMT_KICK, " name session "},
    {"set-quota", UM_MGMT_SET_QUOTA, " name quota "},
    {"set-expiry", UM_MGMT_SET_EXPIRY, " name expires "},
};

static bool allowed(const char *members, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = members; *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len && len == n && memcmp(p, key, n) == 0) return true;
        p += len;
    }
    return false;
}

static int fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return UM_EINVAL;
}

int um_mgmt_parse(const char *text, size_t n, um_mgmt_req_t *req, char *err, size_t errlen)
{
    memset(req, 0, sizeof(*req));
    if (n >= UM_MGMT_REQ_MAX) return fail(err, errlen, "request too long (at most 4095 bytes)");
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "not JSON: %s (column %d)", je.text, je.column);
        return UM_EINVAL;
    }
    int rc = UM_EINVAL;
    if (!json_is_object(root)) {
        fail(err, errlen, "a request is a JSON object");
        goto out;
    }
    const char *cmd = json_string_value(json_object_get(root, "cmd"));
    size_t i = 0;
    while (cmd && i < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[i].cmd, cmd) != 0)
        i++;
    if (!cmd || i == sizeof(ops) / sizeof(ops[0])) {
        fail(err, errlen,
             "member \"cmd\": expected clients, add-client, remove-client, kick, set-quota or "
             "set-expiry");
        goto out;
    }
    req->op = ops[i].op;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "cmd")) continue;
        if (!allowed(ops[i].members, key)) {
            snprintf(err, errlen, "%s: unknown member \"%.32s\"", cmd, key);
            goto out;
        }
        if (!strcmp(key, "name")) {
            const char *s = json_string_value(v);
            if (!s || !um_name_valid(s)) {
                fail(err, errlen,
                     "member \"name\": expected 1 to 63 letters, digits, '-', '_' or '.'");
                goto out;
            }
            snprintf(req->name, sizeof(req->name), "%s", s);
        } else if (!strcmp(key, "session")) {
            json_int_t id = json_is_integer(v) ? json_integer_value(v) : 0;
            if (id <= 0) {
                fail(err, errlen, "member \"session\": expected a session id (a number above 0)");
                goto out;
            }
            req->session = (uint64_t)id;
        } else if (!strcmp(key, "quota")) {
            const char *s = json_string_value(v);
            if (json_is_integer(v) && json_integer_value(v) >= 0 &&
                (uint64_t)json_integer_value(v) <= QUOTA_MAX) {
                req->quota = (uint64_t)json_integer_value(v);
            } else if (!s || um_parse_quota(&req->quota, s) != 0) {
                fail(err, errlen,
                     "member \"quota\": expected bytes with an optional k, m, g or t suffix "
                     "(e.g. \"10G\"), or \"off\"");
                goto out;
            }
            req->has_quota = true;
        } else { /* expires */
            const char *s = json_string_value(v);
            if (!s || um_parse_expiry(&req->expires, s) != 0) {
                fail(err, errlen, "member \"expires\": expected a date YYYY-MM-DD, or \"never\"");
                goto out;
            }
            req->has_expires = true;
        }
    }
    bool need_name = req->op != UM_MGMT_CLIENTS && req->op != UM_MGMT_KICK;
    if (need_name && !req->name[0]) {
        snprintf(err, errlen, "%s: member \"name\" is required", cmd);
        goto out;
    }
    if (req->op == UM_MGMT_KICK && !req->name[0] == !req->session) {
        fail(err, errlen, "kick: give either \"session\" (an id) or \"name\" (a client)");
        goto out;
    }
    if ((req->op == UM_MGMT_SET_QUOTA && !req->has_quota) ||
        (req->op == UM_MGMT_SET_EXPIRY && !req->has_expires)) {
        snprintf(err, errlen, "%s: member \"%s\" is required", cmd,
                 req->op == UM_MGMT_SET_QUOTA ? "quota" : "expires");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
