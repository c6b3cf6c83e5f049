/* The chunk-hash trees the file set keeps, of files and of listings: at
 * most UX_FS_TREE_BYTES in all. Past that, the least recently used of the
 * trees no proven client opened a session on go first, then the least
 * recently used: a flood of requests for trees at new chunk sizes evicts
 * its own trees, not those clients are using. */
#include "fileset_int.h"

#include <stdlib.h>

/* A chunk hash covers 4 + CS bytes and SHA-256's padding: about 128 more. */
void ux_charge_tree(struct ux_fileset *fs, uint64_t size, uint32_t cs)
{
    uint64_t w = size + ux_chunk_count(size, cs) * 128;
    fs->work += w;
    fs->work_trees += w;
}

static uint64_t tree_bytes(const struct ux_tree *t) { return t->shape.total * UX_SHA256_LEN; }

int ux_tree_fits(uint64_t size, uint32_t cs)
{
    uint64_t count = ux_chunk_count(size, cs);
    return count <= UINT32_MAX && count * UX_SHA256_LEN * 2 <= UX_FS_TREE_BYTES / 2; /* nodes: under 2x the leaves */
}

struct ux_ftree *ux_find_tree(struct ux_ftree *slots, int n, uint32_t cs)
{
    for (int i = 0; i < n; i++)
        if (slots[i].cs == cs)
            return &slots[i];
    return NULL;
}

void ux_drop_tree(struct ux_fileset *fs, struct ux_ftree *t)
{
    if (t->cs)
        fs->tree_bytes -= tree_bytes(&t->tree);
    ux_tree_free(&t->tree);
    t->cs = 0;
    t->proven = 0;
}

/* Is A a better tree to evict than B (NULL: none yet)? */
static int sooner(const struct ux_ftree *a, const struct ux_ftree *b)
{
    if (!a->cs)
        return 0;
    if (!b)
        return 1;
    return a->proven != b->proven ? !a->proven : a->last_use < b->last_use;
}

static struct ux_ftree *victim_in(struct ux_ftree *slots, int n, struct ux_ftree *best, const struct ux_ftree *keep)
{
    for (int i = 0; i < n; i++)
        if (&slots[i] != keep && sooner(&slots[i], best))
            best = &slots[i];
    return best;
}

/* Evict until what trees take is within bounds, KEEP aside. */
static void trim(struct ux_fileset *fs, const struct ux_ftree *keep)
{
    while (fs->tree_bytes > UX_FS_TREE_BYTES) {
        struct ux_ftree *v = NULL;
        for (uint32_t i = 0; i < fs->n; i++)
            v = victim_in(fs->entries[i].trees, UX_FS_TREES, v, keep);
        for (int i = 0; i < UX_FS_LISTINGS; i++)
            v = victim_in(fs->listings[i].trees, UX_LISTING_TREES, v, keep);
        if (!v)
            return;
        ux_drop_tree(fs, v);
    }
}

struct ux_ftree *ux_keep_tree(struct ux_fileset *fs, struct ux_ftree *slots, int n, uint32_t cs, struct ux_tree *t)
{
    struct ux_ftree *slot = ux_find_tree(slots, n, cs);
    for (int i = 0; !slot && i < n; i++)
        if (!slots[i].cs)
            slot = &slots[i];
    if (!slot)
        slot = victim_in(slots, n, NULL, NULL);
    int proven = slot->cs == cs && slot->proven;
    ux_drop_tree(fs, slot);
    slot->tree = *t;
    slot->cs = cs;
    slot->proven = proven;
    slot->last_use = ++fs->clock;
    fs->tree_bytes += tree_bytes(t);
    fs->trees_built++;
    trim(fs, slot);
    return slot;
}
