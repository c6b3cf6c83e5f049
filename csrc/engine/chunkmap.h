/* Chunk map: which chunks of a file have arrived and which are on request.
 * Two bits per chunk, nothing else proportional to the file. */
#ifndef UDPXFER_CHUNKMAP_H
#define UDPXFER_CHUNKMAP_H

#include <stdint.h>

struct ux_chunkmap {
    uint32_t count;     /* chunks in the file */
    uint32_t have;      /* chunks received and verified */
    uint32_t cursor;    /* no free chunk lies below this index */
    uint64_t *received;
    uint64_t *requested;
    uint64_t *duplicated; /* endgame: asked of a second server once */
};

int ux_chunkmap_init(struct ux_chunkmap *m, uint32_t count);
void ux_chunkmap_free(struct ux_chunkmap *m);

int ux_chunkmap_has(const struct ux_chunkmap *m, uint32_t i);
/* Marks chunk i received; returns 1 if it is new, 0 if a duplicate. */
int ux_chunkmap_set(struct ux_chunkmap *m, uint32_t i);
void ux_chunkmap_mark_requested(struct ux_chunkmap *m, uint32_t i);
/* Chunk i's request was lost: it becomes free to ask for again. */
void ux_chunkmap_unrequest(struct ux_chunkmap *m, uint32_t i);

/* Next chunk neither received nor requested, or UINT32_MAX. Amortised O(1):
 * the cursor only moves back when a request is withdrawn. */
uint32_t ux_chunkmap_next_free(struct ux_chunkmap *m);

/* Endgame: mark chunk i as asked of a second server; returns 0 if it
 * already was. */
int ux_chunkmap_duplicate(struct ux_chunkmap *m, uint32_t i);

#endif
