#include "pump.h"

#include "clock.h"

#define PUMP_ROUNDS 16
/* A call hands back after this much work even with datagrams waiting, so
 * the other objects one loop drives (a server beside a fetch) keep their
 * pace: at 1 GB/s, 16 full rounds take 10-50 ms. */
#define PUMP_BUDGET_US 5000

void ux_pump(struct ux_io *io, void *eng, ux_input_fn in, ux_output_fn out)
{
    if (!ux_io_flush(io))
        return;
    uint64_t start = ux_now_us();
    for (int r = 0; r < PUMP_ROUNDS && ux_now_us() - start < PUMP_BUDGET_US; r++) {
        int i = io->rnext, n = ux_io_held(io) ? io->rheld : ux_io_recv(io);
        uint64_t now = ux_now_us();
        io->rnext = io->rheld = 0;
        for (; i < n; i++) {
            if (in(eng, now, io->rq[i].p, io->rq[i].len, &io->raddr[io->rq[i].from])) {
                io->rnext = i; /* this one and the rest of the batch wait */
                io->rheld = n;
                break;
            }
        }
        int produced = 0;
        uint8_t *slot;
        struct ux_addr to;
        while ((slot = ux_io_slot(io))) {
            struct ux_tail tail = {NULL, 0};
            size_t len = out(eng, now, slot, io->cap, &to, &tail);
            if (!len)
                break;
            ux_io_queue(io, len, tail.p, tail.len, &to);
            produced++;
        }
        if (produced && !ux_io_flush(io))
            return;
        if ((n == 0 && produced < UX_SQUEUE) || ux_io_held(io))
            return;
    }
}
