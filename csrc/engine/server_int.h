/* What the server engine's files share (server.c: discovery, sessions,
 * admission; server_send.c: chunks and tree nodes out, pacing;
 * server_legacy.c: the original tool's protocol). Not its interface. */
#ifndef UDPXFER_SERVER_INT_H
#define UDPXFER_SERVER_INT_H

#include "server.h"

#define MS 1000ull

uint64_t uxs_rand(struct ux_server *s);
struct ux_server_event *uxs_event(struct ux_server *s, enum ux_server_event_type type, const struct ux_addr *a);
void uxs_request_event(struct ux_server *s, const struct ux_addr *from, uint64_t xid, enum ux_kind kind,
                       const uint8_t *name, size_t n, int code, const struct ux_file_info *fi);
/* Queue a datagram for TO that is not a session's: an answer to a request. */
void uxs_queue_raw(struct ux_server *s, const struct ux_addr *to, const uint8_t *p, size_t len);
/* The provider's lookup for a request from FROM, charged to the work budgets. */
int uxs_lookup(struct ux_server *s, struct ux_lookup *q, const struct ux_addr *from, uint64_t now,
               struct ux_file_info *fi);
struct ux_session *uxs_find(struct ux_server *s, const struct ux_addr *a, uint64_t xid);
/* A session for FROM's transfer XID of the file FI at chunk size CS, or
 * NULL: no slot free, or its host holds its share already. */
struct ux_session *uxs_open(struct ux_server *s, const struct ux_addr *from, uint64_t xid, uint32_t cs,
                            const struct ux_file_info *fi, uint64_t now);
void uxs_end(struct ux_server *s, struct ux_session *ss, enum ux_server_end reason, uint64_t now);
uint32_t uxs_pending(const struct ux_session *ss);

/* server_seal.c */
int uxs_keys_init(struct ux_server *s);
void uxs_keys_free(struct ux_server *s);
/* The plain datagram in a sealed one, or NULL (not heard). */
const uint8_t *uxs_unseal(struct ux_server *s, const uint8_t *pkt, size_t *len, const struct ux_addr *from,
                          uint64_t now);
/* After the datagram was taken in: its packet number is spent, an unused key freed. */
void uxs_unsealed_done(struct ux_server *s);
/* A new session takes the key that opened its first NEED. */
void uxs_adopt_key(struct ux_server *s, struct ux_session *ss, const uint8_t nc[UX_NC_LEN]);
/* The server's nonce for the client nonce NC of transfer XID (the same each time). */
int uxs_server_nonce(const struct ux_server *s, const uint8_t nc[UX_NC_LEN], uint64_t xid, uint8_t out[UX_NC_LEN]);
/* Seal a reply to the datagram taken in (with the key that opened it). */
size_t uxs_seal_reply(struct ux_server *s, uint8_t *buf, size_t len, size_t cap);
/* Seal what session SS sends: LEN bytes with a nonce's hole after the header. */
size_t uxs_seal_session(struct ux_server *s, struct ux_session *ss, uint8_t *buf, size_t len, size_t cap);

/* server_send.c */
/* Can SS send now, as its own, its host's and the server's pacing go? */
int uxs_may_send(const struct ux_server *s, const struct ux_session *ss, uint64_t now);
/* When SS may send next (UINT64_MAX: nothing pending). */
uint64_t uxs_send_at(const struct ux_server *s, const struct ux_session *ss);
void uxs_pace(struct ux_server *s, struct ux_session *ss, uint64_t now, size_t bytes);
/* The session's next chunk or tree node into BUF, HOLE bytes left free
 * after the header (where a seal's nonce goes). Returns the length, hole included. */
size_t uxs_send(struct ux_server *s, struct ux_session *ss, uint64_t now, uint8_t *buf, size_t cap,
                struct ux_addr *to, struct ux_tail *tail, size_t hole);

/* server_legacy.c */
void uxs_legacy_get(struct ux_server *s, const uint8_t *name, size_t n, const struct ux_addr *from, uint64_t now);
size_t uxs_legacy_send(struct ux_server *s, struct ux_session *ss, uint64_t now, uint8_t *buf, size_t cap,
                       struct ux_addr *to);

#endif
