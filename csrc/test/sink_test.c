/* The sink with its hash thread held at a gate, so the order of events
 * the specs assert is forced rather than left to the scheduler.
 * Usage: sink_test DIR. Prints one line per case and exits 0 if all hold. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/sink.h"
#include <errno.h>

#define REGIONS 20

static sem_t go;
static int failures;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
}

static void hold(void *arg)
{
    (void)arg;
    sem_wait(&go);
}

static uint8_t *content(size_t len)
{
    uint8_t *p = malloc(len);
    for (size_t i = 0; p && i < len; i++)
        p[i] = (uint8_t)(i * 2654435761u >> 13);
    return p;
}

static void sha256_of(const uint8_t *p, size_t len, uint8_t out[UX_SHA256_LEN])
{
    struct ux_sha *sha = ux_sha_new();
    ux_sha_init(sha);
    ux_sha_update(sha, p, len);
    ux_sha_final(sha, out);
    ux_sha_free(sha);
}

/* A case's file: SIZE bytes of content, returned (NULL after reporting
 * why), with their SHA-256 in WANT, and a sink K for them as NAME in DIR
 * whose hash thread is held at the gate. */
static uint8_t *open_held(struct ux_sink *k, const char *dir, const char *name, size_t size,
                          uint8_t want[UX_SHA256_LEN])
{
    const char *why = "";
    uint8_t *data = content(size);
    sha256_of(data, size, want);
    memset(k, 0, sizeof *k);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = dfd < 0 ? errno : ux_sink_open(k, dfd, name, size, 1, &why);
    if (dfd >= 0)
        close(dfd);
    if (err) {
        check(0, why);
        free(data);
        return NULL;
    }
    k->h.gate = hold;
    return data;
}

struct late_write {
    struct ux_sink *k;
    const uint8_t *data;
    int err, done;
};

/* The write that needs a slab while the thread holds all but one. */
static void *write_region_16(void *arg)
{
    struct late_write *w = arg;
    w->err = ux_sink_write(w->k, 16ull * UX_SLAB, w->data + 16ull * UX_SLAB, 4096);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int waiting_now(struct ux_sink *k)
{
    pthread_mutex_lock(&k->h.lock);
    int w = k->h.waiting;
    pthread_mutex_unlock(&k->h.lock);
    return w;
}

/* With complete slabs queued for a slow hash thread, a
 * write to a new region waited for one instead of evicting the slab still
 * being filled (a write now, a read back later, on the critical path). */
static void waits_rather_than_evicts(const char *dir)
{
    size_t size = (size_t)REGIONS * UX_SLAB;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    const char *why = "";
    if (!(data = open_held(&k, dir, "out.bin", size, want)))
        return;
    /* Regions 0-14 complete (handed to the held thread), 15 half filled. */
    for (uint64_t r = 0; r < 15; r++)
        ux_sink_write(&k, r * UX_SLAB, data + r * UX_SLAB, UX_SLAB);
    ux_sink_write(&k, 15ull * UX_SLAB, data + 15ull * UX_SLAB, UX_SLAB / 2);

    struct late_write w = {.k = &k, .data = data};
    pthread_t t;
    pthread_create(&t, NULL, write_region_16, &w);
    /* Until the late write either waits for the thread or finishes without
     * it (the old policy); bounded at 10 s. */
    for (int i = 0; i < 100000 && !waiting_now(&k) && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE); i++)
        usleep(100);
    check(k.evicted == 0, "no slab still being filled is evicted while the hash thread holds slabs");
    check(waiting_now(&k), "the write waits for the hash thread instead");
    for (int i = 0; i < REGIONS; i++)
        sem_post(&go);
    pthread_join(t, NULL);
    check(w.err == 0 && k.waits > 0, "it goes on once the thread releases a slab");

    ux_sink_write(&k, 15ull * UX_SLAB + UX_SLAB / 2, data + 15ull * UX_SLAB + UX_SLAB / 2, UX_SLAB / 2);
    ux_sink_write(&k, 16ull * UX_SLAB + 4096, data + 16ull * UX_SLAB + 4096, UX_SLAB - 4096);
    for (uint64_t r = 17; r < REGIONS; r++)
        ux_sink_write(&k, r * UX_SLAB, data + r * UX_SLAB, UX_SLAB);
    for (int i = 0; i < REGIONS; i++)
        sem_post(&go);
    int err = ux_sink_commit(&k, want, &why);
    check(err == 0, "the file commits with the right SHA-256");
    check(k.readback == 0 && k.evicted == 0, "nothing was written early or read back");
    free(data);
}

/* Names in DIR starting with PREFIX. */
static int count_names(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

/* The file's bytes equal P? */
static int file_holds(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    uint8_t *got = malloc(len + 1);
    ssize_t n = fd >= 0 && got ? read(fd, got, len + 1) : -1;
    int same = n == (ssize_t)len && !memcmp(got, p, len);
    free(got);
    if (fd >= 0)
        close(fd);
    return same;
}

/* Until the hash thread has finished N slabs (bounded at 10 s). */
static void wait_finished(struct ux_sink *k, uint64_t n)
{
    struct pollfd p = {.fd = ux_sink_fd(k), .events = POLLIN};
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&k->h.lock);
        uint64_t done = k->h.finished;
        pthread_mutex_unlock(&k->h.lock);
        if (done >= n)
            return;
        poll(&p, 1, 10);
        ux_sink_clear(k);
    }
}

/* step() must not wait for the hash thread: with every slab held by it, a
 * chunk for a new region is refused (EAGAIN) untouched, and the sink's
 * descriptor turns readable once the thread frees one. */
static void refuses_rather_than_waits(const char *dir)
{
    size_t size = (size_t)REGIONS * UX_SLAB;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    const char *why = "";
    if (!(data = open_held(&k, dir, "try.bin", size, want)))
        return;
    for (uint64_t r = 0; r < UX_NSLAB; r++) /* every slab complete, handed to the held thread */
        ux_sink_try_write(&k, r * UX_SLAB, data + r * UX_SLAB, UX_SLAB);
    uint64_t r = UX_NSLAB;
    int err = ux_sink_try_write(&k, r * UX_SLAB, data + r * UX_SLAB, 4096);
    check(err == EAGAIN && k.filled[r] == 0 && !waiting_now(&k) && k.evicted == 0,
          "a chunk needing a slab the thread holds is refused, untouched, without waiting");
    struct pollfd p = {.fd = ux_sink_fd(&k), .events = POLLIN};
    check(p.fd >= 0 && poll(&p, 1, 0) == 0, "the sink's descriptor is not readable meanwhile");
    sem_post(&go);
    check(poll(&p, 1, 10000) == 1, "it turns readable when the thread frees a slab");
    ux_sink_clear(&k);
    err = ux_sink_try_write(&k, r * UX_SLAB, data + r * UX_SLAB, 4096);
    check(err == 0 && k.filled[r] == 4096, "then the chunk is taken");
    for (int i = 0; i < REGIONS; i++) /* the thread runs freely from here */
        sem_post(&go);
    ux_sink_write(&k, r * UX_SLAB + 4096, data + r * UX_SLAB + 4096, UX_SLAB - 4096);
    for (r = UX_NSLAB + 1; r < REGIONS; r++)
        ux_sink_write(&k, r * UX_SLAB, data + r * UX_SLAB, UX_SLAB);
    check(ux_sink_commit(&k, want, &why) == 0, "and the file commits with the right SHA-256");
    free(data);
}

/* The whole-file check, sync and rename run on the hash thread: the caller
 * gets EINPROGRESS at once and a descriptor that turns readable when the
 * commit has ended (a step() must not wait out the fsync of a big file). */
static void commits_off_the_caller(const char *dir, int corrupt)
{
    const char *name = corrupt ? "bad.bin" : "good.bin";
    size_t size = 3 * UX_SLAB - 100;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    const char *why = "";
    if (!(data = open_held(&k, dir, name, size, want)))
        return;
    want[0] ^= (uint8_t)corrupt;
    ux_sink_write(&k, 0, data, size);
    for (int i = 0; i < 3; i++) /* the three slabs; the commit waits at the gate */
        sem_post(&go);
    wait_finished(&k, 3);
    ux_sink_clear(&k);
    ux_sink_commit_start(&k, want);
    struct pollfd p = {.fd = ux_sink_fd(&k), .events = POLLIN};
    int err = ux_sink_commit_result(&k, &why);
    if (!corrupt) {
        check(err == EINPROGRESS, "the commit is under way when ux_sink_commit_start returns");
        check(p.fd >= 0 && poll(&p, 1, 0) == 0, "its descriptor is not readable while it runs");
        check(count_names(dir, name) == 0, "the final name is not there while it runs");
    }
    sem_post(&go);
    check(poll(&p, 1, 10000) == 1, "the descriptor turns readable when the commit ends");
    err = ux_sink_commit_result(&k, &why);
    char tmp_prefix[64];
    snprintf(tmp_prefix, sizeof tmp_prefix, ".%s.udpxfer-", name);
    if (corrupt) {
        check(err == EBADMSG && !strcmp(why, "whole-file SHA-256 mismatch"), "a wrong SHA-256 ends in EBADMSG");
        check(count_names(dir, name) == 0, "and the final name never appears");
    } else {
        check(err == 0, "the right SHA-256 commits");
        check(file_holds(dir, name, data, size), "the file holds the bytes under its final name");
    }
    check(count_names(dir, tmp_prefix) == 0, "no temporary file is left");
    free(data);
}

/* Bytes the file NAME in DIR has allocated, or -1. */
static long long allocated(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) ? -1 : (long long)st.st_blocks * 512;
}

/* Let the hash thread run freely (it is held at the gate per slab). */
static void release_gate(void)
{
    for (int i = 0; i < 4 * REGIONS; i++)
        sem_post(&go);
}

/* Blocks of zeros are holes: a file of data, then zeros (reserved ahead
 * of the data, so punched), a block of data amid them, zeros to an end
 * that is not on a block, takes the blocks of its data only. */
static void keeps_holes(const char *dir)
{
    size_t size = (size_t)REGIONS * UX_SLAB - 100;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    const char *why = "";
    if (!(data = open_held(&k, dir, "holes.bin", size, want)))
        return;
    memset(data + 2 * UX_SLAB, 0, size - 2 * UX_SLAB);
    memset(data + 9 * UX_SLAB + 8192, 0x5a, 4096);
    sha256_of(data, size, want);
    release_gate();
    for (size_t off = 0; off < size; off += 16384) /* in chunks, as they arrive */
        ux_sink_write(&k, off, data + off, size - off < 16384 ? size - off : 16384);
    check(ux_sink_commit(&k, want, &why) == 0, "a file with holes commits with the right SHA-256");
    check(file_holds(dir, "holes.bin", data, size), "its bytes are right, zeros and all");
    long long got = allocated(dir, "holes.bin");
    check(got >= 2 * UX_SLAB && got <= 2 * UX_SLAB + 4096 + 65536, "it takes the blocks of its data only");
    free(data);
}

/* A region written out early (its slab evicted) with other bytes where
 * zeros arrive later: the zeros are punched over them, not skipped. */
static void punches_what_was_written(const char *dir)
{
    size_t size = (size_t)REGIONS * UX_SLAB, tail = 4096;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    const char *why = "";
    if (!(data = open_held(&k, dir, "evicted.bin", size, want)))
        return;
    memset(data + 16ull * UX_SLAB + 4096, 0, size - 16ull * UX_SLAB - 4096);
    sha256_of(data, size, want);
    /* Every slab filling, none complete: their buffers hold data. */
    for (uint64_t r = 0; r < UX_NSLAB; r++)
        ux_sink_write(&k, r * UX_SLAB, data + r * UX_SLAB, UX_SLAB - tail);
    /* Region 16 takes region 0's slab (its data left in the buffer)... */
    ux_sink_write(&k, 16ull * UX_SLAB, data + 16ull * UX_SLAB, 4096);
    for (uint64_t r = 1; r < UX_NSLAB; r++) /* ...and is the least recently used */
        ux_sink_write(&k, r * UX_SLAB + UX_SLAB - tail, data + r * UX_SLAB + UX_SLAB - tail, tail);
    ux_sink_write(&k, 17ull * UX_SLAB, data + 17ull * UX_SLAB, 4096); /* evicts it */
    check(k.evicted == 2, "a region is written out before its zeros arrive");
    release_gate();
    ux_sink_write(&k, UX_SLAB - tail, data + UX_SLAB - tail, tail);
    ux_sink_write(&k, 16ull * UX_SLAB + 4096, data + 16ull * UX_SLAB + 4096, UX_SLAB - 4096);
    ux_sink_write(&k, 17ull * UX_SLAB + 4096, data + 17ull * UX_SLAB + 4096, size - 17ull * UX_SLAB - 4096);
    check(ux_sink_commit(&k, want, &why) == 0, "the file commits with the right SHA-256");
    check(file_holds(dir, "evicted.bin", data, size), "the zeros read back as zeros where other bytes were");
    long long got = allocated(dir, "evicted.bin");
    check(got >= 16 * UX_SLAB && got <= 16 * UX_SLAB + 4096 + 65536, "and take no blocks");
    free(data);
}

static void *keep_it(void *k)
{
    ux_sink_keep(k);
    return NULL;
}

static int quitting(struct ux_sink *k)
{
    pthread_mutex_lock(&k->h.lock);
    int q = k->h.quit;
    pthread_mutex_unlock(&k->h.lock);
    return q;
}

/* The first LEN bytes of DIR/NAME equal P? */
static int starts_with(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    uint8_t *got = malloc(len);
    int same = fd >= 0 && got && pread(fd, got, len, 0) == (ssize_t)len && !memcmp(got, p, len);
    free(got);
    if (fd >= 0)
        close(fd);
    return same;
}

/* A fetch cut short keeps its complete slabs for a resume: those queued
 * for the hash thread are written before the file is closed. */
static void keeps_what_arrived(const char *dir)
{
    size_t size = (size_t)REGIONS * UX_SLAB, got = 4 * UX_SLAB + UX_SLAB / 2, kept = 4 * UX_SLAB;
    uint8_t want[UX_SHA256_LEN], *data;
    struct ux_sink k;
    while (sem_trywait(&go) == 0) /* posts earlier cases did not use */
        ;
    if (!(data = open_held(&k, dir, "kept.bin", size, want)))
        return;
    ux_sink_write(&k, 0, data, got); /* regions 0-3 queued for the held thread, region 4 half filled */
    char tmp[sizeof k.tmp], path[600];
    snprintf(tmp, sizeof tmp, "%s", k.tmp);
    pthread_t t;
    pthread_create(&t, NULL, keep_it, &k);
    for (int i = 0; i < 100000 && !quitting(&k); i++) /* until the keep stops the thread; bounded at 10 s */
        usleep(100);
    release_gate();
    pthread_join(t, NULL);
    check(starts_with(dir, tmp, data, kept), "a kept partial file holds the slabs queued for the hash thread");
    snprintf(path, sizeof path, "%s/%s", dir, tmp);
    unlink(path);
    free(data);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    sem_init(&go, 0, 0);
    waits_rather_than_evicts(argv[1]);
    while (sem_trywait(&go) == 0) /* posts the first case did not use */
        ;
    commits_off_the_caller(argv[1], 0);
    commits_off_the_caller(argv[1], 1);
    refuses_rather_than_waits(argv[1]);
    keeps_holes(argv[1]);
    punches_what_was_written(argv[1]);
    keeps_what_arrived(argv[1]);
    return failures ? 1 : 0;
}
