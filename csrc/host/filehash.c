#include "filehash.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int ux_sha_fd(struct ux_sha *s, int fd, uint64_t size, const int *cancel, uint8_t out[UX_SHA256_LEN])
{
    enum { BLOCK = 1 << 20 };
    uint8_t *buf = malloc(BLOCK);
    int rc = buf && ux_sha_init(s) == 0 ? 0 : ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < size;) {
        if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
            rc = ECANCELED;
            break;
        }
        size_t want = size - off < BLOCK ? (size_t)(size - off) : BLOCK;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = errno;
        else if (n == 0 && size != UINT64_MAX)
            rc = EIO; /* shorter than it should be */
        else if (n == 0)
            break;
        else if (ux_sha_update(s, buf, (size_t)n))
            rc = EIO;
        else
            off += (uint64_t)n;
    }
    free(buf);
    if (rc == 0 && ux_sha_final(s, out))
        rc = EIO;
    return rc;
}
