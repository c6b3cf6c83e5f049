/* Lua binding of a synced folder: udpxfer.core.dir(path). The folder stays
 * open for the object's life; every path given to a method is relative
 * to it and resolved beneath it with no symlink on the way (host/localfs). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind.h"
#include "dir_obj.h"
#include "scan_obj.h"
#include "engine/names.h"
#include "host/beneath.h"
#include "host/filehash.h"
#include "host/localfs.h"

static int l_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct dir_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    o->fd = -1;
    luaL_setmetatable(L, DIR_MT);
    o->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o->fd < 0)
        return push_errno(L, path, errno, UX_ERR_IO);
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

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static const char *type_name(char t)
{
    return t == 'd' ? "dir" : t == 'f' ? "file" : t == 'l' ? "link" : "other";
}

static void push_stat(lua_State *L, char type, const struct stat *st)
{
    set_str(L, "type", type_name(type));
    set_int(L, "mode", st->st_mode & 07777);
    set_int(L, "size", (lua_Integer)st->st_size);
    set_int(L, "mtime", ns(st->st_mtim));
    set_int(L, "ctime", ns(st->st_ctim));
    set_int(L, "ino", (lua_Integer)st->st_ino);
    set_int(L, "dev", (lua_Integer)st->st_dev);
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
    lua_newtable(L);
    push_stat(L, S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'o', &st);
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

/* The folder's own mode and mtime ("." cannot be a path argument). */
static int ld_set_self(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    uint32_t mode = (uint32_t)luaL_checkinteger(L, 2);
    int64_t mtime = (int64_t)luaL_checkinteger(L, 3);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = mtime / 1000000000, .tv_nsec = mtime % 1000000000}};
    if (ts[1].tv_nsec < 0) {
        ts[1].tv_sec--;
        ts[1].tv_nsec += 1000000000;
    }
    int err = fchmod(o->fd, (mode_t)(mode & 07777)) ? errno : futimens(o->fd, ts) ? errno : 0;
    return result(L, err, "the folder");
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

static int ld_copy(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *from = rel_arg(L, 2), *to = rel_arg(L, 3);
    return result(L, ux_local_copy(o->fd, from, to, (uint32_t)luaL_optinteger(L, 4, 0644)), to);
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

static int ld_write(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    size_t n;
    const char *data = luaL_checklstring(L, 3, &n);
    return result(L, ux_local_write(o->fd, rel, data, n), rel);
}

/* dir:sha256(rel) -> the file's SHA-256 (hex), or nil, message, code. */
static int ld_sha256(lua_State *L)
{
    struct dir_obj *o = check_dir(L, 1);
    const char *rel = rel_arg(L, 2);
    int fd = ux_open_beneath(o->fd, rel, O_RDONLY, UX_NO_SYMLINKS);
    if (fd < 0)
        return push_errno(L, rel, errno, UX_ERR_IO);
    struct ux_sha *sha = ux_sha_new();
    uint8_t h[UX_SHA256_LEN];
    int err = sha ? ux_sha_fd(sha, fd, UINT64_MAX, NULL, h) : ENOMEM;
    ux_sha_free(sha);
    close(fd);
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
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    return 0;
}

void ux_lua_dir_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"scan", ld_scan}, {"stat", ld_stat}, {"mkdir", ld_mkdir}, {"symlink", ld_symlink},
        {"chmod", ld_chmod}, {"utime", ld_utime}, {"set_self", ld_set_self}, {"remove", ld_remove},
        {"remove_tree", ld_remove_tree}, {"copy", ld_copy}, {"read", ld_read}, {"write", ld_write},
        {"sha256", ld_sha256}, {"sync", ld_sync}, {"close", ld_close}, {NULL, NULL}};
    new_class(L, DIR_MT, methods, ld_close);
    lua_pushcfunction(L, l_dir);
    lua_setfield(L, -2, "dir");
}
