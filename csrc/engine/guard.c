#include "guard.h"

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

static int was_ended(const struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now)
{
    for (unsigned i = 0; i < UX_ENDED_COOKIES; i++)
        if (g->ended_at[i] && now < g->ended_at[i] + UX_COOKIE_TTL_US + SEC &&
            memcmp(g->ended[i], c, UX_COOKIE_LEN) == 0)
            return 1;
    return 0;
}

int ux_cookie_valid(const struct ux_guard *g, const struct ux_cookie_for *f, uint64_t now,
                    const uint8_t c[UX_COOKIE_LEN])
{
    uint32_t t = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    uint32_t at = second(now);
    if (t > at || (uint64_t)(at - t) * SEC > UX_COOKIE_TTL_US)
        return 0;
    uint8_t want[UX_COOKIE_LEN - 4];
    if (mac(g, f, t, want) || !ux_equal(want, c + 4, sizeof want))
        return 0;
    return !was_ended(g, c, now);
}

void ux_cookie_end(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now)
{
    unsigned i = g->ended_next++ % UX_ENDED_COOKIES;
    memcpy(g->ended[i], c, UX_COOKIE_LEN);
    g->ended_at[i] = now ? now : 1;
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

/* Holds nothing: no session, a full bucket, no pacing or legacy hold pending. */
static int idle(const struct ux_guard *g, struct ux_host *h, uint64_t now)
{
    refill(g, h, now);
    return !h->sessions && h->tokens >= g->req_rate && h->next_send_at <= now && h->legacy_next_at <= now;
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
