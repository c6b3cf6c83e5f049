/* Files of a listing fetched as one transfer (engine/layout.h): the
 * client engine on a link asks the servers for the selection, and each
 * chunk lands in its file: files up to UX_BATCH_SMALL gathered in memory,
 * checked against the listing's SHA-256 and written whole (temporary
 * file, mode, mtime, rename); larger ones through a sink of their own
 * (its thread writes and hashes, the commit renames). Each file is
 * reported on its own as it is in place, or why not; the batch ends when
 * the engine has every chunk and every file is settled. Lua-free. */
#ifndef UDPXFER_HOST_BATCH_H
#define UDPXFER_HOST_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/client.h"
#include "engine/layout.h"
#include "link.h"
#include "sink.h"

#define UX_BATCH_SMALL (1u << 20)

/* One file to fetch: where it goes and what it must be. */
struct ux_batch_file {
    const char *path;  /* relative to the batch's folder (kept alive by the caller) */
    uint64_t size;
    uint8_t sha256[UX_HASH_LEN];
    uint32_t mode;
    int64_t mtime_ns;
    uint32_t number;   /* its number among the listing's files */
};

struct ux_batch_spec {
    int root;                  /* the folder the files go beneath (borrowed) */
    const uint8_t *listing;    /* the listing's SHA-256 (UX_HASH_LEN) */
    const struct ux_batch_file *files; /* numbers going up */
    uint32_t nfiles;
    int durable;
};

/* What one file came to. */
struct ux_batch_result {
    uint32_t file;         /* its index in the spec */
    enum ux_err code;      /* UX_OK: in place, with ST */
    char why[160];
    struct stat st;
};

struct ux_batch_event {
    int is_file;                  /* a file's result, else the engine's event */
    struct ux_batch_result file;
    struct ux_client_event eng;
};

struct ux_bfile;

struct ux_batch {
    struct ux_client eng;
    struct ux_link *link;         /* NULL: fed by hand (specs) */
    int live, attached;
    int root, durable;
    const struct ux_batch_file *files;
    uint32_t nfiles;
    struct ux_bfile *st;
    struct ux_layout layout;
    uint8_t sel[UX_HASH_LEN + 2 + 8 * UX_SEL_MAX_RANGES];
    size_t sel_len;
    uint32_t *ready;              /* small files complete, to check and write */
    uint32_t nready;
    uint32_t committing;          /* large files whose sink commits */
    struct ux_batch_result *out;  /* results not handed out yet */
    uint32_t nout, outcap;
    struct ux_sink *held;         /* the sink a handed-back chunk waits for */
    int engine_done;              /* every chunk is in */
    struct ux_client_event done;  /* held back until every file is settled */
    int failed;                   /* the engine failed: the rest is reported so */
    uint32_t settled;
    int dirfd;                    /* the folder the last small file went to, kept open */
    char dir[1024];
    size_t dirlen;
};

/* Prepare B for SPEC: its selection and layout, the engine with CFG (the
 * name is the folder on the servers; its selection, layout, want_sha256
 * and output callbacks are set here), attached to LINK. Returns UX_OK, or
 * a UX_ERR_* code with WHY (UX_ERR_USAGE: a selection too scattered for
 * one request). */
enum ux_err ux_batch_open(struct ux_batch *b, const struct ux_batch_spec *spec, struct ux_client_cfg *cfg,
                          struct ux_link *link, uint64_t now, char *why, size_t cap);
/* Files not in place are removed (partial files of large ones are kept
 * when KEEP was given to ux_batch_abort). Safe to call more than once. */
void ux_batch_close(struct ux_batch *b);
/* The next result or event, or 0. */
int ux_batch_next_event(struct ux_batch *b, struct ux_batch_event *ev);
/* Stop now with CODE and MSG (the servers are told when the link next
 * sends); large files' partial files stay to be resumed. */
void ux_batch_abort(struct ux_batch *b, enum ux_err code, const char *msg);
uint64_t ux_batch_deadline(const struct ux_batch *b);
int ux_batch_input(struct ux_batch *b, uint64_t now, const uint8_t *p, size_t n, const struct ux_addr *a);
/* Selection ranges the files' numbers make (the count to split on). */
uint32_t ux_batch_ranges(const struct ux_batch_file *files, uint32_t n);

#endif
