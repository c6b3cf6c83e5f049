/* The error vocabulary: every failure an engine or the host layer reports
 * to an application carries one of these codes, each with one meaning. The
 * Lua binding hands out their names (ux_err_name); README.md and
 * lua/udpxfer/init.lua list them. */
#ifndef UDPXFER_ERRORS_H
#define UDPXFER_ERRORS_H

#include <stddef.h>
#include <stdint.h>

enum ux_err {
    UX_OK = 0,
    UX_ERR_NOSERVER, /* nobody answered: no file server, stream receiver or sender in time */
    UX_ERR_NOTFOUND, /* servers answered; none has the name */
    UX_ERR_REFUSED,  /* a server refused the name (not a safe relative path, or its chunk size) */
    UX_ERR_VERSION,  /* no server offers the version asked for */
    UX_ERR_STALE,    /* the file changed on the server during the transfer */
    UX_ERR_CORRUPT,  /* verification failed: the whole file's or the stream's SHA-256 */
    UX_ERR_TIMEOUT,  /* every server of a file transfer stopped answering */
    UX_ERR_BROKEN,   /* a stream ended early: its peer went silent or aborted */
    UX_ERR_BUSY,     /* the stream receiver serves another sender */
    UX_ERR_IO,       /* a local I/O error: output folder missing, disk full, input unreadable */
    UX_ERR_USAGE,    /* a bad value at run time: an address that does not resolve, an option */
    UX_ERR_INUSE,    /* the port is taken */
    UX_ERR_CLOSED,   /* closed before it finished */
    UX_ERR_PENDING,  /* not finished yet */
    UX_ERR_UNSAFE,   /* a listing names a path that would leave the folder, or is malformed */
    UX_ERR_COUNT
};

/* "noserver", "notfound", ...; "error" for a value outside the table. */
const char *ux_err_name(int code);

/* Text a peer sent, fit to print: bytes outside printable ASCII become
 * \xNN, so no terminal escape or forged line gets through. OUT (CAP > 0)
 * is always terminated; what does not fit is cut. */
void ux_printable(char *out, size_t cap, const uint8_t *in, size_t n);

#endif
