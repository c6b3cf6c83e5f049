/* Wire format: encoding and decoding of udpxfer datagrams.
 * Pure functions over byte buffers; no I/O, no allocation. */
#ifndef UDPXFER_WIRE_H
#define UDPXFER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define UX_MAGIC0 0x55 /* 'U' */
#define UX_MAGIC1 0x58 /* 'X' */
#define UX_VERSION 5          /* 5: files of a listing as one transfer (UX_KIND_FILES) */
#define UX_HDR_LEN 16
#define UX_HASH_LEN 32
#define UX_COOKIE_LEN 16
#define UX_FLAG_AUTH 0x01      /* sealed (seal.h): nonce after the header, body encrypted, tag after it */
#define UX_FLAG_TREE 0x02      /* NEED asks for, DATA carries, nodes of the chunk-hash tree */
#define UX_FLAG_SESSION 0x04   /* sealed with its transfer's or stream's key, not the discovery key */
#define UX_FLAG_NC 0x08        /* the client's nonce follows the seal's nonce, in clear */
#define UX_FLAG_BARE 0x10      /* DATA without its chunk hash: sealed, the AEAD guards the way */
#define UX_NONCE_LEN 12        /* AEAD nonce */
#define UX_TAG_LEN 16          /* AEAD tag */
#define UX_NC_LEN 16           /* a side's random contribution to a session key */
#define UX_SEAL_OVERHEAD (UX_NONCE_LEN + UX_TAG_LEN)
#define UX_SEAL_MAX (UX_SEAL_OVERHEAD + UX_NC_LEN) /* what sealing adds at most */
/* A chunk's hash on the wire: SHA-256 cut to 128 bits. It guards against
 * corruption on the way (any bit flip fails it with odds 2^-128); the whole
 * file is checked with the full SHA-256. 16 bytes fewer in every datagram
 * is 1.1% more goodput on a full link. */
#define UX_CHUNK_HASH_LEN 16
#define UX_DATA_OVERHEAD (UX_HDR_LEN + 8 + UX_CHUNK_HASH_LEN)
#define UX_BARE_DATA_OVERHEAD (UX_HDR_LEN + 8)
static inline size_t ux_data_overhead(unsigned flags)
{
    return flags & UX_FLAG_BARE ? UX_BARE_DATA_OVERHEAD : UX_DATA_OVERHEAD;
}
#define UX_DEFAULT_CHUNK 1392  /* DATA datagram + tag stays under 1452 (IPv6 on 1500 MTU) */
#define UX_MIN_CHUNK 64
#define UX_MAX_CHUNK (65507 - UX_DATA_OVERHEAD - UX_SEAL_MAX)
#define UX_MAX_NAME 1024
#define UX_REQUEST_MIN 256     /* requests are padded: replies stay under 3x */
#define UX_MAX_RANGES 160
#define UX_SDATA_OVERHEAD (UX_HDR_LEN + 12 + UX_HASH_LEN)
#define UX_MAX_SACK 32
#define UX_OPEN_MIN 256        /* OPEN is padded like REQUEST: no reply outgrows it */

enum ux_type {
    UX_REQUEST = 1, /* client -> server: who has NAME? */
    UX_OFFER = 2,   /* server -> client: size, chunking, SHA-256, cookie */
    UX_ERROR = 3,   /* server -> client: code and text */
    UX_NEED = 4,    /* client -> server: send these chunk ranges */
    UX_DATA = 5,    /* server -> client: one chunk */
    UX_CLOSE = 6,   /* client -> server: transfer over */
    /* stream mode (stream.h): sender -> receiver unless noted */
    UX_S_OPEN = 7,   /* connect, proposing the connection id (xid) */
    UX_S_ACCEPT = 8, /* receiver -> sender: connection id agreed */
    UX_S_DATA = 9,   /* bytes at a stream offset */
    UX_S_ACK = 10,   /* receiver -> sender: cumulative ack, window, SACK */
    UX_S_FIN = 11,   /* end of stream: length and SHA-256 of every byte */
    UX_S_CLOSE = 12  /* either way: connection over, with a reason */
};

/* What a REQUEST names. */
enum ux_kind {
    UX_KIND_FILE = 0,   /* a file */
    UX_KIND_LISTING = 1, /* the listing of a folder, share or tree (listing.h) */
    UX_KIND_FILES = 2    /* files of a folder's listing, laid end to end (layout.h) */
};
#define UX_REQ_TREE 0x01   /* REQUEST flag: put the chunk-hash tree's root in the offer */
#define UX_REQ_NONCE 0x02  /* REQUEST flag: the client's key nonce follows the name */
#define UX_OFFER_TREE 0x01 /* OFFER flag: a root follows */
#define UX_OFFER_NONCE 0x02 /* OFFER flag: the server's key nonce follows (after the root) */

enum ux_sclose_reason { UX_SC_OK = 0, UX_SC_ABORT = 1, UX_SC_CORRUPT = 2, UX_SC_BUSY = 3 };
#define UX_SACK_FIN 0x01 /* ACK flag: every byte written and the stream hash checked */
/* The stream handshake proves the sender's address before the receiver
 * takes its one slot: OPEN, ACCEPT with a cookie, OPEN echoing it, ACCEPT. */
#define UX_SO_COOKIE 0x01
#define UX_SA_COOKIE 0x01
#define UX_SO_NONCE 0x02 /* the sender's key nonce follows the cookie */
#define UX_SA_NONCE 0x02 /* the receiver's key nonce follows the cookie */

/* Error codes on the wire (ERROR's u16); see errors.h for what an
 * application is told. */
enum ux_wire_error {
    UX_E_NONE = 0, /* in events: the request was answered with an offer */
    UX_E_NOTFOUND = 1,
    UX_E_REFUSED = 2,
    UX_E_STALE = 3,
    UX_E_BUSY = 4,
    UX_E_IO = 5,
    UX_E_PREPARING = 6 /* the file is being hashed: ask again */
};

struct ux_range {
    uint32_t first;
    uint32_t count;
};

struct ux_span {
    uint64_t start, end; /* [start, end) of stream bytes */
};

struct ux_msg {
    uint8_t type;
    uint8_t flags;
    uint64_t xid;
    union {
        struct {
            uint32_t chunk_size;
            uint8_t kind;  /* enum ux_kind */
            uint8_t flags; /* UX_REQ_* */
            uint16_t name_len;
            const uint8_t *name;
            uint16_t sel_len;         /* UX_KIND_FILES: the selection (layout.h) after the name */
            const uint8_t *sel;
            uint8_t nonce[UX_NC_LEN]; /* with UX_REQ_NONCE */
        } request;
        struct {
            uint64_t size;
            uint32_t chunk_size;
            uint32_t chunk_count;
            uint32_t handle;
            uint8_t sha256[UX_HASH_LEN];
            uint8_t cookie[UX_COOKIE_LEN];
            uint8_t flags; /* UX_OFFER_* */
            uint8_t root[UX_HASH_LEN];
            uint8_t nonce[UX_NC_LEN]; /* with UX_OFFER_NONCE */
        } offer;
        struct {
            uint16_t code;
            uint16_t text_len;
            const uint8_t *text;
        } error;
        struct {
            uint32_t handle;
            uint32_t chunk_size;
            uint8_t cookie[UX_COOKIE_LEN];
            uint32_t seq;
            uint32_t rate_kib; /* pacing hint in KiB/s, 0 = none */
            uint16_t nranges;
            struct ux_range ranges[UX_MAX_RANGES];
        } need;
        struct {
            uint32_t seq;
            uint32_t index;
            const uint8_t *hash;
            const uint8_t *data;
            size_t len;
        } data;
        struct {
            uint16_t reason;
        } close; /* UX_CLOSE and UX_S_CLOSE */
        struct {
            uint16_t mss;
            uint8_t flags; /* UX_SO_COOKIE: the cookie from an ACCEPT is echoed; UX_SO_NONCE */
            uint8_t cookie[UX_COOKIE_LEN];
            uint8_t nonce[UX_NC_LEN];
        } sopen;
        struct {
            uint16_t mss;
            uint32_t window;
            uint32_t idle_ms;
            uint8_t flags; /* UX_SA_COOKIE: not connected yet, echo the cookie in an OPEN; UX_SA_NONCE */
            uint8_t cookie[UX_COOKIE_LEN];
            uint8_t nonce[UX_NC_LEN];
        } saccept;
        struct {
            uint32_t txseq;
            uint64_t off;
            const uint8_t *hash;
            const uint8_t *data;
            size_t len;
        } sdata;
        struct {
            uint64_t cum;    /* every byte below is received */
            uint32_t window; /* bytes beyond cum the receiver can take */
            uint32_t echo;   /* txseq of the latest datagram received */
            uint8_t flags;
            uint8_t nsack;
            struct ux_span sack[UX_MAX_SACK];
        } sack;
        struct {
            uint32_t txseq;
            uint64_t length;
            uint8_t sha256[UX_HASH_LEN];
        } sfin;
    } u;
};

/* A datagram's bytes that the provider lent instead of copying (files the
 * host maps): the datagram is the output buffer followed by these. */
struct ux_tail {
    const uint8_t *p;
    size_t len;
};

/* Decode a datagram. Returns 0, or -1 if it is not a well-formed udpxfer
 * message (wrong magic/version, bad lengths, reserved bits set). Pointers
 * in *m point into buf. */
int ux_decode(const uint8_t *buf, size_t len, struct ux_msg *m);

/* Encode into buf (capacity cap). Returns the length, or 0 if it does not fit. */
size_t ux_encode(const struct ux_msg *m, uint8_t *buf, size_t cap);

/* DATA is encoded in place by the sender to avoid a copy: writes the header
 * and returns its length; len bytes of chunk data go after it. FLAGS:
 * UX_FLAG_TREE for a tree node's children, UX_FLAG_BARE for no hash. */
/* The file server's UDP port (the original tool's). */
#define UX_DEFAULT_PORT 10526

/* The transfer id in the header of datagram P (LEN bytes), or 0 if P is
 * not one of ours: routing only, nothing is checked. */
uint64_t ux_wire_xid(const uint8_t *p, size_t len);
size_t ux_encode_data_header(uint8_t *buf, uint8_t flags, uint64_t xid, uint32_t seq, uint32_t index,
                             const uint8_t hash[UX_CHUNK_HASH_LEN], size_t len);

/* S_DATA likewise: header in place, then len bytes of stream data. */
size_t ux_encode_sdata_header(uint8_t *buf, uint64_t xid, uint32_t txseq, uint64_t off,
                              const uint8_t hash[UX_HASH_LEN], size_t len);

/* Chunk count of a file: ceil(size / chunk_size); an empty file has 0. */
uint64_t ux_chunk_count(uint64_t size, uint32_t chunk_size);

#endif
