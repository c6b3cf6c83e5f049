/* Stream mode with a shared key: OPEN and the cookie ACCEPT are sealed
 * with the discovery key and carry the two nonces; from the handshake's
 * end on, every segment, ack, FIN and CLOSE is sealed with the stream's
 * key under packet numbers, so nothing forged reaches the output and no
 * forged ack ends the sender. */
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define PLAIN_CAP (UX_HDR_LEN + 65536)

int ux_stream_keys_init(struct ux_stream_common *c, const uint8_t *key)
{
    if (!key)
        return 0;
    c->keyed = 1;
    c->plain = malloc(PLAIN_CAP);
    return !c->plain || ux_keyring_init(&c->keys, key) ? -1 : 0;
}

void ux_stream_keys_free(struct ux_stream_common *c)
{
    if (!c->keyed)
        return;
    ux_aead_free(c->aead);
    ux_keyring_free(&c->keys);
    free(c->plain);
    c->aead = NULL;
    c->plain = NULL;
    c->keyed = 0;
}

int ux_stream_derive(struct ux_stream_common *c, const uint8_t ns[UX_NC_LEN])
{
    if (c->aead)
        return 0;
    c->aead = ux_session_key(&c->keys, "stream", c->xid, c->nc, ns);
    memset(&c->replay, 0, sizeof c->replay);
    return c->aead ? 0 : -1;
}

const uint8_t *ux_stream_unseal(struct ux_stream_common *c, const uint8_t *pkt, size_t *len, uint8_t dir,
                                uint8_t disc_type, uint8_t disc_type2)
{
    struct ux_sealed sp;
    if (ux_sealed_parts(pkt, *len, &sp) || sp.nc)
        return NULL;
    struct ux_aead *a = c->keys.disc;
    int session = (sp.flags & UX_FLAG_SESSION) != 0;
    if (session) {
        if (!c->aead || sp.dir != dir || !ux_replay_fresh(&c->replay, sp.pn))
            return NULL;
        a = c->aead;
    } else if (pkt[3] != disc_type && pkt[3] != disc_type2) {
        return NULL;
    }
    size_t n = ux_open(a, pkt, *len, c->plain, PLAIN_CAP);
    if (!n) {
        c->keys.failed++;
        return NULL;
    }
    if (session)
        ux_replay_mark(&c->replay, sp.pn); /* stream input is never handed back */
    c->in_session = session;
    *len = n;
    return c->plain;
}

size_t ux_stream_seal(struct ux_stream_common *c, struct ux_rng *rng, uint8_t *buf, size_t len, size_t cap,
                      int disc, uint8_t dir)
{
    if (disc || !c->aead)
        return ux_seal_discovery(&c->keys, rng, buf, len, cap);
    uint8_t nonce[UX_NONCE_LEN];
    ux_session_nonce(nonce, dir, ++c->pn);
    return ux_seal_msg(c->aead, buf, len, cap, nonce, NULL, UX_FLAG_SESSION);
}
