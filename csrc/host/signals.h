/* SIGINT and SIGTERM turned into something a loop asks about: while they
 * are held, their handler only notes them and they stay blocked except
 * while the loop waits (ux_signals_poll), so none slips between a loop's
 * question and its wait, and a step is never interrupted. */
#ifndef UDPXFER_HOST_SIGNALS_H
#define UDPXFER_HOST_SIGNALS_H

#include <poll.h>
#include <time.h>

/* Hold them (nested holds count). Returns 0 or an errno value. */
int ux_signals_hold(void);
/* End one hold; the last puts back the handlers and mask found. */
void ux_signals_release(void);
/* The signal noted since the first hold (SIGINT, SIGTERM), or 0. */
int ux_signals_caught(void);
/* ppoll, taking a held signal while it waits. Returns how many are
 * ready (0 on timeout or a signal), or -errno. */
int ux_signals_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout);
/* End the process as SIG would by default (status 128 + SIG to a shell). */
void ux_signals_die(int sig) __attribute__((noreturn));

#endif
