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
#define UX_PROVEN_US (600ull * 1000000)    /* a host that echoed a cookie counts as proven this long */

/* One client host (an address without its port). */
struct ux_host {
    uint8_t key[20];
    uint8_t klen;          /* 0: a free entry */
    uint32_t sessions;     /* sessions it holds */
    double tokens;         /* requests it may still make now */
    uint64_t refill_at;    /* when tokens were last topped up */
    uint64_t next_send_at; /* its pacing, when a per-host rate is set */
    uint64_t legacy_next_at; /* its legacy sessions' pacing, together */
    double work;           /* work units it may still have done for it (below 0: a debt) */
    uint64_t work_at;      /* when work was last topped up */
    uint64_t proven_until; /* it echoed a cookie: its address receives, until then */
};

/* A work budget: tokens are work units (bytes hashed, or what costs as
 * much), refilled at RATE per second up to a second's worth. Work is done
 * while there are tokens, and may run into a debt (a large job is done
 * once begun), which is paid before anything more is done. */
struct ux_bucket {
    double tokens, rate;
    uint64_t at;
};

/* What a lookup may compute of what is not known yet. */
enum ux_work {
    UX_WORK_NONE,  /* nothing: answer from what is computed, else "preparing" */
    UX_WORK_KNOWN, /* only work done once (a file version's SHA-256), going on with work
                    * begun, bringing up to date what proven clients use already */
    UX_WORK_ANY    /* anything */
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
    struct ux_bucket total; /* work for everyone */
    struct ux_bucket anon;  /* work for hosts not proven, together: their addresses may be forged */
    struct ux_bucket anon_trees; /* ... their trees: an offer can go without one, a listing cannot */
    double host_work;       /* work units per second for one proven host */
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

/* Work budgets: RATE units per second in all, half of that for any one
 * proven host, a sixteenth for every host not proven together, and as
 * much again for their trees. */
void ux_guard_work_init(struct ux_guard *g, double rate);
/* H echoed a cookie: its address receives. */
void ux_guard_prove(struct ux_host *h, uint64_t now);
int ux_guard_proven(const struct ux_host *h, uint64_t now);
/* What may be computed now for a request from H (NULL: an untracked
 * host); *TREES: whether chunk-hash trees may be. */
enum ux_work ux_guard_work(struct ux_guard *g, struct ux_host *h, uint64_t now, int *trees);
/* UNITS of work were done for a request from H: ONCE of them work done
 * once per version of a file (its SHA-256), which only the total budget
 * pays for (however it is asked, it is not done again), TREES of them
 * chunk-hash trees. */
void ux_guard_spend(struct ux_guard *g, struct ux_host *h, uint64_t units, uint64_t once, uint64_t trees,
                    uint64_t now);

#endif
