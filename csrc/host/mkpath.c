#include "mkpath.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

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
