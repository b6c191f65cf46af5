/* TLS ClientHello: a pure parser (the server side of the `tls` transport, and
 * JA4), a builder that copies a real browser's hello byte for byte in shape,
 * and the slots in it that carry umbra's first flight (see
 * docs/internals/tls-hello.md, the draft of the PROTOCOL.md section).
 *
 * Everything here is a pure function over byte strings: no I/O, no globals,
 * no allocation. Randomness comes from a callback the caller passes. */
#ifndef UM_TRANSPORT_TLS_HELLO_H
#define UM_TRANSPORT_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello handshake message (4-byte header included) accepted.
 * Browsers send about 2 KiB even with a post-quantum share. */
#define UM_TLS_HELLO_MAX    8192
#define UM_TLS_EXT_MAX      48 /* extensions in one hello; more is malformed */
#define UM_TLS_KEYSHARE_MAX 8  /* key_share entries; more is malformed */
#define UM_TLS_SNI_MAX      255

/* TLS codepoints the parser and builder name. */
enum {
    UM_TLS_EXT_SNI = 0x0000,
    UM_TLS_EXT_STATUS_REQUEST = 0x0005,
    UM_TLS_EXT_GROUPS = 0x000a,
    UM_TLS_EXT_EC_POINT_FORMATS = 0x000b,
    UM_TLS_EXT_SIGALGS = 0x000d,
    UM_TLS_EXT_ALPN = 0x0010,
    UM_TLS_EXT_SCT = 0x0012,
    UM_TLS_EXT_PADDING = 0x0015,
    UM_TLS_EXT_EMS = 0x0017,
    UM_TLS_EXT_COMPRESS_CERT = 0x001b,
    UM_TLS_EXT_RECORD_SIZE_LIMIT = 0x001c,
    UM_TLS_EXT_DELEGATED_CREDS = 0x0022,
    UM_TLS_EXT_SESSION_TICKET = 0x0023,
    UM_TLS_EXT_PSK = 0x0029,
    UM_TLS_EXT_VERSIONS = 0x002b,
    UM_TLS_EXT_PSK_MODES = 0x002d,
    UM_TLS_EXT_KEY_SHARE = 0x0033,
    UM_TLS_EXT_ALPS = 0x44cd, /* application_settings, new codepoint 17613 */
    UM_TLS_EXT_TRUST_ANCHORS = 0xca34,
    UM_TLS_EXT_ECH = 0xfe0d,
    UM_TLS_EXT_RENEGOTIATION = 0xff01,
};
enum {
    UM_TLS_GROUP_P256 = 0x0017,
    UM_TLS_GROUP_X25519 = 0x001d,
    UM_TLS_GROUP_X25519MLKEM768 = 0x11ec,
};
#define UM_TLS_X25519MLKEM768_LEN 1216 /* ML-KEM-768 ek (1184) || x25519 (32) */
#define UM_TLS_MLKEM768_EK_LEN    1184

/* A byte range inside um_tls_hello_t.msg (offsets, so the struct can be
 * copied). */
typedef struct {
    uint16_t off, len;
} um_tls_span_t;

typedef struct {
    uint16_t type;
    um_tls_span_t data; /* extension_data, without the type and length */
} um_tls_ext_t;

typedef struct {
    uint16_t group;
    um_tls_span_t key; /* key_exchange */
} um_tls_keyshare_t;

/* Which lists carried a GREASE value (RFC 8701). */
enum {
    UM_TLS_GREASE_CIPHER = 1u << 0,
    UM_TLS_GREASE_EXT = 1u << 1,
    UM_TLS_GREASE_GROUP = 1u << 2,
    UM_TLS_GREASE_KEYSHARE = 1u << 3,
    UM_TLS_GREASE_VERSION = 1u << 4,
    UM_TLS_GREASE_SIGALG = 1u << 5,
    UM_TLS_GREASE_ALPN = 1u << 6,
};

typedef struct {
    size_t consumed;         /* bytes of input the hello's records took */
    uint16_t record_version; /* of the first record */
    unsigned n_records;
    uint16_t legacy_version;
    uint8_t random[32];
    uint8_t session_id_len; /* 0..32 */
    uint8_t session_id[32];
    um_tls_span_t ciphers;     /* uint16 list (n = len / 2) */
    um_tls_span_t compression; /* uint8 list */
    unsigned n_ext;
    um_tls_ext_t ext[UM_TLS_EXT_MAX]; /* in wire order */
    /* Decoded extensions; a span with len 0 and a zero has_* flag = absent. */
    int has_sni;
    um_tls_span_t sni;           /* the first host_name, not NUL-terminated */
    um_tls_span_t alpn;          /* ProtocolNameList body: (len8 name)* */
    um_tls_span_t groups;        /* uint16 list */
    um_tls_span_t sigalgs;       /* uint16 list */
    um_tls_span_t versions;      /* uint16 list */
    um_tls_span_t point_formats; /* uint8 list */
    unsigned n_keyshare;
    um_tls_keyshare_t keyshare[UM_TLS_KEYSHARE_MAX];
    int has_ech;
    uint8_t ech_type; /* 0 outer, 1 inner */
    uint16_t ech_kdf, ech_aead;
    uint8_t ech_config_id;
    um_tls_span_t ech_enc, ech_payload; /* outer only */
    unsigned grease;                    /* UM_TLS_GREASE_* */
    uint16_t msg_len;                   /* handshake message, header included */
    uint8_t msg[UM_TLS_HELLO_MAX];      /* the reassembled message */
} um_tls_hello_t;

/* 1 when v is one of the 16 GREASE values 0x?a?a with equal bytes. */
static inline int um_tls_is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* The bytes of a span of h (borrowed from h). */
static inline const uint8_t *um_tls_at(const um_tls_hello_t *h, um_tls_span_t s)
{
    return h->msg + s.off;
}

/* Element i of a uint16 list span. */
static inline uint16_t um_tls_u16(const um_tls_hello_t *h, um_tls_span_t s, unsigned i)
{
    const uint8_t *q = h->msg + s.off + 2u * i;
    return (uint16_t)(q[0] << 8 | q[1]);
}

/* The extension of type t in h, or NULL. */
const um_tls_ext_t *um_tls_hello_ext(const um_tls_hello_t *h, uint16_t type);

/* Parses the ClientHello at the start of p[0..n), the bytes a server has
 * received from the start of a connection: one or more TLS handshake records
 * (content type 22) whose payloads concatenate to one ClientHello message,
 * which must end at a record boundary. Fills *out (which may be uninitialised;
 * it copies what it needs, so p is borrowed for the call only).
 *   0           done: out->consumed bytes of p were the hello's records;
 *   UM_EAGAIN   every byte so far is a valid beginning: need more;
 *   UM_EPROTO   not a well-formed ClientHello (any list or extension whose
 *               lengths do not add up, a duplicate extension, a message over
 *               UM_TLS_HELLO_MAX, more than UM_TLS_EXT_MAX extensions, ...);
 *               decided as soon as the bytes show it;
 *   UM_EINVAL   NULL arguments.
 * Never reads past the end of the hello's last record. */
int um_tls_hello_parse(const uint8_t *p, size_t n, um_tls_hello_t *out);

/* ---- The builder: a browser's ClientHello around umbra's bytes ---- */

/* Whose hello to copy: Debian's Chromium 156 or Firefox ESR 153, as captured
 * in tests/data/tls/ (docs/internals/tls-hello.md lists every field). */
typedef enum {
    UM_TLS_FP_CHROMIUM = 0,
    UM_TLS_FP_FIREFOX = 1,
} um_tls_fp_t;
#define UM_TLS_FP_MAX UM_TLS_FP_FIREFOX

#define UM_TLS_BUILD_MAX   2560 /* a built hello (records included) never exceeds this */
#define UM_TLS_ECH_ENC_LEN 32

/* Fills out[0..n) with random bytes; the builder's only source of randomness
 * (NULL means libsodium's randombytes_buf). Deterministic ones make tests
 * reproducible. */
typedef void (*um_tls_rng_cb)(void *ctx, uint8_t *out, size_t n);

/* The bytes a hello carries for umbra, in fields a real browser fills with
 * random bytes. The capacity of one hello is 32 + 32 + 32 + ech_payload_len
 * bytes (plus the x25519 share, passed apart): ech_payload_len must be one of
 * the fingerprint's GREASE ECH payload lengths (um_tls_fp_ech_len()), and the
 * bytes must look uniformly random to keep the hello a browser's, except
 * ech_enc for Chromium: Chromium's GREASE enc is an X25519 public key (a point
 * on curve25519, unlike half of all random strings), so the caller must put
 * one there. Not checked here. */
typedef struct {
    uint8_t random[32];                  /* ClientHello.random */
    uint8_t session_id[32];              /* legacy_session_id */
    uint8_t ech_enc[UM_TLS_ECH_ENC_LEN]; /* GREASE ECH enc */
    const uint8_t *ech_payload;          /* GREASE ECH payload, borrowed */
    size_t ech_payload_len;
} um_tls_slots_t;

/* 1 when s is a name the builder puts in server_name: 1..253 bytes of
 * [A-Za-z0-9.-] (*len, if not NULL, gets its length). */
int um_tls_sni_ok(const char *s, size_t *len);

/* "chromium" / "firefox"; NULL for an unknown value. */
const char *um_tls_fp_name(um_tls_fp_t fp);

/* A GREASE ECH payload length drawn as the browser draws it (Chromium: one of
 * 144, 176, 208, 240 uniformly; Firefox: always 239); 0 for an unknown fp. */
size_t um_tls_fp_ech_len(um_tls_fp_t fp, um_tls_rng_cb rng, void *rng_ctx);

/* 1 when len is a GREASE ECH payload length fp sends. */
int um_tls_fp_ech_len_ok(um_tls_fp_t fp, size_t len);

/* Writes a ClientHello in the shape of fp to out[0..*outn): one TLS record,
 * server_name sni (1..253 bytes of [A-Za-z0-9.-], borrowed), x25519_pub (32
 * bytes, borrowed) as the X25519 key share (Firefox: also as the x25519 part
 * of its X25519MLKEM768 share, as Firefox does), the slots (borrowed) in
 * their fields, and everything else a browser randomises (GREASE values,
 * extension order for Chromium, the ML-KEM-768 key, Chromium's second x25519
 * key, Firefox's P-256 key, the ECH config id and AEAD) drawn from rng.
 * UM_EINVAL: bad fp, sni, NULL argument or an ECH payload length fp never
 * sends; UM_ENOSPC: cap too small (UM_TLS_BUILD_MAX always fits); UM_EIO:
 * the rng gave too few usable bytes (ML-KEM rejection sampling). */
int um_tls_hello_build(um_tls_fp_t fp, const char *sni, const uint8_t x25519_pub[32],
                       const um_tls_slots_t *slots, um_tls_rng_cb rng, void *rng_ctx, uint8_t *out,
                       size_t cap, size_t *outn);

/* The server side: takes the slots and the x25519 share back out of a
 * parsed hello h. out->ech_payload points into h (borrowed from h).
 * UM_EPROTO when h lacks one of them in the built shape (a session id of 32
 * bytes, an outer ECH extension with a 32-byte enc and a payload length one of
 * the fingerprints sends, exactly one 32-byte X25519 share). Whether the
 * bytes authenticate is for the caller to check. */
int um_tls_hello_slots(const um_tls_hello_t *h, um_tls_slots_t *out, uint8_t x25519_pub[32]);

#endif
