/* Hashing open files, read with pread: the whole file's SHA-256, and its
 * chunk-hash tree (engine/tree.h), in one pass when both are wanted. Holes
 * are not read (sparse.h). */
#ifndef UDPXFER_HOST_FILEHASH_H
#define UDPXFER_HOST_FILEHASH_H

#include <stdint.h>

#include "engine/hash.h"
#include "engine/tree.h"

/* SHA-256 of SIZE bytes of FD (UINT64_MAX: up to end of file). Returns 0
 * or an errno value (EIO if the file is shorter, ECANCELED once *CANCEL,
 * if given, is set by another thread). */
int ux_sha_fd(struct ux_sha *s, int fd, uint64_t size, const int *cancel, uint8_t out[UX_SHA256_LEN]);
/* SHA-256 of the file at PATH, or (ROOT >= 0) at REL beneath ROOT with no
 * symlink on the way; a FIFO fails instead of waiting. Returns 0 or an errno value. */
int ux_sha_file(int root, const char *path, uint8_t out[UX_SHA256_LEN]);

/* The tree of SIZE bytes of FD at chunk size CS into T (initialised
 * here), using SHA; with WHOLE, also the file's SHA-256 into WHOLE_OUT, from
 * the same reads. Returns 0 or an errno value, as ux_sha_fd. */
int ux_tree_fd(struct ux_tree *t, struct ux_sha *sha, int fd, uint64_t size, uint32_t cs, struct ux_sha *whole,
               uint8_t whole_out[UX_SHA256_LEN], const int *cancel);

#endif
