/* The client's output file: a temporary file beside the destination, written
 * chunk by chunk, and renamed over the final name only after the whole-file
 * SHA-256 matches. Until then the final name is untouched. */
#ifndef UDPXFER_SINK_H
#define UDPXFER_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

struct ux_sink {
    int fd;
    int dirfd;
    char tmp[300];
    char final[300];
    uint64_t size;
};

/* All return 0 or an errno value; *why gets a short description. */
int ux_sink_open(struct ux_sink *k, const char *dir, const char *base, uint64_t size, const char **why);
int ux_sink_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len);
/* The real size turned out smaller than reserved (legacy transfers learn
 * it from the last chunk). Returns 0 or an errno value. */
int ux_sink_truncate(struct ux_sink *k, uint64_t size);
/* Hash the file; on a match sync and rename it. EBADMSG on a mismatch. */
int ux_sink_commit(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN], const char **why);
/* Remove the temporary file, if any. Idempotent. */
void ux_sink_abort(struct ux_sink *k);

#endif
