/* Lua binding of the file client: its events and counters as tables. */
#include <string.h>
#include <sys/stat.h>

#include "client_obj.h"
#include "host/clock.h"

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

static const char *drop_reason(enum ux_peer_drop d)
{
    return d == UXC_DROP_CORRUPT ? "corrupt" : d == UXC_DROP_STALE ? "stale" : d == UXC_DROP_REFUSED ? "refused" : "silent";
}

void push_engine_event(lua_State *L, const struct ux_client *c, const struct ux_client_event *ev)
{
    const struct ux_peer *p = ev->peer >= 0 ? &c->peers[ev->peer] : NULL;
    lua_newtable(L);
    switch (ev->type) {
    case UXC_EV_OFFER:
    case UXC_EV_START:
        set_str(L, "type", ev->type == UXC_EV_OFFER ? "offer" : "start");
        set_addr(L, "server", &p->addr);
        set_int(L, "size", (lua_Integer)p->size);
        set_int(L, "chunks", (lua_Integer)ux_chunk_count(p->size, p->chunk_size));
        set_int(L, "chunk_size", p->chunk_size);
        set_hex(L, "sha256", p->sha256);
        if (ev->type == UXC_EV_START)
            set_versions(L, c, p);
        break;
    case UXC_EV_PREPARING:
        set_str(L, "type", "preparing");
        set_addr(L, "server", &p->addr);
        break;
    case UXC_EV_DROP:
        set_str(L, "type", "drop");
        set_addr(L, "server", &p->addr);
        set_str(L, "reason", drop_reason(p->dropped));
        break;
    case UXC_EV_DONE:
        set_str(L, "type", "done");
        set_int(L, "size", (lua_Integer)c->size);
        set_hex(L, "sha256", c->sha256);
        set_num(L, "elapsed", (double)(c->done_at - c->started_at) / 1e6);
        break;
    case UXC_EV_FAIL:
        set_str(L, "type", "error");
        set_str(L, "message", c->fail_msg);
        set_str(L, "code", ux_err_name(c->fail));
        break;
    }
}

void push_client_event(lua_State *L, struct client_obj *o, const struct ux_client_event *ev)
{
    push_engine_event(L, o->f.eng, ev);
    if (ev->type != UXC_EV_DONE)
        return;
    if (o->f.memory) {
        lua_pushlstring(L, (const char *)o->f.mem, o->f.eng->size);
        lua_setfield(L, -2, "data");
    } else {
        set_str(L, "path", o->f.path);
        push_stat(L, &o->f.sink.final_st);
        lua_setfield(L, -2, "stat");
    }
}

static const char *state_name(enum ux_client_state s)
{
    static const char *const names[] = {[UXC_DISCOVER] = "discover", [UXC_TREE] = "compare",
                                        [UXC_TRANSFER] = "transfer", [UXC_DONE] = "done",
                                        [UXC_FAILED] = "failed"};
    return names[s];
}

static void push_peer(lua_State *L, const struct ux_peer *p)
{
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
    set_int(L, "tree_nodes", p->st.tree_nodes);
    set_num(L, "window", p->cwnd);
    set_int(L, "stolen", p->st.stolen);
    uint64_t span = p->last_rx > p->first_data_at ? p->last_rx - p->first_data_at : 0;
    set_num(L, "rate", span ? (double)p->st.bytes * 1e6 / (double)span : 0);
    set_num(L, "rtt", p->srtt_us / 1e6);
}

void push_engine_stats(lua_State *L, const struct ux_client *c, int sim, const char *state)
{
    uint64_t now = c->done_at ? c->done_at : sim ? c->started_at : ux_now_us();
    lua_newtable(L);
    set_str(L, "state", state ? state : state_name(c->state));
    set_int(L, "size", (lua_Integer)c->size);
    set_int(L, "chunks", c->count);
    set_int(L, "have", c->map.have);
    set_int(L, "bytes", (lua_Integer)c->bytes_done);
    set_int(L, "reused", (lua_Integer)c->bytes_reused);
    set_int(L, "reused_chunks", c->chunks_reused);
    set_int(L, "tree_bytes", (lua_Integer)c->tree_bytes);
    set_int(L, "tree_nodes", c->nodes_fetched);
    set_int(L, "dups", c->dups);
    set_int(L, "bad", c->bad);
    set_int(L, "unauthentic", (lua_Integer)c->keys.failed);
    set_num(L, "elapsed", (double)(now - c->started_at) / 1e6);
    lua_newtable(L);
    for (int i = 0; i < c->npeers; i++) {
        push_peer(L, &c->peers[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "servers");
}

int client_stats(lua_State *L, struct client_obj *o)
{
    push_engine_stats(L, o->f.eng, o->sim, o->f.committing ? "committing" : NULL);
    if (o->link && o->link->live) {
        set_int(L, "rx_packets", (lua_Integer)o->link->link.io.rx_packets);
        set_int(L, "tx_packets", (lua_Integer)o->link->link.io.tx_packets);
    }
    set_int(L, "readback", (lua_Integer)o->f.sink.readback);
    set_int(L, "evicted", (lua_Integer)o->f.sink.evicted);
    set_int(L, "hash_waits", (lua_Integer)o->f.sink.waits);
    return 1;
}

