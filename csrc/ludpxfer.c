/* Lua binding: the only file that sees lua.h. Wraps the engines and the
 * socket layer as pollable objects; callbacks stay in Lua (see init.lua), so
 * they run outside any C frame and may yield. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "client.h"
#include "lbind.h"
#include "fileset.h"
#include "hash.h"
#include "net.h"
#include "server.h"
#include "sink.h"

#define CLIENT_MT "udpxfer.client"
#define SERVER_MT "udpxfer.server"
#define PUMP_ROUNDS 16
/* A step hands back after this much work even with datagrams waiting, so
 * the other objects one loop drives (a server beside a fetch) keep their
 * pace: at 1 GB/s, 16 full rounds took 10-50 ms. */
#define PUMP_BUDGET_US 5000

__attribute__((visibility("default"))) int luaopen_udpxfer_core(lua_State *L);

uint64_t mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

int push_fail(lua_State *L, const char *msg, const char *code)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, code);
    return 3;
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

/* ---- option helpers: wrong types are programmer errors and raise ---- */

const char *opt_str(lua_State *L, const char *k, const char *def, size_t *len)
{
    lua_getfield(L, 1, k);
    const char *s = lua_isnil(L, -1) ? def : luaL_checklstring(L, -1, len);
    if (s == def && len)
        *len = def ? strlen(def) : 0;
    lua_pop(L, 1); /* strings stay alive: the options table holds them */
    return s;
}

lua_Number opt_num(lua_State *L, const char *k, lua_Number def)
{
    lua_getfield(L, 1, k);
    lua_Number v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int opt_bool(lua_State *L, const char *k)
{
    lua_getfield(L, 1, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int parse_hex(const char *s, size_t n, uint8_t *out, size_t outlen)
{
    if (n != 2 * outlen)
        return -1;
    for (size_t i = 0; i < outlen; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* ---- the socket pump shared by client and server ---- */


/* Receive, feed, send, a bounded number of rounds so step() returns often. */
void pump(struct ux_io *io, void *eng, input_fn in, output_fn out)
{
    if (!ux_io_flush(io))
        return;
    uint64_t start = mono_us();
    for (int r = 0; r < PUMP_ROUNDS && mono_us() - start < PUMP_BUDGET_US; r++) {
        int i = io->rnext, n = ux_io_held(io) ? io->rheld : ux_io_recv(io);
        uint64_t now = mono_us();
        io->rnext = io->rheld = 0;
        for (; i < n; i++) {
            if (in(eng, now, io->rq[i].p, io->rq[i].len, &io->raddr[io->rq[i].from])) {
                io->rnext = i; /* this one and the rest of the batch wait */
                io->rheld = n;
                break;
            }
        }
        int produced = 0;
        uint8_t *slot;
        struct ux_addr to;
        while ((slot = ux_io_slot(io))) {
            struct ux_tail tail = {NULL, 0};
            size_t len = out(eng, now, slot, io->cap, &to, &tail);
            if (!len)
                break;
            ux_io_queue(io, len, tail.p, tail.len, &to);
            produced++;
        }
        if (produced && !ux_io_flush(io))
            return;
        if ((n == 0 && produced < UX_SQUEUE) || ux_io_held(io))
            return;
    }
}

int push_timeout(lua_State *L, const struct ux_io *io, uint64_t deadline)
{
    if (io->spend > 0 || deadline == 0) {
        lua_pushnumber(L, 0);
    } else if (deadline == UINT64_MAX) {
        lua_pushnil(L);
    } else {
        uint64_t now = mono_us();
        lua_pushnumber(L, deadline > now ? (double)(deadline - now) / 1e6 : 0);
    }
    return 1;
}

/* Rounded: a deadline handed out as seconds must come back as the same microsecond. */
uint64_t sim_now(lua_State *L, int idx) { return (uint64_t)(luaL_checknumber(L, idx) * 1e6 + 0.5); }

uint64_t start_now(lua_State *L, int sim)
{
    return sim ? (uint64_t)(opt_num(L, "now", 0) * 1e6 + 0.5) : mono_us();
}

void check_addr_arg(lua_State *L, int idx, struct ux_addr *a)
{
    if (ux_addr_parse(luaL_checkstring(L, idx), 0, a))
        luaL_argerror(L, idx, "address as \"ip:port\" expected");
}

/* input(packet, "ip:port", now) and output(now) -> packet, "ip:port": drive
 * an engine by hand (a simulated link in the specs), no socket involved. */
int sim_input(lua_State *L, void *eng, input_fn in)
{
    size_t n;
    const char *pkt = luaL_checklstring(L, 2, &n);
    struct ux_addr a;
    check_addr_arg(L, 3, &a);
    in(eng, sim_now(L, 4), (const uint8_t *)pkt, n, &a);
    return 0;
}

int sim_output(lua_State *L, void *eng, output_fn out)
{
    static uint8_t buf[UX_DATA_OVERHEAD + UX_MAX_CHUNK + UX_TAG_LEN];
    struct ux_addr to;
    size_t n = out(eng, sim_now(L, 2), buf, sizeof buf, &to, NULL);
    if (!n)
        return 0;
    char s[80];
    ux_addr_format(&to, s, sizeof s);
    lua_pushlstring(L, (const char *)buf, n);
    lua_pushstring(L, s);
    return 2;
}

/* ================= client ================= */

struct client_obj {
    struct ux_client eng;
    struct ux_io io;
    struct ux_sink sink;
    int live, sim, sink_open, finished;
    int committing;                /* the sink's commit runs on its thread */
    struct ux_client_event done;   /* held back until the commit ends */
    char dir[512];
    char base[256];
    char path[800];
};

static struct client_obj *check_client(lua_State *L)
{
    struct client_obj *o = luaL_checkudata(L, 1, CLIENT_MT);
    if (!o->live)
        luaL_error(L, "client is closed");
    return o;
}

static int c_on_start(void *ud, uint64_t size, const char **why)
{
    struct client_obj *o = ud;
    int err = ux_sink_open(&o->sink, o->dir, o->base, size, why);
    o->sink_open = err == 0;
    return err;
}

/* Over a socket a chunk the sink cannot take without waiting for its hash
 * thread is handed back (EAGAIN), so step() never waits; a sim client,
 * fed by a spec, waits instead. */
static int c_on_chunk(void *ud, uint32_t index, uint64_t off, const uint8_t *data, size_t len)
{
    struct client_obj *o = ud;
    (void)index;
    return o->sim ? ux_sink_write(&o->sink, off, data, len) : ux_sink_try_write(&o->sink, off, data, len);
}

static int c_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a) { return ux_client_input(e, now, p, n, a); }
static size_t c_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    (void)t;
    return ux_client_output(e, now, b, cap, a);
}

static const char *fail_code(int f)
{
    static const char *names[] = {"none", "noserver", "notfound", "refused", "version",
                                  "timeout", "io", "stale", "corrupt"};
    return f >= 0 && f < (int)(sizeof names / sizeof names[0]) ? names[f] : "error";
}

static void client_release(struct client_obj *o)
{
    if (!o->live)
        return;
    if (o->sink_open)
        ux_sink_abort(&o->sink); /* no-op once committed */
    o->sink_open = 0;
    if (!o->sim)
        ux_io_close(&o->io);
    ux_client_free(&o->eng);
    o->live = 0;
}

/* Each "ip:port" of the option FIELD (a list) handed to ADD; beyond the
 * engine's table they are ignored. */
static void add_addresses(lua_State *L, struct ux_client *c, const char *field,
                          int (*add)(struct ux_client *, const struct ux_addr *))
{
    lua_getfield(L, 1, field);
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
            struct ux_addr a;
            if (ux_addr_parse(luaL_checkstring(L, -1), 10526, &a))
                luaL_error(L, "bad %s address: %s", field, lua_tostring(L, -1));
            add(c, &a);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t name_len, dir_len;
    const char *name = opt_str(L, "name", NULL, &name_len);
    if (!name)
        return luaL_argerror(L, 1, "name is required");
    const char *dir = opt_str(L, "out", ".", &dir_len);
    size_t hex_len;
    const char *hex = opt_str(L, "sha256", NULL, &hex_len);
    struct client_obj *o = lua_newuserdatauv(L, sizeof *o, 1);
    memset(o, 0, sizeof *o);
    o->sink.fd = o->sink.dirfd = -1;
    luaL_setmetatable(L, CLIENT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the name string alive */
    if (dir_len >= sizeof o->dir)
        return luaL_argerror(L, 1, "out directory path too long");
    memcpy(o->dir, dir, dir_len + 1);
    const char *slash = memrchr(name, '/', name_len);
    const char *base = slash ? slash + 1 : name;
    size_t blen = name_len - (size_t)(base - name);
    if (blen < sizeof o->base && !memchr(base, 0, blen))
        memcpy(o->base, base, blen); /* otherwise left empty: the sink refuses it */

    struct ux_client_cfg cfg = {0};
    cfg.name = name;
    cfg.name_len = name_len;
    cfg.chunk_size = (uint32_t)opt_num(L, "chunk_size", UX_DEFAULT_CHUNK);
    cfg.discover_us = (uint64_t)(opt_num(L, "discover_timeout", 10) * 1e6);
    cfg.idle_us = (uint64_t)(opt_num(L, "idle_timeout", 5) * 1e6);
    cfg.max_window = (uint32_t)opt_num(L, "window", 4096);
    if (hex) {
        if (parse_hex(hex, hex_len, cfg.want_sha256, UX_HASH_LEN))
            return luaL_argerror(L, 1, "sha256 must be 64 hex digits");
        cfg.want_sha256_set = 1;
    }
    cfg.legacy = opt_bool(L, "legacy");
    cfg.unicast = opt_bool(L, "unicast");
    cfg.on_start = c_on_start;
    cfg.on_chunk = c_on_chunk;
    cfg.ud = o;
    o->sim = opt_bool(L, "sim");
    if (cfg.chunk_size < UX_MIN_CHUNK || cfg.chunk_size > UX_MAX_CHUNK)
        return luaL_argerror(L, 1, "chunk_size out of range");
    if (name_len == 0 || name_len > UX_MAX_NAME)
        return push_fail(L, "file name empty or too long", "refused");
    uint64_t now = start_now(L, o->sim);
    if (ux_client_init(&o->eng, &cfg, now))
        return push_fail(L, "cannot initialise the client", "io");
    o->live = 1;
    add_addresses(L, &o->eng, "targets", ux_client_add_target);
    add_addresses(L, &o->eng, "exclude", ux_client_exclude);
    if (!o->sim) {
        const char *why = "";
        size_t cap = UX_DATA_OVERHEAD + cfg.chunk_size + UX_TAG_LEN;
        int err = ux_io_open(&o->io, NULL, cap < 2048 ? 2048 : cap, UX_IO_GRO, &why);
        if (err) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s: %s", why, strerror(err));
            client_release(o);
            return push_fail(L, msg, "io");
        }
    }
    return 1;
}

/* The commit's outcome: the file in place, or the engine failed with why. */
static void commit_end(struct client_obj *o, int err, const char *why)
{
    o->committing = o->sink_open = 0;
    if (!err) {
        snprintf(o->path, sizeof o->path, "%s/%s", o->dir, o->base);
        o->finished = 1;
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "%s%s%s", why, err == EBADMSG ? "" : ": ", err == EBADMSG ? "" : strerror(err));
    ux_client_abort(&o->eng, err == EBADMSG ? UXF_CORRUPT : UXF_IO, msg);
}

/* Every chunk is in: check the whole file and move it into place. This
 * runs on the sink's thread, so step() goes on while a large file is
 * synced; a sim client waits for it. Returns 1 while it runs. */
static int commit_begin(struct client_obj *o)
{
    const char *why = "cannot set the file's size";
    int err = !o->sink_open ? EIO : ux_sink_truncate(&o->sink, o->eng.size);
    if (!err && o->sim)
        err = ux_sink_commit(&o->sink, o->eng.sha256, &why);
    else if (!err) {
        ux_sink_commit_start(&o->sink, o->eng.sha256);
        err = ux_sink_commit_result(&o->sink, &why);
    }
    o->committing = err == EINPROGRESS;
    if (!o->committing)
        commit_end(o, err, why);
    return o->committing;
}

/* 1 once a running commit has ended (its outcome taken), else 0. */
static int commit_ended(struct client_obj *o)
{
    const char *why = "";
    int err = ux_sink_commit_result(&o->sink, &why);
    if (err == EINPROGRESS)
        return 0;
    commit_end(o, err, why);
    return 1;
}

/* How many servers offered, how many offered the chosen version, how many
 * versions there were: so a user sees a choice was made, and which. */
static void set_versions(lua_State *L, const struct ux_client *c, const struct ux_peer *chosen)
{
    int offers = 0, agree = 0, versions = 0;
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        if (!p->has_offer)
            continue;
        offers++;
        agree += p->size == chosen->size && !memcmp(p->sha256, chosen->sha256, UX_HASH_LEN);
        int first = 1; /* first peer offering this version? */
        for (int j = 0; j < i; j++)
            if (c->peers[j].has_offer && c->peers[j].size == p->size &&
                !memcmp(c->peers[j].sha256, p->sha256, UX_HASH_LEN))
                first = 0;
        versions += first;
    }
    set_int(L, "offers", offers);
    set_int(L, "servers", agree);
    set_int(L, "versions", versions);
}

static const char *drop_reason(int d) { return d == 2 ? "corrupt" : d == 3 ? "stale" : "silent"; }

static void push_client_event(lua_State *L, struct client_obj *o, const struct ux_client_event *ev)
{
    struct ux_client *c = &o->eng;
    const struct ux_peer *p = ev->peer >= 0 ? &c->peers[ev->peer] : NULL;
    lua_newtable(L);
    switch (ev->type) {
    case UXE_OFFER:
    case UXE_START:
        set_str(L, "type", ev->type == UXE_OFFER ? "offer" : "start");
        set_addr(L, "server", &p->addr);
        set_int(L, "size", (lua_Integer)p->size);
        set_int(L, "chunks", (lua_Integer)ux_chunk_count(p->size, p->chunk_size));
        set_int(L, "chunk_size", p->chunk_size);
        set_hex(L, "sha256", p->sha256);
        if (ev->type == UXE_START)
            set_versions(L, c, p);
        break;
    case UXE_PREPARING:
        set_str(L, "type", "preparing");
        set_addr(L, "server", &p->addr);
        break;
    case UXE_DROP:
        set_str(L, "type", "drop");
        set_addr(L, "server", &p->addr);
        set_str(L, "reason", drop_reason(p->dropped));
        break;
    case UXE_DONE:
        set_str(L, "type", "done");
        set_str(L, "path", o->path);
        set_int(L, "size", (lua_Integer)c->size);
        set_hex(L, "sha256", c->sha256);
        set_num(L, "elapsed", (double)(c->done_at - c->started_at) / 1e6);
        break;
    default:
        set_str(L, "type", "error");
        set_str(L, "message", c->fail_msg);
        set_str(L, "code", fail_code(c->fail));
    }
}

static int drain_client(lua_State *L, struct client_obj *o)
{
    struct ux_client_event ev;
    lua_newtable(L);
    lua_Integer n = 0;
    if (o->committing) {
        if (!commit_ended(o))
            return 1;
        if (o->finished) {
            push_client_event(L, o, &o->done);
            lua_rawseti(L, -2, ++n);
        } /* else the abort queued an error event */
    }
    while (ux_client_next_event(&o->eng, &ev)) {
        if (ev.type == UXE_DONE) {
            o->done = ev;
            if (commit_begin(o))
                return 1; /* the event waits for the commit */
            if (!o->finished)
                continue; /* the abort queued an error event */
        } else if (ev.type == UXE_FAIL && o->sink_open) {
            ux_sink_abort(&o->sink);
            o->sink_open = 0;
        }
        push_client_event(L, o, &ev);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* Waiting on the sink's descriptor, not the socket: while the commit runs,
 * or while chunks wait for a slab. */
static int on_sink(const struct client_obj *o) { return o->committing || ux_io_held(&o->io); }

static int lc_step(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim client with input()/output()");
    if (on_sink(o))
        ux_sink_clear(&o->sink); /* what woke us: then the held datagrams go first, or the commit's end is read */
    pump(&o->io, &o->eng, c_input, c_output);
    return drain_client(L, o);
}

static int lc_drain(lua_State *L) { return drain_client(L, check_client(L)); }
static int lc_input(lua_State *L) { return sim_input(L, &check_client(L)->eng, c_input); }
static int lc_output(lua_State *L) { return sim_output(L, &check_client(L)->eng, c_output); }



int push_deadline(lua_State *L, uint64_t d)
{
    if (d == UINT64_MAX)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (double)d / 1e6);
    return 1;
}

static int lc_deadline(lua_State *L) { return push_deadline(L, ux_client_deadline(&check_client(L)->eng)); }

/* While the commit runs, the sink's descriptor is the one to wait on,
 * without a deadline; while chunks wait for a slab, too, beside the
 * engine's deadline. */
static int lc_timeout(lua_State *L)
{
    struct client_obj *o = check_client(L);
    if (o->committing) {
        lua_pushnil(L);
        return 1;
    }
    return push_timeout(L, &o->io, ux_client_deadline(&o->eng));
}

static int lc_pollfd(lua_State *L)
{
    struct client_obj *o = check_client(L);
    lua_pushinteger(L, on_sink(o) ? ux_sink_fd(&o->sink) : o->io.fd);
    return 1;
}

static int lc_events(lua_State *L)
{
    struct client_obj *o = check_client(L);
    lua_pushstring(L, o->io.spend && !on_sink(o) ? "rw" : "r");
    return 1;
}

static const char *state_name(int s)
{
    return s == UXC_DISCOVER ? "discover" : s == UXC_TRANSFER ? "transfer" : s == UXC_DONE ? "done" : "failed";
}

static int lc_stats(lua_State *L)
{
    struct client_obj *o = check_client(L);
    struct ux_client *c = &o->eng;
    uint64_t now = c->done_at ? c->done_at : o->sim ? c->started_at : mono_us();
    lua_newtable(L);
    set_str(L, "state", o->committing ? "committing" : state_name(c->state));
    set_int(L, "size", (lua_Integer)c->size);
    set_int(L, "chunks", c->count);
    set_int(L, "have", c->map.have);
    set_int(L, "bytes", (lua_Integer)c->bytes_done);
    set_int(L, "dups", c->dups);
    set_int(L, "bad", c->bad);
    set_num(L, "elapsed", (double)(now - c->started_at) / 1e6);
    set_int(L, "rx_packets", (lua_Integer)o->io.rx_packets);
    set_int(L, "tx_packets", (lua_Integer)o->io.tx_packets);
    set_int(L, "readback", (lua_Integer)o->sink.readback);
    set_int(L, "evicted", (lua_Integer)o->sink.evicted);
    set_int(L, "hash_waits", (lua_Integer)o->sink.waits);
    lua_newtable(L);
    for (int i = 0; i < c->npeers; i++) {
        const struct ux_peer *p = &c->peers[i];
        lua_newtable(L);
        set_addr(L, "server", &p->addr);
        set_bool(L, "active", p->active);
        if (p->dropped)
            set_str(L, "dropped", drop_reason(p->dropped));
        set_int(L, "bytes", (lua_Integer)p->st.bytes);
        set_int(L, "chunks", p->st.chunks);
        set_int(L, "dups", p->st.dups);
        set_int(L, "bad", p->st.bad);
        set_int(L, "lost", p->st.lost);
        set_int(L, "timeouts", p->st.timeouts);
        set_num(L, "window", p->cwnd);
        set_int(L, "stolen", p->st.stolen);
        uint64_t span = p->last_rx > p->first_data_at ? p->last_rx - p->first_data_at : 0;
        set_num(L, "rate", span ? (double)p->st.bytes * 1e6 / (double)span : 0);
        set_num(L, "rtt", p->srtt_us / 1e6);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "servers");
    return 1;
}

static int lc_close(lua_State *L)
{
    client_release(luaL_checkudata(L, 1, CLIENT_MT));
    return 0;
}

/* ================= server ================= */

struct server_obj {
    struct ux_server eng;
    struct ux_fileset fs;
    struct ux_io io;
    int live, sim;
};

static struct server_obj *check_server(lua_State *L)
{
    struct server_obj *o = luaL_checkudata(L, 1, SERVER_MT);
    if (!o->live)
        luaL_error(L, "server is closed");
    return o;
}

static int s_input(void *e, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a)
{
    ux_server_input(e, now, p, n, a);
    return 0;
}
static size_t s_output(void *e, uint64_t now, uint8_t *b, size_t cap, struct ux_addr *a, struct ux_tail *t)
{
    return ux_server_output(e, now, b, cap, a, t);
}

static void server_release(struct server_obj *o)
{
    if (!o->live)
        return;
    if (!o->sim)
        ux_io_close(&o->io);
    ux_server_free(&o->eng);
    ux_fileset_close(&o->fs);
    o->live = 0;
}

static int l_server(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *dir = opt_str(L, "dir", NULL, NULL);
    if (!dir)
        return luaL_argerror(L, 1, "dir is required");
    const char *bind_s = opt_str(L, "bind", "0.0.0.0", NULL);
    int port = (int)opt_num(L, "port", 10526);
    if (port < 0 || port > 65535)
        return luaL_argerror(L, 1, "port out of range");
    struct server_obj *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, SERVER_MT);
    o->sim = opt_bool(L, "sim");
    struct ux_addr bind_to;
    if (!o->sim && ux_addr_parse(bind_s, port, &bind_to))
        return push_fail(L, "bind address must be a numeric IP", "usage");
    char msg[600];
    int err = ux_fileset_open(&o->fs, dir);
    if (err) {
        snprintf(msg, sizeof msg, "cannot serve %s: %s", dir, strerror(err));
        return push_fail(L, msg, "io");
    }
    struct ux_server_cfg cfg = {0};
    cfg.max_chunk = (uint32_t)opt_num(L, "max_chunk", 16384);
    cfg.max_sessions = (uint32_t)opt_num(L, "max_sessions", 64);
    cfg.idle_us = (uint64_t)(opt_num(L, "idle_timeout", 30) * 1e6);
    cfg.corrupt_ppm = (uint32_t)(opt_num(L, "corrupt_percent", 0) * 10000);
    cfg.lie_ppm = (uint32_t)(opt_num(L, "lie_percent", 0) * 10000);
    cfg.legacy = opt_bool(L, "legacy");
    cfg.legacy_bps = (uint64_t)(opt_num(L, "legacy_mbit", 80) * 1e6);
    cfg.files = ux_fileset_provider(&o->fs);
    o->fs.async_min = (uint64_t)opt_num(L, "async_hash_min", 64 << 20);
    if (ux_server_init(&o->eng, &cfg)) {
        ux_fileset_close(&o->fs);
        return push_fail(L, "cannot initialise the server", "io");
    }
    o->live = 1;
    if (!o->sim) {
        const char *why = "";
        err = ux_io_open(&o->io, &bind_to, UX_DATA_OVERHEAD + o->eng.cfg.max_chunk + UX_TAG_LEN, UX_IO_SHARED, &why);
        if (err) {
            snprintf(msg, sizeof msg, "%s %s:%d: %s", why, bind_s, port, strerror(err));
            server_release(o);
            return push_fail(L, msg, err == EADDRINUSE ? "inuse" : "io");
        }
    }
    return 1;
}

static const char *req_status(int code)
{
    switch (code) {
    case 0: return "ok";
    case UX_E_NOTFOUND: return "notfound";
    case UX_E_REFUSED: return "refused";
    case UX_E_PREPARING: return "preparing";
    default: return "io";
    }
}

static const char *end_reason(int r)
{
    static const char *names[] = {"complete", "aborted", "idle", "stale", "io"};
    return r >= 0 && r < 5 ? names[r] : "?";
}

static int drain_server(lua_State *L, struct server_obj *o)
{
    struct ux_server_event ev;
    lua_newtable(L);
    lua_Integer n = 0;
    while (ux_server_next_event(&o->eng, &ev)) {
        lua_newtable(L);
        set_addr(L, "client", &ev.addr);
        set_str(L, "name", ev.name);
        set_int(L, "size", (lua_Integer)ev.size);
        if (ev.type == UXS_REQUEST) {
            set_str(L, "type", "request");
            set_str(L, "status", req_status(ev.code));
        } else if (ev.type == UXS_START) {
            set_str(L, "type", "start");
        } else {
            set_str(L, "type", "done");
            set_str(L, "reason", end_reason(ev.code));
            set_int(L, "bytes_sent", (lua_Integer)ev.bytes_sent);
            set_int(L, "chunks_sent", ev.chunks_sent);
            set_num(L, "elapsed", (double)ev.elapsed_us / 1e6);
        }
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int ls_step(lua_State *L)
{
    struct server_obj *o = check_server(L);
    if (o->sim)
        return luaL_error(L, "step() needs a socket; drive a sim server with input()/output()");
    pump(&o->io, &o->eng, s_input, s_output);
    return drain_server(L, o);
}

static int ls_drain(lua_State *L) { return drain_server(L, check_server(L)); }
static int ls_input(lua_State *L) { return sim_input(L, &check_server(L)->eng, s_input); }
static int ls_output(lua_State *L) { return sim_output(L, &check_server(L)->eng, s_output); }



static int ls_deadline(lua_State *L) { return push_deadline(L, ux_server_deadline(&check_server(L)->eng)); }

static int ls_timeout(lua_State *L)
{
    struct server_obj *o = check_server(L);
    return push_timeout(L, &o->io, o->eng.r_len ? 0 : ux_server_deadline(&o->eng));
}

static int ls_pollfd(lua_State *L) { lua_pushinteger(L, check_server(L)->io.fd); return 1; }
static int ls_events(lua_State *L) { lua_pushstring(L, check_server(L)->io.spend ? "rw" : "r"); return 1; }

static int ls_stats(lua_State *L)
{
    struct server_obj *o = check_server(L);
    lua_newtable(L);
    set_int(L, "sessions", ux_server_sessions(&o->eng));
    set_int(L, "malformed", (lua_Integer)o->eng.dropped_malformed);
    set_int(L, "files_hashed", (lua_Integer)o->fs.hashes_computed);
    set_int(L, "chunk_hashes_cached", (lua_Integer)o->fs.hcache.hits);
    set_int(L, "chunk_hashes_computed", (lua_Integer)o->fs.hcache.misses);
    set_int(L, "chunks_lent", (lua_Integer)o->fs.chunks_lent);
    set_bool(L, "preparing", o->fs.job.running && !__atomic_load_n(&o->fs.job.done, __ATOMIC_ACQUIRE));
    set_int(L, "rx_packets", (lua_Integer)o->io.rx_packets);
    set_int(L, "tx_packets", (lua_Integer)o->io.tx_packets);
    set_int(L, "tx_bytes", (lua_Integer)o->io.tx_bytes);
    return 1;
}


int push_port(lua_State *L, const struct ux_io *io)
{
    struct ux_addr a = {.len = sizeof a.ss};
    if (getsockname(io->fd, (struct sockaddr *)&a.ss, &a.len))
        return 0;
    lua_pushinteger(L, ntohs(((struct sockaddr_in *)&a.ss)->sin_port));
    return 1;
}

static int ls_port(lua_State *L)
{
    struct server_obj *o = check_server(L);
    return o->sim ? 0 : push_port(L, &o->io);
}

static int ls_close(lua_State *L)
{
    server_release(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

/* ================= module functions ================= */

static int l_now(lua_State *L) { lua_pushnumber(L, (double)mono_us() / 1e6); return 1; }

/* poll({fd, "r"|"rw", ...}, timeout_seconds|nil) -> number of ready fds */
static int l_poll(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct pollfd fds[64];
    int n = 0;
    lua_Integer len = luaL_len(L, 1);
    for (lua_Integer i = 1; i + 1 <= len && n < 64; i += 2) {
        lua_geti(L, 1, i);
        lua_geti(L, 1, i + 1);
        fds[n].fd = (int)luaL_checkinteger(L, -2);
        fds[n].events = POLLIN | (strchr(luaL_checkstring(L, -1), 'w') ? POLLOUT : 0);
        fds[n].revents = 0;
        n++;
        lua_pop(L, 2);
    }
    /* ppoll: microseconds, as pacing wants, not poll's milliseconds */
    struct timespec ts, *tp = NULL;
    if (!lua_isnoneornil(L, 2)) {
        double t = luaL_checknumber(L, 2);
        t = t < 0 ? 0 : t > 86400 ? 86400 : t;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        tp = &ts;
    }
    int r = ppoll(fds, (nfds_t)n, tp, NULL);
    lua_pushinteger(L, r < 0 ? 0 : r);
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
        return luaL_error(L, "SHA-256 failed");
    }
    ux_sha_free(sha);
    ux_hex(h, UX_HASH_LEN, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_sha256_file(lua_State *L)
{
    int fd = open(luaL_checkstring(L, 1), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return push_fail(L, strerror(errno), "io");
    struct ux_sha *sha = ux_sha_new();
    uint8_t h[UX_HASH_LEN];
    char hex[2 * UX_HASH_LEN + 1];
    int err = sha ? ux_sha_fd(sha, fd, UINT64_MAX, NULL, h) : ENOMEM;
    ux_sha_free(sha);
    close(fd);
    if (err)
        return push_fail(L, strerror(err), "io");
    ux_hex(h, UX_HASH_LEN, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_broadcast_addresses(lua_State *L)
{
    struct ux_addr a[32];
    int n = ux_broadcast_addresses(a, 32, (int)luaL_optinteger(L, 1, 10526));
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
    if (ux_resolve(luaL_checkstring(L, 1), (int)luaL_optinteger(L, 2, 10526), &a))
        return push_fail(L, "cannot resolve address", "usage");
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
        return push_fail(L, "no route to that address", "io");
    lua_pushinteger(L, mtu);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_name_ok(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushboolean(L, ux_name_check(s, n) == 0);
    return 1;
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

int luaopen_udpxfer_core(lua_State *L)
{
    static const luaL_Reg client_methods[] = {
        {"step", lc_step}, {"drain", lc_drain}, {"input", lc_input}, {"output", lc_output},
        {"deadline", lc_deadline}, {"timeout", lc_timeout}, {"pollfd", lc_pollfd},
        {"events", lc_events}, {"stats", lc_stats}, {"close", lc_close}, {NULL, NULL}};
    static const luaL_Reg server_methods[] = {
        {"step", ls_step}, {"drain", ls_drain}, {"input", ls_input}, {"output", ls_output},
        {"deadline", ls_deadline}, {"timeout", ls_timeout}, {"pollfd", ls_pollfd},
        {"events", ls_events}, {"stats", ls_stats}, {"port", ls_port}, {"close", ls_close},
        {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"client", l_client}, {"server", l_server}, {"now", l_now}, {"poll", l_poll},
        {"sha256", l_sha256}, {"sha256_file", l_sha256_file},
        {"broadcast_addresses", l_broadcast_addresses}, {"resolve", l_resolve}, {"path_mtu", l_path_mtu},
        {"name_ok", l_name_ok}, {"isatty", l_isatty}, {NULL, NULL}};
    new_class(L, CLIENT_MT, client_methods, lc_close);
    new_class(L, SERVER_MT, server_methods, ls_close);
    luaL_newlib(L, funcs);
    ux_lua_stream_open(L);
    lua_pushinteger(L, UX_DEFAULT_CHUNK);
    lua_setfield(L, -2, "DEFAULT_CHUNK");
    lua_pushinteger(L, UX_DATA_OVERHEAD + UX_TAG_LEN); /* per DATA datagram, tag included */
    lua_setfield(L, -2, "DATA_OVERHEAD");
    lua_pushinteger(L, 10526);
    lua_setfield(L, -2, "DEFAULT_PORT");
    return 1;
}
