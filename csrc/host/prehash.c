/* Files written since they were served are hashed again before anyone
 * asks: the catalogs' inotify descriptors sit in the file set's epoll set
 * (socket servers), so a change wakes the server; its events are only
 * collected here (applied when a listing asks), and a file a writer closed
 * (or moved in, or touched) goes to the hashing thread, with its tree at
 * the chunk size last asked for. The next listing then finds its SHA-256,
 * and a client holding the older copy its tree, without waiting. Bounded:
 * the one thread, and only while no client waits for it (a file rewritten
 * without end costs that thread, never a client's turn); a queue of
 * UX_PREHASH_QUEUE names; files already served once and at least async_min
 * large (smaller ones are hashed in the loop when listed). A file never
 * asked for waits until it is. */
#include "fileset_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "beneath.h"
#include "catalog.h"
#include "clock.h"

#define JOB_DONE UINT32_MAX /* the epoll tag of the hashing thread's eventfd */
#define CLIENT_FIRST_US 1000000 /* after a client found the thread busy, it has it first this long */

struct written_ctx {
    struct ux_fileset *fs;
    int root;
};

/* The chunk size of E's most recently used tree, else that of the last
 * listing of its tree: what a client holding the older copy asks for. */
static uint32_t tree_chunk_size(const struct ux_fileset *fs, const struct ux_entry *e)
{
    const struct ux_ftree *best = NULL;
    for (int i = 0; i < UX_FS_TREES; i++)
        if (e->trees[i].cs && (!best || e->trees[i].last_use > best->last_use))
            best = &e->trees[i];
    return best ? best->cs : fs->roots[e->root].list_cs;
}

static void queue(struct ux_fileset *fs, int root, const char *name, size_t rel, uint32_t cs)
{
    for (int i = 0; i < fs->preq_n; i++)
        if (!strcmp(fs->preq[i].name, name))
            return;
    if (fs->preq_n == UX_PREHASH_QUEUE)
        return;
    char *copy = strdup(name);
    if (!copy)
        return;
    fs->preq[fs->preq_n++] = (struct ux_prehash){copy, rel, root, cs};
}

static void on_written(void *ud, const char *rel)
{
    struct written_ctx *w = ud;
    struct ux_fileset *fs = w->fs;
    if (!fs->async_min)
        return;
    char name[UX_MAX_NAME + 1];
    int n = w->root ? snprintf(name, sizeof name, "%s/%s", fs->roots[w->root].name, rel)
                    : snprintf(name, sizeof name, "%s", rel);
    if (n < 0 || (size_t)n >= sizeof name)
        return;
    struct ux_entry *e = ux_find_entry(fs, name, (size_t)n);
    if (e && e->generation) /* else never served: hashed when asked for */
        queue(fs, w->root, name, (size_t)n - strlen(rel), tree_chunk_size(fs, e));
}

void ux_prehash_watch(struct ux_fileset *fs, int root)
{
    int fd = ux_catalog_fd(fs->roots[root].catalog);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)root};
    /* unwatched (a sim server, or an error), changes wait for the next listing */
    if (fs->watch && fd >= 0 && fs->pfd >= 0 && epoll_ctl(fs->pfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        fs->roots[root].watch_fd = fd;
}

static void take_changes(struct ux_fileset *fs)
{
    struct epoll_event ev[UX_FS_ROOTS + 1];
    int n = fs->pfd >= 0 ? epoll_wait(fs->pfd, ev, UX_FS_ROOTS + 1, 0) : 0;
    for (int i = 0; i < n; i++) {
        uint32_t root = ev[i].data.u32;
        if (root == JOB_DONE || (int)root >= fs->nroots || !fs->roots[root].catalog)
            continue;
        struct ux_root *r = &fs->roots[root];
        if (ux_catalog_fd(r->catalog) < 0) { /* out of watches: it rescans when listed, events unread */
            (void)epoll_ctl(fs->pfd, EPOLL_CTL_DEL, r->watch_fd, NULL);
            r->watch_fd = -1;
            continue;
        }
        ux_catalog_collect(r->catalog);
        struct written_ctx w = {fs, (int)root};
        ux_catalog_written(r->catalog, on_written, &w);
    }
}

/* Is the file E names, open as FD, a new version worth hashing ahead? */
static int worth(const struct ux_fileset *fs, const struct ux_entry *e, int fd, struct stat *st)
{
    return e && fd >= 0 && fstat(fd, st) == 0 && S_ISREG(st->st_mode) && (uint64_t)st->st_size >= fs->async_min &&
           !ux_same_file(e, st);
}

static void start_next(struct ux_fileset *fs)
{
    uint64_t t = ux_now_us();
    while (!fs->job.running && fs->preq_n && (!fs->client_waiting_at || t - fs->client_waiting_at >= CLIENT_FIRST_US)) {
        struct ux_prehash p = fs->preq[0];
        memmove(fs->preq, fs->preq + 1, (size_t)--fs->preq_n * sizeof *fs->preq);
        int fd = ux_open_beneath(fs->roots[p.root].fd, p.name + p.rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, UX_FOLLOW_INSIDE);
        struct stat st;
        struct ux_entry *e = ux_find_entry(fs, p.name, strlen(p.name));
        int take = worth(fs, e, fd, &st);
        uint32_t cs = take && p.cs && ux_tree_fits((uint64_t)st.st_size, p.cs) ? p.cs : 0;
        fs->ahead = 1;
        if (take && ux_hash_off_loop(fs, p.name, strlen(p.name), fd, &st, 1, cs)) {
            fs->prehashed++;
        } else if (fd >= 0) {
            close(fd);
        }
        fs->ahead = 0;
        free(p.name);
    }
}

void ux_prehash_step(struct ux_fileset *fs)
{
    take_changes(fs);
    start_next(fs);
}

void ux_prehash_free(struct ux_fileset *fs)
{
    for (int i = 0; i < fs->preq_n; i++)
        free(fs->preq[i].name);
    fs->preq_n = 0;
}
