/* Stream receiver: accepts one connection, verifies every segment, keeps
 * out-of-order spans in a ring, hands bytes out in order, acks with SACK,
 * and at the end checks the stream's SHA-256 before acking the FIN. */
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define ACK_EVERY 16           /* segments per ack while in order */
#define ACK_DELAY 1000u        /* us: the longest an ack waits */
#define FIN_ACK_RETRY 200000u  /* us between FIN acks until the sender's CLOSE */
#define FIN_ACK_TRIES 5

int ux_srecv_init(struct ux_srecv *r, const struct ux_srecv_cfg *cfg, uint64_t now)
{
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    if (!r->cfg.max_mss)
        r->cfg.max_mss = UX_STREAM_MAX_MSS;
    if (!r->cfg.idle_us)
        r->cfg.idle_us = 10000000;
    uint64_t want = cfg->buffer ? cfg->buffer : UX_STREAM_BUF;
    r->cap = 1u << 16;
    while (r->cap < want && r->cap < (1u << 30))
        r->cap <<= 1;
    r->buf = malloc(r->cap);
    r->guard = calloc(1, sizeof *r->guard);
    uint8_t secret[32];
    if (!r->guard || ux_rng_fill(&r->cfg.rng, secret, sizeof secret))
        return -1;
    ux_guard_init(r->guard, secret, 1);
    if (ux_stream_keys_init(&r->c, cfg->key))
        return -1;
    r->c.idle_us = r->cfg.idle_us;
    r->c.trace = cfg->trace;
    r->c.trace_ud = cfg->trace_ud;
    if (!r->buf || ux_stream_common_init(&r->c, now))
        return -1;
    r->c.state = UXSR_LISTEN;
    return 0;
}

void ux_srecv_free(struct ux_srecv *r)
{
    ux_stream_keys_free(&r->c);
    free(r->buf);
    if (r->guard)
        ux_guard_free(r->guard);
    free(r->guard);
    r->buf = NULL;
    r->guard = NULL;
    ux_stream_common_free(&r->c);
}

size_t ux_srecv_peek(const struct ux_srecv *r, const uint8_t **where)
{
    uint64_t at = r->taken & (r->cap - 1);
    uint64_t n = r->nxt - r->taken;
    *where = r->buf + at;
    return (size_t)(n < r->cap - at ? n : r->cap - at);
}

static void finish(struct ux_srecv *r, uint64_t now)
{
    r->c.state = UXSR_DONE;
    r->c.done_at = now;
    ux_stream_push(&r->c, UXST_EV_FINISHED);
}

/* Stop; CLOSE_REASON other than OK is told to the sender (twice: unacked). */
static void stop(struct ux_srecv *r, uint16_t close_reason)
{
    r->c.state = UXSR_FAILED;
    r->close_pending = close_reason != UX_SC_OK ? 2 : 0;
    r->close_reason = close_reason;
}

/* Every byte is out: check the whole stream, then ack the FIN. */
static void check_complete(struct ux_srecv *r, uint64_t now)
{
    if (r->c.state != UXSR_OPEN || !r->fin_known || r->taken != r->fin_len)
        return;
    if (ux_sha_final(r->c.run_sha, r->c.sha256) || !ux_equal(r->c.sha256, r->fin_sha, UX_HASH_LEN)) {
        stop(r, UX_SC_CORRUPT);
        ux_stream_fail(&r->c, UX_ERR_CORRUPT, "the stream's SHA-256 does not match the sender's (%llu bytes)",
                       (unsigned long long)r->fin_len);
        return;
    }
    r->c.state = UXSR_CLOSING;
    r->closing_at = now;
    r->fin_ack_at = now;
    ux_stream_push(&r->c, UXST_EV_COMPLETE);
}

void ux_srecv_consume(struct ux_srecv *r, size_t n, uint64_t now)
{
    const uint8_t *p;
    size_t avail = ux_srecv_peek(r, &p);
    if (n > avail)
        n = avail;
    ux_sha_update(r->c.run_sha, p, n);
    uint64_t edge_before = r->taken + r->cap;
    r->taken += n;
    r->c.st.bytes = r->taken;
    /* Tell the sender when a closed window opens again. */
    if (edge_before - r->nxt < r->cap / 4 && r->taken + r->cap - r->nxt >= r->cap / 4)
        r->ack_now = 1;
    check_complete(r, now);
}

void ux_srecv_abort(struct ux_srecv *r, enum ux_err why, const char *msg)
{
    if (r->c.state >= UXSR_DONE)
        return;
    int connected = r->c.state != UXSR_LISTEN;
    stop(r, connected ? UX_SC_ABORT : UX_SC_OK);
    ux_stream_fail(&r->c, why, "%s", msg);
}

/* Record [start, end) above nxt; returns -1 if it needs a span we lack. */
static int add_span(struct ux_srecv *r, uint64_t start, uint64_t end)
{
    int i = 0;
    while (i < r->nholes && r->holes[i].end < start)
        i++;
    int j = i; /* spans i..j-1 touch [start, end) */
    while (j < r->nholes && r->holes[j].start <= end)
        j++;
    if (i == j) {
        if (r->nholes == UX_MAX_HOLES)
            return -1;
        memmove(&r->holes[i + 1], &r->holes[i], (size_t)(r->nholes - i) * sizeof r->holes[0]);
        r->holes[i] = (struct ux_span){start, end};
        r->nholes++;
        return 0;
    }
    struct ux_span merged = {start < r->holes[i].start ? start : r->holes[i].start,
                             end > r->holes[j - 1].end ? end : r->holes[j - 1].end};
    r->holes[i] = merged;
    memmove(&r->holes[i + 1], &r->holes[j], (size_t)(r->nholes - j) * sizeof r->holes[0]);
    r->nholes -= j - i - 1;
    return 0;
}

static int covered(const struct ux_srecv *r, uint64_t start, uint64_t end)
{
    if (end <= r->nxt)
        return 1;
    for (int i = 0; i < r->nholes; i++)
        if (r->holes[i].start <= start && end <= r->holes[i].end)
            return 1;
    return 0;
}

static void store(struct ux_srecv *r, uint64_t off, const uint8_t *data, size_t len)
{
    uint64_t at = off & (r->cap - 1);
    size_t first = len < r->cap - at ? len : (size_t)(r->cap - at);
    memcpy(r->buf + at, data, first);
    memcpy(r->buf, data + first, len - first);
}

static void drop(struct ux_srecv *r, const struct ux_msg *m, const char *why)
{
    r->c.st.dropped++;
    ux_stream_trace(&r->c, "DROP", m, why);
}

static void on_data(struct ux_srecv *r, uint64_t now, const struct ux_msg *m)
{
    uint64_t off = m->u.sdata.off, end = off + m->u.sdata.len;
    uint8_t h[UX_HASH_LEN];
    if (ux_segment_hash(r->c.seg_sha, r->c.xid, off, m->u.sdata.data, m->u.sdata.len, h) ||
        !ux_equal(h, m->u.sdata.hash, UX_HASH_LEN))
        return drop(r, m, "bad-hash");
    r->echo = m->u.sdata.txseq;
    if (!m->u.sdata.len) {
        r->ack_now = 1; /* a probe or keep-alive: answer it */
        return;
    }
    if (r->fin_known && end > r->fin_len)
        return drop(r, m, "past-fin");
    if (covered(r, off, end)) {
        r->c.st.dups++;
        r->ack_now = 1;
        return;
    }
    if (end > r->taken + r->cap) {
        r->ack_now = 1;
        return drop(r, m, "window");
    }
    if (off > r->nxt && add_span(r, off, end)) {
        r->ack_now = 1;
        return drop(r, m, "too-many-gaps");
    }
    uint64_t from = off > r->nxt ? off : r->nxt;
    store(r, from, m->u.sdata.data + (from - off), (size_t)(end - from));
    if (off <= r->nxt) {
        r->nxt = end;
        while (r->nholes && r->holes[0].start <= r->nxt) {
            if (r->holes[0].end > r->nxt)
                r->nxt = r->holes[0].end;
            memmove(&r->holes[0], &r->holes[1], (size_t)(--r->nholes) * sizeof r->holes[0]);
        }
    }
    if (r->nholes || off > r->nxt) {
        r->ack_now = 1; /* out of order: the sender should hear at once */
    } else if (++r->unacked >= ACK_EVERY) {
        r->ack_now = 1;
    } else if (r->unacked == 1) {
        r->ack_due_at = now + ACK_DELAY;
    }
}

static void on_fin(struct ux_srecv *r, uint64_t now, const struct ux_msg *m)
{
    uint64_t len = m->u.sfin.length;
    uint64_t top = r->nholes ? r->holes[r->nholes - 1].end : r->nxt;
    if (len < top || (r->fin_known && (len != r->fin_len || memcmp(r->fin_sha, m->u.sfin.sha256, UX_HASH_LEN))))
        return drop(r, m, "bad-fin");
    r->echo = m->u.sfin.txseq;
    r->fin_known = 1;
    r->fin_len = len;
    memcpy(r->fin_sha, m->u.sfin.sha256, UX_HASH_LEN);
    r->ack_now = 1;
    check_complete(r, now);
}

static void on_close(struct ux_srecv *r, uint64_t now, const struct ux_msg *m)
{
    if (r->c.state == UXSR_CLOSING) {
        finish(r, now);
        return;
    }
    stop(r, UX_SC_OK);
    ux_stream_fail(&r->c, UX_ERR_BROKEN, "broken stream: the sender %s after %llu bytes",
                   m->u.close.reason == UX_SC_ABORT ? "aborted" : "closed early",
                   (unsigned long long)r->nxt);
}

/* What a handshake cookie binds: the sender's address and connection id. */
static int cookie_ok(const struct ux_srecv *r, const struct ux_msg *m, const struct ux_addr *from, uint64_t now)
{
    struct ux_cookie_for f = {from, m->xid, 0, 0, 0};
    return (m->u.sopen.flags & UX_SO_COOKIE) && ux_cookie_valid(r->guard, &f, now, m->u.sopen.cookie);
}

/* An OPEN without a valid cookie gets one, and changes nothing here: a
 * spoofed OPEN cannot take the slot, and its answer is smaller than it. */
static void ask_cookie(struct ux_srecv *r, uint64_t now, const struct ux_msg *m, const struct ux_addr *from)
{
    r->cookie_to = *from;
    r->cookie_xid = m->xid;
    r->cookie_at = now;
    memcpy(r->cookie_nc, m->u.sopen.nonce, UX_NC_LEN);
}

/* Key mode: the receiver's nonce for the sender's NC of stream XID (the same each time). */
static int receiver_nonce(const struct ux_srecv *r, const uint8_t *nc, uint64_t xid, uint8_t out[UX_NC_LEN])
{
    uint8_t msg[2 + UX_NC_LEN + 8] = {'r', 's'};
    memcpy(msg + 2, nc, UX_NC_LEN);
    memcpy(msg + 2 + UX_NC_LEN, &xid, 8);
    return ux_hmac(r->guard->secret, sizeof r->guard->secret, msg, sizeof msg, out, UX_NC_LEN);
}

static void on_open(struct ux_srecv *r, uint64_t now, const struct ux_msg *m, const struct ux_addr *from)
{
    if (!m->xid)
        return drop(r, m, "no-id");
    if (r->c.keyed && !(m->u.sopen.flags & UX_SO_NONCE))
        return drop(r, m, "no-nonce");
    if (!cookie_ok(r, m, from, now))
        return ask_cookie(r, now, m, from);
    if (r->c.keyed) {
        uint8_t ns[UX_NC_LEN];
        r->c.xid = m->xid;
        memcpy(r->c.nc, m->u.sopen.nonce, UX_NC_LEN);
        if (receiver_nonce(r, r->c.nc, m->xid, ns) || ux_stream_derive(&r->c, ns))
            return drop(r, m, "no-key");
    }
    r->c.xid = m->xid;
    r->c.peer = *from;
    r->c.mss = m->u.sopen.mss < r->cfg.max_mss ? m->u.sopen.mss : r->cfg.max_mss;
    r->c.state = UXSR_OPEN;
    r->c.connected_at = now;
    r->accept_pending = 1;
    ux_stream_push(&r->c, UXST_EV_CONNECT);
}

void ux_srecv_input(struct ux_srecv *r, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from)
{
    struct ux_msg m;
    r->c.st.packets_in++;
    if (r->c.keyed && !(pkt = ux_stream_unseal(&r->c, pkt, &len, UX_DIR_SENDER, UX_S_OPEN, UX_S_OPEN))) {
        r->c.st.dropped++;
        return;
    }
    if (ux_decode(pkt, len, &m)) {
        r->c.st.dropped++;
        return;
    }
    if (r->c.state == UXSR_LISTEN) {
        if (m.type != UX_S_OPEN)
            return drop(r, &m, "not-connected");
        ux_stream_trace(&r->c, "RECV", &m, NULL);
        return on_open(r, now, &m, from);
    }
    if (m.xid != r->c.xid || !ux_addr_equal(from, &r->c.peer)) {
        if (m.type == UX_S_OPEN && r->c.state < UXSR_DONE && !cookie_ok(r, &m, from, now)) {
            ux_stream_trace(&r->c, "RECV", &m, NULL);
            return ask_cookie(r, now, &m, from); /* busy is said only to an address that proved itself */
        }
        if (m.type == UX_S_OPEN && r->c.state < UXSR_DONE) {
            r->busy_to = *from; /* one stream at a time: say so */
            r->busy_xid = m.xid;
        }
        return drop(r, &m, "other-connection");
    }
    if (r->c.state >= UXSR_DONE)
        return;
    ux_stream_trace(&r->c, "RECV", &m, NULL);
    r->c.last_rx = now;
    switch (m.type) {
    case UX_S_OPEN: r->accept_pending = 1; break; /* our ACCEPT was lost */
    case UX_S_DATA: on_data(r, now, &m); break;
    case UX_S_FIN: on_fin(r, now, &m); break;
    case UX_S_CLOSE: on_close(r, now, &m); break;
    default: drop(r, &m, "unexpected");
    }
}

/* ---- output ---- */

static size_t put_msg(struct ux_srecv *r, struct ux_msg *m, uint8_t *buf, size_t cap,
                      struct ux_addr *to, const struct ux_addr *dest)
{
    size_t n = ux_encode(m, buf, cap);
    if (n) {
        *to = *dest;
        r->c.st.packets_out++;
        ux_stream_trace(&r->c, "SEND", m, NULL);
    }
    return n;
}

static size_t send_ack(struct ux_srecv *r, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_S_ACK, .xid = r->c.xid};
    m.u.sack.cum = r->nxt;
    m.u.sack.window = (uint32_t)(r->taken + r->cap - r->nxt);
    m.u.sack.echo = r->echo;
    m.u.sack.nsack = (uint8_t)(r->nholes < UX_MAX_SACK ? r->nholes : UX_MAX_SACK);
    memcpy(m.u.sack.sack, r->holes, m.u.sack.nsack * sizeof r->holes[0]);
    if (r->c.state == UXSR_CLOSING) {
        m.u.sack.flags = UX_SACK_FIN;
        r->fin_acks++;
        r->fin_ack_at = now + FIN_ACK_RETRY;
    }
    r->ack_now = 0;
    r->unacked = 0;
    return put_msg(r, &m, buf, cap, to, &r->c.peer);
}

static void tick(struct ux_srecv *r, uint64_t now)
{
    if (r->c.state == UXSR_LISTEN && r->cfg.listen_us && now >= r->c.started_at + r->cfg.listen_us) {
        stop(r, UX_SC_OK);
        ux_stream_fail(&r->c, UX_ERR_NOSERVER, "no sender connected within %.0f s",
                       (double)r->cfg.listen_us / 1e6);
    }
    if (r->c.state == UXSR_OPEN && now >= r->c.last_rx + r->cfg.idle_us) {
        stop(r, UX_SC_OK);
        ux_stream_fail(&r->c, UX_ERR_BROKEN, "broken stream: nothing from the sender for %.1f s after %llu bytes",
                       (double)r->cfg.idle_us / 1e6, (unsigned long long)r->nxt);
    }
    /* Everything is written and checked; the sender's CLOSE only confirms
     * it heard our FIN ack, so after a few tries we are done anyway. */
    if (r->c.state == UXSR_CLOSING && r->fin_acks >= FIN_ACK_TRIES && now >= r->fin_ack_at)
        finish(r, now);
}

static size_t output(struct ux_srecv *r, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to);

size_t ux_srecv_output(struct ux_srecv *r, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    if (!r->c.keyed)
        return output(r, now, buf, cap, to);
    r->out_disc = 0;
    size_t n = cap > UX_SEAL_MAX ? output(r, now, buf, cap - UX_SEAL_MAX, to) : 0;
    return n ? ux_stream_seal(&r->c, &r->cfg.rng, buf, n, cap, r->out_disc, UX_DIR_RECEIVER) : 0;
}

static size_t output(struct ux_srecv *r, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    tick(r, now);
    if (r->cookie_xid) {
        struct ux_msg m = {.type = UX_S_ACCEPT, .xid = r->cookie_xid};
        struct ux_cookie_for f = {&r->cookie_to, r->cookie_xid, 0, 0, 0};
        m.u.saccept.mss = r->cfg.max_mss;
        m.u.saccept.flags = UX_SA_COOKIE;
        r->cookie_xid = 0;
        if (ux_cookie_mint(r->guard, &f, r->cookie_at, m.u.saccept.cookie))
            return 0;
        if (r->c.keyed) {
            m.u.saccept.flags |= UX_SA_NONCE;
            if (receiver_nonce(r, r->cookie_nc, m.xid, m.u.saccept.nonce))
                return 0;
        }
        r->out_disc = 1;
        return put_msg(r, &m, buf, cap, to, &r->cookie_to);
    }
    if (r->busy_xid) {
        struct ux_msg m = {.type = UX_S_CLOSE, .xid = r->busy_xid};
        m.u.close.reason = UX_SC_BUSY;
        r->busy_xid = 0;
        r->out_disc = 1;
        return put_msg(r, &m, buf, cap, to, &r->busy_to);
    }
    if (r->close_pending) {
        struct ux_msg m = {.type = UX_S_CLOSE, .xid = r->c.xid};
        m.u.close.reason = r->close_reason;
        r->close_pending--;
        return put_msg(r, &m, buf, cap, to, &r->c.peer);
    }
    if (r->c.state != UXSR_OPEN && r->c.state != UXSR_CLOSING)
        return 0;
    if (r->accept_pending) {
        struct ux_msg m = {.type = UX_S_ACCEPT, .xid = r->c.xid};
        m.u.saccept.mss = r->c.mss;
        m.u.saccept.window = (uint32_t)(r->taken + r->cap - r->nxt);
        m.u.saccept.idle_ms = (uint32_t)(r->cfg.idle_us / 1000);
        r->accept_pending = 0;
        return put_msg(r, &m, buf, cap, to, &r->c.peer);
    }
    if (r->ack_now || (r->unacked && now >= r->ack_due_at) ||
        (r->c.state == UXSR_CLOSING && now >= r->fin_ack_at))
        return send_ack(r, now, buf, cap, to);
    return 0;
}

uint64_t ux_srecv_deadline(const struct ux_srecv *r)
{
    if (r->busy_xid || r->close_pending || r->cookie_xid)
        return 0;
    switch (r->c.state) {
    case UXSR_LISTEN:
        return r->cfg.listen_us ? r->c.started_at + r->cfg.listen_us : UINT64_MAX;
    case UXSR_OPEN:
        if (r->accept_pending || r->ack_now)
            return 0;
        return r->unacked && r->ack_due_at < r->c.last_rx + r->cfg.idle_us ? r->ack_due_at
                                                                           : r->c.last_rx + r->cfg.idle_us;
    case UXSR_CLOSING:
        return r->accept_pending || r->ack_now ? 0 : r->fin_ack_at;
    default:
        return UINT64_MAX;
    }
}
