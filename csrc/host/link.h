/* A client socket shared by many transfers: datagrams go to the engine
 * whose transfer id they carry, every engine sends in turn, and one epoll
 * set (the link's pollfd, for its whole life) covers the socket and the
 * descriptors its engines wait on (an output file's eventfd). */
#ifndef UDPXFER_HOST_LINK_H
#define UDPXFER_HOST_LINK_H

#include "net.h"
#include "poller.h"
#include "pump.h"

struct ux_link {
    struct ux_io io;
    struct ux_poller poller;
    struct ux_endpoint *eps;
    int n, cap, rr;
};

/* A socket bound to BIND (NULL: any address of FAMILY, an ephemeral port).
 * Returns 0 or an errno value, with *why. */
int ux_link_open(struct ux_link *l, const struct ux_addr *bind, const char **why);
void ux_link_close(struct ux_link *l);
/* Returns 0 or ENOMEM. */
int ux_link_attach(struct ux_link *l, const struct ux_endpoint *ep);
void ux_link_detach(struct ux_link *l, const void *eng);
/* Pump the socket for every attached engine (ux_pump_many), then watch the
 * socket for what it needs next. */
void ux_link_pump(struct ux_link *l);
/* The earliest deadline of the attached engines (0 while datagrams wait
 * to be sent, UINT64_MAX for none). */
uint64_t ux_link_deadline(const struct ux_link *l);
/* The epoll descriptor: readable when the socket or a watched descriptor is. */
static inline int ux_link_fd(const struct ux_link *l) { return l->poller.epfd; }

#endif
