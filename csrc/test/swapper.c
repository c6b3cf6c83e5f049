/* A hostile local user for the specs: exchanges two entries of a folder
 * (renameat2 RENAME_EXCHANGE) in a loop, so a folder a sync works on is a
 * symlink at random moments. Bounded in time and in count; a seeded
 * pause of 0 to 255 spins between swaps varies where they fall.
 * Usage: swapper DIR A B SECONDS MAX_SWAPS SEED. Prints "ready" once it
 * starts and "swaps N" at the end; exits 0 if every exchange worked. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: swapper DIR A B SECONDS MAX_SWAPS SEED\n");
        return 2;
    }
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        perror(argv[1]);
        return 1;
    }
    double end = now() + atof(argv[4]);
    long max = atol(argv[5]), n = 0;
    unsigned rng = (unsigned)atol(argv[6]);
    volatile unsigned sink = 0;
    printf("ready\n");
    fflush(stdout);
    while (n < max && ((n & 255) || now() < end)) {
        if (renameat2(dfd, argv[2], dfd, argv[3], RENAME_EXCHANGE)) {
            perror("renameat2");
            return 1;
        }
        n++;
        rng = rng * 1103515245u + 12345u;
        for (unsigned i = (rng >> 16) & 255; i; i--)
            sink += i;
    }
    /* An even count leaves both names as they were. */
    if ((n & 1) && renameat2(dfd, argv[2], dfd, argv[3], RENAME_EXCHANGE) == 0)
        n++;
    printf("swaps %ld\n", n);
    return 0;
}
