#include "streamhost.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "clock.h"

#define LOG_CAP 65536
/* A step reads at most this much from the descriptor, so a fast input
 * cannot keep the socket unserved. */
#define READ_BUDGET (16u << 20)

static void trace_line(void *ud, const char *line)
{
    struct ux_streamhost *h = ud;
    size_t n = strlen(line);
    if (!h->log || h->log_len + n + 1 > LOG_CAP) {
        h->log_lost++;
        return;
    }
    memcpy(h->log + h->log_len, line, n);
    h->log[h->log_len + n] = '\n';
    h->log_len += n + 1;
}

/* The engines as the pump calls them: neither hands a datagram back, and
 * neither lends a tail. */
static int ss_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_ssend_input(e, now, p, n, a);
    return 0;
}
static size_t ss_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_ssend_output(e, now, b, cap, a);
}
static int sr_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_srecv_input(e, now, p, n, a);
    return 0;
}
static size_t sr_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_srecv_output(e, now, b, cap, a);
}

static void fail(char *why, size_t why_len, const char *what, int err)
{
    if (err)
        snprintf(why, why_len, "%s: %s", what, strerror(err));
    else
        snprintf(why, why_len, "%s", what);
}

/* The engine, then the socket and the epoll set unless it is a sim stream. */
static enum ux_err start(struct ux_streamhost *h, const struct ux_streamhost_spec *spec, char *why,
                         size_t why_len)
{
    if (spec->trace && !(h->log = malloc(LOG_CAP))) {
        fail(why, why_len, "out of memory", 0);
        return UX_ERR_IO;
    }
    size_t cap;
    if (h->sender) {
        struct ux_ssend_cfg cfg = spec->send;
        cfg.trace = h->log ? trace_line : NULL;
        cfg.trace_ud = h;
        if (ux_ssend_init(&h->s, &cfg, spec->now)) {
            fail(why, why_len, "cannot initialise the sender", 0);
            return UX_ERR_IO;
        }
        h->ep = (struct ux_endpoint){&h->s, ss_input, ss_output, NULL, 0, NULL};
        cap = UX_SDATA_OVERHEAD + h->s.c.mss + UX_SEAL_MAX; /* the engine's: a default if none was set */
    } else {
        struct ux_srecv_cfg cfg = spec->recv;
        cfg.trace = h->log ? trace_line : NULL;
        cfg.trace_ud = h;
        if (ux_srecv_init(&h->r, &cfg, spec->now)) {
            fail(why, why_len, "cannot initialise the receiver", 0);
            return UX_ERR_IO;
        }
        h->ep = (struct ux_endpoint){&h->r, sr_input, sr_output, NULL, 0, NULL};
        cap = UX_SDATA_OVERHEAD + UX_STREAM_MAX_MSS + UX_SEAL_MAX;
    }
    if (h->sim)
        return UX_OK;
    /* A sender's socket takes any address and an ephemeral port. */
    const char *what = "";
    int err = ux_io_open(&h->io, h->sender ? NULL : &spec->bind, cap, h->sender ? 0 : UX_IO_GRO, &what);
    if (!err && (err = ux_poller_open(&h->poller)))
        what = "epoll";
    if (!err)
        return UX_OK;
    fail(why, why_len, what, err);
    return err == EADDRINUSE ? UX_ERR_INUSE : UX_ERR_IO;
}

enum ux_err ux_streamhost_open(struct ux_streamhost *h, const struct ux_streamhost_spec *spec, char *why,
                               size_t why_len)
{
    memset(h, 0, sizeof *h);
    h->io.fd = h->data.fd = h->poller.epfd = -1;
    h->sender = spec->sender;
    h->sim = spec->sim;
    h->c = h->sender ? &h->s.c : &h->r.c;
    h->has_fd = spec->fd >= 0;
    if (h->has_fd)
        ux_datafd_take(&h->data, spec->fd);
    enum ux_err err = start(h, spec, why, why_len);
    if (err) /* closing is safe on whatever started: the engines free a zeroed or half-set state */
        ux_streamhost_close(h);
    return err;
}

void ux_streamhost_close(struct ux_streamhost *h)
{
    if (!h->sim) {
        ux_io_close(&h->io);
        ux_poller_close(&h->poller);
    }
    ux_datafd_release(&h->data);
    if (h->sender)
        ux_ssend_free(&h->s);
    else
        ux_srecv_free(&h->r);
    free(h->log);
    h->log = NULL;
}

/* ---- moving bytes between the descriptor and the engine ---- */

static void io_failed(struct ux_streamhost *h, const char *what, ssize_t err)
{
    char msg[160];
    snprintf(msg, sizeof msg, "cannot %s: %s", what, strerror((int)-err));
    if (h->sender)
        ux_ssend_abort(&h->s, UX_ERR_IO, msg);
    else
        ux_srecv_abort(&h->r, UX_ERR_IO, msg);
}

static void fill_from_fd(struct ux_streamhost *h)
{
    for (size_t budget = READ_BUDGET; budget > 0 && !h->eof_seen;) {
        uint8_t *p;
        size_t space = ux_ssend_space(&h->s, &p);
        if (!space)
            return;
        ssize_t n = ux_datafd_read(&h->data, p, space < budget ? space : budget);
        if (n == -EAGAIN)
            return;
        if (n < 0)
            return io_failed(h, "read the input", n);
        if (n == 0) {
            h->eof_seen = 1;
            ux_ssend_eof(&h->s);
            return;
        }
        ux_ssend_commit(&h->s, (size_t)n);
        budget -= (size_t)n;
    }
}

static void drain_to_fd(struct ux_streamhost *h)
{
    for (;;) {
        const uint8_t *p;
        size_t avail = ux_streamhost_peek(h, &p);
        if (!avail)
            return;
        ssize_t n = ux_datafd_write(&h->data, p, avail);
        if (n == -EAGAIN)
            return;
        if (n < 0)
            return io_failed(h, "write the output", n);
        ux_srecv_consume(&h->r, (size_t)n, ux_now_us());
    }
}

/* Is there local work an always-ready descriptor could do right now? */
static int data_work(struct ux_streamhost *h)
{
    if (!h->has_fd)
        return 0;
    if (h->sender) {
        uint8_t *p;
        return !h->eof_seen && ux_ssend_space(&h->s, &p) > 0;
    }
    const uint8_t *p;
    return ux_streamhost_peek(h, &p) > 0;
}

/* The socket always for datagrams, for sending while some wait; a
 * pollable descriptor only while there is work for it, so a hung-up pipe
 * cannot wake the set for ever. */
static void watch(struct ux_streamhost *h)
{
    ux_poller_watch(&h->poller, h->io.fd, EPOLLIN | (h->io.spend ? EPOLLOUT : 0));
    if (h->has_fd && !h->data.regular)
        ux_poller_watch(&h->poller, h->data.fd, !data_work(h) ? 0 : h->sender ? EPOLLIN : EPOLLOUT);
}

void ux_streamhost_step(struct ux_streamhost *h)
{
    if (h->sim)
        return; /* no socket: its caller moves the datagrams */
    if (h->sender) {
        if (h->has_fd)
            fill_from_fd(h);
        ux_pump(&h->io, h->ep.eng, h->ep.in, h->ep.out);
    } else {
        ux_pump(&h->io, h->ep.eng, h->ep.in, h->ep.out);
        if (h->has_fd)
            drain_to_fd(h);
        if (ux_streamhost_deadline(h) == 0)
            ux_pump(&h->io, h->ep.eng, h->ep.in, h->ep.out); /* the acks that writing made due */
    }
    watch(h);
}

void ux_streamhost_abort(struct ux_streamhost *h, const char *msg)
{
    if (h->sender)
        ux_ssend_abort(&h->s, UX_ERR_CLOSED, msg);
    else
        ux_srecv_abort(&h->r, UX_ERR_CLOSED, msg);
    if (!h->sim)
        ux_pump(&h->io, h->ep.eng, h->ep.in, h->ep.out);
}

int ux_streamhost_next_event(struct ux_streamhost *h, struct ux_streamhost_event *ev)
{
    struct ux_stream_common *c = h->c;
    struct ux_stream_event e;
    if (!ux_stream_next_event(c, &e))
        return 0;
    memset(ev, 0, sizeof *ev);
    ev->type = e.type;
    if (e.type == UXST_EV_CONNECT) {
        ev->peer = c->peer;
        ev->xid = c->xid;
    } else if (e.type == UXST_EV_FAILED) {
        ev->fail = c->fail;
        ev->message = c->fail_msg;
    } else {
        ev->bytes = h->sender ? h->s.end : h->r.fin_len;
        ev->sha256 = c->sha256;
        uint64_t end = c->done_at ? c->done_at : ux_now_us();
        uint64_t from = c->connected_at ? c->connected_at : c->started_at;
        ev->elapsed_us = end - from;
    }
    return 1;
}

const char *ux_streamhost_log(struct ux_streamhost *h, size_t *len)
{
    if (!h->log_len && !h->log_lost)
        return NULL;
    if (h->log_lost) {
        char note[64];
        snprintf(note, sizeof note, "(%u log lines dropped)\n", h->log_lost);
        trace_line(h, note);
        h->log_lost = 0;
    }
    *len = h->log_len;
    h->log_len = 0; /* the bytes stay until the engine logs again */
    return h->log;
}

uint64_t ux_streamhost_deadline(const struct ux_streamhost *h)
{
    return h->sender ? ux_ssend_deadline(&h->s) : ux_srecv_deadline(&h->r);
}

uint64_t ux_streamhost_timeout(struct ux_streamhost *h)
{
    /* A regular file is never reported ready by epoll: while it has work, step again at once. */
    uint64_t d = h->data.regular && data_work(h) ? 0 : ux_streamhost_deadline(h);
    if (h->io.spend > 0 || d == 0)
        return 0;
    if (d == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = ux_now_us();
    return d > now ? d - now : 0;
}

int ux_streamhost_port(const struct ux_streamhost *h)
{
    return h->sim ? -1 : ux_io_port(&h->io);
}

void ux_streamhost_stats(const struct ux_streamhost *h, struct ux_streamhost_stats *out)
{
    const struct ux_stream_common *c = h->c;
    memset(out, 0, sizeof *out);
    out->state = c->state;
    out->st = c->st;
    out->unauthentic = c->keys.failed;
    if (h->sender) {
        out->srtt_us = h->s.srtt;
        out->cwnd = h->s.cwnd;
    }
    /* A sim stream's clock is its caller's: an unfinished one reports no time. */
    uint64_t end = c->done_at ? c->done_at : h->sim ? c->started_at : ux_now_us();
    out->elapsed_us = end - c->started_at;
}

size_t ux_streamhost_write(struct ux_streamhost *h, const uint8_t *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        uint8_t *to;
        size_t space = ux_ssend_space(&h->s, &to);
        if (!space)
            break;
        size_t n = len - done < space ? len - done : space;
        memcpy(to, p + done, n);
        ux_ssend_commit(&h->s, n);
        done += n;
    }
    return done;
}

void ux_streamhost_finish(struct ux_streamhost *h)
{
    h->eof_seen = 1;
    ux_ssend_eof(&h->s);
}

size_t ux_streamhost_peek(const struct ux_streamhost *h, const uint8_t **p)
{
    if (h->r.c.state >= UXSR_DONE)
        return 0;
    return ux_srecv_peek(&h->r, p);
}

void ux_streamhost_consume(struct ux_streamhost *h, size_t n, const uint64_t *now)
{
    ux_srecv_consume(&h->r, n, now ? *now : ux_now_us());
}
