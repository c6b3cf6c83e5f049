/* SHA-256 of an open file, read with pread. */
#ifndef UDPXFER_HOST_FILEHASH_H
#define UDPXFER_HOST_FILEHASH_H

#include <stdint.h>

#include "engine/hash.h"

/* SHA-256 of SIZE bytes of FD (UINT64_MAX: up to end of file). Returns 0
 * or an errno value (EIO if the file is shorter, ECANCELED once *CANCEL,
 * if given, is set by another thread). */
int ux_sha_fd(struct ux_sha *s, int fd, uint64_t size, const int *cancel, uint8_t out[UX_SHA256_LEN]);

#endif
