/* What the file set's files share (fileset.c: names, descriptors, hashes,
 * trees; lent.c: kept chunk hashes and mappings; served_listing.c:
 * listings). Not part of its interface. */
#ifndef UDPXFER_FILESET_INT_H
#define UDPXFER_FILESET_INT_H

#include "fileset.h"

/* lent.c */
void ux_unmap(struct ux_entry *e);
/* E's kept chunk hashes for chunk size CS, or NULL if it keeps none. */
struct ux_hfile *ux_cached(struct ux_fileset *fs, struct ux_entry *e, uint32_t cs);
/* Chunk bytes at OFF lent from E's mapping (of FD), or NULL if it cannot be mapped. */
const uint8_t *ux_lend(struct ux_fileset *fs, struct ux_entry *e, int fd, uint64_t off, size_t len);

/* served_listing.c: listings, behind handles with UX_LISTING_HANDLE set */
int ux_listing_lookup(struct ux_fileset *fs, const struct ux_lookup *q, struct ux_file_info *out);
int ux_listing_current(struct ux_fileset *fs, uint32_t handle, struct ux_file_info *out);
int ux_listing_read(struct ux_fileset *fs, uint32_t handle, uint64_t off, uint8_t *buf, size_t len);
const char *ux_listing_name(struct ux_fileset *fs, uint32_t handle);
int ux_listing_node(struct ux_fileset *fs, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len);

#endif
