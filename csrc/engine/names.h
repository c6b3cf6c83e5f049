/* Names a server may be asked for and a client may be told: relative
 * paths, checked as bytes, before any file system sees them. */
#ifndef UDPXFER_NAMES_H
#define UDPXFER_NAMES_H

#include <stddef.h>

/* 0 if NAME (LEN bytes) is an acceptable relative path: not empty, no NUL,
 * no leading '/', no empty, "." or ".." component, at most UX_MAX_NAME
 * bytes; else UX_E_REFUSED. */
int ux_name_check(const char *name, size_t len);

/* Is BASE (one path component) a file of udpxfer's own in a synced folder:
 * its index (".udpxfer-...") or a transfer's temporary file
 * (".NAME.udpxfer-XXXXXXXX")? Listings, deletions and servers skip those. */
int ux_name_is_own(const char *base, size_t len);

#endif
