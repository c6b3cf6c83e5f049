/* A large file's SHA-256 and/or chunk-hash tree, computed by a thread of
 * its own, one file at a time, so the server's loop keeps serving
 * everyone else meanwhile. */
#ifndef UDPXFER_HOST_HASHJOB_H
#define UDPXFER_HOST_HASHJOB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/tree.h"

struct ux_hashjob {
    pthread_t thread;
    int running;           /* a thread exists: joined when collected */
    int done, cancel, err; /* done and err written by the thread */
    char *name;            /* the served name it is for */
    size_t name_len;
    int fd;
    int notify;            /* written (an eventfd) when the job is done; -1: none */
    struct stat st;        /* the version being hashed */
    int want_sha;          /* compute the file's SHA-256 */
    uint32_t tree_cs;      /* and its tree at this chunk size (0: none) */
    uint8_t sha256[UX_SHA256_LEN];
    struct ux_tree tree;
};

/* Start hashing FD (the version ST of NAME); NOTIFY (an eventfd, or -1)
 * is written once it is done. Takes FD on success (0); on failure (-1)
 * the caller keeps it. */
int ux_hashjob_start(struct ux_hashjob *j, const char *name, size_t len, int fd, const struct stat *st,
                     int want_sha, uint32_t tree_cs, int notify);
/* Has the running job finished? */
int ux_hashjob_finished(const struct ux_hashjob *j);
/* Wait for the thread (CANCEL: tell it to stop first). The result stays
 * in J for the caller, who closes FD and frees the name and tree. */
void ux_hashjob_join(struct ux_hashjob *j, int cancel);

#endif
