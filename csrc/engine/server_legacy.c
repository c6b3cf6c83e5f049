/* The original tool's protocol on the server: "get NAME", answered with
 * "except COUNT chunks HEX" and then every chunk, shuffled and paced. It
 * has no cookie, so any address can be named as the client: that is why
 * it is opt-in, and bounded instead of validated. Per source (host) it
 * sends at most legacy_bps, all legacy sessions together twice that; one
 * session per source and file, started over by a repeated request at most
 * once per LEGACY_RESTART_US; at most LEGACY_SESSIONS in all. */
#include "server_int.h"

#include <string.h>

#include "legacy.h"

#define LEGACY_RESTART_US (2000 * MS)
#define LEGACY_SESSIONS 16
#define LEGACY_BACKLOG_US (1000 * MS) /* a source this far behind its pacing is not answered */

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Legacy requests carry no transfer id: the name stands in for one. */
static uint64_t hash_name_xid(const uint8_t *name, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ name[i]) * 0x100000001B3ull;
    return h;
}

static int legacy_sessions(const struct ux_server *s)
{
    int n = 0;
    for (uint32_t i = 0; i < s->hi; i++)
        n += s->sessions[i].used && s->sessions[i].legacy;
    return n;
}

/* A random permutation i -> (a * i + b) mod count for SS. */
static void shuffle(struct ux_server *s, struct ux_session *ss)
{
    uint64_t count = ss->count;
    ss->perm_i = 0;
    ss->perm_b = count ? uxs_rand(s) % count : 0;
    ss->perm_a = 1;
    /* A step of 1 or count-1 would send the file in (reverse) order: 1 in 40
     * draws over [1, count-1] for 200 chunks. */
    for (int tries = 0; count > 4 && tries < 64; tries++) {
        uint64_t a = 2 + uxs_rand(s) % (count - 3);
        if (gcd(a, count) == 1) {
            ss->perm_a = a;
            break;
        }
    }
}

void uxs_legacy_get(struct ux_server *s, const uint8_t *name, size_t n, const struct ux_addr *from, uint64_t now)
{
    struct ux_host *h = ux_guard_host(&s->guard, from, now);
    if (!h || h->legacy_next_at > now + LEGACY_BACKLOG_US || !ux_guard_admit(&s->guard, from, now))
        return;
    uint64_t xid = hash_name_xid(name, n);
    struct ux_session *ss = uxs_find(s, from, xid);
    if (ss && (!ss->legacy || now < ss->started_at + LEGACY_RESTART_US))
        return; /* the repeat of a request being served */
    struct ux_file_info fi;
    struct ux_lookup q = {.kind = UX_KIND_FILE, .name = (const char *)name, .len = n, .chunk_size = UX_LEGACY_CHUNK};
    int code = uxs_lookup(s, &q, from, now, &fi);
    uxs_request_event(s, from, xid, UX_KIND_FILE, name, n, code, &fi);
    uint64_t count = ux_chunk_count(fi.size, UX_LEGACY_CHUNK);
    if (code || count > UINT32_MAX)
        return; /* the old protocol has no way to say no */
    if (!ss && (legacy_sessions(s) >= LEGACY_SESSIONS || !(ss = uxs_open(s, from, xid, UX_LEGACY_CHUNK, &fi, now))))
        return;
    uint8_t except[UX_HDR_LEN + 4 + 200];
    size_t len = ux_legacy_encode_except(except, sizeof except, (uint32_t)count, fi.sha256);
    uxs_queue_raw(s, from, except, len);
    ss->legacy = 1;
    ss->last_rx = now;
    ss->started_at = now;
    ss->rate_bps = 0; /* paced per source and in all (uxs_pace) */
    uxs_pace(s, ss, now, len);
    shuffle(s, ss);
    if (count == 0)
        uxs_end(s, ss, UXSV_END_CLOSED, now);
}

size_t uxs_legacy_send(struct ux_server *s, struct ux_session *ss, uint64_t now, uint8_t *buf, size_t cap,
                       struct ux_addr *to)
{
    uint32_t i = (uint32_t)((ss->perm_a * ss->perm_i + ss->perm_b) % ss->count);
    ss->perm_i++;
    uint64_t off = (uint64_t)i * UX_LEGACY_CHUNK;
    size_t n = ss->size - off < UX_LEGACY_CHUNK ? (size_t)(ss->size - off) : UX_LEGACY_CHUNK;
    if (UX_LEGACY_OVERHEAD + n > cap)
        return 0;
    uint8_t *data = buf + 8;
    if (s->cfg.files.read(s->cfg.files.ud, ss->handle, off, data, n) || ux_sha_init(s->sha) ||
        ux_sha_update(s->sha, data, n) || ux_sha_final(s->sha, data + n)) {
        uxs_end(s, ss, UXSV_END_IO, now);
        return 0;
    }
    ux_legacy_chunk_header(buf, i, (uint32_t)n);
    ss->chunks_sent++;
    ss->bytes_sent += n;
    uxs_pace(s, ss, now, UX_LEGACY_OVERHEAD + n);
    *to = ss->addr;
    if (!uxs_pending(ss))
        uxs_end(s, ss, UXSV_END_CLOSED, now);
    return UX_LEGACY_OVERHEAD + n;
}
