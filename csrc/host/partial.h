/* Partial files: the temporary files (ux_sink) that fetches of a name left
 * behind when they were interrupted or killed. A new fetch of the name
 * takes the fullest as the local copy it reuses verified chunks from.
 * A fetch holds its own temporary file, and one it adopts, with flock()
 * while it has it open: another fetch of the name (another process, or a
 * sync) never adopts or removes a held one. */
#ifndef UDPXFER_PARTIAL_H
#define UDPXFER_PARTIAL_H

#include <stddef.h>

/* udpxfer's temporary name beside BASE, before its 8 hex digits, into OUT
 * (CAP bytes): ".BASE.udpxfer-"; for a BASE too long for that to stay a
 * name (NAME_MAX), its first 200 bytes, "~" and 16 hex digits of its
 * SHA-256 stand for it, so names sharing a beginning never share
 * temporary files. Returns the length, or 0 if CAP is too small. */
size_t ux_partial_prefix(const char *base, char *out, size_t cap);

/* A new temporary file beside BASE in DIRFD (read-write, MODE), locked
 * for as long as it stays open; its name into NAME (CAP bytes). Returns
 * the descriptor, or -1 with errno. */
int ux_partial_create(int dirfd, const char *base, int mode, char *name, size_t cap);
/* The unnamed file FD (O_TMPFILE) under a fresh temporary name for BASE
 * in DIRFD, into NAME. Returns 0, or -1 with errno. */
int ux_partial_link(int dirfd, int fd, const char *base, char *name, size_t cap);

/* The partial file of BASE in DIRFD with the most blocks allocated (the
 * most data written) among those no fetch holds, opened read-only and
 * locked (the caller holds it now), its name into OUT (CAP bytes); the
 * other unheld ones are removed. Returns the descriptor, or -1 if there
 * is none. */
int ux_partial_find(int dirfd, const char *base, char *out, size_t cap);

/* Remove every partial file of BASE in DIRFD that no fetch holds. */
void ux_partial_remove(int dirfd, const char *base);

/* Remove NAME in DIRFD if it is a regular file that no fetch holds.
 * Returns 0 or an errno value (EBUSY: held; EINVAL: not a regular file). */
int ux_partial_remove_one(int dirfd, const char *name);

/* Remove NAME in DIRFD if it still is the file FD (held by the caller). */
void ux_partial_drop(int dirfd, const char *name, int fd);

#endif
