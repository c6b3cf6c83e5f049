/* What a server admits, and from whom: cookies that prove an address
 * receives (minted with a time, valid for UX_COOKIE_TTL_US, dead once the
 * session they opened ends), and per-host accounting (sessions held,
 * requests per second, send pacing) so that no one client can take the
 * server. Pure computation over the state given; time comes in.
 *
 * An ended session's cookie is remembered for exactly as long as it could
 * still be accepted: in the bucket of the second it was minted in, which
 * goes once that second is older than the TTL. Room for it is held when
 * the session opens, so it is never forgotten early whatever the load;
 * when UX_ENDED_MAX cookies are held, no further session opens (busy). */
#ifndef UDPXFER_GUARD_H
#define UDPXFER_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wire.h"

#define UX_COOKIE_TTL_US (30ull * 1000000) /* from OFFER to the first NEED */
#define UX_COOKIE_SECONDS 32               /* buckets: more than the seconds a cookie is accepted in */
#define UX_ENDED_MAX (1u << 17)            /* cookies of ended (or open) sessions held at once */
#define UX_HOSTS 1024                      /* hosts tracked at once (a hash table) */

/* One client host (an address without its port). */
struct ux_host {
    uint8_t key[20];
    uint8_t klen;          /* 0: a free entry */
    uint32_t sessions;     /* sessions it holds */
    double tokens;         /* requests it may still make now */
    uint64_t refill_at;    /* when tokens were last topped up */
    uint64_t next_send_at; /* its pacing, when a per-host rate is set */
    uint64_t legacy_next_at; /* its legacy sessions' pacing, together */
};

/* The cookies minted in one second that opened a session: an open
 * addressing table of their MACs, at most half full. */
struct ux_ended {
    uint32_t second;       /* the minting second its cookies carry */
    uint32_t n;            /* ended sessions' cookies in it */
    uint32_t held;         /* open sessions' cookies it keeps room for */
    uint32_t cap;          /* slots, a power of two (0: none) */
    struct ux_ended_slot {
        uint8_t mac[UX_COOKIE_LEN - 4];
        uint32_t used;
    } *slot;
};

struct ux_guard {
    uint8_t secret[32];
    double req_rate;       /* requests per second per host; burst as many */
    struct ux_ended ended[UX_COOKIE_SECONDS]; /* by minting second, modulo */
    struct ux_host hosts[UX_HOSTS];
    uint64_t limited;      /* requests dropped by a host's rate */
};

/* What a cookie binds: the client's address and transfer id, the file's
 * handle, generation and chunk size. */
struct ux_cookie_for {
    const struct ux_addr *addr;
    uint64_t xid;
    uint32_t handle;
    uint64_t generation;
    uint32_t chunk_size;
};

void ux_guard_init(struct ux_guard *g, const uint8_t secret[32], double req_rate);
void ux_guard_free(struct ux_guard *g);
/* Mint the cookie for F at NOW. Returns 0, or -1 if HMAC failed. */
int ux_cookie_mint(const struct ux_guard *g, const struct ux_cookie_for *f, uint64_t now,
                   uint8_t out[UX_COOKIE_LEN]);
/* Is C a cookie minted for F, not older than the TTL, of no ended session? */
int ux_cookie_valid(const struct ux_guard *g, const struct ux_cookie_for *f, uint64_t now,
                    const uint8_t c[UX_COOKIE_LEN]);
/* Did C open a session that has ended? */
int ux_cookie_spent(const struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN]);
/* A session opens with the valid cookie C: room to remember C when it
 * ends is held. Returns 0, or -1 (no room: the session must not open). */
int ux_cookie_hold(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now);
/* The session C was to open did not: the room goes. */
void ux_cookie_unhold(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN]);
/* The session C opened (after ux_cookie_hold) has ended: C opens no other
 * for as long as it could be accepted. */
void ux_cookie_end(struct ux_guard *g, const uint8_t c[UX_COOKIE_LEN], uint64_t now);
/* Cookies remembered or held room for now (for stats and specs). */
uint32_t ux_cookie_remembered(const struct ux_guard *g, uint64_t now);

/* The entry of A's host, or NULL if the table is full of busy hosts. */
struct ux_host *ux_guard_host(struct ux_guard *g, const struct ux_addr *a, uint64_t now);
/* May A's host make one more request now? Takes a token if so. */
int ux_guard_admit(struct ux_guard *g, const struct ux_addr *a, uint64_t now);

#endif
