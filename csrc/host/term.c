#include "term.h"

#include <sys/ioctl.h>
#include <unistd.h>

int ux_term_width(int fd)
{
    if (!isatty(fd))
        return -1;
    struct winsize ws;
    return ioctl(fd, TIOCGWINSZ, &ws) ? 0 : ws.ws_col;
}
