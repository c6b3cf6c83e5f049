#include "legacy.h"

#include <stdio.h>
#include <string.h>

#include "hash.h"

int ux_legacy_parse_get(const uint8_t *p, size_t n, const uint8_t **name, size_t *len)
{
    if (n <= 4 || memcmp(p, "get ", 4) != 0)
        return -1;
    *name = p + 4;
    *len = n - 4;
    return 0;
}

size_t ux_legacy_encode_get(uint8_t *buf, size_t cap, const char *name, size_t len)
{
    if (len + 4 > cap)
        return 0;
    memcpy(buf, "get ", 4);
    memcpy(buf + 4, name, len);
    return len + 4;
}

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int ux_legacy_parse_except(const uint8_t *p, size_t n, uint32_t *count, uint8_t sha[32])
{
    static const char pre[] = "except ", mid[] = " chunks ";
    size_t i = sizeof pre - 1;
    uint64_t v = 0;
    if (n < i || memcmp(p, pre, i) != 0)
        return -1;
    size_t digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9' && digits < 10; i++, digits++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    if (digits == 0 || v > UINT32_MAX || n - i != sizeof mid - 1 + 64 || memcmp(p + i, mid, sizeof mid - 1))
        return -1;
    i += sizeof mid - 1;
    for (int k = 0; k < 32; k++) {
        int hi = hexval(p[i + 2 * k]), lo = hexval(p[i + 2 * k + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        sha[k] = (uint8_t)(hi << 4 | lo);
    }
    *count = (uint32_t)v;
    return 0;
}

size_t ux_legacy_encode_except(uint8_t *buf, size_t cap, uint32_t count, const uint8_t sha[32])
{
    char hex[65];
    ux_hex(sha, 32, hex);
    int n = snprintf((char *)buf, cap, "except %u chunks %s", count, hex);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ux_legacy_parse_chunk(const uint8_t *p, size_t n, uint32_t *index, const uint8_t **data,
                          size_t *len, const uint8_t **hash)
{
    if (n < UX_LEGACY_OVERHEAD)
        return -1;
    *index = get32(p);
    *len = get32(p + 4);
    if (*len > UX_LEGACY_CHUNK || *len != n - UX_LEGACY_OVERHEAD)
        return -1;
    *data = p + 8;
    *hash = p + 8 + *len;
    return 0;
}

void ux_legacy_chunk_header(uint8_t *buf, uint32_t index, uint32_t len)
{
    for (int k = 0; k < 4; k++) {
        buf[k] = (uint8_t)(index >> (24 - 8 * k));
        buf[4 + k] = (uint8_t)(len >> (24 - 8 * k));
    }
}
