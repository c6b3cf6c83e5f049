/* The compact result of dir:scan() (lscan.c), built by ldir.c. */
#ifndef UDPXFER_LUA_SCAN_OBJ_H
#define UDPXFER_LUA_SCAN_OBJ_H

#include "bind.h"
#include "host/localfs.h"

struct scan;

/* A new, empty scan on the stack. */
struct scan *ux_scan_new(lua_State *L);
/* A ux_scan_fn: entry E joins the scan UD. Returns 0 or ENOMEM. */
int ux_scan_add(void *ud, const struct ux_local_entry *e);
/* Every entry in: index them by path. Returns 0 or ENOMEM. */
int ux_scan_index(struct scan *s);
/* The scan at IDX; raises if it is not one. */
const struct scan *ux_check_scan(lua_State *L, int idx);
/* The entry at PATH (N bytes): a regular file, not one of udpxfer's own?
 * Then 1, with its mode, mtime and stamp (push_stamp's bytes); else 0. */
int ux_scan_file(const struct scan *s, const char *p, size_t n, uint16_t *mode, int64_t *mtime,
                 unsigned char stamp[32]);

#endif
