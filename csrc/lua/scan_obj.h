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

#endif
