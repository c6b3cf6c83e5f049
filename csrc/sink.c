#define _GNU_SOURCE
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void reset(struct ux_sink *k)
{
    k->fd = k->dirfd = -1;
    k->tmp[0] = k->final[0] = 0;
}

static int make_temp(struct ux_sink *k)
{
    for (int tries = 0; tries < 16; tries++) {
        uint32_t r;
        if (ux_random(&r, sizeof r))
            return EIO;
        snprintf(k->tmp, sizeof k->tmp, ".%.200s.udpxfer-%08x", k->final, r);
        k->fd = openat(k->dirfd, k->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (k->fd >= 0)
            return 0;
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

int ux_sink_open(struct ux_sink *k, const char *dir, const char *base, uint64_t size, const char **why)
{
    reset(k);
    k->size = size;
    if (!*base || strchr(base, '/') || !strcmp(base, ".") || !strcmp(base, "..") ||
        strlen(base) >= sizeof k->final - 40) {
        *why = "unusable output name";
        return EINVAL;
    }
    snprintf(k->final, sizeof k->final, "%s", base);
    k->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (k->dirfd < 0) {
        *why = "cannot open the output directory";
        return errno;
    }
    int err = make_temp(k);
    if (err) {
        *why = "cannot create a temporary file";
        ux_sink_abort(k);
        return err;
    }
    /* Reserve the space now: a full disk fails before the transfer, not at 99%. */
    err = size ? posix_fallocate(k->fd, 0, (off_t)size) : 0;
    if (err == EOPNOTSUPP || err == EINVAL)
        err = ftruncate(k->fd, (off_t)size) ? errno : 0;
    if (err) {
        *why = "cannot reserve space for the file";
        ux_sink_abort(k);
        return err;
    }
    return 0;
}

int ux_sink_write(struct ux_sink *k, uint64_t off, const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = pwrite(k->fd, data, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        data += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int ux_sink_truncate(struct ux_sink *k, uint64_t size)
{
    if (size == k->size)
        return 0;
    if (ftruncate(k->fd, (off_t)size))
        return errno;
    k->size = size;
    return 0;
}


int ux_sink_commit(struct ux_sink *k, const uint8_t sha256[UX_SHA256_LEN], const char **why)
{
    uint8_t got[UX_SHA256_LEN];
    struct ux_sha *sha = ux_sha_new();
    int err = sha ? ux_sha_fd(sha, k->fd, k->size, got) : ENOMEM;
    ux_sha_free(sha);
    if (err) {
        *why = "cannot read back the received file";
    } else if (!ux_equal(got, sha256, UX_SHA256_LEN)) {
        *why = "whole-file SHA-256 mismatch";
        err = EBADMSG;
    } else if (fsync(k->fd)) {
        *why = "cannot sync the received file";
        err = errno;
    } else if (renameat(k->dirfd, k->tmp, k->dirfd, k->final)) {
        *why = "cannot rename into place";
        err = errno;
    }
    if (err) {
        ux_sink_abort(k);
        return err;
    }
    fsync(k->dirfd); /* make the rename durable; failure here loses nothing */
    k->tmp[0] = 0;
    close(k->fd);
    close(k->dirfd);
    k->fd = k->dirfd = -1;
    return 0;
}

void ux_sink_abort(struct ux_sink *k)
{
    if (k->tmp[0] && k->dirfd >= 0)
        unlinkat(k->dirfd, k->tmp, 0);
    if (k->fd >= 0)
        close(k->fd);
    if (k->dirfd >= 0)
        close(k->dirfd);
    reset(k);
}
