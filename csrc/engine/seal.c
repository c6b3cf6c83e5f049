#include "seal.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#define AAD_MAX (UX_HDR_LEN + UX_NONCE_LEN + UX_NC_LEN)

/* One context each way, the key set once; each datagram only sets its IV. */
struct ux_aead {
    EVP_CIPHER_CTX *enc, *dec;
    EVP_CIPHER *cipher;
};

void ux_aead_free(struct ux_aead *a)
{
    if (!a)
        return;
    EVP_CIPHER_CTX_free(a->enc);
    EVP_CIPHER_CTX_free(a->dec);
    EVP_CIPHER_free(a->cipher);
    OPENSSL_free(a);
}

struct ux_aead *ux_aead_new(const uint8_t key[UX_KEY_LEN])
{
    struct ux_aead *a = OPENSSL_zalloc(sizeof *a);
    if (!a)
        return NULL;
    a->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    a->enc = EVP_CIPHER_CTX_new();
    a->dec = EVP_CIPHER_CTX_new();
    if (!a->cipher || !a->enc || !a->dec || EVP_EncryptInit_ex2(a->enc, a->cipher, key, NULL, NULL) != 1 ||
        EVP_DecryptInit_ex2(a->dec, a->cipher, key, NULL, NULL) != 1) {
        ux_aead_free(a);
        return NULL;
    }
    return a;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

size_t ux_seal(struct ux_aead *a, uint8_t *buf, size_t body, size_t cap, const uint8_t nonce[UX_NONCE_LEN],
               const uint8_t *nc, uint8_t flags)
{
    size_t hole = ux_seal_hole(nc != NULL), at = UX_HDR_LEN + hole;
    size_t total = at + body + UX_TAG_LEN;
    if (total > cap || body > 0xffff)
        return 0;
    buf[4] = (uint8_t)((buf[4] & ~(UX_FLAG_SESSION | UX_FLAG_NC)) | UX_FLAG_AUTH | flags | (nc ? UX_FLAG_NC : 0));
    put16(buf + 6, (uint16_t)body);
    memcpy(buf + UX_HDR_LEN, nonce, UX_NONCE_LEN);
    if (nc)
        memcpy(buf + UX_HDR_LEN + UX_NONCE_LEN, nc, UX_NC_LEN);
    int n = 0;
    if (EVP_EncryptInit_ex2(a->enc, NULL, NULL, nonce, NULL) != 1 ||
        EVP_EncryptUpdate(a->enc, NULL, &n, buf, (int)at) != 1 ||
        EVP_EncryptUpdate(a->enc, buf + at, &n, buf + at, (int)body) != 1 ||
        EVP_EncryptFinal_ex(a->enc, buf + at + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, UX_TAG_LEN, buf + at + body) != 1)
        return 0;
    return total;
}

size_t ux_seal_msg(struct ux_aead *a, uint8_t *buf, size_t len, size_t cap, const uint8_t nonce[UX_NONCE_LEN],
                   const uint8_t *nc, uint8_t flags)
{
    size_t hole = ux_seal_hole(nc != NULL);
    if (len < UX_HDR_LEN || len + hole + UX_TAG_LEN > cap)
        return 0;
    memmove(buf + UX_HDR_LEN + hole, buf + UX_HDR_LEN, len - UX_HDR_LEN);
    return ux_seal(a, buf, len - UX_HDR_LEN, cap, nonce, nc, flags);
}

int ux_sealed_parts(const uint8_t *in, size_t len, struct ux_sealed *out)
{
    if (len < UX_HDR_LEN + UX_NONCE_LEN + UX_TAG_LEN || in[0] != UX_MAGIC0 || in[1] != UX_MAGIC1 ||
        in[2] != UX_VERSION || !(in[4] & UX_FLAG_AUTH))
        return -1;
    out->flags = in[4];
    out->nonce = in + UX_HDR_LEN;
    out->nc = (in[4] & UX_FLAG_NC) ? in + UX_HDR_LEN + UX_NONCE_LEN : NULL;
    size_t hole = ux_seal_hole(out->nc != NULL), body = (size_t)in[6] << 8 | in[7];
    if (len != UX_HDR_LEN + hole + body + UX_TAG_LEN)
        return -1;
    out->dir = out->nonce[0];
    out->pn = 0;
    for (int i = 4; i < UX_NONCE_LEN; i++)
        out->pn = out->pn << 8 | out->nonce[i];
    return 0;
}

size_t ux_open(struct ux_aead *a, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    struct ux_sealed p;
    if (ux_sealed_parts(in, len, &p))
        return 0;
    size_t at = UX_HDR_LEN + ux_seal_hole(p.nc != NULL), body = len - at - UX_TAG_LEN;
    if (UX_HDR_LEN + body > cap)
        return 0;
    uint8_t tag[UX_TAG_LEN];
    memcpy(tag, in + len - UX_TAG_LEN, UX_TAG_LEN);
    int n = 0;
    if (EVP_DecryptInit_ex2(a->dec, NULL, NULL, p.nonce, NULL) != 1 ||
        EVP_DecryptUpdate(a->dec, NULL, &n, in, (int)at) != 1 ||
        EVP_DecryptUpdate(a->dec, out + UX_HDR_LEN, &n, in + at, (int)body) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, UX_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(a->dec, out + UX_HDR_LEN + n, &n) != 1)
        return 0;
    memcpy(out, in, UX_HDR_LEN);
    out[4] &= (uint8_t)~(UX_FLAG_AUTH | UX_FLAG_SESSION | UX_FLAG_NC);
    return UX_HDR_LEN + body;
}

int ux_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const uint8_t *info,
            size_t info_len, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!ctx)
        return -1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? 0 : -1;
}

void ux_session_nonce(uint8_t out[UX_NONCE_LEN], uint8_t dir, uint64_t pn)
{
    out[0] = dir;
    out[1] = out[2] = out[3] = 0;
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(pn >> (56 - 8 * i));
}

int ux_replay_fresh(const struct ux_replay *r, uint64_t pn)
{
    if (!r->any || pn > r->top)
        return 1;
    uint64_t back = r->top - pn;
    return back < 64 && !((r->seen >> back) & 1);
}

void ux_replay_mark(struct ux_replay *r, uint64_t pn)
{
    if (!r->any) {
        r->any = 1;
        r->top = pn;
        r->seen = 1;
    } else if (pn > r->top) {
        uint64_t shift = pn - r->top;
        r->seen = shift >= 64 ? 1 : (r->seen << shift) | 1;
        r->top = pn;
    } else if (r->top - pn < 64) {
        r->seen |= (uint64_t)1 << (r->top - pn);
    }
}

int ux_keyring_init(struct ux_keyring *k, const uint8_t key[UX_KEY_LEN])
{
    static const char salt[] = "udpxfer/4", info[] = "discovery";
    uint8_t d[UX_KEY_LEN];
    memset(k, 0, sizeof *k);
    memcpy(k->key, key, UX_KEY_LEN);
    if (ux_hkdf(key, UX_KEY_LEN, (const uint8_t *)salt, sizeof salt - 1, (const uint8_t *)info, sizeof info - 1,
                d, sizeof d))
        return -1;
    k->disc = ux_aead_new(d);
    OPENSSL_cleanse(d, sizeof d);
    return k->disc ? 0 : -1;
}

void ux_keyring_free(struct ux_keyring *k)
{
    ux_aead_free(k->disc);
    OPENSSL_cleanse(k->key, sizeof k->key);
    k->disc = NULL;
}

struct ux_aead *ux_session_key(const struct ux_keyring *k, const char *label, uint64_t id,
                               const uint8_t nc[UX_NC_LEN], const uint8_t ns[UX_NC_LEN])
{
    uint8_t salt[2 * UX_NC_LEN], info[32], key[UX_KEY_LEN];
    size_t n = strlen(label);
    if (n > sizeof info - 8)
        return NULL;
    memcpy(salt, nc, UX_NC_LEN);
    memcpy(salt + UX_NC_LEN, ns, UX_NC_LEN);
    memcpy(info, label, n);
    for (int i = 0; i < 8; i++)
        info[n + (size_t)i] = (uint8_t)(id >> (56 - 8 * i));
    if (ux_hkdf(k->key, UX_KEY_LEN, salt, sizeof salt, info, n + 8, key, sizeof key))
        return NULL;
    struct ux_aead *a = ux_aead_new(key);
    OPENSSL_cleanse(key, sizeof key);
    return a;
}

size_t ux_seal_discovery(struct ux_keyring *k, struct ux_rng *rng, uint8_t *buf, size_t len, size_t cap)
{
    uint8_t nonce[UX_NONCE_LEN];
    if (ux_rng_fill(rng, nonce, sizeof nonce))
        return 0;
    return ux_seal_msg(k->disc, buf, len, cap, nonce, NULL, 0);
}
