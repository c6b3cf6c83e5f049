/* Client engine, shared-key mode: requests sealed with the discovery key,
 * NEED and CLOSE with each server's transfer key (the client's nonce in
 * clear, so a server finds the key without state), and nothing heard that
 * does not open. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#define PLAIN_CAP (UX_HDR_LEN + 65536)

int uxc_keys_init(struct ux_client *c)
{
    if (!c->cfg.key)
        return 0;
    c->keyed = 1;
    c->plain = malloc(PLAIN_CAP);
    if (!c->plain || ux_keyring_init(&c->keys, c->cfg.key) || ux_rng_fill(&c->cfg.rng, c->nc, sizeof c->nc))
        return -1;
    return 0;
}

void uxc_keys_free(struct ux_client *c)
{
    if (!c->keyed)
        return;
    for (int i = 0; i < c->npeers; i++) {
        ux_aead_free(c->peers[i].aead);
        c->peers[i].aead = NULL;
    }
    ux_keyring_free(&c->keys);
    free(c->plain);
    c->plain = NULL;
    c->keyed = 0;
}

int uxc_peer_key(struct ux_client *c, struct ux_peer *p, const uint8_t ns[UX_NC_LEN])
{
    if (p->aead)
        return 0;
    p->aead = ux_session_key(&c->keys, "transfer", c->xid, c->nc, ns);
    return p->aead ? 0 : -1;
}

static struct ux_peer *peer_at(struct ux_client *c, const struct ux_addr *a)
{
    for (int i = 0; i < c->npeers; i++)
        if (ux_addr_equal(&c->peers[i].addr, a))
            return &c->peers[i];
    return NULL;
}

const uint8_t *uxc_unseal(struct ux_client *c, const uint8_t *pkt, size_t *len, const struct ux_addr *from)
{
    struct ux_sealed sp;
    c->sealed_by = NULL;
    if (ux_sealed_parts(pkt, *len, &sp) || sp.nc)
        return NULL;
    struct ux_aead *a = c->keys.disc;
    struct ux_peer *p = NULL;
    if (sp.flags & UX_FLAG_SESSION) {
        p = peer_at(c, from);
        if (!p || !p->aead || sp.dir != UX_DIR_SERVER || !ux_replay_fresh(&p->replay, sp.pn))
            return NULL;
        a = p->aead;
    }
    size_t n = ux_open(a, pkt, *len, c->plain, PLAIN_CAP);
    if (!n) {
        c->keys.failed++;
        return NULL;
    }
    /* The discovery key only answers requests. */
    if (!p && c->plain[3] != UX_OFFER && c->plain[3] != UX_ERROR)
        return NULL;
    c->sealed_by = p;
    c->sealed_pn = sp.pn;
    *len = n;
    return c->plain;
}

void uxc_unsealed_taken(struct ux_client *c)
{
    if (c->sealed_by)
        ux_replay_mark(&c->sealed_by->replay, c->sealed_pn);
    c->sealed_by = NULL;
}

size_t uxc_seal(struct ux_client *c, uint8_t *buf, size_t len, size_t cap, const struct ux_addr *to)
{
    if (buf[3] == UX_REQUEST)
        return ux_seal_discovery(&c->keys, &c->cfg.rng, buf, len, cap);
    struct ux_peer *p = peer_at(c, to);
    if (!p || !p->aead)
        return 0;
    uint8_t nonce[UX_NONCE_LEN];
    ux_session_nonce(nonce, UX_DIR_CLIENT, ++c->pn);
    return ux_seal_msg(p->aead, buf, len, cap, nonce, c->nc, UX_FLAG_SESSION);
}
