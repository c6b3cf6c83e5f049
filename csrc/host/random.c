#include "random.h"

#include <openssl/rand.h>

int ux_host_random(void *ud, void *buf, size_t n)
{
    (void)ud;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}
