#include "client.h"
#include "legacy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000ull
#define FIRST_RETRY_US (50 * MS) /* a lost offer on a LAN costs this; doubles per round */
#define COLLECT_US (100 * MS)       /* after the first offer, wait for others */
#define NOTFOUND_GRACE_US (1000 * MS)
/* A server hashing a large file answers "preparing": ask it again this
 * often, and wait this long after its last such answer, for up to ten
 * minutes in all (4 GiB take about 3 s here; a slow disk, much longer). */
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
/* Queueing delay we accept before backing off. On a LAN the path holds
 * little; what is in flight beyond it waits in a socket buffer, costing
 * cache and risking overflow: 10 ms left 4-8 MB queued on loopback and
 * between namespaces, and fetches there ran 15-20% slower (issue 4). */
#define QUEUE_TARGET_US (2 * MS)
#define CLOSE_REPEAT 1

static void push_event(struct ux_client *c, int type, int peer)
{
    if (c->ev_len == (int)(sizeof c->events / sizeof c->events[0]))
        return; /* the host is not draining events; losing one is harmless */
    int at = (c->ev_head + c->ev_len) % (int)(sizeof c->events / sizeof c->events[0]);
    c->events[at].type = type;
    c->events[at].peer = peer;
    c->ev_len++;
}

int ux_client_next_event(struct ux_client *c, struct ux_client_event *ev)
{
    if (c->ev_len == 0)
        return 0;
    *ev = c->events[c->ev_head];
    c->ev_head = (c->ev_head + 1) % (int)(sizeof c->events / sizeof c->events[0]);
    c->ev_len--;
    return 1;
}

static void fail(struct ux_client *c, int code, const char *msg)
{
    if (c->state == UXC_DONE || c->state == UXC_FAILED)
        return;
    c->state = UXC_FAILED;
    c->fail = code;
    snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg);
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].close_pending = c->peers[i].active ? CLOSE_REPEAT : 0;
    push_event(c, UXE_FAIL, -1);
}

void ux_client_abort(struct ux_client *c, int code, const char *msg)
{
    if (c->state == UXC_DONE)
        c->state = UXC_TRANSFER; /* the engine finished, the host did not */
    fail(c, code, msg);
}

int ux_client_init(struct ux_client *c, const struct ux_client_cfg *cfg, uint64_t now)
{
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    if (!c->cfg.chunk_size || c->cfg.legacy)
        c->cfg.chunk_size = c->cfg.legacy ? UX_LEGACY_CHUNK : UX_DEFAULT_CHUNK;
    if (!c->cfg.discover_us)
        c->cfg.discover_us = 10000 * MS;
    if (!c->cfg.idle_us)
        c->cfg.idle_us = 5000 * MS;
    if (!c->cfg.max_window)
        c->cfg.max_window = 4096;
    if (c->cfg.max_window < 2 * MIN_CWND)
        c->cfg.max_window = 2 * MIN_CWND;
    if (c->cfg.chunk_size < UX_MIN_CHUNK || c->cfg.chunk_size > UX_MAX_CHUNK ||
        c->cfg.name_len == 0 || c->cfg.name_len > UX_MAX_NAME)
        return -1;
    c->sha = ux_sha_new();
    if (!c->sha || ux_random(&c->xid, sizeof c->xid))
        return -1;
    c->state = UXC_DISCOVER;
    c->started_at = now;
    c->next_round_at = now;
    return 0;
}

void ux_client_free(struct ux_client *c)
{
    for (int i = 0; i < c->npeers; i++)
        free(c->peers[i].ring);
    ux_chunkmap_free(&c->map);
    ux_sha_free(c->sha);
    c->sha = NULL;
    c->npeers = 0;
}

int ux_client_add_target(struct ux_client *c, const struct ux_addr *a)
{
    if (c->ntargets == UX_MAX_TARGETS)
        return -1;
    c->targets[c->ntargets++] = *a;
    return 0;
}

static struct ux_peer *find_peer(struct ux_client *c, const struct ux_addr *a, int create)
{
    for (int i = 0; i < c->npeers; i++)
        if (ux_addr_equal(&c->peers[i].addr, a))
            return &c->peers[i];
    if (!create || c->npeers == UX_MAX_PEERS)
        return NULL;
    struct ux_peer *p = &c->peers[c->npeers++];
    memset(p, 0, sizeof *p);
    p->addr = *a;
    return p;
}

static int peer_id(const struct ux_client *c, const struct ux_peer *p) { return (int)(p - c->peers); }

int ux_client_exclude(struct ux_client *c, const struct ux_addr *a)
{
    struct ux_peer *p = find_peer(c, a, 1);
    if (!p)
        return -1;
    p->excluded = 1;
    return 0;
}

/* The peer a datagram from A comes from, or NULL: unknown (and not to be
 * created), or excluded, so not heard at all. */
static struct ux_peer *sender(struct ux_client *c, const struct ux_addr *a, int create)
{
    struct ux_peer *p = find_peer(c, a, create);
    return p && !p->excluded ? p : NULL;
}

static uint32_t outstanding(const struct ux_peer *p)
{
    return p->ring_len > p->ring_done ? p->ring_len - p->ring_done : 0;
}

static struct ux_inflight *ring_at(struct ux_peer *p, uint32_t k, uint32_t cap)
{
    return &p->ring[(p->ring_head + k) % cap];
}

/* Give back every chunk this server still owes us. */
static void reclaim(struct ux_client *c, struct ux_peer *p)
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

static int active_peers(const struct ux_client *c)
{
    int n = 0;
    for (int i = 0; i < c->npeers; i++)
        n += c->peers[i].active;
    return n;
}

static void drop_peer(struct ux_client *c, struct ux_peer *p, int why)
{
    if (!p->active)
        return;
    reclaim(c, p);
    p->active = 0;
    p->dropped = why;
    push_event(c, UXE_DROP, peer_id(c, p));
}

static int activate(struct ux_client *c, struct ux_peer *p, uint64_t now)
{
    if (!p->ring)
        p->ring = calloc(c->cfg.max_window, sizeof *p->ring);
    if (!p->ring)
        return -1;
    p->active = 1;
    p->cwnd = INITIAL_CWND;
    p->ssthresh = c->cfg.max_window;
    p->last_rx = now;
    p->need_now = !c->cfg.legacy; /* a legacy server is already streaming */
    return 0;
}

static int same_version(const struct ux_peer *a, const struct ux_peer *b)
{
    return a->size == b->size && a->chunk_size == b->chunk_size &&
           memcmp(a->sha256, b->sha256, UX_HASH_LEN) == 0;
}

/* The version to fetch: the wanted SHA-256 if one was named, else the one
 * most servers offer (the earliest offered wins a tie). */
static struct ux_peer *choose_version(struct ux_client *c)
{
    struct ux_peer *best = NULL;
    int best_votes = 0;
    for (int i = 0; i < c->npeers; i++) {
        struct ux_peer *p = &c->peers[i];
        if (!p->has_offer)
            continue;
        if (c->cfg.want_sha256_set && memcmp(p->sha256, c->cfg.want_sha256, UX_HASH_LEN))
            continue;
        int votes = 0;
        for (int j = 0; j < c->npeers; j++)
            votes += c->peers[j].has_offer && same_version(p, &c->peers[j]);
        if (votes > best_votes) {
            best = p;
            best_votes = votes;
        }
    }
    return best;
}

static void complete(struct ux_client *c, uint64_t now)
{
    c->state = UXC_DONE;
    c->done_at = now;
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].close_pending = c->peers[i].active ? CLOSE_REPEAT : 0;
    push_event(c, UXE_DONE, -1);
}

static void start_transfer(struct ux_client *c, struct ux_peer *v, uint64_t now)
{
    c->size = v->size;
    c->chunk_size = v->chunk_size;
    c->count = (uint32_t)ux_chunk_count(v->size, v->chunk_size);
    memcpy(c->sha256, v->sha256, UX_HASH_LEN);
    if (ux_chunkmap_init(&c->map, c->count)) {
        fail(c, UXF_IO, "out of memory for the chunk map");
        return;
    }
    const char *why = "cannot prepare the output file";
    int err = c->cfg.on_start ? c->cfg.on_start(c->cfg.ud, c->size, &why) : 0;
    if (err) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s", why, strerror(err));
        fail(c, UXF_IO, msg);
        return;
    }
    c->state = UXC_TRANSFER;
    push_event(c, UXE_START, peer_id(c, v));
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].has_offer && same_version(&c->peers[i], v) && activate(c, &c->peers[i], now))
            fail(c, UXF_IO, "out of memory");
    if (c->count == 0)
        complete(c, now);
}

static uint64_t rto(const struct ux_peer *p)
{
    uint64_t r = (uint64_t)(4 * p->srtt_us);
    return r < MIN_RTO_US ? MIN_RTO_US : r > MAX_RTO_US ? MAX_RTO_US : r;
}

static uint64_t discovery_end(const struct ux_client *c)
{
    uint64_t end = c->started_at + c->cfg.discover_us;
    if (c->preparing_at) {
        uint64_t wait = c->preparing_at + PREPARING_GRACE_US, most = c->started_at + PREPARING_MAX_US;
        wait = wait < most ? wait : most;
        end = wait > end ? wait : end;
    }
    return end;
}

/* Has every server asked (no broadcast) offered already? */
static int all_offered(const struct ux_client *c)
{
    int n = 0;
    for (int i = 0; i < c->npeers; i++)
        n += c->peers[i].has_offer || c->peers[i].excluded; /* nothing to wait for from those */
    return c->cfg.unicast && n >= c->ntargets;
}

static void tick_discovery(struct ux_client *c, uint64_t now)
{
    if (c->first_offer_at) {
        /* A legacy server streams right after its offer: start at once. */
        if (now >= c->first_offer_at + (c->cfg.legacy ? 0 : COLLECT_US) || all_offered(c)) {
            struct ux_peer *v = choose_version(c);
            if (v)
                start_transfer(c, v, now);
            else if (now >= discovery_end(c))
                fail(c, UXF_VERSION, "no server offers the requested SHA-256");
        }
        return;
    }
    if (c->first_error_at && now >= c->first_error_at + NOTFOUND_GRACE_US) {
        fail(c, UXF_NOTFOUND, "file not found on any server that answered");
        return;
    }
    if (now >= discovery_end(c))
        fail(c, UXF_NOSERVER, c->preparing_at ? "the server was still preparing the file (hashing it)"
                                               : "no server answered");
}

static void tick_peer(struct ux_client *c, struct ux_peer *p, uint64_t now)
{
    if (now >= p->last_rx + c->cfg.idle_us) {
        drop_peer(c, p, 1);
        return;
    }
    uint64_t since = p->last_rx > p->need_sent_at ? p->last_rx : p->need_sent_at;
    if (outstanding(p) > 0 && now >= since + rto(p)) {
        reclaim(c, p);
        p->rtt_sent_at = 0; /* its answer may never come */
        p->st.timeouts++;
        /* A server gone quiet while others deliver: stop feeding it. */
        if (++p->silent_rtos >= SILENT_RTO_LIMIT && active_peers(c) > 1) {
            drop_peer(c, p, 1);
            return;
        }
        p->cwnd = p->cwnd / 2 < MIN_CWND ? MIN_CWND : p->cwnd / 2;
        p->ssthresh = p->cwnd;
        p->need_now = 1;
        p->need_sent_at = now; /* back off: the next timeout counts from the new NEED */
    }
}

static void tick(struct ux_client *c, uint64_t now)
{
    if (c->state == UXC_DISCOVER)
        tick_discovery(c, now);
    if (c->state != UXC_TRANSFER)
        return;
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].active)
            tick_peer(c, &c->peers[i], now);
    if (active_peers(c) == 0 && now >= discovery_end(c))
        fail(c, UXF_TIMEOUT, "every server stopped answering");
}

/* An offer was recorded in P: report it, and if the transfer is under way
 * and it offers the chosen version, let it join. */
static void offer_received(struct ux_client *c, struct ux_peer *p, uint64_t now)
{
    if (!c->first_offer_at)
        c->first_offer_at = now;
    push_event(c, UXE_OFFER, peer_id(c, p));
    if (c->state == UXC_TRANSFER && !p->dropped && p->size == c->size &&
        memcmp(p->sha256, c->sha256, UX_HASH_LEN) == 0 && activate(c, p, now))
        fail(c, UXF_IO, "out of memory");
}

static void on_offer(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    if (m->u.offer.chunk_size != c->cfg.chunk_size || p->has_offer)
        return; /* sliced differently: its chunk numbers do not match ours */
    p->has_offer = 1;
    p->size = m->u.offer.size;
    p->chunk_size = m->u.offer.chunk_size;
    p->handle = m->u.offer.handle;
    memcpy(p->sha256, m->u.offer.sha256, UX_HASH_LEN);
    memcpy(p->cookie, m->u.offer.cookie, UX_COOKIE_LEN);
    offer_received(c, p, now);
}

static void on_error(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    char msg[160];
    switch (m->u.error.code) {
    case UX_E_REFUSED:
        snprintf(msg, sizeof msg, "server refused the name: %.*s", (int)m->u.error.text_len,
                 (const char *)m->u.error.text);
        fail(c, UXF_REFUSED, msg);
        break;
    case UX_E_STALE:
        drop_peer(c, p, 3);
        if (c->state == UXC_TRANSFER && active_peers(c) == 0)
            fail(c, UXF_STALE, "the file changed on the server during the transfer");
        break;
    case UX_E_BUSY:
        drop_peer(c, p, 1);
        break;
    case UX_E_PREPARING:
        c->preparing_at = now;
        if (!p->preparing) {
            p->preparing = 1;
            push_event(c, UXE_PREPARING, peer_id(c, p));
        }
        break;
    default:
        if (!c->first_error_at)
            c->first_error_at = now;
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

static void bad_chunk(struct ux_client *c, struct ux_peer *p)
{
    c->bad++;
    /* Its verified chunks stay. The last server is kept: every chunk is
     * checked anyway, and dropping it would end the transfer. */
    if (++p->st.bad >= BAD_CHUNK_LIMIT && active_peers(c) > 1)
        drop_peer(c, p, 2);
}

static void on_data(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    uint32_t i = m->u.data.index;
    if (c->state != UXC_TRANSFER || !p->active)
        return;
    if (i >= c->count) {
        bad_chunk(c, p);
        return;
    }
    uint64_t off = (uint64_t)i * c->chunk_size;
    uint64_t want = c->size - off < c->chunk_size ? c->size - off : c->chunk_size;
    uint8_t h[UX_HASH_LEN];
    if (m->u.data.len != want || ux_chunk_hash(c->sha, i, m->u.data.data, m->u.data.len, h) ||
        !ux_equal(h, m->u.data.hash, UX_CHUNK_HASH_LEN)) {
        bad_chunk(c, p);
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
            fail(c, UXF_IO, msg);
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
    if (c->map.have == c->count)
        complete(c, now);
}

/* "except COUNT chunks HEX": the size is known only as an upper bound
 * (COUNT full chunks) until the last chunk shows how long it is. */
static void on_legacy_except(struct ux_client *c, struct ux_peer *p, uint32_t count, const uint8_t *sha,
                             uint64_t now)
{
    if (p->has_offer)
        return;
    p->has_offer = 1;
    p->size = (uint64_t)count * UX_LEGACY_CHUNK;
    p->chunk_size = UX_LEGACY_CHUNK;
    memcpy(p->sha256, sha, UX_HASH_LEN);
    offer_received(c, p, now);
}

static void on_legacy_chunk(struct ux_client *c, struct ux_peer *p, const uint8_t *pkt, size_t len,
                            uint64_t now)
{
    uint32_t i;
    const uint8_t *data, *hash;
    size_t n;
    uint8_t h[UX_HASH_LEN];
    if (c->state != UXC_TRANSFER || !p->active)
        return;
    if (ux_legacy_parse_chunk(pkt, len, &i, &data, &n, &hash) || i >= c->count ||
        (i + 1 < c->count ? n != UX_LEGACY_CHUNK : n == 0) || ux_sha_init(c->sha) ||
        ux_sha_update(c->sha, data, n) || ux_sha_final(c->sha, h) || !ux_equal(h, hash, UX_HASH_LEN)) {
        bad_chunk(c, p);
        return;
    }
    p->last_rx = c->last_chunk_at = now;
    if (!p->first_data_at)
        p->first_data_at = now;
    if (ux_chunkmap_has(&c->map, i)) {
        c->dups++;
        p->st.dups++;
        return;
    }
    uint64_t off = (uint64_t)i * UX_LEGACY_CHUNK;
    int err = c->cfg.on_chunk ? c->cfg.on_chunk(c->cfg.ud, i, off, data, n) : 0;
    if (err == EAGAIN) {
        c->held = 1;
        return;
    }
    if (err) {
        fail(c, UXF_IO, strerror(err));
        return;
    }
    ux_chunkmap_set(&c->map, i);
    c->bytes_done += n;
    p->st.chunks++;
    p->st.bytes += n;
    if (i + 1 == c->count)
        c->legacy_last_len = n;
    if (c->map.have == c->count) {
        c->size = (uint64_t)(c->count - 1) * UX_LEGACY_CHUNK + c->legacy_last_len;
        complete(c, now);
    }
}

static void legacy_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                         const struct ux_addr *from)
{
    uint32_t count;
    uint8_t sha[UX_HASH_LEN];
    if (ux_legacy_parse_except(pkt, len, &count, sha) == 0) {
        struct ux_peer *p = sender(c, from, 1);
        if (p)
            on_legacy_except(c, p, count, sha, now);
        tick(c, now); /* start now: its chunks follow in this same batch */
        return;
    }
    struct ux_peer *p = sender(c, from, 0);
    if (p)
        on_legacy_chunk(c, p, pkt, len, now);
}

static void input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                  const struct ux_addr *from)
{
    struct ux_msg m;
    tick(c, now);
    if (c->state == UXC_DONE || c->state == UXC_FAILED)
        return;
    if (c->cfg.legacy) {
        legacy_input(c, now, pkt, len, from);
        return;
    }
    if (ux_decode(pkt, len, &m) || m.xid != c->xid)
        return; /* not ours: a stray, a forgery, or a reply to another request */
    int create = m.type == UX_OFFER || m.type == UX_ERROR;
    struct ux_peer *p = sender(c, from, create);
    if (!p)
        return;
    switch (m.type) {
    case UX_OFFER: on_offer(c, p, &m, now); break;
    case UX_ERROR: on_error(c, p, &m, now); break;
    case UX_DATA: on_data(c, p, &m, now); break;
    default: break;
    }
}

int ux_client_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from)
{
    c->held = 0;
    input(c, now, pkt, len, from);
    return c->held;
}

static size_t encode_request(struct ux_client *c, uint8_t *buf, size_t cap)
{
    if (c->cfg.legacy)
        return ux_legacy_encode_get(buf, cap, c->cfg.name, c->cfg.name_len);
    struct ux_msg m = {.type = UX_REQUEST, .xid = c->xid};
    m.u.request.chunk_size = c->cfg.chunk_size;
    m.u.request.name_len = (uint16_t)c->cfg.name_len;
    m.u.request.name = (const uint8_t *)c->cfg.name;
    return ux_encode(&m, buf, cap);
}

static size_t out_request(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                          struct ux_addr *to)
{
    *to = c->targets[c->target_cursor++];
    if (c->target_cursor == c->ntargets) {
        c->target_cursor = 0;
        c->round++;
        unsigned r = c->round < 16 ? c->round : 16; /* doubling, capped long before it matters */
        uint64_t wait = FIRST_RETRY_US << (r - 1);
        c->next_round_at = now + (c->preparing_at && wait > PREPARING_RETRY_US ? PREPARING_RETRY_US : wait);
    }
    return encode_request(c, buf, cap);
}

/* A legacy server cannot be told what is missing: when chunks stop
 * arriving, ask every server that answered for the whole file again. */
static uint64_t legacy_retry_at(const struct ux_client *c)
{
    uint64_t last = c->last_chunk_at > c->legacy_asked_at ? c->last_chunk_at : c->legacy_asked_at;
    return (last ? last : c->started_at) + LEGACY_RETRY_US;
}

static size_t out_legacy_retry(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                               struct ux_addr *to)
{
    for (int k = 0; k < c->npeers; k++) {
        int i = (c->rr + k) % c->npeers;
        if (c->peers[i].active && c->peers[i].need_now) {
            c->peers[i].need_now = 0;
            c->rr = i + 1;
            *to = c->peers[i].addr;
            return encode_request(c, buf, cap);
        }
    }
    if (now < legacy_retry_at(c))
        return 0;
    c->legacy_asked_at = now;
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].need_now = c->peers[i].active;
    return out_legacy_retry(c, now, buf, cap, to);
}

static int discovery_due(const struct ux_client *c, uint64_t now)
{
    if (c->ntargets == 0 || c->state > UXC_TRANSFER || now >= discovery_end(c))
        return 0;
    if (c->cfg.legacy && c->state == UXC_TRANSFER)
        return 0; /* to a legacy server a repeated request means "start over" */
    return c->target_cursor > 0 || now >= c->next_round_at;
}

static size_t out_close(struct ux_client *c, struct ux_peer *p, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_msg m = {.type = UX_CLOSE, .xid = c->xid};
    m.u.close.reason = c->state == UXC_DONE ? 0 : 1;
    p->close_pending--;
    *to = p->addr;
    return ux_encode(&m, buf, cap);
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
        if (q != p && q->active && outstanding(q) && r < best_rate) {
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
    if (!p->srtt_us)
        return 0;
    double gain = p->cwnd < p->ssthresh ? 2.0 : 1.25;
    double kib = gain * p->cwnd * (c->chunk_size + UX_DATA_OVERHEAD) / (p->srtt_us / 1e6) / 1024;
    return kib >= UINT32_MAX ? 0 : kib < 1 ? 1 : (uint32_t)kib;
}

/* Fill a NEED with the next free chunks, as ranges. */
static size_t out_need(struct ux_client *c, struct ux_peer *p, uint32_t room, uint64_t now,
                       uint8_t *buf, size_t cap, struct ux_addr *to)
{
    static struct ux_msg m; /* large (range table); engines run on one thread */
    memset(&m, 0, sizeof m);
    m.type = UX_NEED;
    m.xid = c->xid;
    m.u.need.handle = p->handle;
    m.u.need.chunk_size = c->chunk_size;
    memcpy(m.u.need.cookie, p->cookie, UX_COOKIE_LEN);
    m.u.need.seq = p->need_seq + 1;
    m.u.need.rate_kib = pacing_kib(c, p);
    uint32_t n = 0, cap_ring = c->cfg.max_window;
    int endgame = 0;
    while (n < room && p->ring_len < cap_ring && m.u.need.nranges < UX_MAX_RANGES) {
        uint32_t i = endgame ? UINT32_MAX : ux_chunkmap_next_free(&c->map);
        if (i == UINT32_MAX) {
            endgame = 1;
            i = next_stolen(c, p, now);
            if (i == UINT32_MAX)
                break;
            p->st.stolen++;
        }
        if (add_range(&m, i))
            break; /* a chunk we may have marked as stolen is simply asked later */
        ux_chunkmap_mark_requested(&c->map, i);
        *ring_at(p, p->ring_len++, cap_ring) = (struct ux_inflight){i, m.u.need.seq};
        n++;
    }
    p->need_now = 0;
    if (n == 0)
        return 0;
    p->need_seq = m.u.need.seq;
    p->need_sent_at = now;
    if (!p->rtt_sent_at) { /* time one NEED at a time: one sample per round trip */
        p->rtt_seq = p->need_seq;
        p->rtt_sent_at = now;
    }
    *to = p->addr;
    return ux_encode(&m, buf, cap);
}

static uint32_t need_room(const struct ux_client *c, const struct ux_peer *p)
{
    uint32_t w = (uint32_t)p->cwnd, o = outstanding(p);
    uint32_t room = w > o ? w - o : 0;
    uint32_t ring_room = c->cfg.max_window - p->ring_len;
    if (room > ring_room)
        room = ring_room;
    /* Ask in batches, not a NEED per chunk, unless told to ask now. */
    if (!p->need_now && room < w / 4)
        return 0;
    return room;
}

size_t ux_client_output(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                        struct ux_addr *to)
{
    int discovering = c->state == UXC_DISCOVER;
    c->restart_clock = 0;
    tick(c, now);
    if (discovering && c->state == UXC_TRANSFER) {
        /* Preparing the output file (on_start) may have taken a while: the
         * first NEEDs go out with a fresh clock, or their round trip would
         * include that time and fire a spurious timeout. */
        c->restart_clock = 1;
        return 0;
    }
    if (discovery_due(c, now))
        return out_request(c, now, buf, cap, to);
    if (c->cfg.legacy)
        return c->state == UXC_TRANSFER ? out_legacy_retry(c, now, buf, cap, to) : 0;
    for (int k = 0; k < c->npeers; k++) {
        int i = (c->rr + k) % c->npeers;
        struct ux_peer *p = &c->peers[i];
        if (p->close_pending > 0)
            return out_close(c, p, buf, cap, to);
        if (c->state != UXC_TRANSFER || !p->active)
            continue;
        uint32_t room = need_room(c, p);
        if (room == 0)
            continue;
        size_t n = out_need(c, p, room, now, buf, cap, to);
        if (n) {
            c->rr = i + 1;
            return n;
        }
    }
    return 0;
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t ux_client_deadline(const struct ux_client *c)
{
    uint64_t d = UINT64_MAX;
    if (c->state == UXC_DONE || c->state == UXC_FAILED)
        return d;
    if (c->restart_clock)
        return 0;
    if (c->ntargets && c->next_round_at < discovery_end(c) && !(c->cfg.legacy && c->state == UXC_TRANSFER))
        d = min64(d, c->next_round_at);
    if (c->state == UXC_DISCOVER) {
        d = min64(d, discovery_end(c));
        if (c->first_offer_at)
            d = min64(d, all_offered(c) ? 0 : c->first_offer_at + (c->cfg.legacy ? 0 : COLLECT_US));
        else if (c->first_error_at)
            d = min64(d, c->first_error_at + NOTFOUND_GRACE_US);
        return d;
    }
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        if (!p->active)
            continue;
        d = min64(d, p->last_rx + c->cfg.idle_us);
        if (outstanding(p)) {
            uint64_t since = p->last_rx > p->need_sent_at ? p->last_rx : p->need_sent_at;
            d = min64(d, since + rto(p));
        }
    }
    if (active_peers(c) == 0)
        d = min64(d, discovery_end(c));
    if (c->cfg.legacy)
        d = min64(d, legacy_retry_at(c));
    return d;
}
