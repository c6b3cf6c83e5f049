#include "partial.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is NAME the prefix the sink gives BASE and 8 lower-case hex digits? */
static int is_partial_of(const char *name, const char *base)
{
    char prefix[230];
    int n = snprintf(prefix, sizeof prefix, UX_PARTIAL_PREFIX, base);
    if (n <= 0 || (size_t)n >= sizeof prefix || strncmp(name, prefix, (size_t)n) || strlen(name) != (size_t)n + 8)
        return 0;
    for (const char *p = name + n; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Visit the partial files of BASE; KEEP (if set) receives the fullest, the
 * rest are removed. */
static int sweep(int dirfd, const char *base, char *keep, size_t cap)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char best[256] = "";
    long long best_blocks = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (!is_partial_of(e->d_name, base) || strlen(e->d_name) >= sizeof best ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue;
        if (keep && (long long)st.st_blocks > best_blocks) {
            if (best[0])
                unlinkat(dirfd, best, 0);
            snprintf(best, sizeof best, "%s", e->d_name);
            best_blocks = (long long)st.st_blocks;
        } else {
            unlinkat(dirfd, e->d_name, 0);
        }
    }
    closedir(d);
    if (!keep || !best[0] || strlen(best) >= cap)
        return -1;
    memcpy(keep, best, strlen(best) + 1);
    return 0;
}

int ux_partial_find(int dirfd, const char *base, char *out, size_t cap)
{
    return sweep(dirfd, base, out, cap);
}

void ux_partial_remove(int dirfd, const char *base) { (void)sweep(dirfd, base, NULL, 0); }
