/* SPDX-License-Identifier: Apache-2.0 */
/*
 * packet.c - the virtio-vsock packet header: 44 bytes, little endian,
 * packed (virtio spec, device-types/vsock), its op names, and a trace line
 * in the format of the kernel's vsock trace events.
 */
#include "vsock/virtio/virtio_vsock.h"

#include <stdio.h>

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void vvs_hdr_encode(const struct vvs_hdr *h, uint8_t out[VVS_HDR_SIZE])
{
	put(out + 0, h->src_cid, 8);
	put(out + 8, h->dst_cid, 8);
	put(out + 16, h->src_port, 4);
	put(out + 20, h->dst_port, 4);
	put(out + 24, h->len, 4);
	put(out + 28, h->type, 2);
	put(out + 30, h->op, 2);
	put(out + 32, h->flags, 4);
	put(out + 36, h->buf_alloc, 4);
	put(out + 40, h->fwd_cnt, 4);
}

void vvs_hdr_decode(const uint8_t in[VVS_HDR_SIZE], struct vvs_hdr *h)
{
	h->src_cid = get(in + 0, 8);
	h->dst_cid = get(in + 8, 8);
	h->src_port = (uint32_t)get(in + 16, 4);
	h->dst_port = (uint32_t)get(in + 20, 4);
	h->len = (uint32_t)get(in + 24, 4);
	h->type = (uint16_t)get(in + 28, 2);
	h->op = (uint16_t)get(in + 30, 2);
	h->flags = (uint32_t)get(in + 32, 4);
	h->buf_alloc = (uint32_t)get(in + 36, 4);
	h->fwd_cnt = (uint32_t)get(in + 40, 4);
}

static const char *vvs_op_name(uint16_t op)
{
	switch (op) {
	case VVS_OP_REQUEST:        return "REQUEST";
	case VVS_OP_RESPONSE:       return "RESPONSE";
	case VVS_OP_RST:            return "RST";
	case VVS_OP_SHUTDOWN:       return "SHUTDOWN";
	case VVS_OP_RW:             return "RW";
	case VVS_OP_CREDIT_UPDATE:  return "CREDIT_UPDATE";
	case VVS_OP_CREDIT_REQUEST: return "CREDIT_REQUEST";
	}
	return "INVALID";
}

void vvs_hdr_format(const struct vvs_hdr *h, char *buf, size_t len)
{
	snprintf(buf, len, "%llu:%u -> %llu:%u len=%u type=%s op=%s flags=0x%x buf_alloc=%u fwd_cnt=%u",
		 (unsigned long long)h->src_cid, h->src_port, (unsigned long long)h->dst_cid,
		 h->dst_port, h->len, h->type == VVS_TYPE_STREAM ? "STREAM" : "UNKNOWN",
		 vvs_op_name(h->op), h->flags, h->buf_alloc, h->fwd_cnt);
}
