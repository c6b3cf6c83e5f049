/* The host's randomness: OpenSSL's CSPRNG, handed to engines as their
 * ux_rng (engine/rng.h). */
#ifndef UDPXFER_HOST_RANDOM_H
#define UDPXFER_HOST_RANDOM_H

#include <stddef.h>

#include "engine/rng.h"

int ux_host_random(void *ud, void *buf, size_t n);

static inline struct ux_rng ux_host_rng(void) { return (struct ux_rng){ux_host_random, NULL}; }

#endif
