/* Client engine: the original tool's protocol ("get NAME", "except COUNT
 * chunks HEX", 1 KiB chunks with their full SHA-256). */
#include "client_int.h"
#include "legacy.h"

#include <errno.h>
#include <string.h>

/* "except COUNT chunks HEX": the size is known only as an upper bound
 * (COUNT full chunks) until the last chunk shows how long it is. */
static void on_legacy_except(struct ux_client *c, struct ux_peer *p, uint32_t count, const uint8_t *sha,
                             uint64_t now)
{
    if (p->has_offer)
        return;
    p->has_offer = 1;
    p->size = (uint64_t)count * UX_LEGACY_CHUNK;
    p->chunk_size = UX_LEGACY_CHUNK;
    memcpy(p->sha256, sha, UX_HASH_LEN);
    uxc_offer_received(c, p, now);
}

static void on_legacy_chunk(struct ux_client *c, struct ux_peer *p, const uint8_t *pkt, size_t len,
                            uint64_t now)
{
    uint32_t i;
    const uint8_t *data, *hash;
    size_t n;
    uint8_t h[UX_HASH_LEN];
    if (c->state != UXC_TRANSFER || !p->active)
        return;
    if (ux_legacy_parse_chunk(pkt, len, &i, &data, &n, &hash) || i >= c->count ||
        (i + 1 < c->count ? n != UX_LEGACY_CHUNK : n == 0) || ux_sha_init(c->sha) ||
        ux_sha_update(c->sha, data, n) || ux_sha_final(c->sha, h) || !ux_equal(h, hash, UX_HASH_LEN)) {
        uxc_bad_chunk(c, p);
        return;
    }
    p->last_rx = c->last_chunk_at = now;
    if (!p->first_data_at)
        p->first_data_at = now;
    if (ux_chunkmap_has(&c->map, i)) {
        c->dups++;
        p->st.dups++;
        return;
    }
    uint64_t off = (uint64_t)i * UX_LEGACY_CHUNK;
    int err = c->cfg.on_chunk ? c->cfg.on_chunk(c->cfg.ud, i, off, data, n) : 0;
    if (err == EAGAIN) {
        c->held = 1;
        return;
    }
    if (err) {
        uxc_fail(c, UX_ERR_IO, strerror(err));
        return;
    }
    ux_chunkmap_set(&c->map, i);
    c->bytes_done += n;
    p->st.chunks++;
    p->st.bytes += n;
    if (i + 1 == c->count)
        c->legacy_last_len = n;
    if (c->map.have == c->count) {
        c->size = (uint64_t)(c->count - 1) * UX_LEGACY_CHUNK + c->legacy_last_len;
        uxc_complete(c, now);
    }
}

void uxc_legacy_input(struct ux_client *c, uint64_t now, const uint8_t *pkt, size_t len,
                         const struct ux_addr *from)
{
    uint32_t count;
    uint8_t sha[UX_HASH_LEN];
    if (ux_legacy_parse_except(pkt, len, &count, sha) == 0) {
        struct ux_peer *p = uxc_sender(c, from, 1);
        if (p)
            on_legacy_except(c, p, count, sha, now);
        uxc_tick(c, now); /* start now: its chunks follow in this same batch */
        return;
    }
    struct ux_peer *p = uxc_sender(c, from, 0);
    if (p)
        on_legacy_chunk(c, p, pkt, len, now);
}

/* A legacy server cannot be told what is missing: when chunks stop
 * arriving, ask every server that answered for the whole file again. */
uint64_t uxc_legacy_retry_at(const struct ux_client *c)
{
    uint64_t last = c->last_chunk_at > c->legacy_asked_at ? c->last_chunk_at : c->legacy_asked_at;
    return (last ? last : c->started_at) + LEGACY_RETRY_US;
}

size_t uxc_out_legacy_retry(struct ux_client *c, uint64_t now, uint8_t *buf, size_t cap,
                               struct ux_addr *to)
{
    for (int k = 0; k < c->npeers; k++) {
        int i = (c->rr + k) % c->npeers;
        if (c->peers[i].active && c->peers[i].need_now) {
            c->peers[i].need_now = 0;
            c->rr = i + 1;
            *to = c->peers[i].addr;
            return uxc_encode_request(c, buf, cap);
        }
    }
    if (now < uxc_legacy_retry_at(c))
        return 0;
    c->legacy_asked_at = now;
    for (int i = 0; i < c->npeers; i++)
        c->peers[i].need_now = c->peers[i].active;
    return uxc_out_legacy_retry(c, now, buf, cap, to);
}
