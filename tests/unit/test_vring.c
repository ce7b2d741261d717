/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vring.c - guest memory translation and split virtqueues over a fake
 * guest memory: whole-extent address checks (also across a region's end),
 * chains with readable and writable parts, indirect tables, and every
 * malformed shape rejected: loops, nested indirect, bad indirect sizes,
 * out-of-range indices, writable before readable, a driver claiming more
 * than the ring holds. Used ring contents and EVENT_IDX suppression; a
 * used ring the guest scribbles on is not read.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "vsock/virtio/vring.h"
#include "tests/unit/unit.h"

#define GPA 0x100000ull
#define UADDR 0x7f0000000000ull
#define MEM (1u << 20)
#define NUM 16
#define DESC_OFF 0x0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define DATA_OFF 0x10000

static struct guestmem gm;
static uint8_t *mem;
static struct vring vr;
static uint16_t avail_idx;

static struct vring_desc *desc(unsigned i)
{
	return (struct vring_desc *)(mem + DESC_OFF) + i;
}

static uint16_t *avail(void)
{
	return (uint16_t *)(mem + AVAIL_OFF);
}

static void setup(void)
{
	mem = aligned_alloc(4096, MEM);
	memset(mem, 0, MEM);
	gm.n = 1;
	gm.r[0] = (struct gm_region){ .gpa = GPA, .size = MEM, .uaddr = UADDR, .host = mem };
	ck_assert_int_eq(vring_setup(&vr, &gm, NUM, UADDR + DESC_OFF, UADDR + AVAIL_OFF,
				     UADDR + USED_OFF, 1), 0);
	avail_idx = 0;
}

static void teardown(void)
{
	free(mem);
}

static void set_desc(unsigned i, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	*desc(i) = (struct vring_desc){ gpa, len, flags, next };
}

static void make_avail(uint16_t head)
{
	avail()[2 + avail_idx % NUM] = head;
	avail_idx++;
	avail()[1] = avail_idx;
}

START_TEST(memory_extents)
{
	ck_assert_ptr_eq(gm_from_gpa(&gm, GPA, 1), mem);
	ck_assert_ptr_eq(gm_from_gpa(&gm, GPA + MEM - 4, 4), mem + MEM - 4);
	ck_assert_ptr_null(gm_from_gpa(&gm, GPA + MEM - 4, 5));       /* crosses the end */
	ck_assert_ptr_null(gm_from_gpa(&gm, GPA - 1, 2));             /* starts before */
	ck_assert_ptr_null(gm_from_gpa(&gm, GPA, 0));
	ck_assert_ptr_null(gm_from_gpa(&gm, 0xffffffffffffff00ull, 0x200));   /* wraps */
	ck_assert_ptr_eq(gm_from_uaddr(&gm, UADDR + 8, 8), mem + 8);
	ck_assert_ptr_null(gm_from_uaddr(&gm, GPA, 8));
	/* rings must fit, and num must be a power of two */
	ck_assert_int_eq(vring_setup(&vr, &gm, 12, UADDR, UADDR + AVAIL_OFF, UADDR + USED_OFF, 0), -1);
	ck_assert_int_eq(vring_setup(&vr, &gm, 16, UADDR + MEM - 16, UADDR, UADDR, 0), -1);
}
END_TEST

START_TEST(chain_readable_then_writable)
{
	struct vring_chain ch;

	set_desc(0, GPA + DATA_OFF, 44, VRING_DESC_F_NEXT, 5);
	set_desc(5, GPA + DATA_OFF + 100, 100, VRING_DESC_F_NEXT, 3);
	set_desc(3, GPA + DATA_OFF + 4096, 4096, VRING_DESC_F_WRITE, 0);
	make_avail(0);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
	ck_assert_uint_eq(ch.head, 0);
	ck_assert_uint_eq(ch.nout, 2);
	ck_assert_uint_eq(ch.out_len, 144);
	ck_assert_ptr_eq(ch.out[1].iov_base, mem + DATA_OFF + 100);
	ck_assert_uint_eq(ch.nin, 1);
	ck_assert_uint_eq(ch.in_len, 4096);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EMPTY);

	vring_push(&vr, 0, 1234);
	const uint16_t *used = (const uint16_t *)(mem + USED_OFF);
	const struct vring_used_elem *e = (const struct vring_used_elem *)(used + 2);
	ck_assert_uint_eq(used[1], 1);
	ck_assert_uint_eq(e[0].id, 0);
	ck_assert_uint_eq(e[0].len, 1234);
}
END_TEST

START_TEST(indirect_table)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);
	struct vring_chain ch;

	table[0] = (struct vring_desc){ GPA + DATA_OFF + 0x1000, 44, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ GPA + DATA_OFF + 0x2000, 8192, VRING_DESC_F_NEXT, 2 };
	table[2] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 100, 0, 0 };
	set_desc(7, GPA + DATA_OFF, 3 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	make_avail(7);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
	ck_assert_uint_eq(ch.nout, 3);
	ck_assert_uint_eq(ch.out_len, 44 + 8192 + 100);
}
END_TEST

/* A malformed chain is consumed (so it can be returned) and named. */
static void expect_bad(uint16_t head, const char *why)
{
	struct vring_chain ch;

	make_avail(head);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EBADCHAIN);
	ck_assert_uint_eq(ch.head, head);
	ck_assert_str_eq(ch.error, why);
}

START_TEST(malformed_chains)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);

	set_desc(0, GPA + DATA_OFF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, GPA + DATA_OFF, 16, VRING_DESC_F_NEXT, 0);
	expect_bad(0, "descriptor chain loops");

	set_desc(2, GPA + MEM - 8, 16, 0, 0);
	expect_bad(2, "descriptor outside guest memory");

	set_desc(3, GPA + DATA_OFF, 16, VRING_DESC_F_NEXT, 99);
	expect_bad(3, "descriptor index out of range");

	set_desc(4, GPA + DATA_OFF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 5);
	set_desc(5, GPA + DATA_OFF, 16, 0, 0);
	expect_bad(4, "readable descriptor after a writable one");

	table[0] = (struct vring_desc){ GPA + DATA_OFF + 64, 32, VRING_DESC_F_INDIRECT, 0 };
	set_desc(6, GPA + DATA_OFF, 16, VRING_DESC_F_INDIRECT, 0);
	expect_bad(6, "nested indirect table");

	set_desc(8, GPA + DATA_OFF, 24, VRING_DESC_F_INDIRECT, 0);
	expect_bad(8, "indirect table of a bad size");

	set_desc(9, GPA + DATA_OFF, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 0);
	expect_bad(9, "indirect descriptor with NEXT");

	/* an indirect table that loops within itself */
	table[0] = (struct vring_desc){ GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ GPA + DATA_OFF, 8, VRING_DESC_F_NEXT, 0 };
	set_desc(10, GPA + DATA_OFF, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	expect_bad(10, "descriptor chain loops");
}
END_TEST

/* Every descriptor counts towards the chain's bound, zero-length and
 * indirect ones too: 127 zero-length ones and a header make a chain of
 * VRING_MAX_CHAIN with the indirect descriptor, one more is too long. */
START_TEST(chain_bound_counts_every_descriptor)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);
	unsigned n = VRING_MAX_CHAIN - 1;
	struct vring_chain ch;

	for (unsigned i = 0; i + 1 < n; i++)
		table[i] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 0, VRING_DESC_F_NEXT,
						(uint16_t)(i + 1) };
	table[n - 1] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 44, 0, 0 };
	set_desc(0, GPA + DATA_OFF, n * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
	ck_assert_uint_eq(ch.steps, VRING_MAX_CHAIN);
	ck_assert_uint_eq(ch.nout, 1);

	table[n - 1] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 0, VRING_DESC_F_NEXT,
					    (uint16_t)n };
	table[n] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 44, 0, 0 };
	set_desc(0, GPA + DATA_OFF, (n + 1) * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EBADCHAIN);
	ck_assert_str_eq(ch.error, "descriptor chain longer than 128 descriptors");
	ck_assert_uint_eq(ch.steps, VRING_MAX_CHAIN + 1);
}
END_TEST

START_TEST(broken_ring)
{
	struct vring_chain ch;

	avail()[1] = NUM + 1;     /* more available than the ring holds */
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EBADRING);
	avail()[1] = 1;
	avail()[2] = NUM;         /* a head outside the table */
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EBADRING);
}
END_TEST

START_TEST(event_idx_suppresses_interrupts)
{
	uint16_t *used_event = avail() + 2 + NUM;

	vring_push(&vr, 0, 1);
	ck_assert(vring_need_notify(&vr));        /* first time: always */
	*used_event = 5;                           /* driver: tell me when idx passes 5 */
	vring_push(&vr, 0, 1);
	ck_assert(!vring_need_notify(&vr));        /* used idx 2 */
	for (int i = 0; i < 4; i++)
		vring_push(&vr, 0, 1);                 /* used idx 6: passed 5 */
	ck_assert(vring_need_notify(&vr));
	vring_enable_kicks(&vr);
	const uint16_t *used = (const uint16_t *)(mem + USED_OFF);
	ck_assert_uint_eq(used[2 + 2 * NUM], vr.last_avail);   /* avail_event */
}
END_TEST

/* The guest scribbles over the used ring (its index and elements) between
 * the device's pushes: the device goes on from its own used index, read
 * once at set-up, and writes each element where that index says. */
START_TEST(scribbled_used_ring_is_ignored)
{
	uint16_t *used = (uint16_t *)(mem + USED_OFF);
	struct vring_used_elem *elem = (struct vring_used_elem *)(used + 2);
	struct vring_chain ch;

	vring_push(&vr, 3, 100);
	ck_assert_uint_eq(used[1], 1);
	for (int round = 0; round < 3; round++) {
		used[1] = (uint16_t)(0x7777 + round);          /* the index */
		memset(elem, 0xff, NUM * sizeof(*elem));        /* every element */
		vring_push(&vr, (uint16_t)(4 + round), 200);
		ck_assert_uint_eq(used[1], 2 + round);
		ck_assert_uint_eq(elem[1 + round].id, 4 + round);
		ck_assert_uint_eq(elem[1 + round].len, 200);
		ck_assert_uint_eq(elem[2 + round].id, 0xffffffffu);   /* nothing else written */
	}
	/* and taking chains never reads the used ring */
	set_desc(0, GPA + DATA_OFF, 44, 0, 0);
	make_avail(0);
	used[1] = 0;
	ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
	vring_push(&vr, ch.head, 0);
	ck_assert_uint_eq(used[1], 5);
	/* set up again (the VMM's SET_VRING_ADDR, a new memory table): the
	 * index is read once, there */
	used[1] = 9;
	ck_assert_int_eq(vring_setup(&vr, &gm, NUM, UADDR + DESC_OFF, UADDR + AVAIL_OFF,
				     UADDR + USED_OFF, 1), 0);
	used[1] = 0x4000;
	vring_push(&vr, 1, 0);
	ck_assert_uint_eq(used[1], 10);
	ck_assert_uint_eq(elem[9 % NUM].id, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vring");
	TCase *tc = tcase_create("split");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, memory_extents);
	tcase_add_test(tc, scribbled_used_ring_is_ignored);
	tcase_add_test(tc, chain_readable_then_writable);
	tcase_add_test(tc, indirect_table);
	tcase_add_test(tc, malformed_chains);
	tcase_add_test(tc, chain_bound_counts_every_descriptor);
	tcase_add_test(tc, broken_ring);
	tcase_add_test(tc, event_idx_suppresses_interrupts);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
