/* One pollable descriptor for an object's whole life: an epoll set it owns,
 * into which it adds and removes its socket, its output file's eventfd and
 * its stream descriptors. Any event loop waits on that one descriptor for
 * readability (cqueues, luv, poll). */
#ifndef UDPXFER_HOST_POLLER_H
#define UDPXFER_HOST_POLLER_H

#include <stdint.h>

struct ux_watch {
    int fd;
    uint32_t want; /* registered interest (EPOLLIN, EPOLLOUT) */
};

struct ux_poller {
    int epfd;
    struct ux_watch *w;
    int n, cap;
};

/* Returns 0 or an errno value. */
int ux_poller_open(struct ux_poller *p);
void ux_poller_close(struct ux_poller *p);
/* Watch FD for EVENTS (EPOLLIN/EPOLLOUT); 0 stops watching it (it is then
 * out of the set, so a hung-up pipe cannot wake the set for ever).
 * Returns 0 or an errno value. */
int ux_poller_watch(struct ux_poller *p, int fd, uint32_t events);

#endif
