#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

int ux_poller_open(struct ux_poller *p)
{
    p->w = NULL;
    p->n = p->cap = 0;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    return p->epfd < 0 ? errno : 0;
}

void ux_poller_close(struct ux_poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
    free(p->w);
    p->w = NULL;
    p->n = p->cap = 0;
}

static struct ux_watch *find(struct ux_poller *p, int fd)
{
    for (int i = 0; i < p->n; i++)
        if (p->w[i].fd == fd)
            return &p->w[i];
    return NULL;
}

int ux_poller_watch(struct ux_poller *p, int fd, uint32_t events)
{
    if (p->epfd < 0 || fd < 0)
        return EBADF;
    struct ux_watch *w = find(p, fd);
    if (w ? w->want == events : !events)
        return 0;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (!events) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev); /* it may be closed already: gone anyway */
        *w = p->w[--p->n];
        return 0;
    }
    if (w) {
        if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev))
            return errno;
        w->want = events;
        return 0;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 4;
        struct ux_watch *nw = realloc(p->w, (size_t)cap * sizeof *nw);
        if (!nw)
            return ENOMEM;
        p->w = nw;
        p->cap = cap;
    }
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev))
        return errno;
    p->w[p->n++] = (struct ux_watch){fd, events};
    return 0;
}
