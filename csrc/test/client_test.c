/* The client engine when its on_chunk says EAGAIN (the output file's hash
 * thread is behind): ux_client_input hands the datagram back with nothing
 * of it counted, and fed again it is taken once. Driven with hand-made
 * OFFER and DATA datagrams, so nothing depends on timing.
 * Usage: client_test. Prints one line per check and exits 0 if all hold. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/client.h"
#include "engine/hash.h"
#include "engine/rng.h"
#include "engine/wire.h"

#define CHUNK 1024
#define CHUNKS 4

static int failures, refuse, taken[CHUNKS];

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
}

static int on_start(void *ud, uint64_t size, const char **why)
{
    (void)ud, (void)size, (void)why;
    return 0;
}

static int on_chunk(void *ud, uint32_t index, uint64_t off, const uint8_t *data, size_t len)
{
    (void)ud, (void)off, (void)data, (void)len;
    if (refuse)
        return EAGAIN;
    taken[index]++;
    return 0;
}

/* The seq of the NEED the client sends at NOW (0 if none). */
static uint32_t need_seq(struct ux_client *c, uint64_t now)
{
    uint8_t buf[2048];
    struct ux_addr to;
    struct ux_msg m;
    uint32_t seq = 0;
    for (size_t n; (n = ux_client_output(c, now, buf, sizeof buf, &to));)
        if (ux_decode(buf, n, &m) == 0 && m.type == UX_NEED)
            seq = m.u.need.seq;
    return seq;
}

int main(void)
{
    static uint8_t file[CHUNK * CHUNKS], dgram[2048];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = (uint8_t)(i * 7);
    struct ux_sha *sha = ux_sha_new();
    struct ux_client c;
    uint64_t seed = 1;
    struct ux_client_cfg cfg = {.name = "f", .name_len = 1, .chunk_size = CHUNK, .unicast = 1,
                                .max_window = 64, .on_start = on_start, .on_chunk = on_chunk,
                                .rng = {ux_rng_seeded, &seed}};
    struct ux_addr srv;
    ux_addr_parse("10.0.0.2:10526", 0, &srv);
    if (!sha || ux_client_init(&c, &cfg, 0) || ux_client_add_target(&c, &srv))
        return 2;
    need_seq(&c, 1); /* the REQUEST */

    struct ux_msg m = {.type = UX_OFFER, .xid = c.xid};
    m.u.offer.size = sizeof file;
    m.u.offer.chunk_size = CHUNK;
    m.u.offer.chunk_count = CHUNKS;
    m.u.offer.handle = 1;
    ux_sha_init(sha);
    ux_sha_update(sha, file, sizeof file);
    ux_sha_final(sha, m.u.offer.sha256);
    size_t n = ux_encode(&m, dgram, sizeof dgram);
    ux_client_input(&c, 2, dgram, n, &srv);
    need_seq(&c, 3); /* starts the transfer; the NEEDs follow on a fresh clock */
    uint32_t seq = need_seq(&c, 4);
    check(c.state == UXC_TRANSFER && seq, "the offer starts the transfer with a NEED");

    uint8_t h[UX_HASH_LEN];
    ux_chunk_hash(sha, 1, file + CHUNK, CHUNK, h);
    n = ux_encode_data_header(dgram, 0, c.xid, seq, 1, h, CHUNK);
    memcpy(dgram + n, file + CHUNK, CHUNK);
    n += CHUNK;

    refuse = 1;
    int held = ux_client_input(&c, 5, dgram, n, &srv);
    check(held == 1, "a chunk on_chunk refuses with EAGAIN is handed back");
    check(c.map.have == 0 && c.bytes_done == 0 && c.dups == 0 && c.bad == 0 && c.state == UXC_TRANSFER,
          "nothing of it is counted, and the transfer goes on");
    refuse = 0;
    held = ux_client_input(&c, 6, dgram, n, &srv);
    check(held == 0 && c.map.have == 1 && c.bytes_done == CHUNK && taken[1] == 1, "fed again, it is taken");
    held = ux_client_input(&c, 7, dgram, n, &srv);
    check(held == 0 && c.dups == 1 && taken[1] == 1, "a third time, it is a duplicate");
    ux_client_free(&c);
    ux_sha_free(sha);
    return failures ? 1 : 0;
}
