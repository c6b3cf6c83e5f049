/* The terminal a progress line goes to. */
#ifndef UDPXFER_HOST_TERM_H
#define UDPXFER_HOST_TERM_H

/* FD's columns if it is a terminal (0 if it does not say), -1 if it is none. */
int ux_term_width(int fd);

#endif
