/* The socket pump: receive a batch, feed each datagram to the engine it is
 * for, send what the engines produce, for a bounded time, never waiting. */
#ifndef UDPXFER_HOST_PUMP_H
#define UDPXFER_HOST_PUMP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/addr.h"
#include "engine/wire.h"
#include "net.h"

/* Feed one datagram. Returns 1 to hand it back: the pump keeps it, and the
 * rest of its batch, for the next call. */
typedef int (*ux_input_fn)(void *eng, uint64_t now, const uint8_t *pkt, size_t len, const struct ux_addr *from);
/* The next datagram into BUF, or 0. TAIL: NULL (everything in BUF) or
 * where an engine may say its payload stays in lent memory. */
typedef size_t (*ux_output_fn)(void *eng, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to,
                               struct ux_tail *tail);

/* An engine on a socket. */
struct ux_endpoint {
    void *eng;
    ux_input_fn in;
    ux_output_fn out;
    uint64_t (*deadline)(void *eng); /* when it must run again (UINT64_MAX: no need) */
    uint64_t xid; /* the transfer id its datagrams carry; 0: every datagram no other takes */
    /* One of its datagrams to TO came back undeliverable (UX_IO_ERRORS); may be NULL. */
    void (*bounced)(void *eng, uint64_t now, const struct ux_addr *to);
};

/* Receive, feed, send: a bounded number of rounds and about 5 ms at most.
 * Datagrams go to the endpoint whose xid they carry (bytes 8-15 of the
 * header); each round every endpoint may send, in turn from *RR. Datagrams
 * handed back stay in IO (ux_io_held) and are fed first next time. */
void ux_pump_many(struct ux_io *io, struct ux_endpoint *eps, int n, int *rr);
/* One engine that takes every datagram. */
void ux_pump(struct ux_io *io, void *eng, ux_input_fn in, ux_output_fn out);

#endif
