/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vsock_internal.h - helpers shared by the transports inside vsock/.
 */
#ifndef VSOCK_INTERNAL_H
#define VSOCK_INTERNAL_H

#include "vsock/vsock.h"

/* Start a non-blocking connect to a Unix stream socket (see transport open). */
int vsock_open_unix_path(const char *path, int *fd);
/* The hybrid "CONNECT <port>" line and the check of its "OK <n>" reply. */
size_t vsock_hybrid_hello(const struct vsock_target *t, char *buf, size_t len);
int vsock_hybrid_check_reply(const char *line, size_t len);

#endif
