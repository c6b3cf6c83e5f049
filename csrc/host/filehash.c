#include "filehash.h"
#include <fcntl.h>

#include "beneath.h"
#include "sparse.h"

#include "engine/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

enum { BLOCK = 1 << 20 };

static int cancelled(const int *cancel) { return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED); }

/* SHA-256 of FD to its end, whatever its size said (pread: a FIFO fails). */
static int sha_to_end(struct ux_sha *s, int fd, uint8_t *buf, const int *cancel)
{
    for (uint64_t off = 0;;) {
        if (cancelled(cancel))
            return ECANCELED;
        ssize_t n = pread(fd, buf, BLOCK, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : 0;
        if (ux_sha_update(s, buf, (size_t)n))
            return EIO;
        off += (uint64_t)n;
    }
}

int ux_sha_fd(struct ux_sha *s, int fd, uint64_t size, const int *cancel, uint8_t out[UX_SHA256_LEN])
{
    uint8_t *buf = malloc(BLOCK);
    int rc = buf && ux_sha_init(s) == 0 ? 0 : ENOMEM;
    struct ux_extent x = {0};
    if (!rc && size == UINT64_MAX)
        rc = sha_to_end(s, fd, buf, cancel);
    for (uint64_t off = 0; !rc && size != UINT64_MAX && off < size;) {
        size_t want = size - off < BLOCK ? (size_t)(size - off) : BLOCK;
        rc = cancelled(cancel) ? ECANCELED : ux_read_sparse(fd, &x, buf, want, off);
        if (!rc && ux_sha_update(s, buf, want))
            rc = EIO;
        off += want;
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
    struct ux_extent x = {0};
    int rc = buf && (!whole || ux_sha_init(whole) == 0) ? 0 : ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < size; off += step) {
        size_t n = size - off < step ? (size_t)(size - off) : step;
        if (cancelled(cancel))
            rc = ECANCELED;
        else
            rc = ux_read_sparse(fd, &x, buf, n, off);
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
