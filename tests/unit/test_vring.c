/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vring.c - guest memory translation and split virtqueues over a fake
 * guest memory: whole-extent address checks (also across a region's end),
 * chains with readable and writable parts, indirect tables, and every
 * malformed shape rejected: loops, nested indirect, bad indirect sizes,
 * out-of-range indices, writable before readable, a driver claiming more
 * than the ring holds, more than 64 segments a direction, an indirect table
 * too large or outside memory. Used ring contents and EVENT_IDX
 * suppression; a used ring the guest scribbles on is not read. A guest
 * thread rewriting descriptors, tables and indices while chains are taken:
 * every segment inside guest memory, every chain within its bounds.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* VRING_MAX_IOV (64) segments each way fit, one more is a bad chain,
 * readable or writable (zero-length descriptors are no segment). */
START_TEST(segments_bounded_each_way)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);
	struct vring_chain ch;

	for (int write = 0; write <= 1; write++) {
		uint16_t flags = write ? VRING_DESC_F_WRITE : 0;

		for (unsigned n = VRING_MAX_IOV; n <= VRING_MAX_IOV + 1; n++) {
			for (unsigned i = 0; i < n; i++)
				table[i] = (struct vring_desc){ GPA + DATA_OFF + 0x8000 + i, 1,
								(uint16_t)(flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
								(uint16_t)(i + 1) };
			set_desc(0, GPA + DATA_OFF, n * sizeof(struct vring_desc),
				 VRING_DESC_F_INDIRECT, 0);
			make_avail(0);
			if (n == VRING_MAX_IOV) {
				ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
				ck_assert_uint_eq(write ? ch.nin : ch.nout, VRING_MAX_IOV);
				ck_assert_uint_eq(write ? ch.in_len : ch.out_len, VRING_MAX_IOV);
			} else {
				ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_EBADCHAIN);
				ck_assert_str_eq(ch.error, "too many segments");
				ck_assert_uint_le(write ? ch.nin : ch.nout, VRING_MAX_IOV);
			}
		}
	}
}
END_TEST

/* An indirect table of more than 32768 entries (its bytes inside memory)
 * and one that runs past memory's end are bad chains, never walked. */
START_TEST(indirect_table_too_large_or_outside)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);

	table[0] = (struct vring_desc){ GPA + DATA_OFF + 0x8000, 44, 0, 0 };
	set_desc(1, GPA + DATA_OFF, 32769 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	expect_bad(1, "indirect table of a bad size");
	set_desc(2, GPA + MEM - 16, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	expect_bad(2, "indirect table outside guest memory");
	set_desc(3, GPA + 2 * MEM, sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	expect_bad(3, "indirect table outside guest memory");
	/* the largest table memory holds (32768 entries, 512 KiB) is walked */
	set_desc(4, GPA + DATA_OFF, 32768 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	make_avail(4);
	{
		struct vring_chain ch;

		ck_assert_int_eq(vring_pop(&vr, &gm, &ch), VRING_OK);
		ck_assert_uint_eq(ch.out_len, 44);
	}
}
END_TEST

/* ---- a guest that rewrites the rings while the device reads them ---- */

/* At most RACE_POPS pops, and at most RACE_SECONDS of them: under
 * qemu-user (the cross builds' unit runs) the emulated pops are a hundred
 * times slower and the scribbler thread takes the other core. */
#define RACE_POPS 400000
#define RACE_SECONDS 1.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int race_stop, race_started;

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random descriptors (in memory and not, indirect, looping, any flags)
 * in the ring and in an indirect table, random heads and indices. */
static void *scribbler(void *arg)
{
	struct vring_desc *table = (struct vring_desc *)(mem + DATA_OFF);
	volatile uint16_t *av = avail();
	uint32_t seed = 0x9e3779b9u;

	(void)arg;
	__atomic_store_n(&race_started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		uint32_t r = xorshift(&seed), k = xorshift(&seed);
		uint64_t addr = (r & 1) ? GPA + DATA_OFF + (k % (MEM - DATA_OFF))
					: (uint64_t)k << (r % 40);
		uint32_t len = (r & 2) ? xorshift(&seed) : (xorshift(&seed) % 4096);
		uint16_t flags = (uint16_t)(xorshift(&seed) & 7), next = (uint16_t)(k >> 16);
		volatile struct vring_desc *d = (r & 4) ? (volatile struct vring_desc *)&table[k % 256]
							: (volatile struct vring_desc *)desc(k % NUM);

		if ((r >> 8) % 4 == 0) {       /* an indirect table of a plausible size */
			addr = GPA + DATA_OFF;
			len = (uint32_t)(16 * (1 + k % 200));
		}
		d->addr = addr;
		d->len = len;
		d->flags = flags;
		d->next = (r & 8) ? next : (uint16_t)(next % NUM);
		av[2 + (r >> 4) % NUM] = (uint16_t)((r & 16) ? k : k % (NUM + 2));
		if ((r >> 12) % 8 == 0)
			__atomic_store_n(&av[1], (uint16_t)(av[1] + 1 + k % 3), __ATOMIC_RELEASE);
	}
	return NULL;
}

static int inside(const struct iovec *v)
{
	const uint8_t *p = v->iov_base;

	return p >= mem && v->iov_len <= MEM && p + v->iov_len <= mem + MEM && v->iov_len > 0;
}

START_TEST(rings_rewritten_while_read)
{
	struct vring_chain ch;
	pthread_t t;
	unsigned ok = 0, badc = 0, badr = 0;
	double end;

	race_stop = race_started = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, scribbler, NULL), 0);
	while (!__atomic_load_n(&race_started, __ATOMIC_ACQUIRE))
		sched_yield();
	end = now_s() + RACE_SECONDS;
	for (unsigned i = 0; i < RACE_POPS; i++) {
		enum vring_status st;

		if (i % 1024 == 0 && now_s() > end)
			break;
		st = vring_pop(&vr, &gm, &ch);

		if (st == VRING_EMPTY) {       /* the guest publishes more, racing too */
			__atomic_fetch_add(&avail()[1], 1, __ATOMIC_RELEASE);
			continue;
		}
		if (st == VRING_EBADRING) {
			/* the device fails here; the test takes the ring up again */
			vr.last_avail = __atomic_load_n(&avail()[1], __ATOMIC_ACQUIRE);
			badr++;
			continue;
		}
		ck_assert_uint_lt(ch.head, NUM);
		ck_assert_uint_le(ch.steps, VRING_MAX_CHAIN + 1);
		ck_assert_uint_le(ch.nout, VRING_MAX_IOV);
		ck_assert_uint_le(ch.nin, VRING_MAX_IOV);
		for (unsigned k = 0; k < ch.nout; k++)
			ck_assert_msg(inside(&ch.out[k]), "readable segment %u outside memory", k);
		for (unsigned k = 0; k < ch.nin; k++)
			ck_assert_msg(inside(&ch.in[k]), "writable segment %u outside memory", k);
		if (st == VRING_OK) {
			ck_assert_uint_le(ch.steps, VRING_MAX_CHAIN);
			ok++;
		} else {
			ck_assert_int_eq(st, VRING_EBADCHAIN);
			ck_assert_ptr_nonnull(ch.error);
			badc++;
		}
		vring_push(&vr, ch.head, (uint32_t)ch.in_len);
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	fprintf(stderr, "vring: rewritten rings: %u chains taken, %u bad chains, %u bad rings\n",
		ok, badc, badr);
	ck_assert_uint_gt(ok + badc, 0);
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
	tcase_add_test(tc, segments_bounded_each_way);
	tcase_add_test(tc, indirect_table_too_large_or_outside);
	tcase_add_test(tc, rings_rewritten_while_read);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
