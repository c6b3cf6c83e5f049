/* What the stream sender and receiver share: events, failure, the log. */
#include "stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ux_stream_common_init(struct ux_stream_common *c, uint64_t now)
{
    c->started_at = c->last_rx = now;
    c->seg_sha = ux_sha_new();
    c->run_sha = ux_sha_new();
    if (!c->seg_sha || !c->run_sha || ux_sha_init(c->run_sha))
        return -1;
    return 0;
}

void ux_stream_common_free(struct ux_stream_common *c)
{
    ux_sha_free(c->seg_sha);
    ux_sha_free(c->run_sha);
    c->seg_sha = c->run_sha = NULL;
}

void ux_stream_push(struct ux_stream_common *c, enum ux_stream_event_type type)
{
    if (c->ev_len == (int)(sizeof c->ev / sizeof c->ev[0]))
        return; /* cannot happen: at most connect, complete and an end */
    c->ev[(c->ev_head + c->ev_len++) % 8].type = type;
}

int ux_stream_next_event(struct ux_stream_common *c, struct ux_stream_event *ev)
{
    if (!c->ev_len)
        return 0;
    *ev = c->ev[c->ev_head];
    c->ev_head = (c->ev_head + 1) % 8;
    c->ev_len--;
    return 1;
}

void ux_stream_fail(struct ux_stream_common *c, enum ux_err fail, const char *fmt, ...)
{
    if (c->fail)
        return;
    c->fail = fail;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    ux_stream_push(c, UXST_EV_FAILED);
}

static const char *close_name(unsigned r)
{
    static const char *const names[] = {[UX_SC_OK] = "ok", [UX_SC_ABORT] = "abort",
                                        [UX_SC_CORRUPT] = "corrupt", [UX_SC_BUSY] = "busy"};
    return r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* "SEND <seq> <ack> <conn> <KIND> ..." as the original tool logs them. */
void ux_stream_trace(struct ux_stream_common *c, const char *dir, const struct ux_msg *m,
                     const char *note)
{
    if (!c->trace)
        return;
    char line[200];
    unsigned long long seq = 0, ack = 0;
    char kind[48];
    switch (m->type) {
    case UX_S_OPEN: snprintf(kind, sizeof kind, "SYN"); break;
    case UX_S_ACCEPT: snprintf(kind, sizeof kind, "SYN ACK"); break;
    case UX_S_DATA:
        seq = m->u.sdata.off;
        snprintf(kind, sizeof kind, "DATA len=%zu", m->u.sdata.len);
        break;
    case UX_S_ACK:
        ack = m->u.sack.cum;
        snprintf(kind, sizeof kind, "%s win=%u sack=%u", m->u.sack.flags & UX_SACK_FIN ? "ACK FIN" : "ACK",
                 m->u.sack.window, m->u.sack.nsack);
        break;
    case UX_S_FIN:
        seq = m->u.sfin.length;
        snprintf(kind, sizeof kind, "FIN");
        break;
    case UX_S_CLOSE: snprintf(kind, sizeof kind, "CLOSE %s", close_name(m->u.close.reason)); break;
    default: snprintf(kind, sizeof kind, "type=%u", m->type);
    }
    snprintf(line, sizeof line, "%s %llu %llu %016llx %s%s%s", dir, seq, ack,
             (unsigned long long)m->xid, kind, note ? " " : "", note ? note : "");
    c->trace(c->trace_ud, line);
}
