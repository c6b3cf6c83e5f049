#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "clock.h"

/* The directed broadcast address of the subnet holding the IPv4 address A
 * (the interface's own, or computed from its netmask: loopback has none),
 * with A's port. Returns 0, or -1 if A is not an address of this host
 * with a broadcast address. */
static int broadcast_of(const struct ux_addr *a, struct ux_addr *out)
{
    if (a->ss.ss_family != AF_INET)
        return -1;
    const struct sockaddr_in *want = (const struct sockaddr_in *)&a->ss;
    if (want->sin_addr.s_addr == htonl(INADDR_ANY))
        return -1;
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs))
        return -1;
    int found = -1;
    for (struct ifaddrs *i = ifs; i && found; i = i->ifa_next) {
        struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = want->sin_port};
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != want->sin_addr.s_addr)
            continue;
        if (ux_directed_broadcast(i, &b.sin_addr))
            break;
        memset(out, 0, sizeof *out);
        memcpy(&out->ss, &b, sizeof b);
        out->len = sizeof b;
        found = 0;
    }
    freeifaddrs(ifs);
    return found;
}

static int open_bcast(struct ux_listener *l, const struct ux_addr *bind, const char *dev, size_t cap,
                      const char **why)
{
    struct ux_addr b;
    if (broadcast_of(bind, &b))
        return 0; /* not a local IPv4 address with a subnet: the main bind decides */
    struct sockaddr_in bound; /* the port the main socket got, if it asked for any */
    socklen_t blen = sizeof bound;
    if (getsockname(l->io.fd, (struct sockaddr *)&bound, &blen) == 0)
        ((struct sockaddr_in *)&b.ss)->sin_port = bound.sin_port;
    l->bcast = malloc(sizeof *l->bcast);
    if (!l->bcast) {
        *why = "out of memory";
        return ENOMEM;
    }
    int err = ux_io_open_dev(l->bcast, &b, dev, cap, UX_IO_SHARED, why);
    if (err) {
        free(l->bcast);
        l->bcast = NULL;
        return err;
    }
    return ux_poller_watch(&l->poller, l->bcast->fd, EPOLLIN);
}

int ux_listener_open(struct ux_listener *l, const struct ux_addr *bind, const char *dev, size_t cap,
                     const char **why)
{
    memset(l, 0, sizeof *l);
    l->io.fd = -1;
    int err = ux_poller_open(&l->poller);
    if (err) {
        *why = "cannot create an epoll set";
        return err;
    }
    err = ux_io_open_dev(&l->io, bind, dev, cap, 0, why); /* one server per port: a second is told 'inuse' */
    if (!err)
        err = ux_poller_watch(&l->poller, l->io.fd, EPOLLIN);
    if (!err && bind)
        err = open_bcast(l, bind, dev, cap, why);
    if (err)
        ux_listener_close(l);
    return err;
}

void ux_listener_close(struct ux_listener *l)
{
    ux_poller_close(&l->poller);
    ux_io_close(&l->io);
    if (l->bcast) {
        ux_io_close(l->bcast);
        free(l->bcast);
        l->bcast = NULL;
    }
}

void ux_listener_pump(struct ux_listener *l, void *eng, ux_input_fn in, ux_output_fn out)
{
    if (l->bcast) {
        /* requests only, a handful: each is fed, none is handed back */
        int n = ux_io_recv(l->bcast);
        uint64_t now = ux_now_us();
        for (int i = 0; i < n; i++)
            in(eng, now, l->bcast->rq[i].p, l->bcast->rq[i].len, &l->bcast->raddr[l->bcast->rq[i].from]);
        l->bcast->rnext = l->bcast->rheld = 0;
    }
    ux_pump(&l->io, eng, in, out);
    ux_poller_watch(&l->poller, l->io.fd, EPOLLIN | (l->io.spend ? EPOLLOUT : 0));
}

int ux_listener_also(struct ux_listener *l, int fd) { return ux_poller_watch(&l->poller, fd, EPOLLIN); }
