/* Client engine: per-server windows of requested chunks, loss detection
 * from NEED order, round trips, delay-based window control, pacing hints
 * and the endgame. */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint32_t uxc_outstanding(const struct ux_peer *p)
{
    return p->ring_len > p->ring_done ? p->ring_len - p->ring_done : 0;
}

static struct ux_inflight *ring_at(struct ux_peer *p, uint32_t k, uint32_t cap)
{
    return &p->ring[(p->ring_head + k) % cap];
}

/* Give back every chunk this server still owes us. */
void uxc_reclaim(struct ux_client *c, struct ux_peer *p)
{
    for (uint32_t k = 0; k < p->ring_len; k++) {
        uint32_t i = ring_at(p, k, c->cfg.max_window)->index;
        if (!ux_chunkmap_has(&c->map, i)) {
            ux_chunkmap_unrequest(&c->map, i);
            p->st.lost++;
        }
    }
    p->ring_head = p->ring_len = p->ring_done = 0;
}

uint32_t uxc_chunk_len(const struct ux_client *c, uint32_t index)
{
    if (c->cfg.layout) {
        uint32_t f;
        uint64_t o;
        return index < c->count ? ux_layout_chunk(c->cfg.layout, index, &f, &o) : 0;
    }
    uint64_t off = (uint64_t)index * c->chunk_size;
    return off >= c->size ? 0 : c->size - off < c->chunk_size ? (uint32_t)(c->size - off) : c->chunk_size;
}

uint64_t uxc_rto(const struct ux_peer *p)
{
    uint64_t r = (uint64_t)(4 * p->srtt_us);
    return r < MIN_RTO_US ? MIN_RTO_US : r > MAX_RTO_US ? MAX_RTO_US : r;
}

void uxc_tick_peer(struct ux_client *c, struct ux_peer *p, uint64_t now)
{
    uint64_t heard = p->last_rx > p->held_at ? p->last_rx : p->held_at;
    if (now >= heard + c->cfg.idle_us) {
        uxc_drop_peer(c, p, UXC_DROP_SILENT);
        return;
    }
    uint64_t since = p->last_rx > p->need_sent_at ? p->last_rx : p->need_sent_at;
    if (uxc_outstanding(p) > 0 && now >= since + uxc_rto(p)) {
        uxc_reclaim(c, p);
        p->rtt_sent_at = 0; /* its answer may never come */
        p->st.timeouts++;
        /* A server gone quiet while others deliver: stop feeding it. */
        if (++p->silent_rtos >= SILENT_RTO_LIMIT && uxc_active_peers(c) > 1) {
            uxc_drop_peer(c, p, UXC_DROP_SILENT);
            return;
        }
        p->cwnd = p->cwnd / 2 < MIN_CWND ? MIN_CWND : p->cwnd / 2;
        p->ssthresh = p->cwnd;
        p->need_now = 1;
        p->need_sent_at = now; /* back off: the next timeout counts from the new NEED */
    }
}

static void pop_ring(struct ux_client *c, struct ux_peer *p, uint32_t seq, int *lost_seq)
{
    uint32_t cap = c->cfg.max_window;
    while (p->ring_len) {
        struct ux_inflight *h = &p->ring[p->ring_head];
        int have = ux_chunkmap_has(&c->map, h->index);
        if (!have && h->seq >= seq)
            break;
        if (have) {
            if (p->ring_done)
                p->ring_done--;
        } else {
            /* The server answers NEEDs in order: a later NEED's chunk means
             * this one was lost. */
            ux_chunkmap_unrequest(&c->map, h->index);
            p->st.lost++;
            if ((int)h->seq > *lost_seq)
                *lost_seq = (int)h->seq;
        }
        p->ring_head = (p->ring_head + 1) % cap;
        p->ring_len--;
    }
}

/* The queueing delay that stands: the least of the last few samples over
 * the base. Jitter (a descheduled thread, Wi-Fi, a reordered chunk) raises
 * single samples, a queue raises them all (LEDBAT's filter). */
static double standing_queue_us(const struct ux_peer *p)
{
    uint32_t n = p->rtt_samples < UX_RTT_FILTER ? p->rtt_samples : UX_RTT_FILTER;
    if (!n)
        return 0;
    double least = p->recent_rtt_us[0];
    for (uint32_t i = 1; i < n; i++)
        if (p->recent_rtt_us[i] < least)
            least = p->recent_rtt_us[i];
    return least - p->base_rtt_us;
}

/* One sample per NEED: the time to its first chunk is the path plus the
 * queue ahead of it at the server. A standing queue means the window is
 * past the path's capacity: shrink it (delay-based, in the spirit of
 * LEDBAT), so queues, RTT and with it the RTO stay small. */
static void rtt_sample(struct ux_peer *p, double sample)
{
    p->srtt_us = p->srtt_us ? 0.875 * p->srtt_us + 0.125 * sample : sample;
    if (!p->base_rtt_us || sample < p->base_rtt_us)
        p->base_rtt_us = sample;
    p->recent_rtt_us[p->rtt_samples++ % UX_RTT_FILTER] = sample;
    /* While the window doubles each round trip, waiting for the filter
     * would let it overshoot many times over: one late sample ends it
     * (as HyStart ends slow start). */
    double queue = p->cwnd < p->ssthresh ? sample - p->base_rtt_us : standing_queue_us(p);
    if (queue > QUEUE_TARGET_US) {
        p->cwnd = p->cwnd * 0.85 < MIN_CWND ? MIN_CWND : p->cwnd * 0.85;
        p->ssthresh = p->cwnd;
    }
}

/* Is a queue building on the path (or is there no measurement yet)? */
static int queueing(const struct ux_peer *p)
{
    return !p->base_rtt_us || standing_queue_us(p) > QUEUE_TARGET_US / 2;
}

void uxc_bad_chunk(struct ux_client *c, struct ux_peer *p)
{
    c->bad++;
    /* Its verified chunks stay. The last server is kept: every chunk is
     * checked anyway, and dropping it would end the transfer. */
    if (++p->st.bad >= BAD_CHUNK_LIMIT && uxc_active_peers(c) > 1)
        uxc_drop_peer(c, p, UXC_DROP_CORRUPT);
}

void uxc_on_data(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    uint32_t i = m->u.data.index;
    if (c->state != UXC_TRANSFER || !p->active)
        return;
    if (i >= c->count) {
        uxc_bad_chunk(c, p);
        return;
    }
    uint64_t off = (uint64_t)i * c->chunk_size;
    uint64_t want = uxc_chunk_len(c, i);
    uint8_t h[UX_HASH_LEN];
    const uint8_t *leaf = uxc_leaf(c, i);
    /* Sealed, a chunk cannot have changed on the way and comes bare: its
     * hash only matters against the tree's leaf. */
    const uint8_t *wire = m->u.data.hash;
    /* Files of a listing come bare: each file is checked whole against
     * the listing's SHA-256 (a file that fails is fetched again alone). */
    if (m->u.data.len != want || (!wire && !c->keyed && !c->cfg.layout) ||
        ((wire || leaf) && ux_chunk_hash(c->sha, i, m->u.data.data, m->u.data.len, h)) ||
        (wire && !ux_equal(h, wire, UX_CHUNK_HASH_LEN))) {
        uxc_bad_chunk(c, p);
        return;
    }
    if (leaf && !ux_equal(h, leaf, UX_HASH_LEN)) {
        /* Its hash matches its bytes but not the tree of the version it
         * offered: wrong bytes from this server, provably. */
        p->st.bad++;
        c->bad++;
        uxc_drop_peer(c, p, UXC_DROP_CORRUPT);
        if (!uxc_active_peers(c))
            uxc_fail(c, UX_ERR_CORRUPT, "every server sent chunks that do not match the file's tree");
        return;
    }
    if (p->rtt_sent_at && m->u.data.seq >= p->rtt_seq) {
        rtt_sample(p, (double)(now - p->rtt_sent_at));
        p->rtt_sent_at = 0;
    }
    p->last_rx = now;
    p->silent_rtos = 0;
    if (!p->first_data_at)
        p->first_data_at = now;
    if (ux_chunkmap_has(&c->map, i)) {
        c->dups++;
        p->st.dups++;
    } else {
        int err = c->cfg.on_chunk ? c->cfg.on_chunk(c->cfg.ud, i, off, m->u.data.data, m->u.data.len) : 0;
        if (err == EAGAIN) {
            c->held = 1;
            return;
        }
        if (err) {
            char msg[120];
            snprintf(msg, sizeof msg, "writing chunk %u failed: %s", i, strerror(err));
            uxc_fail(c, UX_ERR_IO, msg);
            return;
        }
        ux_chunkmap_set(&c->map, i);
        c->bytes_done += want;
        p->st.chunks++;
        p->st.bytes += want;
        /* Its entry is still in the ring unless its NEED was already given
         * up as lost (a late, reordered chunk): counting that one would
         * hide a chunk still owed, and nothing would ask for it again. */
        if (p->ring_len && m->u.data.seq >= p->ring[p->ring_head].seq)
            p->ring_done++;
        p->cwnd += p->cwnd < p->ssthresh ? 1.0 : 1.0 / p->cwnd;
        if (p->cwnd > c->cfg.max_window)
            p->cwnd = c->cfg.max_window;
    }
    int lost_seq = -1;
    pop_ring(c, p, m->u.data.seq, &lost_seq);
    if (lost_seq > (int)p->recover_seq && queueing(p)) {
        /* One reaction per window: a burst of losses is one congestion
         * event. Loss without a queue building is taken as random (a
         * lossy link, not a full one): resent, but the window stays. */
        p->cwnd = p->cwnd * 0.7 < MIN_CWND ? MIN_CWND : p->cwnd * 0.7;
        p->ssthresh = p->cwnd;
        p->recover_seq = p->need_seq;
    }
    if (uxc_all_in(c))
        uxc_complete(c, now);
}

/* Endgame: nothing is left to hand out, but other servers still owe chunks.
 * Ask this one for them too (once per chunk), oldest first, so the last
 * chunks do not wait on the slowest server. */
static double delivery_rate(const struct ux_peer *p, uint64_t now)
{
    uint64_t span = now > p->first_data_at && p->first_data_at ? now - p->first_data_at : 0;
    return span ? (double)p->st.bytes / (double)span : 0;
}

/* The slowest other server still owing chunks, slower than P. */
static struct ux_peer *slowest_debtor(struct ux_client *c, const struct ux_peer *p, uint64_t now)
{
    struct ux_peer *best = NULL;
    double best_rate = delivery_rate(p, now);
    for (int j = 0; j < c->npeers; j++) {
        struct ux_peer *q = &c->peers[j];
        double r = delivery_rate(q, now);
        if (q != p && q->active && uxc_outstanding(q) && r < best_rate) {
            best = q;
            best_rate = r;
        }
    }
    return best;
}

/* Endgame: nothing is left to hand out, but slower servers still owe
 * chunks. Ask this one for them too (once per chunk), oldest first, so the
 * last chunks do not wait on the slowest server. */
static uint32_t next_stolen(struct ux_client *c, const struct ux_peer *p, uint64_t now)
{
    struct ux_peer *q = slowest_debtor(c, p, now);
    for (uint32_t k = 0; q && k < q->ring_len; k++) {
        uint32_t i = ring_at(q, k, c->cfg.max_window)->index;
        if (!ux_chunkmap_has(&c->map, i) && ux_chunkmap_duplicate(&c->map, i))
            return i;
    }
    return UINT32_MAX;
}

static int add_range(struct ux_msg *m, uint32_t i)
{
    struct ux_range *last = m->u.need.nranges ? &m->u.need.ranges[m->u.need.nranges - 1] : NULL;
    if (last && last->first + last->count == i)
        last->count++;
    else if (m->u.need.nranges < UX_MAX_RANGES)
        m->u.need.ranges[m->u.need.nranges++] = (struct ux_range){i, 1};
    else
        return -1;
    return 0;
}

/* The rate the server is to pace this peer's chunks at, in KiB/s: the
 * window spread over the smoothed round trip, with headroom (more while the
 * window still doubles), so bursts are smoothed without holding back what
 * the window allows; 0 (none) until there is a round trip to go by. */
static uint32_t pacing_kib(const struct ux_client *c, const struct ux_peer *p)
{
    /* A rate limit (max_rate) is shared by the servers feeding us. */
    int n = uxc_active_peers(c);
    double limit = c->cfg.max_rate ? (double)c->cfg.max_rate / (n ? n : 1) / 1024 : 0;
    if (!p->srtt_us)
        return limit >= 1 ? (uint32_t)limit : limit > 0;
    double gain = p->cwnd < p->ssthresh ? 2.0 : 1.25;
    size_t overhead = c->keyed ? UX_BARE_DATA_OVERHEAD + UX_SEAL_OVERHEAD : UX_DATA_OVERHEAD;
    double kib = gain * p->cwnd * (c->chunk_size + overhead) / (p->srtt_us / 1e6) / 1024;
    if (limit > 0 && kib > limit)
        kib = limit;
    return kib >= UINT32_MAX ? 0 : kib < 1 ? 1 : (uint32_t)kib;
}

/* Fill a NEED with the next free chunks, as ranges. */
size_t uxc_out_need(struct ux_client *c, struct ux_peer *p, uint32_t room, uint64_t now,
                       uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg *m = &c->scratch;
    memset(m, 0, sizeof *m);
    m->type = UX_NEED;
    m->xid = c->xid;
    m->u.need.handle = p->handle;
    m->u.need.chunk_size = c->chunk_size;
    memcpy(m->u.need.cookie, p->cookie, UX_COOKIE_LEN);
    m->u.need.seq = p->need_seq + 1;
    m->u.need.rate_kib = pacing_kib(c, p);
    uint32_t n = 0, cap_ring = c->cfg.max_window;
    int endgame = 0;
    while (n < room && p->ring_len < cap_ring && m->u.need.nranges < UX_MAX_RANGES) {
        uint32_t i = endgame ? UINT32_MAX : ux_chunkmap_next_free(&c->map);
        if (i == UINT32_MAX) {
            endgame = 1;
            i = next_stolen(c, p, now);
            if (i == UINT32_MAX)
                break;
            p->st.stolen++;
        }
        if (add_range(m, i))
            break; /* a chunk we may have marked as stolen is simply asked later */
        ux_chunkmap_mark_requested(&c->map, i);
        if (c->cfg.budget)
            ux_budget_spend(c->cfg.budget, uxc_chunk_len(c, i));
        *ring_at(p, p->ring_len++, cap_ring) = (struct ux_inflight){i, m->u.need.seq};
        n++;
    }
    p->need_now = 0;
    if (n == 0)
        return 0;
    p->need_seq = m->u.need.seq;
    p->need_sent_at = now;
    if (!p->rtt_sent_at) { /* time one NEED at a time: one sample per round trip */
        p->rtt_seq = p->need_seq;
        p->rtt_sent_at = now;
    }
    *to = p->addr;
    return ux_encode(m, buf, cap);
}

/* ROOM, cut to what the shared budget allows now: a chunk more than it
 * has left at most, none while it is spent. */
uint32_t uxc_budget_room(struct ux_client *c, struct ux_peer *p, uint32_t room, uint64_t now)
{
    if (!room || !c->cfg.budget)
        return room;
    uint64_t left = ux_budget_left(c->cfg.budget, now);
    if (left == 0) {
        c->budget_held = 1;
        if (!uxc_outstanding(p))
            p->held_at = now; /* it owes us nothing: not silent */
        return 0;
    }
    uint64_t chunks = left / c->chunk_size + 1;
    return chunks < room ? (uint32_t)chunks : room;
}

uint32_t uxc_need_room(const struct ux_client *c, const struct ux_peer *p)
{
    uint32_t w = (uint32_t)p->cwnd, o = uxc_outstanding(p);
    uint32_t room = w > o ? w - o : 0;
    uint32_t ring_room = c->cfg.max_window - p->ring_len;
    if (room > ring_room)
        room = ring_room;
    /* Ask in batches, not a NEED per chunk, unless told to ask now. */
    if (!p->need_now && room < w / 4)
        return 0;
    return room;
}
