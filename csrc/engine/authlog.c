#include "authlog.h"

#include <string.h>

/* FROM's entry, or the least recently seen one taken over for it. */
static struct ux_authlog_host *entry(struct ux_authlog *l, const struct ux_addr *from)
{
    struct ux_authlog_host *old = &l->h[0];
    for (int i = 0; i < UX_AUTHLOG_HOSTS; i++) {
        struct ux_authlog_host *h = &l->h[i];
        if (h->used && ux_addr_same_host(&h->host, from))
            return h;
        if (!h->used || (old->used && h->seen_at < old->seen_at))
            old = h;
    }
    memset(old, 0, sizeof *old);
    old->used = 1;
    old->host = *from;
    return old;
}

int ux_authlog_note(struct ux_authlog *l, const struct ux_addr *from, int keyless, uint64_t now,
                    struct ux_authlog_report *out)
{
    if (now >= l->period_at + UX_AUTHLOG_PERIOD_US || now < l->period_at) {
        l->period_at = now;
        l->lines = 0;
    }
    struct ux_authlog_host *h = entry(l, from);
    h->seen_at = now;
    if (keyless)
        h->keyless++;
    else
        h->sealed++;
    if ((h->reported && now < h->reported_at + UX_AUTHLOG_PERIOD_US) || l->lines >= UX_AUTHLOG_LINES)
        return 0;
    l->lines++;
    out->host = h->host;
    out->sealed = h->sealed;
    out->keyless = h->keyless;
    h->sealed = h->keyless = 0;
    h->reported = 1;
    h->reported_at = now;
    return 1;
}
