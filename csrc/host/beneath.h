/* Opening paths strictly beneath a folder: the kernel refuses "..", absolute
 * symlinks and links that climb out (openat2 RESOLVE_BENEATH). */
#ifndef UDPXFER_HOST_BENEATH_H
#define UDPXFER_HOST_BENEATH_H

enum ux_beneath {
    UX_FOLLOW_INSIDE, /* symlinks that stay inside are followed (files a server serves) */
    UX_NO_SYMLINKS    /* no symlink anywhere on the path (what a sync writes or deletes) */
};

/* openat(ROOT, REL, FLAGS) resolved beneath ROOT. Without openat2 (an old
 * kernel), symlinks are refused outright. Returns the descriptor, or -1
 * with errno (EXDEV or ELOOP for a path that would leave ROOT). */
int ux_open_beneath(int root, const char *rel, int flags, enum ux_beneath how);

#endif
