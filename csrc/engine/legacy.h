/* The original tool's wire format (seed 000), for interoperating with it:
 *   request:  the text "get NAME"
 *   reply:    the text "except COUNT chunks SHA256HEX"
 *   chunk:    struct.pack('!II{n}s32s', index, n, data, sha256(data))
 * Pure functions over byte buffers, like wire.c. */
#ifndef UDPXFER_LEGACY_H
#define UDPXFER_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#define UX_LEGACY_CHUNK 1024
#define UX_LEGACY_OVERHEAD (8 + 32)

/* Returns 0 and the name if P is a "get NAME" request. */
int ux_legacy_parse_get(const uint8_t *p, size_t n, const uint8_t **name, size_t *len);
size_t ux_legacy_encode_get(uint8_t *buf, size_t cap, const char *name, size_t len);

int ux_legacy_parse_except(const uint8_t *p, size_t n, uint32_t *count, uint8_t sha[32]);
size_t ux_legacy_encode_except(uint8_t *buf, size_t cap, uint32_t count, const uint8_t sha[32]);

/* A chunk datagram: its index, data and trailing hash (not yet verified). */
int ux_legacy_parse_chunk(const uint8_t *p, size_t n, uint32_t *index, const uint8_t **data,
                          size_t *len, const uint8_t **hash);
void ux_legacy_chunk_header(uint8_t *buf, uint32_t index, uint32_t len);

#endif
