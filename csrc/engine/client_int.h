/* What the client engine's files (client.c: discovery, version choice and
 * dispatch; client_flow.c: windows, loss and rate; client_legacy.c: the
 * original tool's protocol) share. Not part of the engine's interface. */
#ifndef UDPXFER_CLIENT_INT_H
#define UDPXFER_CLIENT_INT_H

#include "client.h"

#define MS 1000ull
#define FIRST_RETRY_US (50 * MS) /* a lost offer on a LAN costs this; doubles per round */
#define COLLECT_US (100 * MS)    /* after the first offer, wait for others */
#define NOTFOUND_GRACE_US (1000 * MS)
/* A server hashing a large file answers "preparing": ask it again after
 * 20 ms, doubling up to every 250 ms, and wait this long after its last
 * such answer, for up to ten minutes in all (4 GiB take about 3 s here; a
 * slow disk, much longer). */
#define PREPARING_FIRST_US (20 * MS)
#define PREPARING_QUICK 16
#define PREPARING_RETRY_US (250 * MS)
#define PREPARING_GRACE_US (2000 * MS)
#define PREPARING_MAX_US (600000 * MS)
#define MIN_RTO_US (40 * MS)
#define MAX_RTO_US (1000 * MS)
#define INITIAL_CWND 64.0
#define MIN_CWND 8.0
#define BAD_CHUNK_LIMIT 8
#define SILENT_RTO_LIMIT 4
#define LEGACY_RETRY_US (1000 * MS) /* ask again after this long without a chunk */
/* Queueing delay accepted before backing off. On a LAN the path holds
 * little; what is in flight beyond it waits in a socket buffer, costing
 * cache and risking overflow: at 10 ms, 4-8 MB waited on loopback and
 * between namespaces and fetches ran 15-20% slower. */
#define QUEUE_TARGET_US (2 * MS)
#define CLOSE_REPEAT 1

/* client.c */
void uxc_push_event(struct ux_client *c, enum ux_client_event_type type, int peer);
void uxc_fail(struct ux_client *c, enum ux_err code, const char *msg);
uint64_t uxc_discovery_end(const struct ux_client *c);
/* The peer a datagram from A comes from (created if CREATE), or NULL:
 * unknown, or excluded, so not heard at all. */
struct ux_peer *uxc_sender(struct ux_client *c, const struct ux_addr *a, int create);
int uxc_peer_id(const struct ux_client *c, const struct ux_peer *p);
int uxc_active_peers(const struct ux_client *c);
void uxc_drop_peer(struct ux_client *c, struct ux_peer *p, enum ux_peer_drop why);
void uxc_complete(struct ux_client *c, uint64_t now);
void uxc_tick(struct ux_client *c, uint64_t now);
void uxc_offer_received(struct ux_client *c, struct ux_peer *p, uint64_t now);
size_t uxc_encode_request(struct ux_client *c, uint8_t *buf, size_t cap);

/* client_flow.c */
uint32_t uxc_outstanding(const struct ux_peer *p);
void uxc_reclaim(struct ux_client *c, struct ux_peer *p);
uint64_t uxc_rto(const struct ux_peer *p);
void uxc_tick_peer(struct ux_client *c, struct ux_peer *p, uint64_t now);
void uxc_bad_chunk(struct ux_client *c, struct ux_peer *p);
void uxc_on_data(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now);
uint32_t uxc_need_room(const struct ux_client *c, const struct ux_peer *p);
uint32_t uxc_budget_room(struct ux_client *c, struct ux_peer *p, uint32_t room, uint64_t now);
/* Bytes in chunk INDEX (the last one may be short). */
uint32_t uxc_chunk_len(const struct ux_client *c, uint32_t index);
size_t uxc_out_need(struct ux_client *c, struct ux_peer *p, uint32_t room, uint64_t now, uint8_t *buf,
                size_t cap, struct ux_addr *to);

/* client_tree.c */
struct ux_leaf {
    uint32_t index;
    uint8_t hash[UX_HASH_LEN];
};
/* Compare the chosen version's tree with the basis: UXC_TREE until the
 * chunks to fetch are known. Returns -1 if out of memory. */
int uxc_tree_start(struct ux_client *c, uint64_t now);
void uxc_tree_free(struct ux_client *c);
void uxc_tree_tick(struct ux_client *c, uint64_t now);
void uxc_on_tree_data(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now);
size_t uxc_out_tree(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to);
uint64_t uxc_tree_deadline(const struct ux_client *c);
/* The server's full leaf for chunk I, if the comparison brought it. */
const uint8_t *uxc_leaf(const struct ux_client *c, uint32_t i);
/* Copy the next reusable chunks from the basis (a few MiB per call).
 * Returns 1 while some remain. */
int uxc_reuse_step(struct ux_client *c, uint64_t now);
/* Every chunk is in: received, or copied from the basis. */
int uxc_all_in(const struct ux_client *c);

/* client_seal.c */
int uxc_keys_init(struct ux_client *c);
void uxc_keys_free(struct ux_client *c);
/* The plain datagram in a sealed one from FROM, or NULL: it does not
 * authenticate, is a replay, or is not sealed (and so not heard). */
const uint8_t *uxc_unseal(struct ux_client *c, const uint8_t *pkt, size_t *len, const struct ux_addr *from);
/* The datagram was taken: its packet number is not to be taken again. */
void uxc_unsealed_taken(struct ux_client *c);
/* Seal the plain datagram of LEN bytes in BUF for TO. Returns its length, or 0. */
size_t uxc_seal(struct ux_client *c, uint8_t *buf, size_t len, size_t cap, const struct ux_addr *to);
/* P's transfer key, from the server's nonce in its offer. Returns 0 or -1. */
int uxc_peer_key(struct ux_client *c, struct ux_peer *p, const uint8_t ns[UX_NC_LEN]);

/* client_legacy.c */
void uxc_legacy_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                  const struct ux_addr *from);
uint64_t uxc_legacy_retry_at(const struct ux_client *c);
size_t uxc_out_legacy_retry(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to);

#endif
