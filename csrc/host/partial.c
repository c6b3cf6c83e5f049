#include "partial.h"
#include "random.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/hash.h"

#define KEEP_WHOLE 237 /* 1 + 237 + ".udpxfer-" + 8 = NAME_MAX */
#define KEEP_PART 200

size_t ux_partial_prefix(const char *base, char *out, size_t cap)
{
    size_t len = strlen(base);
    int n;
    if (len <= KEEP_WHOLE) {
        n = snprintf(out, cap, ".%s.udpxfer-", base);
    } else {
        struct ux_sha *sha = ux_sha_new();
        uint8_t h[UX_SHA256_LEN];
        char hex[2 * UX_SHA256_LEN + 1];
        int err = !sha || ux_sha_init(sha) || ux_sha_update(sha, base, len) || ux_sha_final(sha, h);
        ux_sha_free(sha);
        if (err)
            return 0;
        ux_hex(h, UX_SHA256_LEN, hex);
        n = snprintf(out, cap, ".%.*s~%.16s.udpxfer-", KEEP_PART, base, hex);
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Is NAME BASE's prefix and 8 lower-case hex digits? */
static int is_partial_of(const char *name, const char *base)
{
    char prefix[256];
    size_t n = ux_partial_prefix(base, prefix, sizeof prefix);
    if (!n || strncmp(name, prefix, n) || strlen(name) != n + 8)
        return 0;
    for (const char *p = name + n; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Does NAME in DIRFD still name the file FD has open? */
static int still_names(int dirfd, const char *name, int fd)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int ux_partial_create(int dirfd, const char *base, int mode, char *name, size_t cap)
{
    char prefix[256];
    size_t n = ux_partial_prefix(base, prefix, sizeof prefix);
    if (!n || n + 9 > cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (int tries = 0; tries < 16; tries++) {
        uint32_t r;
        if (ux_host_random(NULL, &r, sizeof r)) {
            errno = EIO;
            return -1;
        }
        snprintf(name, cap, "%s%08x", prefix, r);
        int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST)
            return -1;
        if (fd < 0)
            continue;
        /* Another fetch may sweep it between the open and the lock: only
         * a file still under its name once locked is ours. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && still_names(dirfd, name, fd))
            return fd;
        close(fd);
    }
    errno = EEXIST;
    return -1;
}

int ux_partial_link(int dirfd, int fd, const char *base, char *name, size_t cap)
{
    char prefix[256], proc[40];
    size_t n = ux_partial_prefix(base, prefix, sizeof prefix);
    if (!n || n + 9 > cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int tries = 0; tries < 16; tries++) {
        uint32_t r;
        if (ux_host_random(NULL, &r, sizeof r)) {
            errno = EIO;
            return -1;
        }
        snprintf(name, cap, "%s%08x", prefix, r);
        if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* NAME in DIRFD opened and locked if it is a regular file no fetch holds
 * (and still under its name once locked); else -1 with errno. */
static int take(int dirfd, const char *name)
{
    /* O_NONBLOCK: a FIFO under the name cannot hold the open. */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int err = fstat(fd, &st) || !S_ISREG(st.st_mode) ? EINVAL
              : flock(fd, LOCK_EX | LOCK_NB)         ? EBUSY
              : !still_names(dirfd, name, fd)        ? EBUSY
                                                     : 0;
    if (!err)
        return fd;
    close(fd);
    errno = err;
    return -1;
}

int ux_partial_remove_one(int dirfd, const char *name)
{
    int fd = take(dirfd, name);
    if (fd < 0)
        return errno;
    int err = unlinkat(dirfd, name, 0) ? errno : 0;
    close(fd);
    return err;
}

void ux_partial_drop(int dirfd, const char *name, int fd)
{
    if (still_names(dirfd, name, fd))
        unlinkat(dirfd, name, 0);
}

/* Visit the unheld partial files of BASE; with KEEP, the fullest stays,
 * opened and locked (returned, its name in KEEP), the rest are removed. */
static int sweep(int dirfd, const char *base, char *keep, size_t cap)
{
    int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dup < 0 ? NULL : fdopendir(dup);
    if (!d) {
        if (dup >= 0)
            close(dup);
        return -1;
    }
    int best = -1;
    long long best_blocks = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_partial_of(e->d_name, base) || (keep && strlen(e->d_name) >= cap))
            continue;
        int fd = take(dirfd, e->d_name);
        struct stat st;
        if (fd < 0 || fstat(fd, &st)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (keep && (long long)st.st_blocks > best_blocks) {
            if (best >= 0) {
                ux_partial_drop(dirfd, keep, best);
                close(best);
            }
            best = fd;
            best_blocks = (long long)st.st_blocks;
            snprintf(keep, cap, "%s", e->d_name);
        } else {
            ux_partial_drop(dirfd, e->d_name, fd);
            close(fd);
        }
    }
    closedir(d);
    return best;
}

int ux_partial_find(int dirfd, const char *base, char *out, size_t cap)
{
    return sweep(dirfd, base, out, cap);
}

void ux_partial_remove(int dirfd, const char *base) { (void)sweep(dirfd, base, NULL, 0); }
