/* udpxfer.core.listing_decode(text): a listing (engine/listing.h) checked
 * and decoded for Lua, or refused whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "engine/listing.h"

static const char *type_name(enum ux_ltype t)
{
    return t == UX_LT_DIR ? "dir" : t == UX_LT_FILE ? "file" : "link";
}

static void push_entry(lua_State *L, const struct ux_lentry *e)
{
    lua_createtable(L, 0, 7);
    set_str(L, "type", type_name(e->type));
    set_int(L, "mode", e->mode);
    set_int(L, "mtime", e->mtime_ns);
    lua_pushlstring(L, e->path, e->path_len);
    lua_setfield(L, -2, "path");
    if (e->type == UX_LT_FILE) {
        set_int(L, "size", (lua_Integer)e->size);
        set_hex(L, "sha256", e->sha256);
    } else if (e->type == UX_LT_LINK) {
        lua_pushlstring(L, e->target, e->target_len);
        lua_setfield(L, -2, "target");
    }
}

/* listing_decode(text) -> a list of entries ({type = "dir"|"file"|"link",
 * mode, mtime (ns), path, size and sha256 for files, target for links}),
 * the folder itself first as ".", or nil, message, "unsafe". */
static int l_listing_decode(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    size_t magic = sizeof UX_LISTING_MAGIC - 1;
    if (n < magic + 1 || memcmp(text, UX_LISTING_MAGIC, magic) || text[magic] != '\n')
        return push_fail(L, "not a udpxfer listing", UX_ERR_UNSAFE);
    /* Decoded in place, in a copy that lives until the end: the checker
     * keeps pointers to earlier paths. */
    char *buf = lua_newuserdatauv(L, n ? n : 1, 0);
    memcpy(buf, text, n);
    struct ux_lcheck *chk = lua_newuserdatauv(L, sizeof *chk, 0);
    ux_lcheck_init(chk);
    lua_newtable(L);
    lua_Integer count = 0;
    for (size_t at = magic + 1; at < n;) {
        char *nl = memchr(buf + at, '\n', n - at);
        if (!nl)
            return push_fail(L, "the listing's last line is cut short", UX_ERR_UNSAFE);
        struct ux_lentry e;
        const char *why = "";
        if (ux_listing_parse(buf + at, (size_t)(nl - (buf + at)), &e, &why) || ux_lcheck_next(chk, &e, &why)) {
            char msg[160];
            snprintf(msg, sizeof msg, "listing refused at entry %lld: %s", (long long)count + 1, why);
            return push_fail(L, msg, UX_ERR_UNSAFE);
        }
        push_entry(L, &e);
        lua_rawseti(L, -2, ++count);
        at = (size_t)(nl - buf) + 1;
    }
    if (!count)
        return push_fail(L, "the listing is empty", UX_ERR_UNSAFE);
    return 1;
}

void ux_lua_listing_open(lua_State *L)
{
    lua_pushcfunction(L, l_listing_decode);
    lua_setfield(L, -2, "listing_decode");
}
