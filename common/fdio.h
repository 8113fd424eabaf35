/* Whole reads and writes on file descriptors, through EINTR and short counts. */
#ifndef GVM_COMMON_FDIO_H
#define GVM_COMMON_FDIO_H

#include <stddef.h>

/* All len bytes: 0, or -1 with errno set (EIO for a write that took nothing). */
int fd_write_all(int fd, const void *buf, size_t len);

#endif
