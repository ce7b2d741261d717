/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_vring.c - libFuzzer target for descriptor-chain parsing with guest
 * memory under the fuzzer's control: the input becomes a 64 KiB guest
 * memory region holding the descriptor table, the avail and used rings and
 * every indirect table. Chains are popped until the ring is empty or
 * broken; every segment handed out must lie inside guest memory, every
 * malformed chain must still be returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsock/virtio/vring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define MEM (64 * 1024)
#define GPA 0x40000000ull
#define UADDR 0x7f0000000000ull

static _Alignas(4096) uint8_t mem[MEM];

static void check_iov(const struct iovec *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = v[i].iov_base;

		CHECK(p >= mem && v[i].iov_len <= MEM && p + v[i].iov_len <= mem + MEM);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guestmem gm = { .n = 1 };
	struct vring vr;
	struct vring_chain ch;
	unsigned num;

	if (size < 2)
		return 0;
	num = 1u << (data[0] % 9);          /* 1 .. 256 */
	memset(mem, 0, sizeof(mem));
	memcpy(mem, data + 1, size - 1 < MEM ? size - 1 : MEM);
	gm.r[0] = (struct gm_region){ .gpa = GPA, .size = MEM, .uaddr = UADDR, .host = mem };
	/* desc table at 0, avail at 0x1000, used at 0x2000 (16 * 256 = 0x1000) */
	if (vring_setup(&vr, &gm, num, UADDR, UADDR + 0x1000, UADDR + 0x2000, data[0] & 0x80) != 0)
		abort();
	for (int i = 0; i < 512; i++) {
		enum vring_status st = vring_pop(&vr, &gm, &ch);

		if (st == VRING_EMPTY || st == VRING_EBADRING)
			break;
		if (st == VRING_OK) {
			check_iov(ch.out, ch.nout);
			check_iov(ch.in, ch.nin);
			CHECK(ch.nout <= VRING_MAX_IOV && ch.nin <= VRING_MAX_IOV);
		} else {
			CHECK(ch.error != NULL);
		}
		CHECK(ch.head < num);
		vring_push(&vr, ch.head, 0);
		(void)vring_need_notify(&vr);
	}
	vring_enable_kicks(&vr);
	return 0;
}
