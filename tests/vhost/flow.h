/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flow.h - one-way flows through the relay's virtio device, with the
 * synthetic driver (driver.h) as the guest: shared by the unit test and the
 * benchmark. The bytes follow a pattern and the receiving end checks every
 * one; the guest follows Linux's credit rules (it never asks for credit).
 */
#ifndef TESTS_VHOST_FLOW_H
#define TESTS_VHOST_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/vhost/driver.h"
#include "vsock/virtio/virtio.h"

uint8_t vflow_pattern(uint64_t off);
/* 0 turns the pattern off (benchmarks: the bytes are then not checked). */
extern int vflow_verify;
/* The guest, in its own process: accept one connection on `port` and send
 * (to_guest 0) or receive (to_guest 1) `total` bytes, `chunk` per packet,
 * into RX buffers of `rxbuf` bytes. Returns an exit status (0: all good). */
int vflow_guest(const char *path, uint64_t guest_cid, uint32_t port, size_t rxbuf, int to_guest,
		uint64_t total, size_t chunk);
/* For the owner's vvs_ops.deliver: data the guest sends in a flow is taken
 * (copied out and checked) straight from its packets, as the relay's hybrid
 * bridge does; without it vflow_host reads with vvs_read. */
size_t vflow_deliver(struct vvs_conn *c, const uint8_t *p, size_t len);
/* The relay's side on a ready device: connect to `port`, move `total`
 * bytes, release. MiB/s, or -1 with ERR set. */
double vflow_host(uv_loop_t *loop, struct vhu_device *dev, uint32_t port, int to_guest,
		  uint64_t total, size_t chunk, char *err, size_t errlen);

#endif
