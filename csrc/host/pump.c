#include "pump.h"

#include "clock.h"

#define PUMP_ROUNDS 16
/* A call hands back after this much work even with datagrams waiting, so
 * the other objects one loop drives (a server beside a fetch) keep their
 * pace: at 1 GB/s, 16 full rounds take 10-50 ms. */
#define PUMP_BUDGET_US 5000

/* The endpoint for a datagram carrying XID: the last one hit if it
 * matches (a batch is mostly one transfer's), else a scan. */
static struct ux_endpoint *route(struct ux_endpoint *eps, int n, uint64_t xid, int *last)
{
    if (*last < n && eps[*last].xid == xid)
        return &eps[*last];
    struct ux_endpoint *any = NULL;
    for (int i = 0; i < n; i++) {
        if (eps[i].xid == xid && xid) {
            *last = i;
            return &eps[i];
        }
        if (!eps[i].xid)
            any = &eps[i];
    }
    return any;
}

/* Feed the batch in IO from its first unfed datagram; stops at one handed back. */
static int feed(struct ux_io *io, struct ux_endpoint *eps, int n_eps, int n, uint64_t now)
{
    int last = 0;
    for (int i = io->rnext; i < n; i++) {
        const struct ux_dgram *d = &io->rq[i];
        struct ux_endpoint *ep = route(eps, n_eps, ux_wire_xid(d->p, d->len), &last);
        if (ep && ep->in(ep->eng, now, d->p, d->len, &io->raddr[d->from])) {
            io->rnext = i; /* this one and the rest of the batch wait */
            io->rheld = n;
            return 1;
        }
    }
    io->rnext = io->rheld = 0;
    return 0;
}

/* Tell each endpoint of its datagrams that came back undeliverable. */
static void bounce(struct ux_io *io, struct ux_endpoint *eps, int n, uint64_t now)
{
    for (int b = 0; b < io->nbounce; b++)
        for (int i = 0; i < n; i++)
            if (io->bounce[b].xid && eps[i].xid == io->bounce[b].xid && eps[i].bounced)
                eps[i].bounced(eps[i].eng, now, &io->bounce[b].to);
    io->nbounce = 0;
}

/* Queue what the endpoints have to send, one datagram each in turn, until
 * none has more or the queue is full. Returns how many were queued. */
static int produce(struct ux_io *io, struct ux_endpoint *eps, int n, int *rr, uint64_t now)
{
    int produced = 0, idle = 0;
    uint8_t *slot;
    while (n && idle < n && (slot = ux_io_slot(io))) {
        struct ux_endpoint *ep = &eps[*rr % n];
        struct ux_tail tail = {NULL, 0};
        struct ux_addr to;
        size_t len = ep->out(ep->eng, now, slot, io->cap, &to, &tail);
        if (len) {
            ux_io_queue(io, len, tail.p, tail.len, &to);
            produced++;
            idle = 0;
            if (n > 1)
                *rr = (*rr + 1) % n;
        } else {
            idle++;
            *rr = (*rr + 1) % n;
        }
    }
    return produced;
}

void ux_pump_many(struct ux_io *io, struct ux_endpoint *eps, int n, int *rr)
{
    if (!ux_io_flush(io))
        return;
    uint64_t start = ux_now_us();
    for (int r = 0; r < PUMP_ROUNDS && ux_now_us() - start < PUMP_BUDGET_US; r++) {
        int held = ux_io_held(io);
        int got = held ? io->rheld : ux_io_recv(io);
        uint64_t now = ux_now_us();
        if (!held)
            io->rnext = 0;
        if (io->nbounce)
            bounce(io, eps, n, now);
        feed(io, eps, n, got, now);
        int produced = produce(io, eps, n, rr, now);
        if (produced && !ux_io_flush(io))
            return;
        if ((got == 0 && produced < UX_SQUEUE) || ux_io_held(io))
            return;
    }
}

void ux_pump(struct ux_io *io, void *eng, ux_input_fn in, ux_output_fn out)
{
    struct ux_endpoint ep = {eng, in, out, NULL, 0, NULL};
    int rr = 0;
    ux_pump_many(io, &ep, 1, &rr);
}
