/* What the fuzz targets share.
 *
 * The stateful targets (fuzz_client, fuzz_server, fuzz_stream) bring an
 * engine to a live session with valid datagrams of their own, then feed it
 * the input as a sequence of records, each a datagram:
 *   u8 op, u16 length (big-endian), then that many bytes.
 * op bit 0: give the datagram the live session's id (bytes 8-15);
 *    bit 1: repair what a fuzzer cannot compute (a chunk's or segment's
 *           hash, a NEED's cookie), so the paths behind the checks are hit;
 *    bit 2: from the second peer;
 *    bits 3-7: milliseconds that pass before it.
 * The first input byte selects the set-up (see each target).
 *
 * With -DUX_STANDALONE_FUZZ a target gets a main of its own: a mutation
 * driver over the seed files of the corpus folders it is given, for
 * machines without libFuzzer. */
#ifndef UDPXFER_FUZZ_COMMON_H
#define UDPXFER_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/addr.h"
#include "engine/hash.h"
#include "engine/layout.h"
#include "engine/rng.h"
#include "engine/server.h"

#define FZ_UNUSED __attribute__((unused))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_rec {
    uint8_t op;
    uint8_t pkt[2048];
    size_t n;
};

/* The next record of the input, or 0 at its end. */
static FZ_UNUSED int fz_next(const uint8_t **data, size_t *size, struct fz_rec *r)
{
    if (*size < 3)
        return 0;
    size_t n = (size_t)(*data)[1] << 8 | (*data)[2];
    if (n > *size - 3)
        n = *size - 3;
    if (n > sizeof r->pkt)
        n = sizeof r->pkt;
    r->op = (*data)[0];
    memcpy(r->pkt, *data + 3, n);
    r->n = n;
    *data += 3 + n;
    *size -= 3 + n;
    return 1;
}

static FZ_UNUSED void fz_set_xid(struct fz_rec *r, uint64_t xid)
{
    if (!(r->op & 1) || r->n < 16)
        return;
    for (int i = 15; i >= 8; i--, xid >>= 8)
        r->pkt[i] = (uint8_t)xid;
}

static FZ_UNUSED uint64_t fz_ms(const struct fz_rec *r) { return (uint64_t)(r->op >> 3) * 1000; }

static FZ_UNUSED struct ux_addr fz_addr(const char *s)
{
    struct ux_addr a;
    if (ux_addr_parse(s, 0, &a))
        abort();
    return a;
}

/* ---- a server's file provider: one file "f" of 5000 'x' bytes, and
 * batches of the files of one listing (FZ_LISTING's): file N has
 * fz_batch_size(N) bytes, and the last selection asked for is kept as
 * handle FZ_BATCH_HANDLE, a new one replacing it under a new generation
 * (as the file set's batch slots are taken), so sessions on the one it
 * replaced must end ---- */

#define FZ_FILE_SIZE 5000
#define FZ_BATCH_HANDLE 2
#define FZ_LISTING_FILES 4096 /* numbers past them are not found */

static const uint8_t fz_listing[UX_HASH_LEN] = {0x4c, 0x4c, 0x4c, 0x4c}; /* the rest zeros */

static struct {
    struct ux_layout layout;
    uint8_t digest[UX_HASH_LEN];
    uint64_t generation;
    int live;
    struct ux_sha *sha;
} fz_batch;

static FZ_UNUSED uint64_t fz_batch_size(uint32_t n) { return (uint64_t)n * 97 % 700; }

/* Each input starts with no batch kept. */
static FZ_UNUSED void fz_batch_reset(void)
{
    ux_layout_free(&fz_batch.layout);
    fz_batch.live = 0;
}

static int fz_batch_lookup(struct ux_lookup *q, struct ux_file_info *out)
{
    struct ux_selection s;
    uint8_t digest[UX_HASH_LEN];
    int64_t n;
    if (!fz_batch.sha && !(fz_batch.sha = ux_sha_new()))
        abort();
    if (!q->sel || ux_selection_decode(q->sel, q->sel_len, &s) || (n = ux_selection_count(&s)) <= 0 ||
        ux_selection_digest(fz_batch.sha, &s, q->chunk_size, digest))
        return UX_E_REFUSED;
    if (memcmp(s.listing, fz_listing, UX_HASH_LEN))
        return UX_E_STALE;
    if (!fz_batch.live || memcmp(digest, fz_batch.digest, UX_HASH_LEN) || fz_batch.layout.chunk_size != q->chunk_size) {
        static uint64_t sizes[FZ_LISTING_FILES];
        uint32_t k = 0;
        for (uint16_t r = 0; r < s.nranges; r++)
            for (uint32_t i = 0; i < s.ranges[r].count; i++) {
                uint64_t num = (uint64_t)s.ranges[r].first + i;
                if (num >= FZ_LISTING_FILES)
                    return UX_E_NOTFOUND;
                sizes[k++] = fz_batch_size((uint32_t)num);
            }
        fz_batch_reset();
        if (ux_layout_init(&fz_batch.layout, sizes, k, q->chunk_size))
            return UX_E_REFUSED;
        memcpy(fz_batch.digest, digest, UX_HASH_LEN);
        fz_batch.generation++;
        fz_batch.live = 1;
    }
    memset(out, 0, sizeof *out);
    out->handle = FZ_BATCH_HANDLE;
    out->generation = fz_batch.generation;
    out->size = fz_batch.layout.total;
    memcpy(out->sha256, digest, UX_HASH_LEN);
    out->layout = &fz_batch.layout;
    return 0;
}

static FZ_UNUSED int fz_lookup(void *ud, struct ux_lookup *q, struct ux_file_info *out)
{
    (void)ud;
    if (q->kind == UX_KIND_FILES)
        return fz_batch_lookup(q, out);
    if (q->kind == UX_KIND_FILE && (q->len != 1 || q->name[0] != 'f'))
        return UX_E_NOTFOUND;
    q->work = FZ_FILE_SIZE; /* as if hashed each time: the budgets run out */
    if (q->may == UX_WORK_NONE) {
        q->deferred = 1;
        return UX_E_PREPARING;
    }
    memset(out, 0, sizeof *out);
    out->handle = 1;
    out->size = FZ_FILE_SIZE;
    out->has_root = q->want_tree && q->may_tree;
    q->work_trees = out->has_root ? FZ_FILE_SIZE / 2 : 0;
    q->work += q->work_trees;
    return 0;
}

static FZ_UNUSED int fz_current(void *ud, uint32_t handle, struct ux_file_info *out)
{
    struct ux_lookup q = {.kind = UX_KIND_FILE, .name = "f", .len = 1, .may = UX_WORK_ANY};
    if (handle == FZ_BATCH_HANDLE) {
        if (!fz_batch.live)
            return UX_E_NOTFOUND;
        memset(out, 0, sizeof *out);
        out->handle = FZ_BATCH_HANDLE;
        out->generation = fz_batch.generation;
        out->size = fz_batch.layout.total;
        memcpy(out->sha256, fz_batch.digest, UX_HASH_LEN);
        out->layout = &fz_batch.layout;
        return 0;
    }
    return handle == 1 ? fz_lookup(ud, &q, out) : UX_E_NOTFOUND;
}

static FZ_UNUSED int fz_node(void *ud, uint32_t handle, uint32_t cs, uint32_t id, uint8_t *buf, size_t *len)
{
    (void)ud, (void)handle, (void)cs;
    memset(buf, (int)id, 64);
    *len = 64;
    return 0;
}

static FZ_UNUSED int fz_read(void *ud, uint32_t handle, uint64_t off, uint8_t *buf, size_t len)
{
    (void)ud, (void)handle, (void)off;
    memset(buf, 'x', len);
    return 0;
}

static FZ_UNUSED int fz_chunk(void *ud, uint32_t handle, uint32_t cs, uint32_t index, uint8_t *buf, size_t len,
                              uint8_t hash[UX_HASH_LEN], const uint8_t **lent)
{
    (void)ud, (void)lent;
    if (handle == FZ_BATCH_HANDLE) {
        /* the session's layout must be the one kept: the server checks
         * its generation before each chunk */
        uint32_t f;
        uint64_t off;
        if (!fz_batch.live || cs != fz_batch.layout.chunk_size || index >= ux_layout_chunks(&fz_batch.layout) ||
            ux_layout_chunk(&fz_batch.layout, index, &f, &off) != len)
            abort();
    }
    memset(buf, 'x', len);
    if (hash)
        memset(hash, (int)index, UX_HASH_LEN);
    return 0;
}

static FZ_UNUSED const char *fz_name(void *ud, uint32_t handle)
{
    (void)ud, (void)handle;
    return "f";
}

static FZ_UNUSED void fz_opened(void *ud, uint32_t handle, uint32_t cs) { (void)ud, (void)handle, (void)cs; }

static FZ_UNUSED const struct ux_provider fz_files = {fz_lookup, fz_current, fz_read, fz_chunk, fz_node, fz_name,
                                                      fz_opened, NULL};

#ifdef UX_STANDALONE_FUZZ
#include <dirent.h>
#include <stdio.h>
#include <time.h>

#define FZ_MAX_SEEDS 64
#define FZ_MAX_INPUT 8192

static uint8_t fz_seed[FZ_MAX_SEEDS][FZ_MAX_INPUT];
static size_t fz_seed_len[FZ_MAX_SEEDS];
static int fz_nseeds;
static uint64_t fz_state = 0x9E3779B97F4A7C15ull;

static uint32_t fz_rnd(void)
{
    fz_state ^= fz_state << 13;
    fz_state ^= fz_state >> 7;
    fz_state ^= fz_state << 17;
    return (uint32_t)fz_state;
}

static void fz_load(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && fz_nseeds < FZ_MAX_SEEDS) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "rb");
        if (f) {
            fz_seed_len[fz_nseeds] = fread(fz_seed[fz_nseeds], 1, FZ_MAX_INPUT, f);
            fz_nseeds++;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
}

/* Mutate a copy of a random seed: flips, random bytes, cuts, insertions and
 * splices from another seed. */
static size_t fz_mutate(uint8_t *out)
{
    int s = (int)(fz_rnd() % (uint32_t)fz_nseeds);
    size_t n = fz_seed_len[s];
    memcpy(out, fz_seed[s], n);
    for (int k = (int)(fz_rnd() % 6); k >= 0; k--) {
        switch (fz_rnd() % 5) {
        case 0: if (n) out[fz_rnd() % n] ^= (uint8_t)(1u << (fz_rnd() % 8)); break;
        case 1: if (n) out[fz_rnd() % n] = (uint8_t)fz_rnd(); break;
        case 2: n = fz_rnd() % (n + 1); break;
        case 3: if (n < FZ_MAX_INPUT) out[n++] = (uint8_t)fz_rnd(); break;
        default: {
            int o = (int)(fz_rnd() % (uint32_t)fz_nseeds);
            size_t from = fz_seed_len[o] ? fz_rnd() % fz_seed_len[o] : 0, len = fz_rnd() % 300;
            if (from + len > fz_seed_len[o])
                len = fz_seed_len[o] - from;
            if (n + len > FZ_MAX_INPUT)
                len = FZ_MAX_INPUT - n;
            memcpy(out + n, fz_seed[o] + from, len);
            n += len;
        }
        }
    }
    return n;
}

/* Usage: TARGET [-runs=N] [-max_total_time=S] [CORPUS_DIR]... */
int main(int argc, char **argv)
{
    long runs = 100000, seconds = 0, i;
    for (int a = 1; a < argc; a++) {
        if (!strncmp(argv[a], "-runs=", 6))
            runs = atol(argv[a] + 6);
        else if (!strncmp(argv[a], "-max_total_time=", 16))
            seconds = atol(argv[a] + 16);
        else if (argv[a][0] != '-')
            fz_load(argv[a]);
    }
    if (!fz_nseeds)
        fz_seed_len[fz_nseeds++] = 0;
    for (int s = 0; s < fz_nseeds; s++)
        LLVMFuzzerTestOneInput(fz_seed[s], fz_seed_len[s]);
    static uint8_t input[FZ_MAX_INPUT];
    time_t end = time(NULL) + seconds;
    for (i = 0; i < runs || (seconds && time(NULL) < end); i++) {
        size_t n = fz_mutate(input);
        LLVMFuzzerTestOneInput(input, n);
    }
    const char *name = strrchr(argv[0], '/');
    printf("%s: %ld inputs, no crash (%d seeds)\n", name ? name + 1 : argv[0], i, fz_nseeds);
    return 0;
}
#endif

#endif
