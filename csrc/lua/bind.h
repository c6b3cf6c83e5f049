/* What the binding's class files (lclient.c, lserver.c, lstream.c) and
 * module.c share. With these, the only files that see lua.h. Hidden: the
 * module exports luaopen_udpxfer_core alone.
 *
 * The rule at this boundary: a programmer's mistake (a wrong type, a
 * missing required option, a method on a closed object) raises; a runtime
 * failure returns nil, message, code, the code a name from engine/errors.h. */
#ifndef UDPXFER_LUA_BIND_H
#define UDPXFER_LUA_BIND_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine/addr.h"
#include "engine/errors.h"
#include "engine/rng.h"
#include "engine/seal.h"
#include "host/net.h"
#include "host/pump.h"

/* nil, MSG, the name of CODE: three values. */
int push_fail(lua_State *L, const char *msg, enum ux_err code);
/* The same with ": strerror(ERR)" after WHAT. */
int push_errno(lua_State *L, const char *what, int err, enum ux_err code);
void set_str(lua_State *L, const char *k, const char *v);
void set_num(lua_State *L, const char *k, double v);
void set_int(lua_State *L, const char *k, lua_Integer v);
void set_bool(lua_State *L, const char *k, int v);
void set_addr(lua_State *L, const char *k, const struct ux_addr *a);
void set_hex(lua_State *L, const char *k, const uint8_t *h);
/* A file's stamp: size, mtime, inode and ctime as string.pack("<i8i8i8i8")
 * writes them, the one value udpxfer.index compares to know a file unchanged. */
void push_stamp(lua_State *L, int64_t size, int64_t mtime, uint64_t ino, int64_t ctime);
void stamp_bytes(unsigned char out[32], int64_t size, int64_t mtime, uint64_t ino, int64_t ctime);
struct stat;
/* A table of ST's type, mode, size, mtime, ctime (ns), ino, dev, and a
 * regular file's stamp. */
void push_stat(lua_State *L, const struct stat *st);
/* Options from the table at index 1; a wrong type raises. */
const char *opt_str(lua_State *L, const char *k, const char *def, size_t *len);
/* The number option K (DEF when absent), which must lie in [MIN, MAX]:
 * anything else (NaN too) raises "option K must be a number from MIN to
 * MAX", so no conversion to an integer type ever sees it out of range. */
lua_Number opt_range(lua_State *L, const char *k, lua_Number def, lua_Number min, lua_Number max);
#define UX_MAX_SECONDS 1e9   /* timeouts and times: about 31 years */
#define UX_MAX_RATE 1e15     /* bytes per second */
int opt_bool(lua_State *L, const char *k);
/* 64 hex digits into OUT; -1 if they are not. */
int parse_hex(const char *s, size_t n, uint8_t *out, size_t outlen);
/* The option `key` (32 bytes, or 64 hex digits) into OUT; NULL if absent. Raises if malformed. */
const uint8_t *opt_key(lua_State *L, uint8_t out[UX_KEY_LEN]);
int push_timeout(lua_State *L, const struct ux_io *io, uint64_t deadline);
int push_deadline(lua_State *L, uint64_t d);
/* The local UDP port of a socket (nothing if it cannot be read). */
int push_port(lua_State *L, const struct ux_io *io);

/* Simulated engines (a spec's link, no socket): time comes as an argument
 * in seconds, randomness from a seed. */
struct sim_rng {
    uint64_t state;
};
uint64_t sim_now(lua_State *L, int idx);
/* An engine's start time: the option `now` (seconds) for a sim engine, else the clock. */
uint64_t start_now(lua_State *L, int sim);
/* The engine's randomness: the option `seed` (default 1) for a sim engine,
 * kept in *STATE, else the host's CSPRNG. */
struct ux_rng engine_rng(lua_State *L, int sim, struct sim_rng *state);
void check_addr_arg(lua_State *L, int idx, struct ux_addr *a);
/* input(packet, "ip:port", now) and output(now) -> packet, "ip:port". */
int sim_input(lua_State *L, void *eng, ux_input_fn in);
int sim_output(lua_State *L, void *eng, ux_output_fn out);

void new_class(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction close);

/* Each adds its classes and constructors to the module table on top. */
void ux_lua_link_open(lua_State *L);
void ux_lua_dir_open(lua_State *L);
void ux_lua_listing_open(lua_State *L);
void ux_lua_scan_open(lua_State *L);
void ux_lua_client_open(lua_State *L);
void ux_lua_batch_open(lua_State *L);
void ux_lua_server_open(lua_State *L);
void ux_lua_stream_open(lua_State *L);

#endif
