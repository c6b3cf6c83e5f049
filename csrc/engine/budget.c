#include "budget.h"

/* Unspent bytes accumulate for at most this long: a pause does not turn
 * into a burst above the rate. */
#define BUDGET_SPAN_US 100000
#define BUDGET_MAX (INT64_MAX / 4)

void ux_budget_init(struct ux_budget *b, uint64_t rate, uint64_t now)
{
    b->rate = rate;
    b->bytes = 0;
    b->at = now;
}

uint64_t ux_budget_left(struct ux_budget *b, uint64_t now)
{
    if (!b->rate)
        return UINT64_MAX;
    if (now > b->at) {
        unsigned __int128 add = (unsigned __int128)b->rate * (now - b->at) / 1000000;
        unsigned __int128 cap = (unsigned __int128)b->rate * BUDGET_SPAN_US / 1000000;
        __int128 v = (__int128)b->bytes + (__int128)add;
        if (cap < 1)
            cap = 1;
        if (v > (__int128)cap)
            v = (__int128)cap;
        b->bytes = v > BUDGET_MAX ? BUDGET_MAX : (int64_t)v;
        b->at = now;
    }
    return b->bytes > 0 ? (uint64_t)b->bytes : 0;
}

void ux_budget_spend(struct ux_budget *b, uint64_t bytes)
{
    if (!b->rate)
        return;
    b->bytes -= bytes > BUDGET_MAX ? BUDGET_MAX : (int64_t)bytes;
    if (b->bytes < -BUDGET_MAX)
        b->bytes = -BUDGET_MAX;
}

uint64_t ux_budget_ready_at(const struct ux_budget *b)
{
    if (!b->rate || b->bytes > 0)
        return 0;
    unsigned __int128 wait = ((unsigned __int128)(1 - b->bytes) * 1000000 + b->rate - 1) / b->rate;
    return b->at + (wait > UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t)wait);
}
