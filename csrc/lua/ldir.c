/* Lua binding of a synced folder: udpxfer.core.dir(path). The folder stays
 * open for the object's life; every path given to a method is relative
 * to it and resolved beneath it with no symlink on the way (host/localfs). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "dir_obj.h"
#include "scan_obj.h"
#include "engine/names.h"
#include "host/filehash.h"
#include "host/localfs.h"
#include "host/partial.h"

static int ld_new(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct dir_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    o->fd = -1;
    luaL_setmetatable(L, DIR_MT);
    int err = ux_local_open_root(path, &o->fd);
    if (err)
        return push_errno(L, path, err, UX_ERR_IO);
    return 1;
}

struct dir_obj *check_dir(lua_State *L, int idx)
{
    struct dir_obj *o = luaL_checkudata(L, idx, DIR_MT);
    if (o->fd < 0)
        luaL_error(L, "folder is closed");
    return o;
}

/* A path argument: a safe relative path, else a programmer's mistake. */
static const char *rel_arg(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    luaL_argcheck(L, ux_name_check(s, n) == 0, idx, "a relative path without \"..\" expected");
    return s;
}

static int result(lua_State *L, int err, const char *what)
{
    if (!err) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return push_errno(L, what, err, UX_ERR_IO);
}

/* dir:scan() -> every entry below (parents first), compact (lscan.c): a
 * list of views with the fields of stat() and path, target, own; or nil,
 * message, code. */
static int ld_scan(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    struct scan *s = ux_scan_new(L);
    int err = ux_local_scan(o->fd, ux_scan_add, s);
    if (!err)
        err = ux_scan_index(s);
    return err ? push_errno(L, "cannot read the folder", err, UX_ERR_IO) : 1;
}

static int ld_stat(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    struct stat st;
    int err = ux_local_stat(o->fd, rel, &st);
    if (err == ENOENT) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (err)
        return push_errno(L, rel, err, UX_ERR_IO);
    push_stat(L, &st);
    return 1;
}

static int ld_mkdir(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    int err = ux_local_mkdir(o->fd, rel, (uint32_t)luaL_optinteger(L, 3, 0755));
    return result(L, err == EEXIST ? 0 : err, rel);
}

static int ld_symlink(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    size_t n;
    const char *target = luaL_checklstring(L, 3, &n);
    return result(L, ux_local_symlink(o->fd, rel, target, n), rel);
}

static int ld_chmod(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = lua_isnoneornil(L, 2) ? "." : rel_arg(L, 2);
    return result(L, ux_local_chmod(o->fd, rel, (uint32_t)luaL_checkinteger(L, 3)), rel);
}

static int ld_utime(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    return result(L, ux_local_utime(o->fd, rel, (int64_t)luaL_checkinteger(L, 3)), rel);
}

/* set_self(mtime): the folder's own mtime ("." cannot be a path
 * argument). Its mode and owner are the user's: a listing never sets them. */
static int ld_set_self(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    return result(L, ux_local_utime(o->fd, ".", (int64_t)luaL_checkinteger(L, 2)), "the folder");
}

static int ld_remove(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    return result(L, ux_local_remove(o->fd, rel), rel);
}

static int ld_remove_tree(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    int err = ux_local_remove_tree(o->fd, rel);
    return result(L, err == ENOENT ? 0 : err, rel);
}

/* dir:remove_partial(rel): remove REL if it is a regular file that no
 * fetch holds (a temporary file left behind): true, or nil, message, code. */
static int ld_remove_partial(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    int err = ux_local_remove_partial(o->fd, rel);
    return result(L, err == ENOENT ? 0 : err, rel);
}

/* partial_prefix(base): the name udpxfer's temporary files beside a file
 * BASE start with (8 hex digits follow). */
static int ld_partial_prefix(lua_State *L)
{
    char out[256];
    size_t n = ux_partial_prefix(luaL_checkstring(L, 1), out, sizeof out);
    if (!n)
        return luaL_error(L, "cannot make a temporary name for %s", lua_tostring(L, 1));
    lua_pushlstring(L, out, n);
    return 1;
}

/* name_is_own(name): is NAME (one component) udpxfer's own: the index
 * or a temporary file? Listings, scans and servers leave those out. */
static int ld_name_is_own(lua_State *L)
{
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    lua_pushboolean(L, ux_name_is_own(name, n));
    return 1;
}

/* copy(from, to[, mode[, sha256]]): with SHA256 (hex), the copy must have
 * it, else nil, message, "corrupt" and TO is left alone. */
static int ld_copy(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *from = rel_arg(L, 2), *to = rel_arg(L, 3);
    uint32_t mode = (uint32_t)luaL_optinteger(L, 4, 0644);
    size_t hlen;
    const char *hex = luaL_optlstring(L, 5, NULL, &hlen);
    uint8_t sha[UX_SHA256_LEN];
    luaL_argcheck(L, !hex || parse_hex(hex, hlen, sha, UX_SHA256_LEN) == 0, 5, "64 hex digits expected");
    int err = ux_local_copy(o->fd, from, to, mode, hex ? sha : NULL);
    if (err == EBADMSG)
        return push_errno(L, "the local copy's source changed (SHA-256 mismatch)", err, UX_ERR_CORRUPT);
    return result(L, err, to);
}

static int ld_read(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    char *data;
    size_t len;
    int err = ux_local_read(o->fd, rel, (size_t)luaL_optinteger(L, 3, 256 << 20), &data, &len);
    if (err == ENOENT) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (err)
        return push_errno(L, rel, err, UX_ERR_IO);
    lua_pushlstring(L, data, len);
    free(data);
    return 1;
}

/* dir:write(rel, data) -> true, or nil, message, code. DATA: a string,
 * or a list of strings written in turn (no copy of them joined). */
static int ld_write(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    if (lua_type(L, 3) != LUA_TTABLE) {
        struct iovec one;
        one.iov_base = (void *)luaL_checklstring(L, 3, &one.iov_len);
        return result(L, ux_local_write(o->fd, rel, &one, 1), rel);
    }
    size_t n = (size_t)luaL_len(L, 3);
    struct iovec *iov = lua_newuserdatauv(L, (n ? n : 1) * sizeof *iov, 0); /* freed by the GC, even on error */
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 3, (lua_Integer)i + 1) != LUA_TSTRING)
            return luaL_error(L, "dir:write: piece %d is not a string", (int)i + 1);
        iov[i].iov_base = (void *)lua_tolstring(L, -1, &iov[i].iov_len);
        lua_pop(L, 1); /* the list keeps it alive */
    }
    return result(L, ux_local_write(o->fd, rel, iov, n), rel);
}

/* dir:sha256(rel) -> the file's SHA-256 (hex), or nil, message, code. */
static int ld_sha256(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    uint8_t h[UX_SHA256_LEN];
    int err = ux_sha_file(o->fd, rel, h);
    if (err)
        return push_errno(L, rel, err, UX_ERR_IO);
    char hex[2 * UX_SHA256_LEN + 1];
    ux_hex(h, UX_SHA256_LEN, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int ld_sync(lua_State *L) { return result(L, ux_local_sync(check_dir(L, 1)->fd), "syncfs"); }

static int ld_close(lua_State *L)
{
    struct dir_obj *o = luaL_checkudata(L, 1, DIR_MT);
    ux_local_close_root(o->fd);
    o->fd = -1;
    return 0;
}

void ux_lua_dir_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"scan", ld_scan}, {"stat", ld_stat}, {"mkdir", ld_mkdir}, {"symlink", ld_symlink},
        {"chmod", ld_chmod}, {"utime", ld_utime}, {"set_self", ld_set_self}, {"remove", ld_remove},
        {"remove_tree", ld_remove_tree}, {"remove_partial", ld_remove_partial}, {"copy", ld_copy}, {"read", ld_read}, {"write", ld_write},
        {"sha256", ld_sha256}, {"sync", ld_sync}, {"close", ld_close}, {NULL, NULL}};
    new_class(L, DIR_MT, methods, ld_close);
    lua_pushcfunction(L, ld_new);
    lua_setfield(L, -2, "dir");
    lua_pushcfunction(L, ld_partial_prefix);
    lua_setfield(L, -2, "partial_prefix");
    lua_pushcfunction(L, ld_name_is_own);
    lua_setfield(L, -2, "name_is_own");
}
