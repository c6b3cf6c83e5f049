#include "wire.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get32(const uint8_t *p) { return ((uint32_t)get16(p) << 16) | get16(p + 2); }
static uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

uint64_t ux_chunk_count(uint64_t size, uint32_t chunk_size)
{
    return chunk_size ? (size + chunk_size - 1) / chunk_size : 0;
}

static void put_header(uint8_t *buf, uint8_t type, uint8_t flags, uint64_t xid, size_t body_len)
{
    buf[0] = UX_MAGIC0;
    buf[1] = UX_MAGIC1;
    buf[2] = UX_VERSION;
    buf[3] = type;
    buf[4] = flags;
    buf[5] = 0;
    put16(buf + 6, (uint16_t)body_len);
    put64(buf + 8, xid);
}

size_t ux_encode_data_header(uint8_t *buf, uint8_t flags, uint64_t xid, uint32_t seq, uint32_t index,
                             const uint8_t hash[UX_CHUNK_HASH_LEN], size_t len)
{
    size_t head = ux_data_overhead(flags);
    put_header(buf, UX_DATA, flags, xid, head - UX_HDR_LEN + len);
    put32(buf + UX_HDR_LEN, seq);
    put32(buf + UX_HDR_LEN + 4, index);
    if (!(flags & UX_FLAG_BARE))
        memcpy(buf + UX_HDR_LEN + 8, hash, UX_CHUNK_HASH_LEN);
    return head;
}

size_t ux_encode_sdata_header(uint8_t *buf, uint64_t xid, uint32_t txseq, uint64_t off,
                              const uint8_t hash[UX_HASH_LEN], size_t len)
{
    put_header(buf, UX_S_DATA, 0, xid, 12 + UX_HASH_LEN + len);
    put32(buf + UX_HDR_LEN, txseq);
    put64(buf + UX_HDR_LEN + 4, off);
    memcpy(buf + UX_HDR_LEN + 12, hash, UX_HASH_LEN);
    return UX_SDATA_OVERHEAD;
}

/* Body encoders write at b and return the body length, or 0 if over cap. */
/* A REQUEST's body: chunk size, kind, flags, the name, for FILES the
 * selection (u16 length and its bytes), the key nonce; padded. */
static size_t enc_request(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    int files = m->u.request.kind == UX_KIND_FILES;
    size_t named = 8 + (size_t)m->u.request.name_len + (files ? 2 + (size_t)m->u.request.sel_len : 0);
    size_t n = named + (m->u.request.flags & UX_REQ_NONCE ? UX_NC_LEN : 0);
    size_t padded = n < UX_REQUEST_MIN - UX_HDR_LEN ? UX_REQUEST_MIN - UX_HDR_LEN : n;
    if (padded > cap)
        return 0;
    put32(b, m->u.request.chunk_size);
    b[4] = m->u.request.kind;
    b[5] = m->u.request.flags;
    put16(b + 6, m->u.request.name_len);
    memcpy(b + 8, m->u.request.name, m->u.request.name_len);
    if (files) {
        put16(b + 8 + m->u.request.name_len, m->u.request.sel_len);
        memcpy(b + 10 + m->u.request.name_len, m->u.request.sel, m->u.request.sel_len);
    }
    if (m->u.request.flags & UX_REQ_NONCE)
        memcpy(b + named, m->u.request.nonce, UX_NC_LEN);
    memset(b + n, 0, padded - n);
    return padded;
}

#define OFFER_LEN (21 + UX_HASH_LEN + UX_COOKIE_LEN)

static size_t enc_offer(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t rooted = OFFER_LEN + (m->u.offer.flags & UX_OFFER_TREE ? UX_HASH_LEN : 0);
    size_t n = rooted + (m->u.offer.flags & UX_OFFER_NONCE ? UX_NC_LEN : 0);
    if (cap < n)
        return 0;
    put64(b, m->u.offer.size);
    put32(b + 8, m->u.offer.chunk_size);
    put32(b + 12, m->u.offer.chunk_count);
    put32(b + 16, m->u.offer.handle);
    memcpy(b + 20, m->u.offer.sha256, UX_HASH_LEN);
    memcpy(b + 20 + UX_HASH_LEN, m->u.offer.cookie, UX_COOKIE_LEN);
    b[OFFER_LEN - 1] = m->u.offer.flags;
    if (m->u.offer.flags & UX_OFFER_TREE)
        memcpy(b + OFFER_LEN, m->u.offer.root, UX_HASH_LEN);
    if (m->u.offer.flags & UX_OFFER_NONCE)
        memcpy(b + rooted, m->u.offer.nonce, UX_NC_LEN);
    return n;
}

static size_t enc_error(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t n = 4 + (size_t)m->u.error.text_len;
    if (n > cap)
        return 0;
    put16(b, m->u.error.code);
    put16(b + 2, m->u.error.text_len);
    memcpy(b + 4, m->u.error.text, m->u.error.text_len);
    return n;
}

static size_t enc_need(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t n = 8 + UX_COOKIE_LEN + 10 + 8 * (size_t)m->u.need.nranges;
    if (n > cap || m->u.need.nranges > UX_MAX_RANGES)
        return 0;
    put32(b, m->u.need.handle);
    put32(b + 4, m->u.need.chunk_size);
    memcpy(b + 8, m->u.need.cookie, UX_COOKIE_LEN);
    b += 8 + UX_COOKIE_LEN;
    put32(b, m->u.need.seq);
    put32(b + 4, m->u.need.rate_kib);
    put16(b + 8, m->u.need.nranges);
    for (unsigned i = 0; i < m->u.need.nranges; i++) {
        put32(b + 10 + 8 * i, m->u.need.ranges[i].first);
        put32(b + 14 + 8 * i, m->u.need.ranges[i].count);
    }
    return n;
}

static size_t enc_close(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    if (cap < 2)
        return 0;
    put16(b, m->u.close.reason);
    return 2;
}

static size_t enc_sopen(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t n = UX_OPEN_MIN - UX_HDR_LEN;
    if (cap < n)
        return 0;
    memset(b, 0, n);
    put16(b, m->u.sopen.mss);
    b[2] = m->u.sopen.flags;
    memcpy(b + 3, m->u.sopen.cookie, UX_COOKIE_LEN);
    memcpy(b + 3 + UX_COOKIE_LEN, m->u.sopen.nonce, UX_NC_LEN);
    return n;
}

static size_t enc_saccept(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t n = 11 + UX_COOKIE_LEN + (m->u.saccept.flags & UX_SA_NONCE ? UX_NC_LEN : 0);
    if (cap < n)
        return 0;
    put16(b, m->u.saccept.mss);
    put32(b + 2, m->u.saccept.window);
    put32(b + 6, m->u.saccept.idle_ms);
    b[10] = m->u.saccept.flags;
    memcpy(b + 11, m->u.saccept.cookie, UX_COOKIE_LEN);
    if (m->u.saccept.flags & UX_SA_NONCE)
        memcpy(b + 11 + UX_COOKIE_LEN, m->u.saccept.nonce, UX_NC_LEN);
    return n;
}

static size_t enc_sack(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    size_t n = 18 + 16 * (size_t)m->u.sack.nsack;
    if (n > cap || m->u.sack.nsack > UX_MAX_SACK)
        return 0;
    put64(b, m->u.sack.cum);
    put32(b + 8, m->u.sack.window);
    put32(b + 12, m->u.sack.echo);
    b[16] = m->u.sack.flags;
    b[17] = m->u.sack.nsack;
    for (unsigned i = 0; i < m->u.sack.nsack; i++) {
        put64(b + 18 + 16 * i, m->u.sack.sack[i].start);
        put64(b + 26 + 16 * i, m->u.sack.sack[i].end);
    }
    return n;
}

static size_t enc_sfin(const struct ux_msg *m, uint8_t *b, size_t cap)
{
    if (cap < 12 + UX_HASH_LEN)
        return 0;
    put32(b, m->u.sfin.txseq);
    put64(b + 4, m->u.sfin.length);
    memcpy(b + 12, m->u.sfin.sha256, UX_HASH_LEN);
    return 12 + UX_HASH_LEN;
}

size_t ux_encode(const struct ux_msg *m, uint8_t *buf, size_t cap)
{
    size_t body;
    if (cap < UX_HDR_LEN)
        return 0;
    uint8_t *b = buf + UX_HDR_LEN;
    size_t bcap = cap - UX_HDR_LEN;
    if (bcap > 0xffff)
        bcap = 0xffff;
    switch (m->type) {
    case UX_REQUEST: body = enc_request(m, b, bcap); break;
    case UX_OFFER: body = enc_offer(m, b, bcap); break;
    case UX_ERROR: body = enc_error(m, b, bcap); break;
    case UX_NEED: body = enc_need(m, b, bcap); break;
    case UX_CLOSE:
    case UX_S_CLOSE: body = enc_close(m, b, bcap); break;
    case UX_S_OPEN: body = enc_sopen(m, b, bcap); break;
    case UX_S_ACCEPT: body = enc_saccept(m, b, bcap); break;
    case UX_S_ACK: body = enc_sack(m, b, bcap); break;
    case UX_S_FIN: body = enc_sfin(m, b, bcap); break;
    default: return 0; /* DATA and S_DATA go through their header encoders */
    }
    if (body == 0)
        return 0;
    put_header(buf, m->type, m->type == UX_NEED ? (m->flags & UX_FLAG_TREE) : 0, m->xid, body);
    return UX_HDR_LEN + body;
}

static int dec_request(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 8)
        return -1;
    m->u.request.chunk_size = get32(b);
    m->u.request.kind = b[4];
    m->u.request.flags = b[5];
    m->u.request.name_len = get16(b + 6);
    size_t named = 8 + (size_t)m->u.request.name_len;
    m->u.request.sel_len = 0;
    m->u.request.sel = NULL;
    if (m->u.request.kind == UX_KIND_FILES) {
        if (named + 2 > n)
            return -1;
        m->u.request.sel_len = get16(b + named);
        m->u.request.sel = b + named + 2;
        named += 2 + (size_t)m->u.request.sel_len;
    }
    int keyed = (m->u.request.flags & UX_REQ_NONCE) != 0;
    if (named + (keyed ? UX_NC_LEN : 0) > n || m->u.request.name_len > UX_MAX_NAME ||
        m->u.request.kind > UX_KIND_FILES || (m->u.request.flags & ~(UX_REQ_TREE | UX_REQ_NONCE)))
        return -1;
    m->u.request.name = b + 8;
    if (keyed)
        memcpy(m->u.request.nonce, b + named, UX_NC_LEN);
    return 0;
}

static int dec_offer(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < OFFER_LEN)
        return -1;
    m->u.offer.flags = b[OFFER_LEN - 1];
    size_t rooted = OFFER_LEN + (m->u.offer.flags & UX_OFFER_TREE ? UX_HASH_LEN : 0);
    if ((m->u.offer.flags & ~(UX_OFFER_TREE | UX_OFFER_NONCE)) ||
        n != rooted + (m->u.offer.flags & UX_OFFER_NONCE ? UX_NC_LEN : 0))
        return -1;
    if (m->u.offer.flags & UX_OFFER_NONCE)
        memcpy(m->u.offer.nonce, b + rooted, UX_NC_LEN);
    m->u.offer.size = get64(b);
    m->u.offer.chunk_size = get32(b + 8);
    m->u.offer.chunk_count = get32(b + 12);
    m->u.offer.handle = get32(b + 16);
    memcpy(m->u.offer.sha256, b + 20, UX_HASH_LEN);
    memcpy(m->u.offer.cookie, b + 20 + UX_HASH_LEN, UX_COOKIE_LEN);
    if (m->u.offer.flags & UX_OFFER_TREE)
        memcpy(m->u.offer.root, b + OFFER_LEN, UX_HASH_LEN);
    /* An offer whose numbers disagree is corrupt: never act on it. (Files
     * laid end to end take a chunk more each at most: layout.h.) */
    if (m->u.offer.chunk_size < UX_MIN_CHUNK || m->u.offer.chunk_size > UX_MAX_CHUNK ||
        ux_chunk_count(m->u.offer.size, m->u.offer.chunk_size) > m->u.offer.chunk_count)
        return -1;
    return 0;
}

static int dec_error(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 4)
        return -1;
    m->u.error.code = get16(b);
    m->u.error.text_len = get16(b + 2);
    if (m->u.error.text_len != n - 4)
        return -1;
    m->u.error.text = b + 4;
    return 0;
}

static int dec_need(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 8 + UX_COOKIE_LEN + 10)
        return -1;
    m->u.need.handle = get32(b);
    m->u.need.chunk_size = get32(b + 4);
    memcpy(m->u.need.cookie, b + 8, UX_COOKIE_LEN);
    b += 8 + UX_COOKIE_LEN;
    n -= 8 + UX_COOKIE_LEN;
    m->u.need.seq = get32(b);
    m->u.need.rate_kib = get32(b + 4);
    m->u.need.nranges = get16(b + 8);
    if (m->u.need.nranges > UX_MAX_RANGES || n != 10 + 8 * (size_t)m->u.need.nranges)
        return -1;
    for (unsigned i = 0; i < m->u.need.nranges; i++) {
        m->u.need.ranges[i].first = get32(b + 10 + 8 * i);
        m->u.need.ranges[i].count = get32(b + 14 + 8 * i);
    }
    return 0;
}

static int dec_data(const uint8_t *b, size_t n, struct ux_msg *m)
{
    size_t head = ux_data_overhead(m->flags) - UX_HDR_LEN;
    if (n < head)
        return -1;
    m->u.data.seq = get32(b);
    m->u.data.index = get32(b + 4);
    m->u.data.hash = m->flags & UX_FLAG_BARE ? NULL : b + 8;
    m->u.data.data = b + head;
    m->u.data.len = n - head;
    return 0;
}

static int dec_close(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n != 2)
        return -1;
    m->u.close.reason = get16(b);
    return 0;
}

static int dec_sopen(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < UX_OPEN_MIN - UX_HDR_LEN)
        return -1; /* unpadded: could be used to amplify */
    m->u.sopen.mss = get16(b);
    m->u.sopen.flags = b[2];
    memcpy(m->u.sopen.cookie, b + 3, UX_COOKIE_LEN);
    memcpy(m->u.sopen.nonce, b + 3 + UX_COOKIE_LEN, UX_NC_LEN);
    return m->u.sopen.flags & ~(UX_SO_COOKIE | UX_SO_NONCE) ? -1 : 0;
}

static int dec_saccept(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 11 + UX_COOKIE_LEN || n != (size_t)(11 + UX_COOKIE_LEN + (b[10] & UX_SA_NONCE ? UX_NC_LEN : 0)))
        return -1;
    m->u.saccept.mss = get16(b);
    m->u.saccept.window = get32(b + 2);
    m->u.saccept.idle_ms = get32(b + 6);
    m->u.saccept.flags = b[10];
    memcpy(m->u.saccept.cookie, b + 11, UX_COOKIE_LEN);
    if (m->u.saccept.flags & UX_SA_NONCE)
        memcpy(m->u.saccept.nonce, b + 11 + UX_COOKIE_LEN, UX_NC_LEN);
    return m->u.saccept.flags & ~(UX_SA_COOKIE | UX_SA_NONCE) ? -1 : 0;
}

static int dec_sdata(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 12 + UX_HASH_LEN)
        return -1;
    m->u.sdata.txseq = get32(b);
    m->u.sdata.off = get64(b + 4);
    m->u.sdata.hash = b + 12;
    m->u.sdata.data = b + 12 + UX_HASH_LEN;
    m->u.sdata.len = n - 12 - UX_HASH_LEN;
    if (m->u.sdata.off > UINT64_MAX / 2)
        return -1; /* offsets stay far from overflow */
    return 0;
}

/* SACK spans must be non-empty, ascending, disjoint and above cum. */
static int dec_sack(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n < 18)
        return -1;
    m->u.sack.cum = get64(b);
    m->u.sack.window = get32(b + 8);
    m->u.sack.echo = get32(b + 12);
    m->u.sack.flags = b[16];
    m->u.sack.nsack = b[17];
    if (m->u.sack.nsack > UX_MAX_SACK || n != 18 + 16 * (size_t)m->u.sack.nsack ||
        m->u.sack.cum > UINT64_MAX / 2 || (m->u.sack.flags & ~UX_SACK_FIN))
        return -1;
    uint64_t floor = m->u.sack.cum;
    for (unsigned i = 0; i < m->u.sack.nsack; i++) {
        struct ux_span *s = &m->u.sack.sack[i];
        s->start = get64(b + 18 + 16 * i);
        s->end = get64(b + 26 + 16 * i);
        if (s->start <= floor || s->end <= s->start || s->end > UINT64_MAX / 2)
            return -1;
        floor = s->end;
    }
    return 0;
}

static int dec_sfin(const uint8_t *b, size_t n, struct ux_msg *m)
{
    if (n != 12 + UX_HASH_LEN)
        return -1;
    m->u.sfin.txseq = get32(b);
    m->u.sfin.length = get64(b + 4);
    memcpy(m->u.sfin.sha256, b + 12, UX_HASH_LEN);
    return m->u.sfin.length > UINT64_MAX / 2 ? -1 : 0;
}

int ux_decode(const uint8_t *buf, size_t len, struct ux_msg *m)
{
    if (len < UX_HDR_LEN || buf[0] != UX_MAGIC0 || buf[1] != UX_MAGIC1 || buf[2] != UX_VERSION)
        return -1;
    m->type = buf[3];
    m->flags = buf[4];
    /* A sealed datagram is opened first (seal.h): here it is refused;
     * only NEED and DATA name tree nodes. */
    uint8_t allowed = m->type == UX_NEED ? UX_FLAG_TREE : m->type == UX_DATA ? UX_FLAG_TREE | UX_FLAG_BARE : 0;
    if ((m->flags & ~allowed) || buf[5] != 0)
        return -1;
    size_t body = get16(buf + 6);
    if (body != len - UX_HDR_LEN)
        return -1; /* truncated or padded: refuse */
    m->xid = get64(buf + 8);
    const uint8_t *b = buf + UX_HDR_LEN;
    switch (m->type) {
    case UX_REQUEST: return dec_request(b, body, m);
    case UX_OFFER: return dec_offer(b, body, m);
    case UX_ERROR: return dec_error(b, body, m);
    case UX_NEED: return dec_need(b, body, m);
    case UX_DATA: return dec_data(b, body, m);
    case UX_CLOSE:
    case UX_S_CLOSE: return dec_close(b, body, m);
    case UX_S_OPEN: return dec_sopen(b, body, m);
    case UX_S_ACCEPT: return dec_saccept(b, body, m);
    case UX_S_DATA: return dec_sdata(b, body, m);
    case UX_S_ACK: return dec_sack(b, body, m);
    case UX_S_FIN: return dec_sfin(b, body, m);
    default: return -1;
    }
}

uint64_t ux_wire_xid(const uint8_t *p, size_t len)
{
    if (len < UX_HDR_LEN || p[0] != UX_MAGIC0 || p[1] != UX_MAGIC1)
        return 0;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | p[i];
    return x;
}
