/* Helpers shared by the binding's files (ludpxfer.c, lstream.c); the only
 * header besides them that sees lua.h. Hidden: the module exports one symbol. */
#ifndef UDPXFER_LBIND_H
#define UDPXFER_LBIND_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "addr.h"
#include "net.h"
#include "server.h"

/* Returns 1 to hand the datagram back: the pump keeps it, and the rest of
 * its batch, for the next step. */
typedef int (*input_fn)(void *eng, uint64_t now, const uint8_t *pkt, size_t len, const struct ux_addr *from);
/* TAIL: NULL (everything in BUF) or where an engine may say its payload
 * stays in lent memory (the server's mapped files). */
typedef size_t (*output_fn)(void *eng, uint64_t now, uint8_t *buf, size_t cap, struct ux_addr *to,
                            struct ux_tail *tail);

uint64_t mono_us(void);
int push_fail(lua_State *L, const char *msg, const char *code);
void set_str(lua_State *L, const char *k, const char *v);
void set_num(lua_State *L, const char *k, double v);
void set_int(lua_State *L, const char *k, lua_Integer v);
void set_bool(lua_State *L, const char *k, int v);
void set_addr(lua_State *L, const char *k, const struct ux_addr *a);
void set_hex(lua_State *L, const char *k, const uint8_t *h);
/* Options from the table at index 1; a wrong type raises. */
const char *opt_str(lua_State *L, const char *k, const char *def, size_t *len);
lua_Number opt_num(lua_State *L, const char *k, lua_Number def);
int opt_bool(lua_State *L, const char *k);
/* Receive, feed, send: a bounded number of rounds. Datagrams handed back
 * stay in io (ux_io_held) and are fed first next time. */
void pump(struct ux_io *io, void *eng, input_fn in, output_fn out);
int push_timeout(lua_State *L, const struct ux_io *io, uint64_t deadline);
int push_deadline(lua_State *L, uint64_t d);
/* The local UDP port of a socket (nothing if it cannot be read). */
int push_port(lua_State *L, const struct ux_io *io);
uint64_t sim_now(lua_State *L, int idx);
/* An engine's start time: the option `now` (seconds) for a sim engine, else the clock. */
uint64_t start_now(lua_State *L, int sim);
void check_addr_arg(lua_State *L, int idx, struct ux_addr *a);
int sim_input(lua_State *L, void *eng, input_fn in);
int sim_output(lua_State *L, void *eng, output_fn out);
void new_class(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction close);
/* Adds the stream classes and constructors to the module table on top. */
void ux_lua_stream_open(lua_State *L);

#endif
