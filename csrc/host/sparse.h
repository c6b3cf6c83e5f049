/* Regular files read and written at offsets, whole, and with their holes:
 * a hole is not read (SEEK_DATA, SEEK_HOLE say where data lies) and blocks
 * of zeros are not written (left or punched holes), so a sparse file
 * costs the reads, writes and blocks of its data only, and its holes fill
 * no page cache. */
#ifndef UDPXFER_HOST_SPARSE_H
#define UDPXFER_HOST_SPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Read or write exactly N bytes at OFF. Return 0 or an errno value (EIO
 * if the file ends first). */
int ux_pread_full(int fd, uint8_t *buf, size_t n, uint64_t off);
int ux_pwrite_full(int fd, const uint8_t *buf, size_t n, uint64_t off);

/* Where a file's data lies, as SEEK_DATA and SEEK_HOLE last said:
 * [from, data) is a hole, [data, hole) data. All zero: nothing known. */
struct ux_extent {
    uint64_t from, data, hole;
};

/* ux_pread_full, the holes among the N bytes taken as the zeros they are.
 * X keeps what was learnt for the next read (zeroed for a new version of
 * a file). */
int ux_read_sparse(int fd, struct ux_extent *x, uint8_t *buf, size_t n, uint64_t off);
/* Do the N bytes of FD at OFF lie in a hole? (X as above.) */
int ux_hole_at(int fd, struct ux_extent *x, uint64_t off, size_t n);

/* The block by which FD's zeros are left holes: its file system's, if it
 * divides 1 MiB. */
uint32_t ux_hole_block(int fd);
/* Write N bytes of BUF at OFF, its runs of BLOCK-sized blocks of zeros
 * left holes: skipped from HOLE_FROM on (the file has a hole there
 * already: never written or allocated), punched below it (written as
 * zeros where the file system cannot punch). *ZEROS is set if there was
 * such a block. Returns 0 or an errno value. */
int ux_write_sparse(int fd, const uint8_t *buf, size_t n, uint64_t off, uint32_t block, uint64_t hole_from,
                    int *zeros);

#endif
