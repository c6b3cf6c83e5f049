/* Listings served like files (REQUEST kind LISTING): the text for a folder
 * of a served tree (engine/listing.h), kept in memory behind a handle with
 * UX_LISTING_HANDLE set, built again only when its tree changed. The empty
 * name lists the trees themselves: "." and one folder per share. */
#include "fileset_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "engine/listing.h"
#include "engine/names.h"

struct hash_ctx {
    struct ux_fileset *fs;
    int root;
    uint32_t cs;
};

static int hash_file(void *ud, const char *rel, const struct stat *st, uint8_t out[UX_HASH_LEN])
{
    struct hash_ctx *h = ud;
    return ux_fileset_file_hash(h->fs, h->root, rel, st, h->cs, out);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* The list of trees: "." for the folder, a folder entry per share. */
static int trees_text(struct ux_fileset *fs, char **text, size_t *len)
{
    size_t cap = sizeof UX_LISTING_MAGIC + (size_t)fs->nroots * (UX_MAX_NAME + 64);
    char *p = malloc(cap);
    if (!p)
        return UX_E_IO;
    size_t n = (size_t)snprintf(p, cap, "%s\n", UX_LISTING_MAGIC);
    for (int i = 0; i < fs->nroots; i++) {
        struct stat st;
        if (fstat(fs->roots[i].fd, &st))
            continue;
        struct ux_lentry e = {.type = UX_LT_DIR, .mode = st.st_mode & 07777, .mtime_ns = ns(st.st_mtim),
                              .path = fs->roots[i].name, .path_len = strlen(fs->roots[i].name)};
        n += ux_listing_format(&e, p + n, cap - n);
    }
    *text = p;
    *len = n;
    return 0;
}

/* May a build of the listing in V (NULL: none kept) be done now? Anything
 * within the budgets; with only UX_WORK_KNOWN, bringing up to date a
 * listing a proven client uses, or going on with a build begun. */
static int may_build(const struct ux_fileset *fs, const struct ux_vlisting *v)
{
    return fs->may == UX_WORK_ANY || (fs->may == UX_WORK_KNOWN && v && (v->waiting || (v->text && v->proven)));
}

/* The text for REMOTE, and the generation of the tree it was built from;
 * -1: the text kept in CACHED stands. */
static int build(struct ux_fileset *fs, const char *remote, size_t len, uint32_t cs, char **text, size_t *tlen,
                 uint64_t *gen, struct ux_vlisting *cached)
{
    if (len == 0) {
        *gen = 0;
        return trees_text(fs, text, tlen);
    }
    if (!(len == 1 && remote[0] == '.') && ux_name_check(remote, len))
        return UX_E_REFUSED;
    const char *slash = memchr(remote, '/', len);
    size_t first = slash ? (size_t)(slash - remote) : len;
    int root = 0;
    for (int i = 1; i < fs->nroots; i++)
        if (strlen(fs->roots[i].name) == first && !memcmp(fs->roots[i].name, remote, first))
            root = i;
    const char *sub = root ? (slash ? slash + 1 : ".") : remote;
    size_t sublen = root ? (slash ? len - first - 1 : 1) : len;
    struct ux_root *r = &fs->roots[root];
    r->list_cs = cs;
    fs->work += UX_LOOKUP_WORK;
    if (!r->catalog) {
        if (fs->may != UX_WORK_ANY) {
            fs->deferred = 1; /* the first scan of a tree walks all of it */
            return UX_E_PREPARING;
        }
        int err = 0;
        r->catalog = ux_catalog_open(r->fd, &err);
        if (r->catalog)
            ux_prehash_watch(fs, root);
        uint64_t scan = r->catalog ? ux_catalog_work(r->catalog) : 0;
        fs->work += scan;
        fs->work_once += scan; /* a tree is scanned once; inotify keeps it current */
        if (!r->catalog)
            return UX_E_IO;
    } else if (ux_catalog_watching(r->catalog) || may_build(fs, cached)) {
        /* Out of inotify watches, a refresh scans the whole tree again:
         * only within the budgets, else the kept text stands. */
        uint64_t before = ux_catalog_work(r->catalog);
        ux_catalog_refresh(r->catalog);
        fs->work += ux_catalog_work(r->catalog) - before;
    }
    *gen = ux_catalog_generation(r->catalog);
    if (cached && cached->text && cached->catalog_gen == *gen)
        return -1; /* the kept text stands */
    if (cached && cached->waiting_gen == *gen && fs->job.running && !ux_hashjob_finished(&fs->job))
        return UX_E_PREPARING; /* nothing changed but the file still being hashed: no rebuild */
    if (!may_build(fs, cached)) {
        fs->deferred = 1;
        return UX_E_PREPARING;
    }
    enum ux_work may = fs->may;
    fs->may = UX_WORK_ANY; /* what the build needs (its files' hashes) comes with it */
    struct hash_ctx h = {fs, root, cs};
    uint64_t before = ux_catalog_work(r->catalog);
    int code = ux_catalog_listing(r->catalog, sub, sublen, hash_file, &h, text, tlen);
    fs->work += ux_catalog_work(r->catalog) - before + (code ? 0 : *tlen);
    fs->may = may;
    return code;
}

void ux_listing_free(struct ux_fileset *fs, struct ux_vlisting *v)
{
    free(v->remote);
    fs->listing_bytes -= v->text ? v->len : 0;
    free(v->text);
    for (int i = 0; i < UX_LISTING_TREES; i++)
        ux_drop_tree(fs, &v->trees[i]);
    memset(v, 0, sizeof *v);
}

/* Is A a better slot to give away than B? Empty, then not opened by a
 * proven client, then used least recently. */
static int sooner(const struct ux_vlisting *a, const struct ux_vlisting *b)
{
    if (!a->remote || !b->remote)
        return !a->remote && b->remote;
    return a->proven != b->proven ? !a->proven : a->last_use < b->last_use;
}

static struct ux_vlisting *victim(struct ux_fileset *fs, const struct ux_vlisting *keep)
{
    struct ux_vlisting *v = NULL;
    for (int i = 0; i < UX_FS_LISTINGS; i++)
        if (&fs->listings[i] != keep && (!v || sooner(&fs->listings[i], v)))
            v = &fs->listings[i];
    return v;
}

/* A slot given to the listing Q names (its old text stays until a new one replaces it). */
static struct ux_vlisting *claim(struct ux_fileset *fs, const struct ux_lookup *q)
{
    struct ux_vlisting *v = victim(fs, NULL);
    ux_listing_free(fs, v);
    v->remote = strndup(q->name, q->len);
    return v->remote ? v : NULL;
}

/* TEXT (taken) is the listing V names now. Returns 0 or UX_E_IO. */
static int install(struct ux_fileset *fs, struct ux_vlisting *v, char *text, size_t len)
{
    if (v->text && v->len == len && !memcmp(v->text, text, len)) {
        free(text);
        return 0;
    }
    fs->listing_bytes += len - (v->text ? v->len : 0);
    free(v->text);
    v->text = text;
    v->len = len;
    v->generation = ++fs->generations; /* a new version: older cookies are stale */
    uint32_t proven_cs[UX_LISTING_TREES];
    for (int i = 0; i < UX_LISTING_TREES; i++) {
        proven_cs[i] = v->trees[i].proven ? v->trees[i].cs : 0;
        ux_drop_tree(fs, &v->trees[i]);
    }
    /* Within bounds: listings no proven client uses go first. */
    for (struct ux_vlisting *old; fs->listing_bytes > UX_FS_LISTING_BYTES && (old = victim(fs, v)) && old->remote;)
        ux_listing_free(fs, old);
    struct ux_sha *sha = fs->sha;
    fs->work += len;
    if (ux_sha_init(sha) || ux_sha_update(sha, text, len) || ux_sha_final(sha, v->sha256))
        return UX_E_IO;
    /* The trees proven clients compared the old version with are made for
     * the new one: they ask for them next. */
    for (int i = 0; i < UX_LISTING_TREES; i++) {
        struct ux_tree t;
        if (proven_cs[i] && ux_tree_fits(len, proven_cs[i]) &&
            ux_tree_of(&t, fs->sha, (const uint8_t *)text, len, proven_cs[i]) == 0) {
            ux_charge_tree(fs, len, proven_cs[i]);
            ux_keep_tree(fs, v->trees, UX_LISTING_TREES, proven_cs[i], &t)->proven = 1;
        }
    }
    return 0;
}

/* V's tree at CS into OUT's root, if it is kept or may be made now. */
static void listing_root(struct ux_fileset *fs, struct ux_vlisting *v, uint32_t cs, struct ux_file_info *out)
{
    struct ux_ftree *t = ux_find_tree(v->trees, UX_LISTING_TREES, cs);
    if (!t && fs->may_tree && ux_tree_fits(v->len, cs)) {
        struct ux_tree tree;
        ux_charge_tree(fs, v->len, cs);
        if (ux_tree_of(&tree, fs->sha, (const uint8_t *)v->text, v->len, cs) == 0)
            t = ux_keep_tree(fs, v->trees, UX_LISTING_TREES, cs, &tree);
    }
    if (t) {
        t->last_use = ++fs->clock;
        out->has_root = 1;
        ux_tree_root(&t->tree, out->root);
    }
}

int ux_listing_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out)
{
    struct ux_vlisting *slot = NULL;
    for (int i = 0; i < UX_FS_LISTINGS && !slot; i++) {
        struct ux_vlisting *v = &fs->listings[i];
        if (v->remote && strlen(v->remote) == q->len && !memcmp(v->remote, q->name, q->len))
            slot = v;
    }
    char *text = NULL;
    size_t len = 0;
    uint64_t gen = 0;
    int code = build(fs, q->name, q->len, q->chunk_size, &text, &len, &gen, slot);
    if (code == UX_E_PREPARING && !fs->deferred && (slot || (slot = claim(fs, q)))) {
        slot->waiting_gen = gen;
        slot->waiting = 1;
    }
    if (code > 0)
        return code;
    if (code == 0) {
        if (!slot && !(slot = claim(fs, q))) {
            free(text);
            return UX_E_IO;
        }
        if (install(fs, slot, text, len))
            return UX_E_IO;
        slot->catalog_gen = gen;
        slot->waiting = 0;
    }
    slot->last_use = ++fs->clock;
    memset(out, 0, sizeof *out);
    /* A client holding an older copy compares trees: the listing's own is
     * made from memory, for the chunk size asked. */
    if (q->want_tree)
        listing_root(fs, slot, q->chunk_size, out);
    out->handle = UX_LISTING_HANDLE | (uint32_t)(slot - fs->listings);
    out->generation = slot->generation;
    out->size = slot->len;
    memcpy(out->sha256, slot->sha256, UX_HASH_LEN);
    return 0;
}

static struct ux_vlisting *slot_of(struct ux_fileset *fs, uint32_t handle)
{
    uint32_t i = handle & ~UX_LISTING_HANDLE;
    return i < UX_FS_LISTINGS && fs->listings[i].remote ? &fs->listings[i] : NULL;
}

int ux_listing_current(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out)
{
    struct ux_vlisting *v = slot_of(fs, handle);
    if (!v)
        return UX_E_NOTFOUND;
    memset(out, 0, sizeof *out);
    out->handle = handle;
    out->generation = v->generation;
    out->size = v->len;
    memcpy(out->sha256, v->sha256, UX_HASH_LEN);
    return 0;
}

int ux_listing_read(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    struct ux_vlisting *v = slot_of(fs, handle);
    if (!v || off > v->len || len > v->len - off)
        return EIO;
    memcpy(buf, v->text + off, len);
    return 0;
}

const char *ux_listing_name(struct ux_fileset *fs, uint32_t handle)
{
    struct ux_vlisting *v = slot_of(fs, handle);
    return v ? v->remote : NULL;
}

int ux_listing_node(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    struct ux_vlisting *v = slot_of(fs, handle);
    struct ux_ftree *t = v ? ux_find_tree(v->trees, UX_LISTING_TREES, cs) : NULL;
    if (!t)
        return ENOENT;
    t->last_use = ++fs->clock;
    *len = ux_tree_node_bytes(&t->tree, id, buf);
    return *len ? 0 : ENOENT;
}

void ux_listing_opened(struct ux_fileset *fs, uint32_t handle, uint32_t cs)
{
    struct ux_vlisting *v = slot_of(fs, handle);
    struct ux_ftree *t = v ? ux_find_tree(v->trees, UX_LISTING_TREES, cs) : NULL;
    if (v)
        v->proven = 1;
    if (t)
        t->proven = 1;
}

static int listing_chunk(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf,
                         size_t len, uint8_t *hash, const uint8_t **lent)
{
    (void)lent;
    int err = ux_listing_read(fs, handle, (uint64_t)index * cs, buf, len);
    return err ? err : hash && ux_chunk_hash(fs->sha, index, buf, len, hash) ? EIO : 0;
}

const struct ux_served_ops ux_listing_ops = {ux_listing_current, ux_listing_read, listing_chunk,
                                             ux_listing_node,    ux_listing_name, ux_listing_opened};
