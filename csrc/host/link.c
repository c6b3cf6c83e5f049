#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "engine/wire.h"

/* Room for the largest datagram any engine on the link may receive. */
#define LINK_CAP (UX_DATA_OVERHEAD + UX_MAX_CHUNK + UX_SEAL_MAX)

static void watch_socket(struct ux_link *l)
{
    ux_poller_watch(&l->poller, l->io.fd, EPOLLIN | (l->io.spend ? EPOLLOUT : 0));
}

int ux_link_open(struct ux_link *l, const struct ux_addr *bind, const char **why)
{
    memset(l, 0, sizeof *l);
    l->poller.epfd = -1;
    int err = ux_io_open(&l->io, bind, LINK_CAP, UX_IO_GRO | UX_IO_ERRORS, why);
    if (!err && (err = ux_poller_open(&l->poller)))
        *why = "cannot create an epoll set";
    if (!err && (err = ux_poller_watch(&l->poller, l->io.fd, EPOLLIN)))
        *why = "cannot watch the socket";
    if (err)
        ux_link_close(l);
    return err;
}

void ux_link_close(struct ux_link *l)
{
    ux_io_close(&l->io);
    ux_poller_close(&l->poller);
    free(l->eps);
    l->eps = NULL;
    l->n = l->cap = 0;
}

int ux_link_attach(struct ux_link *l, const struct ux_endpoint *ep)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        struct ux_endpoint *e = realloc(l->eps, (size_t)cap * sizeof *e);
        if (!e)
            return ENOMEM;
        l->eps = e;
        l->cap = cap;
    }
    l->eps[l->n++] = *ep;
    return 0;
}

void ux_link_detach(struct ux_link *l, const void *eng)
{
    for (int i = 0; i < l->n; i++)
        if (l->eps[i].eng == eng) {
            memmove(&l->eps[i], &l->eps[i + 1], (size_t)(l->n - i - 1) * sizeof *l->eps);
            l->n--;
            /* Held datagrams may be this engine's: they go to whoever takes them now. */
            if (l->rr >= l->n)
                l->rr = 0;
            return;
        }
}

void ux_link_pump(struct ux_link *l)
{
    ux_pump_many(&l->io, l->eps, l->n, &l->rr);
    watch_socket(l);
}

uint64_t ux_link_deadline(const struct ux_link *l)
{
    if (l->io.spend)
        return 0;
    uint64_t d = UINT64_MAX;
    for (int i = 0; i < l->n; i++) {
        uint64_t e = l->eps[i].deadline ? l->eps[i].deadline(l->eps[i].eng) : UINT64_MAX;
        d = e < d ? e : d;
    }
    return d;
}
