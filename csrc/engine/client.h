/* Client engine: discovery, version choice, chunk scheduling across servers,
 * verification and loss recovery. No I/O: packets and time go in, packets,
 * verified chunks and events come out, and ux_client_deadline() says when to
 * call again. */
#ifndef UDPXFER_CLIENT_H
#define UDPXFER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "budget.h"
#include "chunkmap.h"
#include "errors.h"
#include "hash.h"
#include "layout.h"
#include "rng.h"
#include "seal.h"
#include "tree.h"
#include "wire.h"

#define UX_MAX_PEERS 32
#define UX_MAX_TARGETS 32

struct ux_client_cfg {
    const char *name;
    size_t name_len;
    uint32_t chunk_size;          /* requested chunk size */
    uint64_t discover_us;         /* give up discovery after this (default 10 s) */
    uint64_t idle_us;             /* a server silent this long is dropped (default 5 s) */
    uint32_t max_window;          /* chunks in flight per server */
    uint64_t max_rate;            /* bytes/s from all servers together, 0: no limit */
    int legacy;                   /* speak the original tool's protocol */
    int unicast;                  /* every target is one server: start once all have offered */
    int want_sha256_set;
    uint8_t want_sha256[UX_HASH_LEN];
    /* The version is chosen: prepare SIZE bytes of output. Returns 0 or errno. */
    int (*on_start)(void *ud, uint64_t size, const char **why);
    /* Verified chunk: write it. Returns 0 or an errno value; EAGAIN: not
     * now, the datagram is handed back (see ux_client_input). */
    int (*on_chunk)(void *ud, uint32_t index, uint64_t offset, const uint8_t *data, size_t len);
    void *ud;
    struct ux_rng rng;            /* the transfer id comes from here */
    enum ux_kind kind;            /* a file, or a folder's listing */
    int want_tree;                /* ask for the chunk-hash tree's root (tree.h) */
    /* With want_tree: the local copy's tree at chunk_size. Chunks whose
     * leaves match the server's tree are not fetched but copied from it
     * (on_reuse), and each chunk fetched is checked against its leaf. */
    const struct ux_tree *basis;
    /* With a basis: descend the tree to every leaf wherever it differs,
     * never fetching a subtree whole, so each chunk fetched is checked
     * against its leaf (an empty basis checks them all). */
    int verify_leaves;
    /* Copy LEN bytes at OFFSET from the local copy into the output.
     * Returns 0 or an errno value. */
    int (*on_reuse)(void *ud, uint64_t offset, size_t len);
    /* The shared key (UX_KEY_LEN bytes), or NULL: keyless. With a key,
     * every datagram is sealed (seal.h), and unsealed ones are not heard. */
    const uint8_t *key;
    /* Shared with other transfers (a sync's rate limit), or NULL: chunks
     * are asked for only while it has bytes left. */
    struct ux_budget *budget;
    /* UX_KIND_FILES: the selection asked for (its encoding, after the
     * name) and its layout, which the offer must match (want_sha256: its
     * digest). Chunk INDEX of on_chunk is then a chunk of the layout. */
    const uint8_t *sel;
    size_t sel_len;
    const struct ux_layout *layout;
};

enum ux_client_state {
    UXC_DISCOVER, /* asking who has the file */
    UXC_TREE,     /* comparing the server's tree with the local copy's */
    UXC_TRANSFER, /* fetching chunks, copying reused ones */
    UXC_DONE,
    UXC_FAILED
};

/* Why a server no longer takes part. */
enum ux_peer_drop {
    UXC_DROP_NONE,
    UXC_DROP_SILENT,  /* stopped answering, or busy */
    UXC_DROP_CORRUPT, /* sent too many chunks that failed their hash */
    UXC_DROP_STALE,   /* its file changed */
    UXC_DROP_REFUSED  /* it refused the name, or no longer has the file */
};

#define UX_RTT_FILTER 4 /* RTT samples whose minimum measures a standing queue */

struct ux_peer_stats {
    uint64_t bytes;
    uint32_t stolen;   /* endgame requests of chunks another server owed */
    uint32_t chunks;
    uint32_t dups;
    uint32_t bad;
    uint32_t lost;
    uint32_t timeouts;
    uint32_t tree_nodes; /* tree nodes received from it */
};

struct ux_inflight {
    uint32_t index;
    uint32_t seq;
};

struct ux_peer {
    struct ux_addr addr;
    int has_offer;
    int preparing;     /* it answered "preparing the file" (reported once) */
    int active;        /* offers the chosen version and is alive */
    enum ux_peer_drop dropped;
    int excluded;      /* told to ignore it (it took part in a transfer that failed its hash) */
    int answered;      /* it answered the request with an error */
    uint64_t size;
    uint32_t chunk_size;
    uint32_t handle;
    uint8_t sha256[UX_HASH_LEN];
    uint8_t cookie[UX_COOKIE_LEN];
    int has_root;
    uint8_t root[UX_HASH_LEN];
    /* window */
    struct ux_inflight *ring;
    uint32_t ring_head, ring_len;
    uint32_t ring_done;      /* entries in the ring already received */
    double cwnd, ssthresh;
    uint32_t need_seq;       /* last NEED sent */
    uint32_t recover_seq;    /* losses at or below this were already reacted to */
    uint64_t need_sent_at;   /* when need_seq went out */
    uint32_t rtt_seq;        /* the NEED being timed, if rtt_sent_at */
    uint64_t rtt_sent_at;
    uint64_t last_rx;
    uint64_t held_at;         /* last held back by the budget with nothing asked: not silent */
    uint64_t first_data_at;   /* for the delivery rate */
    uint32_t silent_rtos;     /* consecutive timeouts with no data */
    double srtt_us;
    double base_rtt_us;       /* smallest RTT seen: the path without queues */
    double recent_rtt_us[UX_RTT_FILTER]; /* the last samples: their minimum is the queue's */
    uint32_t rtt_samples;
    int need_now;
    int close_pending;
    struct ux_aead *aead;    /* key mode: this transfer's key with it */
    struct ux_replay replay; /* its packet numbers seen */
    struct ux_peer_stats st;
};

enum ux_client_event_type {
    UXC_EV_OFFER,     /* a server offered (peer) */
    UXC_EV_START,     /* the version is chosen (peer: its first offerer) */
    UXC_EV_DROP,      /* a server was dropped (peer) */
    UXC_EV_DONE,      /* every chunk is in */
    UXC_EV_FAIL,      /* the transfer failed: fail, fail_msg */
    UXC_EV_PREPARING  /* a server is still hashing the file (peer; once per server) */
};

struct ux_client_event {
    enum ux_client_event_type type;
    int peer; /* index into peers, or -1 */
};

struct ux_client {
    struct ux_client_cfg cfg;
    enum ux_client_state state;
    int budget_held;         /* the last output pass left a server unasked for want of budget */
    enum ux_err fail;
    char fail_msg[200];
    uint64_t xid;
    uint64_t started_at, first_offer_at, first_error_at, done_at;
    char refused[120];       /* what the first server to refuse the name said, printable */
    char unreadable[120];    /* what the first server that could not read it said, printable */
    uint64_t preparing_at;   /* last "preparing the file" answer: discovery waits on */
    unsigned preparing_rounds; /* rounds asked since the first such answer */
    int no_version;          /* the offers so far hold no version to take */
    int stale_answer;        /* a server said the listing asked about is no longer its own */
    struct ux_addr targets[UX_MAX_TARGETS];
    int ntargets;
    uint8_t unreachable[UX_MAX_TARGETS]; /* the host said nothing listens there */
    int nunreachable;
    int target_cursor;       /* next target to send the current round to */
    int round;
    uint64_t next_round_at;
    struct ux_peer peers[UX_MAX_PEERS];
    int npeers;
    /* chosen version */
    uint64_t size;
    uint32_t chunk_size;
    uint32_t count;
    uint8_t sha256[UX_HASH_LEN];
    struct ux_chunkmap map;
    uint64_t bytes_done;
    uint32_t dups, bad;
    uint64_t legacy_asked_at;     /* last "get NAME" during the transfer */
    uint64_t last_chunk_at;
    size_t legacy_last_len;       /* size of the final chunk, once seen */
    int held;                     /* on_chunk said EAGAIN to the datagram being taken in */
    struct ux_sha *sha;
    struct ux_client_event events[64];
    int ev_head, ev_len;
    int rr;                   /* round-robin cursor over peers for output */
    int restart_clock;        /* output() wants a call with a fresh time */
    struct ux_msg scratch;    /* a NEED being built: its range table is large */
    /* the chunk-hash tree (client_tree.c) */
    int has_root;
    uint8_t root[UX_HASH_LEN];
    struct ux_descent *descent;   /* while comparing trees */
    uint64_t *reuse;              /* bitmap: chunks copied from the basis, not fetched */
    uint32_t reuse_next;          /* chunks below this are copied (or not reused) */
    struct ux_leaf *leaves;       /* the server's leaves of chunks to fetch, by index */
    uint32_t nleaves, leaves_cap;
    uint64_t bytes_reused, tree_bytes;
    uint32_t chunks_reused, nodes_fetched;
    /* key mode (client_seal.c) */
    int keyed;
    struct ux_keyring keys;
    uint8_t nc[UX_NC_LEN];    /* this transfer's nonce toward every server */
    uint64_t pn;              /* packet numbers it seals under */
    uint8_t *plain;           /* a datagram opened */
    struct ux_peer *sealed_by; /* the peer whose key opened the datagram being taken in */
    uint64_t sealed_pn;
};

int ux_client_init(struct ux_client *c, const struct ux_client_cfg *cfg, uint64_t now);
void ux_client_free(struct ux_client *c);
int ux_client_add_target(struct ux_client *c, const struct ux_addr *a);
/* A datagram to TO came back as undeliverable (ICMP port or host
 * unreachable): while discovering, a target that will never answer. */
void ux_client_unreachable(struct ux_client *c, uint64_t now, const struct ux_addr *to);
/* Ignore the server at A: its offers count neither as votes nor as
 * sources. Returns -1 if the peer table is full. */
int ux_client_exclude(struct ux_client *c, const struct ux_addr *a);
/* Take in a datagram. Returns 1 if on_chunk could not take its chunk yet
 * (EAGAIN): nothing of it was counted, feed it again later; else 0. */
int ux_client_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from);
/* Next datagram to send, or 0 when nothing is due. */
size_t ux_client_output(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                        struct ux_addr *to);
/* Time at which the engine next wants to run, absent input (UINT64_MAX = none). */
uint64_t ux_client_deadline(const struct ux_client *c);
int ux_client_next_event(struct ux_client *c, struct ux_client_event *ev);
/* Abort with a failure decided outside the engine (e.g. the final hash). */
void ux_client_abort(struct ux_client *c, enum ux_err code, const char *msg);

#endif
