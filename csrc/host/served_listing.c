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

/* The text for REMOTE, and the generation of the tree it was built from. */
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
    if (!r->catalog) {
        int err = 0;
        if (!(r->catalog = ux_catalog_open(r->fd, &err)))
            return UX_E_IO;
    } else {
        ux_catalog_refresh(r->catalog);
    }
    *gen = ux_catalog_generation(r->catalog);
    if (cached && cached->text && cached->catalog_gen == *gen)
        return -1; /* the kept text stands */
    if (cached && cached->waiting_gen == *gen && fs->job.running && !ux_hashjob_finished(&fs->job))
        return UX_E_PREPARING; /* nothing changed but the file still being hashed: no rebuild */
    struct hash_ctx h = {fs, root, cs};
    return ux_catalog_listing(r->catalog, sub, sublen, hash_file, &h, text, tlen);
}

/* Slot LRU, given to the listing Q names (its old text stays until a new one replaces it). */
static struct ux_vlisting *claim(struct ux_fileset *fs, struct ux_vlisting *lru, const struct ux_lookup *q)
{
    (void)fs;
    free(lru->remote);
    free(lru->text);
    ux_tree_free(&lru->tree);
    memset(lru, 0, sizeof *lru);
    lru->remote = strndup(q->name, q->len);
    return lru->remote ? lru : NULL;
}

int ux_listing_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out)
{
    struct ux_vlisting *slot = NULL, *lru = &fs->listings[0];
    for (int i = 0; i < UX_FS_LISTINGS; i++) {
        struct ux_vlisting *v = &fs->listings[i];
        if (v->remote && strlen(v->remote) == q->len && !memcmp(v->remote, q->name, q->len))
            slot = v;
        if (!v->remote || (lru->remote && v->last_use < lru->last_use))
            lru = v;
    }
    char *text = NULL;
    size_t len = 0;
    uint64_t gen = 0;
    int code = build(fs, q->name, q->len, q->chunk_size, &text, &len, &gen, slot);
    if (code == UX_E_PREPARING && (slot || (slot = claim(fs, lru, q))))
        slot->waiting_gen = gen;
    if (code > 0)
        return code;
    if (code == 0) {
        if (!slot && !(slot = claim(fs, lru, q))) {
            free(text);
            return UX_E_IO;
        }
        if (!slot->text || slot->len != len || memcmp(slot->text, text, len)) {
            free(slot->text);
            slot->text = text;
            slot->len = len;
            ux_tree_free(&slot->tree);
            slot->tree_cs = 0;
            slot->generation = ++fs->generations; /* a new version: older cookies are stale */
            struct ux_sha *sha = fs->sha;
            if (ux_sha_init(sha) || ux_sha_update(sha, text, len) || ux_sha_final(sha, slot->sha256))
                return UX_E_IO;
        } else {
            free(text);
        }
        slot->catalog_gen = gen;
    }
    slot->last_use = ++fs->clock;
    memset(out, 0, sizeof *out);
    /* A client holding an older copy compares trees: the listing's own is
     * made from memory, for the chunk size asked. */
    if (q->want_tree && slot->tree_cs != q->chunk_size) {
        ux_tree_free(&slot->tree);
        slot->tree_cs = ux_tree_of(&slot->tree, fs->sha, (const uint8_t *)slot->text, slot->len, q->chunk_size)
                            ? 0 : q->chunk_size;
    }
    if (q->want_tree && slot->tree_cs) {
        out->has_root = 1;
        ux_tree_root(&slot->tree, out->root);
    }
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
    if (!v || v->tree_cs != cs)
        return ENOENT;
    *len = ux_tree_node_bytes(&v->tree, id, buf);
    return *len ? 0 : ENOENT;
}
