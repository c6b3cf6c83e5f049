/* Randomness reaches the engines through their configuration, as ngtcp2's
 * rand callback does: the host passes a cryptographic source, a simulation
 * a seeded one, so simulated runs repeat exactly. */
#ifndef UDPXFER_RNG_H
#define UDPXFER_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Fill BUF with N random bytes. Returns 0, or -1 if no randomness is to be had. */
typedef int (*ux_rand_fn)(void *ud, void *buf, size_t n);

struct ux_rng {
    ux_rand_fn fill;
    void *ud;
};

static inline int ux_rng_fill(const struct ux_rng *r, void *buf, size_t n)
{
    return r->fill ? r->fill(r->ud, buf, n) : -1;
}

/* A deterministic source for simulations: splitmix64 over the uint64_t
 * state UD points at. Not for keys or cookies on a real network. */
int ux_rng_seeded(void *ud, void *buf, size_t n);

#endif
