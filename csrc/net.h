/* UDP sockets and batched datagram I/O (recvmmsg/sendmmsg). */
#ifndef UDPXFER_NET_H
#define UDPXFER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

#define UX_BATCH 64

struct ux_io {
    int fd;
    size_t cap;                 /* largest datagram */
    uint8_t *rbuf, *sbuf;       /* UX_BATCH * cap each */
    struct mmsghdr rmsg[UX_BATCH], smsg[UX_BATCH];
    struct iovec riov[UX_BATCH], siov[UX_BATCH];
    struct ux_addr raddr[UX_BATCH], saddr[UX_BATCH];
    int spend, soff;            /* queued datagrams, first unsent */
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, tx_blocked;
};

/* Open a non-blocking UDP socket bound to BIND (NULL: any IPv4 address,
 * ephemeral port); SHARED lets other sockets bind the same port. Returns 0
 * or an errno value, with *why set. */
int ux_io_open(struct ux_io *io, const struct ux_addr *bind, size_t cap, int shared, const char **why);
void ux_io_close(struct ux_io *io);
/* Receive up to UX_BATCH datagrams without blocking; returns the count. */
int ux_io_recv(struct ux_io *io);
/* Slot for the next outgoing datagram, or NULL if the batch is full. */
uint8_t *ux_io_slot(struct ux_io *io);
void ux_io_queue(struct ux_io *io, size_t len, const struct ux_addr *to);
/* Send what is queued. Returns 1 if everything went, 0 if the socket is
 * full (the rest stays queued), -1 on a hard error. */
int ux_io_flush(struct ux_io *io);
/* Fill OUT with broadcast addresses of up interfaces plus 255.255.255.255. */
int ux_broadcast_addresses(struct ux_addr *out, int max, int port);
/* Resolve HOST[:PORT] (numeric or a name). */
int ux_resolve(const char *spec, int default_port, struct ux_addr *out);

#endif
