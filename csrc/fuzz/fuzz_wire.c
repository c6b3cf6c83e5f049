/* Fuzz target for every parser udpxfer exposes to the network or the user:
 * the wire decoder (with an encode/decode round trip), a batch's selection
 * (round trip, and the layout of the files it names), the name check, the
 * address parser, and the input paths of the file client and server and of
 * the stream sender and receiver.
 * One datagram per input; its seeds are in csrc/fuzz/corpus/fuzz_wire.
 * Built with libFuzzer (clang -fsanitize=fuzzer) or, with
 * -DUX_STANDALONE_FUZZ, with the driver in fuzz_common.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/client.h"
#include "engine/layout.h"
#include "engine/legacy.h"
#include "engine/names.h"
#include "engine/rng.h"
#include "engine/server.h"
#include "engine/stream.h"
#include "engine/wire.h"
#include "fuzz_common.h"

static uint64_t seed_state = 1;
static const struct ux_rng seeded = {ux_rng_seeded, &seed_state};

static int sink_chunk(void *ud, uint32_t i, uint64_t off, const uint8_t *d, size_t n)
{
    (void)ud, (void)i, (void)off, (void)d, (void)n;
    return 0;
}

static void drain_server(struct ux_server *s, uint64_t now)
{
    static uint8_t buf[UX_DATA_OVERHEAD + UX_MAX_CHUNK];
    struct ux_addr to;
    for (int i = 0; i < 100000 && ux_server_output(s, now, buf, sizeof buf, &to, NULL); i++)
        ;
}

static uint64_t packet_xid(const uint8_t *data, size_t size)
{
    uint64_t xid = 0;
    for (size_t i = 8; i < 16 && i < size; i++)
        xid = xid << 8 | data[i];
    return xid;
}

static void drain_stream(struct ux_ssend *s, struct ux_srecv *r, uint64_t now)
{
    static uint8_t buf[UX_SDATA_OVERHEAD + UX_STREAM_MAX_MSS];
    struct ux_addr to;
    for (int i = 0; i < 10000 && ux_ssend_output(s, now, buf, sizeof buf, &to); i++)
        ;
    for (int i = 0; i < 10000 && ux_srecv_output(r, now, buf, sizeof buf, &to); i++)
        ;
}

/* The stream engines: a receiver listening and connected, and a sender
 * connected with data in flight, each fed the input under its own id. */
static void fuzz_stream(const uint8_t *data, size_t size, const struct ux_addr *from)
{
    static struct ux_ssend s;
    static struct ux_srecv r;
    struct ux_ssend_cfg scfg = {.peer = *from, .buffer = 1 << 16, .rng = seeded};
    struct ux_srecv_cfg rcfg = {.buffer = 1 << 16, .rng = seeded};
    if (ux_ssend_init(&s, &scfg, 0) || ux_srecv_init(&r, &rcfg, 0))
        abort();
    ux_srecv_input(&r, 1, data, size, from);
    s.c.xid = packet_xid(data, size);
    struct ux_msg acc = {.type = UX_S_ACCEPT, .xid = s.c.xid};
    acc.u.saccept.mss = 1360, acc.u.saccept.window = 1 << 16, acc.u.saccept.idle_ms = 1000;
    static uint8_t pkt[2048];
    size_t n = ux_encode(&acc, pkt, sizeof pkt);
    ux_ssend_output(&s, 1, pkt + 1024, 1024, &(struct ux_addr){0});
    ux_ssend_input(&s, 2, pkt, n, from);
    uint8_t *p;
    size_t room = ux_ssend_space(&s, &p);
    memset(p, 'y', room > 4000 ? 4000 : room);
    ux_ssend_commit(&s, room > 4000 ? 4000 : room);
    ux_ssend_eof(&s);
    drain_stream(&s, &r, 3);
    ux_ssend_input(&s, 4, data, size, from);
    ux_srecv_input(&r, 4, data, size, from);
    drain_stream(&s, &r, 5);
    const uint8_t *q;
    ux_srecv_consume(&r, ux_srecv_peek(&r, &q), 6);
    drain_stream(&s, &r, 7000000);
    ux_ssend_free(&s);
    ux_srecv_free(&r);
}

/* A selection that decodes encodes to the same bytes (it has one
 * spelling), and the files it names, laid out, put every chunk inside
 * its file at a chunk boundary, none empty, the chunks' bytes adding up
 * to the files'. */
static void fuzz_selection(const uint8_t *b, size_t n)
{
    static struct ux_selection sel;
    static uint8_t back[UX_HASH_LEN + 2 + 8 * UX_SEL_MAX_RANGES];
    static uint64_t sizes[256];
    if (ux_selection_decode(b, n, &sel))
        return;
    if (ux_selection_encode(&sel, back, sizeof back) != n || memcmp(back, b, n))
        abort();
    int64_t count = ux_selection_count(&sel);
    if (count < 0)
        abort();
    if (count > 256)
        return;
    uint32_t k = 0;
    for (uint16_t r = 0; r < sel.nranges; r++)
        for (uint32_t i = 0; i < sel.ranges[r].count; i++)
            sizes[k++] = (uint64_t)(sel.ranges[r].first + i) * 7919 % 2000;
    uint32_t cs = UX_MIN_CHUNK + (uint32_t)(n % 200);
    struct ux_layout l;
    if (ux_layout_init(&l, sizes, k, cs))
        abort();
    uint64_t total = 0;
    for (uint32_t g = 0; g < ux_layout_chunks(&l); g++) {
        uint32_t f, local;
        uint64_t off;
        uint32_t len = ux_layout_chunk(&l, g, &f, &off);
        if (f >= k || !len || off % cs || off + len > sizes[f] || ux_layout_file(&l, g, &local) != f ||
            (uint64_t)local * cs != off)
            abort();
        total += len;
    }
    if (total != l.total)
        abort();
    ux_layout_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ux_msg m, m2;
    static uint8_t buf[70000];
    if (ux_decode(data, size, &m) == 0 && m.type != UX_DATA && m.type != UX_S_DATA) {
        size_t n = ux_encode(&m, buf, sizeof buf);
        /* Requests are padded on encode; everything else must round-trip. */
        if (n && (ux_decode(buf, n, &m2) || m2.type != m.type || m2.xid != m.xid))
            abort();
        if (m.type == UX_REQUEST && m.u.request.kind == UX_KIND_FILES)
            fuzz_selection(m.u.request.sel, m.u.request.sel_len);
    }
    fuzz_selection(data, size);
    ux_name_check((const char *)data, size);
    {
        const uint8_t *p, *h;
        size_t n;
        uint32_t count, idx;
        uint8_t sha[32];
        ux_legacy_parse_get(data, size, &p, &n);
        ux_legacy_parse_except(data, size, &count, sha);
        ux_legacy_parse_chunk(data, size, &idx, &p, &n, &h);
    }
    char text[200];
    size_t tn = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tn);
    text[tn] = 0;
    struct ux_addr a;
    if (ux_addr_parse(text, 1, &a) == 0) {
        char back[80];
        ux_addr_format(&a, back, sizeof back);
    }

    struct ux_addr from;
    ux_addr_parse("10.0.0.2:4000", 0, &from);
    static struct ux_server s;
    struct ux_server_cfg scfg = {.files = fz_files, .legacy = size & 1, .rng = seeded};
    fz_batch_reset();
    if (ux_server_init(&s, &scfg))
        abort();
    ux_server_input(&s, 1, data, size, &from);
    drain_server(&s, 2);
    ux_server_free(&s);

    static struct ux_client c;
    struct ux_client_cfg ccfg = {.name = "f", .name_len = 1, .on_chunk = sink_chunk, .legacy = size & 1,
                                 .rng = seeded};
    if (ux_client_init(&c, &ccfg, 0))
        abort();
    /* Let the packet's own xid count: the client accepts only its own. */
    if (size >= 16) {
        uint64_t xid = 0;
        for (int i = 8; i < 16; i++)
            xid = xid << 8 | data[i];
        c.xid = xid;
    }
    ux_client_input(&c, 1, data, size, &from);
    ux_client_input(&c, 200000, data, size, &from); /* after the collect window */
    struct ux_addr to;
    while (ux_client_output(&c, 200001, buf, sizeof buf, &to))
        ;
    ux_client_input(&c, 200002, data, size, &from);
    ux_client_free(&c);
    fuzz_stream(data, size, &from);
    return 0;
}
