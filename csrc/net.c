#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOCKBUF (8 << 20)

static void set_buffer(int fd, int force, int plain)
{
    int v = SOCKBUF;
    /* FORCE passes rmem_max when we are privileged; otherwise take what we may. */
    if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof v))
        setsockopt(fd, SOL_SOCKET, plain, &v, sizeof v);
}

int ux_io_open(struct ux_io *io, const struct ux_addr *bind_to, size_t cap, int shared, const char **why)
{
    memset(io, 0, sizeof *io);
    io->fd = -1;
    io->cap = cap;
    struct ux_addr any;
    if (!bind_to) {
        memset(&any, 0, sizeof any);
        any.ss.ss_family = AF_INET;
        any.len = sizeof(struct sockaddr_in);
        bind_to = &any;
    }
    io->rbuf = malloc(UX_BATCH * cap);
    io->sbuf = malloc(UX_BATCH * cap);
    if (!io->rbuf || !io->sbuf) {
        *why = "out of memory";
        ux_io_close(io);
        return ENOMEM;
    }
    int fd = socket(bind_to->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = "cannot create a UDP socket";
        ux_io_close(io);
        return errno;
    }
    io->fd = fd;
    int one = 1, zero = 0;
    if (shared) /* file servers on one host share the port: each hears the broadcast */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    if (bind_to->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    if (bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len)) {
        int e = errno;
        *why = "cannot bind the UDP socket";
        ux_io_close(io);
        return e;
    }
    for (int i = 0; i < UX_BATCH; i++) {
        io->riov[i].iov_base = io->rbuf + (size_t)i * cap;
        io->riov[i].iov_len = cap;
        io->siov[i].iov_base = io->sbuf + (size_t)i * cap;
    }
    return 0;
}

void ux_io_close(struct ux_io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
    free(io->rbuf);
    free(io->sbuf);
    io->rbuf = io->sbuf = NULL;
}

int ux_io_recv(struct ux_io *io)
{
    for (int i = 0; i < UX_BATCH; i++) {
        struct msghdr *h = &io->rmsg[i].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &io->raddr[i].ss;
        h->msg_namelen = sizeof io->raddr[i].ss;
        h->msg_iov = &io->riov[i];
        h->msg_iovlen = 1;
    }
    int n = recvmmsg(io->fd, io->rmsg, UX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        io->raddr[i].len = io->rmsg[i].msg_hdr.msg_namelen;
        /* A truncated datagram is marked by a length past the buffer: the
         * decoder then refuses it. */
        if (io->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC)
            io->rmsg[i].msg_len = 0;
        io->rx_bytes += io->rmsg[i].msg_len;
    }
    io->rx_packets += (uint64_t)n;
    return n;
}

uint8_t *ux_io_slot(struct ux_io *io)
{
    return io->spend < UX_BATCH ? io->sbuf + (size_t)io->spend * io->cap : NULL;
}

void ux_io_queue(struct ux_io *io, size_t len, const struct ux_addr *to)
{
    int i = io->spend++;
    io->saddr[i] = *to;
    io->siov[i].iov_len = len;
    struct msghdr *h = &io->smsg[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &io->saddr[i].ss;
    h->msg_namelen = io->saddr[i].len;
    h->msg_iov = &io->siov[i];
    h->msg_iovlen = 1;
}

int ux_io_flush(struct ux_io *io)
{
    while (io->soff < io->spend) {
        int n = sendmmsg(io->fd, io->smsg + io->soff, (unsigned)(io->spend - io->soff), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == ENOBUFS) {
                io->tx_blocked++;
                return 0;
            }
            if (errno == EINTR)
                continue;
            /* Unreachable or refused peer: drop that one datagram, keep going. */
            io->soff++;
            continue;
        }
        for (int i = 0; i < n; i++)
            io->tx_bytes += io->siov[io->soff + i].iov_len;
        io->tx_packets += (uint64_t)n;
        io->soff += n;
    }
    io->soff = io->spend = 0;
    return 1;
}

int ux_broadcast_addresses(struct ux_addr *out, int max, int port)
{
    int n = 0;
    if (max > 0 && ux_addr_parse("255.255.255.255", port, &out[n]) == 0)
        n++;
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs))
        return n;
    for (i = ifs; i && n < max; i = i->ifa_next) {
        if (!i->ifa_broadaddr || !i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            !(i->ifa_flags & IFF_BROADCAST) || !(i->ifa_flags & IFF_UP))
            continue;
        struct ux_addr *a = &out[n++];
        memset(a, 0, sizeof *a);
        memcpy(&a->ss, i->ifa_broadaddr, sizeof(struct sockaddr_in));
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
        a->len = sizeof(struct sockaddr_in);
    }
    freeifaddrs(ifs);
    return n;
}

int ux_resolve(const char *spec, int default_port, struct ux_addr *out)
{
    if (ux_addr_parse(spec, default_port, out) == 0)
        return 0;
    char host[256];
    const char *colon = strrchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n >= sizeof host)
        return -1;
    memcpy(host, spec, n);
    host[n] = 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res))
        return -1;
    memset(out, 0, sizeof *out);
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    int port = default_port;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v < 1 || v > 65535)
            return -1;
        port = (int)v;
    }
    ((struct sockaddr_in *)&out->ss)->sin_port = htons((uint16_t)port);
    return 0;
}
