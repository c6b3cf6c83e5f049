/* Stateful fuzz target: the file server with a client that proved its
 * address. A REQUEST for "f" (5000 bytes), or for a batch (files 0-39 and
 * 100-109 of the provider's listing), is offered; the input's records
 * follow (fuzz_common.h), repaired NEEDs carrying the offer's handle,
 * chunk size and cookie, so sessions open, chunks and tree nodes are sent
 * and the session ring turns. First byte: bit 0 ask for the tree, bit 1
 * legacy answers on, bit 2 small per-host caps (one session, a rate, a
 * work budget a few lookups use up), bit 3 the batch (later FILES
 * requests for other selections replace it: its sessions must end). */
#include "engine/layout.h"
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

/* Ask for "f" (or BATCH) and keep the offer's handle and cookie. */
static int ask(struct ux_server *s, uint64_t xid, int tree, int batch, const struct ux_addr *from, uint32_t *handle,
               uint8_t cookie[UX_COOKIE_LEN])
{
    static uint8_t buf[70000], sel[UX_HASH_LEN + 2 + 8 * UX_SEL_MAX_RANGES];
    struct ux_selection want = {.nranges = 2, .ranges = {{0, 40}, {100, 10}}};
    memcpy(want.listing, fz_listing, UX_HASH_LEN);
    struct ux_msg m = {.type = UX_REQUEST, .xid = xid};
    m.u.request.chunk_size = CS, m.u.request.name = (const uint8_t *)(batch ? "." : "f"), m.u.request.name_len = 1;
    m.u.request.flags = tree ? UX_REQ_TREE : 0;
    if (batch) {
        m.u.request.kind = UX_KIND_FILES;
        m.u.request.sel = sel;
        m.u.request.sel_len = (uint16_t)ux_selection_encode(&want, sel, sizeof sel);
    }
    size_t n = ux_encode(&m, buf, sizeof buf);
    ux_server_input(s, 1, buf, n, from);
    struct ux_addr to;
    while ((n = ux_server_output(s, 1, buf, sizeof buf, &to, NULL)))
        if (ux_decode(buf, n, &m) == 0 && m.type == UX_OFFER) {
            *handle = m.u.offer.handle;
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
static void repair(struct fz_rec *r, uint32_t handle, const uint8_t cookie[UX_COOKIE_LEN])
{
    if (!(r->op & 2) || r->n < UX_HDR_LEN + 8 + UX_COOKIE_LEN || r->pkt[3] != UX_NEED)
        return;
    put32(r->pkt + UX_HDR_LEN, handle);
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
    fz_batch_reset();
    if (ux_server_init(&s, &cfg))
        abort();
    struct ux_addr c = fz_addr("10.0.0.2:4000"), d = fz_addr("10.0.0.9:4000");
    uint64_t xid = 0x0102030405060708ull, now = 1;
    uint8_t cookie[UX_COOKIE_LEN] = {0};
    uint32_t handle = 0;
    if (ask(&s, xid, mode & 1, mode & 8, &c, &handle, cookie))
        abort();
    struct fz_rec r;
    while (fz_next(&data, &size, &r)) {
        fz_set_xid(&r, xid);
        repair(&r, handle, cookie);
        now += fz_ms(&r) + 1;
        ux_server_input(&s, now, r.pkt, r.n, r.op & 4 ? &d : &c);
        drain(&s, now);
    }
    drain(&s, now + 60000000); /* sessions idle out */
    ux_server_free(&s);
    return 0;
}
