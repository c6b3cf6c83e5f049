/* UDP sockets and batched datagram I/O (recvmmsg/sendmmsg). */
#ifndef UDPXFER_NET_H
#define UDPXFER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine/addr.h"

#define UX_BATCH 64        /* messages per recvmmsg/sendmmsg */
#define UX_SEGS 64         /* datagrams per GSO send or GRO receive, at most */
#define UX_SQUEUE 1024     /* datagrams queued for sending */
#define UX_GRO_BUF 65536

enum { UX_IO_SHARED = 1, /* other sockets may bind the address too (servers' broadcast sockets) */
       UX_IO_GRO = 2,     /* receive coalesced datagrams (bulk receivers) */
       UX_IO_ERRORS = 4 }; /* hear of datagrams the network refused (ICMP unreachable) */

/* A datagram we sent that came back undeliverable. */
struct ux_bounce {
    struct ux_addr to;   /* where it went */
    uint64_t xid;        /* the transfer id in its header (0: not ours) */
};
#define UX_BOUNCES 16

struct ux_dgram {
    uint8_t *p;
    uint32_t len;
    uint16_t from;              /* index into raddr */
};

struct ux_io {
    int fd;
    int gso, gro;               /* the kernel takes UDP_SEGMENT / gives UDP_GRO */
    int dual;                   /* an IPv6 socket that also carries IPv4 (mapped addresses) */
    struct sockaddr_in6 smapped[UX_BATCH]; /* IPv4 destinations, mapped, for a dual socket */
    size_t cap;                 /* largest datagram */
    size_t rslot;               /* receive buffer per message */
    uint8_t *rbuf;              /* UX_BATCH * rslot */
    uint8_t *sbuf;              /* queued datagrams, packed back to back */
    size_t sarena, sfill;
    struct mmsghdr rmsg[UX_BATCH], smsg[UX_BATCH];
    struct iovec riov[UX_BATCH];
    struct iovec siov[2 * UX_SQUEUE]; /* a head and a lent tail per datagram */
    size_t sqbytes;                   /* queued, tails included */
    union {
        char buf[64];
        struct cmsghdr align;
    } rctl[UX_BATCH], sctl[UX_BATCH];
    struct ux_addr raddr[UX_BATCH];
    struct ux_dgram rq[UX_BATCH * UX_SEGS];  /* what the last ux_io_recv got */
    int rnext, rheld;           /* rq[rnext..rheld) were handed back, not taken yet */
    uint32_t soffs[UX_SQUEUE], slen[UX_SQUEUE], shead[UX_SQUEUE]; /* slen: whole datagram */
    const uint8_t *stail[UX_SQUEUE];
    struct ux_addr saddr[UX_SQUEUE];
    int spend, soff;            /* queued datagrams, first unsent */
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, tx_blocked, tx_gso;
    int errors;                 /* UX_IO_ERRORS: the error queue is on */
    struct ux_bounce bounce[UX_BOUNCES]; /* undeliverable since the last ux_io_recv took them */
    int nbounce;
};

/* Open a non-blocking UDP socket bound to BIND (NULL: any address, IPv6
 * and IPv4 on one socket where the host has IPv6, an ephemeral port;
 * "::" is dual-stack too), FLAGS from UX_IO_*. Sends use UDP GSO where the kernel
 * has it. Returns 0 or an errno value, with *why set. */
int ux_io_open(struct ux_io *io, const struct ux_addr *bind, size_t cap, int flags, const char **why);
/* The same, on network device DEV only (SO_BINDTODEVICE) unless DEV is NULL. */
int ux_io_open_dev(struct ux_io *io, const struct ux_addr *bind, const char *dev, size_t cap, int flags,
                   const char **why);
void ux_io_close(struct ux_io *io);
/* The socket's local UDP port, or -1 if it cannot be read. */
int ux_io_port(const struct ux_io *io);
/* Receive without blocking; returns the number of datagrams in io->rq
 * (coalesced ones already split). With UX_IO_ERRORS, datagrams the network
 * refused are in io->bounce meanwhile (the caller takes them: nbounce = 0). */
int ux_io_recv(struct ux_io *io);
/* Datagrams handed back by the engine wait in io->rq: receive nothing more until they are taken. */
static inline int ux_io_held(const struct ux_io *io) { return io->rnext < io->rheld; }
/* Slot for the next outgoing datagram, or NULL if the batch is full. */
uint8_t *ux_io_slot(struct ux_io *io);
/* Queue the datagram written into the slot: LEN bytes there, then TAIL_LEN
 * bytes at TAIL (not copied: they must stay put until flushed). */
void ux_io_queue(struct ux_io *io, size_t len, const uint8_t *tail, size_t tail_len, const struct ux_addr *to);
/* Send what is queued. Returns 1 if everything went, 0 if the socket is
 * full (the rest stays queued), -1 on a hard error. */
int ux_io_flush(struct ux_io *io);
/* Fill OUT with broadcast addresses of up interfaces plus 255.255.255.255. */
int ux_broadcast_addresses(struct ux_addr *out, int max, int port);
/* The directed broadcast address of interface address I (IPv4): its
 * `brd`, or computed from its netmask when it has none (loopback, or an
 * address added without one). Returns 0, or -1 for /31, /32 or not IPv4. */
struct ifaddrs;
struct in_addr;
int ux_directed_broadcast(const struct ifaddrs *i, struct in_addr *out);
/* Resolve HOST[:PORT] (numeric or a name). */
int ux_resolve(const char *spec, int default_port, struct ux_addr *out);
/* The MTU of the route to A (the kernel's, from a connected socket; no
 * datagram is sent), or -1. */
int ux_path_mtu(const struct ux_addr *a);

#endif
