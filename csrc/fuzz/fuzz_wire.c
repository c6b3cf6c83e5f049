/* Fuzz target for every parser udpxfer exposes to the network or the user:
 * the wire decoder (with an encode/decode round trip), the name check, the
 * address parser, and the input paths of the file client and server and of
 * the stream sender and receiver.
 * Built with libFuzzer (clang -fsanitize=fuzzer) or, with
 * -DUX_STANDALONE_FUZZ, as a self-contained random-mutation driver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/client.h"
#include "engine/legacy.h"
#include "engine/names.h"
#include "engine/rng.h"
#include "engine/server.h"
#include "engine/stream.h"
#include "engine/wire.h"

static uint64_t seed_state = 1;
static const struct ux_rng seeded = {ux_rng_seeded, &seed_state};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int stub_lookup(void *ud, const struct ux_lookup *q, struct ux_file_info *out)
{
    (void)ud;
    if (q->kind == UX_KIND_FILE && ux_name_check(q->name, q->len))
        return UX_E_REFUSED;
    memset(out, 0, sizeof *out);
    out->handle = 1;
    out->size = 5000;
    out->has_root = q->want_tree;
    return 0;
}

static int stub_current(void *ud, uint32_t handle, struct ux_file_info *out)
{
    struct ux_lookup q = {.kind = UX_KIND_FILE, .name = "f", .len = 1};
    return handle == 1 ? stub_lookup(ud, &q, out) : UX_E_NOTFOUND;
}

static int stub_node(void *ud, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    (void)ud, (void)handle, (void)cs;
    memset(buf, (int)id, 64);
    *len = 64;
    return 0;
}

static int stub_read(void *ud, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    (void)ud, (void)handle, (void)off;
    memset(buf, 'x', len);
    return 0;
}

static int stub_chunk(void *ud, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                      uint8_t hash[UX_HASH_LEN], const uint8_t **lent)
{
    (void)ud, (void)handle, (void)cs, (void)lent;
    memset(buf, 'x', len);
    memset(hash, (int)index, UX_HASH_LEN);
    return 0;
}

static const char *stub_name(void *ud, uint32_t handle)
{
    (void)ud, (void)handle;
    return "f";
}

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ux_msg m, m2;
    static uint8_t buf[70000];
    if (ux_decode(data, size, &m) == 0 && m.type != UX_DATA && m.type != UX_S_DATA) {
        size_t n = ux_encode(&m, buf, sizeof buf);
        /* Requests are padded on encode; everything else must round-trip. */
        if (n && (ux_decode(buf, n, &m2) || m2.type != m.type || m2.xid != m.xid))
            abort();
    }
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
    struct ux_server_cfg scfg = {.files = {stub_lookup, stub_current, stub_read, stub_chunk, stub_node, stub_name, NULL},
                                 .legacy = size & 1, .rng = seeded};
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

#ifdef UX_STANDALONE_FUZZ
/* Random mutations of valid seed packets, for machines without libFuzzer.
 * Usage: fuzz_wire [-runs=N] [-max_total_time=S] [corpus-dir-ignored] */
#include <time.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(int argc, char **argv)
{
    long runs = 200000, seconds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "-runs=", 6))
            runs = atol(argv[i] + 6);
        if (!strncmp(argv[i], "-max_total_time=", 16))
            seconds = atol(argv[i] + 16);
    }
    static uint8_t seeds[10][1200], pkt[1300];
    size_t seed_len[10];
    struct ux_msg m = {.type = UX_REQUEST, .xid = 42};
    m.u.request.chunk_size = 1360;
    m.u.request.name = (const uint8_t *)"file.bin";
    m.u.request.name_len = 8;
    seed_len[0] = ux_encode(&m, seeds[0], sizeof seeds[0]);
    memset(&m, 0, sizeof m);
    m.type = UX_OFFER, m.xid = 42;
    m.u.offer.size = 5000, m.u.offer.chunk_size = 1360, m.u.offer.chunk_count = 4, m.u.offer.handle = 1;
    seed_len[1] = ux_encode(&m, seeds[1], sizeof seeds[1]);
    memset(&m, 0, sizeof m);
    m.type = UX_NEED, m.xid = 42;
    m.u.need.handle = 1, m.u.need.chunk_size = 1360, m.u.need.seq = 1, m.u.need.nranges = 2;
    m.u.need.ranges[0] = (struct ux_range){0, 2};
    m.u.need.ranges[1] = (struct ux_range){3, 1};
    seed_len[2] = ux_encode(&m, seeds[2], sizeof seeds[2]);
    uint8_t h[UX_HASH_LEN] = {0};
    seed_len[3] = ux_encode_data_header(seeds[3], 0, 42, 1, 0, h, 100) + 100;
    seed_len[4] = ux_legacy_encode_except(seeds[4], sizeof seeds[4], 3, h);
    ux_legacy_chunk_header(seeds[5], 1, 1024);
    seed_len[5] = UX_LEGACY_OVERHEAD + 1024;
    memset(&m, 0, sizeof m);
    m.type = UX_S_OPEN, m.xid = 42, m.u.sopen.mss = 1360;
    seed_len[6] = ux_encode(&m, seeds[6], sizeof seeds[6]);
    memset(&m, 0, sizeof m);
    m.type = UX_S_ACK, m.xid = 42, m.u.sack.cum = 1360, m.u.sack.window = 65536, m.u.sack.echo = 3;
    m.u.sack.nsack = 2;
    m.u.sack.sack[0] = (struct ux_span){2720, 4080};
    m.u.sack.sack[1] = (struct ux_span){5440, 6800};
    seed_len[7] = ux_encode(&m, seeds[7], sizeof seeds[7]);
    seed_len[8] = ux_encode_sdata_header(seeds[8], 42, 2, 1360, h, 200) + 200;
    memset(&m, 0, sizeof m);
    m.type = UX_S_FIN, m.xid = 42, m.u.sfin.txseq = 9, m.u.sfin.length = 20000;
    seed_len[9] = ux_encode(&m, seeds[9], sizeof seeds[9]);
    time_t end = time(NULL) + seconds;
    long i;
    for (i = 0; i < runs || (seconds && time(NULL) < end); i++) {
        int s = (int)(rnd() % 10);
        size_t n = seed_len[s];
        memcpy(pkt, seeds[s], n);
        for (int k = (int)(rnd() % 4); k >= 0; k--) {
            switch (rnd() % 4) {
            case 0: if (n) pkt[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: if (n) pkt[rnd() % n] = (uint8_t)rnd(); break;
            case 2: n = rnd() % (n + 1); break;
            default: if (n < sizeof pkt) pkt[n++] = (uint8_t)rnd(); break;
            }
        }
        LLVMFuzzerTestOneInput(pkt, n);
        if (seconds && i >= runs && time(NULL) >= end)
            break;
    }
    printf("fuzz_wire: %ld inputs, no crash\n", i);
    return 0;
}
#endif
