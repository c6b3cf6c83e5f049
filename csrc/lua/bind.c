#include "bind.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/hash.h"
#include "engine/wire.h"
#include "host/clock.h"
#include "host/random.h"

int push_fail(lua_State *L, const char *msg, enum ux_err code)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, ux_err_name(code));
    return 3;
}

int push_errno(lua_State *L, const char *what, int err, enum ux_err code)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
    return push_fail(L, msg, code);
}

void set_str(lua_State *L, const char *k, const char *v) { lua_pushstring(L, v); lua_setfield(L, -2, k); }
void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }
void set_int(lua_State *L, const char *k, lua_Integer v) { lua_pushinteger(L, v); lua_setfield(L, -2, k); }
void set_bool(lua_State *L, const char *k, int v) { lua_pushboolean(L, v); lua_setfield(L, -2, k); }

void set_addr(lua_State *L, const char *k, const struct ux_addr *a)
{
    char s[80];
    ux_addr_format(a, s, sizeof s);
    set_str(L, k, s);
}

void set_hex(lua_State *L, const char *k, const uint8_t *h)
{
    char s[2 * UX_HASH_LEN + 1];
    ux_hex(h, UX_HASH_LEN, s);
    set_str(L, k, s);
}

const char *opt_str(lua_State *L, const char *k, const char *def, size_t *len)
{
    lua_getfield(L, 1, k);
    const char *s = lua_isnil(L, -1) ? def : luaL_checklstring(L, -1, len);
    if (s == def && len)
        *len = def ? strlen(def) : 0;
    lua_pop(L, 1); /* strings stay alive: the options table holds them */
    return s;
}

lua_Number opt_range(lua_State *L, const char *k, lua_Number def, lua_Number min, lua_Number max)
{
    lua_getfield(L, 1, k);
    lua_Number v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= min && v <= max)) {
        char msg[160];
        snprintf(msg, sizeof msg, "option %s must be a number from %.14g to %.14g", k, min, max);
        luaL_argerror(L, 1, msg);
    }
    return v;
}

int opt_bool(lua_State *L, const char *k)
{
    lua_getfield(L, 1, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int parse_hex(const char *s, size_t n, uint8_t *out, size_t outlen)
{
    if (n != 2 * outlen)
        return -1;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

const uint8_t *opt_key(lua_State *L, uint8_t out[UX_KEY_LEN])
{
    size_t n = 0;
    const char *k = opt_str(L, "key", NULL, &n);
    if (!k)
        return NULL;
    if (n == UX_KEY_LEN)
        memcpy(out, k, UX_KEY_LEN);
    else if (parse_hex(k, n, out, UX_KEY_LEN))
        luaL_argerror(L, 1, "key must be 32 bytes or 64 hex digits");
    return out;
}

int push_timeout(lua_State *L, const struct ux_io *io, uint64_t deadline)
{
    if (io->spend > 0 || deadline == 0) {
        lua_pushnumber(L, 0);
    } else if (deadline == UINT64_MAX) {
        lua_pushnil(L);
    } else {
        uint64_t now = ux_now_us();
        lua_pushnumber(L, deadline > now ? (double)(deadline - now) / 1e6 : 0);
    }
    return 1;
}

int push_deadline(lua_State *L, uint64_t d)
{
    if (d == UINT64_MAX)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (double)d / 1e6);
    return 1;
}

int push_port(lua_State *L, const struct ux_io *io)
{
    int port = ux_io_port(io);
    if (port < 0)
        return 0;
    lua_pushinteger(L, port);
    return 1;
}

/* Rounded: a deadline handed out as seconds must come back as the same microsecond. */
uint64_t sim_now(lua_State *L, int idx)
{
    lua_Number t = luaL_checknumber(L, idx);
    luaL_argcheck(L, t >= 0 && t <= UX_MAX_SECONDS, idx, "a time from 0 to 1e9 seconds expected");
    return (uint64_t)(t * 1e6 + 0.5);
}

uint64_t start_now(lua_State *L, int sim)
{
    return sim ? (uint64_t)(opt_range(L, "now", 0, 0, UX_MAX_SECONDS) * 1e6 + 0.5) : ux_now_us();
}

struct ux_rng engine_rng(lua_State *L, int sim, struct sim_rng *state)
{
    if (!sim)
        return ux_host_rng();
    state->state = (uint64_t)opt_range(L, "seed", 1, 0, 9007199254740992.0); /* 2^53: exact in a double */
    return (struct ux_rng){ux_rng_seeded, &state->state};
}

void check_addr_arg(lua_State *L, int idx, struct ux_addr *a)
{
    if (ux_addr_parse(luaL_checkstring(L, idx), 0, a))
        luaL_argerror(L, idx, "address as \"ip:port\" expected");
}

int sim_input(lua_State *L, void *eng, ux_input_fn in)
{
    size_t n;
    const char *pkt = luaL_checklstring(L, 2, &n);
    struct ux_addr a;
    check_addr_arg(L, 3, &a);
    in(eng, sim_now(L, 4), (const uint8_t *)pkt, n, &a);
    return 0;
}

int sim_output(lua_State *L, void *eng, ux_output_fn out)
{
    enum { CAP = UX_DATA_OVERHEAD + UX_MAX_CHUNK + UX_SEAL_MAX };
    luaL_Buffer b;
    uint8_t *buf = (uint8_t *)luaL_buffinitsize(L, &b, CAP);
    struct ux_addr to;
    size_t n = out(eng, sim_now(L, 2), buf, CAP, &to, NULL);
    if (!n)
        return 0;
    luaL_pushresultsize(&b, n);
    char s[80];
    ux_addr_format(&to, s, sizeof s);
    lua_pushstring(L, s);
    return 2;
}

void new_class(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction close)
{
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}

static void le64(unsigned char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

void stamp_bytes(unsigned char out[32], int64_t size, int64_t mtime, uint64_t ino, int64_t ctime)
{
    le64(out, (uint64_t)size);
    le64(out + 8, (uint64_t)mtime);
    le64(out + 16, ino);
    le64(out + 24, (uint64_t)ctime);
}

void push_stamp(lua_State *L, int64_t size, int64_t mtime, uint64_t ino, int64_t ctime)
{
    unsigned char b[32];
    stamp_bytes(b, size, mtime, ino, ctime);
    lua_pushlstring(L, (const char *)b, sizeof b);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static const char *stat_type(mode_t m)
{
    return S_ISDIR(m) ? "dir" : S_ISREG(m) ? "file" : S_ISLNK(m) ? "link" : "other";
}

void push_stat(lua_State *L, const struct stat *st)
{
    lua_createtable(L, 0, 8);
    set_str(L, "type", stat_type(st->st_mode));
    set_int(L, "mode", st->st_mode & 07777);
    set_int(L, "size", (lua_Integer)st->st_size);
    set_int(L, "mtime", ns(st->st_mtim));
    set_int(L, "ctime", ns(st->st_ctim));
    set_int(L, "ino", (lua_Integer)st->st_ino);
    set_int(L, "dev", (lua_Integer)st->st_dev);
    if (S_ISREG(st->st_mode)) {
        push_stamp(L, (int64_t)st->st_size, ns(st->st_mtim), (uint64_t)st->st_ino, ns(st->st_ctim));
        lua_setfield(L, -2, "stamp");
    }
}
