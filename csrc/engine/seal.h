/* Shared-key mode: every datagram authenticated and encrypted with
 * AES-256-GCM (OpenSSL EVP). Computation only, no I/O.
 *
 * A sealed datagram is the 16-byte header in clear (flags UX_FLAG_AUTH,
 * and UX_FLAG_SESSION when a transfer's or stream's own key seals it),
 * a 12-byte nonce, for UX_FLAG_NC the client's 16-byte nonce (how a server
 * finds a transfer's key without state), the body encrypted, and a 16-byte
 * tag; header, nonce and client nonce are its associated data.
 *
 * Keys: the discovery key is HKDF(shared key, "udpxfer/4 discovery") and
 * seals requests, offers and their errors under random nonces; a
 * transfer's or stream's key is HKDF(shared key, salt = client nonce ||
 * server nonce, info = label || id), and seals the rest under nonces made
 * of a direction byte and a packet number that never repeats. */
#ifndef UDPXFER_SEAL_H
#define UDPXFER_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "wire.h"

#define UX_KEY_LEN 32

struct ux_aead; /* a key ready for sealing and opening */

struct ux_aead *ux_aead_new(const uint8_t key[UX_KEY_LEN]);
void ux_aead_free(struct ux_aead *a);

/* Seal in place. BUF holds the header (16 bytes), room for the nonce
 * (UX_NONCE_LEN, then UX_NC_LEN more if NC), then BODY bytes of plaintext.
 * Writes NONCE (and NC), sets FLAGS (UX_FLAG_SESSION or 0) with
 * UX_FLAG_AUTH, encrypts the body and appends the tag. Returns the
 * datagram's length, or 0 if CAP is too small or the cipher fails. */
size_t ux_seal(struct ux_aead *a, uint8_t *buf, size_t body, size_t cap, const uint8_t nonce[UX_NONCE_LEN],
               const uint8_t *nc, uint8_t flags);

/* Where a sealed datagram's plaintext body starts: after the nonces. */
static inline size_t ux_seal_hole(int nc) { return UX_NONCE_LEN + (nc ? UX_NC_LEN : 0); }

/* Seal a datagram encoded plainly at BUF (LEN bytes: header and body),
 * moving its body up to make room. As ux_seal otherwise. */
size_t ux_seal_msg(struct ux_aead *a, uint8_t *buf, size_t len, size_t cap, const uint8_t nonce[UX_NONCE_LEN],
                   const uint8_t *nc, uint8_t flags);

/* The clear parts of a sealed datagram, or -1 if IN is not one. */
struct ux_sealed {
    uint8_t flags;
    const uint8_t *nonce, *nc; /* nc: NULL without UX_FLAG_NC */
    uint64_t pn;               /* the packet number in a session nonce */
    uint8_t dir;               /* and its direction byte */
};
int ux_sealed_parts(const uint8_t *in, size_t len, struct ux_sealed *out);

/* Open IN into OUT as a plain datagram (header, with the seal flags
 * cleared, and body), ready for ux_decode. Returns its length, or 0 if it
 * fails authentication or does not fit. */
size_t ux_open(struct ux_aead *a, const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* HKDF-SHA256. Returns 0 or -1. */
int ux_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len, const uint8_t *info,
            size_t info_len, uint8_t *out, size_t out_len);

/* A session nonce: direction, three zero bytes, the packet number. */
enum { UX_DIR_CLIENT = 1, UX_DIR_SERVER = 2, UX_DIR_SENDER = 3, UX_DIR_RECEIVER = 4 };
void ux_session_nonce(uint8_t out[UX_NONCE_LEN], uint8_t dir, uint64_t pn);

/* Replays: the highest packet number seen and which of the 64 below it. */
struct ux_replay {
    uint64_t top;
    uint64_t seen;
    int any;
};
/* Is PN new (not seen, not too old)? */
int ux_replay_fresh(const struct ux_replay *r, uint64_t pn);
void ux_replay_mark(struct ux_replay *r, uint64_t pn);

/* The shared key, its discovery key, and how session keys come from it. */
struct ux_keyring {
    uint8_t key[UX_KEY_LEN];
    struct ux_aead *disc;
    uint64_t failed; /* datagrams that did not authenticate */
};
int ux_keyring_init(struct ux_keyring *k, const uint8_t key[UX_KEY_LEN]);
void ux_keyring_free(struct ux_keyring *k);
/* A session's key: LABEL ("transfer" or "stream"), the id, both nonces. */
struct ux_aead *ux_session_key(const struct ux_keyring *k, const char *label, uint64_t id,
                               const uint8_t nc[UX_NC_LEN], const uint8_t ns[UX_NC_LEN]);
/* Seal with the discovery key under a random nonce from RNG. */
size_t ux_seal_discovery(struct ux_keyring *k, struct ux_rng *rng, uint8_t *buf, size_t len, size_t cap);

#endif
