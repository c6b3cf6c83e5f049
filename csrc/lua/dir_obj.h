/* The folder userdata, shared by ldir.c and lclient.c (a fetch may write
 * beneath one). */
#ifndef UDPXFER_LUA_DIR_OBJ_H
#define UDPXFER_LUA_DIR_OBJ_H

#include "bind.h"

#define DIR_MT "udpxfer.dir"

struct dir_obj {
    int fd;
};

struct dir_obj *check_dir(lua_State *L, int idx);

#endif
