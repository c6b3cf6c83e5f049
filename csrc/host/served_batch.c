/* Batches: files of a folder's listing asked for as one transfer
 * (REQUEST kind FILES, engine/layout.h). The selection names the listing
 * by its SHA-256 and the files by their numbers in it; a batch is served
 * only while that listing is the folder's current one (else "stale": the
 * folder changed since the client listed it). Each file is looked up by
 * name at its first chunk and must still have the listed SHA-256; its
 * chunks then come from the file set, lent from a mapping where they can
 * be, never hashed (a batch's chunks go bare: each file is checked whole
 * by the client). */
#include "fileset_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/listing.h"

static void free_batch(struct ux_vbatch *v)
{
    for (uint32_t i = 0; v->names && i < v->nfiles; i++)
        free(v->names[i]);
    free(v->names);
    free(v->sha);
    free(v->handle);
    free(v->remote);
    ux_layout_free(&v->layout);
    memset(v, 0, sizeof *v);
}

void ux_batch_free_all(struct ux_fileset *fs)
{
    for (int i = 0; i < UX_FS_BATCHES; i++)
        free_batch(&fs->batches[i]);
}

static struct ux_vbatch *slot_of(struct ux_fileset *fs, uint32_t handle)
{
    uint32_t i = handle & ~UX_BATCH_HANDLE;
    return i < UX_FS_BATCHES && fs->batches[i].remote ? &fs->batches[i] : NULL;
}

static void fill_info(struct ux_vbatch *v, uint32_t slot, struct ux_file_info *out)
{
    memset(out, 0, sizeof *out);
    out->handle = UX_BATCH_HANDLE | slot;
    out->generation = v->generation;
    out->size = v->layout.total;
    memcpy(out->sha256, v->digest, UX_HASH_LEN);
    out->layout = &v->layout;
}

/* Is file number N in the selection? R walks its ranges as N goes up. */
static int selected(const struct ux_selection *s, uint16_t *r, uint32_t n)
{
    while (*r < s->nranges && (uint64_t)s->ranges[*r].first + s->ranges[*r].count <= n)
        (*r)++;
    return *r < s->nranges && n >= s->ranges[*r].first;
}

/* The selected files of listing TEXT into V (names as served beneath REMOTE). */
static int take_files(struct ux_vbatch *v, const struct ux_selection *s, uint32_t want, const char *remote,
                      size_t rlen, const char *text, size_t len)
{
    v->names = calloc(want ? want : 1, sizeof *v->names);
    v->sha = malloc((want ? want : 1) * sizeof *v->sha);
    v->handle = calloc(want ? want : 1, sizeof *v->handle);
    uint64_t *sizes = malloc((want ? want : 1) * sizeof *sizes);
    char *line = malloc(len + 1);
    int code = v->names && v->sha && v->handle && sizes && line ? 0 : UX_E_IO;
    uint32_t number = 0, got = 0;
    uint16_t r = 0;
    int whole = rlen == 1 && remote[0] == '.';
    for (const char *p = text, *end = text + len; !code && p < end && got < want;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct ux_lentry e;
        const char *why;
        memcpy(line, p, n);
        p += n + 1;
        if (n < 2 || line[0] != 'f' || ux_listing_parse(line, n, &e, &why))
            continue; /* the magic line, folders, links */
        if (selected(s, &r, number++)) {
            size_t nl2 = whole ? e.path_len : rlen + 1 + e.path_len;
            if (nl2 > UX_MAX_NAME || !(v->names[got] = malloc(nl2 + 1))) {
                code = UX_E_IO;
                break;
            }
            if (whole)
                memcpy(v->names[got], e.path, e.path_len);
            else
                snprintf(v->names[got], nl2 + 1, "%.*s/%.*s", (int)rlen, remote, (int)e.path_len, e.path);
            v->names[got][nl2] = 0;
            memcpy(v->sha[got], e.sha256, UX_HASH_LEN);
            sizes[got++] = e.size;
        }
    }
    v->nfiles = got;
    if (!code && got != want)
        code = UX_E_NOTFOUND; /* numbers past the listing's files */
    if (!code && ux_layout_init(&v->layout, sizes, got, v->cs))
        code = UX_E_REFUSED;
    free(sizes);
    free(line);
    return code;
}

static struct ux_vbatch *claim(struct ux_fileset *fs, uint32_t *slot)
{
    struct ux_vbatch *old = &fs->batches[0];
    for (int i = 0; i < UX_FS_BATCHES; i++) {
        if (!fs->batches[i].remote) {
            old = &fs->batches[i];
            break;
        }
        if (fs->batches[i].last_use < old->last_use)
            old = &fs->batches[i];
    }
    free_batch(old); /* a session on it ends: its handle is gone */
    *slot = (uint32_t)(old - fs->batches);
    return old;
}

int ux_batch_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out)
{
    struct ux_selection s;
    uint8_t digest[UX_HASH_LEN];
    int64_t want = -1;
    /* an empty selection names nothing to serve */
    if (!q->sel || ux_selection_decode(q->sel, q->sel_len, &s) || (want = ux_selection_count(&s)) <= 0 ||
        ux_selection_digest(fs->sha, &s, q->chunk_size, digest))
        return UX_E_REFUSED;
    for (uint32_t i = 0; i < UX_FS_BATCHES; i++) {
        struct ux_vbatch *v = &fs->batches[i];
        if (v->remote && v->cs == q->chunk_size && !memcmp(v->digest, digest, UX_HASH_LEN)) {
            v->last_use = ++fs->clock;
            fill_info(v, i, out);
            return 0;
        }
    }
    /* the folder's listing as it is now: the one the client chose, or stale */
    struct ux_lookup lq = {.kind = UX_KIND_LISTING, .name = q->name, .len = q->len, .chunk_size = q->chunk_size};
    struct ux_file_info li;
    int code = ux_listing_lookup(fs, &lq, &li);
    if (code)
        return code;
    if (memcmp(li.sha256, s.listing, UX_HASH_LEN))
        return UX_E_STALE;
    const struct ux_vlisting *l = &fs->listings[li.handle & ~UX_LISTING_HANDLE];
    /* Made aside, and a slot taken only for a batch that can be served:
     * a request that fails evicts no batch a session is reading. */
    struct ux_vbatch nb = {.cs = q->chunk_size};
    code = take_files(&nb, &s, (uint32_t)want, q->name, q->len, l->text, l->len);
    if (!code && !(nb.remote = strndup(q->name, q->len)))
        code = UX_E_IO;
    if (code) {
        free_batch(&nb);
        return code;
    }
    uint32_t slot;
    struct ux_vbatch *v = claim(fs, &slot);
    *v = nb;
    memcpy(v->digest, digest, UX_HASH_LEN);
    v->generation = ++fs->generations;
    v->last_use = ++fs->clock;
    fill_info(v, slot, out);
    return 0;
}

static int batch_current(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out)
{
    struct ux_vbatch *v = slot_of(fs, handle);
    if (!v)
        return UX_E_NOTFOUND;
    fill_info(v, handle & ~UX_BATCH_HANDLE, out);
    return 0;
}

/* File F's handle: looked up at its first chunk, and still the listed version. */
static int file_of(struct ux_fileset *fs, struct ux_vbatch *v, uint32_t f, uint32_t *handle)
{
    if (!v->handle[f]) {
        struct ux_file_info fi;
        int code = ux_fileset_lookup_file(fs, v->names[f], strlen(v->names[f]), &fi);
        if (code)
            return code == UX_E_IO ? EIO : ESTALE; /* gone, or being hashed: changed since listed */
        if (memcmp(fi.sha256, v->sha[f], UX_HASH_LEN))
            return ESTALE;
        v->handle[f] = fi.handle;
    }
    *handle = v->handle[f];
    return 0;
}

static int batch_chunk(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t g, uint8_t *buf, size_t len,
                       uint8_t *hash, const uint8_t **lent)
{
    struct ux_vbatch *v = slot_of(fs, handle);
    if (!v || cs != v->cs || g >= ux_layout_chunks(&v->layout))
        return EINVAL;
    uint32_t f, fh;
    uint64_t off;
    if (ux_layout_chunk(&v->layout, g, &f, &off) != len)
        return EINVAL;
    int err = file_of(fs, v, f, &fh);
    if (!err)
        err = ux_fileset_chunk(fs, fh, cs, (uint32_t)(off / cs), buf, len, lent);
    if (!err && hash)
        memset(hash, 0, UX_HASH_LEN); /* a batch's chunks go bare */
    v->last_use = ++fs->clock;
    return err;
}

static int batch_read(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    (void)fs, (void)handle, (void)off, (void)buf, (void)len;
    return EINVAL; /* read by chunk only */
}

static int batch_node(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    (void)fs, (void)handle, (void)cs, (void)id, (void)buf, (void)len;
    return ENOENT; /* many files have no one tree */
}

static const char *batch_name(struct ux_fileset *fs, uint32_t handle)
{
    struct ux_vbatch *v = slot_of(fs, handle);
    return v ? v->remote : NULL;
}

static void batch_opened(struct ux_fileset *fs, uint32_t handle, uint32_t cs)
{
    (void)fs, (void)handle, (void)cs;
}

const struct ux_served_ops ux_batch_ops = {batch_current, batch_read, batch_chunk,
                                           batch_node,    batch_name, batch_opened};
