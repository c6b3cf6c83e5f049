#include "hash.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Each context holds its own fetched digest: an implicit fetch per
 * EVP_DigestInit costs a lock and a lookup, and one shared by the process
 * would be a global that outlives OpenSSL's own cleanup at exit. */
struct ux_sha {
    EVP_MD_CTX *ctx;
    EVP_MD *md;
};

struct ux_sha *ux_sha_new(void)
{
    struct ux_sha *s = OPENSSL_zalloc(sizeof *s);
    if (!s)
        return NULL;
    s->ctx = EVP_MD_CTX_new();
    s->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!s->ctx || !s->md) {
        ux_sha_free(s);
        return NULL;
    }
    return s;
}

void ux_sha_free(struct ux_sha *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->ctx);
    EVP_MD_free(s->md);
    OPENSSL_free(s);
}

int ux_sha_init(struct ux_sha *s)
{
    return EVP_DigestInit_ex2(s->ctx, s->md, NULL) == 1 ? 0 : -1;
}

int ux_sha_update(struct ux_sha *s, const void *p, size_t n)
{
    return EVP_DigestUpdate(s->ctx, p, n) == 1 ? 0 : -1;
}

int ux_sha_final(struct ux_sha *s, uint8_t out[UX_SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_DigestFinal_ex(s->ctx, out, &n) == 1 && n == UX_SHA256_LEN ? 0 : -1;
}

int ux_chunk_hash(struct ux_sha *s, uint32_t index, const uint8_t *data, size_t len,
                  uint8_t out[UX_SHA256_LEN])
{
    uint8_t be[4] = {(uint8_t)(index >> 24), (uint8_t)(index >> 16), (uint8_t)(index >> 8),
                     (uint8_t)index};
    if (ux_sha_init(s) || ux_sha_update(s, be, 4) || ux_sha_update(s, data, len))
        return -1;
    return ux_sha_final(s, out);
}

int ux_segment_hash(struct ux_sha *s, uint64_t conn, uint64_t off, const uint8_t *data,
                    size_t len, uint8_t out[UX_SHA256_LEN])
{
    uint8_t be[16];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)(conn >> (56 - 8 * i));
        be[8 + i] = (uint8_t)(off >> (56 - 8 * i));
    }
    if (ux_sha_init(s) || ux_sha_update(s, be, 16) || ux_sha_update(s, data, len))
        return -1;
    return ux_sha_final(s, out);
}

int ux_hmac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen,
            uint8_t *out, size_t outlen)
{
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, full, &n) || n < outlen)
        return -1;
    memcpy(out, full, outlen);
    return 0;
}

int ux_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void ux_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}
