/* Client engine: comparing the chosen version's chunk-hash tree with the
 * local copy's (the basis), level by level from the root, fetching only
 * the nodes whose hashes differ from the basis's; then copying the chunks
 * both share from the basis while the others are fetched. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#define REUSE_STEP (4u << 20) /* bytes copied from the basis per call: a step stays short */
#define NODES_PER_NEED 256    /* about 270 KB of replies */

struct want {
    uint32_t id;
    int got;
    uint8_t hash[UX_HASH_LEN]; /* what its children must hash to */
};

struct ux_descent {
    struct ux_tree_shape shape; /* the server's tree */
    int level;                  /* of the nodes wanted */
    struct want *want, *next;
    uint32_t n, left, nnext, cap, next_cap;
    uint32_t cursor;            /* next wanted node to ask for */
    int asked;                  /* the peer asked, or -1 */
    uint64_t sent_at;
};

static void set_bit(uint64_t *m, uint32_t i) { m[i >> 6] |= (uint64_t)1 << (i & 63); }
static int get_bit(const uint64_t *m, uint32_t i) { return (m[i >> 6] >> (i & 63)) & 1; }

/* Chunks under node INDEX at LEVEL: [first, end). */
static void span(const struct ux_tree_shape *s, int level, uint32_t index, uint32_t *first, uint32_t *end)
{
    uint64_t width = 1;
    for (int k = 0; k < level; k++)
        width *= UX_TREE_FANOUT;
    uint64_t f = index * width, e = f + width;
    *first = (uint32_t)(f < s->count ? f : s->count);
    *end = (uint32_t)(e < s->count ? e : s->count);
}

static void reuse_span(struct ux_client *c, int level, uint32_t index)
{
    uint32_t f, e;
    span(&c->descent->shape, level, index, &f, &e);
    for (uint32_t i = f; i < e && i < c->cfg.basis->shape.count; i++)
        set_bit(c->reuse, i);
}

static int add_leaf(struct ux_client *c, uint32_t index, const uint8_t *hash)
{
    if (c->nleaves == c->leaves_cap) {
        uint32_t cap = c->leaves_cap ? 2 * c->leaves_cap : 64;
        struct ux_leaf *l = realloc(c->leaves, (size_t)cap * sizeof *l);
        if (!l)
            return -1;
        c->leaves = l;
        c->leaves_cap = cap;
    }
    c->leaves[c->nleaves].index = index;
    memcpy(c->leaves[c->nleaves++].hash, hash, UX_HASH_LEN);
    return 0;
}

static int want_node(struct ux_descent *d, uint32_t id, const uint8_t *hash)
{
    if (d->nnext == d->next_cap) {
        uint32_t cap = d->next_cap ? 2 * d->next_cap : 64;
        struct want *w = realloc(d->next, (size_t)cap * sizeof *w);
        if (!w)
            return -1;
        d->next = w;
        d->next_cap = cap;
    }
    struct want *w = &d->next[d->nnext++];
    w->id = id;
    w->got = 0;
    memcpy(w->hash, hash, UX_HASH_LEN);
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const struct want *)a)->id, y = ((const struct want *)b)->id;
    return x < y ? -1 : x > y;
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = ((const struct ux_leaf *)a)->index, y = ((const struct ux_leaf *)b)->index;
    return x < y ? -1 : x > y;
}

/* The basis's node at LEVEL, INDEX, or NULL if it has none there. */
static const uint8_t *local_node(const struct ux_tree *b, int level, uint32_t index)
{
    if (level >= b->shape.levels || index >= b->shape.size[level])
        return NULL;
    return ux_tree_at(b, level, index);
}

static void next_level(struct ux_client *c, uint64_t now);
static struct ux_peer *tree_peer(struct ux_client *c);

/* The comparison is over: reused chunks count as in, the rest is fetched. */
static void finish(struct ux_client *c, uint64_t now)
{
    uxc_tree_free(c);
    if (c->nleaves)
        qsort(c->leaves, c->nleaves, sizeof *c->leaves, by_index);
    for (uint32_t i = 0; i < c->count; i++)
        if (get_bit(c->reuse, i))
            ux_chunkmap_set(&c->map, i);
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].active)
            c->peers[i].last_rx = now; /* the comparison is not their silence */
    c->state = UXC_TRANSFER;
    c->reuse_next = 0;
}

int uxc_tree_start(struct ux_client *c, uint64_t now)
{
    const struct ux_tree *b = c->cfg.basis;
    c->reuse = calloc(c->count / 64 + 1, sizeof *c->reuse);
    struct ux_descent *d = c->descent = calloc(1, sizeof *d);
    if (!c->reuse || !d)
        return -1;
    ux_tree_shape(c->count, &d->shape);
    d->asked = -1;
    uint8_t local_root[UX_HASH_LEN];
    ux_tree_root(b, local_root);
    c->state = UXC_TREE;
    if (d->shape.levels == 0) {
        finish(c, now);
    } else if (b->shape.count == c->count && ux_equal(local_root, c->root, UX_HASH_LEN)) {
        reuse_span(c, d->shape.levels - 1, 0); /* the same file */
        finish(c, now);
    } else if (d->shape.levels == 1) {
        const uint8_t *l = local_node(b, 0, 0);
        if (l && ux_equal(l, c->root, UX_HASH_LEN))
            set_bit(c->reuse, 0);
        else if (add_leaf(c, 0, c->root))
            return -1;
        finish(c, now);
    } else {
        if (want_node(d, 0, c->root))
            return -1;
        d->level = d->shape.levels; /* next_level goes down to the root's */
        next_level(c, now);
    }
    return 0;
}

void uxc_tree_free(struct ux_client *c)
{
    if (c->descent) {
        free(c->descent->want);
        free(c->descent->next);
        free(c->descent);
    }
    c->descent = NULL;
}

const uint8_t *uxc_leaf(const struct ux_client *c, uint32_t i)
{
    uint32_t lo = 0, hi = c->nleaves;
    if (c->state == UXC_TREE)
        return NULL;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->leaves[mid].index == i)
            return c->leaves[mid].hash;
        if (c->leaves[mid].index < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The children of a wanted node at LEVEL: those the basis shares are
 * reused, the others are wanted next (or, at the leaves, fetched with
 * their hashes known). A node with enough children to judge by is fetched
 * whole below it when most of its 32-chunk children changed, or all of
 * its larger ones: descending would cost about as much as the chunks.
 * Where only some changed (an edit, or a partial file's end), it descends. */
static int compare_children(struct ux_client *c, uint32_t index, const uint8_t *children, uint32_t n)
{
    struct ux_descent *d = c->descent;
    int below = d->level - 1;
    uint32_t first, cn, differ = 0;
    ux_tree_children(&d->shape, d->level, index, &first, &cn);
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *l = local_node(c->cfg.basis, below, first + j);
        differ += !l || !ux_equal(l, children + j * UX_HASH_LEN, UX_HASH_LEN);
    }
    int broad = !c->cfg.verify_leaves && below > 0 && n >= UX_TREE_FANOUT / 2 && (below == 1 ? differ > n / 2 : differ == n);
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *h = children + j * UX_HASH_LEN, *l = local_node(c->cfg.basis, below, first + j);
        if (l && ux_equal(l, h, UX_HASH_LEN))
            reuse_span(c, below, first + j);
        else if (below == 0 && add_leaf(c, first + j, h))
            return -1;
        else if (below > 0 && !broad && want_node(d, ux_tree_id(&d->shape, below, first + j), h))
            return -1;
    }
    return 0;
}

static struct want *find_want(struct ux_descent *d, uint32_t id)
{
    uint32_t lo = 0, hi = d->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->want[mid].id == id)
            return &d->want[mid];
        if (d->want[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Every wanted node of this level is in: go down one, or stop. */
static void next_level(struct ux_client *c, uint64_t now)
{
    struct ux_descent *d = c->descent;
    if (!d->nnext) {
        finish(c, now);
        return;
    }
    struct want *t = d->want;
    uint32_t cap = d->cap;
    d->want = d->next, d->n = d->left = d->nnext, d->cap = d->next_cap;
    d->next = t, d->nnext = 0, d->next_cap = cap;
    qsort(d->want, d->n, sizeof *d->want, by_id);
    d->level--;
    d->cursor = 0;
    d->sent_at = 0;
}

void uxc_on_tree_data(struct ux_client *c, struct ux_peer *p, const struct ux_msg *m, uint64_t now)
{
    struct ux_descent *d = c->descent;
    if (c->state != UXC_TREE || !p->active || !p->has_root)
        return;
    int level;
    uint32_t index, first, n;
    struct want *w = find_want(d, m->u.data.index);
    if (!w || w->got)
        return; /* a duplicate, or a node of a level already done */
    uint8_t h[UX_HASH_LEN];
    if (m->u.data.hash ? ux_chunk_hash(c->sha, m->u.data.index, m->u.data.data, m->u.data.len, h) ||
                             !ux_equal(h, m->u.data.hash, UX_CHUNK_HASH_LEN)
                       : !c->keyed)
        return; /* damaged on the way (bare only if sealed) */
    ux_tree_locate(&d->shape, w->id, &level, &index);
    ux_tree_children(&d->shape, level, index, &first, &n);
    if (m->u.data.len != (size_t)n * UX_HASH_LEN || ux_tree_hash_node(c->sha, m->u.data.data, n, h) ||
        !ux_equal(h, w->hash, UX_HASH_LEN)) {
        /* Its node does not hash to what its parent says: it offered this
         * version's root, so it is wrong, provably. */
        p->st.bad++;
        c->bad++;
        uxc_drop_peer(c, p, UXC_DROP_CORRUPT);
        d->cursor = 0;
        if (!tree_peer(c)) /* no one left to compare trees with: the fetch would wait for ever */
            uxc_fail(c, UX_ERR_CORRUPT, "every server sent tree nodes that do not match the file's tree");
        return;
    }
    p->last_rx = now;
    p->silent_rtos = 0;
    p->st.tree_nodes++;
    c->nodes_fetched++;
    c->tree_bytes += m->u.data.len;
    w->got = 1;
    d->left--;
    if (compare_children(c, index, m->u.data.data, n)) {
        uxc_fail(c, UX_ERR_IO, "out of memory comparing trees");
        return;
    }
    if (!d->left)
        next_level(c, now);
}

/* The peer to ask for nodes: the one asked so far while it is active. */
static struct ux_peer *tree_peer(struct ux_client *c)
{
    struct ux_descent *d = c->descent;
    if (d->asked >= 0 && c->peers[d->asked].active)
        return &c->peers[d->asked];
    for (int i = 0; i < c->npeers; i++)
        if (c->peers[i].active && c->peers[i].has_root) {
            d->asked = i;
            d->cursor = 0;
            return &c->peers[i];
        }
    return NULL;
}

size_t uxc_out_tree(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to)
{
    struct ux_descent *d = c->descent;
    struct ux_peer *p = tree_peer(c);
    if (!p || d->cursor >= d->n)
        return 0;
    struct ux_msg *m = &c->scratch;
    memset(m, 0, sizeof *m);
    m->type = UX_NEED;
    m->flags = UX_FLAG_TREE;
    m->xid = c->xid;
    m->u.need.handle = p->handle;
    m->u.need.chunk_size = c->chunk_size;
    memcpy(m->u.need.cookie, p->cookie, UX_COOKIE_LEN);
    m->u.need.seq = ++p->need_seq;
    uint32_t asked = 0;
    for (; d->cursor < d->n && asked < NODES_PER_NEED; d->cursor++) {
        const struct want *w = &d->want[d->cursor];
        if (w->got)
            continue;
        struct ux_range *last = m->u.need.nranges ? &m->u.need.ranges[m->u.need.nranges - 1] : NULL;
        if (last && last->first + last->count == w->id)
            last->count++;
        else if (m->u.need.nranges < UX_MAX_RANGES)
            m->u.need.ranges[m->u.need.nranges++] = (struct ux_range){w->id, 1};
        else
            break;
        asked++;
    }
    if (!asked)
        return 0;
    d->sent_at = p->need_sent_at = now;
    *to = p->addr;
    return ux_encode(m, buf, cap);
}

void uxc_tree_tick(struct ux_client *c, uint64_t now)
{
    struct ux_descent *d = c->descent;
    if (!d || c->state != UXC_TREE || !d->sent_at || d->cursor < d->n || d->asked < 0)
        return;
    struct ux_peer *p = &c->peers[d->asked];
    if (now < d->sent_at + uxc_rto(p))
        return;
    p->st.timeouts++;
    d->sent_at = 0;
    d->cursor = 0; /* ask again for what is missing */
    if (++p->silent_rtos >= SILENT_RTO_LIMIT)
        uxc_drop_peer(c, p, UXC_DROP_SILENT);
}

uint64_t uxc_tree_deadline(const struct ux_client *c)
{
    const struct ux_descent *d = c->descent;
    if (!d || d->asked < 0)
        return 0;
    if (d->cursor < d->n)
        return 0;
    return d->sent_at ? d->sent_at + uxc_rto(&c->peers[d->asked]) : UINT64_MAX;
}

int uxc_reuse_step(struct ux_client *c, uint64_t now)
{
    (void)now;
    if (!c->reuse || c->state != UXC_TRANSFER)
        return 0;
    uint64_t moved = 0;
    while (c->reuse_next < c->count && moved < REUSE_STEP) {
        uint32_t i = c->reuse_next;
        if (!get_bit(c->reuse, i)) {
            c->reuse_next++;
            continue;
        }
        uint32_t e = i;
        while (e < c->count && get_bit(c->reuse, e) && (uint64_t)(e - i) * c->chunk_size < REUSE_STEP)
            e++;
        uint64_t off = (uint64_t)i * c->chunk_size, end = (uint64_t)e * c->chunk_size;
        if (end > c->size)
            end = c->size;
        int err = c->cfg.on_reuse ? c->cfg.on_reuse(c->cfg.ud, off, (size_t)(end - off)) : 0;
        if (err) {
            uxc_fail(c, UX_ERR_IO, "cannot copy from the local copy");
            return 0;
        }
        c->bytes_reused += end - off;
        c->chunks_reused += e - i;
        moved += end - off;
        c->reuse_next = e;
    }
    return c->reuse_next < c->count;
}

int uxc_all_in(const struct ux_client *c)
{
    return c->state == UXC_TRANSFER && c->map.have == c->count && (!c->reuse || c->reuse_next >= c->count);
}
