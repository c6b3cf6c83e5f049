#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ux_addr_equal(const struct ux_addr *a, const struct ux_addr *b)
{
    unsigned char ka[20], kb[20];
    size_t na = ux_addr_key(a, ka), nb = ux_addr_key(b, kb);
    return na == nb && memcmp(ka, kb, na) == 0;
}

size_t ux_addr_key(const struct ux_addr *a, unsigned char *out)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        out[0] = 4;
        memcpy(out + 1, &s->sin_addr, 4);
        memcpy(out + 5, &s->sin_port, 2);
        return 7;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        out[0] = 6;
        memcpy(out + 1, &s->sin6_addr, 16);
        memcpy(out + 17, &s->sin6_port, 2);
        return 19;
    }
    out[0] = 0;
    return 1;
}

size_t ux_addr_host_key(const struct ux_addr *a, unsigned char *out)
{
    size_t n = ux_addr_key(a, out);
    return n > 2 ? n - 2 : n; /* the port is last */
}

int ux_addr_same_host(const struct ux_addr *a, const struct ux_addr *b)
{
    unsigned char ka[20], kb[20];
    size_t na = ux_addr_host_key(a, ka), nb = ux_addr_host_key(b, kb);
    return na == nb && memcmp(ka, kb, na) == 0;
}

static int parse_port(const char *p, int *port)
{
    char *end;
    long v = strtol(p, &end, 10);
    if (*p == 0 || *end != 0 || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int ux_addr_parse(const char *s, int default_port, struct ux_addr *out)
{
    char host[128];
    const char *port_s = NULL;
    int port = default_port;
    size_t n;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (size_t)(close - s - 1) >= sizeof host)
            return -1;
        n = (size_t)(close - s - 1);
        memcpy(host, s + 1, n);
        host[n] = 0;
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != 0)
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL; /* bare IPv6 */
        n = colon ? (size_t)(colon - s) : strlen(s);
        if (n >= sizeof host)
            return -1;
        memcpy(host, s, n);
        host[n] = 0;
        if (colon)
            port_s = colon + 1;
    }
    if (port_s && parse_port(port_s, &port))
        return -1;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *v6;
        return 0;
    }
    return -1;
}

void ux_addr_format(const struct ux_addr *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(s->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(s->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}
