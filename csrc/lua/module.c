/* The module udpxfer.core: its functions, and the classes from lclient.c,
 * lserver.c and lstream.c. The one symbol the library exports. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"
#include "engine/hash.h"
#include "engine/names.h"
#include "engine/wire.h"
#include "host/clock.h"
#include "host/filehash.h"
#include "host/userfiles.h"
#include "host/random.h"
#include "host/signals.h"
#include "host/term.h"

__attribute__((visibility("default"))) int luaopen_udpxfer_core(lua_State *L);


static int l_now(lua_State *L) { lua_pushnumber(L, (double)ux_now_us() / 1e6); return 1; }

/* poll({fd, "r"|"rw", ...}, timeout_seconds|nil) -> the number of ready
 * descriptors (0 on timeout, or when a signal interrupted the wait), or nil,
 * message, code. Any number of descriptors. */
static int l_poll(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer len = luaL_len(L, 1);
    luaL_argcheck(L, len % 2 == 0, 1, "pairs of descriptor and events expected");
    size_t n = (size_t)(len / 2);
    struct pollfd *fds = lua_newuserdatauv(L, n ? n * sizeof *fds : 1, 0);
    for (size_t k = 0; k < n; k++) {
        lua_geti(L, 1, (lua_Integer)(2 * k + 1));
        lua_geti(L, 1, (lua_Integer)(2 * k + 2));
        fds[k].fd = (int)luaL_checkinteger(L, -2);
        fds[k].events = POLLIN | (strchr(luaL_checkstring(L, -1), 'w') ? POLLOUT : 0);
        fds[k].revents = 0;
        lua_pop(L, 2);
    }
    /* ppoll: microseconds, as pacing wants, not poll's milliseconds */
    struct timespec ts, *tp = NULL;
    if (!lua_isnoneornil(L, 2)) {
        double t = luaL_checknumber(L, 2);
        t = t >= 0 ? (t > 86400 ? 86400 : t) : 0; /* NaN waits not at all */
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        tp = &ts;
    }
    int r = ux_signals_poll(fds, (nfds_t)n, tp);
    if (r < 0)
        return push_errno(L, "poll", -r, UX_ERR_IO);
    lua_pushinteger(L, r);
    return 1;
}

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct ux_sha *sha = ux_sha_new();
    uint8_t h[UX_HASH_LEN];
    char hex[2 * UX_HASH_LEN + 1];
    if (!sha || ux_sha_init(sha) || ux_sha_update(sha, s, n) || ux_sha_final(sha, h)) {
        ux_sha_free(sha);
        return push_fail(L, "SHA-256 failed", UX_ERR_IO);
    }
    ux_sha_free(sha);
    ux_hex(h, UX_HASH_LEN, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_sha256_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uint8_t h[UX_HASH_LEN];
    char hex[2 * UX_HASH_LEN + 1];
    int err = ux_sha_file(-1, path, h);
    if (err)
        return push_errno(L, path, err, UX_ERR_IO);
    ux_hex(h, UX_HASH_LEN, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_broadcast_addresses(lua_State *L)
{
    struct ux_addr a[32];
    int n = ux_broadcast_addresses(a, 32, (int)luaL_optinteger(L, 1, UX_DEFAULT_PORT));
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
        char s[80];
        ux_addr_format(&a[i], s, sizeof s);
        lua_pushstring(L, s);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_resolve(lua_State *L)
{
    struct ux_addr a;
    if (ux_resolve(luaL_checkstring(L, 1), (int)luaL_optinteger(L, 2, UX_DEFAULT_PORT), &a))
        return push_fail(L, "cannot resolve address", UX_ERR_USAGE);
    char s[80];
    ux_addr_format(&a, s, sizeof s);
    lua_pushstring(L, s);
    return 1;
}

/* path_mtu("ip:port") -> the route's MTU, or nil, message, code. */
static int l_path_mtu(lua_State *L)
{
    struct ux_addr a;
    check_addr_arg(L, 1, &a);
    int mtu = ux_path_mtu(&a);
    if (mtu <= 0)
        return push_fail(L, "no route to that address", UX_ERR_IO);
    lua_pushinteger(L, mtu);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, ux_term_width((int)luaL_checkinteger(L, 1)) >= 0);
    return 1;
}

/* term_width(fd) -> the terminal's columns, or nil if FD is not a terminal. */
static int l_term_width(lua_State *L)
{
    int cols = ux_term_width((int)luaL_checkinteger(L, 1));
    if (cols <= 0)
        return 0;
    lua_pushinteger(L, cols);
    return 1;
}

/* Signals a loop ends cleanly on (host/signals.h): the handler only
 * notes them; poll() returns early and the loop asks signaled(). */

/* catch_signals() -> true: from now on SIGINT and SIGTERM are noted, not
 * acted on, until as many release_signals() (nested holds count). */
static int l_catch_signals(lua_State *L)
{
    int err = ux_signals_hold();
    if (err)
        return push_errno(L, "cannot catch signals", err, UX_ERR_IO);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_release_signals(lua_State *L)
{
    (void)L;
    ux_signals_release();
    return 0;
}

/* signaled() -> the number of the signal caught (SIGINT 2, SIGTERM 15), or nil. */
static int l_signaled(lua_State *L)
{
    int sig = ux_signals_caught();
    if (!sig)
        return 0;
    lua_pushinteger(L, sig);
    return 1;
}

/* die(sig): end the process as signal SIG does by default. */
static int l_die(lua_State *L)
{
    lua_Integer sig = luaL_checkinteger(L, 1);
    luaL_argcheck(L, sig == 2 || sig == 15, 1, "SIGINT (2) or SIGTERM (15) expected");
    ux_signals_die((int)sig);
}

/* mkdirs(path) -> true: PATH and the folders above it exist (made 0755
 * as needed), or nil, message, code. */
static int l_mkdirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int err = ux_mkpath(path, 0755);
    if (err)
        return push_errno(L, path, err, UX_ERR_IO);
    lua_pushboolean(L, 1);
    return 1;
}

/* write_private(path, data) -> true: PATH holds DATA, mode 0600, or nil, message, code. */
static int l_write_private(lua_State *L)
{
    size_t n;
    const char *path = luaL_checkstring(L, 1), *data = luaL_checklstring(L, 2, &n);
    int err = ux_write_private(path, data, n);
    if (err)
        return push_errno(L, path, err, UX_ERR_IO);
    lua_pushboolean(L, 1);
    return 1;
}

/* file_mode(fd) -> the permission bits of the regular file open as FD, or nil. */
static int l_file_mode(lua_State *L)
{
    int mode = ux_fd_file_mode((int)luaL_checkinteger(L, 1));
    if (mode < 0)
        return 0;
    lua_pushinteger(L, mode);
    return 1;
}

/* random_bytes(n) -> n bytes from the CSPRNG (keys). */
static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "0 to 4096 bytes");
    uint8_t buf[4096];
    if (ux_host_random(NULL, buf, (size_t)n))
        return push_fail(L, "no randomness to be had", UX_ERR_IO);
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

int luaopen_udpxfer_core(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"now", l_now}, {"poll", l_poll}, {"sha256", l_sha256}, {"sha256_file", l_sha256_file},
        {"broadcast_addresses", l_broadcast_addresses}, {"resolve", l_resolve}, {"path_mtu", l_path_mtu},
        {"isatty", l_isatty}, {"term_width", l_term_width},
        {"catch_signals", l_catch_signals}, {"release_signals", l_release_signals}, {"signaled", l_signaled},
        {"die", l_die}, {"random_bytes", l_random_bytes}, {"mkdirs", l_mkdirs},
        {"write_private", l_write_private}, {"file_mode", l_file_mode},
        {NULL, NULL}};
    luaL_newlib(L, funcs);
    ux_lua_link_open(L);
    ux_lua_dir_open(L);
    ux_lua_listing_open(L);
    ux_lua_scan_open(L);
    ux_lua_client_open(L);
    ux_lua_batch_open(L);
    ux_lua_server_open(L);
    ux_lua_stream_open(L);
    lua_pushinteger(L, UX_DEFAULT_CHUNK);
    lua_setfield(L, -2, "DEFAULT_CHUNK");
    lua_pushinteger(L, UX_MIN_CHUNK);
    lua_setfield(L, -2, "MIN_CHUNK");
    lua_pushinteger(L, UX_MAX_CHUNK);
    lua_setfield(L, -2, "MAX_CHUNK");
    lua_pushinteger(L, UX_DATA_OVERHEAD); /* per DATA datagram */
    lua_setfield(L, -2, "DATA_OVERHEAD");
    lua_pushinteger(L, UX_BARE_DATA_OVERHEAD + UX_SEAL_OVERHEAD); /* per DATA datagram, sealed */
    lua_setfield(L, -2, "SEALED_DATA_OVERHEAD");
    lua_pushinteger(L, UX_DEFAULT_PORT);
    lua_setfield(L, -2, "DEFAULT_PORT");
    lua_newtable(L);
    for (int code = 1; code < UX_ERR_COUNT; code++) {
        lua_pushstring(L, ux_err_name(code));
        lua_rawseti(L, -2, code);
    }
    lua_setfield(L, -2, "ERRORS");
    return 1;
}
