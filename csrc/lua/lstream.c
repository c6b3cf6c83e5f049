/* Lua binding of the stream engines: udpxfer.core.sender{} and receiver{}.
 * Each object is a host stream end (host/streamhost.h): its options become
 * the host's spec, its methods host calls, the host's events and stats
 * tables. */
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "engine/stream.h"
#include "host/streamhost.h"

#define SENDER_MT "udpxfer.sender"
#define RECEIVER_MT "udpxfer.receiver"

struct stream_obj {
    int live;
    struct sim_rng seed; /* a sim stream's randomness, which its engine keeps using */
    struct ux_streamhost h;
};

static struct stream_obj *check_stream(lua_State *L)
{
    struct stream_obj *o = luaL_testudata(L, 1, SENDER_MT);
    if (!o)
        o = luaL_checkudata(L, 1, RECEIVER_MT);
    if (!o->live)
        luaL_error(L, "stream is closed");
    return o;
}

static int st_close(lua_State *L)
{
    struct stream_obj *o = luaL_testudata(L, 1, SENDER_MT);
    if (!o)
        o = luaL_checkudata(L, 1, RECEIVER_MT);
    if (o->live)
        ux_streamhost_close(&o->h);
    o->live = 0;
    return 0;
}

/* Options both ends share, into SPEC. */
static void common_options(lua_State *L, struct ux_streamhost_spec *spec)
{
    spec->sim = opt_bool(L, "sim");
    spec->fd = (int)opt_range(L, "fd", -1, -1, 2147483647);
    spec->trace = opt_bool(L, "trace");
}

/* Open O, on top of the stack, for SPEC: returns it, or nil, message, code. */
static int open_stream(lua_State *L, const char *mt, struct stream_obj *o,
                       const struct ux_streamhost_spec *spec)
{
    char why[300];
    enum ux_err err = ux_streamhost_open(&o->h, spec, why, sizeof why);
    if (err)
        return push_fail(L, why, err);
    o->live = 1;
    luaL_setmetatable(L, mt);
    return 1;
}

static struct stream_obj *new_obj(lua_State *L)
{
    struct stream_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    return o;
}

static int st_sender(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    uint8_t key[UX_KEY_LEN];
    struct ux_streamhost_spec spec = {.sender = 1};
    struct ux_ssend_cfg *cfg = &spec.send;
    cfg->key = opt_key(L, key);
    common_options(L, &spec);
    struct stream_obj *o = new_obj(L);
    const char *peer = opt_str(L, "peer", NULL, NULL);
    if (!peer || ux_addr_parse(peer, UX_STREAM_PORT, &cfg->peer))
        return luaL_argerror(L, 1, "peer as \"ip:port\" is required");
    cfg->mss = (uint16_t)opt_range(L, "mss", UX_STREAM_MSS, UX_STREAM_MIN_MSS, UX_STREAM_MAX_MSS);
    cfg->buffer = (uint32_t)opt_range(L, "buffer", UX_STREAM_BUF, 0, 1u << 30);
    cfg->connect_us = (uint64_t)(opt_range(L, "connect_timeout", 30, 0, UX_MAX_SECONDS) * 1e6);
    cfg->idle_us = (uint64_t)(opt_range(L, "idle_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg->rng = engine_rng(L, spec.sim, &o->seed);
    spec.now = start_now(L, spec.sim);
    return open_stream(L, SENDER_MT, o, &spec);
}

static int st_receiver(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    uint8_t key[UX_KEY_LEN];
    struct ux_streamhost_spec spec = {.sender = 0};
    struct ux_srecv_cfg *cfg = &spec.recv;
    cfg->key = opt_key(L, key);
    common_options(L, &spec);
    struct stream_obj *o = new_obj(L);
    cfg->buffer = (uint32_t)opt_range(L, "buffer", UX_STREAM_BUF, 0, 1u << 30);
    cfg->listen_us = (uint64_t)(opt_range(L, "listen_timeout", 0, 0, UX_MAX_SECONDS) * 1e6);
    cfg->idle_us = (uint64_t)(opt_range(L, "idle_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg->rng = engine_rng(L, spec.sim, &o->seed);
    const char *bind_s = opt_str(L, "bind", "::", NULL); /* IPv6 and IPv4 */
    lua_Number port = opt_range(L, "port", UX_STREAM_PORT, 0, 65535);
    if (!spec.sim && ux_addr_parse(bind_s, (int)port, &spec.bind))
        return push_fail(L, "bind address must be a numeric IP", UX_ERR_USAGE);
    spec.now = start_now(L, spec.sim);
    return open_stream(L, RECEIVER_MT, o, &spec);
}

static const char *ev_name(enum ux_stream_event_type t)
{
    static const char *const names[] = {[UXST_EV_CONNECT] = "connect", [UXST_EV_COMPLETE] = "complete",
                                        [UXST_EV_FINISHED] = "done", [UXST_EV_FAILED] = "error"};
    return names[t];
}

/* Returns the event list and the log lines since the last call (or nil). */
static int drain(lua_State *L, struct stream_obj *o)
{
    struct ux_streamhost_event ev;
    lua_newtable(L);
    for (lua_Integer n = 1; ux_streamhost_next_event(&o->h, &ev); n++) {
        lua_newtable(L);
        set_str(L, "type", ev_name(ev.type));
        if (ev.type == UXST_EV_CONNECT) {
            set_addr(L, "peer", &ev.peer);
            char id[17];
            snprintf(id, sizeof id, "%016llx", (unsigned long long)ev.xid);
            set_str(L, "id", id);
        } else if (ev.type == UXST_EV_FAILED) {
            set_str(L, "message", ev.message);
            set_str(L, "code", ux_err_name(ev.fail));
        } else {
            set_int(L, "bytes", (lua_Integer)ev.bytes);
            set_hex(L, "sha256", ev.sha256);
            set_num(L, "elapsed", (double)ev.elapsed_us / 1e6);
        }
        lua_rawseti(L, -2, n);
    }
    size_t len;
    const char *log = ux_streamhost_log(&o->h, &len);
    if (!log)
        return 1;
    lua_pushlstring(L, log, len);
    return 2;
}

static int st_step(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (o->h.sim)
        return luaL_error(L, "step() needs a socket; drive a sim stream with input()/output()");
    ux_streamhost_step(&o->h);
    return drain(L, o);
}

static int st_drain(lua_State *L) { return drain(L, check_stream(L)); }

/* abort([message]): fail the stream and send the peer its CLOSE now. */
static int st_abort(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    ux_streamhost_abort(&o->h, luaL_optstring(L, 2, "interrupted"));
    return 0;
}

static int st_input(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return sim_input(L, o->h.ep.eng, o->h.ep.in);
}

static int st_output(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return sim_output(L, o->h.ep.eng, o->h.ep.out);
}

static int st_deadline(lua_State *L) { return push_deadline(L, ux_streamhost_deadline(&check_stream(L)->h)); }

static int st_timeout(lua_State *L)
{
    uint64_t us = ux_streamhost_timeout(&check_stream(L)->h);
    if (us == UINT64_MAX)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (double)us / 1e6);
    return 1;
}

static int st_pollfd(lua_State *L)
{
    lua_pushinteger(L, ux_streamhost_fd(&check_stream(L)->h));
    return 1;
}

static int st_events(lua_State *L)
{
    check_stream(L);
    lua_pushliteral(L, "r"); /* the epoll descriptor is readable when anything is ready */
    return 1;
}

/* sender:write(bytes) -> how many were taken (the rest: call again later). */
static int st_write(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    if (!o->h.sender || o->h.has_fd)
        return luaL_error(L, "write() is for a sender without a descriptor");
    if (o->h.eof_seen)
        return luaL_error(L, "write() after finish()");
    lua_pushinteger(L, (lua_Integer)ux_streamhost_write(&o->h, (const uint8_t *)s, len));
    return 1;
}

/* sender:finish(): the stream ends after what was written. */
static int st_finish(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (!o->h.sender || o->h.has_fd)
        return luaL_error(L, "finish() is for a sender without a descriptor");
    ux_streamhost_finish(&o->h);
    return 0;
}

/* receiver:read([now [, max]]) -> the bytes ready, in order ("" if none). */
static int st_read(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (o->h.sender || o->h.has_fd)
        return luaL_error(L, "read() is for a receiver without a descriptor");
    uint64_t at = 0;
    const uint64_t *now = NULL; /* the clock */
    if (!lua_isnoneornil(L, 2)) {
        at = sim_now(L, 2);
        now = &at;
    }
    lua_Integer max = luaL_optinteger(L, 3, LUA_MAXINTEGER);
    luaL_argcheck(L, max >= 0, 3, "max must not be negative");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const uint8_t *p;
    size_t n;
    while (max > 0 && (n = ux_streamhost_peek(&o->h, &p)) > 0) {
        if ((lua_Integer)n > max)
            n = (size_t)max;
        luaL_addlstring(&b, (const char *)p, n);
        ux_streamhost_consume(&o->h, n, now);
        max -= (lua_Integer)n;
    }
    luaL_pushresult(&b);
    return 1;
}

static const char *state_name(int sender, int state)
{
    static const char *const snd[] = {[UXSS_CONNECTING] = "connecting", [UXSS_OPEN] = "open",
                                      [UXSS_DONE] = "done", [UXSS_FAILED] = "failed"};
    static const char *const rcv[] = {[UXSR_LISTEN] = "listening", [UXSR_OPEN] = "open",
                                      [UXSR_CLOSING] = "closing", [UXSR_DONE] = "done",
                                      [UXSR_FAILED] = "failed"};
    return sender ? snd[state] : rcv[state];
}

static int st_stats(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    struct ux_streamhost_stats s;
    ux_streamhost_stats(&o->h, &s);
    lua_newtable(L);
    set_str(L, "state", state_name(o->h.sender, s.state));
    set_int(L, "bytes", (lua_Integer)s.st.bytes);
    set_int(L, "sent_bytes", (lua_Integer)s.st.sent_bytes);
    set_int(L, "retransmitted_bytes", (lua_Integer)s.st.retx_bytes);
    set_int(L, "packets_in", s.st.packets_in);
    set_int(L, "packets_out", s.st.packets_out);
    set_int(L, "dropped", s.st.dropped);
    set_int(L, "unauthentic", (lua_Integer)s.unauthentic);
    set_int(L, "dups", s.st.dups);
    set_int(L, "retransmits", s.st.retransmits);
    set_int(L, "timeouts", s.st.timeouts);
    if (o->h.sender) {
        set_num(L, "rtt", (double)s.srtt_us / 1e6);
        set_num(L, "window", s.cwnd);
    }
    set_num(L, "elapsed", (double)s.elapsed_us / 1e6);
    return 1;
}

static int st_port(lua_State *L)
{
    int port = ux_streamhost_port(&check_stream(L)->h);
    if (port < 0)
        return 0;
    lua_pushinteger(L, port);
    return 1;
}

void ux_lua_stream_open(lua_State *L)
{
    static const luaL_Reg sender_methods[] = {
        {"step", st_step}, {"drain", st_drain}, {"input", st_input}, {"output", st_output},
        {"deadline", st_deadline}, {"timeout", st_timeout}, {"pollfd", st_pollfd},
        {"events", st_events}, {"stats", st_stats}, {"write", st_write}, {"finish", st_finish},
        {"abort", st_abort}, {"close", st_close}, {NULL, NULL}};
    static const luaL_Reg receiver_methods[] = {
        {"step", st_step}, {"drain", st_drain}, {"input", st_input}, {"output", st_output},
        {"deadline", st_deadline}, {"timeout", st_timeout}, {"pollfd", st_pollfd},
        {"events", st_events}, {"stats", st_stats}, {"read", st_read}, {"port", st_port},
        {"abort", st_abort}, {"close", st_close}, {NULL, NULL}};
    new_class(L, SENDER_MT, sender_methods, st_close);
    new_class(L, RECEIVER_MT, receiver_methods, st_close);
    lua_pushcfunction(L, st_sender);
    lua_setfield(L, -2, "sender");
    lua_pushcfunction(L, st_receiver);
    lua_setfield(L, -2, "receiver");
    lua_pushinteger(L, UX_STREAM_PORT);
    lua_setfield(L, -2, "STREAM_PORT");
}
