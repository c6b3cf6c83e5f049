/* udpxfer.core.listing_decode(text [, max_entries [, mode_mask]]): a listing
 * (engine/listing.h) checked and decoded for Lua, or refused whole.
 *
 * What it returns costs about 40 bytes an entry besides the text: a
 * record per entry (numbers, and offsets of the path, target and SHA-256
 * in the text, which it keeps), not a table. `l[i]` (and so ipairs) gives
 * a view of entry i, a small userdata whose fields read the record;
 * `l:get(i)` a plain table; `l:unchanged(scan, index)` which files a
 * synced folder holds as listed; `l:has_own()` whether an entry is named
 * as udpxfer's own files. The text is checked a line at a time in a
 * scratch copy, never copied whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "scan_obj.h"
#include "engine/listing.h"
#include "engine/names.h"
#include "engine/wire.h"

#define LISTING_MT "udpxfer.listing"
#define VIEW_MT "udpxfer.listing.entry"
#define DEFAULT_MAX_ENTRIES 1000000

/* One entry. Offsets are into the text, or (IN_ARENA) into the arena,
 * where a path or target written with %XX escapes is kept unescaped. */
struct lrec {
    uint32_t path;
    union {
        uint32_t target;      /* a link's */
        uint32_t number;      /* a file's, among the listing's files from 0: how a batch names it */
    };
    uint32_t sha;
    uint32_t path_len, target_len;
    uint16_t mode;
    uint8_t type, flags;
    int64_t mtime;
    uint64_t size;
};
enum { PATH_IN_ARENA = 1, TARGET_IN_ARENA = 2 };

struct lst {
    const char *text;         /* the Lua string, kept as the user value */
    struct lrec *rec;
    uint32_t n, cap;
    uint32_t files;           /* the files recorded so far */
    uint16_t mode_mask;       /* the mode bits kept */
    char *arena;
    size_t alen, acap;
};

struct lview {
    uint32_t i;
};

/* ---- building ---- */

/* A scratch line, grown as needed. */
struct line {
    char *p;
    size_t cap;
};

/* The state of one decode, freed whatever happens (a to-be-closed value). */
struct decoding {
    struct line line[2];          /* this line and the one before (whose path the checker keeps) */
    char (*dirs)[UX_MAX_NAME + 1]; /* the folders on the checker's chain, by depth */
    struct ux_lcheck chk;
};

static int decoding_free(lua_State *L)
{
    struct decoding *d = luaL_checkudata(L, 1, "udpxfer.listing.decoding");
    free(d->line[0].p);
    free(d->line[1].p);
    free(d->dirs);
    memset(d, 0, sizeof *d);
    return 0;
}

static int grow_line(struct line *l, size_t n)
{
    if (n <= l->cap)
        return 0;
    size_t cap = n < 4096 ? 4096 : n;
    char *p = realloc(l->p, cap);
    if (!p)
        return -1;
    l->p = p;
    l->cap = cap;
    return 0;
}

static int add_rec(struct lst *l)
{
    if (l->n < l->cap)
        return 0;
    uint32_t cap = l->cap ? l->cap * 2 : 1024;
    struct lrec *r = realloc(l->rec, (size_t)cap * sizeof *r);
    if (!r)
        return -1;
    l->rec = r;
    l->cap = cap;
    return 0;
}

/* LEN bytes into the arena; their offset, or UINT32_MAX without memory. */
static uint32_t to_arena(struct lst *l, const char *s, size_t len)
{
    if (l->alen + len > l->acap) {
        size_t cap = l->acap ? l->acap * 2 : 4096;
        while (cap < l->alen + len)
            cap *= 2;
        char *a = cap <= UINT32_MAX ? realloc(l->arena, cap) : NULL;
        if (!a)
            return UINT32_MAX;
        l->arena = a;
        l->acap = cap;
    }
    memcpy(l->arena + l->alen, s, len);
    l->alen += len;
    return (uint32_t)(l->alen - len);
}

/* Where a field (LEN bytes unescaped, WRITTEN as written, at TEXT_OFF in
 * the text) is kept: in the text if it had no escapes (it is as long as
 * written), else unescaped in the arena. */
static int place(struct lst *l, const char *field, size_t len, size_t written, size_t text_off, uint32_t *off,
                 uint8_t *flags, uint8_t arena_flag)
{
    if (written == len) {
        *off = (uint32_t)text_off;
        return 0;
    }
    *flags |= arena_flag;
    return (*off = to_arena(l, field, len)) == UINT32_MAX ? -1 : 0;
}

/* Start of each tab-separated field of the line at LINE (LEN bytes). */
static int fields(const char *line, size_t len, size_t start[6])
{
    int nf = 0;
    start[nf++] = 0;
    for (size_t i = 0; i < len && nf < 6; i++)
        if (line[i] == '\t')
            start[nf++] = i + 1;
    return nf;
}

/* Record the entry E parsed from the line at AT (LEN bytes) of TEXT. */
static int record(struct lst *l, const char *text, size_t at, size_t len, const struct ux_lentry *e,
                  const char *scratch)
{
    size_t f[6];
    int nf = fields(text + at, len, f);
    if (add_rec(l))
        return -1;
    struct lrec *r = &l->rec[l->n];
    memset(r, 0, sizeof *r);
    r->type = (uint8_t)e->type;
    r->mode = (uint16_t)(e->mode & l->mode_mask);
    r->mtime = e->mtime_ns;
    r->size = e->size;
    r->path_len = (uint32_t)e->path_len;
    size_t path_at = (size_t)(e->path - scratch);
    if (place(l, e->path, e->path_len, len - path_at, at + path_at, &r->path, &r->flags, PATH_IN_ARENA))
        return -1;
    if (e->type == UX_LT_FILE) {
        r->sha = (uint32_t)(at + f[4]);
        r->number = l->files++;
    }
    if (e->type == UX_LT_LINK) {
        size_t t_at = (size_t)(e->target - scratch);
        r->target_len = (uint32_t)e->target_len;
        if (place(l, e->target, e->target_len, f[nf - 1] - 1 - t_at, at + t_at, &r->target, &r->flags,
                  TARGET_IN_ARENA))
            return -1;
    }
    l->n++;
    return 0;
}

/* After the checker took E: a folder it keeps on its chain is kept in D's
 * slot for its depth, since the scratch line it lies in is reused. */
static void keep_chain(struct decoding *d, const struct ux_lentry *e)
{
    if (e->type != UX_LT_DIR || d->chk.depth < 1)
        return;
    int k = d->chk.depth - 1;
    memcpy(d->dirs[k], e->path, e->path_len);
    d->chk.dir[k] = d->dirs[k];
}

static int refuse(lua_State *L, uint32_t count, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "listing refused at entry %lu: %s", (unsigned long)count + 1, why);
    return push_fail(L, msg, UX_ERR_UNSAFE);
}

/* listing_decode(text [, max_entries [, mode_mask]]) -> the listing (see
 * above) with the folder itself first as ".", or nil, message, "unsafe".
 * More than MAX_ENTRIES entries (default 1,000,000) refuse it too. Modes
 * keep only the bits of MODE_MASK (default all). */
static int lt_decode(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    lua_Number max = luaL_optnumber(L, 2, DEFAULT_MAX_ENTRIES);
    luaL_argcheck(L, max >= 1 && max <= UINT32_MAX - 1, 2, "max_entries must be a number from 1 to 4294967294");
    lua_Integer mask = luaL_optinteger(L, 3, 0xffff);
    luaL_argcheck(L, mask >= 0 && mask <= 0xffff, 3, "mode_mask must be an integer from 0 to 65535");
    size_t magic = sizeof UX_LISTING_MAGIC - 1;
    if (n < magic + 1 || memcmp(text, UX_LISTING_MAGIC, magic) || text[magic] != '\n')
        return push_fail(L, "not a udpxfer listing", UX_ERR_UNSAFE);
    if (n > UINT32_MAX)
        return push_fail(L, "the listing is larger than 4 GiB", UX_ERR_UNSAFE);
    struct decoding *d = lua_newuserdatauv(L, sizeof *d, 0);
    memset(d, 0, sizeof *d);
    if (luaL_newmetatable(L, "udpxfer.listing.decoding")) {
        lua_pushcfunction(L, decoding_free);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1);
    struct lst *l = lua_newuserdatauv(L, sizeof *l, 1);
    memset(l, 0, sizeof *l);
    luaL_setmetatable(L, LISTING_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the records point into the text */
    l->text = text;
    l->mode_mask = (uint16_t)mask;
    if (!(d->dirs = malloc((size_t)UX_LISTING_DEPTH * sizeof *d->dirs)))
        return luaL_error(L, "out of memory");
    ux_lcheck_init(&d->chk);
    int cur = 0;
    for (size_t at = magic + 1; at < n; cur ^= 1) {
        const char *nl = memchr(text + at, '\n', n - at);
        if (!nl)
            return push_fail(L, "the listing's last line is cut short", UX_ERR_UNSAFE);
        size_t len = (size_t)(nl - (text + at));
        if (l->n >= (uint32_t)max) {
            char msg[160];
            snprintf(msg, sizeof msg, "the listing has more than %.0f entries (max_entries)", max);
            return push_fail(L, msg, UX_ERR_UNSAFE);
        }
        if (grow_line(&d->line[cur], len + 1))
            return luaL_error(L, "out of memory");
        char *line = d->line[cur].p;
        memcpy(line, text + at, len);
        struct ux_lentry e;
        const char *why = "";
        if (ux_listing_parse(line, len, &e, &why) || ux_lcheck_next(&d->chk, &e, &why))
            return refuse(L, l->n, why);
        keep_chain(d, &e);
        if (record(l, text, at, len, &e, line))
            return luaL_error(L, "out of memory");
        at += len + 1;
    }
    if (!l->n)
        return push_fail(L, "the listing is empty", UX_ERR_UNSAFE);
    return 1;
}

/* ---- reading ---- */

static const char *path_of(const struct lst *l, const struct lrec *r)
{
    return (r->flags & PATH_IN_ARENA ? l->arena : l->text) + r->path;
}

static struct lst *check_lst(lua_State *L, int idx) { return luaL_checkudata(L, idx, LISTING_MT); }

static const char *type_name(uint8_t t) { return t == UX_LT_DIR ? "dir" : t == UX_LT_FILE ? "file" : "link"; }

/* The SHA-256 as it was written, in lower case. */
static void push_sha(lua_State *L, const struct lst *l, const struct lrec *r)
{
    char hex[2 * UX_SHA256_LEN];
    for (int i = 0; i < 2 * UX_SHA256_LEN; i++) {
        char c = l->text[r->sha + (uint32_t)i];
        hex[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    lua_pushlstring(L, hex, sizeof hex);
}

/* Field K of entry R onto the stack (nil where the entry has none). */
static void push_field(lua_State *L, const struct lst *l, const struct lrec *r, const char *k)
{
    if (!strcmp(k, "path"))
        lua_pushlstring(L, path_of(l, r), r->path_len);
    else if (!strcmp(k, "type"))
        lua_pushstring(L, type_name(r->type));
    else if (!strcmp(k, "mode"))
        lua_pushinteger(L, r->mode);
    else if (!strcmp(k, "mtime"))
        lua_pushinteger(L, r->mtime);
    else if (!strcmp(k, "size") && r->type == UX_LT_FILE)
        lua_pushinteger(L, (lua_Integer)r->size);
    else if (!strcmp(k, "sha256") && r->type == UX_LT_FILE)
        push_sha(L, l, r);
    else if (!strcmp(k, "number") && r->type == UX_LT_FILE)
        lua_pushinteger(L, r->number);
    else if (!strcmp(k, "target") && r->type == UX_LT_LINK)
        lua_pushlstring(L, (r->flags & TARGET_IN_ARENA ? l->arena : l->text) + r->target, r->target_len);
    else
        lua_pushnil(L);
}

/* Entry I (from 1), or NULL. */
static const struct lrec *rec_at(const struct lst *l, lua_Integer i)
{
    return i >= 1 && (lua_Unsigned)i <= l->n ? &l->rec[i - 1] : NULL;
}

/* l[i]: a view of entry i (nil past the end); l.name: a method. */
static int lt_index(lua_State *L)
{
    struct lst *l = check_lst(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) {
        luaL_getmetafield(L, 1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
        return 1;
    }
    lua_Integer i = luaL_checkinteger(L, 2);
    if (!rec_at(l, i))
        return 0;
    struct lview *v = lua_newuserdatauv(L, sizeof *v, 1);
    v->i = (uint32_t)(i - 1);
    luaL_setmetatable(L, VIEW_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static int lt_len(lua_State *L)
{
    lua_pushinteger(L, check_lst(L, 1)->n);
    return 1;
}

/* l:get(i): entry i as a plain table {type, mode, mtime, path, size, sha256, number, target}. */
static int lt_get(lua_State *L)
{
    struct lst *l = check_lst(L, 1);
    const struct lrec *r = rec_at(l, luaL_checkinteger(L, 2));
    if (!r)
        return 0;
    static const char *const keys[] = {"type", "mode", "mtime", "path", "size", "sha256", "number", "target"};
    lua_createtable(L, 0, 8);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        push_field(L, l, r, keys[k]);
        lua_setfield(L, -2, keys[k]);
    }
    return 1;
}

/* l:find(path): the index of the entry at PATH, or nil. Entries after
 * the first (".") are in listing order: a binary search. */
static int lt_find(lua_State *L)
{
    struct lst *l = check_lst(L, 1);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    if (len == 1 && p[0] == '.') {
        lua_pushinteger(L, 1);
        return 1;
    }
    uint32_t lo = 1, hi = l->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct lrec *r = &l->rec[mid];
        int c = ux_listing_cmp(path_of(l, r), r->path_len, p, len);
        if (c == 0) {
            lua_pushinteger(L, (lua_Integer)mid + 1);
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Is file entry R what the folder (scan S) holds, as the index table at
 * stack index 3 vouches for? Its record there (udpxfer.index: the stamp,
 * 32 bytes, then the SHA-256 in hex) has the scan's stamp and the listed
 * SHA-256, and the scan the listed mode and mtime. */
static int same_as_listed(lua_State *L, const struct lst *l, const struct lrec *r, const struct scan *s)
{
    const char *p = path_of(l, r);
    uint16_t mode;
    int64_t mtime;
    unsigned char stamp[32];
    if (!ux_scan_file(s, p, r->path_len, &mode, &mtime, stamp) || mode != r->mode || mtime != r->mtime)
        return 0;
    lua_pushlstring(L, p, r->path_len);
    size_t n = 0;
    const char *rec = lua_rawget(L, 3) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    int same = rec && n == sizeof stamp + 2 * UX_SHA256_LEN && !memcmp(rec, stamp, sizeof stamp);
    for (int i = 0; same && i < 2 * UX_SHA256_LEN; i++) {
        char c = l->text[r->sha + (uint32_t)i];
        same = rec[sizeof stamp + (size_t)i] == (c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c);
    }
    lua_pop(L, 1);
    return same;
}

/* l:unchanged(scan, index): a byte per entry, 1 for a file the folder
 * (dir:scan()) holds as listed and the index (udpxfer.index records by
 * path) vouches for, else 0 -- what planning an unchanged tree needs,
 * without a view or a string per entry. */
static int lt_unchanged(lua_State *L)
{
    struct lst *l = check_lst(L, 1);
    const struct scan *s = ux_check_scan(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    char *out = lua_newuserdatauv(L, l->n ? l->n : 1, 0); /* scratch, the GC's */
    for (uint32_t i = 0; i < l->n; i++)
        out[i] = (char)(l->rec[i].type == UX_LT_FILE && same_as_listed(L, l, &l->rec[i], s));
    lua_pushlstring(L, out, l->n);
    return 1;
}

/* l:has_own(): does an entry bear the name of one of udpxfer's own files
 * (its index, a temporary file), which no server lists? */
static int lt_has_own(lua_State *L)
{
    const struct lst *l = check_lst(L, 1);
    int any = 0;
    for (uint32_t i = 0; i < l->n && !any; i++) {
        const char *p = path_of(l, &l->rec[i]);
        size_t n = l->rec[i].path_len, base = n;
        while (base > 0 && p[base - 1] != '/')
            base--;
        any = ux_name_is_own(p + base, n - base);
    }
    lua_pushboolean(L, any);
    return 1;
}

static int lt_gc(lua_State *L)
{
    struct lst *l = check_lst(L, 1);
    free(l->rec);
    free(l->arena);
    l->rec = NULL;
    l->arena = NULL;
    l->n = l->cap = 0;
    return 0;
}

/* view.field: the field of the entry it views (read-only). view.e is the
 * view itself: a plan's step that names only its entry (plan.lua). */
static int lv_index(lua_State *L)
{
    /* Only the view's own metatable (hidden: __metatable) calls this, on a
     * view whose user value is its listing: a plan reads millions of
     * fields, so no type checks by name here. */
    const struct lview *v = lua_touserdata(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!v || !k)
        return luaL_error(L, "a listing entry's field name must be a string");
    if (k[0] == 'e' && !k[1]) {
        lua_settop(L, 1);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    const struct lst *l = lua_touserdata(L, -1);
    push_field(L, l, &l->rec[v->i], k);
    return 1;
}

static int lv_newindex(lua_State *L) { return luaL_error(L, "a listing entry is read-only"); }

void ux_lua_listing_open(lua_State *L)
{
    static const luaL_Reg methods[] = {{"get", lt_get}, {"find", lt_find}, {"unchanged", lt_unchanged},
                                       {"has_own", lt_has_own}, {NULL, NULL}};
    luaL_newmetatable(L, LISTING_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, lt_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lt_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, lt_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, VIEW_MT);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushcfunction(L, lv_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lv_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
    lua_pushcfunction(L, lt_decode);
    lua_setfield(L, -2, "listing_decode");
}
