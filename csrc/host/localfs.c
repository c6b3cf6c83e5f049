#include "localfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "engine/hash.h"
#include "partial.h"
#include "engine/names.h"
#include "random.h"

#define MAX_DEPTH 256

/* The folder holding REL, opened beneath ROOT with no symlink on the way,
 * and REL's last component in *BASE. Returns the descriptor or -1. */
static int open_parent(int root, const char *rel, const char **base)
{
    const char *slash = strrchr(rel, '/');
    *base = slash ? slash + 1 : rel;
    if (!**base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
        errno = EINVAL;
        return -1;
    }
    if (!slash)
        return fcntl(root, F_DUPFD_CLOEXEC, 0);
    char dir[4096];
    if ((size_t)(slash - rel) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, rel, (size_t)(slash - rel));
    dir[slash - rel] = 0;
    return ux_open_beneath(root, dir, O_RDONLY | O_DIRECTORY, UX_NO_SYMLINKS);
}

static char type_of(mode_t m)
{
    return S_ISDIR(m) ? 'd' : S_ISREG(m) ? 'f' : S_ISLNK(m) ? 'l' : 'o';
}

static int scan_dir(int dfd, const char *prefix, int depth, ux_scan_fn fn, void *ud)
{
    if (depth > MAX_DEPTH)
        return ELOOP;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return errno;
    }
    int rc = 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (!strcmp(name, ".") || !strcmp(name, "..") || !strncmp(name, ".udpxfer-", 9))
            continue; /* ".udpxfer-...": the index */
        struct ux_local_entry e = {0};
        e.own = ux_name_is_own(name, nl);
        char path[4096], target[4096];
        int n = prefix ? snprintf(path, sizeof path, "%s/%s", prefix, name) : snprintf(path, sizeof path, "%s", name);
        if (n < 0 || (size_t)n >= sizeof path || fstatat(dirfd(d), name, &e.st, AT_SYMLINK_NOFOLLOW))
            continue;
        e.path = path;
        e.len = (size_t)n;
        e.type = type_of(e.st.st_mode);
        if (e.type == 'l') {
            ssize_t t = readlinkat(dirfd(d), name, target, sizeof target);
            if (t > 0 && (size_t)t < sizeof target) {
                e.target = target;
                e.tlen = (size_t)t;
            }
        }
        rc = fn(ud, &e);
        if (!rc && e.type == 'd' && !e.own) {
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rc = scan_dir(sub, path, depth + 1, fn, ud);
        }
    }
    closedir(d);
    return rc;
}

int ux_local_scan(int root, ux_scan_fn fn, void *ud)
{
    int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* a position of its own */
    return fd < 0 ? errno : scan_dir(fd, NULL, 0, fn, ud);
}

int ux_local_stat(int root, const char *rel, struct stat *st)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
    close(dfd);
    return err;
}

int ux_local_mkdir(int root, const char *rel, uint32_t mode)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = mkdirat(dfd, base, (mode_t)(mode & 07777) | 0700) ? errno : 0;
    close(dfd);
    return err;
}

/* A fresh name for a temporary link beside BASE, in udpxfer's own form. */
static void temp_name(char *out, size_t cap, const char *base)
{
    uint32_t r = 0;
    ux_host_random(NULL, &r, sizeof r);
    size_t n = ux_partial_prefix(base, out, cap);
    snprintf(out + n, cap - n, "%08x", r);
}

int ux_local_symlink(int root, const char *rel, const char *target, size_t tlen)
{
    const char *base;
    char t[4096], tmp[256];
    if (tlen >= sizeof t || memchr(target, 0, tlen))
        return EINVAL;
    memcpy(t, target, tlen);
    t[tlen] = 0;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    /* A new name is made at once (a kill leaves nothing behind); one in use
     * is replaced atomically through a temporary name. */
    int err = symlinkat(t, dfd, base) ? errno : 0;
    if (err != EEXIST) {
        close(dfd);
        return err;
    }
    temp_name(tmp, sizeof tmp, base);
    err = symlinkat(t, dfd, tmp) ? errno : 0;
    if (!err && renameat(dfd, tmp, dfd, base)) {
        err = errno;
        unlinkat(dfd, tmp, 0);
    }
    close(dfd);
    return err;
}

/* Change the mode of BASE in DFD itself, never of what a link there points
 * to: the entry is opened O_PATH|O_NOFOLLOW, checked, and changed through
 * that descriptor (its /proc/self/fd link names that very inode), so an
 * entry swapped for a symlink after the check changes nothing outside. */
static int chmod_entry(int dfd, const char *base, mode_t mode)
{
    int fd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int err = fstat(fd, &st) ? errno : 0;
    if (!err && !S_ISLNK(st.st_mode)) { /* a link has no mode of its own on Linux */
        char proc[40];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        err = chmod(proc, mode) ? errno : 0;
    }
    close(fd);
    return err;
}

int ux_local_chmod(int root, const char *rel, uint32_t mode)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = chmod_entry(dfd, base, (mode_t)(mode & 07777));
    close(dfd);
    return err;
}

static void times_of(int64_t mtime_ns, struct timespec ts[2])
{
    ts[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
    ts[1] = (struct timespec){.tv_sec = mtime_ns / 1000000000, .tv_nsec = mtime_ns % 1000000000};
    if (ts[1].tv_nsec < 0) {
        ts[1].tv_sec--;
        ts[1].tv_nsec += 1000000000;
    }
}

int ux_local_utime(int root, const char *rel, int64_t mtime_ns)
{
    struct timespec ts[2];
    times_of(mtime_ns, ts);
    if (!strcmp(rel, "."))
        return futimens(root, ts) ? errno : 0;
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) ? errno : 0;
    close(dfd);
    return err;
}

int ux_local_remove(int root, const char *rel)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    struct stat st;
    int err = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
    if (!err && unlinkat(dfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0))
        err = errno;
    close(dfd);
    return err;
}

int ux_local_remove_partial(int root, const char *rel)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = ux_partial_remove_one(dfd, base);
    close(dfd);
    return err;
}

/* Empty folder FD (taken), never following a link, to DEPTH. */
static int empty_dir(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno;
    }
    int err = 0;
    for (struct dirent *de; !err && (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = depth < MAX_DEPTH ? openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
            err = sub < 0 ? ELOOP : empty_dir(sub, depth + 1);
        }
        if (!err && unlinkat(dirfd(d), de->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) && errno != ENOENT)
            err = errno;
    }
    closedir(d);
    return err;
}

int ux_local_remove_tree(int root, const char *rel)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    struct stat st;
    int err = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) ? errno : 0;
    if (!err && S_ISDIR(st.st_mode)) {
        int sub = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        err = sub < 0 ? errno : empty_dir(sub, 0);
    }
    if (!err && unlinkat(dfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0))
        err = errno;
    close(dfd);
    return err;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A temporary file beside REL's final name: its folder and name. */
static int open_temp(int root, const char *rel, uint32_t mode, int *dfd, const char **base, char *tmp, size_t cap)
{
    *dfd = open_parent(root, rel, base);
    return *dfd < 0 ? -1 : ux_partial_create(*dfd, *base, (int)(mode & 0777), tmp, cap);
}

/* Close FD and move TMP over BASE in DFD, or remove it if ERR. */
static int finish_temp(int dfd, int fd, const char *tmp, const char *base, int err)
{
    if (close(fd) && !err)
        err = errno;
    if (!err && renameat(dfd, tmp, dfd, base))
        err = errno;
    if (err)
        unlinkat(dfd, tmp, 0);
    close(dfd);
    return err;
}

/* Copy IN to OUT, hashing what is copied; EBADMSG unless it has SHA256
 * (when set): the source may have changed since anyone looked at it. */
static int copy_verified(int in, int out, const uint8_t *sha256)
{
    enum { STEP = 1 << 20 };
    char *buf = malloc(STEP);
    struct ux_sha *sha = ux_sha_new();
    int err = buf && sha && ux_sha_init(sha) == 0 ? 0 : ENOMEM;
    while (!err) {
        ssize_t n = read(in, buf, STEP);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        err = ux_sha_update(sha, buf, (size_t)n) ? EIO : write_all(out, buf, (size_t)n);
    }
    uint8_t got[UX_SHA256_LEN];
    if (!err && sha256 && (ux_sha_final(sha, got) || !ux_equal(got, sha256, UX_SHA256_LEN)))
        err = EBADMSG;
    ux_sha_free(sha);
    free(buf);
    return err;
}

int ux_local_copy(int root, const char *from, const char *to, uint32_t mode, const uint8_t *sha256)
{
    /* O_NONBLOCK: a FIFO swapped in for the source cannot hold the open. */
    int in = ux_open_beneath(root, from, O_RDONLY | O_NONBLOCK, UX_NO_SYMLINKS);
    if (in < 0)
        return errno;
    struct stat st;
    if (fstat(in, &st) || !S_ISREG(st.st_mode)) {
        close(in);
        return EINVAL;
    }
    int dfd, err = 0;
    const char *base;
    char tmp[256];
    int out = open_temp(root, to, (mode & 0777) | 0600, &dfd, &base, tmp, sizeof tmp);
    if (out < 0) {
        err = errno;
        if (dfd >= 0)
            close(dfd);
        close(in);
        return err;
    }
    err = copy_verified(in, out, sha256);
    close(in);
    if (!err && fchmod(out, (mode_t)(mode & 07777)))
        err = errno;
    return finish_temp(dfd, out, tmp, base, err);
}

int ux_local_read(int root, const char *rel, size_t max, char **data, size_t *len)
{
    /* O_NONBLOCK: a FIFO under the name (refused below) cannot hold the open. */
    int fd = ux_open_beneath(root, rel, O_RDONLY | O_NONBLOCK, UX_NO_SYMLINKS);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        int err = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        close(fd);
        return err;
    }
    char *p = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    int err = p ? 0 : ENOMEM;
    while (!err && got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (err)
        return err;
    *data = p;
    *len = got;
    return 0;
}

int ux_local_write(int root, const char *rel, const struct iovec *iov, size_t n)
{
    int dfd;
    const char *base;
    char tmp[256];
    int fd = open_temp(root, rel, 0644, &dfd, &base, tmp, sizeof tmp);
    if (fd < 0) {
        int err = errno;
        if (dfd >= 0)
            close(dfd);
        return err;
    }
    int err = 0;
    for (size_t i = 0; i < n && !err; i++)
        err = write_all(fd, iov[i].iov_base, iov[i].iov_len);
    if (!err && fsync(fd))
        err = errno;
    return finish_temp(dfd, fd, tmp, base, err);
}

/* FD's bytes under BASE in DFD, if nothing has that name: an unnamed
 * file given its name whole (EEXIST otherwise). */
static int link_new(int dfd, int fd, const char *base)
{
    char proc[40];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dfd, base, AT_SYMLINK_FOLLOW) ? errno : 0;
}

int ux_local_put_at(int dfd, const char *base, const uint8_t *data, size_t len, uint32_t mode, int64_t mtime_ns,
                    int durable, struct stat *st)
{
    /* A new name (a first sync's every file) costs no temporary name: the
     * file is made unnamed and linked once complete. */
    char tmp[300] = "";
    int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (fd = ux_partial_create(dfd, base, 0600, tmp, sizeof tmp)) < 0)
        return errno;
    struct timespec ts[2];
    times_of(mtime_ns, ts);
    int err = write_all(fd, (const char *)data, len);
    if (!err && fchmod(fd, (mode_t)(mode & 07777)))
        err = errno;
    if (!err && futimens(fd, ts))
        err = errno;
    if (!err && durable && fsync(fd))
        err = errno;
    if (!err && !tmp[0] && (err = link_new(dfd, fd, base)) == EEXIST) {
        /* the name is taken: a temporary name, then a rename over it */
        if (ux_partial_link(dfd, fd, base, tmp, sizeof tmp))
            err = errno;
        else
            err = 0;
        if (!err && renameat(dfd, tmp, dfd, base))
            err = errno;
    } else if (!err && tmp[0] && renameat(dfd, tmp, dfd, base)) {
        err = errno;
    }
    if (!err && fstat(fd, st)) /* after the rename or link, which changed its ctime: what an index sees */
        err = errno;
    if (err && tmp[0])
        unlinkat(dfd, tmp, 0);
    close(fd);
    return err;
}

int ux_local_put(int root, const char *rel, const uint8_t *data, size_t len, uint32_t mode, int64_t mtime_ns,
                 int durable, struct stat *st)
{
    const char *base;
    int dfd = open_parent(root, rel, &base);
    if (dfd < 0)
        return errno;
    int err = ux_local_put_at(dfd, base, data, len, mode, mtime_ns, durable, st);
    close(dfd);
    return err;
}

int ux_local_open_parent(int root, const char *rel, const char **base)
{
    return open_parent(root, rel, base);
}

int ux_local_sync(int root) { return syncfs(root) ? errno : 0; }

int ux_local_open_root(const char *path, int *fd)
{
    *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *fd < 0 ? errno : 0;
}

void ux_local_close_root(int fd)
{
    if (fd >= 0)
        close(fd);
}
