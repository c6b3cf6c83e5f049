#include "server_int.h"
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: shuffling needs spread, not secrecy */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

uint64_t uxs_rand(struct ux_server *s) { return rng_next(&s->rng); }

int ux_server_init(struct ux_server *s, const struct ux_server_cfg *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.max_chunk || s->cfg.max_chunk > UX_MAX_CHUNK)
        s->cfg.max_chunk = UX_MAX_CHUNK;
    if (!s->cfg.max_sessions)
        s->cfg.max_sessions = 256;
    if (!s->cfg.queue_cap)
        s->cfg.queue_cap = 16384;
    if (!s->cfg.idle_us)
        s->cfg.idle_us = 30000 * MS;
    if (!s->cfg.legacy_bps)
        s->cfg.legacy_bps = 80000000; /* 80 Mbit/s: what a small Python client keeps up with */
    if (!s->cfg.host_sessions)
        s->cfg.host_sessions = s->cfg.max_sessions / 4 ? s->cfg.max_sessions / 4 : 1;
    if (s->cfg.host_requests <= 0)
        s->cfg.host_requests = 10000;
    if (s->cfg.work_rate <= 0)
        s->cfg.work_rate = UX_WORK_RATE;
    s->ev_cap = 256;
    s->sessions = calloc(s->cfg.max_sessions, sizeof *s->sessions);
    s->events = calloc((size_t)s->ev_cap, sizeof *s->events);
    s->sha = ux_sha_new();
    uint8_t secret[32];
    if (!s->sessions || !s->events || !s->sha || ux_rng_fill(&s->cfg.rng, secret, sizeof secret) ||
        ux_rng_fill(&s->cfg.rng, &s->rng, sizeof s->rng)) {
        ux_server_free(s);
        return -1;
    }
    ux_guard_init(&s->guard, secret, s->cfg.host_requests);
    ux_guard_work_init(&s->guard, s->cfg.work_rate);
    if (uxs_keys_init(s)) {
        ux_server_free(s);
        return -1;
    }
    s->rng |= 1;
    return 0;
}

void ux_server_free(struct ux_server *s)
{
    uxs_keys_free(s);
    ux_guard_free(&s->guard);
    if (s->sessions)
        for (uint32_t i = 0; i < s->cfg.max_sessions; i++)
            free(s->sessions[i].queue);
    free(s->sessions);
    free(s->events);
    ux_sha_free(s->sha);
    s->sessions = NULL;
    s->events = NULL;
    s->sha = NULL;
}

struct ux_server_event *uxs_event(struct ux_server *s, enum ux_server_event_type type, const struct ux_addr *a)
{
    if (s->ev_len == s->ev_cap)
        return NULL; /* host is not draining; logging is best effort */
    struct ux_server_event *e = &s->events[(s->ev_head + s->ev_len++) % s->ev_cap];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->addr = *a;
    return e;
}

int ux_server_next_event(struct ux_server *s, struct ux_server_event *ev)
{
    if (s->ev_len == 0)
        return 0;
    *ev = s->events[s->ev_head];
    s->ev_head = (s->ev_head + 1) % s->ev_cap;
    s->ev_len--;
    return 1;
}

int ux_server_sessions(const struct ux_server *s)
{
    int n = 0;
    for (uint32_t i = 0; i < s->hi; i++)
        n += s->sessions[i].used;
    return n;
}

/* Queue a control reply. Before an address has proven it receives (cookie),
 * a reply may be at most 3x what it sent: no amplification of spoofed requests. */
static void reply(struct ux_server *s, const struct ux_addr *to, const struct ux_msg *m, size_t req_len)
{
    int cap = (int)(sizeof s->replies / sizeof s->replies[0]);
    if (s->r_len == cap)
        return;
    struct ux_reply *r = &s->replies[(s->r_head + s->r_len) % cap];
    r->len = ux_encode(m, r->buf, sizeof r->buf - UX_SEAL_MAX);
    if (s->keyed && r->len)
        r->len = uxs_seal_reply(s, r->buf, r->len, sizeof r->buf);
    if (r->len == 0 || r->len > 3 * req_len)
        return;
    r->to = *to;
    s->r_len++;
}

void uxs_queue_raw(struct ux_server *s, const struct ux_addr *to, const uint8_t *p, size_t len)
{
    int cap = (int)(sizeof s->replies / sizeof s->replies[0]);
    if (s->r_len == cap || len > sizeof s->replies[0].buf)
        return;
    struct ux_reply *r = &s->replies[(s->r_head + s->r_len) % cap];
    memcpy(r->buf, p, len);
    r->len = len;
    r->to = *to;
    s->r_len++;
}

static void reply_error(struct ux_server *s, const struct ux_addr *to, uint64_t xid, int code,
                        const char *text, size_t req_len)
{
    struct ux_msg m = {.type = UX_ERROR, .xid = xid};
    m.u.error.code = (uint16_t)code;
    m.u.error.text = (const uint8_t *)text;
    m.u.error.text_len = (uint16_t)strlen(text);
    reply(s, to, &m, req_len);
}

static const char *error_text(int code)
{
    switch (code) {
    case UX_E_NOTFOUND: return "not found";
    case UX_E_REFUSED: return "name refused";
    case UX_E_STALE: return "file changed";
    case UX_E_BUSY: return "server busy";
    case UX_E_PREPARING: return "preparing the file (hashing it); ask again";
    default: return "server I/O error";
    }
}

/* Has this client asked under transfer id XID lately? A client asks again
 * each discovery round: the log tells of the first time only. */
static int asked_before(struct ux_server *s, const struct ux_addr *from, uint64_t xid)
{
    uint8_t key[20];
    size_t n = ux_addr_key(from, key);
    uint64_t h = xid * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ key[i]) * 0x100000001B3ull;
    h |= 1;
    for (int i = 0; i < UX_RECENT_REQUESTS; i++)
        if (s->recent[i] == h)
            return 1;
    s->recent[s->recent_next++ % UX_RECENT_REQUESTS] = h;
    return 0;
}

void uxs_request_event(struct ux_server *s, const struct ux_addr *from, uint64_t xid, enum ux_kind kind,
                          const uint8_t *name, size_t n, int code, const struct ux_file_info *fi)
{
    if (asked_before(s, from, xid))
        return;
    struct ux_server_event *e = uxs_event(s, UXSV_EV_REQUEST, from);
    if (!e)
        return;
    /* A NUL inside the name is shown as-is up to the NUL; it was refused. */
    memcpy(e->name, name, n);
    e->name[n] = 0;
    e->kind = kind;
    e->code = (enum ux_wire_error)code;
    e->size = code ? 0 : fi->size;
}

static void on_request(struct ux_server *s, const struct ux_msg *m, const struct ux_addr *from, size_t len,
                       uint64_t now)
{
    if (!ux_guard_admit(&s->guard, from, now))
        return; /* this host asks faster than any client needs to */
    if (s->keyed != ((m->u.request.flags & UX_REQ_NONCE) != 0))
        return; /* a key's transfer needs the client's nonce, a keyless one has none */
    struct ux_file_info fi = {0};
    uint32_t cs = m->u.request.chunk_size;
    struct ux_lookup q = {.kind = (enum ux_kind)m->u.request.kind, .name = (const char *)m->u.request.name,
                          .len = m->u.request.name_len, .chunk_size = cs,
                          .want_tree = m->u.request.flags & UX_REQ_TREE, .sel = m->u.request.sel,
                          .sel_len = m->u.request.sel_len};
    int code = cs < UX_MIN_CHUNK || cs > s->cfg.max_chunk ? UX_E_REFUSED : uxs_lookup(s, &q, from, now, &fi);
    uxs_request_event(s, from, m->xid, q.kind, m->u.request.name, q.len, code, &fi);
    if (!code && !fi.layout && ux_chunk_count(fi.size, cs) > UINT32_MAX)
        code = UX_E_REFUSED;
    if (code) {
        reply_error(s, from, m->xid, code, error_text(code), len);
        return;
    }
    struct ux_msg o = {.type = UX_OFFER, .xid = m->xid};
    o.u.offer.size = fi.size;
    o.u.offer.chunk_size = cs;
    o.u.offer.chunk_count = fi.layout ? ux_layout_chunks(fi.layout) : (uint32_t)ux_chunk_count(fi.size, cs);
    o.u.offer.handle = fi.handle;
    memcpy(o.u.offer.sha256, fi.sha256, UX_HASH_LEN);
    if (fi.has_root) {
        o.u.offer.flags = UX_OFFER_TREE;
        memcpy(o.u.offer.root, fi.root, UX_HASH_LEN);
    }
    if (s->keyed) {
        o.u.offer.flags |= UX_OFFER_NONCE;
        if (uxs_server_nonce(s, m->u.request.nonce, m->xid, o.u.offer.nonce))
            return;
    }
    struct ux_cookie_for f = {from, m->xid, fi.handle, fi.generation, cs};
    if (ux_cookie_mint(&s->guard, &f, now, o.u.offer.cookie) == 0)
        reply(s, from, &o, len);
}

/* The provider's lookup, charged to the budgets: a sealed request or a
 * proven address may have work done within its host's budget, any other
 * only within what all unproven hosts share. */
int uxs_lookup(struct ux_server *s, struct ux_lookup *q, const struct ux_addr *from, uint64_t now,
               struct ux_file_info *fi)
{
    struct ux_host *h = ux_guard_host(&s->guard, from, now);
    if (s->keyed && h && !ux_guard_proven(h, now))
        ux_guard_prove(h, now); /* only a key holder seals a new request */
    q->proven = ux_guard_proven(h, now);
    q->may = ux_guard_work(&s->guard, h, now, &q->may_tree);
    q->work = q->work_once = q->work_trees = 0;
    q->deferred = 0;
    int code = s->cfg.files.lookup(s->cfg.files.ud, q, fi);
    ux_guard_spend(&s->guard, h, q->work, q->work_once, q->work_trees, now);
    s->work_done += q->work;
    s->work_deferred += q->deferred != 0;
    return code;
}

struct ux_session *uxs_find(struct ux_server *s, const struct ux_addr *a, uint64_t xid)
{
    for (uint32_t i = 0; i < s->hi; i++)
        if (s->sessions[i].used && s->sessions[i].xid == xid && ux_addr_equal(&s->sessions[i].addr, a))
            return &s->sessions[i];
    return NULL;
}

void uxs_end(struct ux_server *s, struct ux_session *ss, enum ux_server_end reason, uint64_t now)
{
    struct ux_server_event *e = uxs_event(s, UXSV_EV_END, &ss->addr);
    if (e) {
        const char *nm = s->cfg.files.name(s->cfg.files.ud, ss->handle);
        strncpy(e->name, nm ? nm : "?", UX_MAX_NAME);
        e->reason = reason;
        e->size = ss->size;
        e->bytes_sent = ss->bytes_sent;
        e->chunks_sent = ss->chunks_sent;
        e->elapsed_us = now - ss->started_at;
    }
    if (!ss->legacy)
        ux_cookie_end(&s->guard, ss->cookie, now); /* a NEED still on its way opens nothing */
    if (ss->host)
        ss->host->sessions--;
    ss->host = NULL;
    ss->used = 0;
    ss->legacy = 0;
    ss->q_len = ss->q_head = 0;
    while (s->hi && !s->sessions[s->hi - 1].used)
        s->hi--;
}

#define QUEUE_START 256           /* a session's queue grows from this to queue_cap */
#define EVICT_IDLE_US (2000 * MS) /* a full server gives the slot of a session idle this long */

/* A free slot for host H, or, when every slot is taken (or H holds its
 * share), that of the session idle longest (of H's, then) if it has been
 * for EVICT_IDLE_US: its client died or left without CLOSE, and it should
 * not keep others out until it times out. */
static struct ux_session *free_slot(struct ux_server *s, const struct ux_host *h, uint64_t now)
{
    int full = h->sessions >= s->cfg.host_sessions;
    struct ux_session *idlest = NULL;
    for (uint32_t i = 0; i < s->cfg.max_sessions; i++) {
        struct ux_session *ss = &s->sessions[i];
        if (!ss->used && !full)
            return ss;
        if (ss->used && !ss->legacy && (!full || ss->host == h) && (!idlest || ss->last_rx < idlest->last_rx))
            idlest = ss;
    }
    if (!idlest || now < idlest->last_rx + EVICT_IDLE_US)
        return NULL;
    uxs_end(s, idlest, UXSV_END_IDLE, now);
    return idlest;
}

struct ux_session *uxs_open(struct ux_server *s, const struct ux_addr *from, uint64_t xid, uint32_t cs,
                            const struct ux_file_info *fi, uint64_t now)
{
    struct ux_host *h = ux_guard_host(&s->guard, from, now);
    struct ux_session *ss = h ? free_slot(s, h, now) : NULL; /* one client host does not take every slot */
    if (!ss)
        return NULL;
    uint32_t i = (uint32_t)(ss - s->sessions);
    if (!ss->queue) {
        ss->queue = malloc(QUEUE_START * sizeof *ss->queue);
        ss->q_cap = QUEUE_START;
    }
    if (!ss->queue)
        return NULL;
    ss->used = 1;
    ss->host = h;
    h->sessions++;
    if (i >= s->hi)
        s->hi = i + 1;
    if (now + s->cfg.idle_us < s->expire_at)
        s->expire_at = now + s->cfg.idle_us;
    ss->addr = *from;
    ss->xid = xid;
    ss->handle = fi->handle;
    ss->generation = fi->generation;
    ss->chunk_size = cs;
    ss->size = fi->size;
    ss->layout = fi->layout && fi->layout->chunk_size == ss->chunk_size ? fi->layout : NULL;
    ss->count = ss->layout ? ux_layout_chunks(ss->layout) : (uint32_t)ux_chunk_count(fi->size, ss->chunk_size);
    struct ux_tree_shape shape;
    ux_tree_shape(ss->count, &shape);
    ss->tree_nodes = ss->layout ? 0 : ux_tree_interior(&shape); /* files of a listing have no one tree */
    ss->q_head = ss->q_len = 0;
    ss->started_at = ss->next_send_at = now;
    ss->bytes_sent = 0;
    ss->chunks_sent = ss->needs = 0;
    struct ux_server_event *e = uxs_event(s, UXSV_EV_START, from);
    if (e) {
        const char *nm = s->cfg.files.name(s->cfg.files.ud, ss->handle);
        strncpy(e->name, nm ? nm : "?", UX_MAX_NAME);
        e->size = ss->size;
    }
    return ss;
}

/* Append the NEED's chunks (or tree nodes) to the session queue and
 * shuffle just those. */
/* Room for N more queued sends, up to queue_cap: the ring doubles. */
static void grow_queue(struct ux_server *s, struct ux_session *ss, uint64_t n)
{
    uint32_t cap = ss->q_cap;
    while (ss->q_len + n > cap && cap < s->cfg.queue_cap)
        cap = cap * 2 < s->cfg.queue_cap ? cap * 2 : s->cfg.queue_cap;
    if (cap == ss->q_cap)
        return;
    struct ux_send *q = malloc(cap * sizeof *q);
    if (!q)
        return; /* the sends that do not fit are asked again */
    for (uint32_t k = 0; k < ss->q_len; k++)
        q[k] = ss->queue[(ss->q_head + k) % ss->q_cap];
    free(ss->queue);
    ss->queue = q;
    ss->q_cap = cap;
    ss->q_head = 0;
}

static void enqueue(struct ux_server *s, struct ux_session *ss, const struct ux_msg *m)
{
    uint64_t asked = 0;
    for (unsigned r = 0; r < m->u.need.nranges; r++)
        asked += m->u.need.ranges[r].count;
    grow_queue(s, ss, asked);
    uint32_t cap = ss->q_cap, start = ss->q_len;
    int tree = m->flags & UX_FLAG_TREE;
    uint32_t limit = tree ? ss->tree_nodes : ss->count, mark = tree ? UX_SEND_TREE : 0;
    for (unsigned r = 0; r < m->u.need.nranges; r++) {
        uint32_t first = m->u.need.ranges[r].first, count = m->u.need.ranges[r].count;
        if (first >= limit)
            continue;
        if (count > limit - first)
            count = limit - first;
        for (uint32_t k = 0; k < count && ss->q_len < cap; k++)
            ss->queue[(ss->q_head + ss->q_len++) % cap] = (struct ux_send){(first + k) | mark, m->u.need.seq};
    }
    for (uint32_t k = ss->q_len; k > start + 1; k--) {
        uint32_t j = start + (uint32_t)(rng_next(&s->rng) % (k - start));
        struct ux_send *a = &ss->queue[(ss->q_head + k - 1) % cap], *b = &ss->queue[(ss->q_head + j) % cap];
        struct ux_send t = *a;
        *a = *b;
        *b = t;
    }
}

/* A NEED opens a session only with a fresh cookie minted for its sender
 * and the file as it is; the session's later NEEDs carry the same cookie. */
static void on_need(struct ux_server *s, const struct ux_msg *m, const struct ux_addr *from, size_t len,
                    uint64_t now)
{
    struct ux_file_info fi;
    struct ux_session *ss = uxs_find(s, from, m->xid);
    if (ss && (ss->legacy || !ux_equal(ss->cookie, m->u.need.cookie, UX_COOKIE_LEN) ||
               (s->keyed && s->in_session != ss)))
        return; /* not this session's */
    if (!ss && ux_cookie_spent(&s->guard, m->u.need.cookie))
        return; /* a replay, or a straggler of a session that ended: nothing to say */
    int code = s->cfg.files.current(s->cfg.files.ud, m->u.need.handle, &fi);
    if (!code && ss && fi.generation != ss->generation)
        code = UX_E_STALE;
    struct ux_cookie_for f = {from, m->xid, m->u.need.handle, code ? 0 : fi.generation, m->u.need.chunk_size};
    if (!code && !ss && !ux_cookie_valid(&s->guard, &f, now, m->u.need.cookie))
        code = UX_E_STALE; /* forged, expired, spent, or issued for an older version of the file */
    if (code) {
        if (ss)
            uxs_end(s, ss, UXSV_END_STALE, now);
        reply_error(s, from, m->xid, code == UX_E_NOTFOUND ? UX_E_STALE : code, error_text(UX_E_STALE), len);
        return;
    }
    /* Room to remember its cookie once it ends comes first: a session
     * that could not be remembered is not opened (busy). */
    if (!ss && ux_cookie_hold(&s->guard, m->u.need.cookie, now) == 0) {
        if ((ss = uxs_open(s, from, m->xid, m->u.need.chunk_size, &fi, now))) {
            memcpy(ss->cookie, m->u.need.cookie, UX_COOKIE_LEN);
            if (s->keyed)
                uxs_adopt_key(s, ss, s->in_nc);
            ux_guard_prove(ss->host, now); /* it echoed the cookie: its address receives */
            if (s->cfg.files.opened)
                s->cfg.files.opened(s->cfg.files.ud, ss->handle, ss->chunk_size);
        } else {
            ux_cookie_unhold(&s->guard, m->u.need.cookie);
        }
    }
    if (!ss) {
        reply_error(s, from, m->xid, UX_E_BUSY, error_text(UX_E_BUSY), len);
        return;
    }
    ss->last_rx = now;
    ss->needs++;
    ss->rate_bps = (uint64_t)m->u.need.rate_kib * 1024 * 8;
    enqueue(s, ss, m);
}

uint32_t uxs_pending(const struct ux_session *ss)
{
    return ss->legacy ? ss->count - ss->perm_i : ss->q_len;
}

void ux_server_input(struct ux_server *s, uint64_t now, const uint8_t *pkt, size_t len,
                     const struct ux_addr *from)
{
    struct ux_msg *m = &s->scratch;
    const uint8_t *name;
    size_t name_len, wire_len = len; /* replies are bounded by what came on the wire */
    if (s->cfg.legacy && ux_legacy_parse_get(pkt, len, &name, &name_len) == 0) {
        if (name_len <= UX_MAX_NAME)
            uxs_legacy_get(s, name, name_len, from, now);
        return;
    }
    if (s->keyed && !(pkt = uxs_unseal(s, pkt, &len, from, now)))
        return; /* not sealed with the key: not heard */
    len = wire_len > len ? len : wire_len;
    if (ux_decode(pkt, len, m)) {
        s->dropped_malformed++;
    } else if (m->type == UX_REQUEST) {
        on_request(s, m, from, wire_len, now);
    } else if (m->type == UX_NEED) {
        if (m->u.need.chunk_size >= UX_MIN_CHUNK && m->u.need.chunk_size <= s->cfg.max_chunk)
            on_need(s, m, from, wire_len, now);
    } else if (m->type == UX_CLOSE) {
        struct ux_session *ss = uxs_find(s, from, m->xid);
        if (ss && (!s->keyed || s->in_session == ss))
            uxs_end(s, ss, m->u.close.reason ? UXSV_END_ABORTED : UXSV_END_CLOSED, now);
    }
    if (s->keyed)
        uxs_unsealed_done(s);
}

/* Scans only when the earliest possible expiry is due: output() runs once
 * per datagram sent. */
static void expire(struct ux_server *s, uint64_t now)
{
    if (now < s->expire_at)
        return;
    s->expire_at = UINT64_MAX;
    for (uint32_t i = 0; i < s->hi; i++) {
        struct ux_session *ss = &s->sessions[i];
        if (!ss->used || (ss->legacy && uxs_pending(ss)))
            continue; /* legacy sessions end by themselves, after their last chunk */
        if (now >= ss->last_rx + s->cfg.idle_us)
            uxs_end(s, ss, UXSV_END_IDLE, now);
        else if (ss->last_rx + s->cfg.idle_us < s->expire_at)
            s->expire_at = ss->last_rx + s->cfg.idle_us;
    }
}

size_t ux_server_output(struct ux_server *s, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to,
                        struct ux_tail *tail)
{
    if (tail)
        *tail = (struct ux_tail){NULL, 0};
    expire(s, now);
    int rcap = (int)(sizeof s->replies / sizeof s->replies[0]);
    if (s->r_len) {
        struct ux_reply *r = &s->replies[s->r_head];
        s->r_head = (s->r_head + 1) % rcap;
        s->r_len--;
        if (r->len > cap)
            return 0;
        memcpy(buf, r->buf, r->len);
        *to = r->to;
        return r->len;
    }
    uint32_t n = s->hi;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = ((uint32_t)s->rr + k) % n;
        struct ux_session *ss = &s->sessions[i];
        if (!ss->used || !uxs_may_send(s, ss, now))
            continue;
        s->rr = (int)(i + 1);
        if (s->keyed) {
            /* Sealed in BUF, so read into it: only the kernel may touch a
             * file's mapping (a file cut short faults there, not here). */
            size_t len = cap > UX_SEAL_MAX ? uxs_send(s, ss, now, buf, cap - UX_TAG_LEN, to, NULL, UX_NONCE_LEN) : 0;
            if (len && (len = uxs_seal_session(s, ss, buf, len, cap)))
                return len;
            continue;
        }
        size_t len = ss->legacy ? uxs_legacy_send(s, ss, now, buf, cap, to) : uxs_send(s, ss, now, buf, cap, to, tail, 0);
        if (len)
            return len;
    }
    return 0;
}

uint64_t ux_server_deadline(const struct ux_server *s)
{
    uint64_t d = UINT64_MAX;
    for (uint32_t i = 0; i < s->hi; i++) {
        const struct ux_session *ss = &s->sessions[i];
        if (!ss->used)
            continue;
        if (!ss->legacy && ss->last_rx + s->cfg.idle_us < d)
            d = ss->last_rx + s->cfg.idle_us;
        uint64_t at = uxs_send_at(s, ss);
        if (at < d)
            d = at;
    }
    return d;
}
