#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

int ux_open_beneath(int root, const char *rel, int flags, enum ux_beneath how)
{
    uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (how == UX_NO_SYMLINKS ? RESOLVE_NO_SYMLINKS : 0);
    struct open_how oh = {.flags = (uint64_t)(flags | O_CLOEXEC | (how == UX_NO_SYMLINKS ? O_NOFOLLOW : 0)),
                          .resolve = resolve, .mode = (flags & O_CREAT) ? 0600 : 0};
    int fd = (int)syscall(SYS_openat2, root, rel, &oh, sizeof oh);
    if (fd >= 0 || errno != ENOSYS)
        return fd;
    return openat(root, rel, flags | O_CLOEXEC | O_NOFOLLOW); /* refuse symlinks rather than resolve them */
}
