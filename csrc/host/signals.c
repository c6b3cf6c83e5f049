#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t caught;
static int holds;
static sigset_t saved_mask, wait_mask;
static struct sigaction saved_int, saved_term;

static void note(int sig) { caught = sig; }

int ux_signals_hold(void)
{
    if (holds++)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note;
    sigemptyset(&sa.sa_mask);
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGINT);
    sigaddset(&both, SIGTERM);
    caught = 0;
    if (sigprocmask(SIG_BLOCK, &both, &saved_mask) || sigaction(SIGINT, &sa, &saved_int) ||
        sigaction(SIGTERM, &sa, &saved_term)) {
        int err = errno;
        holds = 0;
        return err;
    }
    wait_mask = saved_mask;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    return 0;
}

void ux_signals_release(void)
{
    if (holds == 0 || --holds)
        return;
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

int ux_signals_caught(void) { return caught; }

int ux_signals_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout)
{
    int r = ppoll(fds, n, timeout, holds ? &wait_mask : NULL);
    return r >= 0 ? r : errno == EINTR ? 0 : -errno;
}

void ux_signals_die(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
}
