/* One fetch on this host: the client engine on a link (the socket it
 * shares with other fetches), where its bytes go (a file placed beneath a
 * folder, written and hashed by the sink's thread, or memory), the local
 * copy its unchanged chunks come from (a file, bytes, the partial file an
 * interrupted fetch of the name left, or the file already under the name)
 * and the commit that checks the whole file and moves it into place.
 * Lua-free: the binding translates options into a ux_fetch_spec and events
 * into tables. */
#ifndef UDPXFER_HOST_FETCH_H
#define UDPXFER_HOST_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/client.h"
#include "engine/errors.h"
#include "link.h"
#include "sink.h"
#include "sparse.h"

/* What a fetch does with what is already under its name. */
enum ux_dest {
    UX_DEST_REPLACE, /* nothing: the rename replaces it (a sync has checked it itself) */
    UX_DEST_CHECK,   /* a readable regular file may be the local copy; anything else is refused */
    UX_DEST_FORCE    /* the same, but what cannot be the local copy is replaced; a folder never is */
};

/* Where a fetch's bytes go and what it may reuse. */
struct ux_fetch_spec {
    int memory;             /* kept in memory (ux_fetch.mem), at most UX_FETCH_MEMORY_MAX */
    int root;               /* >= 0: PATH is placed beneath this folder (borrowed), no symlink on the way */
    const char *root_path;  /* or beneath the folder at this path (opened here) */
    const char *root_label; /* its name, for messages */
    const char *path;       /* with ROOT */
    size_t path_len;
    const char *out;        /* without ROOT: this folder ("." if NULL) */
    const char *as;         /* and this name (NULL: NAME's last part) */
    size_t as_len;
    int durable;            /* fsync before the rename */
    int set_mode, set_mtime;
    uint32_t mode;
    int64_t mtime_ns;
    int resume;             /* the partial file a fetch of the name left is the local copy */
    enum ux_dest dest;      /* with resume and no partial file, a regular file there is the local copy */
    const char *basis;      /* a local copy: a path (beneath ROOT when it is set) */
    const uint8_t *basis_mem; /* or its bytes (kept alive by the caller) */
    size_t basis_len;
    int verify;             /* check every chunk against its leaf of the tree */
};

#define UX_FETCH_MEMORY_MAX (256u << 20)

struct ux_fetch {
    struct ux_client *eng;         /* its own allocation: a closed fetch awaiting collection is small */
    struct ux_link *link;          /* NULL: fed by hand (specs) */
    int live, attached;
    int memory;
    uint8_t *mem;
    struct ux_sink sink;
    int dirfd;                     /* the output folder */
    int durable;
    int sink_open, finished;
    int committing;                /* the sink's commit runs on its thread */
    int held;                      /* a datagram waits for the sink */
    int watching;                  /* the sink's descriptor is in the link's epoll set */
    struct ux_client_event done;   /* held back until the commit ends */
    char base[256];                /* the file's name in its folder */
    char path[1100];               /* where it lands, for the caller */
    int basis_fd;
    struct ux_extent basis_holes;  /* where its data lies */
    const uint8_t *basis_mem;
    size_t basis_len;
    struct ux_tree basis;
    int has_basis;
    int basis_pending;             /* its tree is made once the offer says the size */
    uint64_t basis_size;
    uint8_t *copy;                 /* a buffer for copying from it */
    int keep;                      /* leave a partial file a later fetch can resume */
    char resumed[256];             /* the partial file taken as the local copy */
};

/* Prepare F: place the output, find a partial file, open the local copy,
 * start the engine with CFG (its output callbacks are set here) at NOW,
 * attach it to LINK. Returns UX_OK, or a UX_ERR_* code with WHY. */
enum ux_err ux_fetch_open(struct ux_fetch *f, const struct ux_fetch_spec *spec, struct ux_client_cfg *cfg,
                          struct ux_link *link, uint64_t now, char *why, size_t cap);
/* End it: a file not in place yet is removed (kept if ux_fetch_abort said
 * so). Safe to call more than once. */
void ux_fetch_close(struct ux_fetch *f);
/* The next event for the caller, or 0. A "done" waits for the commit (on
 * the sink's thread; its descriptor is in the link's set meanwhile). */
int ux_fetch_next_event(struct ux_fetch *f, struct ux_client_event *ev);
/* Stop now with CODE and MSG (the servers are told when the link next
 * sends); KEEP leaves the partial file for a later fetch (never in legacy
 * mode). */
void ux_fetch_abort(struct ux_fetch *f, enum ux_err code, const char *msg, int keep);
/* When it must run again (UINT64_MAX while the commit runs). */
uint64_t ux_fetch_deadline(const struct ux_fetch *f);
/* The datagram paths of a fetch fed by hand (no link). */
int ux_fetch_input(struct ux_fetch *f, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a);

#endif
