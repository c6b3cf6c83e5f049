/* Datagrams a keyed server could not authenticate (a wrong key, or none),
 * counted per source host and reported at most once a minute per host and
 * a few times a minute in all: a wrong key shows in the server's log, and
 * a flood of forged datagrams cannot write that log. */
#ifndef UDPXFER_ENGINE_AUTHLOG_H
#define UDPXFER_ENGINE_AUTHLOG_H

#include <stdint.h>

#include "addr.h"

#define UX_AUTHLOG_HOSTS 64
#define UX_AUTHLOG_PERIOD_US 60000000ull /* a host is reported at most once per period */
#define UX_AUTHLOG_LINES 16              /* reports per period in all */

struct ux_authlog_host {
    struct ux_addr host;
    uint64_t seen_at, reported_at;
    uint32_t sealed, keyless; /* since the last report */
    int used, reported;
};

struct ux_authlog {
    struct ux_authlog_host h[UX_AUTHLOG_HOSTS];
    uint64_t period_at;
    unsigned lines;
};

/* What is due to be said of one host. */
struct ux_authlog_report {
    struct ux_addr host;
    uint32_t sealed;   /* datagrams sealed under another key */
    uint32_t keyless;  /* requests with no seal at all */
};

/* Count a datagram from FROM (KEYLESS: not sealed at all). Returns 1 with
 * *OUT when a report of FROM's host is due now. */
int ux_authlog_note(struct ux_authlog *l, const struct ux_addr *from, int keyless, uint64_t now,
                    struct ux_authlog_report *out);

#endif
