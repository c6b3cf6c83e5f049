#include "chunkmap.h"

#include <stdlib.h>

#define WORD(i) ((i) >> 6)
#define BIT(i) ((uint64_t)1 << ((i) & 63))

int ux_chunkmap_init(struct ux_chunkmap *m, uint32_t count)
{
    size_t words = ((size_t)count + 63) / 64 + 1;
    m->count = count;
    m->have = 0;
    m->cursor = 0;
    m->received = calloc(words, sizeof(uint64_t));
    m->requested = calloc(words, sizeof(uint64_t));
    m->duplicated = calloc(words, sizeof(uint64_t));
    if (!m->received || !m->requested || !m->duplicated) {
        ux_chunkmap_free(m);
        return -1;
    }
    return 0;
}

void ux_chunkmap_free(struct ux_chunkmap *m)
{
    free(m->received);
    free(m->requested);
    free(m->duplicated);
    m->received = m->requested = m->duplicated = NULL;
}

int ux_chunkmap_has(const struct ux_chunkmap *m, uint32_t i)
{
    return (m->received[WORD(i)] & BIT(i)) != 0;
}

int ux_chunkmap_set(struct ux_chunkmap *m, uint32_t i)
{
    if (ux_chunkmap_has(m, i))
        return 0;
    m->received[WORD(i)] |= BIT(i);
    m->have++;
    return 1;
}

void ux_chunkmap_mark_requested(struct ux_chunkmap *m, uint32_t i)
{
    m->requested[WORD(i)] |= BIT(i);
}

void ux_chunkmap_unrequest(struct ux_chunkmap *m, uint32_t i)
{
    m->requested[WORD(i)] &= ~BIT(i);
    if (i < m->cursor)
        m->cursor = i;
}

uint32_t ux_chunkmap_next_free(struct ux_chunkmap *m)
{
    uint32_t i = m->cursor;
    while (i < m->count) {
        uint64_t busy = m->received[WORD(i)] | m->requested[WORD(i)];
        busy |= BIT(i) - 1; /* ignore bits below i in this word */
        if (busy != UINT64_MAX) {
            uint32_t j = (i & ~63u) + (uint32_t)__builtin_ctzll(~busy);
            if (j >= m->count)
                break;
            m->cursor = j;
            return j;
        }
        i = (i & ~63u) + 64;
    }
    m->cursor = m->count;
    return UINT32_MAX;
}

int ux_chunkmap_duplicate(struct ux_chunkmap *m, uint32_t i)
{
    if (m->duplicated[WORD(i)] & BIT(i))
        return 0;
    m->duplicated[WORD(i)] |= BIT(i);
    return 1;
}
