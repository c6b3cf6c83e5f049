/* What dir:scan() returns: every entry below a synced folder, in about 64
 * bytes an entry and its path, not a table each. `s[i]` (and so ipairs)
 * gives a view of entry i, a small userdata whose fields read its record
 * (path, type, mode, size, mtime, ctime, ino, dev, target, own, stamp);
 * `s:find(path)` its index; `s:map()` a table-like view of the entries
 * that are not udpxfer's own files, by path (indexing and pairs work);
 * `s:own()` the paths of udpxfer's own files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "scan_obj.h"

#define SCAN_MT "udpxfer.scan"
#define SVIEW_MT "udpxfer.scan.entry"

struct srec {
    uint32_t path, path_len, target, target_len; /* offsets and lengths in the arena */
    uint16_t mode;
    uint8_t type, own;
    int64_t mtime, ctime;
    uint64_t size, ino, dev;
};

struct scan {
    struct srec *rec;
    uint32_t n, cap;
    char *arena;
    size_t alen, acap;
    uint32_t *slot;   /* open addressing by path: entry index + 1, 0 empty */
    uint32_t nslot;   /* a power of two, over twice n */
};

struct sview {
    uint32_t i;
};

static uint32_t hash_path(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int arena_add(struct scan *s, const char *p, size_t n, uint32_t *off)
{
    if (s->alen + n > s->acap) {
        size_t cap = s->acap ? s->acap * 2 : 65536;
        while (cap < s->alen + n)
            cap *= 2;
        char *a = cap <= UINT32_MAX ? realloc(s->arena, cap) : NULL;
        if (!a)
            return -1;
        s->arena = a;
        s->acap = cap;
    }
    memcpy(s->arena + s->alen, p, n);
    *off = (uint32_t)s->alen;
    s->alen += n;
    return 0;
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

int ux_scan_add(void *ud, const struct ux_local_entry *e)
{
    struct scan *s = ud;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 1024;
        struct srec *r = cap < UINT32_MAX / 2 ? realloc(s->rec, (size_t)cap * sizeof *r) : NULL;
        if (!r)
            return ENOMEM;
        s->rec = r;
        s->cap = cap;
    }
    struct srec *r = &s->rec[s->n];
    memset(r, 0, sizeof *r);
    r->path_len = (uint32_t)e->len;
    r->target_len = (uint32_t)e->tlen;
    if (arena_add(s, e->path, e->len, &r->path) || (e->target && arena_add(s, e->target, e->tlen, &r->target)))
        return ENOMEM;
    r->type = (uint8_t)e->type;
    r->own = e->own != 0;
    r->mode = (uint16_t)(e->st.st_mode & 07777);
    r->mtime = ns(e->st.st_mtim);
    r->ctime = ns(e->st.st_ctim);
    r->size = (uint64_t)e->st.st_size;
    r->ino = (uint64_t)e->st.st_ino;
    r->dev = (uint64_t)e->st.st_dev;
    s->n++;
    return 0;
}

static uint32_t *slot_for(const struct scan *s, const char *p, size_t n)
{
    for (uint32_t h = hash_path(p, n);; h++) {
        uint32_t *sl = &s->slot[h & (s->nslot - 1)];
        if (!*sl)
            return sl;
        const struct srec *r = &s->rec[*sl - 1];
        if (r->path_len == n && !memcmp(s->arena + r->path, p, n))
            return sl;
    }
}

int ux_scan_index(struct scan *s)
{
    uint32_t nslot = 16;
    while (nslot < 2 * (uint64_t)s->n + 1)
        nslot *= 2;
    if (!(s->slot = calloc(nslot, sizeof *s->slot)))
        return ENOMEM;
    s->nslot = nslot;
    for (uint32_t i = 0; i < s->n; i++)
        *slot_for(s, s->arena + s->rec[i].path, s->rec[i].path_len) = i + 1;
    return 0;
}

struct scan *ux_scan_new(lua_State *L)
{
    struct scan *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCAN_MT);
    return s;
}

static struct scan *check_scan(lua_State *L, int idx) { return luaL_checkudata(L, idx, SCAN_MT); }
const struct scan *ux_check_scan(lua_State *L, int idx) { return check_scan(L, idx); }

/* The index (from 0) of the entry at P, or -1. */
static int64_t find(const struct scan *s, const char *p, size_t n)
{
    if (!s->nslot)
        return -1;
    uint32_t sl = *slot_for(s, p, n);
    return sl ? (int64_t)sl - 1 : -1;
}

int ux_scan_file(const struct scan *s, const char *p, size_t n, uint16_t *mode, int64_t *mtime,
                 unsigned char stamp[32])
{
    int64_t i = find(s, p, n);
    const struct srec *r = i < 0 ? NULL : &s->rec[i];
    if (!r || r->type != 'f' || r->own)
        return 0;
    *mode = r->mode;
    *mtime = r->mtime;
    stamp_bytes(stamp, (int64_t)r->size, r->mtime, r->ino, r->ctime);
    return 1;
}

static const char *type_name(uint8_t t)
{
    return t == 'd' ? "dir" : t == 'f' ? "file" : t == 'l' ? "link" : "other";
}

/* Pushes field K of record R; 0 (nothing pushed) for a field it lacks.
 * One switch on the first letter: one whole comparison per read. */
static int push_known(lua_State *L, const struct scan *s, const struct srec *r, const char *k)
{
    switch (k[0]) {
    case 'p':
        if (strcmp(k, "path"))
            return 0;
        lua_pushlstring(L, s->arena + r->path, r->path_len);
        return 1;
    case 's':
        if (!strcmp(k, "size"))
            lua_pushinteger(L, (lua_Integer)r->size);
        else if (!strcmp(k, "stamp") && r->type == 'f')
            push_stamp(L, (int64_t)r->size, r->mtime, r->ino, r->ctime);
        else
            return 0;
        return 1;
    case 't':
        if (!strcmp(k, "type"))
            lua_pushstring(L, type_name(r->type));
        else if (!strcmp(k, "target") && r->type == 'l')
            lua_pushlstring(L, s->arena + r->target, r->target_len);
        else
            return 0;
        return 1;
    case 'm':
        if (!strcmp(k, "mode"))
            lua_pushinteger(L, r->mode);
        else if (!strcmp(k, "mtime"))
            lua_pushinteger(L, r->mtime);
        else
            return 0;
        return 1;
    case 'c':
    case 'i':
    case 'd': {
        const char *names[] = {"ctime", "ino", "dev"};
        lua_Integer v[] = {r->ctime, (lua_Integer)r->ino, (lua_Integer)r->dev};
        int j = k[0] == 'c' ? 0 : k[0] == 'i' ? 1 : 2;
        if (strcmp(k, names[j]))
            return 0;
        lua_pushinteger(L, v[j]);
        return 1;
    }
    case 'o':
        if (strcmp(k, "own") || !r->own)
            return 0;
        lua_pushboolean(L, 1);
        return 1;
    default:
        return 0;
    }
}

static void push_field(lua_State *L, const struct scan *s, const struct srec *r, const char *k)
{
    if (!push_known(L, s, r, k))
        lua_pushnil(L);
}

/* A view of entry I (from 0) of the scan at IDX. */
static void push_view(lua_State *L, int idx, uint32_t i)
{
    idx = lua_absindex(L, idx);
    struct sview *v = lua_newuserdatauv(L, sizeof *v, 1);
    v->i = i;
    luaL_setmetatable(L, SVIEW_MT);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, 1);
}

static int sc_index(lua_State *L)
{
    struct scan *s = check_scan(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) {
        luaL_getmetafield(L, 1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (lua_Unsigned)i > s->n)
        return 0;
    push_view(L, 1, (uint32_t)(i - 1));
    return 1;
}

static int sc_len(lua_State *L)
{
    lua_pushinteger(L, check_scan(L, 1)->n);
    return 1;
}

/* s:find(path): the index of the entry at PATH, or nil. */
static int sc_find(lua_State *L)
{
    struct scan *s = check_scan(L, 1);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    int64_t i = find(s, p, n);
    if (i < 0)
        return 0;
    lua_pushinteger(L, (lua_Integer)i + 1);
    return 1;
}

/* s:own(): the paths of udpxfer's own files found. */
static int sc_own(lua_State *L)
{
    struct scan *s = check_scan(L, 1);
    lua_newtable(L);
    lua_Integer k = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->rec[i].own) {
            lua_pushlstring(L, s->arena + s->rec[i].path, s->rec[i].path_len);
            lua_rawseti(L, -2, ++k);
        }
    return 1;
}

/* The map's __index(t, path): the view of the entry at PATH, not an own file. */
static int sm_index(lua_State *L)
{
    struct scan *s = check_scan(L, lua_upvalueindex(1));
    size_t n;
    const char *p = lua_tolstring(L, 2, &n);
    int64_t i = p ? find(s, p, n) : -1;
    if (i < 0 || s->rec[i].own)
        return 0;
    push_view(L, lua_upvalueindex(1), (uint32_t)i);
    return 1;
}

/* The map's iterator: path, view of each entry in turn but own files. */
static int sm_next(lua_State *L)
{
    struct scan *s = check_scan(L, lua_upvalueindex(1));
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
    while ((lua_Unsigned)i < s->n && s->rec[i].own)
        i++;
    if ((lua_Unsigned)i >= s->n)
        return 0;
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(2));
    lua_pushlstring(L, s->arena + s->rec[i].path, s->rec[i].path_len);
    push_view(L, lua_upvalueindex(1), (uint32_t)i);
    return 2;
}

static int sm_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, sm_next, 2);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int sm_newindex(lua_State *L) { return luaL_error(L, "a folder's scan is read-only"); }

/* s:map(): the entries but own files, by path, as a read-only table. */
static int sc_map(lua_State *L)
{
    check_scan(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, sm_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, sm_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, sm_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    return 1;
}

static int sc_gc(lua_State *L)
{
    struct scan *s = check_scan(L, 1);
    free(s->rec);
    free(s->arena);
    free(s->slot);
    memset(s, 0, sizeof *s);
    return 0;
}

static int se_index(lua_State *L)
{
    /* Only the view's own metatable (hidden: __metatable) calls this, on a
     * view whose user value is its scan: no type checks by name here. */
    const struct sview *v = lua_touserdata(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!v || !k)
        return luaL_error(L, "a scanned entry's field name must be a string");
    lua_getiuservalue(L, 1, 1);
    const struct scan *s = lua_touserdata(L, -1);
    push_field(L, s, &s->rec[v->i], k);
    return 1;
}

static int se_newindex(lua_State *L) { return luaL_error(L, "a scanned entry is read-only"); }

void ux_lua_scan_open(lua_State *L)
{
    static const luaL_Reg methods[] = {{"find", sc_find}, {"own", sc_own}, {"map", sc_map}, {NULL, NULL}};
    luaL_newmetatable(L, SCAN_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, sc_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, sc_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, sc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SVIEW_MT);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushcfunction(L, se_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, se_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}
