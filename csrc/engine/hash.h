/* SHA-256 and HMAC from OpenSSL's EVP: computation only, no I/O. */
#ifndef UDPXFER_HASH_H
#define UDPXFER_HASH_H

#include <stddef.h>
#include <stdint.h>

#define UX_SHA256_LEN 32

struct ux_sha;  /* a reusable SHA-256 context */

struct ux_sha *ux_sha_new(void);
void ux_sha_free(struct ux_sha *s);
int ux_sha_init(struct ux_sha *s);
int ux_sha_update(struct ux_sha *s, const void *p, size_t n);
int ux_sha_final(struct ux_sha *s, uint8_t out[UX_SHA256_LEN]);

/* SHA-256 of a chunk, bound to its index: H(be32(index) || data).
 * Binding the index means a chunk delivered under the wrong number fails. */
int ux_chunk_hash(struct ux_sha *s, uint32_t index, const uint8_t *data, size_t len,
                  uint8_t out[UX_SHA256_LEN]);

/* SHA-256 of a stream segment, bound to its connection and offset:
 * H(be64(conn) || be64(offset) || data). */
int ux_segment_hash(struct ux_sha *s, uint64_t conn, uint64_t off, const uint8_t *data,
                    size_t len, uint8_t out[UX_SHA256_LEN]);

/* HMAC-SHA256 truncated to outlen bytes. */
int ux_hmac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen,
            uint8_t *out, size_t outlen);

/* Constant-time equality, for cookies. */
int ux_equal(const void *a, const void *b, size_t n);

void ux_hex(const uint8_t *in, size_t n, char *out /* 2n+1 */);

#endif
