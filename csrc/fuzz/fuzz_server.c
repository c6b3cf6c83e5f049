/* Stateful fuzz target: the file server with a client that proved its
 * address. A REQUEST for "f" (5000 bytes) is offered; the input's records
 * follow (fuzz_common.h), repaired NEEDs carrying the offer's handle,
 * chunk size and cookie, so sessions open, chunks and tree nodes are sent
 * and the session ring turns. First byte: bit 0 ask for the tree, bit 1
 * legacy answers on, bit 2 small per-host caps (one session, a rate, a
 * work budget a few lookups use up). */
#include "engine/server.h"
#include "engine/wire.h"
#include "fuzz_common.h"

#define CS 256

static void drain(struct ux_server *s, uint64_t now)
{
    static uint8_t buf[UX_DATA_OVERHEAD + UX_MAX_CHUNK];
    struct ux_addr to;
    struct ux_server_event ev;
    for (int i = 0; i < 20000 && ux_server_output(s, now, buf, sizeof buf, &to, NULL); i++)
        ;
    while (ux_server_next_event(s, &ev))
        ;
}

/* Ask for "f" and keep the offer's cookie. */
static int ask(struct ux_server *s, uint64_t xid, int tree, const struct ux_addr *from, uint8_t cookie[UX_COOKIE_LEN])
{
    static uint8_t buf[70000];
    struct ux_msg m = {.type = UX_REQUEST, .xid = xid};
    m.u.request.chunk_size = CS, m.u.request.name = (const uint8_t *)"f", m.u.request.name_len = 1;
    m.u.request.flags = tree ? UX_REQ_TREE : 0;
    size_t n = ux_encode(&m, buf, sizeof buf);
    ux_server_input(s, 1, buf, n, from);
    struct ux_addr to;
    while ((n = ux_server_output(s, 1, buf, sizeof buf, &to, NULL)))
        if (ux_decode(buf, n, &m) == 0 && m.type == UX_OFFER) {
            memcpy(cookie, m.u.offer.cookie, UX_COOKIE_LEN);
            return 0;
        }
    return -1;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A NEED given the offer's handle, chunk size and cookie. */
static void repair(struct fz_rec *r, const uint8_t cookie[UX_COOKIE_LEN])
{
    if (!(r->op & 2) || r->n < UX_HDR_LEN + 8 + UX_COOKIE_LEN || r->pkt[3] != UX_NEED)
        return;
    put32(r->pkt + UX_HDR_LEN, 1);
    put32(r->pkt + UX_HDR_LEN + 4, CS);
    memcpy(r->pkt + UX_HDR_LEN + 8, cookie, UX_COOKIE_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = size ? data[0] : 0;
    data += size ? 1 : 0, size -= size ? 1 : 0;
    uint64_t seed = 1;
    struct ux_server_cfg cfg = {.files = fz_files, .rng = {ux_rng_seeded, &seed}, .legacy = (mode & 2) != 0,
                                .max_sessions = 8};
    if (mode & 4)
        cfg.host_sessions = 1, cfg.host_bps = 100000, cfg.host_requests = 50, cfg.work_rate = 20000;
    static struct ux_server s;
    if (ux_server_init(&s, &cfg))
        abort();
    struct ux_addr c = fz_addr("10.0.0.2:4000"), d = fz_addr("10.0.0.9:4000");
    uint64_t xid = 0x0102030405060708ull, now = 1;
    uint8_t cookie[UX_COOKIE_LEN] = {0};
    if (ask(&s, xid, mode & 1, &c, cookie))
        abort();
    struct fz_rec r;
    while (fz_next(&data, &size, &r)) {
        fz_set_xid(&r, xid);
        repair(&r, cookie);
        now += fz_ms(&r) + 1;
        ux_server_input(&s, now, r.pkt, r.n, r.op & 4 ? &d : &c);
        drain(&s, now);
    }
    drain(&s, now + 60000000); /* sessions idle out */
    ux_server_free(&s);
    return 0;
}
