#include "rng.h"

#include <string.h>

int ux_rng_seeded(void *ud, void *buf, size_t n)
{
    uint64_t *state = ud;
    uint8_t *p = buf;
    while (n) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        size_t k = n < sizeof z ? n : sizeof z;
        memcpy(p, &z, k);
        p += k;
        n -= k;
    }
    return 0;
}
