#include "guard.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define SEC 1000000ull
#define PROBES 16 /* host table slots tried per lookup */

void ux_guard_init(struct ux_guard *g, const uint8_t secret[32], double req_rate)
{
    memset(g, 0, sizeof *g);
    memcpy(g->secret, secret, sizeof g->secret);
    g->req_rate = req_rate;
}

void ux_guard_free(struct ux_guard *g)
{
    for (int i = 0; i < UX_COOKIE_SECONDS; i++) {
        free(g->ended[i].slot);
        memset(&g->ended[i], 0, sizeof g->ended[i]);
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The MAC part of a cookie minted at second T. */
static int mac(const struct ux_guard *g, const struct ux_cookie_for *f, uint32_t t, uint8_t out[UX_COOKIE_LEN - 4])
{
    uint8_t msg[20 + 8 + 4 + 8 + 4 + 4];
    size_t n = ux_addr_key(f->addr, msg);
    memcpy(msg + n, &f->xid, 8);
    memcpy(msg + n + 8, &f->handle, 4);
    memcpy(msg + n + 12, &f->generation, 8);
    memcpy(msg + n + 20, &f->chunk_size, 4);
    memcpy(msg + n + 24, &t, 4);
    return ux_hmac(g->secret, sizeof g->secret, msg, n + 28, out, UX_COOKIE_LEN - 4);
}

/* Cookie times: seconds of the host's monotonic clock. */
static uint32_t second(uint64_t now) { return (uint32_t)(now / SEC); }

int ux_cookie_mint(const struct ux_guard *g, const struct ux_cookie_for *f, uint64_t now, uint8_t out[UX_COOKIE_LEN])
{
    uint32_t t = second(now);
    put32(out, t);
    return mac(g, f, t, out + 4);
}

static uint32_t cookie_second(const uint8_t c[UX_COOKIE_LEN])
{
    return (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
}

/* Is a cookie minted at second T accepted at second AT? */
static int acceptable(uint32_t t, uint32_t at) { return t <= at && (uint64_t)(at - t) * SEC <= UX_COOKIE_TTL_US; }

/* The bucket of cookies minted at second T, or NULL if it holds another second's. */
static struct ux_ended *bucket(const struct ux_guard *g, uint32_t t)
{
    const struct ux_ended *b = &g->ended[t % UX_COOKIE_SECONDS];
    return b->second == t && (b->n || b->held) ? (struct ux_ended *)b : NULL;
}

static void drop_bucket(struct ux_ended *b)
{
    free(b->slot);
    memset(b, 0, sizeof *b);
}

/* The slot of MAC in B: its own, or the empty one where it would go. */
static struct ux_ended_slot *probe(const struct ux_ended *b, const uint8_t *mac)
{
    uint32_t h;
    memcpy(&h, mac, sizeof h); /* a MAC: its bytes are spread already */
    for (uint32_t k = 0;; k++) {
        struct ux_ended_slot *sl = &b->slot[(h + k) & (b->cap - 1)];
        if (!sl->used || memcmp(sl->mac, mac, sizeof sl->mac) == 0)
            return sl;
    }
}

/* Room in B for N cookies, at most half full. */
static int reserve(struct ux_ended *b, uint32_t n)
{
    uint32_t cap = b->cap ? b->cap : 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap == b->cap)
        return 0;
    struct ux_ended grown = *b;
    grown.cap = cap;
    if (!(grown.slot = calloc(cap, sizeof *grown.slot)))
        return -1;
    for (uint32_t i = 0; i < b->cap; i++)
        if (b->slot[i].used)
            *probe(&grown, b->slot[i].mac) = b->slot[i];
    free(b->slot);
    *b = grown;
    return 0;
}

uint32_t ux_cookie_remembered(const struct ux_guard *g, uint64_t now)
{
    uint32_t n = 0, at = second(now);
    for (int i = 0; i < UX_COOKIE_SECONDS; i++)
        if (acceptable(g->ended[i].second, at))
            n += g->ended[i].n + g->ended[i].held;
    return n;
}

int ux_cookie_spent(const struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN])
{
    const struct ux_ended *b = bucket(g, cookie_second(c));
    return b && b->n && probe(b, c + 4)->used;
}

int ux_cookie_valid(const struct ux_guard *g, const struct ux_cookie_for *f, uint64_t now,
                    const uint8_t c[UX_COOKIE_LEN])
{
    uint32_t t = cookie_second(c);
    if (!acceptable(t, second(now)))
        return 0;
    uint8_t want[UX_COOKIE_LEN - 4];
    if (mac(g, f, t, want) || !ux_equal(want, c + 4, sizeof want))
        return 0;
    return !ux_cookie_spent(g, c);
}

int ux_cookie_hold(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now)
{
    uint32_t t = cookie_second(c), at = second(now);
    for (int i = 0; i < UX_COOKIE_SECONDS; i++)
        if (g->ended[i].cap && !acceptable(g->ended[i].second, at))
            drop_bucket(&g->ended[i]); /* its cookies are refused by their age now */
    struct ux_ended *b = &g->ended[t % UX_COOKIE_SECONDS];
    if (b->second != t) {
        drop_bucket(b);
        b->second = t;
    }
    if (ux_cookie_remembered(g, now) >= UX_ENDED_MAX || reserve(b, b->n + b->held + 1))
        return -1;
    b->held++;
    return 0;
}

void ux_cookie_unhold(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN])
{
    struct ux_ended *b = bucket(g, cookie_second(c));
    if (b && b->held)
        b->held--;
}

void ux_cookie_end(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now)
{
    uint32_t t = cookie_second(c);
    struct ux_ended *b = bucket(g, t);
    if (!b || !b->held)
        return; /* its second's bucket went: the cookie is too old to be accepted */
    b->held--;
    if (!acceptable(t, second(now)))
        return;
    struct ux_ended_slot *sl = probe(b, c + 4);
    if (!sl->used) {
        memcpy(sl->mac, c + 4, sizeof sl->mac);
        sl->used = 1;
        b->n++;
    }
}

static void refill(const struct ux_guard *g, struct ux_host *h, uint64_t now)
{
    if (now > h->refill_at) {
        h->tokens += g->req_rate * (double)(now - h->refill_at) / 1e6;
        if (h->tokens > g->req_rate)
            h->tokens = g->req_rate;
        h->refill_at = now;
    }
}

/* A second's worth at most. */
static void top_up(double *tokens, uint64_t *at, double rate, uint64_t now)
{
    if (now > *at) {
        *tokens += rate * (double)(now - *at) / 1e6;
        if (*tokens > rate)
            *tokens = rate;
        *at = now;
    }
}

static void work_refill(const struct ux_guard *g, struct ux_host *h, uint64_t now)
{
    top_up(&h->work, &h->work_at, g->host_work, now);
}

/* Holds nothing: no session, full buckets (no work debt), no pacing or
 * legacy hold pending. Being proven is not worth keeping a host out for. */
static int idle(const struct ux_guard *g, struct ux_host *h, uint64_t now)
{
    refill(g, h, now);
    work_refill(g, h, now);
    return !h->sessions && h->tokens >= g->req_rate && h->next_send_at <= now && h->legacy_next_at <= now &&
           h->work >= g->host_work;
}

struct ux_host *ux_guard_host(struct ux_guard *g, const struct ux_addr *a, uint64_t now)
{
    uint8_t key[20];
    size_t n = ux_addr_host_key(a, key);
    uint64_t hv = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        hv = (hv ^ key[i]) * 0x100000001B3ull;
    struct ux_host *spare = NULL;
    for (unsigned k = 0; k < PROBES; k++) {
        struct ux_host *h = &g->hosts[(hv + k) % UX_HOSTS];
        if (h->klen == n && memcmp(h->key, key, n) == 0)
            return h;
        if (!spare && (!h->klen || idle(g, h, now)))
            spare = h;
    }
    if (!spare)
        return NULL;
    memset(spare, 0, sizeof *spare);
    memcpy(spare->key, key, n);
    spare->klen = (uint8_t)n;
    spare->tokens = g->req_rate;
    spare->refill_at = now;
    spare->work = g->host_work;
    spare->work_at = now;
    return spare;
}

int ux_guard_admit(struct ux_guard *g, const struct ux_addr *a, uint64_t now)
{
    struct ux_host *h = ux_guard_host(g, a, now);
    if (h) {
        refill(g, h, now);
        if (h->tokens >= 1) {
            h->tokens -= 1;
            return 1;
        }
    }
    g->limited++;
    return 0;
}

void ux_guard_work_init(struct ux_guard *g, double rate)
{
    g->total = (struct ux_bucket){rate, rate, 0};
    g->anon = (struct ux_bucket){rate / 16, rate / 16, 0};
    g->anon_trees = g->anon;
    g->host_work = rate / 2;
}

void ux_guard_prove(struct ux_host *h, uint64_t now) { h->proven_until = now + UX_PROVEN_US; }

int ux_guard_proven(const struct ux_host *h, uint64_t now) { return h && h->proven_until > now; }

static void top_up_bucket(struct ux_bucket *b, uint64_t now) { top_up(&b->tokens, &b->at, b->rate, now); }

enum ux_work ux_guard_work(struct ux_guard *g, struct ux_host *h, uint64_t now, int *trees)
{
    top_up_bucket(&g->total, now);
    top_up_bucket(&g->anon, now);
    top_up_bucket(&g->anon_trees, now);
    *trees = 0;
    if (g->total.tokens <= 0)
        return UX_WORK_NONE;
    if (!h)
        return UX_WORK_KNOWN;
    work_refill(g, h, now);
    if (h->work <= 0)
        return UX_WORK_KNOWN;
    /* An address not proven may be forged: what all of them may have
     * done shares one budget (and one more for trees), and each host's
     * own applies too. */
    int proven = ux_guard_proven(h, now);
    *trees = proven || g->anon_trees.tokens > 0;
    return proven || g->anon.tokens > 0 ? UX_WORK_ANY : UX_WORK_KNOWN;
}

/* A debt is paid in full before more work is done: what a flood gets
 * done is at most a second's worth and the rate, and one job begun. */
static void take(double *tokens, uint64_t units) { *tokens -= (double)units; }

void ux_guard_spend(struct ux_guard *g, struct ux_host *h, uint64_t units, uint64_t once, uint64_t trees,
                    uint64_t now)
{
    take(&g->total.tokens, units);
    if (!h || units <= once)
        return;
    take(&h->work, units - once);
    if (ux_guard_proven(h, now))
        return;
    take(&g->anon_trees.tokens, trees);
    take(&g->anon.tokens, units - once > trees ? units - once - trees : 0);
}
