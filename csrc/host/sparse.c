#include "sparse.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ux_pread_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO;
        buf += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

int ux_pwrite_full(int fd, const uint8_t *buf, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        buf += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return 0;
}

/* Where the data at or after OFF lies. Past the last data (ENXIO), a hole
 * up to the end of the file and no further: reading there fails as a read
 * does. Where the file system cannot tell, everything is data. */
static void find_data(int fd, struct ux_extent *x, uint64_t off)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    off_t h = d < 0 ? -1 : lseek(fd, d, SEEK_HOLE);
    struct stat st;
    x->from = off;
    if (d < 0 && errno == ENXIO && fstat(fd, &st) == 0 && (uint64_t)st.st_size > off) {
        x->data = x->hole = (uint64_t)st.st_size;
    } else if (d < 0 || h < 0) {
        x->data = off;
        x->hole = UINT64_MAX;
    } else {
        x->data = (uint64_t)d;
        x->hole = (uint64_t)h;
    }
}

int ux_hole_at(int fd, struct ux_extent *x, uint64_t off, size_t n)
{
    if (off < x->from || off >= x->hole)
        find_data(fd, x, off);
    return off + n <= x->data;
}

int ux_read_sparse(int fd, struct ux_extent *x, uint8_t *buf, size_t n, uint64_t off)
{
    for (uint64_t end = off + n; off < end;) {
        if (off < x->from || off >= x->hole)
            find_data(fd, x, off);
        uint64_t stop = off < x->data ? x->data : x->hole;
        size_t len = (size_t)((stop < end ? stop : end) - off);
        int err = off < x->data ? (memset(buf, 0, len), 0) : ux_pread_full(fd, buf, len, off);
        if (err)
            return err;
        buf += len;
        off += len;
    }
    return 0;
}

uint32_t ux_hole_block(int fd)
{
    struct stat st;
    uint64_t b = fstat(fd, &st) == 0 ? (uint64_t)st.st_blksize : 0;
    return b >= 512 && b <= (1u << 20) && !(b & (b - 1)) ? (uint32_t)b : 4096;
}

/* Is each of the N bytes at P zero? */
static int all_zero(const uint8_t *p, size_t n) { return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0); }

/* The N zeros of BUF at OFF, as ux_write_sparse leaves them. */
static int write_zeros(int fd, const uint8_t *zeros, size_t n, uint64_t off, uint64_t hole_from)
{
    if (off >= hole_from || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) == 0)
        return 0;
    return ux_pwrite_full(fd, zeros, n, off);
}

int ux_write_sparse(int fd, const uint8_t *buf, size_t n, uint64_t off, uint32_t block, uint64_t hole_from,
                    int *zeros)
{
    for (size_t at = 0, end; at < n; at = end) {
        int zero = -1;
        for (end = at; end < n;) {
            size_t len = n - end < block ? n - end : block;
            int z = all_zero(buf + end, len);
            if (zero >= 0 && z != zero)
                break;
            zero = z;
            end += len;
        }
        *zeros |= zero;
        int err = zero ? write_zeros(fd, buf + at, end - at, off + at, hole_from)
                       : ux_pwrite_full(fd, buf + at, end - at, off + at);
        if (err)
            return err;
    }
    return 0;
}
