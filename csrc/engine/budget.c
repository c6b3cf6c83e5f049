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
        /* no more than 10 s counts: the span caps what accrues, and a debt
         * is a chunk or so */
        uint64_t dt = now - b->at < 10000000 ? now - b->at : 10000000;
        uint64_t add = b->rate / 1000000 * dt + b->rate % 1000000 * dt / 1000000;
        uint64_t cap = b->rate / 1000000 * BUDGET_SPAN_US + b->rate % 1000000 * BUDGET_SPAN_US / 1000000;
        int64_t top = cap < 1 ? 1 : cap > BUDGET_MAX ? BUDGET_MAX : (int64_t)cap;
        b->bytes = add >= (uint64_t)(top - (b->bytes < top ? b->bytes : top)) ? top : b->bytes + (int64_t)add;
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
    double wait = ((double)(1 - b->bytes) * 1e6 + (double)b->rate - 1) / (double)b->rate;
    return b->at + (wait > 1e12 ? (uint64_t)1e12 : (uint64_t)wait);
}
