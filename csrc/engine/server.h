/* Server engine: answers discovery, validates cookies, keeps one session per
 * (client address, transfer id) and sends the chunks each client asks for,
 * shuffled, paced, round-robin across clients. No I/O: files are reached
 * through the provider callbacks, packets and time go in and out. */
#ifndef UDPXFER_SERVER_H
#define UDPXFER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "authlog.h"
#include "guard.h"
#include "hash.h"
#include "layout.h"
#include "legacy.h"
#include "rng.h"
#include "seal.h"
#include "wire.h"

struct ux_file_info {
    uint32_t handle;
    uint64_t generation; /* changes whenever the file does */
    uint64_t size;
    uint8_t sha256[UX_HASH_LEN];
    int has_root;        /* the chunk-hash tree for the chunk size asked is known */
    uint8_t root[UX_HASH_LEN];
    /* UX_KIND_FILES: the files laid out as asked, kept by the provider as
     * long as the handle's generation lasts; chunks are read by layout
     * index and go bare (each file is checked whole by the client). */
    const struct ux_layout *layout;
};

/* What a REQUEST asks for, and what answering it may cost. */
struct ux_lookup {
    enum ux_kind kind;
    const char *name;
    size_t len;
    uint32_t chunk_size;
    int want_tree; /* the tree's root at chunk_size, if the provider can make it */
    const uint8_t *sel; /* UX_KIND_FILES: the selection's encoding (layout.h) */
    size_t sel_len;
    int proven;    /* the asker's address has echoed a cookie (or the request was sealed) */
    enum ux_work may; /* what the budgets let it compute that is not known yet */
    int may_tree;  /* ... and whether a chunk-hash tree */
    uint64_t work; /* out: what it cost, in work units (a byte hashed is one) */
    uint64_t work_once; /* out: of that, work done once per file version (its SHA-256) */
    uint64_t work_trees; /* out: of that, chunk-hash trees */
    int deferred;  /* out: it said "preparing" for want of budget */
};

struct ux_provider {
    /* Look a file or listing up. Returns 0 or a UX_E_* code. */
    int (*lookup)(void *ud, struct ux_lookup *q, struct ux_file_info *out);
    /* Current state of HANDLE (the file may have changed since lookup).
     * Returns 0 or a UX_E_* code. */
    int (*current)(void *ud, uint32_t handle, struct ux_file_info *out);
    /* Read LEN bytes at OFF. Returns 0 or an errno value. */
    int (*read)(void *ud, uint32_t handle, uint64_t off, uint8_t *buf, size_t len);
    /* Read chunk INDEX (LEN bytes, chunk size CS) into BUF and give its
     * ux_chunk_hash, which the provider may have kept from before. If LENT
     * is not NULL the provider may instead set *LENT to the chunk's bytes,
     * lent until the host has sent every datagram output so far, and leave
     * BUF alone. HASH is NULL when no hash is wanted (a bare chunk).
     * Returns 0 or an errno value. */
    int (*chunk)(void *ud, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                 uint8_t hash[UX_HASH_LEN], const uint8_t **lent);
    /* The children hashes of node ID of HANDLE's tree at chunk size CS into
     * BUF (UX_TREE_NODE_BYTES); their length in *LEN. Returns 0, ENOENT
     * (no such node or no tree) or another errno value. */
    int (*node)(void *ud, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len);
    const char *(*name)(void *ud, uint32_t handle);
    /* A client whose address is proven opened a session on HANDLE at
     * chunk size CS: what it uses is worth keeping (may be NULL). */
    void (*opened)(void *ud, uint32_t handle, uint32_t cs);
    void *ud;
};

struct ux_server_cfg {
    uint32_t max_chunk;
    uint32_t max_sessions;
    uint32_t queue_cap;   /* chunks queued per session */
    uint64_t idle_us;     /* a session with no NEED this long ends */
    uint32_t corrupt_ppm; /* fault injection for tests: damage this share of chunks */
    uint32_t lie_ppm;     /* ... and this share before hashing: chunk hashes match the wrong bytes */
    uint32_t host_sessions; /* sessions one client host may hold (default: a quarter) */
    double host_requests; /* requests per second one host may make (default 10000) */
    double work_rate;     /* work units (bytes hashed, or as costly) per second that answering
                           * requests may take in all (default UX_WORK_RATE); half that for
                           * one proven host, an eighth for all hosts not proven together */
    uint64_t host_bps;    /* bytes per second to one host, 0: no cap */
    uint64_t total_bps;   /* bytes per second in all, 0: no cap */
    int legacy;           /* also answer the original tool's "get NAME" */
    uint64_t legacy_bps;  /* pacing per legacy client, which cannot ask for less; twice that in all */
    struct ux_provider files;
    struct ux_rng rng;    /* the cookie secret and the shuffles come from here */
    const uint8_t *key;   /* the shared key (UX_KEY_LEN bytes), or NULL: keyless */
};

/* A queued send: a chunk, or (index | UX_SEND_TREE) a tree node. */
#define UX_SEND_TREE 0x80000000u
struct ux_send {
    uint32_t index;
    uint32_t seq;
};

struct ux_session {
    int used;
    struct ux_addr addr;
    struct ux_host *host;    /* its client host's accounting */
    uint8_t cookie[UX_COOKIE_LEN]; /* the one that opened it: its NEEDs carry it */
    struct ux_aead *aead;    /* key mode: its transfer key (kept until the slot is reused) */
    uint8_t nc[UX_NC_LEN];   /* the client's nonce it was made from */
    struct ux_replay replay;
    uint64_t xid;
    uint32_t handle;
    uint64_t generation;
    uint32_t chunk_size;
    uint32_t count;
    const struct ux_layout *layout; /* files laid end to end, or NULL: one file */
    uint32_t tree_nodes;     /* interior nodes of its tree at chunk_size */
    uint64_t size;
    struct ux_send *queue;
    uint32_t q_head, q_len, q_cap;
    uint64_t rate_bps;       /* pacing, 0 = none */
    uint64_t next_send_at;
    uint64_t started_at, last_rx;
    uint64_t bytes_sent;
    uint32_t chunks_sent, needs;
    /* legacy sessions send every chunk once, in the order of a random
     * permutation i -> (perm_a * i + perm_b) mod count, with no queue */
    int legacy;
    uint64_t perm_a, perm_b;
    uint32_t perm_i;
};

enum ux_server_event_type {
    UXSV_EV_REQUEST, /* a request was answered: code */
    UXSV_EV_START,   /* a session opened: its first NEED came */
    UXSV_EV_END,     /* a session ended: reason */
    UXSV_EV_UNAUTHENTIC /* datagrams from addr failed authentication: sealed, keyless (authlog.h) */
};

/* Why a session ended. */
enum ux_server_end {
    UXSV_END_CLOSED,  /* the client said it is done */
    UXSV_END_ABORTED, /* the client gave up */
    UXSV_END_IDLE,    /* no NEED for idle_us */
    UXSV_END_STALE,   /* the file changed */
    UXSV_END_IO       /* reading the file failed */
};

struct ux_server_event {
    enum ux_server_event_type type;
    enum ux_kind kind;           /* REQUEST: a file or a listing */
    enum ux_wire_error code;     /* REQUEST: 0 or what the client was told */
    enum ux_server_end reason;   /* END */
    struct ux_addr addr;
    char name[UX_MAX_NAME + 1];
    uint64_t size;
    uint64_t bytes_sent;
    uint32_t chunks_sent;
    uint64_t elapsed_us;
    uint32_t sealed, keyless;    /* UNAUTHENTIC: counts since the last such event for the host */
};

struct ux_reply {
    struct ux_addr to;
    size_t len;
    uint8_t buf[UX_HDR_LEN + 4 + 200 + UX_SEAL_MAX];
};

#define UX_RECENT_REQUESTS 64 /* (client, transfer id) pairs remembered for the log */
#define UX_WORK_RATE (512.0 * 1024 * 1024) /* about half a core of SHA-256 */

struct ux_server {
    struct ux_server_cfg cfg;
    uint64_t recent[UX_RECENT_REQUESTS];
    unsigned recent_next;
    struct ux_guard guard;
    uint64_t total_next_at;  /* pacing of everything sent, when total_bps is set */
    uint64_t legacy_next_at; /* pacing of every legacy session together */
    struct ux_session *sessions;
    uint32_t hi;        /* sessions[hi..] are all unused */
    uint64_t expire_at; /* no session can go idle before this */
    int rr;
    struct ux_reply replies[32];
    int r_head, r_len;
    struct ux_server_event *events;
    int ev_head, ev_len, ev_cap;
    uint64_t rng;
    struct ux_sha *sha;
    struct ux_msg scratch; /* decoded input; a NEED's range table is large */
    uint64_t dropped_malformed;
    uint64_t work_done;     /* work units lookups took */
    uint64_t work_deferred; /* requests told "preparing" for want of budget */
    /* key mode (server_seal.c) */
    int keyed;
    struct ux_keyring keys;
    struct ux_authlog authlog; /* what failed authentication, for the log */
    uint64_t pn;               /* packet numbers it seals under, for every session */
    uint8_t *plain;            /* the datagram being taken in, opened */
    struct ux_aead *in_aead;   /* the key that opened it (NULL: the discovery key) */
    int in_owned;              /* in_aead was made for it, and no session took it yet */
    struct ux_session *in_session;
    const uint8_t *in_nc;      /* its client nonce, in the datagram */
    uint64_t in_pn;
};

int ux_server_init(struct ux_server *s, const struct ux_server_cfg *cfg);
void ux_server_free(struct ux_server *s);
void ux_server_input(struct ux_server *s, uint64_t now, const uint8_t *pkt, size_t len,
                     const struct ux_addr *from);
/* The next datagram to send into BUF, or 0. With TAIL, the payload may stay
 * in the provider's memory (TAIL set); with NULL, it is always in BUF. */
size_t ux_server_output(struct ux_server *s, uint64_t now, uint8_t *buf, size_t cap,
                        struct ux_addr *to, struct ux_tail *tail);
uint64_t ux_server_deadline(const struct ux_server *s);
int ux_server_next_event(struct ux_server *s, struct ux_server_event *ev);
int ux_server_sessions(const struct ux_server *s);

#endif
