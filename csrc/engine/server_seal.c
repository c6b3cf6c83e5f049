/* Server engine, shared-key mode: requests open with the discovery key,
 * and are answered with it; a NEED or CLOSE carries its client's nonce, so
 * its transfer key is found in its session or derived again (a server
 * nonce is a MAC of the client's: no state before a session). Every
 * session datagram out takes the next of one packet-number sequence. */
#include "server_int.h"

#include <stdlib.h>
#include <string.h>

#define PLAIN_CAP 4096 /* the largest request: a name of UX_MAX_NAME and padding */

int uxs_keys_init(struct ux_server *s)
{
    if (!s->cfg.key)
        return 0;
    if (s->cfg.legacy)
        return -1; /* the original protocol cannot be sealed */
    s->keyed = 1;
    s->plain = malloc(PLAIN_CAP);
    return !s->plain || ux_keyring_init(&s->keys, s->cfg.key) ? -1 : 0;
}

void uxs_keys_free(struct ux_server *s)
{
    if (!s->keyed)
        return;
    if (s->sessions)
        for (uint32_t i = 0; i < s->cfg.max_sessions; i++) {
            ux_aead_free(s->sessions[i].aead);
            s->sessions[i].aead = NULL;
        }
    if (s->in_owned)
        ux_aead_free(s->in_aead);
    s->in_aead = NULL;
    ux_keyring_free(&s->keys);
    free(s->plain);
    s->plain = NULL;
    s->keyed = 0;
}

int uxs_server_nonce(const struct ux_server *s, const uint8_t nc[UX_NC_LEN], uint64_t xid, uint8_t out[UX_NC_LEN])
{
    uint8_t msg[2 + UX_NC_LEN + 8] = {'n', 's'};
    memcpy(msg + 2, nc, UX_NC_LEN);
    memcpy(msg + 2 + UX_NC_LEN, &xid, 8);
    return ux_hmac(s->guard.secret, sizeof s->guard.secret, msg, sizeof msg, out, UX_NC_LEN);
}

static uint64_t xid_of(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | p[i];
    return x;
}

/* The transfer key for a session datagram: its session's, or derived
 * (rate-limited per host: each costs a key derivation). */
static struct ux_aead *session_key(struct ux_server *s, const struct ux_sealed *sp, uint64_t xid,
                                   const struct ux_addr *from, uint64_t now)
{
    struct ux_session *ss = uxs_find(s, from, xid);
    if (ss && ss->aead && !ss->legacy && memcmp(ss->nc, sp->nc, UX_NC_LEN) == 0) {
        if (!ux_replay_fresh(&ss->replay, sp->pn))
            return NULL;
        s->in_session = ss;
        return ss->aead;
    }
    uint8_t ns[UX_NC_LEN];
    if (!ux_guard_admit(&s->guard, from, now) || uxs_server_nonce(s, sp->nc, xid, ns))
        return NULL;
    s->in_owned = 1;
    return ux_session_key(&s->keys, "transfer", xid, sp->nc, ns);
}

/* A datagram from FROM failed authentication: counted, and reported when due. */
static void unauthentic(struct ux_server *s, const struct ux_addr *from, int keyless, uint64_t now)
{
    struct ux_authlog_report r;
    if (!ux_authlog_note(&s->authlog, from, keyless, now, &r))
        return;
    struct ux_server_event *e = uxs_event(s, UXSV_EV_UNAUTHENTIC, &r.host);
    if (e) {
        e->sealed = r.sealed;
        e->keyless = r.keyless;
    }
}

const uint8_t *uxs_unseal(struct ux_server *s, const uint8_t *pkt, size_t *len, const struct ux_addr *from,
                          uint64_t now)
{
    struct ux_sealed sp;
    s->in_aead = NULL;
    s->in_owned = 0;
    s->in_session = NULL;
    if (ux_sealed_parts(pkt, *len, &sp)) {
        if (*len >= UX_HDR_LEN && pkt[0] == UX_MAGIC0 && pkt[1] == UX_MAGIC1 && pkt[3] == UX_REQUEST)
            unauthentic(s, from, 1, now); /* a client without the key */
        return NULL;
    }
    struct ux_aead *a = s->keys.disc;
    if (sp.flags & UX_FLAG_SESSION) {
        if (!sp.nc || sp.dir != UX_DIR_CLIENT || !(a = session_key(s, &sp, xid_of(pkt), from, now)))
            return NULL;
    } else if (sp.nc || pkt[3] != UX_REQUEST) {
        return NULL; /* the discovery key only asks */
    }
    s->in_aead = a == s->keys.disc ? NULL : a;
    s->in_nc = sp.nc;
    s->in_pn = sp.pn;
    size_t n = ux_open(a, pkt, *len, s->plain, PLAIN_CAP);
    if (!n) {
        s->keys.failed++;
        unauthentic(s, from, 0, now);
        uxs_unsealed_done(s);
        return NULL;
    }
    *len = n;
    return s->plain;
}

void uxs_adopt_key(struct ux_server *s, struct ux_session *ss, const uint8_t nc[UX_NC_LEN])
{
    if (!s->in_owned)
        return;
    ux_aead_free(ss->aead);
    ss->aead = s->in_aead;
    memcpy(ss->nc, nc, UX_NC_LEN);
    memset(&ss->replay, 0, sizeof ss->replay);
    s->in_owned = 0;
    s->in_session = ss;
}

void uxs_unsealed_done(struct ux_server *s)
{
    if (s->in_session && s->in_session->used && s->in_session->aead == s->in_aead)
        ux_replay_mark(&s->in_session->replay, s->in_pn);
    if (s->in_owned)
        ux_aead_free(s->in_aead);
    s->in_aead = NULL;
    s->in_owned = 0;
    s->in_session = NULL;
}

size_t uxs_seal_reply(struct ux_server *s, uint8_t *buf, size_t len, size_t cap)
{
    if (!s->in_aead)
        return ux_seal_discovery(&s->keys, &s->cfg.rng, buf, len, cap);
    uint8_t nonce[UX_NONCE_LEN];
    ux_session_nonce(nonce, UX_DIR_SERVER, ++s->pn);
    return ux_seal_msg(s->in_aead, buf, len, cap, nonce, NULL, UX_FLAG_SESSION);
}

size_t uxs_seal_session(struct ux_server *s, struct ux_session *ss, uint8_t *buf, size_t len, size_t cap)
{
    if (!ss->aead)
        return 0;
    uint8_t nonce[UX_NONCE_LEN];
    ux_session_nonce(nonce, UX_DIR_SERVER, ++s->pn);
    return ux_seal(ss->aead, buf, len - UX_HDR_LEN - UX_NONCE_LEN, cap, nonce, NULL, UX_FLAG_SESSION);
}
