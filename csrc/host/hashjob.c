#include "hashjob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filehash.h"

static void *job_main(void *arg)
{
    struct ux_hashjob *j = arg;
    struct ux_sha *sha = ux_sha_new(), *whole = j->want_sha ? ux_sha_new() : NULL;
    uint64_t size = (uint64_t)j->st.st_size;
    int err;
    if (!sha || (j->want_sha && !whole))
        err = ENOMEM;
    else if (j->tree_cs)
        err = ux_tree_fd(&j->tree, sha, j->fd, size, j->tree_cs, whole, j->sha256, &j->cancel);
    else
        err = ux_sha_fd(sha, j->fd, size, &j->cancel, j->sha256);
    ux_sha_free(sha);
    ux_sha_free(whole);
    j->err = err;
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    if (j->notify >= 0) {
        uint64_t one = 1;
        (void)!write(j->notify, &one, sizeof one);
    }
    return NULL;
}

int ux_hashjob_start(struct ux_hashjob *j, const char *name, size_t len, int fd, const struct stat *st,
                     int want_sha, uint32_t tree_cs, int notify)
{
    memset(j, 0, sizeof *j);
    j->fd = fd;
    j->notify = notify;
    j->st = *st;
    j->name_len = len;
    j->want_sha = want_sha;
    j->tree_cs = tree_cs;
    if (!(j->name = strndup(name, len)))
        return -1;
    if (pthread_create(&j->thread, NULL, job_main, j)) {
        free(j->name);
        j->name = NULL;
        return -1;
    }
    j->running = 1;
    return 0;
}

int ux_hashjob_finished(const struct ux_hashjob *j)
{
    return j->running && __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

void ux_hashjob_join(struct ux_hashjob *j, int cancel)
{
    if (!j->running)
        return;
    if (cancel)
        __atomic_store_n(&j->cancel, 1, __ATOMIC_RELAXED);
    pthread_join(j->thread, NULL);
    j->running = 0;
}
