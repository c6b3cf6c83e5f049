/* Partial files: the temporary files (ux_sink) that fetches of a name left
 * behind when they were interrupted or killed. A new fetch of the name
 * takes the fullest as the local copy it reuses verified chunks from. */
#ifndef UDPXFER_PARTIAL_H
#define UDPXFER_PARTIAL_H

#include <stddef.h>

/* udpxfer's temporary name beside BASE (the sink's, localfs's), before
 * its 8 hex digits. */
#define UX_PARTIAL_PREFIX ".%.200s.udpxfer-"

/* The temporary file ux_sink names ".BASE.udpxfer-XXXXXXXX" in DIRFD with
 * the most blocks allocated (the most data written), into OUT (CAP bytes).
 * The others are removed. Returns 0, or -1 if there is none. */
int ux_partial_find(int dirfd, const char *base, char *out, size_t cap);

/* Remove every partial file of BASE in DIRFD. */
void ux_partial_remove(int dirfd, const char *base);

#endif
