#include "net.h"

#include "engine/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int ux_io_open(struct ux_io *io, const struct ux_addr *bind_to, size_t cap, int flags, const char **why)
{
    return ux_io_open_dev(io, bind_to, NULL, cap, flags, why);
}

int ux_io_open_dev(struct ux_io *io, const struct ux_addr *bind_to, const char *dev, size_t cap, int flags,
                   const char **why)
{
    memset(io, 0, sizeof *io);
    io->fd = -1;
    io->cap = cap;
    struct ux_addr any;
    int fd = -1;
    if (!bind_to) {
        /* Any address, IPv6 and IPv4 on one socket where the host has IPv6. */
        memset(&any, 0, sizeof any);
        any.ss.ss_family = AF_INET6;
        any.len = sizeof(struct sockaddr_in6);
        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            any.ss.ss_family = AF_INET;
            any.len = sizeof(struct sockaddr_in);
        }
        bind_to = &any;
    }
    if (fd < 0)
        fd = socket(bind_to->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && errno == EAFNOSUPPORT && bind_to->ss.ss_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&bind_to->ss)->sin6_addr)) {
        /* "::" on a host without IPv6: any IPv4 address, the same port */
        memset(&any, 0, sizeof any);
        struct sockaddr_in *v4 = (struct sockaddr_in *)&any.ss;
        v4->sin_family = AF_INET;
        v4->sin_port = ((const struct sockaddr_in6 *)&bind_to->ss)->sin6_port;
        any.len = sizeof *v4;
        bind_to = &any;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
        *why = "cannot create a UDP socket";
        return errno;
    }
    io->fd = fd;
    int one = 1, zero = 0;
    if (flags & UX_IO_SHARED) /* servers bound to addresses of one subnet each hear its broadcasts */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    if (dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev))) {
        int e = errno;
        *why = e == ENODEV ? "no such interface" : "cannot bind the socket to the interface";
        ux_io_close(io);
        return e;
    }
    if (bind_to->ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        io->dual = IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&bind_to->ss)->sin6_addr);
    }
    if (flags & UX_IO_ERRORS) {
        setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
        if (bind_to->ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
        io->errors = 1;
    }
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    /* Segmentation offload: one pass through the stack for up to 64
     * datagrams. Probed here; sending falls back if a route refuses it. */
    io->gso = setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
    io->gro = (flags & UX_IO_GRO) && setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
    io->rslot = io->gro ? UX_GRO_BUF : cap;
    io->sarena = UX_BATCH * cap > (2u << 20) ? UX_BATCH * cap : (2u << 20);
    io->rbuf = malloc(UX_BATCH * io->rslot);
    io->sbuf = malloc(io->sarena);
    if (!io->rbuf || !io->sbuf) {
        *why = "out of memory";
        ux_io_close(io);
        return ENOMEM;
    }
    if (bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len)) {
        int e = errno;
        *why = "cannot bind the UDP socket";
        ux_io_close(io);
        return e;
    }
    for (int i = 0; i < UX_BATCH; i++) {
        io->riov[i].iov_base = io->rbuf + (size_t)i * io->rslot;
        io->riov[i].iov_len = io->rslot;
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

int ux_io_port(const struct ux_io *io)
{
    struct ux_addr a = {.len = sizeof a.ss};
    if (getsockname(io->fd, (struct sockaddr *)&a.ss, &a.len))
        return -1;
    in_port_t port = a.ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a.ss)->sin6_port
                                                 : ((struct sockaddr_in *)&a.ss)->sin_port;
    return ntohs(port);
}

static int gro_size(struct msghdr *h)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            return v;
        }
    return 0;
}

/* An IPv4 peer seen through a dual-stack socket (::ffff:a.b.c.d) is an
 * IPv4 address to the engines, as it would be on an IPv4 socket. */
static void unmap_v4(struct ux_addr *a)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
    if (a->ss.ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};
    memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memset(&a->ss, 0, sizeof a->ss);
    memcpy(&a->ss, &s4, sizeof s4);
    a->len = sizeof s4;
}

/* The other way, to send to an IPv4 peer from a dual-stack socket. */
static void map_v4(const struct ux_addr *a, struct sockaddr_in6 *out)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
    memset(out, 0, sizeof *out);
    out->sin6_family = AF_INET6;
    out->sin6_port = s4->sin_port;
    out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&out->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
}

/* Take what the error queue holds: each entry is a datagram we sent (its
 * header is enough) to an address that refused it. */
static void take_bounces(struct ux_io *io)
{
    for (int tries = 0; tries < 64; tries++) {
        uint8_t head[UX_HDR_LEN];
        union {
            char buf[512];
            struct cmsghdr align;
        } ctl;
        struct ux_addr to;
        memset(&to, 0, sizeof to);
        struct iovec iov = {head, sizeof head};
        struct msghdr h = {.msg_name = &to.ss, .msg_namelen = sizeof to.ss, .msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(io->fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0)
            return;
        int refused = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
            if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
                struct sock_extended_err ee;
                memcpy(&ee, CMSG_DATA(c), sizeof ee);
                refused = ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6;
            }
        if (!refused || io->nbounce == UX_BOUNCES)
            continue;
        to.len = h.msg_namelen;
        if (io->dual)
            unmap_v4(&to);
        io->bounce[io->nbounce++] = (struct ux_bounce){to, ux_wire_xid(head, (size_t)n)};
    }
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
        if (io->gro) {
            h->msg_control = io->rctl[i].buf;
            h->msg_controllen = sizeof io->rctl[i].buf;
        }
    }
    int n = recvmmsg(io->fd, io->rmsg, UX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && io->errors && errno != EAGAIN && errno != EINTR) {
        take_bounces(io); /* the socket reported a refusal: it is in the error queue */
        n = recvmmsg(io->fd, io->rmsg, UX_BATCH, MSG_DONTWAIT, NULL);
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &io->rmsg[i].msg_hdr;
        uint32_t len = io->rmsg[i].msg_len;
        io->raddr[i].len = h->msg_namelen;
        if (io->dual)
            unmap_v4(&io->raddr[i]);
        io->rx_bytes += len;
        /* A truncated datagram gets length 0: the decoder refuses it. */
        if (h->msg_flags & MSG_TRUNC)
            len = 0;
        uint32_t seg = io->gro ? (uint32_t)gro_size(h) : 0;
        if (!seg || seg > len)
            seg = len;
        uint32_t off = 0;
        do { /* once for an empty datagram */
            io->rq[k].p = (uint8_t *)io->riov[i].iov_base + off;
            io->rq[k].len = len - off < seg ? len - off : seg;
            io->rq[k].from = (uint16_t)i;
            k++;
            off += seg;
        } while (off < len);
    }
    io->rx_packets += (uint64_t)k;
    return k;
}

uint8_t *ux_io_slot(struct ux_io *io)
{
    /* Bytes lent by the caller count too: a round stays about one arena. */
    if (io->spend >= UX_SQUEUE || io->sfill + io->cap > io->sarena || io->sqbytes + io->cap > io->sarena)
        return NULL;
    return io->sbuf + io->sfill;
}

void ux_io_queue(struct ux_io *io, size_t len, const uint8_t *tail, size_t tail_len, const struct ux_addr *to)
{
    int i = io->spend++;
    io->soffs[i] = (uint32_t)io->sfill;
    io->shead[i] = (uint32_t)len;
    io->slen[i] = (uint32_t)(len + tail_len);
    io->stail[i] = tail_len ? tail : NULL;
    io->saddr[i] = *to;
    io->sfill += len;
    io->sqbytes += len + tail_len;
}

/* Queued datagrams from FIRST that can go as one GSO send: same peer,
 * same length (the last may be shorter), 64 at most, under 64 KiB. */
static int gso_run(const struct ux_io *io, int first)
{
    if (!io->gso)
        return 1;
    uint32_t seg = io->slen[first];
    size_t total = seg;
    int n = 1;
    while (first + n < io->spend && n < UX_SEGS && io->slen[first + n - 1] == seg &&
           io->slen[first + n] <= seg && total + io->slen[first + n] <= 65000 &&
           ux_addr_equal(&io->saddr[first + n], &io->saddr[first])) {
        total += io->slen[first + n];
        n++;
    }
    return n;
}

/* The iovecs of datagrams FIRST..FIRST+N-1, from *NIOV on: heads in the
 * arena (neighbours merged), tails where they were lent. */
static struct iovec *gather(struct ux_io *io, int first, int n, int *niov)
{
    struct iovec *v = &io->siov[*niov];
    int k = 0;
    for (int j = first; j < first + n; j++) {
        uint8_t *head = io->sbuf + io->soffs[j];
        if (k && !io->stail[j - 1] && (uint8_t *)v[k - 1].iov_base + v[k - 1].iov_len == head)
            v[k - 1].iov_len += io->shead[j];
        else
            v[k++] = (struct iovec){head, io->shead[j]};
        if (io->stail[j])
            v[k++] = (struct iovec){(void *)io->stail[j], io->slen[j] - io->shead[j]};
    }
    *niov += k;
    return v;
}

/* Messages for sendmmsg from the unsent queue; COUNTS gets datagrams each. */
static int build_batch(struct ux_io *io, int counts[UX_BATCH])
{
    int m = 0, niov = 0;
    for (int i = io->soff; i < io->spend && m < UX_BATCH; m++) {
        int n = gso_run(io, i);
        struct msghdr *h = &io->smsg[m].msg_hdr;
        memset(h, 0, sizeof *h);
        int before = niov;
        h->msg_iov = gather(io, i, n, &niov);
        h->msg_iovlen = (size_t)(niov - before);
        if (io->dual && io->saddr[i].ss.ss_family == AF_INET) {
            map_v4(&io->saddr[i], &io->smapped[m]);
            h->msg_name = &io->smapped[m];
            h->msg_namelen = sizeof io->smapped[m];
        } else {
            h->msg_name = &io->saddr[i].ss;
            h->msg_namelen = io->saddr[i].len;
        }
        if (n > 1) {
            uint16_t seg = (uint16_t)io->slen[i];
            h->msg_control = io->sctl[m].buf;
            h->msg_controllen = CMSG_SPACE(sizeof seg);
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = IPPROTO_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof seg);
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        counts[m] = n;
        i += n;
    }
    return m;
}

int ux_io_flush(struct ux_io *io)
{
    int counts[UX_BATCH];
    while (io->soff < io->spend) {
        int m = build_batch(io, counts);
        int n = sendmmsg(io->fd, io->smsg, (unsigned)m, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == ENOBUFS) {
                io->tx_blocked++;
                return 0;
            }
            if (errno == EINTR)
                continue;
            if (counts[0] > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
                io->gso = 0; /* this path cannot segment: send one by one from now on */
                continue;
            }
            /* Unreachable or refused peer: drop that message, keep going. */
            io->soff += counts[0];
            continue;
        }
        for (int i = 0; i < n; i++) {
            for (int j = io->soff; j < io->soff + counts[i]; j++)
                io->tx_bytes += io->slen[j];
            io->tx_packets += (uint64_t)counts[i];
            io->tx_gso += counts[i] > 1;
            io->soff += counts[i];
        }
    }
    io->soff = io->spend = 0;
    io->sfill = io->sqbytes = 0;
    return 1;
}

int ux_directed_broadcast(const struct ifaddrs *i, struct in_addr *out)
{
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
        return -1;
    struct in_addr own = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
    if ((i->ifa_flags & IFF_BROADCAST) && i->ifa_broadaddr) {
        /* an address added without `brd` reports its own address (or none) here */
        struct in_addr b = ((const struct sockaddr_in *)i->ifa_broadaddr)->sin_addr;
        if (b.s_addr != own.s_addr && b.s_addr != htonl(INADDR_ANY)) {
            *out = b;
            return 0;
        }
    }
    if (!i->ifa_netmask)
        return -1;
    uint32_t mask = ntohl(((const struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
    if (~mask <= 1)
        return -1; /* a /31 or /32 has no broadcast address */
    out->s_addr = htonl(ntohl(own.s_addr) | ~mask);
    return 0;
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
        struct in_addr b;
        if (!(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_BROADCAST) || ux_directed_broadcast(i, &b))
            continue;
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = b};
        struct ux_addr *a = &out[n++];
        memset(a, 0, sizeof *a);
        memcpy(&a->ss, &sin, sizeof sin);
        a->len = sizeof sin;
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *res;
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

int ux_path_mtu(const struct ux_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, mtu = -1;
    socklen_t len = sizeof mtu;
    int level = a->ss.ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    int opt = a->ss.ss_family == AF_INET6 ? IPV6_MTU : IP_MTU;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one); /* broadcast targets have routes too */
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) || getsockopt(fd, level, opt, &mtu, &len))
        mtu = -1;
    close(fd);
    return mtu;
}
