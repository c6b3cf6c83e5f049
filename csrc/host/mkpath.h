/* A folder and every folder above it that is missing (mkdir -p), for the
 * command line's --create-dirs: the user's own path, not a listing's. */
#ifndef UDPXFER_HOST_MKPATH_H
#define UDPXFER_HOST_MKPATH_H

/* Returns 0 or an errno value (ENOTDIR: something on the way is not a folder). */
int ux_mkpath(const char *path, unsigned mode);

#endif
