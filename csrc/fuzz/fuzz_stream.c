/* Stateful fuzz target: a stream sender and receiver connected through
 * the cookie handshake, with data in flight, then fed the input's records
 * (fuzz_common.h): to the receiver as from the sender, or (bit 2) to the
 * sender as from the receiver, the two still talking to each other in
 * between. Repaired S_DATA gets its segment hash right. First byte: bits
 * 0-1 how much the application writes (1 KiB to 64 KiB), bit 2 the end of
 * the stream is given, bit 3 the receiver's application reads nothing. */
#include "engine/hash.h"
#include "engine/stream.h"
#include "engine/wire.h"
#include "fuzz_common.h"

struct pair {
    struct ux_ssend s;
    struct ux_srecv r;
    struct ux_addr sa, ra;
    int reads;
};

/* Let the two exchange what they have to say. */
static void pump(struct pair *p, uint64_t now)
{
    static uint8_t buf[UX_SDATA_OVERHEAD + UX_STREAM_MAX_MSS + 64];
    struct ux_addr to;
    size_t n;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 2000 && (n = ux_ssend_output(&p->s, now, buf, sizeof buf, &to)); i++)
            ux_srecv_input(&p->r, now, buf, n, &p->sa);
        for (int i = 0; i < 2000 && (n = ux_srecv_output(&p->r, now, buf, sizeof buf, &to)); i++)
            ux_ssend_input(&p->s, now, buf, n, &p->ra);
        const uint8_t *q;
        if (p->reads)
            ux_srecv_consume(&p->r, ux_srecv_peek(&p->r, &q), now);
    }
}

static void repair(struct ux_sha *sha, struct fz_rec *r)
{
    if (!(r->op & 2) || r->n < UX_SDATA_OVERHEAD || r->pkt[3] != UX_S_DATA)
        return;
    uint64_t xid = 0, off = 0;
    for (int i = 8; i < 16; i++)
        xid = xid << 8 | r->pkt[i];
    for (int i = 20; i < 28; i++)
        off = off << 8 | r->pkt[i];
    uint8_t h[UX_HASH_LEN];
    if (ux_segment_hash(sha, xid, off, r->pkt + UX_SDATA_OVERHEAD, r->n - UX_SDATA_OVERHEAD, h) == 0)
        memcpy(r->pkt + 28, h, UX_HASH_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pair p;
    static struct ux_sha *sha;
    if (!sha && !(sha = ux_sha_new()))
        abort();
    uint8_t mode = size ? data[0] : 0;
    data += size ? 1 : 0, size -= size ? 1 : 0;
    uint64_t s1 = 1, s2 = 2;
    p.sa = fz_addr("10.0.0.1:40000"), p.ra = fz_addr("10.0.0.2:10527");
    p.reads = !(mode & 8);
    struct ux_ssend_cfg scfg = {.peer = p.ra, .buffer = 1 << 16, .rng = {ux_rng_seeded, &s1}};
    struct ux_srecv_cfg rcfg = {.buffer = 1 << 16, .rng = {ux_rng_seeded, &s2}};
    if (ux_ssend_init(&p.s, &scfg, 0) || ux_srecv_init(&p.r, &rcfg, 0))
        abort();
    uint64_t now = 0;
    for (int i = 0; i < 8 && p.s.c.state == UXSS_CONNECTING; i++)
        pump(&p, now += 300000);
    if (p.s.c.state != UXSS_OPEN)
        abort(); /* the handshake itself must work */
    uint8_t *w;
    size_t want = (size_t)1024 << (2 * (mode & 3)), room = ux_ssend_space(&p.s, &w);
    size_t put = want < room ? want : room;
    memset(w, 'y', put);
    ux_ssend_commit(&p.s, put);
    if (mode & 4)
        ux_ssend_eof(&p.s);
    pump(&p, now += 1000);
    struct fz_rec r;
    while (fz_next(&data, &size, &r)) {
        fz_set_xid(&r, p.s.c.xid);
        repair(sha, &r);
        now += fz_ms(&r) + 1;
        if (r.op & 4)
            ux_ssend_input(&p.s, now, r.pkt, r.n, &p.ra);
        else
            ux_srecv_input(&p.r, now, r.pkt, r.n, &p.sa);
        pump(&p, now);
    }
    pump(&p, now + 20000000);
    ux_ssend_free(&p.s);
    ux_srecv_free(&p.r);
    return 0;
}
