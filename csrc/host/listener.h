/* A file server's sockets: the one it answers from, and, when it is bound
 * to one IPv4 address, a second that hears the broadcasts sent to that
 * address's subnet (a socket bound to a unicast address never sees them).
 * Both sit in one epoll set, so the server keeps one descriptor. */
#ifndef UDPXFER_HOST_LISTENER_H
#define UDPXFER_HOST_LISTENER_H

#include "net.h"
#include "poller.h"
#include "pump.h"

struct ux_listener {
    struct ux_io io;      /* answers go out from here */
    struct ux_io *bcast;  /* receive only; NULL unless bound to one IPv4 address */
    struct ux_poller poller;
};

/* Bind to BIND (NULL: every address), on device DEV if not NULL (no
 * traffic through other interfaces, broadcasts included). CAP: largest
 * datagram. Returns 0 or an errno value, with *why set. */
int ux_listener_open(struct ux_listener *l, const struct ux_addr *bind, const char *dev, size_t cap,
                     const char **why);
void ux_listener_close(struct ux_listener *l);
/* Feed the broadcasts heard, then pump the main socket (see ux_pump). */
void ux_listener_pump(struct ux_listener *l, void *eng, ux_input_fn in, ux_output_fn out);
/* Also wake the listener's descriptor when FD is readable. Returns 0 or
 * an errno value. */
int ux_listener_also(struct ux_listener *l, int fd);
/* The descriptor to wait on for readability, for the listener's life. */
static inline int ux_listener_fd(const struct ux_listener *l) { return l->poller.epfd; }

#endif
