/* The chunk-hash tree of one version of a file at one chunk size: its
 * leaves are the chunks' hashes (ux_chunk_hash: SHA-256(be32 index || data),
 * whose first 16 bytes travel in each DATA), each node above is
 * SHA-256(0x01 || up to 32 child hashes), and the root travels in the
 * OFFER. A client holding a local copy compares its own tree with the
 * server's from the root down and fetches only the chunks that differ;
 * each chunk it fetches is then checked against its full leaf, so a server
 * sending wrong bytes under the right version is caught at that chunk.
 *
 * On the wire a node is named by its id: the interior nodes numbered from
 * the root (0) level by level, left to right. A node's children are the
 * FANOUT nodes below it (leaves, for the lowest interior level). */
#ifndef UDPXFER_TREE_H
#define UDPXFER_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define UX_TREE_FANOUT 32
#define UX_TREE_LEVELS 8 /* 32^7 leaves: far beyond a uint32 chunk count */
#define UX_TREE_NODE_BYTES (UX_TREE_FANOUT * UX_SHA256_LEN)

/* The shape: how many nodes each level has, leaves (level 0) first. */
struct ux_tree_shape {
    uint32_t count;                  /* leaves */
    int levels;                      /* 0 for an empty file */
    uint32_t size[UX_TREE_LEVELS];
    uint64_t start[UX_TREE_LEVELS];  /* first node of each level in a tree's node array */
    uint64_t total;                  /* nodes in all */
};

struct ux_tree {
    struct ux_tree_shape shape;
    uint8_t (*node)[UX_SHA256_LEN];  /* every level, leaves first */
};

void ux_tree_shape(uint32_t count, struct ux_tree_shape *s);
/* Interior nodes: how many there are (ids 0 .. n-1). */
uint32_t ux_tree_interior(const struct ux_tree_shape *s);
/* The level and index of interior node ID; -1 if there is none. */
int ux_tree_locate(const struct ux_tree_shape *s, uint32_t id, int *level, uint32_t *index);
/* The id of interior node INDEX at LEVEL (1 .. levels-1). */
uint32_t ux_tree_id(const struct ux_tree_shape *s, int level, uint32_t index);
/* The children of node INDEX at LEVEL: first index and count at LEVEL-1. */
void ux_tree_children(const struct ux_tree_shape *s, int level, uint32_t index, uint32_t *first, uint32_t *n);

/* SHA-256(0x01 || CHILDREN): the hash of a node whose N children are given. */
int ux_tree_hash_node(struct ux_sha *sha, const uint8_t *children, uint32_t n, uint8_t out[UX_SHA256_LEN]);

/* A tree over COUNT leaves: the leaves are copied in (LEAVES may be NULL
 * to set them later with ux_tree_leaf, then ux_tree_finish). Returns 0 or -1. */
int ux_tree_init(struct ux_tree *t, uint32_t count);
static inline uint8_t *ux_tree_leaf(struct ux_tree *t, uint32_t i) { return t->node[i]; }
/* Hash every level above the leaves. Returns 0 or -1. */
int ux_tree_finish(struct ux_tree *t, struct ux_sha *sha);
void ux_tree_free(struct ux_tree *t);
/* The tree of LEN bytes at DATA at chunk size CS (a listing kept in
 * memory). Returns 0 or -1. */
int ux_tree_of(struct ux_tree *t, struct ux_sha *sha, const uint8_t *data, uint64_t len, uint32_t cs);
/* The root: the top node, or 32 zero bytes for an empty file. */
void ux_tree_root(const struct ux_tree *t, uint8_t out[UX_SHA256_LEN]);
/* Node INDEX at LEVEL. */
static inline const uint8_t *ux_tree_at(const struct ux_tree *t, int level, uint32_t index)
{
    return t->node[t->shape.start[level] + index];
}
/* The children hashes of interior node ID into OUT (UX_TREE_NODE_BYTES);
 * returns their bytes, 0 if there is no such node. */
size_t ux_tree_node_bytes(const struct ux_tree *t, uint32_t id, uint8_t *out);

#endif
