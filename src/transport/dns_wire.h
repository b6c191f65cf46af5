/* The dns transport's own encoding (docs/PROTOCOL.md section 13), pure
 * functions: what a tunnel query name carries upstream, what a TXT answer
 * carries downstream. The DNS message around them is dns_msg.h's.
 *
 * Upstream, a query name is
 *
 *     <base32 of: conv(4) nonce(4) flags(1) tag(8) masked payload>.<zone>
 *
 * split into labels of at most 63 characters, the whole name at most 253
 * characters; base32 is RFC 4648's alphabet in lower case without padding,
 * decoded case-insensitively (resolvers may randomise the case, 0x20).
 * Downstream, the TXT answer's strings joined are tag(8) masked payload.
 * The payload is masked with ChaCha20 and authenticated with a keyed
 * BLAKE2b tag, the key derived from the server's public key (which every
 * client has from its link): a query whose tag does not verify is not
 * tunnel traffic and gets an ordinary answer. */
#ifndef UM_TRANSPORT_DNS_WIRE_H
#define UM_TRANSPORT_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UM_DNSW_NAME_MAX 255 /* wire form of a name, with the root label */
#define UM_DNSW_TAG      8
#define UM_DNSW_UP_HDR   (4 + 4 + 1 + UM_DNSW_TAG)
#define UM_DNSW_FLAG_NEW 0x01u /* the client has not had an answer yet: open the conversation */
#define UM_DNSW_DOWN_HDR UM_DNSW_TAG

typedef struct {
    uint8_t key[32];
    uint8_t zone[UM_DNSW_NAME_MAX]; /* wire form, lower case, ends with the root label */
    size_t zone_len;
    size_t zone_labels;
} um_dnsw_t;

/* zone: presentation form ("t.example.com", trailing dot optional).
 * UM_EINVAL when it is not a valid name or leaves no room for data. */
int um_dnsw_init(um_dnsw_t *w, const uint8_t server_pub[32], const char *zone);
void um_dnsw_wipe(um_dnsw_t *w);
/* Whether a name syntax is valid for a zone key (tests, config). */
bool um_dnsw_zone_valid(const char *zone);

/* Payload bytes one query name can carry under this zone. */
size_t um_dnsw_up_cap(const um_dnsw_t *w);
/* Builds the wire-form query name. out must hold UM_DNSW_NAME_MAX bytes.
 * UM_EMSGSIZE when n > um_dnsw_up_cap. */
int um_dnsw_up_encode(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, uint8_t flags,
                      const uint8_t *p, size_t n, uint8_t *out, size_t *outn);

typedef enum {
    UM_DNSW_OTHER = 0, /* not under the zone */
    UM_DNSW_APEX,      /* the zone itself */
    UM_DNSW_JUNK,      /* under the zone, but not (authenticated) tunnel data */
    UM_DNSW_TUNNEL,    /* tunnel data: fields and payload filled */
} um_dnsw_kind_t;

/* Classifies a wire-form name (as in a question; at most UM_DNSW_NAME_MAX
 * bytes, labels not compressed). For UM_DNSW_TUNNEL the payload (at most
 * um_dnsw_up_cap bytes, so out holds 255 bytes) is unmasked into out. */
um_dnsw_kind_t um_dnsw_up_decode(const um_dnsw_t *w, const uint8_t *name, size_t len,
                                 uint32_t *conv, uint32_t *nonce, uint8_t *flags, uint8_t *out,
                                 size_t *outn);

/* Downstream: out gets UM_DNSW_DOWN_HDR + n bytes (cap checked). */
int um_dnsw_down_seal(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, const uint8_t *p, size_t n,
                      uint8_t *out, size_t cap, size_t *outn);
/* UM_EAUTH when the tag does not verify; out gets n - UM_DNSW_DOWN_HDR bytes. */
int um_dnsw_down_open(const um_dnsw_t *w, uint32_t conv, uint32_t nonce, const uint8_t *p, size_t n,
                      uint8_t *out, size_t cap, size_t *outn);

/* Base32 (RFC 4648 alphabet, lower case, no padding). enc returns the
 * characters written (cap checked: 0 when it does not fit); dec accepts
 * either case and returns the bytes, or -1 on a bad character or length. */
size_t um_b32_enc(const uint8_t *p, size_t n, char *out, size_t cap);
long um_b32_dec(const char *s, size_t n, uint8_t *out, size_t cap);

#endif
