/* The monotonic clock the host feeds the engines, in microseconds. */
#ifndef UDPXFER_HOST_CLOCK_H
#define UDPXFER_HOST_CLOCK_H

#include <stdint.h>

uint64_t ux_now_us(void);

#endif
