/* What the file set's files share (fileset.c: names, descriptors, hashes,
 * trees; lent.c: kept chunk hashes and mappings; served_listing.c:
 * listings). Not part of its interface. */
#ifndef UDPXFER_FILESET_INT_H
#define UDPXFER_FILESET_INT_H

#include "fileset.h"

/* fileset.c */
struct ux_entry *ux_find_entry(struct ux_fileset *fs, const char *name, size_t len);
/* Does E describe the version ST of its file? */
int ux_same_file(const struct ux_entry *e, const struct stat *st);
/* Hash FD (version ST of NAME) off the loop if it is large enough and the
 * thread is free: 1 if started (FD taken, or kept while busy), else 0. */
int ux_hash_off_loop(struct ux_fileset *fs, const char *name, size_t len, int fd, const struct stat *st,
                     int want_sha, uint32_t tree_cs);

/* prehash.c: files written since they were served, hashed before anyone asks */
/* The served tree ROOT has a catalog now: its changes wake the server. */
void ux_prehash_watch(struct ux_fileset *fs, int root);
/* Take in the catalogs' changes; start hashing the next written file. */
void ux_prehash_step(struct ux_fileset *fs);
void ux_prehash_free(struct ux_fileset *fs);

/* lent.c */
/* E's mapping goes, once everything output so far is sent (ux_fileset_sent). */
void ux_unmap(struct ux_fileset *fs, struct ux_entry *e);
/* E's kept chunk hashes for chunk size CS, or NULL if it keeps none. */
struct ux_hfile *ux_cached(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs);
/* Chunk bytes at OFF lent from E's mapping (of FD), or NULL if it cannot be mapped. */
const uint8_t *ux_lend(struct ux_fileset *fs, struct ux_entry *e, int fd, uint64_t off, size_t len);

/* treekeep.c: trees kept, within UX_FS_TREE_BYTES */
/* What building a tree of SIZE bytes at chunk size CS costs, in work units, counted. */
void ux_charge_tree(struct ux_fileset *fs, uint64_t size, uint32_t cs);
/* May a tree of SIZE bytes at CS be kept at all? */
int ux_tree_fits(uint64_t size, uint32_t cs);
/* T (taken) becomes one of the N trees in SLOTS, at CS: in place of the
 * one there at CS, else an empty one, else the least recently used of
 * those no proven client opened, else the least recently used. */
struct ux_ftree *ux_keep_tree(struct ux_fileset *fs, struct ux_ftree *slots, int n, uint32_t cs, struct ux_tree *t);
void ux_drop_tree(struct ux_fileset *fs, struct ux_ftree *t);
/* The one of the N SLOTS at CS, or NULL. */
struct ux_ftree *ux_find_tree(struct ux_ftree *slots, int n, uint32_t cs);

/* What a kind of handle is served by: files (fileset.c), listings
 * (served_listing.c, UX_LISTING_HANDLE) and batches of a listing's files
 * (served_batch.c, UX_BATCH_HANDLE). The provider picks the table by the
 * handle; a lookup, by the kind asked for. HASH may be NULL: not wanted. */
struct ux_served_ops {
    int (*current)(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out);
    int (*read)(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len);
    int (*chunk)(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                 uint8_t *hash, const uint8_t **lent);
    int (*node)(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len);
    const char *(*name)(struct ux_fileset *fs, uint32_t handle);
    void (*opened)(struct ux_fileset *fs, uint32_t handle, uint32_t cs);
};
extern const struct ux_served_ops ux_listing_ops, ux_batch_ops;

/* fileset.c, for batches: a served file by name (a lookup that hashes
 * nothing new: it is listed, so hashed), and its chunk bytes. */
int ux_fileset_lookup_file(struct ux_fileset *fs, const char *name, size_t len, struct ux_file_info *out);
int ux_fileset_chunk(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                     const uint8_t **lent);

/* served_batch.c */
int ux_batch_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out);
void ux_batch_free_all(struct ux_fileset *fs);

/* served_listing.c: listings, behind handles with UX_LISTING_HANDLE set */
int ux_listing_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out);
int ux_listing_current(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out);
int ux_listing_read(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len);
const char *ux_listing_name(struct ux_fileset *fs, uint32_t handle);
int ux_listing_node(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len);
/* A proven client opened a session on listing HANDLE at CS. */
void ux_listing_opened(struct ux_fileset *fs, uint32_t handle, uint32_t cs);
void ux_listing_free(struct ux_fileset *fs, struct ux_vlisting *v);

#endif
