#include "names.h"

#include <string.h>

#include "wire.h"

int ux_name_check(const char *name, size_t len)
{
    if (len == 0 || len > UX_MAX_NAME || memchr(name, 0, len) || name[0] == '/')
        return UX_E_REFUSED;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || (n == 1 && name[start] == '.') ||
            (n == 2 && name[start] == '.' && name[start + 1] == '.'))
            return UX_E_REFUSED;
        start = i + 1;
    }
    return 0;
}

int ux_name_is_own(const char *base, size_t len)
{
    static const char tag[] = ".udpxfer-";
    const size_t t = sizeof tag - 1;
    if (len >= t && memcmp(base, tag, t) == 0)
        return 1;
    if (len < 1 + t + 8 || base[0] != '.' || memcmp(base + len - 8 - t, tag, t))
        return 0;
    for (size_t i = len - 8; i < len; i++)
        if (!((base[i] >= '0' && base[i] <= '9') || (base[i] >= 'a' && base[i] <= 'f')))
            return 0;
    return 1;
}
