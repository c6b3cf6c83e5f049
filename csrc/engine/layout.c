#include "layout.h"

#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t ux_selection_len(const struct ux_selection *s) { return UX_HASH_LEN + 2 + 8 * (size_t)s->nranges; }

size_t ux_selection_encode(const struct ux_selection *s, uint8_t *out, size_t cap)
{
    size_t n = ux_selection_len(s);
    if (n > cap || s->nranges > UX_SEL_MAX_RANGES)
        return 0;
    memcpy(out, s->listing, UX_HASH_LEN);
    out[UX_HASH_LEN] = (uint8_t)(s->nranges >> 8);
    out[UX_HASH_LEN + 1] = (uint8_t)s->nranges;
    for (uint16_t i = 0; i < s->nranges; i++) {
        put32(out + UX_HASH_LEN + 2 + 8 * (size_t)i, s->ranges[i].first);
        put32(out + UX_HASH_LEN + 6 + 8 * (size_t)i, s->ranges[i].count);
    }
    return n;
}

int ux_selection_decode(const uint8_t *b, size_t n, struct ux_selection *s)
{
    if (n < UX_HASH_LEN + 2)
        return -1;
    memcpy(s->listing, b, UX_HASH_LEN);
    s->nranges = (uint16_t)(b[UX_HASH_LEN] << 8 | b[UX_HASH_LEN + 1]);
    if (s->nranges > UX_SEL_MAX_RANGES || n != ux_selection_len(s))
        return -1;
    for (uint16_t i = 0; i < s->nranges; i++) {
        s->ranges[i].first = get32(b + UX_HASH_LEN + 2 + 8 * (size_t)i);
        s->ranges[i].count = get32(b + UX_HASH_LEN + 6 + 8 * (size_t)i);
    }
    return ux_selection_count(s) < 0 ? -1 : 0;
}

int64_t ux_selection_count(const struct ux_selection *s)
{
    int64_t n = 0;
    for (uint16_t i = 0; i < s->nranges; i++) {
        const struct ux_range *r = &s->ranges[i];
        if ((uint64_t)r->first + r->count > UINT32_MAX)
            return -1;
        /* ranges go up and do not touch: one way to say each selection */
        if (i && (uint64_t)s->ranges[i - 1].first + s->ranges[i - 1].count >= r->first)
            return -1;
        if (!r->count)
            return -1;
        n += r->count;
    }
    return n;
}

int ux_selection_digest(struct ux_sha *sha, const struct ux_selection *s, uint32_t cs, uint8_t out[UX_HASH_LEN])
{
    static const char tag[] = "udpxfer files";
    uint8_t buf[UX_HASH_LEN + 2 + 8 * UX_SEL_MAX_RANGES], c[4];
    size_t n = ux_selection_encode(s, buf, sizeof buf);
    put32(c, cs);
    if (!n || ux_sha_init(sha) || ux_sha_update(sha, tag, sizeof tag - 1) || ux_sha_update(sha, c, 4) ||
        ux_sha_update(sha, buf, n))
        return -1;
    return ux_sha_final(sha, out);
}

int ux_layout_init(struct ux_layout *l, const uint64_t *sizes, uint32_t n, uint32_t cs)
{
    memset(l, 0, sizeof *l);
    if (!cs)
        return -1;
    l->size = malloc((n ? n : 1) * sizeof *l->size);
    l->first = malloc(((size_t)n + 1) * sizeof *l->first);
    if (!l->size || !l->first) {
        ux_layout_free(l);
        return -1;
    }
    uint64_t chunk = 0;
    for (uint32_t i = 0; i < n; i++) {
        l->size[i] = sizes[i];
        l->first[i] = (uint32_t)chunk;
        chunk += (sizes[i] + cs - 1) / cs;
        l->total += sizes[i];
        if (chunk > UINT32_MAX - 1) {
            ux_layout_free(l);
            return -1;
        }
    }
    l->first[n] = (uint32_t)chunk;
    l->nfiles = n;
    l->chunk_size = cs;
    return 0;
}

void ux_layout_free(struct ux_layout *l)
{
    free(l->size);
    free(l->first);
    l->size = NULL;
    l->first = NULL;
    l->nfiles = 0;
}

uint32_t ux_layout_file(const struct ux_layout *l, uint32_t g, uint32_t *local)
{
    /* the last file whose first chunk is at or before G (empty files own none) */
    uint32_t lo = 0, hi = l->nfiles;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->first[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    *local = g - l->first[lo];
    return lo;
}

uint32_t ux_layout_chunk(const struct ux_layout *l, uint32_t g, uint32_t *file, uint64_t *off)
{
    uint32_t local, f = ux_layout_file(l, g, &local);
    uint64_t o = (uint64_t)local * l->chunk_size;
    *file = f;
    *off = o;
    return o >= l->size[f] ? 0 : l->size[f] - o < l->chunk_size ? (uint32_t)(l->size[f] - o) : l->chunk_size;
}
