/* Client engine: discovery, the choice of version, dispatch of input and
 * output, deadlines. */
#include "client_int.h"
#include "legacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uxc_push_event(struct ux_client *c, enum ux_client_event_type type, int peer)
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

void uxc_fail(struct ux_client *c, enum ux_err code, const char *msg)
{
    if (c->state == UXC_DONE || c->state == UXC_FAILED)
        return;
    c->state = UXC_FAILED;
    c->fail = code;
    snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg);
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].close_pending = c->peers[i].active ? CLOSE_REPEAT : 0;
    uxc_push_event(c, UXC_EV_FAIL, -1);
}

void ux_client_abort(struct ux_client *c, enum ux_err code, const char *msg)
{
    if (c->state == UXC_DONE)
        c->state = UXC_TRANSFER; /* the engine finished, the host did not */
    uxc_fail(c, code, msg);
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
        (c->cfg.name_len == 0 && c->cfg.kind == UX_KIND_FILE) || c->cfg.name_len > UX_MAX_NAME)
        return -1;
    if (c->cfg.key && c->cfg.legacy)
        return -1; /* the original protocol cannot be sealed */
    c->sha = ux_sha_new();
    if (!c->sha || ux_rng_fill(&c->cfg.rng, &c->xid, sizeof c->xid) || uxc_keys_init(c))
        return -1;
    c->state = UXC_DISCOVER;
    c->started_at = now;
    c->next_round_at = now;
    return 0;
}

void ux_client_free(struct ux_client *c)
{
    uxc_keys_free(c);
    uxc_tree_free(c);
    free(c->reuse);
    free(c->leaves);
    c->reuse = NULL;
    c->leaves = NULL;
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

void ux_client_unreachable(struct ux_client *c, uint64_t now, const struct ux_addr *to)
{
    (void)now;
    if (c->state != UXC_DISCOVER)
        return; /* unauthenticated: it ends nothing a server has answered for */
    for (int i = 0; i < c->ntargets; i++)
        if (!c->unreachable[i] && ux_addr_equal(&c->targets[i], to)) {
            c->unreachable[i] = 1;
            c->nunreachable++;
        }
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

int uxc_peer_id(const struct ux_client *c, const struct ux_peer *p) { return (int)(p - c->peers); }

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
struct ux_peer *uxc_sender(struct ux_client *c, const struct ux_addr *a, int create)
{
    struct ux_peer *p = find_peer(c, a, create);
    return p && !p->excluded ? p : NULL;
}

int uxc_active_peers(const struct ux_client *c)
{
    int n = 0;
    for (int i = 0; i < c->npeers; i++)
        n += c->peers[i].active;
    return n;
}

void uxc_drop_peer(struct ux_client *c, struct ux_peer *p, enum ux_peer_drop why)
{
    if (!p->active)
        return;
    uxc_reclaim(c, p);
    p->active = 0;
    p->dropped = why;
    uxc_push_event(c, UXC_EV_DROP, uxc_peer_id(c, p));
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

/* Offers of one version: the same size, chunking and SHA-256, and the
 * same tree root where both give one (a server that cannot make the tree
 * offers none). */
static int same_version(const struct ux_peer *a, const struct ux_peer *b)
{
    return a->size == b->size && a->chunk_size == b->chunk_size &&
           memcmp(a->sha256, b->sha256, UX_HASH_LEN) == 0 &&
           (!a->has_root || !b->has_root || memcmp(a->root, b->root, UX_HASH_LEN) == 0);
}

/* Does P offer the version being fetched? */
static int offers_chosen(const struct ux_client *c, const struct ux_peer *p)
{
    return p->has_offer && p->size == c->size && memcmp(p->sha256, c->sha256, UX_HASH_LEN) == 0 &&
           (!c->has_root || !p->has_root || memcmp(p->root, c->root, UX_HASH_LEN) == 0);
}

/* Hosts (addresses, not ports: one machine answering from many sockets
 * has one vote) that offer P's version. */
static int votes_for(const struct ux_client *c, const struct ux_peer *p)
{
    int n = 0;
    for (int j = 0; j < c->npeers; j++) {
        const struct ux_peer *q = &c->peers[j];
        if (!q->has_offer || !same_version(p, q))
            continue;
        int counted = 0;
        for (int k = 0; k < j && !counted; k++)
            counted = c->peers[k].has_offer && same_version(p, &c->peers[k]) &&
                      ux_addr_same_host(&c->peers[k].addr, &q->addr);
        n += !counted;
    }
    return n;
}

/* The version to fetch: the wanted SHA-256 if one was named, else the one
 * most hosts offer (the earliest offered wins a tie). */
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
        int votes = votes_for(c, p);
        if (votes > best_votes) {
            best = p;
            best_votes = votes;
        }
    }
    return best;
}

void uxc_complete(struct ux_client *c, uint64_t now)
{
    c->state = UXC_DONE;
    c->done_at = now;
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].close_pending = c->peers[i].active ? CLOSE_REPEAT : 0;
    uxc_push_event(c, UXC_EV_DONE, -1);
}

static void start_transfer(struct ux_client *c, struct ux_peer *v, uint64_t now)
{
    c->size = v->size;
    c->chunk_size = v->chunk_size;
    c->count = c->cfg.layout ? ux_layout_chunks(c->cfg.layout) : (uint32_t)ux_chunk_count(v->size, v->chunk_size);
    memcpy(c->sha256, v->sha256, UX_HASH_LEN);
    c->has_root = v->has_root;
    memcpy(c->root, v->root, UX_HASH_LEN);
    /* No window outgrows the file: a small file's rings stay small. */
    if (c->count + 2 * MIN_CWND < c->cfg.max_window)
        c->cfg.max_window = c->count + 2 * (uint32_t)MIN_CWND;
    if (ux_chunkmap_init(&c->map, c->count)) {
        uxc_fail(c, UX_ERR_IO, "out of memory for the chunk map");
        return;
    }
    const char *why = "cannot prepare the output file";
    int err = c->cfg.on_start ? c->cfg.on_start(c->cfg.ud, c->size, &why) : 0;
    if (err) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s", why, strerror(err));
        uxc_fail(c, UX_ERR_IO, msg);
        return;
    }
    c->state = UXC_TRANSFER;
    uxc_push_event(c, UXC_EV_START, uxc_peer_id(c, v));
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].has_offer && same_version(&c->peers[i], v) && activate(c, &c->peers[i], now))
            uxc_fail(c, UX_ERR_IO, "out of memory");
    if (c->state == UXC_TRANSFER && c->cfg.basis && c->has_root && uxc_tree_start(c, now))
        uxc_fail(c, UX_ERR_IO, "out of memory for the tree");
    if (uxc_all_in(c))
        uxc_complete(c, now);
}

uint64_t uxc_discovery_end(const struct ux_client *c)
{
    uint64_t end = c->started_at + c->cfg.discover_us;
    if (c->preparing_at) {
        uint64_t wait = c->preparing_at + PREPARING_GRACE_US, most = c->started_at + PREPARING_MAX_US;
        wait = wait < most ? wait : most;
        end = wait > end ? wait : end;
    }
    return end;
}

/* Has every server asked (no broadcast) answered already: offered, or,
 * with ERRORS, said no? */
static int all_answered(const struct ux_client *c, int errors)
{
    int n = c->nunreachable;
    for (int i = 0; i < c->npeers; i++)
        n += c->peers[i].has_offer || c->peers[i].excluded || (errors && c->peers[i].answered);
    return c->cfg.unicast && n >= c->ntargets;
}

/* Every target asked by address said nothing listens there. */
static void fail_unreachable(struct ux_client *c)
{
    char where[80] = "";
    ux_addr_format(&c->targets[0], where, sizeof where);
    char msg[160];
    snprintf(msg, sizeof msg, "no server answered: nothing listens on %s%s (port unreachable)", where,
             c->ntargets > 1 ? " and the others asked" : "");
    uxc_fail(c, UX_ERR_NOSERVER, msg);
}

static void tick_discovery(struct ux_client *c, uint64_t now)
{
    if (c->first_offer_at) {
        /* A legacy server streams right after its offer: start at once. */
        if (now >= c->first_offer_at + (c->cfg.legacy ? 0 : COLLECT_US) || all_answered(c, 0)) {
            struct ux_peer *v = choose_version(c);
            c->no_version = !v; /* then wait for more offers, not spin on these */
            if (v)
                start_transfer(c, v, now);
            else if (now >= uxc_discovery_end(c))
                uxc_fail(c, UX_ERR_VERSION, "no server offers the requested SHA-256");
        }
        return;
    }
    if (!c->first_error_at && c->cfg.unicast && c->ntargets && c->nunreachable >= c->ntargets) {
        fail_unreachable(c);
        return;
    }
    if (c->first_error_at && (now >= c->first_error_at + NOTFOUND_GRACE_US || all_answered(c, 1))) {
        if (c->stale_answer)
            uxc_fail(c, UX_ERR_STALE, "the folder changed on the server since its listing");
        else if (c->refused[0])
            uxc_fail(c, UX_ERR_REFUSED, c->refused);
        else
            uxc_fail(c, UX_ERR_NOTFOUND, c->unreadable[0] ? c->unreadable : "file not found on any server that answered");
        return;
    }
    if (now >= uxc_discovery_end(c))
        uxc_fail(c, UX_ERR_NOSERVER,
                 c->preparing_at ? "the server was still preparing the file (hashing it)"
                 : c->keyed      ? "no server answered (a server with another key stays silent: its log says so)"
                                 : "no server answered");
}

void uxc_tick(struct ux_client *c, uint64_t now)
{
    if (c->state == UXC_DISCOVER)
        tick_discovery(c, now);
    if (c->state != UXC_TRANSFER && c->state != UXC_TREE)
        return;
    uxc_tree_tick(c, now);
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].active)
            uxc_tick_peer(c, &c->peers[i], now);
    if (uxc_active_peers(c) == 0 && now >= uxc_discovery_end(c))
        uxc_fail(c, UX_ERR_TIMEOUT, "every server stopped answering");
}

/* An offer was recorded in P: report it, and if the transfer is under way
 * and it offers the chosen version, let it join. */
void uxc_offer_received(struct ux_client *c, struct ux_peer *p, uint64_t now)
{
    if (!c->first_offer_at)
        c->first_offer_at = now;
    c->no_version = 0; /* look again */
    uxc_push_event(c, UXC_EV_OFFER, uxc_peer_id(c, p));
    if ((c->state == UXC_TRANSFER || c->state == UXC_TREE) && !p->dropped && offers_chosen(c, p) &&
        activate(c, p, now))
        uxc_fail(c, UX_ERR_IO, "out of memory");
}

static void on_offer(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    if (m->u.offer.chunk_size != c->cfg.chunk_size || p->has_offer)
        return; /* sliced differently: its chunk numbers do not match ours */
    if (c->cfg.layout ? m->u.offer.size != c->cfg.layout->total ||
                            m->u.offer.chunk_count != ux_layout_chunks(c->cfg.layout)
                      : m->u.offer.chunk_count != ux_chunk_count(m->u.offer.size, m->u.offer.chunk_size))
        return; /* chunked otherwise than asked */
    p->has_offer = 1;
    p->size = m->u.offer.size;
    p->chunk_size = m->u.offer.chunk_size;
    p->handle = m->u.offer.handle;
    memcpy(p->sha256, m->u.offer.sha256, UX_HASH_LEN);
    memcpy(p->cookie, m->u.offer.cookie, UX_COOKIE_LEN);
    p->has_root = (m->u.offer.flags & UX_OFFER_TREE) != 0;
    memcpy(p->root, m->u.offer.root, UX_HASH_LEN);
    if (c->keyed && (!(m->u.offer.flags & UX_OFFER_NONCE) || uxc_peer_key(c, p, m->u.offer.nonce))) {
        p->has_offer = 0; /* no key for it: it cannot take part */
        return;
    }
    uxc_offer_received(c, p, now);
}

/* An ERROR ends at most its sender's part: a "no" counts toward failing
 * only while discovering, and a server that offered can only be dropped. */
static void on_error(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    int moving = c->state == UXC_TRANSFER || c->state == UXC_TREE;
    switch (m->u.error.code) {
    case UX_E_STALE:
        if (!p->has_offer && !moving && c->cfg.layout) {
            /* files of a listing that is no longer the folder's: a "no" */
            p->answered = c->stale_answer = 1;
            if (!c->first_error_at)
                c->first_error_at = now;
            break;
        }
        if (!p->has_offer)
            break; /* it offered nothing that could have gone stale */
        uxc_drop_peer(c, p, UXC_DROP_STALE);
        if (moving && uxc_active_peers(c) == 0)
            uxc_fail(c, UX_ERR_STALE, "the file changed on the server during the transfer");
        break;
    case UX_E_BUSY:
        /* Every session slot is taken: what it was asked comes back to
         * the pool, and it is asked again after a round-trip timeout (or
         * dropped if it stays silent for idle_us). */
        if (p->active) {
            uxc_reclaim(c, p);
            p->need_sent_at = now;
            p->st.timeouts++;
        }
        break;
    case UX_E_PREPARING:
        c->preparing_at = now;
        if (!p->preparing) {
            p->preparing = 1;
            uxc_push_event(c, UXC_EV_PREPARING, uxc_peer_id(c, p));
        }
        break;
    default:
        if (p->active) {
            uxc_drop_peer(c, p, UXC_DROP_REFUSED); /* it no longer serves the file */
            break;
        }
        if (moving || p->has_offer)
            break;
        p->answered = 1;
        char text[80];
        ux_printable(text, sizeof text, m->u.error.text, m->u.error.text_len);
        if (m->u.error.code == UX_E_REFUSED && !c->refused[0])
            snprintf(c->refused, sizeof c->refused, "server refused the name: %s", text);
        else if (m->u.error.code == UX_E_IO && !c->unreadable[0])
            snprintf(c->unreadable, sizeof c->unreadable, "no server that answered could read it (%s)", text);
        if (!c->first_error_at)
            c->first_error_at = now;
    }
}

static int is_target(const struct ux_client *c, const struct ux_addr *a)
{
    for (int i = 0; i < c->ntargets; i++)
        if (ux_addr_equal(&c->targets[i], a))
            return 1;
    return 0;
}

static void input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                  const struct ux_addr *from)
{
    struct ux_msg m;
    uxc_tick(c, now);
    if (c->state == UXC_DONE || c->state == UXC_FAILED)
        return;
    if (c->cfg.legacy) {
        uxc_legacy_input(c, now, pkt, len, from);
        return;
    }
    if (c->keyed && !(pkt = uxc_unseal(c, pkt, &len, from)))
        return; /* not sealed with our key, or a replay */
    if (ux_decode(pkt, len, &m) || m.xid != c->xid)
        return; /* not ours: a stray, a forgery, or a reply to another request */
    /* Only answers make a server known; asked by unicast only, only the
     * servers asked may answer. */
    int create = (m.type == UX_OFFER || m.type == UX_ERROR) && (!c->cfg.unicast || is_target(c, from));
    struct ux_peer *p = uxc_sender(c, from, create);
    if (!p)
        return;
    switch (m.type) {
    case UX_OFFER: on_offer(c, p, &m, now); break;
    case UX_ERROR: on_error(c, p, &m, now); break;
    case UX_DATA:
        if (m.flags & UX_FLAG_TREE)
            uxc_on_tree_data(c, p, &m, now);
        else
            uxc_on_data(c, p, &m, now);
        break;
    default: break;
    }
}

int ux_client_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                    const struct ux_addr *from)
{
    c->held = 0;
    input(c, now, pkt, len, from);
    if (c->keyed && !c->held)
        uxc_unsealed_taken(c); /* handed back, it may come again */
    return c->held;
}

size_t uxc_encode_request(struct ux_client *c, uint8_t *buf, size_t cap)
{
    if (c->cfg.legacy)
        return ux_legacy_encode_get(buf, cap, c->cfg.name, c->cfg.name_len);
    struct ux_msg m = {.type = UX_REQUEST, .xid = c->xid};
    m.u.request.chunk_size = c->cfg.chunk_size;
    m.u.request.kind = (uint8_t)c->cfg.kind;
    m.u.request.flags = c->cfg.want_tree ? UX_REQ_TREE : 0;
    m.u.request.name_len = (uint16_t)c->cfg.name_len;
    m.u.request.name = (const uint8_t *)c->cfg.name;
    m.u.request.sel = c->cfg.sel;
    m.u.request.sel_len = (uint16_t)c->cfg.sel_len;
    if (c->keyed) {
        m.u.request.flags |= UX_REQ_NONCE;
        memcpy(m.u.request.nonce, c->nc, UX_NC_LEN);
    }
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
        if (c->preparing_at) {
            /* A server hashing the file: ask again every PREPARING_FIRST_US
             * for PREPARING_QUICK rounds (hashing tens of MiB takes that
             * long), then less and less often. */
            unsigned k = c->preparing_rounds < PREPARING_QUICK ? 0 : c->preparing_rounds - PREPARING_QUICK;
            c->preparing_rounds += c->preparing_rounds < PREPARING_QUICK + 8;
            uint64_t again = PREPARING_FIRST_US << (k < 8 ? k : 8);
            wait = again < PREPARING_RETRY_US ? again : PREPARING_RETRY_US;
        }
        c->next_round_at = now + wait;
    }
    return uxc_encode_request(c, buf, cap);
}

static int discovery_due(const struct ux_client *c, uint64_t now)
{
    if (c->ntargets == 0 || c->state > UXC_TRANSFER || now >= uxc_discovery_end(c))
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

static size_t output(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to);

size_t ux_client_output(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                        struct ux_addr *to)
{
    if (!c->keyed)
        return output(c, now, buf, cap, to);
    if (cap <= UX_SEAL_MAX)
        return 0;
    size_t n = output(c, now, buf, cap - UX_SEAL_MAX, to);
    return n ? uxc_seal(c, buf, n, cap, to) : 0;
}

static size_t output(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    int discovering = c->state == UXC_DISCOVER;
    c->restart_clock = 0;
    uxc_tick(c, now);
    if (discovering && (c->state == UXC_TRANSFER || c->state == UXC_TREE)) {
        /* Preparing the output file (on_start) may have taken a while: the
         * first NEEDs go out with a fresh clock, or their round trip would
         * include that time and fire a spurious timeout. */
        c->restart_clock = 1;
        return 0;
    }
    if (discovery_due(c, now))
        return out_request(c, now, buf, cap, to);
    if (c->cfg.legacy)
        return c->state == UXC_TRANSFER ? uxc_out_legacy_retry(c, now, buf, cap, to) : 0;
    if (c->state == UXC_TRANSFER && c->reuse && !uxc_reuse_step(c, now) && uxc_all_in(c))
        uxc_complete(c, now);
    c->budget_held = 0;
    for (int k = 0; k < c->npeers; k++) {
        int i = (c->rr + k) % c->npeers;
        struct ux_peer *p = &c->peers[i];
        if (p->close_pending > 0)
            return out_close(c, p, buf, cap, to);
        if (c->state == UXC_TREE)
            return uxc_out_tree(c, now, buf, cap, to);
        if (c->state != UXC_TRANSFER || !p->active)
            continue;
        uint32_t room = uxc_budget_room(c, p, uxc_need_room(c, p), now);
        if (room == 0)
            continue;
        size_t n = uxc_out_need(c, p, room, now, buf, cap, to);
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
    if (c->ntargets && c->next_round_at < uxc_discovery_end(c) && !(c->cfg.legacy && c->state == UXC_TRANSFER))
        d = min64(d, c->next_round_at);
    if (c->state == UXC_DISCOVER) {
        d = min64(d, uxc_discovery_end(c));
        if (c->first_offer_at && !c->no_version)
            d = min64(d, all_answered(c, 0) ? 0 : c->first_offer_at + (c->cfg.legacy ? 0 : COLLECT_US));
        else if (c->first_error_at)
            d = min64(d, all_answered(c, 1) ? 0 : c->first_error_at + NOTFOUND_GRACE_US);
        return d;
    }
    if (c->state == UXC_TREE)
        d = min64(d, uxc_tree_deadline(c));
    if (c->state == UXC_TRANSFER && c->reuse && c->reuse_next < c->count)
        return 0; /* copying from the basis goes on */
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        if (!p->active)
            continue;
        d = min64(d, p->last_rx + c->cfg.idle_us);
        if (uxc_outstanding(p)) {
            uint64_t since = p->last_rx > p->need_sent_at ? p->last_rx : p->need_sent_at;
            d = min64(d, since + uxc_rto(p));
        }
    }
    if (c->budget_held)
        d = min64(d, ux_budget_ready_at(c->cfg.budget));
    if (uxc_active_peers(c) == 0)
        d = min64(d, uxc_discovery_end(c));
    if (c->cfg.legacy)
        d = min64(d, uxc_legacy_retry_at(c));
    return d;
}

