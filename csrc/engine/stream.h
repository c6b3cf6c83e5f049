/* Stream mode engines: a byte stream of unknown length from a sender to a
 * receiver, in order, with a connection id agreed at set-up, a sliding
 * window with selective acks, retransmission and a verified teardown.
 * No I/O, like the file engines: packets and time go in, packets, stream
 * bytes and events come out, and *_deadline() says when to call again. */
#ifndef UDPXFER_STREAM_H
#define UDPXFER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "errors.h"
#include "guard.h"
#include "hash.h"
#include "rng.h"
#include "seal.h"
#include "wire.h"

#define UX_STREAM_PORT 10527
#define UX_STREAM_MSS 1360
#define UX_STREAM_MIN_MSS 64
#define UX_STREAM_MAX_MSS (65507 - UX_SDATA_OVERHEAD - UX_SEAL_MAX)
#define UX_STREAM_BUF (8u << 20)
#define UX_MAX_HOLES 64 /* out-of-order spans a receiver keeps */

enum ux_stream_event_type {
    UXST_EV_CONNECT = 1, /* the connection is set up */
    UXST_EV_COMPLETE,    /* receiver: every byte is out and the stream's SHA-256 matched */
    UXST_EV_FINISHED,    /* the stream ended well */
    UXST_EV_FAILED       /* the stream failed: fail, fail_msg */
};

/* A stream fails with UX_ERR_NOSERVER (nobody to connect to, nobody
 * connected), UX_ERR_BROKEN (the peer went silent or aborted mid-stream),
 * UX_ERR_BUSY (the receiver serves another connection), UX_ERR_CORRUPT
 * (the stream's SHA-256 did not match) or UX_ERR_IO (local reading or
 * writing failed, set by the I/O layer). */

struct ux_stream_event {
    enum ux_stream_event_type type;
};

/* One line per datagram, formatted like the original tool's SEND/RECV/DROP log. */
typedef void (*ux_trace_fn)(void *ud, const char *line);

struct ux_stream_stats {
    uint64_t bytes;           /* stream bytes delivered (receiver) or acked (sender) */
    uint64_t sent_bytes;      /* payload bytes put on the wire, retransmissions included */
    uint64_t retx_bytes;
    uint32_t packets_in, packets_out, dropped, dups, retransmits, timeouts;
};

/* Shared by both ends. */
struct ux_stream_common {
    int state;             /* enum ux_ssend_state or enum ux_srecv_state */
    uint64_t xid;
    struct ux_addr peer;
    uint16_t mss;
    uint64_t idle_us;
    uint64_t started_at, connected_at, done_at, last_rx;
    enum ux_err fail;
    char fail_msg[160];
    uint8_t sha256[UX_HASH_LEN]; /* of the whole stream, once known */
    struct ux_sha *seg_sha, *run_sha;
    struct ux_stream_stats st;
    struct ux_stream_event ev[8];
    int ev_head, ev_len;
    ux_trace_fn trace;
    void *trace_ud;
    /* key mode (stream_seal.c) */
    int keyed;
    struct ux_keyring keys;
    struct ux_aead *aead;        /* the stream's key, once both nonces are known */
    uint8_t nc[UX_NC_LEN];       /* the sender's nonce */
    uint64_t pn;                 /* packet numbers this end seals under */
    struct ux_replay replay;     /* the other end's, seen */
    uint8_t *plain;              /* a datagram opened */
    int in_session;              /* the datagram taken in was sealed with the stream's key */
};

int ux_stream_next_event(struct ux_stream_common *c, struct ux_stream_event *ev);

/* ---------------- sender ---------------- */

enum ux_ssend_state { UXSS_CONNECTING, UXSS_OPEN, UXSS_DONE, UXSS_FAILED };

struct ux_ssend_cfg {
    struct ux_addr peer;
    uint16_t mss;          /* largest payload per datagram */
    uint32_t buffer;       /* bytes held for retransmission (default UX_STREAM_BUF) */
    uint64_t connect_us;   /* give up connecting after this (default 30 s) */
    const uint8_t *key;    /* the shared key (UX_KEY_LEN bytes), or NULL */
    uint64_t idle_us;      /* give up when the receiver is silent this long (10 s) */
    ux_trace_fn trace;
    void *trace_ud;
    struct ux_rng rng;     /* the connection id comes from here */
};

struct ux_seg {
    uint64_t off;
    uint64_t sent_at;
    uint32_t len;
    uint32_t txseq;        /* of its latest transmission */
    uint8_t state;         /* SEG_FLIGHT, SEG_SACKED, SEG_LOST */
    uint8_t retx;
};

struct ux_ssend {
    struct ux_stream_common c;
    struct ux_ssend_cfg cfg;
    uint8_t *buf;          /* ring: stream bytes [una, end) */
    uint64_t cap;
    uint64_t una, nxt, end; /* acked below una; sent below nxt; given below end */
    int eof;
    struct ux_seg *segs;   /* ring of the segments in [una, nxt) */
    uint32_t seg_cap, seg_head, seg_len;
    uint32_t lost_hint;    /* segments before this index are not lost */
    uint32_t next_txseq, echo_high, recover_txseq;
    uint64_t *tx_time;     /* send time by txseq, for RTT samples */
    uint32_t *tx_seq;
    uint64_t srtt, rttvar, rto, backoff;
    double cwnd, ssthresh;
    uint64_t flight;       /* bytes of segments in flight */
    uint64_t rwnd_edge;    /* the receiver takes bytes below this */
    uint64_t sack_high;
    uint64_t keepalive_us;
    uint64_t rto_from;     /* the retransmission timer runs from here */
    uint64_t next_open_at, last_tx;
    int open_tries;
    int has_cookie;        /* the receiver's, to echo in OPEN */
    uint8_t cookie[UX_COOKIE_LEN];
    uint64_t fin_sent_at;
    int fin_sent;
    int close_pending;     /* CLOSE datagrams still to send */
    uint16_t close_reason;
};

int ux_ssend_init(struct ux_ssend *s, const struct ux_ssend_cfg *cfg, uint64_t now);
void ux_ssend_free(struct ux_ssend *s);
/* Free contiguous space for new stream bytes; write there, then commit. */
size_t ux_ssend_space(struct ux_ssend *s, uint8_t **where);
void ux_ssend_commit(struct ux_ssend *s, size_t n);
/* No more bytes will come. */
void ux_ssend_eof(struct ux_ssend *s);
/* Stop: tell the receiver the stream is broken (a local read error). */
void ux_ssend_abort(struct ux_ssend *s, enum ux_err fail, const char *msg);
void ux_ssend_input(struct ux_ssend *s, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from);
size_t ux_ssend_output(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap,
                       struct ux_addr *to);
uint64_t ux_ssend_deadline(const struct ux_ssend *s);

/* ---------------- receiver ---------------- */

enum ux_srecv_state { UXSR_LISTEN, UXSR_OPEN, UXSR_CLOSING, UXSR_DONE, UXSR_FAILED };

struct ux_srecv_cfg {
    uint32_t buffer;       /* reordering and output buffer (default UX_STREAM_BUF) */
    uint16_t max_mss;
    uint64_t listen_us;    /* give up waiting for a sender (0: wait for ever) */
    uint64_t idle_us;      /* the stream is broken after this long silent (10 s) */
    ux_trace_fn trace;
    void *trace_ud;
    struct ux_rng rng;     /* the cookie secret comes from here */
    const uint8_t *key;    /* the shared key (UX_KEY_LEN bytes), or NULL */
};

struct ux_srecv {
    struct ux_stream_common c;
    struct ux_srecv_cfg cfg;
    uint8_t *buf;          /* ring: bytes [taken, taken + cap) */
    uint64_t cap;
    uint64_t taken;        /* handed to the application below this */
    uint64_t nxt;          /* received in order below this */
    struct ux_span holes[UX_MAX_HOLES]; /* received spans above nxt */
    int nholes;
    int fin_known;
    uint64_t fin_len;
    uint8_t fin_sha[UX_HASH_LEN];
    uint32_t echo;
    int ack_now, unacked;
    uint64_t ack_due_at;
    uint64_t closing_at, fin_ack_at;
    int fin_acks;
    int accept_pending, close_pending;
    uint16_t close_reason;
    struct ux_addr busy_to;
    uint64_t busy_xid;
    struct ux_guard *guard; /* mints and checks handshake cookies */
    struct ux_addr cookie_to; /* an OPEN to answer with a cookie (the latest) */
    uint64_t cookie_xid;
    uint64_t cookie_at;
    uint8_t cookie_nc[UX_NC_LEN]; /* that OPEN's nonce, key mode */
    int out_disc;             /* the datagram out is for someone not connected */
};

int ux_srecv_init(struct ux_srecv *r, const struct ux_srecv_cfg *cfg, uint64_t now);
void ux_srecv_free(struct ux_srecv *r);
/* In-order bytes ready for the application (contiguous part). */
size_t ux_srecv_peek(const struct ux_srecv *r, const uint8_t **where);
/* The application has written n of them. Once every byte is out, the
 * stream's SHA-256 is checked and the end acknowledged (or it fails). */
void ux_srecv_consume(struct ux_srecv *r, size_t n, uint64_t now);
void ux_srecv_abort(struct ux_srecv *r, enum ux_err fail, const char *msg);
void ux_srecv_input(struct ux_srecv *r, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from);
size_t ux_srecv_output(struct ux_srecv *r, uint64_t now, uint8_t *buf, size_t cap,
                       struct ux_addr *to);
uint64_t ux_srecv_deadline(const struct ux_srecv *r);

/* Shared helpers (stream.c). */
void ux_stream_fail(struct ux_stream_common *c, enum ux_err fail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ux_stream_push(struct ux_stream_common *c, enum ux_stream_event_type type);
void ux_stream_trace(struct ux_stream_common *c, const char *dir, const struct ux_msg *m,
                     const char *note);
int ux_stream_common_init(struct ux_stream_common *c, uint64_t now);
void ux_stream_common_free(struct ux_stream_common *c);

/* Key mode (stream_seal.c). */
int ux_stream_keys_init(struct ux_stream_common *c, const uint8_t *key);
void ux_stream_keys_free(struct ux_stream_common *c);
/* The stream's key from the sender's nonce (in c->nc) and the receiver's. */
int ux_stream_derive(struct ux_stream_common *c, const uint8_t ns[UX_NC_LEN]);
/* The plain datagram in a sealed one, or NULL. Session-sealed ones must
 * come from DIR under the stream's key, fresh; others open with the
 * discovery key and must be of type DISC_TYPE or DISC_TYPE2. */
const uint8_t *ux_stream_unseal(struct ux_stream_common *c, const uint8_t *pkt, size_t *len, uint8_t dir,
                                uint8_t disc_type, uint8_t disc_type2);
/* Seal the plain datagram in BUF: with the discovery key if DISC (or no
 * stream key yet), else with the stream's key as DIR. Returns its length or 0. */
size_t ux_stream_seal(struct ux_stream_common *c, struct ux_rng *rng, uint8_t *buf, size_t len, size_t cap,
                      int disc, uint8_t dir);

#endif
