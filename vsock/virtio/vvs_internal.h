/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vvs_internal.h - what the files of vsock/virtio share, not for users.
 */
#ifndef VSOCK_VVS_INTERNAL_H
#define VSOCK_VVS_INTERNAL_H

#include "vsock/virtio/virtio_vsock.h"

size_t vvs_queue_room(const struct vvs_queue *q);
/* Copy in as much as fits (less if a chunk cannot be allocated). */
size_t vvs_queue_push(struct vvs_queue *q, const uint8_t *p, size_t len);
size_t vvs_queue_pop(struct vvs_queue *q, uint8_t *p, size_t cap);
/* Copy without taking; vvs_queue_pop(q, NULL, n) then drops n bytes. */
size_t vvs_queue_peek(const struct vvs_queue *q, uint8_t *p, size_t cap);
void vvs_queue_free(struct vvs_queue *q);

#endif
