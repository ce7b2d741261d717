/*
 * vsock_internal.h - helpers shared by the transports inside vsock/.
 */
#ifndef VSOCK_INTERNAL_H
#define VSOCK_INTERNAL_H

#include "vsock.h"

/* Start a non-blocking connect to a Unix stream socket (see transport open). */
int vsock_open_unix_path(const char *path, int *fd);

#endif
