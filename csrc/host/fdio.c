#include "fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ux_datafd_take(struct ux_datafd *d, int fd)
{
    struct stat st;
    memset(d, 0, sizeof *d);
    d->fd = fd;
    if (fd < 0 || fstat(fd, &st))
        return;
    /* Files, /dev/null and the like are always ready and epoll refuses them. */
    d->regular = !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !isatty(fd);
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        d->saved_flags = fcntl(fd, F_GETFL);
        if (d->saved_flags >= 0 && !(d->saved_flags & O_NONBLOCK) &&
            fcntl(fd, F_SETFL, d->saved_flags | O_NONBLOCK) == 0)
            d->nonblock_set = 1;
    }
}

void ux_datafd_release(struct ux_datafd *d)
{
    if (d->nonblock_set)
        fcntl(d->fd, F_SETFL, d->saved_flags);
    d->nonblock_set = 0;
}

/* A blocking descriptor that is not a regular file: ask poll first. */
static int ready(const struct ux_datafd *d, short ev)
{
    if (d->regular || d->nonblock_set)
        return 1;
    struct pollfd p = {.fd = d->fd, .events = ev};
    return poll(&p, 1, 0) > 0;
}

ssize_t ux_datafd_read(struct ux_datafd *d, void *buf, size_t n)
{
    if (!ready(d, POLLIN))
        return -EAGAIN;
    ssize_t r;
    do
        r = read(d->fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? r : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* SIGPIPE is blocked around the write and a pending one taken back, so a
 * closed reader is an EPIPE error, not the death of the process. */
ssize_t ux_datafd_write(struct ux_datafd *d, const void *buf, size_t n)
{
    if (!ready(d, POLLOUT))
        return -EAGAIN;
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r;
    do
        r = write(d->fd, buf, n);
    while (r < 0 && errno == EINTR);
    int err = r < 0 ? errno : 0;
    if (err == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r >= 0 ? r : err == EWOULDBLOCK ? -EAGAIN : -err;
}
