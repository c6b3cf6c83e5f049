/* The structure of one served tree (the folder or a share): every folder,
 * file and symbolic link below its root with the lstat that describes it,
 * scanned once and then kept current from inotify events, so a listing
 * request costs no walk of the tree. Files are hashed through a callback
 * (the file set's cache), links are listed as links, other kinds and
 * udpxfer's own files (names.h) are left out. */
#ifndef UDPXFER_HOST_CATALOG_H
#define UDPXFER_HOST_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/hash.h"

struct ux_catalog;

/* Work units (a byte hashed is one): for an entry listed, and scanned (a
 * stat, its folder opened and watched: about 12 us a folder measured). */
#define UX_ENTRY_WORK 1024
#define UX_SCAN_WORK 16384

/* The file REL's SHA-256 for the version ST describes; 0 or a UX_E_* code. */
typedef int (*ux_hash_fn)(void *ud, const char *rel, const struct stat *st, uint8_t out[UX_SHA256_LEN]);

/* Scan the tree whose root is ROOTFD (not taken). Returns NULL with *ERR. */
struct ux_catalog *ux_catalog_open(int rootfd, int *err);
void ux_catalog_close(struct ux_catalog *c);
/* Take in what changed since the last call (pending inotify events; a full
 * rescan if they overflowed). */
void ux_catalog_refresh(struct ux_catalog *c);
/* Read pending inotify events and keep them for the next refresh, which
 * applies them: cheap, whatever the tree's size. */
void ux_catalog_collect(struct ux_catalog *c);
/* Changes whenever the tree does. */
uint64_t ux_catalog_generation(const struct ux_catalog *c);
/* Readable when the tree changed (inotify), or -1 when it is not watched
 * (then every refresh rescans, and events are not read). */
int ux_catalog_fd(const struct ux_catalog *c);
/* The paths of files written since the last call (closed after writing,
 * moved in, touched: inotify's word that a writer is done), as events
 * named them; up to 1,024. */
typedef void (*ux_written_fn)(void *ud, const char *rel);
void ux_catalog_written(struct ux_catalog *c, ux_written_fn fn, void *ud);
/* The listing (engine/listing.h) of folder SUB ("." or a relative path of
 * a folder in the tree) into a malloc'd *TEXT. Returns 0, UX_E_NOTFOUND,
 * UX_E_PREPARING (a file is still being hashed) or UX_E_IO. */
int ux_catalog_listing(struct ux_catalog *c, const char *sub, size_t sublen, ux_hash_fn hash, void *ud,
                       char **text, size_t *len);
/* Entries, folders watched (0 when some folder could not be: then every
 * listing rescans), whole-tree scans so far; for stats. */
uint64_t ux_catalog_size(const struct ux_catalog *c);
int ux_catalog_watching(const struct ux_catalog *c);
uint64_t ux_catalog_rescans(const struct ux_catalog *c);
/* Work units spent so far: UX_SCAN_WORK per entry scanned, UX_ENTRY_WORK per entry listed. */
uint64_t ux_catalog_work(const struct ux_catalog *c);

#endif
