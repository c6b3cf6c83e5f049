#include "tree.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

void ux_tree_shape(uint32_t count, struct ux_tree_shape *s)
{
    memset(s, 0, sizeof *s);
    s->count = count;
    if (!count)
        return;
    uint64_t n = count, at = 0;
    for (int k = 0; k < UX_TREE_LEVELS; k++) {
        s->size[k] = (uint32_t)n;
        s->start[k] = at;
        at += n;
        s->levels = k + 1;
        if (n == 1)
            break;
        n = (n + UX_TREE_FANOUT - 1) / UX_TREE_FANOUT;
    }
    s->total = at;
}

uint32_t ux_tree_interior(const struct ux_tree_shape *s)
{
    return s->levels > 1 ? (uint32_t)(s->total - s->count) : 0;
}

uint32_t ux_tree_id(const struct ux_tree_shape *s, int level, uint32_t index)
{
    uint32_t id = 0;
    for (int k = s->levels - 1; k > level; k--)
        id += s->size[k];
    return id + index;
}

int ux_tree_locate(const struct ux_tree_shape *s, uint32_t id, int *level, uint32_t *index)
{
    for (int k = s->levels - 1; k >= 1; k--) {
        if (id < s->size[k]) {
            *level = k;
            *index = id;
            return 0;
        }
        id -= s->size[k];
    }
    return -1;
}

void ux_tree_children(const struct ux_tree_shape *s, int level, uint32_t index, uint32_t *first, uint32_t *n)
{
    uint64_t f = (uint64_t)index * UX_TREE_FANOUT, below = s->size[level - 1];
    *first = (uint32_t)f;
    *n = f >= below ? 0 : (uint32_t)(below - f < UX_TREE_FANOUT ? below - f : UX_TREE_FANOUT);
}

int ux_tree_hash_node(struct ux_sha *sha, const uint8_t *children, uint32_t n, uint8_t out[UX_SHA256_LEN])
{
    static const uint8_t tag = 0x01; /* apart from leaves, which start with a chunk index */
    if (ux_sha_init(sha) || ux_sha_update(sha, &tag, 1) || ux_sha_update(sha, children, (size_t)n * UX_SHA256_LEN))
        return -1;
    return ux_sha_final(sha, out);
}

int ux_tree_init(struct ux_tree *t, uint32_t count)
{
    ux_tree_shape(count, &t->shape);
    t->node = malloc(t->shape.total ? t->shape.total * UX_SHA256_LEN : 1);
    return t->node ? 0 : -1;
}

int ux_tree_finish(struct ux_tree *t, struct ux_sha *sha)
{
    const struct ux_tree_shape *s = &t->shape;
    for (int k = 1; k < s->levels; k++)
        for (uint32_t i = 0; i < s->size[k]; i++) {
            uint32_t first, n;
            ux_tree_children(s, k, i, &first, &n);
            if (ux_tree_hash_node(sha, t->node[s->start[k - 1] + first], n, t->node[s->start[k] + i]))
                return -1;
        }
    return 0;
}

void ux_tree_free(struct ux_tree *t)
{
    free(t->node);
    t->node = NULL;
    memset(&t->shape, 0, sizeof t->shape);
}

void ux_tree_root(const struct ux_tree *t, uint8_t out[UX_SHA256_LEN])
{
    if (!t->shape.levels)
        memset(out, 0, UX_SHA256_LEN);
    else
        memcpy(out, t->node[t->shape.start[t->shape.levels - 1]], UX_SHA256_LEN);
}

size_t ux_tree_node_bytes(const struct ux_tree *t, uint32_t id, uint8_t *out)
{
    int level;
    uint32_t index, first, n;
    if (ux_tree_locate(&t->shape, id, &level, &index))
        return 0;
    ux_tree_children(&t->shape, level, index, &first, &n);
    memcpy(out, t->node[t->shape.start[level - 1] + first], (size_t)n * UX_SHA256_LEN);
    return (size_t)n * UX_SHA256_LEN;
}

int ux_tree_of(struct ux_tree *t, struct ux_sha *sha, const uint8_t *data, uint64_t len, uint32_t cs)
{
    uint64_t count = ux_chunk_count(len, cs);
    if (count > UINT32_MAX || ux_tree_init(t, (uint32_t)count))
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t off = (uint64_t)i * cs;
        if (ux_chunk_hash(sha, i, data + off, len - off < cs ? (size_t)(len - off) : cs, ux_tree_leaf(t, i))) {
            ux_tree_free(t);
            return -1;
        }
    }
    if (ux_tree_finish(t, sha)) {
        ux_tree_free(t);
        return -1;
    }
    return 0;
}
