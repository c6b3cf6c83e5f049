#include "userfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_one(const char *path, unsigned mode)
{
    if (mkdir(path, (mode_t)mode) == 0)
        return 0;
    int err = errno;
    struct stat st;
    if (err == EEXIST)
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    return err;
}

int ux_mkpath(const char *path, unsigned mode)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0)
        return ENOENT;
    if (n >= sizeof p)
        return ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/' || p[i - 1] == '/')
            continue;
        p[i] = 0;
        int err = make_one(p, mode);
        p[i] = '/';
        if (err)
            return err;
    }
    return make_one(p, mode);
}

int ux_write_private(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    int err = fchmod(fd, 0600) ? errno : 0;
    while (!err && len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        else {
            data += n;
            len -= (size_t)n;
        }
    }
    if (!err && fsync(fd))
        err = errno;
    if (close(fd) && !err)
        err = errno;
    return err;
}

int ux_fd_file_mode(int fd)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        return -1;
    return (int)(st.st_mode & 07777);
}
