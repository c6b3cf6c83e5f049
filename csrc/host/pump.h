/* The socket pump: receive a batch, feed it to an engine, send what the
 * engine produces, for a bounded time, never waiting. */
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

/* Receive, feed, send: a bounded number of rounds and about 5 ms at most.
 * Datagrams handed back stay in IO (ux_io_held) and are fed first next time. */
void ux_pump(struct ux_io *io, void *eng, ux_input_fn in, ux_output_fn out);

#endif
