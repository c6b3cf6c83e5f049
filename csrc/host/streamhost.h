/* A stream sender or receiver on the host: the engine, its socket, the
 * data descriptor it reads or writes (stdin for a sender, stdout for a
 * receiver; optional) and one epoll set over both, so ux_streamhost_fd is
 * one descriptor any loop can wait on. Without a descriptor the
 * application moves the bytes with ux_streamhost_write/_finish and
 * ux_streamhost_peek/_consume. A sim stream has no socket and no epoll
 * set: datagrams go in and out through the endpoint, time is the caller's. */
#ifndef UDPXFER_HOST_STREAMHOST_H
#define UDPXFER_HOST_STREAMHOST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/addr.h"
#include "engine/errors.h"
#include "engine/stream.h"
#include "fdio.h"
#include "net.h"
#include "poller.h"
#include "pump.h"

/* What the binding decides: which end, its engine's configuration and the
 * host resources it gets. */
struct ux_streamhost_spec {
    int sender;              /* 1: a sender (send), 0: a receiver (recv) */
    int sim;                 /* no socket: the caller moves datagrams and time */
    int fd;                  /* the data descriptor, or -1 */
    int trace;               /* keep the engine's log lines (ux_streamhost_log) */
    uint64_t now;            /* the engine's start time */
    struct ux_ssend_cfg send; /* a sender's engine (its trace goes to the host's log) */
    struct ux_srecv_cfg recv; /* a receiver's engine (likewise) */
    struct ux_addr bind;     /* receiver with a socket: the address to listen on */
};

struct ux_streamhost {
    int sender, sim, has_fd;
    int eof_seen;            /* sender: the end of the bytes is known */
    struct ux_ssend s;
    struct ux_srecv r;
    struct ux_stream_common *c; /* &s.c or &r.c */
    struct ux_endpoint ep;   /* the engine as the pump (and a sim caller) drives it */
    struct ux_io io;
    struct ux_datafd data;
    struct ux_poller poller;
    char *log;               /* trace lines since the last ux_streamhost_log */
    size_t log_len;
    uint32_t log_lost;
};

/* One event from the engine, with what the binding reports about it, read
 * when it is taken. */
struct ux_streamhost_event {
    enum ux_stream_event_type type;
    struct ux_addr peer;     /* CONNECT: the peer, and the stream's id */
    uint64_t xid;
    enum ux_err fail;        /* FAILED: why */
    const char *message;
    uint64_t bytes;          /* COMPLETE, FINISHED: the stream's length, SHA-256 */
    const uint8_t *sha256;
    uint64_t elapsed_us;     /* and the time since it connected (or started) */
};

struct ux_streamhost_stats {
    int state;               /* enum ux_ssend_state or enum ux_srecv_state */
    struct ux_stream_stats st;
    uint64_t unauthentic;    /* datagrams that failed to open under the key */
    uint64_t srtt_us;        /* sender: the smoothed round trip and the window */
    double cwnd;
    uint64_t elapsed_us;     /* since the start, to the end if there was one */
};

/* Set up an end. Returns UX_OK, or UX_ERR_IO / UX_ERR_INUSE with WHY;
 * everything is released on failure. */
enum ux_err ux_streamhost_open(struct ux_streamhost *h, const struct ux_streamhost_spec *spec, char *why,
                               size_t why_len);
void ux_streamhost_close(struct ux_streamhost *h);
/* Fill from the descriptor, pump the socket, drain to the descriptor, then
 * watch for what is needed next. A sim stream has nothing to step. */
void ux_streamhost_step(struct ux_streamhost *h);
/* Fail the stream (UX_ERR_CLOSED, MSG) and send the peer its CLOSE now. */
void ux_streamhost_abort(struct ux_streamhost *h, const char *msg);
/* Returns 1 and fills EV while events wait, else 0. */
int ux_streamhost_next_event(struct ux_streamhost *h, struct ux_streamhost_event *ev);
/* The trace lines since the last call (LEN bytes, each ending in a
 * newline, valid until the engine runs again), or NULL for none. */
const char *ux_streamhost_log(struct ux_streamhost *h, size_t *len);
/* When the engine must run again (UINT64_MAX: no need). */
uint64_t ux_streamhost_deadline(const struct ux_streamhost *h);
/* Microseconds until a step is due: 0 while datagrams or an always-ready
 * descriptor wait, UINT64_MAX for no need. */
uint64_t ux_streamhost_timeout(struct ux_streamhost *h);
/* The epoll descriptor: readable when anything is ready (-1: sim). */
static inline int ux_streamhost_fd(const struct ux_streamhost *h) { return h->poller.epfd; }
/* The local UDP port, or -1 (sim, or it cannot be read). */
int ux_streamhost_port(const struct ux_streamhost *h);
void ux_streamhost_stats(const struct ux_streamhost *h, struct ux_streamhost_stats *out);

/* A sender without a descriptor: take bytes (returns how many fit the
 * buffer now), then the end. */
size_t ux_streamhost_write(struct ux_streamhost *h, const uint8_t *p, size_t len);
void ux_streamhost_finish(struct ux_streamhost *h);
/* A receiver without a descriptor: the in-order bytes ready (none once the
 * stream is over), and that N of them were taken, at *NOW (NULL: the clock). */
size_t ux_streamhost_peek(const struct ux_streamhost *h, const uint8_t **p);
void ux_streamhost_consume(struct ux_streamhost *h, size_t n, const uint64_t *now);

#endif
