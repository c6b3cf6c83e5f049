/* Peer addresses as plain values: engines compare and store them, only the
 * socket layer sends to them. */
#ifndef UDPXFER_ADDR_H
#define UDPXFER_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

struct ux_addr {
    socklen_t len;
    struct sockaddr_storage ss;
};

int ux_addr_equal(const struct ux_addr *a, const struct ux_addr *b);
/* "1.2.3.4:5" or "[::1]:5"; returns 0, or -1 if it does not parse. */
int ux_addr_parse(const char *s, int default_port, struct ux_addr *out);
void ux_addr_format(const struct ux_addr *a, char *out, size_t cap);
/* Bytes that identify the address (family, IP, port), for cookies. */
size_t ux_addr_key(const struct ux_addr *a, unsigned char *out /* 20 */);
/* The same without the port: the host, for votes and per-client limits. */
size_t ux_addr_host_key(const struct ux_addr *a, unsigned char *out /* 20 */);
int ux_addr_same_host(const struct ux_addr *a, const struct ux_addr *b);

#endif
