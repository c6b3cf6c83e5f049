/* Files the command line makes at the user's word, by path: the folders
 * of --create-dirs, a key file. (What a listing names goes beneath a
 * synced folder instead: localfs.h.) */
#ifndef UDPXFER_HOST_USERFILES_H
#define UDPXFER_HOST_USERFILES_H

#include <stddef.h>

/* A folder and every folder above it that is missing (mkdir -p). Returns
 * 0 or an errno value (ENOTDIR: something on the way is not a folder). */
int ux_mkpath(const char *path, unsigned mode);
/* PATH holds DATA, readable and writable by its owner only (made so if it
 * existed), flushed to disk; a symlink at PATH is refused. Returns 0 or an errno value. */
int ux_write_private(const char *path, const char *data, size_t len);
/* The permission bits of the regular file open as FD, or -1 if it is not one. */
int ux_fd_file_mode(int fd);

#endif
