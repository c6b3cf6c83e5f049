#include "filehash.h"
#include <fcntl.h>

#include "beneath.h"

#include "engine/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

enum { BLOCK = 1 << 20 };

static int cancelled(const int *cancel) { return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED); }

/* Read exactly N bytes at OFF (EIO if the file ends first). */
static int read_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO;
        buf += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

int ux_sha_fd(struct ux_sha *s, int fd, uint64_t size, const int *cancel, uint8_t out[UX_SHA256_LEN])
{
    uint8_t *buf = malloc(BLOCK);
    int rc = buf && ux_sha_init(s) == 0 ? 0 : ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < size;) {
        if (cancelled(cancel)) {
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

int ux_tree_fd(struct ux_tree *t, struct ux_sha *sha, int fd, uint64_t size, uint32_t cs, struct ux_sha *whole,
               uint8_t whole_out[UX_SHA256_LEN], const int *cancel)
{
    uint64_t count = ux_chunk_count(size, cs);
    if (count > UINT32_MAX || ux_tree_init(t, (uint32_t)count))
        return ENOMEM;
    size_t step = BLOCK / cs ? (size_t)(BLOCK / cs) * cs : cs; /* whole chunks per read */
    uint8_t *buf = malloc(step);
    int rc = buf && (!whole || ux_sha_init(whole) == 0) ? 0 : ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < size; off += step) {
        size_t n = size - off < step ? (size_t)(size - off) : step;
        if (cancelled(cancel))
            rc = ECANCELED;
        else
            rc = read_full(fd, buf, n, off);
        if (!rc && whole && ux_sha_update(whole, buf, n))
            rc = EIO;
        for (size_t k = 0; !rc && k < n; k += cs) {
            uint32_t i = (uint32_t)((off + k) / cs);
            size_t len = n - k < cs ? n - k : cs;
            if (ux_chunk_hash(sha, i, buf + k, len, ux_tree_leaf(t, i)))
                rc = EIO;
        }
    }
    free(buf);
    if (!rc && ux_tree_finish(t, sha))
        rc = EIO;
    if (!rc && whole && ux_sha_final(whole, whole_out))
        rc = EIO;
    if (rc)
        ux_tree_free(t);
    return rc;
}

int ux_sha_file(int root, const char *path, uint8_t out[UX_SHA256_LEN])
{
    int fd = root >= 0 ? ux_open_beneath(root, path, O_RDONLY | O_NONBLOCK, UX_NO_SYMLINKS)
                       : open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct ux_sha *sha = ux_sha_new();
    int err = sha ? ux_sha_fd(sha, fd, UINT64_MAX, NULL, out) : ENOMEM;
    ux_sha_free(sha);
    close(fd);
    return err;
}
