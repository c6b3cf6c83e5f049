/* Stateful fuzz target: the file client in a transfer. It asks, is offered
 * a 2567-byte file of 'x' in 64-byte chunks by one or two servers, sends its
 * NEEDs, and is then fed the input's records (fuzz_common.h); repaired DATA
 * gets its chunk hash right, so chunks are taken and the transfer can end.
 * First byte: bit 0 fetch against a basis (the tree's descent), bit 1
 * verify every leaf, bit 2 two servers, bit 3 a legacy fetch, bit 4 a
 * batch: files of a listing (sizes BATCH_SIZES, empty ones among them)
 * laid end to end, offered as such, their chunks bare (repaired DATA gets
 * the length of its chunk in the layout). */
#include <stdio.h>

#include "engine/client.h"
#include "engine/hash.h"
#include "engine/layout.h"
#include "engine/tree.h"
#include "engine/wire.h"
#include "fuzz_common.h"

#define CS 64
#define SIZE (CS * 40 + 7)

static const uint64_t BATCH_SIZES[] = {100, 0, 64, 1, 0, 63, 65, 640, 7, 0, 200};
#define BATCH_FILES (sizeof BATCH_SIZES / sizeof BATCH_SIZES[0])

/* The batch asked for: its selection (files 3-8 and 20-24 of a listing),
 * encoded, its layout and digest. */
static struct {
    struct ux_layout layout;
    uint8_t sel[UX_HASH_LEN + 2 + 16];
    size_t sel_len;
    uint8_t digest[UX_HASH_LEN];
} batch;

static void batch_init(struct ux_sha *sha)
{
    struct ux_selection s = {.nranges = 2, .ranges = {{3, 6}, {20, 5}}};
    memset(s.listing, 0x4c, UX_HASH_LEN);
    batch.sel_len = ux_selection_encode(&s, batch.sel, sizeof batch.sel);
    if (!batch.sel_len || ux_selection_digest(sha, &s, CS, batch.digest) ||
        ux_layout_init(&batch.layout, BATCH_SIZES, BATCH_FILES, CS))
        abort();
}

static int on_start(void *ud, uint64_t size, const char **why)
{
    (void)ud, (void)size, (void)why;
    return 0;
}

/* A chunk taken: in a batch, one of the layout's, whole. */
static int on_chunk(void *ud, uint32_t i, uint64_t off, const uint8_t *d, size_t n)
{
    const struct ux_client_cfg *cfg = ud;
    uint32_t f;
    uint64_t o;
    (void)off, (void)d;
    if (cfg->layout && (i >= ux_layout_chunks(cfg->layout) || !n || n != ux_layout_chunk(cfg->layout, i, &f, &o)))
        abort();
    return 0;
}

static int on_reuse(void *ud, uint64_t off, size_t len)
{
    (void)ud, (void)off, (void)len;
    return 0;
}

static void drain(struct ux_client *c, uint64_t now)
{
    static uint8_t buf[70000];
    struct ux_addr to;
    struct ux_client_event ev;
    for (int i = 0; i < 10000 && ux_client_output(c, now, buf, sizeof buf, &to); i++)
        ;
    while (ux_client_next_event(c, &ev))
        ;
}

/* A DATA datagram made to pass: a tree node's children made the true
 * ones, and the short hash matched to the bytes; a bare one of a batch
 * given its chunk's length. */
static void repair(struct ux_sha *sha, const struct ux_tree *t, struct fz_rec *r)
{
    if (!(r->op & 2) || r->n < UX_BARE_DATA_OVERHEAD || r->pkt[3] != UX_DATA)
        return;
    uint32_t index = (uint32_t)r->pkt[20] << 24 | (uint32_t)r->pkt[21] << 16 | (uint32_t)r->pkt[22] << 8 | r->pkt[23];
    if (r->pkt[4] & UX_FLAG_BARE) {
        uint32_t f;
        uint64_t off;
        size_t len = index < ux_layout_chunks(&batch.layout) ? ux_layout_chunk(&batch.layout, index, &f, &off) : 0;
        if (r->n < UX_BARE_DATA_OVERHEAD + len)
            memset(r->pkt + r->n, 'x', UX_BARE_DATA_OVERHEAD + len - r->n);
        r->n = UX_BARE_DATA_OVERHEAD + len;
        size_t body = r->n - UX_HDR_LEN;
        r->pkt[6] = (uint8_t)(body >> 8), r->pkt[7] = (uint8_t)body;
        return;
    }
    if (r->n < UX_DATA_OVERHEAD)
        return;
    uint8_t h[UX_HASH_LEN];
    if (r->pkt[4] & UX_FLAG_TREE) {
        size_t n = ux_tree_node_bytes(t, index, r->pkt + UX_DATA_OVERHEAD);
        size_t body = UX_DATA_OVERHEAD - UX_HDR_LEN + n;
        r->n = UX_DATA_OVERHEAD + n;
        r->pkt[6] = (uint8_t)(body >> 8), r->pkt[7] = (uint8_t)body;
    }
    if (ux_chunk_hash(sha, index, r->pkt + UX_DATA_OVERHEAD, r->n - UX_DATA_OVERHEAD, h) == 0)
        memcpy(r->pkt + 24, h, UX_CHUNK_HASH_LEN);
}

static void offer(struct ux_client *c, const struct ux_tree *t, const struct ux_addr *from, uint64_t now)
{
    static uint8_t buf[512];
    struct ux_msg m = {.type = UX_OFFER, .xid = c->xid};
    m.u.offer.size = SIZE, m.u.offer.chunk_size = CS, m.u.offer.chunk_count = (SIZE + CS - 1) / CS;
    m.u.offer.handle = 1;
    memset(m.u.offer.sha256, 0x5a, UX_HASH_LEN);
    memset(m.u.offer.cookie, 0x11, UX_COOKIE_LEN);
    m.u.offer.flags = UX_OFFER_TREE;
    ux_tree_root(t, m.u.offer.root);
    if (c->cfg.layout) { /* one offer for the files laid end to end, named by the selection's digest */
        m.u.offer.size = batch.layout.total, m.u.offer.chunk_count = ux_layout_chunks(&batch.layout);
        m.u.offer.handle = 2, m.u.offer.flags = 0;
        memcpy(m.u.offer.sha256, batch.digest, UX_HASH_LEN);
    }
    size_t n = ux_encode(&m, buf, sizeof buf);
    ux_client_input(c, now, buf, n, from);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t content[SIZE];
    static struct ux_tree tree, basis;
    static struct ux_sha *sha;
    if (!sha) {
        sha = ux_sha_new();
        memset(content, 'x', sizeof content);
        memset(content + 1000, 'y', 300); /* the basis differs here */
        if (!sha || ux_tree_of(&basis, sha, content, sizeof content, CS))
            abort();
        memset(content + 1000, 'x', 300);
        if (ux_tree_of(&tree, sha, content, sizeof content, CS))
            abort();
        batch_init(sha);
    }
    uint8_t mode = size ? data[0] : 0;
    data += size ? 1 : 0, size -= size ? 1 : 0;
    uint64_t seed = 1;
    struct ux_client_cfg cfg = {.name = "f", .name_len = 1, .chunk_size = CS, .on_start = on_start,
                                .on_chunk = on_chunk, .on_reuse = on_reuse, .rng = {ux_rng_seeded, &seed},
                                .want_tree = mode & 1, .basis = mode & 1 ? &basis : NULL,
                                .verify_leaves = mode & 2, .legacy = (mode & 8) != 0};
    if (cfg.legacy)
        cfg.want_tree = cfg.verify_leaves = 0, cfg.basis = NULL, cfg.chunk_size = 1024;
    else if (mode & 16) { /* as host/batch.c sets a batch up */
        cfg.want_tree = cfg.verify_leaves = 0, cfg.basis = NULL;
        cfg.name = ".", cfg.kind = UX_KIND_FILES, cfg.sel = batch.sel, cfg.sel_len = batch.sel_len;
        cfg.layout = &batch.layout, cfg.unicast = 1, cfg.want_sha256_set = 1;
        memcpy(cfg.want_sha256, batch.digest, UX_HASH_LEN);
    }
    static struct ux_client c;
    struct ux_addr a = fz_addr("10.0.0.1:10526"), b = fz_addr("10.0.0.3:10526");
    if (ux_client_init(&c, &cfg, 0))
        abort();
    c.cfg.ud = &c.cfg;
    ux_client_add_target(&c, &a);
    if (mode & 4)
        ux_client_add_target(&c, &b);
    uint64_t now = 0;
    drain(&c, now);
    if (!cfg.legacy) {
        offer(&c, &tree, &a, now += 1000);
        if (mode & 4)
            offer(&c, &tree, &b, now);
    }
    drain(&c, now += 200000);
    struct fz_rec r;
    while (fz_next(&data, &size, &r)) {
        fz_set_xid(&r, c.xid);
        repair(sha, &tree, &r);
        now += fz_ms(&r) + 1;
        if (ux_client_input(&c, now, r.pkt, r.n, r.op & 4 ? &b : &a))
            ux_client_input(&c, now, r.pkt, r.n, r.op & 4 ? &b : &a);
        drain(&c, now);
    }
    drain(&c, now + 10000000);
    ux_client_free(&c);
    return 0;
}
