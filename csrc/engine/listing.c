#include "listing.h"

#include <string.h>

#include "names.h"

static int escaped(unsigned char c) { return c < 0x21 || c == 0x7f || c == '%'; }

static size_t put_escaped(char *out, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (escaped(c)) {
            if (k + 3 > cap)
                return SIZE_MAX;
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        } else {
            if (k + 1 > cap)
                return SIZE_MAX;
            out[k++] = (char)c;
        }
    }
    return k;
}

/* Appends FMT-free pieces: a number, a field, a tab. */
struct out {
    char *p;
    size_t cap, len;
    int full;
};

static void add(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n > o->cap) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void add_u(struct out *o, uint64_t v, int base)
{
    char t[24];
    int k = (int)sizeof t;
    do {
        t[--k] = (char)('0' + v % (uint64_t)base);
        v /= (uint64_t)base;
    } while (v);
    add(o, t + k, sizeof t - (size_t)k);
}

static void add_i(struct out *o, int64_t v)
{
    if (v < 0) {
        add(o, "-", 1);
        add_u(o, (uint64_t)0 - (uint64_t)v, 10);
    } else {
        add_u(o, (uint64_t)v, 10);
    }
}

static void add_esc(struct out *o, const char *s, size_t n)
{
    size_t k = o->full ? SIZE_MAX : put_escaped(o->p + o->len, o->cap - o->len, s, n);
    if (k == SIZE_MAX)
        o->full = 1;
    else
        o->len += k;
}

size_t ux_listing_format(const struct ux_lentry *e, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, 0};
    char type = (char)e->type;
    add(&o, &type, 1);
    add(&o, "\t", 1);
    add_u(&o, e->mode & 07777, 8);
    add(&o, "\t", 1);
    add_i(&o, e->mtime_ns);
    add(&o, "\t", 1);
    if (e->type == UX_LT_FILE) {
        char hex[2 * UX_SHA256_LEN + 1];
        add_u(&o, e->size, 10);
        add(&o, "\t", 1);
        ux_hex(e->sha256, UX_SHA256_LEN, hex);
        add(&o, hex, 2 * UX_SHA256_LEN);
        add(&o, "\t", 1);
    } else if (e->type == UX_LT_LINK) {
        add_esc(&o, e->target, e->target_len);
        add(&o, "\t", 1);
    }
    add_esc(&o, e->path, e->path_len);
    add(&o, "\n", 1);
    return o.full ? 0 : o.len;
}

static int hexdigit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Unescape [s, s+n) in place; the new length, or SIZE_MAX if malformed
 * (a bad %XX, or a byte that should have been escaped). */
static size_t unescape(char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexdigit(s[i + 1]) : -1, lo = i + 2 < n ? hexdigit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return SIZE_MAX;
            s[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (escaped(c)) {
            return SIZE_MAX;
        } else {
            s[k++] = (char)c;
        }
    }
    return k;
}

static int parse_u(const char *s, size_t n, int base, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!n || n > 24)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (d < 0 || d >= base || v > (max - (uint64_t)d) / (uint64_t)base)
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return 0;
}

static int parse_i(const char *s, size_t n, int64_t *out)
{
    uint64_t v;
    int neg = n && s[0] == '-';
    if (parse_u(s + neg, n - (size_t)neg, 10, (uint64_t)INT64_MAX, &v))
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int ux_listing_parse(char *line, size_t len, struct ux_lentry *out, const char **why)
{
    char *f[6];
    size_t fl[6];
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != '\t')
            continue;
        if (nf == 6) {
            *why = "too many fields";
            return -1;
        }
        f[nf] = line + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    memset(out, 0, sizeof *out);
    int want = nf >= 1 && fl[0] == 1 ? (f[0][0] == 'f' ? 6 : f[0][0] == 'l' ? 5 : f[0][0] == 'd' ? 4 : 0) : 0;
    uint64_t mode;
    if (!want || nf != want) {
        *why = "unknown entry type or wrong number of fields";
        return -1;
    }
    out->type = (enum ux_ltype)f[0][0];
    if (parse_u(f[1], fl[1], 8, 07777, &mode) || parse_i(f[2], fl[2], &out->mtime_ns)) {
        *why = "bad mode or mtime";
        return -1;
    }
    out->mode = (uint32_t)mode;
    if (out->type == UX_LT_FILE) {
        if (parse_u(f[3], fl[3], 10, UINT64_MAX / 2, &out->size) || fl[4] != 2 * UX_SHA256_LEN) {
            *why = "bad size or sha256";
            return -1;
        }
        for (int i = 0; i < UX_SHA256_LEN; i++) {
            int hi = hexdigit(f[4][2 * i]), lo = hexdigit(f[4][2 * i + 1]);
            if (hi < 0 || lo < 0) {
                *why = "bad sha256";
                return -1;
            }
            out->sha256[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    if (out->type == UX_LT_LINK) {
        size_t n = unescape(f[3], fl[3]);
        if (n == SIZE_MAX || n == 0 || memchr(f[3], 0, n)) {
            *why = "bad link target";
            return -1;
        }
        out->target = f[3];
        out->target_len = n;
    }
    size_t n = unescape(f[nf - 1], fl[nf - 1]);
    if (n == SIZE_MAX || n == 0) {
        *why = "bad path";
        return -1;
    }
    out->path = f[nf - 1];
    out->path_len = n;
    return 0;
}

int ux_listing_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++) {
        unsigned x = (unsigned char)a[i] == '/' ? 0 : (unsigned char)a[i] + 1u;
        unsigned y = (unsigned char)b[i] == '/' ? 0 : (unsigned char)b[i] + 1u;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return an < bn ? -1 : an > bn;
}

void ux_lcheck_init(struct ux_lcheck *c) { memset(c, 0, sizeof *c); }

static int is_root(const struct ux_lentry *e) { return e->path_len == 1 && e->path[0] == '.'; }

/* Is DIR (a listed folder) the parent of PATH? The root "." is everyone's
 * whose path has no '/'. */
static int parent_is(const char *dir, size_t dn, const char *path, size_t pn)
{
    const char *slash = NULL;
    for (size_t i = pn; i > 0; i--)
        if (path[i - 1] == '/') {
            slash = path + i - 1;
            break;
        }
    if (!slash)
        return dn == 1 && dir[0] == '.';
    size_t plen = (size_t)(slash - path);
    return plen == dn && memcmp(dir, path, dn) == 0;
}

/* Is DIR an ancestor (or the parent) of PATH? */
static int ancestor(const char *dir, size_t dn, const char *path, size_t pn)
{
    if (dn == 1 && dir[0] == '.')
        return 1;
    return pn > dn && path[dn] == '/' && memcmp(dir, path, dn) == 0;
}

int ux_lcheck_next(struct ux_lcheck *c, const struct ux_lentry *e, const char **why)
{
    if (c->n++ == 0) {
        if (!is_root(e) || e->type != UX_LT_DIR) {
            *why = "the listing does not start with its folder";
            return -1;
        }
        c->dir[0] = e->path;
        c->dir_len[0] = e->path_len;
        c->depth = 1;
        c->prev = e->path;
        c->prev_len = e->path_len;
        return 0;
    }
    if (is_root(e) || ux_name_check(e->path, e->path_len)) {
        *why = "unsafe path";
        return -1;
    }
    if (ux_listing_cmp(c->prev, c->prev_len, e->path, e->path_len) >= 0 && c->n > 2) {
        *why = "entries out of order or repeated";
        return -1;
    }
    while (c->depth > 1 && !ancestor(c->dir[c->depth - 1], c->dir_len[c->depth - 1], e->path, e->path_len))
        c->depth--;
    if (!parent_is(c->dir[c->depth - 1], c->dir_len[c->depth - 1], e->path, e->path_len)) {
        *why = "an entry whose parent is not a folder listed before it";
        return -1;
    }
    if (e->type == UX_LT_DIR) {
        if (c->depth == UX_LISTING_DEPTH) {
            *why = "folders nested too deep";
            return -1;
        }
        c->dir[c->depth] = e->path;
        c->dir_len[c->depth++] = e->path_len;
    }
    c->prev = e->path;
    c->prev_len = e->path_len;
    return 0;
}
