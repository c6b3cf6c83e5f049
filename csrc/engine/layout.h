/* Many files of a listing fetched as one: laid end to end in one chunk
 * space, each file starting at a chunk boundary, so one transfer's rate
 * control, loss recovery and several-server split carry them all, and a
 * file's last chunk is as short as the file makes it (no padding on the
 * wire). The selection names the files by their number in the listing
 * (the files alone, in listing order, from 0) as ranges. */
#ifndef UDPXFER_ENGINE_LAYOUT_H
#define UDPXFER_ENGINE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "wire.h"

#define UX_SEL_MAX_RANGES 120 /* a selection travels in one REQUEST */

/* Which files of which listing: its SHA-256 and ranges of file numbers. */
struct ux_selection {
    uint8_t listing[UX_HASH_LEN];
    uint16_t nranges;
    struct ux_range ranges[UX_SEL_MAX_RANGES];
};

struct ux_layout {
    uint32_t nfiles;
    uint32_t chunk_size;
    uint64_t *size;      /* per file, in selection order */
    uint32_t *first;     /* per file, its first chunk; first[nfiles]: the chunks in all */
    uint64_t total;      /* the bytes in all */
};

/* Bytes of a selection on the wire (after the REQUEST's name). */
size_t ux_selection_len(const struct ux_selection *s);
size_t ux_selection_encode(const struct ux_selection *s, uint8_t *out, size_t cap);
/* Returns 0, or -1 if B (N bytes) is not one whole selection. */
int ux_selection_decode(const uint8_t *b, size_t n, struct ux_selection *s);
/* The files selected, in all (ranges may not overlap: -1 otherwise, or
 * if a range runs past UINT32_MAX). */
int64_t ux_selection_count(const struct ux_selection *s);
/* What both sides call the version of a selection at chunk size CS: the
 * SHA-256 an offer of it carries. Returns 0 or -1. */
int ux_selection_digest(struct ux_sha *sha, const struct ux_selection *s, uint32_t cs, uint8_t out[UX_HASH_LEN]);

/* Lay N files of SIZES out at chunk size CS. Returns 0, or -1 (no memory,
 * more chunks than a transfer counts). */
int ux_layout_init(struct ux_layout *l, const uint64_t *sizes, uint32_t n, uint32_t cs);
void ux_layout_free(struct ux_layout *l);
static inline uint32_t ux_layout_chunks(const struct ux_layout *l) { return l->first[l->nfiles]; }
/* The file holding chunk G (< ux_layout_chunks), and G's index in it. */
uint32_t ux_layout_file(const struct ux_layout *l, uint32_t g, uint32_t *local);
/* The bytes in chunk G; its offset in its file in *OFF. */
uint32_t ux_layout_chunk(const struct ux_layout *l, uint32_t g, uint32_t *file, uint64_t *off);

#endif
