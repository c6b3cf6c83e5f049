/* The client userdata, shared by lclient.c (construction, driving, the
 * commit) and lclient_report.c (events and stats as Lua tables). */
#ifndef UDPXFER_LUA_CLIENT_OBJ_H
#define UDPXFER_LUA_CLIENT_OBJ_H

#include "bind.h"
#include "engine/client.h"
#include "host/sink.h"
#include "link_obj.h"

struct client_obj {
    struct ux_client *eng;    /* its own allocation: a closed fetch awaiting collection is small */
    struct link_obj *link;         /* NULL for a sim client */
    int live, sim, attached;
    struct sim_rng seed;
    /* where the bytes go */
    int memory;
    uint8_t *mem;
    struct ux_sink sink;
    int dirfd;                     /* the output folder */
    int durable;
    int sink_open, finished;
    int committing;                /* the sink's commit runs on its thread */
    int held;                      /* a datagram waits for the sink */
    int watching;                  /* the sink's descriptor is in the link's epoll set */
    struct ux_client_event done;   /* held back until the commit ends */
    char base[256];
    char path[1100];
    /* the local copy chunks are reused from */
    int basis_fd;
    const uint8_t *basis_mem;      /* or in memory (the option basis_data, kept alive by the options) */
    size_t basis_len;
    struct ux_tree basis;
    int has_basis;
    uint8_t *copy;                 /* a buffer for copying from it */
    /* resuming: the partial file of an earlier fetch is the local copy,
     * removed once this fetch is in place; KEEP: abort(msg, true) and a
     * timeout leave ours for the next (not legacy: it cannot resume) */
    int keep;
    char resumed[256];
};

/* An engine event as a Lua table, on top of the stack. */
void push_client_event(lua_State *L, struct client_obj *o, const struct ux_client_event *ev);
/* client:stats(): the fetch's counters, per server among them. */
int client_stats(lua_State *L, struct client_obj *o);

#endif
