/* Stream sender: connection set-up, a window of segments over a ring of
 * stream bytes, SACK-based loss detection (a later transmission acked while
 * an earlier one is not), RTO with backoff, AIMD congestion control, keep-
 * alives and zero-window probes, and the FIN that carries the stream's
 * length and SHA-256. */
#include <stdlib.h>
#include <string.h>

#include "stream.h"

enum { SEG_FLIGHT, SEG_SACKED, SEG_LOST };

#define TX_RING 8192u           /* send times kept for RTT samples */
#define REORDER 3               /* later transmissions acked before one is lost */
#define MIN_RTO 30000u
#define MAX_RTO 2000000u
#define OPEN_RETRY 250000u
#define OPEN_RETRY_MAX 1000000u
#define INIT_CWND_SEGS 16
#define MIN_CWND_SEGS 4

static uint64_t pow2_at_least(uint64_t v, uint64_t lo, uint64_t hi)
{
    uint64_t p = lo;
    while (p < v && p < hi)
        p <<= 1;
    return p;
}

int ux_ssend_init(struct ux_ssend *s, const struct ux_ssend_cfg *cfg, uint64_t now)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.mss)
        s->cfg.mss = UX_STREAM_MSS;
    if (s->cfg.mss < UX_STREAM_MIN_MSS || s->cfg.mss > UX_STREAM_MAX_MSS)
        return -1;
    if (!s->cfg.connect_us)
        s->cfg.connect_us = 30000000;
    if (!s->cfg.idle_us)
        s->cfg.idle_us = 10000000;
    s->cap = pow2_at_least(cfg->buffer ? cfg->buffer : UX_STREAM_BUF, 1u << 16, 1u << 30);
    s->seg_cap = (uint32_t)pow2_at_least(2 * s->cap / s->cfg.mss, 1024, 1u << 17);
    s->buf = malloc(s->cap);
    s->segs = calloc(s->seg_cap, sizeof *s->segs);
    s->tx_time = calloc(TX_RING, sizeof *s->tx_time);
    s->tx_seq = calloc(TX_RING, sizeof *s->tx_seq);
    s->c.peer = cfg->peer;
    s->c.mss = s->cfg.mss;
    s->c.idle_us = s->cfg.idle_us;
    s->c.trace = cfg->trace;
    s->c.trace_ud = cfg->trace_ud;
    if (!s->buf || !s->segs || !s->tx_time || !s->tx_seq || ux_stream_common_init(&s->c, now))
        return -1;
    do {
        if (ux_rng_fill(&s->cfg.rng, &s->c.xid, sizeof s->c.xid))
            return -1;
    } while (!s->c.xid);
    if (ux_stream_keys_init(&s->c, cfg->key) || (s->c.keyed && ux_rng_fill(&s->cfg.rng, s->c.nc, UX_NC_LEN)))
        return -1;
    s->c.state = UXSS_CONNECTING;
    s->next_txseq = 1;
    s->rto = 250000;
    s->backoff = 1;
    s->cwnd = INIT_CWND_SEGS * s->cfg.mss;
    s->ssthresh = (double)s->cap;
    s->keepalive_us = 1000000;
    s->next_open_at = now;
    return 0;
}

void ux_ssend_free(struct ux_ssend *s)
{
    free(s->buf);
    free(s->segs);
    free(s->tx_time);
    free(s->tx_seq);
    s->buf = NULL;
    s->segs = NULL;
    s->tx_time = NULL;
    s->tx_seq = NULL;
    ux_stream_keys_free(&s->c);
    ux_stream_common_free(&s->c);
}

static struct ux_seg *seg_at(const struct ux_ssend *s, uint32_t i)
{
    return &s->segs[(s->seg_head + i) & (s->seg_cap - 1)];
}

size_t ux_ssend_space(struct ux_ssend *s, uint8_t **where)
{
    if (s->eof || s->c.state >= UXSS_DONE)
        return 0;
    uint64_t free_bytes = s->cap - (s->end - s->una);
    uint64_t at = s->end & (s->cap - 1);
    *where = s->buf + at;
    return (size_t)(free_bytes < s->cap - at ? free_bytes : s->cap - at);
}

void ux_ssend_commit(struct ux_ssend *s, size_t n)
{
    ux_sha_update(s->c.run_sha, s->buf + (s->end & (s->cap - 1)), n);
    s->end += n;
}

void ux_ssend_eof(struct ux_ssend *s)
{
    if (s->eof)
        return;
    s->eof = 1;
    ux_sha_final(s->c.run_sha, s->c.sha256);
}

void ux_ssend_abort(struct ux_ssend *s, enum ux_err fail, const char *msg)
{
    if (s->c.state >= UXSS_DONE)
        return;
    if (s->c.state == UXSS_OPEN) {
        s->close_pending = 2;
        s->close_reason = UX_SC_ABORT;
    }
    s->c.state = UXSS_FAILED;
    ux_stream_fail(&s->c, fail, "%s", msg);
}

static uint64_t rto_now(const struct ux_ssend *s)
{
    uint64_t r = s->rto * s->backoff;
    return r > MAX_RTO ? MAX_RTO : r;
}

static int seq_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

static void rtt_update(struct ux_ssend *s, uint64_t r)
{
    if (!s->srtt) {
        s->srtt = r;
        s->rttvar = r / 2;
    } else {
        uint64_t d = r > s->srtt ? r - s->srtt : s->srtt - r;
        s->rttvar = (3 * s->rttvar + d) / 4;
        s->srtt = (7 * s->srtt + r) / 8;
    }
    uint64_t rto = s->srtt + 4 * s->rttvar;
    s->rto = rto < MIN_RTO ? MIN_RTO : rto > MAX_RTO ? MAX_RTO : rto;
}

/* ECHO names the transmission that made the receiver ack. */
static void rtt_sample(struct ux_ssend *s, uint32_t echo, uint64_t now)
{
    uint32_t slot = echo & (TX_RING - 1);
    if (!echo || s->tx_seq[slot] != echo || now < s->tx_time[slot])
        return;
    s->tx_seq[slot] = 0; /* one sample per transmission */
    rtt_update(s, now - s->tx_time[slot]);
}

static void grow(struct ux_ssend *s, uint64_t acked)
{
    if (s->cwnd < s->ssthresh)
        s->cwnd += (double)acked;
    else
        s->cwnd += (double)s->cfg.mss * (double)acked / s->cwnd;
    if (s->cwnd > (double)s->cap)
        s->cwnd = (double)s->cap;
}

/* One reduction per window of data: losses of segments sent before the
 * last reduction belong to the same congestion event. */
static void on_loss(struct ux_ssend *s, uint32_t txseq)
{
    if (seq_before(txseq, s->recover_txseq))
        return;
    s->cwnd *= 0.7;
    if (s->cwnd < MIN_CWND_SEGS * s->cfg.mss)
        s->cwnd = MIN_CWND_SEGS * s->cfg.mss;
    s->ssthresh = s->cwnd;
    s->recover_txseq = s->next_txseq;
}

static void mark_lost(struct ux_ssend *s, uint32_t i)
{
    struct ux_seg *g = seg_at(s, i);
    g->state = SEG_LOST;
    s->flight -= g->len;
    if (i < s->lost_hint)
        s->lost_hint = i;
}

static uint64_t ack_cum(struct ux_ssend *s, uint64_t cum)
{
    uint64_t acked = 0;
    while (s->seg_len) {
        struct ux_seg *g = seg_at(s, 0);
        if (g->off + g->len > cum)
            break;
        if (g->state == SEG_FLIGHT) {
            s->flight -= g->len;
            acked += g->len;
        } else if (g->state == SEG_LOST) {
            acked += g->len;
        }
        s->seg_head = (s->seg_head + 1) & (s->seg_cap - 1);
        s->seg_len--;
        s->lost_hint = s->lost_hint ? s->lost_hint - 1 : 0;
    }
    s->una = cum;
    return acked;
}

static uint64_t ack_sacks(struct ux_ssend *s, const struct ux_msg *m)
{
    uint64_t acked = 0;
    uint32_t i = 0;
    for (unsigned r = 0; r < m->u.sack.nsack; r++) {
        const struct ux_span *sp = &m->u.sack.sack[r];
        for (; i < s->seg_len; i++) {
            struct ux_seg *g = seg_at(s, i);
            if (g->off >= sp->end)
                break;
            if (g->off < sp->start || g->off + g->len > sp->end || g->state == SEG_SACKED)
                continue;
            if (g->state == SEG_FLIGHT)
                s->flight -= g->len;
            g->state = SEG_SACKED;
            acked += g->len;
        }
        if (sp->end > s->sack_high)
            s->sack_high = sp->end;
    }
    return acked;
}

/* A segment is lost when a transmission REORDER later has been received
 * and the receiver's SACK covers the region above it. */
static void detect_losses(struct ux_ssend *s)
{
    for (uint32_t i = 0; i < s->seg_len; i++) {
        struct ux_seg *g = seg_at(s, i);
        if (g->off >= s->sack_high)
            break;
        if (g->state == SEG_FLIGHT && seq_before(g->txseq + REORDER, s->echo_high)) {
            mark_lost(s, i);
            s->c.st.retransmits++;
            on_loss(s, g->txseq);
        }
    }
}

static void finish(struct ux_ssend *s, uint64_t now)
{
    s->c.state = UXSS_DONE;
    s->c.done_at = now;
    s->close_pending = 2; /* the receiver waits for it; twice, as it is not acked */
    s->close_reason = UX_SC_OK;
    ux_stream_push(&s->c, UXST_EV_FINISHED);
}

static void on_ack(struct ux_ssend *s, uint64_t now, const struct ux_msg *m)
{
    if (m->u.sack.cum > s->nxt)
        return; /* acks bytes never sent: not from our receiver */
    rtt_sample(s, m->u.sack.echo, now);
    if (seq_before(s->echo_high, m->u.sack.echo))
        s->echo_high = m->u.sack.echo;
    uint64_t acked = 0;
    if (m->u.sack.cum > s->una)
        acked += ack_cum(s, m->u.sack.cum);
    if (s->sack_high < s->una)
        s->sack_high = s->una;
    acked += ack_sacks(s, m);
    s->rwnd_edge = m->u.sack.cum + m->u.sack.window;
    if (acked) {
        grow(s, acked);
        s->backoff = 1;
        s->c.st.bytes = s->una;
    }
    detect_losses(s);
    if ((m->u.sack.flags & UX_SACK_FIN) && s->eof && s->una == s->end && s->fin_sent)
        finish(s, now);
}

static void on_accept(struct ux_ssend *s, uint64_t now, const struct ux_msg *m)
{
    if (s->c.state != UXSS_CONNECTING)
        return;
    if (s->c.keyed && !(m->u.saccept.flags & UX_SA_COOKIE) && !s->c.in_session)
        return; /* connected is said under the stream's key */
    if (m->u.saccept.flags & UX_SA_COOKIE) { /* echo it at once */
        if (s->c.keyed && (!(m->u.saccept.flags & UX_SA_NONCE) || ux_stream_derive(&s->c, m->u.saccept.nonce)))
            return;
        if (s->open_tries == 1)
            rtt_update(s, now - s->tx_time[0]);
        memcpy(s->cookie, m->u.saccept.cookie, UX_COOKIE_LEN);
        s->has_cookie = 1;
        s->next_open_at = now;
        return;
    }
    if (m->u.saccept.mss >= UX_STREAM_MIN_MSS && m->u.saccept.mss < s->c.mss)
        s->c.mss = s->cfg.mss = m->u.saccept.mss;
    s->rwnd_edge = m->u.saccept.window;
    if (m->u.saccept.idle_ms) {
        uint64_t k = (uint64_t)m->u.saccept.idle_ms * 1000 / 4;
        s->keepalive_us = k < s->keepalive_us ? k : s->keepalive_us;
    }
    s->c.state = UXSS_OPEN;
    s->c.connected_at = now;
    ux_stream_push(&s->c, UXST_EV_CONNECT);
}

static void on_close(struct ux_ssend *s, const struct ux_msg *m)
{
    if (s->c.state >= UXSS_DONE)
        return;
    s->c.state = UXSS_FAILED;
    switch (m->u.close.reason) {
    case UX_SC_BUSY: ux_stream_fail(&s->c, UX_ERR_BUSY, "the receiver is busy with another stream"); break;
    case UX_SC_CORRUPT:
        ux_stream_fail(&s->c, UX_ERR_CORRUPT, "the receiver found the stream's SHA-256 wrong");
        break;
    default: ux_stream_fail(&s->c, UX_ERR_BROKEN, "the receiver closed the stream early");
    }
}

void ux_ssend_input(struct ux_ssend *s, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from)
{
    struct ux_msg m;
    s->c.st.packets_in++;
    if (s->c.keyed && !(pkt = ux_stream_unseal(&s->c, pkt, &len, UX_DIR_RECEIVER, UX_S_ACCEPT, UX_S_CLOSE))) {
        s->c.st.dropped++;
        return;
    }
    if (ux_decode(pkt, len, &m)) {
        s->c.st.dropped++;
        return;
    }
    if (m.xid != s->c.xid || !ux_addr_equal(from, &s->c.peer) ||
        (m.type != UX_S_ACCEPT && m.type != UX_S_ACK && m.type != UX_S_CLOSE)) {
        s->c.st.dropped++;
        ux_stream_trace(&s->c, "DROP", &m, "not ours");
        return;
    }
    ux_stream_trace(&s->c, "RECV", &m, NULL);
    if (s->c.state >= UXSS_DONE)
        return;
    s->c.last_rx = s->rto_from = now;
    if (m.type == UX_S_ACCEPT)
        on_accept(s, now, &m);
    else if (m.type == UX_S_CLOSE)
        on_close(s, &m);
    else if (s->c.state == UXSS_OPEN)
        on_ack(s, now, &m);
}

/* ---- output ---- */

static void note_tx(struct ux_ssend *s, uint32_t txseq, uint64_t now)
{
    s->tx_time[txseq & (TX_RING - 1)] = now;
    s->tx_seq[txseq & (TX_RING - 1)] = txseq;
    s->last_tx = now;
    s->c.st.packets_out++;
}

static size_t put_msg(struct ux_ssend *s, struct ux_msg *m, uint8_t *buf, size_t cap,
                      struct ux_addr *to, const char *note)
{
    m->xid = s->c.xid;
    size_t n = ux_encode(m, buf, cap);
    if (n) {
        *to = s->c.peer;
        ux_stream_trace(&s->c, "SEND", m, note);
    }
    return n;
}

static size_t put_segment(struct ux_ssend *s, uint64_t now, uint64_t off, uint32_t len,
                          uint8_t *buf, size_t cap, struct ux_addr *to, uint32_t *txseq, int dup)
{
    if (cap < UX_SDATA_OVERHEAD + len)
        return 0;
    const uint8_t *data = s->buf + (off & (s->cap - 1));
    uint8_t h[UX_HASH_LEN];
    if (ux_segment_hash(s->c.seg_sha, s->c.xid, off, data, len, h))
        return 0;
    *txseq = s->next_txseq++;
    size_t hl = ux_encode_sdata_header(buf, s->c.xid, *txseq, off, h, len);
    memcpy(buf + hl, data, len);
    note_tx(s, *txseq, now);
    *to = s->c.peer;
    s->c.st.sent_bytes += len;
    if (s->c.trace) {
        struct ux_msg m = {.type = UX_S_DATA, .xid = s->c.xid};
        m.u.sdata.off = off;
        m.u.sdata.len = len;
        ux_stream_trace(&s->c, "SEND", &m, dup ? "DUP" : NULL);
    }
    return hl + len;
}

static int window_allows(const struct ux_ssend *s, uint32_t len)
{
    return s->flight == 0 || (double)(s->flight + len) <= s->cwnd;
}

static int find_lost(struct ux_ssend *s)
{
    for (uint32_t i = s->lost_hint; i < s->seg_len; i++)
        if (seg_at(s, i)->state == SEG_LOST) {
            s->lost_hint = i;
            return (int)i;
        }
    s->lost_hint = s->seg_len;
    return -1;
}

/* Length of the next new segment, 0 if none may go now. */
static uint32_t new_segment_len(const struct ux_ssend *s)
{
    if (s->nxt >= s->end || s->seg_len == s->seg_cap || s->nxt >= s->rwnd_edge)
        return 0;
    uint64_t len = s->end - s->nxt;
    uint64_t to_wrap = s->cap - (s->nxt & (s->cap - 1));
    uint64_t rwnd = s->rwnd_edge - s->nxt;
    if (len < s->cfg.mss && !s->eof && s->flight > 0)
        return 0; /* more is coming: wait for a full segment while data is in flight */
    len = len < s->cfg.mss ? len : s->cfg.mss;
    len = len < to_wrap ? len : to_wrap;
    len = len < rwnd ? len : rwnd;
    return window_allows(s, (uint32_t)len) ? (uint32_t)len : 0;
}

static int fin_due(const struct ux_ssend *s, uint64_t now)
{
    if (!s->eof || s->nxt != s->end)
        return 0;
    return !s->fin_sent || (s->una == s->end && now >= s->fin_sent_at + rto_now(s));
}

static uint64_t probe_at(const struct ux_ssend *s)
{
    uint64_t wait = s->keepalive_us;
    if (s->nxt < s->end && s->nxt >= s->rwnd_edge && s->flight == 0 && rto_now(s) < wait)
        wait = rto_now(s); /* zero window: ask again soon */
    return s->last_tx + wait;
}

/* Timers that change state: connect timeout, silence, RTO. */
static void tick(struct ux_ssend *s, uint64_t now)
{
    if (s->c.state == UXSS_CONNECTING && now >= s->c.started_at + s->cfg.connect_us) {
        s->c.state = UXSS_FAILED;
        ux_stream_fail(&s->c, UX_ERR_NOSERVER, "no receiver answered within %.0f s",
                       (double)s->cfg.connect_us / 1e6);
    }
    if (s->c.state != UXSS_OPEN)
        return;
    if (now >= s->c.last_rx + s->cfg.idle_us) {
        s->close_pending = 1;
        s->close_reason = UX_SC_ABORT;
        s->c.state = UXSS_FAILED;
        ux_stream_fail(&s->c, UX_ERR_BROKEN, "the receiver went silent for %.1f s after %llu bytes",
                       (double)s->cfg.idle_us / 1e6, (unsigned long long)s->una);
        return;
    }
    if (s->flight && now >= s->rto_from + rto_now(s)) {
        /* Nothing heard for an RTO with data out: everything unacked is lost. */
        for (uint32_t i = 0; i < s->seg_len; i++)
            if (seg_at(s, i)->state == SEG_FLIGHT)
                mark_lost(s, i);
        s->c.st.timeouts++;
        s->ssthresh = s->cwnd / 2 > MIN_CWND_SEGS * s->cfg.mss ? s->cwnd / 2 : MIN_CWND_SEGS * s->cfg.mss;
        s->cwnd = MIN_CWND_SEGS * s->cfg.mss;
        s->recover_txseq = s->next_txseq;
        s->backoff = s->backoff < 64 ? s->backoff * 2 : 64;
        s->rto_from = now;
    }
}

static size_t send_open(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_S_OPEN};
    m.u.sopen.mss = s->cfg.mss;
    if (s->has_cookie) {
        m.u.sopen.flags = UX_SO_COOKIE;
        memcpy(m.u.sopen.cookie, s->cookie, UX_COOKIE_LEN);
    }
    if (s->c.keyed) {
        m.u.sopen.flags |= UX_SO_NONCE;
        memcpy(m.u.sopen.nonce, s->c.nc, UX_NC_LEN);
    }
    size_t n = put_msg(s, &m, buf, cap, to, s->open_tries ? "DUP" : NULL);
    if (!n)
        return 0;
    s->open_tries++;
    uint64_t wait = (uint64_t)OPEN_RETRY << (s->open_tries < 3 ? s->open_tries - 1 : 2);
    s->next_open_at = now + (wait < OPEN_RETRY_MAX ? wait : OPEN_RETRY_MAX);
    note_tx(s, 0, now); /* txseq 0 stands for the OPEN: the ACCEPT gives an RTT */
    return n;
}

static size_t send_close(struct ux_ssend *s, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_S_CLOSE};
    m.u.close.reason = s->close_reason;
    s->close_pending--;
    return put_msg(s, &m, buf, cap, to, NULL);
}

static size_t send_fin(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_S_FIN};
    m.u.sfin.txseq = s->next_txseq++;
    m.u.sfin.length = s->end;
    memcpy(m.u.sfin.sha256, s->c.sha256, UX_HASH_LEN);
    size_t n = put_msg(s, &m, buf, cap, to, s->fin_sent ? "DUP" : NULL);
    if (!n)
        return 0;
    if (s->fin_sent) {
        s->backoff = s->backoff < 64 ? s->backoff * 2 : 64;
        s->c.st.retransmits++;
    }
    s->fin_sent = 1;
    s->fin_sent_at = now;
    note_tx(s, m.u.sfin.txseq, now);
    return n;
}

static size_t send_probe(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    uint32_t txseq;
    return put_segment(s, now, s->nxt, 0, buf, cap, to, &txseq, 0);
}

static size_t send_data(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    int lost = find_lost(s);
    if (lost >= 0 && window_allows(s, seg_at(s, (uint32_t)lost)->len)) {
        struct ux_seg *g = seg_at(s, (uint32_t)lost);
        size_t n = put_segment(s, now, g->off, g->len, buf, cap, to, &g->txseq, 1);
        if (n) {
            g->state = SEG_FLIGHT;
            g->sent_at = now;
            g->retx++;
            s->flight += g->len;
            s->c.st.retx_bytes += g->len;
            s->lost_hint++;
        }
        return n;
    }
    if (lost >= 0)
        return 0;
    uint32_t len = new_segment_len(s);
    if (!len)
        return 0;
    if (!s->flight)
        s->rto_from = now; /* the retransmission timer starts with the first byte out */
    struct ux_seg *g = seg_at(s, s->seg_len);
    size_t n = put_segment(s, now, s->nxt, len, buf, cap, to, &g->txseq, 0);
    if (!n)
        return 0;
    g->off = s->nxt;
    g->len = len;
    g->sent_at = now;
    g->state = SEG_FLIGHT;
    g->retx = 0;
    s->seg_len++;
    s->nxt += len;
    s->flight += len;
    return n;
}

static size_t output(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to);

size_t ux_ssend_output(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    if (!s->c.keyed)
        return output(s, now, buf, cap, to);
    size_t n = cap > UX_SEAL_MAX ? output(s, now, buf, cap - UX_SEAL_MAX, to) : 0;
    return n ? ux_stream_seal(&s->c, &s->cfg.rng, buf, n, cap, buf[3] == UX_S_OPEN, UX_DIR_SENDER) : 0;
}

static size_t output(struct ux_ssend *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    tick(s, now);
    if (s->close_pending)
        return send_close(s, buf, cap, to);
    if (s->c.state == UXSS_CONNECTING)
        return now >= s->next_open_at ? send_open(s, now, buf, cap, to) : 0;
    if (s->c.state != UXSS_OPEN)
        return 0;
    size_t n = send_data(s, now, buf, cap, to);
    if (!n && fin_due(s, now))
        n = send_fin(s, now, buf, cap, to);
    if (!n && now >= probe_at(s))
        n = send_probe(s, now, buf, cap, to);
    return n;
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t ux_ssend_deadline(const struct ux_ssend *s)
{
    if (s->close_pending)
        return 0;
    if (s->c.state == UXSS_CONNECTING)
        return min64(s->next_open_at, s->c.started_at + s->cfg.connect_us);
    if (s->c.state != UXSS_OPEN)
        return UINT64_MAX;
    struct ux_ssend *m = (struct ux_ssend *)s; /* find_lost only moves a hint */
    int lost = find_lost(m);
    if (lost >= 0 ? window_allows(s, seg_at(s, (uint32_t)lost)->len) : new_segment_len(s) > 0)
        return 0;
    uint64_t t = min64(s->c.last_rx + s->cfg.idle_us, probe_at(s));
    if (s->flight)
        t = min64(t, s->rto_from + rto_now(s));
    if (s->eof && s->nxt == s->end) {
        if (!s->fin_sent)
            return 0;
        if (s->una == s->end)
            t = min64(t, s->fin_sent_at + rto_now(s));
    }
    return t;
}
