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
