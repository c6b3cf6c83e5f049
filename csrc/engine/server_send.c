/* The server's sending side: chunks and tree nodes out of a session's
 * queue, and the pacing of sessions, hosts and the whole server. */
#include "server_int.h"
#include "tree.h"

#include <errno.h>
#include <string.h>

#define PACE_BURST_US 2000 /* hosts wake up every millisecond or so: let a wake-up send what fell due */

/* Move the clock AT on by BYTES at BPS, from no earlier than a burst ago. */
static void advance(uint64_t *at, uint64_t now, size_t bytes, uint64_t bps)
{
    if (!bps)
        return;
    uint64_t gap = (uint64_t)bytes * 8 * 1000000 / bps;
    uint64_t floor = now > PACE_BURST_US ? now - PACE_BURST_US : 0;
    *at = (*at > floor ? *at : floor) + gap;
}

void uxs_pace(struct ux_server *s, struct ux_session *ss, uint64_t now, size_t bytes)
{
    advance(&ss->next_send_at, now, bytes, ss->rate_bps);
    advance(&s->total_next_at, now, bytes, s->cfg.total_bps);
    if (ss->legacy) {
        advance(&ss->host->legacy_next_at, now, bytes, s->cfg.legacy_bps);
        advance(&s->legacy_next_at, now, bytes, 2 * s->cfg.legacy_bps);
    } else {
        advance(&ss->host->next_send_at, now, bytes, s->cfg.host_bps);
    }
}

uint64_t uxs_send_at(const struct ux_server *s, const struct ux_session *ss)
{
    if (!uxs_pending(ss))
        return UINT64_MAX;
    uint64_t at = ss->next_send_at;
    const uint64_t *clocks[] = {
        s->cfg.total_bps ? &s->total_next_at : NULL,
        ss->legacy ? &ss->host->legacy_next_at : s->cfg.host_bps ? &ss->host->next_send_at : NULL,
        ss->legacy ? &s->legacy_next_at : NULL,
    };
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++)
        if (clocks[i] && *clocks[i] > at)
            at = *clocks[i];
    return at;
}

int uxs_may_send(const struct ux_server *s, const struct ux_session *ss, uint64_t now)
{
    return uxs_send_at(s, ss) <= now;
}

/* The session ends on a read error, or a file of a batch that changed
 * since it was listed (ESTALE); the client is told why. */
static size_t read_error(struct ux_server *s, struct ux_session *ss, int err, uint64_t now, uint8_t *buf,
                         size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_ERROR, .xid = ss->xid};
    m.u.error.code = err == ESTALE ? UX_E_STALE : UX_E_IO;
    m.u.error.text = (const uint8_t *)(err == ESTALE ? "file changed" : "server I/O error");
    m.u.error.text_len = (uint16_t)strlen((const char *)m.u.error.text);
    *to = ss->addr;
    uxs_end(s, ss, err == ESTALE ? UXSV_END_STALE : UXSV_END_IO, now);
    return ux_encode(&m, buf, cap);
}

static size_t io_error(struct ux_server *s, struct ux_session *ss, uint64_t now, uint8_t *buf, size_t cap,
                       struct ux_addr *to)
{
    return read_error(s, ss, EIO, now, buf, cap, to);
}

/* Fault injection: should this chunk be damaged after hashing (corrupt),
 * or before (lie: its hash then matches the wrong bytes)? */
static int draw(struct ux_server *s, uint32_t ppm)
{
    return ppm && uxs_rand(s) % 1000000 < ppm;
}

/* A tree node's children, as DATA flagged UX_FLAG_TREE: the hash prefix
 * guards the way, the client checks the bytes against the node's hash. */
static size_t send_node(struct ux_server *s, struct ux_session *ss, struct ux_send e, uint64_t now, uint8_t *buf,
                        size_t cap, struct ux_addr *to)
{
    uint32_t id = e.index & ~UX_SEND_TREE;
    uint8_t flags = UX_FLAG_TREE | (s->keyed ? UX_FLAG_BARE : 0);
    size_t head = ux_data_overhead(flags);
    uint8_t *data = buf + head, h[UX_HASH_LEN];
    size_t n = 0;
    if (head + UX_TREE_NODE_BYTES > cap)
        return 0;
    int err = s->cfg.files.node(s->cfg.files.ud, ss->handle, ss->chunk_size, id, data, &n);
    if (err == ENOENT)
        return 0; /* no such node (or the tree is gone): the client asks again or elsewhere */
    if (err || ux_chunk_hash(s->sha, id, data, n, h))
        return io_error(s, ss, now, buf, cap, to);
    ux_encode_data_header(buf, flags, ss->xid, e.seq, id, h, n);
    ss->bytes_sent += n;
    uxs_pace(s, ss, now, head + n + (s->keyed ? UX_SEAL_OVERHEAD : 0));
    *to = ss->addr;
    return head + n;
}

/* A datagram encoded plainly at BUF moved up HOLE bytes after its header. */
static size_t open_hole(uint8_t *buf, size_t len, size_t hole)
{
    if (len && hole)
        memmove(buf + UX_HDR_LEN + hole, buf + UX_HDR_LEN, len - UX_HDR_LEN);
    return len ? len + hole : 0;
}

size_t uxs_send(struct ux_server *s, struct ux_session *ss, uint64_t now, uint8_t *buf, size_t cap,
                struct ux_addr *to, struct ux_tail *tail, size_t hole)
{
    struct ux_send e = ss->queue[ss->q_head];
    ss->q_head = (ss->q_head + 1) % ss->q_cap;
    ss->q_len--;
    if (e.index & UX_SEND_TREE)
        return open_hole(buf, send_node(s, ss, e, now, buf, cap - hole, to), hole);
    size_t n;
    if (ss->layout) {
        /* A layout lasts as long as its handle's generation (server.h): a
         * provider that dropped or replaced it ends the session before it
         * is read. */
        struct ux_file_info fi;
        if (s->cfg.files.current(s->cfg.files.ud, ss->handle, &fi) || fi.generation != ss->generation ||
            fi.layout != ss->layout)
            return open_hole(buf, read_error(s, ss, ESTALE, now, buf, cap - hole, to), hole);
        uint32_t f;
        uint64_t o;
        n = ux_layout_chunk(ss->layout, e.index, &f, &o);
    } else {
        uint64_t off = (uint64_t)e.index * ss->chunk_size;
        n = ss->size - off < ss->chunk_size ? (size_t)(ss->size - off) : ss->chunk_size;
    }
    /* bare: sealed, the tag guards the way; files of a listing are checked whole */
    uint8_t flags = s->keyed || ss->layout ? UX_FLAG_BARE : 0;
    size_t head = ux_data_overhead(flags);
    if (head + hole + n > cap)
        return 0;
    uint8_t *data = buf + head + hole;
    uint8_t h[UX_HASH_LEN];
    /* Drawn before the read: a chunk to damage must be a copy of ours. */
    int corrupt = n && draw(s, s->cfg.corrupt_ppm), lie = n && draw(s, s->cfg.lie_ppm);
    const uint8_t *lent = NULL;
    /* a bare chunk's hash is not sent: the provider need not make it */
    int err = s->cfg.files.chunk(s->cfg.files.ud, ss->handle, ss->chunk_size, e.index, data, n,
                                 flags & UX_FLAG_BARE && !lie ? NULL : h, tail && !corrupt && !lie ? &lent : NULL);
    if (err)
        return open_hole(buf, read_error(s, ss, err, now, buf, cap - hole, to), hole);
    if (lie) {
        data[n / 2] ^= 0x5a; /* what a server whose disk rotted under its hash cache would send */
        if (ux_chunk_hash(s->sha, e.index, data, n, h))
            return open_hole(buf, io_error(s, ss, now, buf, cap - hole, to), hole);
    }
    if (corrupt)
        data[n / 2] ^= 0x5a; /* after hashing: what a failing disk or NIC would do */
    uint8_t hdr[UX_DATA_OVERHEAD];
    ux_encode_data_header(hdr, flags, ss->xid, e.seq, e.index, h, n);
    memcpy(buf, hdr, UX_HDR_LEN);
    memcpy(buf + UX_HDR_LEN + hole, hdr + UX_HDR_LEN, head - UX_HDR_LEN);
    ss->chunks_sent++;
    ss->bytes_sent += n;
    uxs_pace(s, ss, now, head + n + (hole ? UX_SEAL_OVERHEAD : 0));
    *to = ss->addr;
    if (lent) {
        *tail = (struct ux_tail){lent, n};
        return head + hole;
    }
    return head + hole + n;
}
