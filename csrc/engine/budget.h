/* A byte budget that transfers share: a transfer asks for chunks only
 * while the budget has bytes left, so what all of them ask for together,
 * and so what arrives, keeps to one rate (a sync's --limit-rate over
 * many small files, where per-transfer pacing never starts). Time comes
 * in, as everywhere in the engine. */
#ifndef UDPXFER_ENGINE_BUDGET_H
#define UDPXFER_ENGINE_BUDGET_H

#include <stdint.h>

struct ux_budget {
    uint64_t rate;   /* bytes per second; 0: no limit */
    int64_t bytes;   /* left to spend; below 0 after a request larger than what was left */
    uint64_t at;     /* when BYTES was last brought up to date */
};

/* A budget of RATE bytes per second (0: none), starting empty at NOW. */
void ux_budget_init(struct ux_budget *b, uint64_t rate, uint64_t now);
/* The bytes that may be asked for now (0 while in debt). */
uint64_t ux_budget_left(struct ux_budget *b, uint64_t now);
void ux_budget_spend(struct ux_budget *b, uint64_t bytes);
/* When there will be bytes to spend again (0 if there are). */
uint64_t ux_budget_ready_at(const struct ux_budget *b);

#endif
