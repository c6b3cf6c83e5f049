/* A folder's listing, as a server offers it (REQUEST kind LISTING) and a
 * client checks it before acting on it. Text, one entry per line:
 *
 *   udpxfer-listing 1
 *   d <mode> <mtime_ns> .
 *   f <mode> <mtime_ns> <size> <sha256> <path>
 *   l <mode> <mtime_ns> <target> <path>
 *
 * Fields are separated by one tab; <mode> is octal permission bits
 * (07777 at most), <mtime_ns> nanoseconds since the epoch; <path> and
 * <target> have bytes below 0x21, 0x7f and '%' written as %XX. Paths are
 * relative to the folder listed, "." is the folder itself and comes first;
 * entries follow in order with '/' sorting before every other byte, so a
 * folder's entries come right after it and every parent before its
 * children. Pure parsing and formatting: no I/O. */
#ifndef UDPXFER_LISTING_H
#define UDPXFER_LISTING_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define UX_LISTING_MAGIC "udpxfer-listing 1"
#define UX_LISTING_DEPTH 256 /* nested folders a listing may hold */

enum ux_ltype { UX_LT_DIR = 'd', UX_LT_FILE = 'f', UX_LT_LINK = 'l' };

struct ux_lentry {
    enum ux_ltype type;
    uint32_t mode;
    int64_t mtime_ns;
    uint64_t size;                /* files */
    uint8_t sha256[UX_SHA256_LEN]; /* files */
    const char *path;             /* unescaped, not NUL-terminated */
    size_t path_len;
    const char *target;           /* links */
    size_t target_len;
};

/* One entry as a line (with its '\n') into BUF. Returns its length, or 0
 * if it does not fit. */
size_t ux_listing_format(const struct ux_lentry *e, char *buf, size_t cap);
/* Decode LINE (LEN bytes, no '\n') in place: the escaped path and target
 * are unescaped where they lie. Returns 0, or -1 with *WHY. */
int ux_listing_parse(char *line, size_t len, struct ux_lentry *out, const char **why);
/* Order of paths in a listing: byte by byte, with '/' before any other byte. */
int ux_listing_cmp(const char *a, size_t an, const char *b, size_t bn);

/* Checks a listing's entries in order: the first is ".", a folder; each
 * path comes after the one before, is a safe relative path, and its parent
 * is a folder listed earlier (so no entry lies below a file or a link). */
struct ux_lcheck {
    const char *prev;
    size_t prev_len;
    int depth;                          /* folders on the current chain */
    const char *dir[UX_LISTING_DEPTH];  /* the chain's paths (the caller keeps them alive) */
    size_t dir_len[UX_LISTING_DEPTH];
    uint64_t n;
};
void ux_lcheck_init(struct ux_lcheck *c);
/* Returns 0, or -1 with *WHY: the listing is not to be acted on. */
int ux_lcheck_next(struct ux_lcheck *c, const struct ux_lentry *e, const char **why);

#endif
