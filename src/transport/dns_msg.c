#include "transport/dns_msg.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define SOA_SERIAL  1
#define SOA_REFRESH 3600
#define SOA_RETRY   600
#define SOA_EXPIRE  86400
#define SOA_MIN     0 /* negative answers are not cached: names are never asked twice */
#define APEX_TTL    3600

static uint8_t lc(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

bool um_dnsm_name_eq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn) return false;
    for (size_t i = 0; i < an; i++)
        if (lc(a[i]) != lc(b[i])) return false;
    return true;
}

int um_dnsm_query_parse(const uint8_t *p, size_t n, um_dnsm_query_t *q)
{
    memset(q, 0, sizeof(*q));
    if (n < 12 || (p[2] & 0x80)) return UM_EINVAL; /* no header, or a response */
    q->id = (uint16_t)(p[0] << 8 | p[1]);
    q->opcode = (p[2] >> 3) & 15;
    q->rd = p[2] & 1;
    q->cd = (p[3] >> 4) & 1;
    q->udp_size = UM_DNSM_PLAIN;
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, p, n) != LDNS_STATUS_OK) return UM_EPROTO;
    int r = UM_EPROTO;
    ldns_rr_list *ql = ldns_pkt_question(pkt);
    if (ldns_pkt_qdcount(pkt) != 1 || !ql || ldns_rr_list_rr_count(ql) != 1) goto out;
    ldns_rr *rr = ldns_rr_list_rr(ql, 0);
    ldns_rdf *o = ldns_rr_owner(rr);
    if (!o || ldns_rdf_get_type(o) != LDNS_RDF_TYPE_DNAME || ldns_rdf_size(o) > UM_DNSW_NAME_MAX ||
        ldns_rdf_size(o) == 0)
        goto out;
    q->qname_len = ldns_rdf_size(o);
    memcpy(q->qname, ldns_rdf_data(o), q->qname_len);
    q->qtype = (uint16_t)ldns_rr_get_type(rr);
    q->qclass = (uint16_t)ldns_rr_get_class(rr);
    if (ldns_pkt_edns(pkt)) {
        q->edns = true;
        uint16_t s = ldns_pkt_edns_udp_size(pkt);
        q->udp_size = s < UM_DNSM_PLAIN ? UM_DNSM_PLAIN : s > UM_DNSM_EDNS ? UM_DNSM_EDNS : s;
    }
    r = 0;
out:
    ldns_pkt_free(pkt);
    return r;
}

size_t um_dnsm_txt_cap(const um_dnsm_query_t *q, size_t limit)
{
    /* header, question, the answer's owner (a pointer to the question's
     * name), type, class, TTL, rdlength; the OPT record when EDNS. */
    size_t fixed = 12 + q->qname_len + 4 + 2 + 10 + (q->edns ? 11 : 0);
    if (limit <= fixed + 1) return 0;
    size_t rd = limit - fixed;
    if (rd > 65535) rd = 65535;
    /* Each string of up to 255 bytes costs one length byte. */
    size_t d = rd - (rd + 255) / 256;
    return d;
}

static ldns_rdf *dname(const uint8_t *p, size_t n)
{
    return ldns_dname_new_frm_data((uint16_t)n, p);
}

static ldns_rdf *sub(const uint8_t *zone, size_t zn, const char *label)
{
    uint8_t b[UM_DNSW_NAME_MAX + 64];
    size_t l = strlen(label);
    if (l + 1 + zn > UM_DNSW_NAME_MAX) return NULL;
    b[0] = (uint8_t)l;
    memcpy(b + 1, label, l);
    memcpy(b + 1 + l, zone, zn);
    return dname(b, 1 + l + zn);
}

static ldns_rr *rr_new(const uint8_t *owner, size_t on, ldns_rr_type t, uint32_t ttl)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *o = dname(owner, on);
    if (!rr || !o) {
        ldns_rr_free(rr);
        ldns_rdf_deep_free(o);
        return NULL;
    }
    ldns_rr_set_owner(rr, o);
    ldns_rr_set_type(rr, t);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    return rr;
}

static bool push_rdf(ldns_rr *rr, ldns_rdf *d)
{
    if (!d) return false;
    if (!ldns_rr_push_rdf(rr, d)) {
        ldns_rdf_deep_free(d);
        return false;
    }
    return true;
}

static ldns_rr *soa_rr(const uint8_t *zone, size_t zn)
{
    ldns_rr *rr = rr_new(zone, zn, LDNS_RR_TYPE_SOA, APEX_TTL);
    if (!rr) return NULL;
    bool ok = push_rdf(rr, sub(zone, zn, "ns")) && push_rdf(rr, sub(zone, zn, "hostmaster")) &&
              push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, SOA_SERIAL)) &&
              push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, SOA_REFRESH)) &&
              push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, SOA_RETRY)) &&
              push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, SOA_EXPIRE)) &&
              push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, SOA_MIN));
    if (!ok) {
        ldns_rr_free(rr);
        return NULL;
    }
    return rr;
}

static ldns_rr *ns_rr(const uint8_t *zone, size_t zn)
{
    ldns_rr *rr = rr_new(zone, zn, LDNS_RR_TYPE_NS, APEX_TTL);
    if (rr && !push_rdf(rr, sub(zone, zn, "ns"))) {
        ldns_rr_free(rr);
        return NULL;
    }
    return rr;
}

static ldns_rr *txt_rr(const um_dnsm_query_t *q, const uint8_t *p, size_t n)
{
    ldns_rr *rr = rr_new(q->qname, q->qname_len, LDNS_RR_TYPE_TXT, 0);
    if (!rr) return NULL;
    size_t off = 0;
    do { /* an empty payload is one empty string */
        uint8_t b[256];
        size_t l = n - off > 255 ? 255 : n - off;
        b[0] = (uint8_t)l;
        memcpy(b + 1, p + off, l);
        if (!push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, l + 1, b))) {
            ldns_rr_free(rr);
            return NULL;
        }
        off += l;
    } while (off < n);
    return rr;
}

static int push(ldns_pkt *pkt, ldns_pkt_section s, ldns_rr *rr)
{
    if (!rr) return UM_ENOMEM;
    if (!ldns_pkt_push_rr(pkt, s, rr)) {
        ldns_rr_free(rr);
        return UM_ENOMEM;
    }
    return 0;
}

static int build(const um_dnsm_query_t *q, const um_dnsm_reply_t *r, bool trunc, uint8_t *out,
                 size_t cap, size_t *outn)
{
    ldns_pkt *pkt = ldns_pkt_new();
    if (!pkt) return UM_ENOMEM;
    int rc = 0;
    ldns_pkt_set_id(pkt, q->id);
    ldns_pkt_set_qr(pkt, true);
    ldns_pkt_set_opcode(pkt, (ldns_pkt_opcode)q->opcode);
    ldns_pkt_set_aa(pkt, r->aa);
    ldns_pkt_set_rd(pkt, q->rd);
    ldns_pkt_set_cd(pkt, q->cd);
    ldns_pkt_set_tc(pkt, trunc);
    ldns_pkt_set_rcode(pkt, r->rcode);
    if (q->qname_len) {
        ldns_rr *qr = ldns_rr_new();
        ldns_rdf *o = qr ? dname(q->qname, q->qname_len) : NULL;
        if (!o) {
            ldns_rr_free(qr);
            rc = UM_ENOMEM;
            goto out;
        }
        ldns_rr_set_owner(qr, o);
        ldns_rr_set_type(qr, (ldns_rr_type)q->qtype);
        ldns_rr_set_class(qr, (ldns_rr_class)q->qclass);
        ldns_rr_set_question(qr, true);
        if ((rc = push(pkt, LDNS_SECTION_QUESTION, qr)) != 0) goto out;
    }
    if (!trunc) {
        if (r->txt && (rc = push(pkt, LDNS_SECTION_ANSWER, txt_rr(q, r->txt, r->txt_n))) != 0)
            goto out;
        if (r->apex_answer) {
            bool any = q->qtype == UM_DNSM_TYPE_ANY;
            if ((q->qtype == UM_DNSM_TYPE_SOA || any) &&
                (rc = push(pkt, LDNS_SECTION_ANSWER, soa_rr(r->zone, r->zone_len))) != 0)
                goto out;
            if ((q->qtype == UM_DNSM_TYPE_NS || any) &&
                (rc = push(pkt, LDNS_SECTION_ANSWER, ns_rr(r->zone, r->zone_len))) != 0)
                goto out;
        }
        if (r->soa_auth &&
            (rc = push(pkt, LDNS_SECTION_AUTHORITY, soa_rr(r->zone, r->zone_len))) != 0)
            goto out;
    }
    if (q->edns) ldns_pkt_set_edns_udp_size(pkt, UM_DNSM_EDNS);
    uint8_t *w = NULL;
    size_t wn = 0;
    if (ldns_pkt2wire(&w, pkt, &wn) != LDNS_STATUS_OK) {
        rc = UM_ENOMEM;
        goto out;
    }
    if (wn > cap)
        rc = UM_EMSGSIZE;
    else {
        memcpy(out, w, wn);
        *outn = wn;
    }
    free(w);
out:
    ldns_pkt_free(pkt);
    return rc;
}

int um_dnsm_reply_build(const um_dnsm_query_t *q, const um_dnsm_reply_t *r, size_t limit,
                        uint8_t *out, size_t cap, size_t *outn)
{
    *outn = 0;
    if (limit > cap) limit = cap;
    int rc = build(q, r, false, out, cap, outn);
    if (rc == 0 && *outn <= limit) return 0;
    if (rc != 0 && rc != UM_EMSGSIZE) return rc;
    /* Does not fit: the header and question with TC, as a server does. */
    rc = build(q, r, true, out, cap, outn);
    if (rc == 0 && *outn > limit) rc = UM_EMSGSIZE;
    return rc;
}

int um_dnsm_query_build(uint16_t id, const uint8_t *qname, size_t qlen, uint16_t qtype, bool edns,
                        uint8_t *out, size_t cap, size_t *outn)
{
    um_dnsm_query_t q;
    memset(&q, 0, sizeof(q));
    if (qlen == 0 || qlen > UM_DNSW_NAME_MAX) return UM_EINVAL;
    *outn = 0;
    ldns_pkt *pkt = ldns_pkt_new();
    if (!pkt) return UM_ENOMEM;
    int rc = 0;
    ldns_pkt_set_id(pkt, id);
    ldns_pkt_set_rd(pkt, true);
    ldns_rr *qr = ldns_rr_new();
    ldns_rdf *o = qr ? dname(qname, qlen) : NULL;
    if (!o) {
        ldns_rr_free(qr);
        rc = UM_ENOMEM;
        goto out;
    }
    ldns_rr_set_owner(qr, o);
    ldns_rr_set_type(qr, (ldns_rr_type)qtype);
    ldns_rr_set_class(qr, LDNS_RR_CLASS_IN);
    ldns_rr_set_question(qr, true);
    if ((rc = push(pkt, LDNS_SECTION_QUESTION, qr)) != 0) goto out;
    if (edns) ldns_pkt_set_edns_udp_size(pkt, UM_DNSM_EDNS);
    uint8_t *w = NULL;
    size_t wn = 0;
    if (ldns_pkt2wire(&w, pkt, &wn) != LDNS_STATUS_OK) {
        rc = UM_ENOMEM;
        goto out;
    }
    if (wn > cap)
        rc = UM_EMSGSIZE;
    else {
        memcpy(out, w, wn);
        *outn = wn;
    }
    free(w);
out:
    ldns_pkt_free(pkt);
    return rc;
}

int um_dnsm_answer_parse(const uint8_t *p, size_t n, um_dnsm_answer_t *a, uint8_t *txt, size_t cap,
                         size_t *txtn)
{
    memset(a, 0, sizeof(*a));
    *txtn = 0;
    ldns_pkt *pkt = NULL;
    if (n < 12 || ldns_wire2pkt(&pkt, p, n) != LDNS_STATUS_OK) return UM_EPROTO;
    int r = UM_EPROTO;
    a->id = ldns_pkt_id(pkt);
    a->qr = ldns_pkt_qr(pkt);
    a->tc = ldns_pkt_tc(pkt);
    a->rcode = (uint8_t)ldns_pkt_get_rcode(pkt);
    if (!a->qr) goto out;
    ldns_rr_list *ql = ldns_pkt_question(pkt);
    if (ql && ldns_rr_list_rr_count(ql) == 1) {
        ldns_rr *rr = ldns_rr_list_rr(ql, 0);
        ldns_rdf *o = ldns_rr_owner(rr);
        if (o && ldns_rdf_size(o) <= UM_DNSW_NAME_MAX) {
            a->qname_len = ldns_rdf_size(o);
            memcpy(a->qname, ldns_rdf_data(o), a->qname_len);
        }
        a->qtype = (uint16_t)ldns_rr_get_type(rr);
    }
    ldns_rr_list *an = ldns_pkt_answer(pkt);
    size_t cnt = an ? ldns_rr_list_rr_count(an) : 0;
    r = 0;
    for (size_t i = 0; i < cnt; i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT) continue;
        if (a->n_txt++) continue; /* the first one carries the data */
        for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
            ldns_rdf *d = ldns_rr_rdf(rr, k);
            size_t l = ldns_rdf_size(d);
            const uint8_t *s = ldns_rdf_data(d);
            if (l == 0 || (size_t)s[0] + 1 != l) {
                r = UM_EPROTO;
                goto out;
            }
            if (*txtn + l - 1 > cap) {
                r = UM_EMSGSIZE;
                goto out;
            }
            memcpy(txt + *txtn, s + 1, l - 1);
            *txtn += l - 1;
        }
    }
out:
    ldns_pkt_free(pkt);
    return r;
}
