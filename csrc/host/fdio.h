/* The stream mode's local side: reading stdin and writing stdout without
 * blocking the loop. */
#ifndef UDPXFER_FDIO_H
#define UDPXFER_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ux_datafd {
    int fd;
    int saved_flags;   /* to restore on close, if we changed them */
    int nonblock_set;
    int regular;       /* not a pipe, socket or terminal: always ready, not pollable */
};

/* Take FD for stream data: pipes and sockets go non-blocking (restored by
 * ux_datafd_release), terminals stay blocking and are polled before use. */
void ux_datafd_take(struct ux_datafd *d, int fd);
void ux_datafd_release(struct ux_datafd *d);
/* Read or write without blocking. Returns bytes moved, 0 at end of input,
 * -EAGAIN when not ready, or another -errno. Writes never raise SIGPIPE. */
ssize_t ux_datafd_read(struct ux_datafd *d, void *buf, size_t n);
ssize_t ux_datafd_write(struct ux_datafd *d, const void *buf, size_t n);

#endif
