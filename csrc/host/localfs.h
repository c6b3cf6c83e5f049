/* What a sync does to its folder, every path resolved strictly beneath the
 * folder with no symlink anywhere on the way (beneath.h), so nothing a
 * listing says can make it write, change or delete outside the folder:
 * reading the tree, making folders and links, setting modes and times,
 * removing, copying a local file, writing its index atomically. */
#ifndef UDPXFER_HOST_LOCALFS_H
#define UDPXFER_HOST_LOCALFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

/* One entry found by ux_local_scan. */
struct ux_local_entry {
    char *path;          /* relative; the folder itself is not reported */
    size_t len;
    char type;           /* 'd', 'f', 'l', or 'o' for anything else */
    struct stat st;
    char *target;        /* links */
    size_t tlen;
    int own;             /* a transfer's temporary file (names.h), left by one that was killed */
};

typedef int (*ux_scan_fn)(void *ud, const struct ux_local_entry *e);

/* The synced folder itself, opened (and closed) for the other calls. */
int ux_local_open_root(const char *path, int *fd);
void ux_local_close_root(int fd);
/* Every entry below ROOT (the index left out; temporary files flagged
 * `own`), parents before children, handed to FN (which may stop the walk by returning non-zero,
 * returned then). Returns 0 or an errno value. */
int ux_local_scan(int root, ux_scan_fn fn, void *ud);
/* lstat of REL. Returns 0 or an errno value. */
int ux_local_stat(int root, const char *rel, struct stat *st);
/* All return 0 or an errno value. */
int ux_local_mkdir(int root, const char *rel, uint32_t mode);
/* REL becomes a symlink to TARGET, replacing a link or file there. */
int ux_local_symlink(int root, const char *rel, const char *target, size_t tlen);
/* The mode of REL itself (nothing for a link; never what it points to). */
int ux_local_chmod(int root, const char *rel, uint32_t mode);
/* The mtime of REL itself (a link's own); "." is the folder ROOT. */
int ux_local_utime(int root, const char *rel, int64_t mtime_ns);
/* Remove a file, link or empty folder. */
int ux_local_remove(int root, const char *rel);
/* Remove REL if it is a regular file no fetch holds (partial.h): a
 * temporary file left behind, never a folder or a link. EBUSY if held. */
int ux_local_remove_partial(int root, const char *rel);
/* Remove REL and, for a folder, everything in it (never following a link). */
int ux_local_remove_tree(int root, const char *rel);
/* TO (replaced atomically) becomes a copy of FROM (a regular file) with
 * MODE. With SHA256 (32 bytes), the bytes copied are hashed on the way
 * and TO is left alone (EBADMSG) unless they have it. */
int ux_local_copy(int root, const char *from, const char *to, uint32_t mode, const uint8_t *sha256);
/* REL's bytes, up to MAX, into a malloc'd *DATA. EINVAL if REL is not a
 * regular file (a FIFO is refused, never waited on). */
int ux_local_read(int root, const char *rel, size_t max, char **data, size_t *len);
/* REL (replaced atomically, synced) holds the N pieces of IOV in turn. */
int ux_local_write(int root, const char *rel, const struct iovec *iov, size_t n);
/* REL (replaced atomically) holds DATA, with MODE and MTIME_NS set before
 * the rename (synced first with DURABLE); its stat in *ST. */
int ux_local_put(int root, const char *rel, const uint8_t *data, size_t len, uint32_t mode, int64_t mtime_ns,
                 int durable, struct stat *st);
/* The same for BASE in the folder DFD (opened with ux_local_open_parent). */
int ux_local_put_at(int dfd, const char *base, const uint8_t *data, size_t len, uint32_t mode, int64_t mtime_ns,
                    int durable, struct stat *st);
/* The folder holding REL, opened beneath ROOT with no symlink on the way,
 * and REL's last component in *BASE. Returns the descriptor, or -1 (errno). */
int ux_local_open_parent(int root, const char *rel, const char **base);
/* Flush the file system ROOT is on. */
int ux_local_sync(int root);

#endif
