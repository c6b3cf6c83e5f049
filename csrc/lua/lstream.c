/* Lua binding of the stream engines: udpxfer.core.sender{} and receiver{}.
 * Each object owns a socket, optionally a data descriptor (stdin for a
 * sender, stdout for a receiver), and an epoll descriptor over both, so
 * pollfd() is one descriptor any loop can wait on. Without a descriptor the
 * application moves the bytes with write()/finish() and read(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "bind.h"
#include "engine/stream.h"
#include "host/clock.h"
#include "host/fdio.h"
#include "host/poller.h"

#define SENDER_MT "udpxfer.sender"
#define RECEIVER_MT "udpxfer.receiver"
#define LOG_CAP 65536
#define READ_BUDGET (16u << 20)

struct stream_obj {
    int is_sender, live, sim, has_fd, eof_seen;
    struct sim_rng seed;
    struct ux_ssend s;
    struct ux_srecv r;
    struct ux_io io;
    struct ux_datafd data;
    struct ux_poller poller;
    char *log;
    size_t log_len;
    uint32_t log_lost;
};

static struct ux_stream_common *common(struct stream_obj *o) { return o->is_sender ? &o->s.c : &o->r.c; }

static void trace_line(void *ud, const char *line)
{
    struct stream_obj *o = ud;
    size_t n = strlen(line);
    if (!o->log || o->log_len + n + 1 > LOG_CAP) {
        o->log_lost++;
        return;
    }
    memcpy(o->log + o->log_len, line, n);
    o->log[o->log_len + n] = '\n';
    o->log_len += n + 1;
}

static struct stream_obj *check_stream(lua_State *L)
{
    struct stream_obj *o = luaL_testudata(L, 1, SENDER_MT);
    if (!o)
        o = luaL_checkudata(L, 1, RECEIVER_MT);
    if (!o->live)
        luaL_error(L, "stream is closed");
    return o;
}

static void release(struct stream_obj *o)
{
    free(o->log); /* made before the options are read: one may raise */
    o->log = NULL;
    if (!o->live)
        return;
    if (!o->sim) {
        ux_io_close(&o->io);
        ux_poller_close(&o->poller);
    }
    ux_datafd_release(&o->data);
    if (o->is_sender)
        ux_ssend_free(&o->s);
    else
        ux_srecv_free(&o->r);
    o->live = 0;
}

static int l_close(lua_State *L)
{
    struct stream_obj *o = luaL_testudata(L, 1, SENDER_MT);
    release(o ? o : luaL_checkudata(L, 1, RECEIVER_MT));
    return 0;
}

/* Options both ends share; returns the new, half-built object. */
static struct stream_obj *new_stream(lua_State *L, const char *mt, int is_sender)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct stream_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    o->data.fd = -1;
    o->poller.epfd = -1;
    o->io.fd = -1;
    luaL_setmetatable(L, mt);
    o->is_sender = is_sender;
    o->sim = opt_bool(L, "sim");
    int fd = (int)opt_range(L, "fd", -1, -1, 2147483647);
    o->has_fd = fd >= 0;
    if (o->has_fd)
        ux_datafd_take(&o->data, fd);
    if (opt_bool(L, "trace") && !(o->log = malloc(LOG_CAP)))
        luaL_error(L, "out of memory");
    return o;
}

/* Socket and epoll set; returns 0 or pushes nil, message, code. */
static int open_io(lua_State *L, struct stream_obj *o, const struct ux_addr *bind, size_t cap)
{
    const char *why = "";
    int err = ux_io_open(&o->io, bind, cap, o->is_sender ? 0 : UX_IO_GRO, &why);
    if (!err && (err = ux_poller_open(&o->poller)))
        why = "epoll";
    if (!err)
        return 0;
    release(o);
    return push_errno(L, why, err, err == EADDRINUSE ? UX_ERR_INUSE : UX_ERR_IO);
}

static int l_sender(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    uint8_t key[UX_KEY_LEN];
    const uint8_t *key_p = opt_key(L, key);
    struct stream_obj *o = new_stream(L, SENDER_MT, 1);
    struct ux_ssend_cfg cfg = {0};
    cfg.key = key_p;
    const char *peer = opt_str(L, "peer", NULL, NULL);
    if (!peer || ux_addr_parse(peer, UX_STREAM_PORT, &cfg.peer))
        return luaL_argerror(L, 1, "peer as \"ip:port\" is required");
    cfg.mss = (uint16_t)opt_range(L, "mss", UX_STREAM_MSS, UX_STREAM_MIN_MSS, UX_STREAM_MAX_MSS);
    cfg.buffer = (uint32_t)opt_range(L, "buffer", UX_STREAM_BUF, 0, 1u << 30);
    cfg.connect_us = (uint64_t)(opt_range(L, "connect_timeout", 30, 0, UX_MAX_SECONDS) * 1e6);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg.trace = o->log ? trace_line : NULL;
    cfg.trace_ud = o;
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    uint64_t now = start_now(L, o->sim);
    if (ux_ssend_init(&o->s, &cfg, now)) {
        ux_ssend_free(&o->s);
        return push_fail(L, "cannot initialise the sender", UX_ERR_IO);
    }
    o->live = 1;
    if (!o->sim && open_io(L, o, NULL, UX_SDATA_OVERHEAD + cfg.mss + UX_SEAL_MAX))
        return 3;
    return 1;
}

static int l_receiver(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    uint8_t key[UX_KEY_LEN];
    const uint8_t *key_p = opt_key(L, key);
    struct stream_obj *o = new_stream(L, RECEIVER_MT, 0);
    struct ux_srecv_cfg cfg = {0};
    cfg.key = key_p;
    cfg.buffer = (uint32_t)opt_range(L, "buffer", UX_STREAM_BUF, 0, 1u << 30);
    cfg.listen_us = (uint64_t)(opt_range(L, "listen_timeout", 0, 0, UX_MAX_SECONDS) * 1e6);
    cfg.idle_us = (uint64_t)(opt_range(L, "idle_timeout", 10, 0, UX_MAX_SECONDS) * 1e6);
    cfg.trace = o->log ? trace_line : NULL;
    cfg.trace_ud = o;
    cfg.rng = engine_rng(L, o->sim, &o->seed);
    const char *bind_s = opt_str(L, "bind", "::", NULL); /* IPv6 and IPv4 */
    lua_Number port = opt_range(L, "port", UX_STREAM_PORT, 0, 65535);
    struct ux_addr bind_to;
    if (!o->sim && ux_addr_parse(bind_s, (int)port, &bind_to))
        return push_fail(L, "bind address must be a numeric IP", UX_ERR_USAGE);
    uint64_t now = start_now(L, o->sim);
    if (ux_srecv_init(&o->r, &cfg, now)) {
        ux_srecv_free(&o->r);
        return push_fail(L, "cannot initialise the receiver", UX_ERR_IO);
    }
    o->live = 1;
    if (o->sim)
        return 1;
    if (open_io(L, o, &bind_to, UX_SDATA_OVERHEAD + UX_STREAM_MAX_MSS + UX_SEAL_MAX))
        return 3;
    return 1;
}

/* ---- moving bytes between the descriptor and the engine ---- */

static void io_failed(struct stream_obj *o, const char *what, ssize_t err)
{
    char msg[160];
    snprintf(msg, sizeof msg, "cannot %s: %s", what, strerror((int)-err));
    if (o->is_sender)
        ux_ssend_abort(&o->s, UX_ERR_IO, msg);
    else
        ux_srecv_abort(&o->r, UX_ERR_IO, msg);
}

static void fill_from_fd(struct stream_obj *o)
{
    for (size_t budget = READ_BUDGET; budget > 0 && !o->eof_seen;) {
        uint8_t *p;
        size_t space = ux_ssend_space(&o->s, &p);
        if (!space)
            return;
        ssize_t n = ux_datafd_read(&o->data, p, space < budget ? space : budget);
        if (n == -EAGAIN)
            return;
        if (n < 0)
            return io_failed(o, "read the input", n);
        if (n == 0) {
            o->eof_seen = 1;
            ux_ssend_eof(&o->s);
            return;
        }
        ux_ssend_commit(&o->s, (size_t)n);
        budget -= (size_t)n;
    }
}

static void drain_to_fd(struct stream_obj *o)
{
    for (;;) {
        const uint8_t *p;
        size_t avail = ux_srecv_peek(&o->r, &p);
        if (!avail || o->r.c.state >= UXSR_DONE)
            return;
        ssize_t n = ux_datafd_write(&o->data, p, avail);
        if (n == -EAGAIN)
            return;
        if (n < 0)
            return io_failed(o, "write the output", n);
        ux_srecv_consume(&o->r, (size_t)n, ux_now_us());
    }
}

static int ss_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_ssend_input(e, now, p, n, a);
    return 0;
}
static size_t ss_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_ssend_output(e, now, b, cap, a);
}
static int sr_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_srecv_input(e, now, p, n, a);
    return 0;
}
static size_t sr_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_srecv_output(e, now, b, cap, a);
}

static uint64_t deadline(struct stream_obj *o)
{
    return o->is_sender ? ux_ssend_deadline(&o->s) : ux_srecv_deadline(&o->r);
}

/* Is there local work an always-ready descriptor could do right now? */
static int data_work(struct stream_obj *o)
{
    if (!o->has_fd)
        return 0;
    if (o->is_sender) {
        uint8_t *p;
        return !o->eof_seen && ux_ssend_space(&o->s, &p) > 0;
    }
    const uint8_t *p;
    return o->r.c.state < UXSR_DONE && ux_srecv_peek(&o->r, &p) > 0;
}

static void watch(struct stream_obj *o)
{
    ux_poller_watch(&o->poller, o->io.fd, EPOLLIN | (o->io.spend ? EPOLLOUT : 0));
    if (o->has_fd && !o->data.regular)
        ux_poller_watch(&o->poller, o->data.fd,
                        !data_work(o) ? 0 : o->is_sender ? EPOLLIN : EPOLLOUT);
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
    struct ux_stream_common *c = common(o);
    struct ux_stream_event ev;
    lua_newtable(L);
    for (lua_Integer n = 1; ux_stream_next_event(c, &ev); n++) {
        lua_newtable(L);
        set_str(L, "type", ev_name(ev.type));
        if (ev.type == UXST_EV_CONNECT) {
            set_addr(L, "peer", &c->peer);
            char id[17];
            snprintf(id, sizeof id, "%016llx", (unsigned long long)c->xid);
            set_str(L, "id", id);
        } else if (ev.type == UXST_EV_FAILED) {
            set_str(L, "message", c->fail_msg);
            set_str(L, "code", ux_err_name(c->fail));
        } else {
            set_int(L, "bytes", (lua_Integer)(o->is_sender ? o->s.end : o->r.fin_len));
            set_hex(L, "sha256", c->sha256);
            uint64_t end = c->done_at ? c->done_at : ux_now_us();
            uint64_t from = c->connected_at ? c->connected_at : c->started_at;
            set_num(L, "elapsed", (double)(end - from) / 1e6);
        }
        lua_rawseti(L, -2, n);
    }
    if (o->log_len || o->log_lost) {
        if (o->log_lost) {
            char note[64];
            snprintf(note, sizeof note, "(%u log lines dropped)\n", o->log_lost);
            trace_line(o, note);
            o->log_lost = 0;
        }
        lua_pushlstring(L, o->log, o->log_len);
        o->log_len = 0;
        return 2;
    }
    return 1;
}

static int l_step(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim stream with input()/output()");
    if (o->is_sender) {
        if (o->has_fd)
            fill_from_fd(o);
        ux_pump(&o->io, &o->s, ss_input, ss_output);
    } else {
        ux_pump(&o->io, &o->r, sr_input, sr_output);
        if (o->has_fd)
            drain_to_fd(o);
        if (deadline(o) == 0)
            ux_pump(&o->io, &o->r, sr_input, sr_output); /* the acks that writing made due */
    }
    watch(o);
    return drain(L, o);
}

static int l_drain(lua_State *L) { return drain(L, check_stream(L)); }

/* abort([message]): fail the stream and send the peer its CLOSE now. */
static int l_abort(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    const char *msg = luaL_optstring(L, 2, "interrupted");
    if (o->is_sender)
        ux_ssend_abort(&o->s, UX_ERR_CLOSED, msg);
    else
        ux_srecv_abort(&o->r, UX_ERR_CLOSED, msg);
    if (!o->sim) {
        if (o->is_sender)
            ux_pump(&o->io, &o->s, ss_input, ss_output);
        else
            ux_pump(&o->io, &o->r, sr_input, sr_output);
    }
    return 0;
}

static int l_input(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return o->is_sender ? sim_input(L, &o->s, ss_input) : sim_input(L, &o->r, sr_input);
}

static int l_output(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return o->is_sender ? sim_output(L, &o->s, ss_output) : sim_output(L, &o->r, sr_output);
}

static int l_deadline(lua_State *L) { return push_deadline(L, deadline(check_stream(L))); }

static int l_timeout(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return push_timeout(L, &o->io, o->data.regular && data_work(o) ? 0 : deadline(o));
}

static int l_pollfd(lua_State *L)
{
    lua_pushinteger(L, check_stream(L)->poller.epfd);
    return 1;
}

static int l_events(lua_State *L)
{
    check_stream(L);
    lua_pushliteral(L, "r"); /* the epoll descriptor is readable when anything is ready */
    return 1;
}

/* sender:write(bytes) -> how many were taken (the rest: call again later). */
static int l_write(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    size_t len, done = 0;
    const char *s = luaL_checklstring(L, 2, &len);
    if (!o->is_sender || o->has_fd)
        return luaL_error(L, "write() is for a sender without a descriptor");
    if (o->eof_seen)
        return luaL_error(L, "write() after finish()");
    while (done < len) {
        uint8_t *p;
        size_t space = ux_ssend_space(&o->s, &p);
        if (!space)
            break;
        size_t n = len - done < space ? len - done : space;
        memcpy(p, s + done, n);
        ux_ssend_commit(&o->s, n);
        done += n;
    }
    lua_pushinteger(L, (lua_Integer)done);
    return 1;
}

/* sender:finish(): the stream ends after what was written. */
static int l_finish(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (!o->is_sender || o->has_fd)
        return luaL_error(L, "finish() is for a sender without a descriptor");
    o->eof_seen = 1;
    ux_ssend_eof(&o->s);
    return 0;
}

/* receiver:read([now [, max]]) -> the bytes ready, in order ("" if none). */
static int l_read(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    if (o->is_sender || o->has_fd)
        return luaL_error(L, "read() is for a receiver without a descriptor");
    uint64_t now = lua_isnoneornil(L, 2) ? ux_now_us() : sim_now(L, 2);
    lua_Integer max = luaL_optinteger(L, 3, LUA_MAXINTEGER);
    luaL_argcheck(L, max >= 0, 3, "max must not be negative");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const uint8_t *p;
    size_t n;
    while (max > 0 && o->r.c.state < UXSR_DONE && (n = ux_srecv_peek(&o->r, &p)) > 0) {
        if ((lua_Integer)n > max)
            n = (size_t)max;
        luaL_addlstring(&b, (const char *)p, n);
        ux_srecv_consume(&o->r, n, now);
        max -= (lua_Integer)n;
    }
    luaL_pushresult(&b);
    return 1;
}

static const char *state_name(struct stream_obj *o)
{
    static const char *const snd[] = {[UXSS_CONNECTING] = "connecting", [UXSS_OPEN] = "open",
                                      [UXSS_DONE] = "done", [UXSS_FAILED] = "failed"};
    static const char *const rcv[] = {[UXSR_LISTEN] = "listening", [UXSR_OPEN] = "open",
                                      [UXSR_CLOSING] = "closing", [UXSR_DONE] = "done",
                                      [UXSR_FAILED] = "failed"};
    return o->is_sender ? snd[o->s.c.state] : rcv[o->r.c.state];
}

static int l_stats(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    struct ux_stream_common *c = common(o);
    lua_newtable(L);
    set_str(L, "state", state_name(o));
    set_int(L, "bytes", (lua_Integer)c->st.bytes);
    set_int(L, "sent_bytes", (lua_Integer)c->st.sent_bytes);
    set_int(L, "retransmitted_bytes", (lua_Integer)c->st.retx_bytes);
    set_int(L, "packets_in", c->st.packets_in);
    set_int(L, "packets_out", c->st.packets_out);
    set_int(L, "dropped", c->st.dropped);
    set_int(L, "unauthentic", (lua_Integer)c->keys.failed);
    set_int(L, "dups", c->st.dups);
    set_int(L, "retransmits", c->st.retransmits);
    set_int(L, "timeouts", c->st.timeouts);
    if (o->is_sender) {
        set_num(L, "rtt", (double)o->s.srtt / 1e6);
        set_num(L, "window", o->s.cwnd);
    }
    uint64_t end = c->done_at ? c->done_at : o->sim ? c->started_at : ux_now_us();
    set_num(L, "elapsed", (double)(end - c->started_at) / 1e6);
    return 1;
}

static int l_port(lua_State *L)
{
    struct stream_obj *o = check_stream(L);
    return o->sim ? 0 : push_port(L, &o->io);
}

void ux_lua_stream_open(lua_State *L)
{
    static const luaL_Reg sender_methods[] = {
        {"step", l_step}, {"drain", l_drain}, {"input", l_input}, {"output", l_output},
        {"deadline", l_deadline}, {"timeout", l_timeout}, {"pollfd", l_pollfd},
        {"events", l_events}, {"stats", l_stats}, {"write", l_write}, {"finish", l_finish},
        {"abort", l_abort}, {"close", l_close}, {NULL, NULL}};
    static const luaL_Reg receiver_methods[] = {
        {"step", l_step}, {"drain", l_drain}, {"input", l_input}, {"output", l_output},
        {"deadline", l_deadline}, {"timeout", l_timeout}, {"pollfd", l_pollfd},
        {"events", l_events}, {"stats", l_stats}, {"read", l_read}, {"port", l_port},
        {"abort", l_abort}, {"close", l_close}, {NULL, NULL}};
    new_class(L, SENDER_MT, sender_methods, l_close);
    new_class(L, RECEIVER_MT, receiver_methods, l_close);
    lua_pushcfunction(L, l_sender);
    lua_setfield(L, -2, "sender");
    lua_pushcfunction(L, l_receiver);
    lua_setfield(L, -2, "receiver");
    lua_pushinteger(L, UX_STREAM_PORT);
    lua_setfield(L, -2, "STREAM_PORT");
}
