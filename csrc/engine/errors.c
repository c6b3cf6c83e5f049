#include "errors.h"

static const char *const names[UX_ERR_COUNT] = {
    [UX_OK] = "ok",
    [UX_ERR_NOSERVER] = "noserver",
    [UX_ERR_NOTFOUND] = "notfound",
    [UX_ERR_REFUSED] = "refused",
    [UX_ERR_VERSION] = "version",
    [UX_ERR_STALE] = "stale",
    [UX_ERR_CORRUPT] = "corrupt",
    [UX_ERR_TIMEOUT] = "timeout",
    [UX_ERR_BROKEN] = "broken",
    [UX_ERR_BUSY] = "busy",
    [UX_ERR_IO] = "io",
    [UX_ERR_USAGE] = "usage",
    [UX_ERR_INUSE] = "inuse",
    [UX_ERR_CLOSED] = "closed",
    [UX_ERR_PENDING] = "pending",
    [UX_ERR_UNSAFE] = "unsafe",
};

const char *ux_err_name(int code)
{
    return code >= 0 && code < UX_ERR_COUNT && names[code] ? names[code] : "error";
}

void ux_printable(char *out, size_t cap, const uint8_t *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = in[i];
        int plain = b >= 0x20 && b < 0x7f && b != '\\';
        if (o + (plain ? 1 : 4) >= cap)
            break;
        if (plain) {
            out[o++] = (char)b;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 15];
        }
    }
    out[o] = 0;
}
