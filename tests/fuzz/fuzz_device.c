/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_device.c - a stateful libFuzzer target for the whole virtio-vsock
 * device (vhost_user.c, vhu_conn.c, vring.c, device.c, queue.c, packet.c,
 * hybrid.c, hybrid_listen.c) with oracles, not only crash detection. It
 * owns: a VMM on the device's real vhost-user socket (messages in any
 * order, SET_MEM_TABLE while rings run, kick and call eventfds that may be
 * one file, their flags and counters changed behind the device's back,
 * bad sizes, RESET_OWNER, reconnects); a guest in a sealed memfd this file
 * maps too (rings, descriptor chains of every shape: split, gathered,
 * indirect, zero-length runs, loops, region edges, holes); virtio-vsock
 * packets both ways; and hybrid clients on the device's hybrid socket in a
 * temporary directory (connect, CONNECT line, send, SHUT_WR, read, close).
 * The input is a list of operations, one byte each and its arguments
 * after it (zeros once the input runs out).
 *
 * After every operation the loop is run until it goes idle, and these
 * oracles hold, or the target aborts saying which one broke:
 *  stall     no loop turn (one batch of device callbacks) runs over
 *            FUZZ_DEVICE_STALL_MS (50 ms) of CPU time, or takes 10 times
 *            that in wall time; a step that blocks in a syscall is stopped
 *            by a timer signal after FUZZ_DEVICE_HANG_MS (2 s)
 *  spin      the loop goes idle within 256 turns once nobody does anything
 *  work      a chain walk takes at most 2 * (VRING_MAX_IOV + 1) descriptor
 *            steps, a loop turn (a kick's worth of work) at most that many
 *            per chain it may take (fuzz_device_vring.c counts them)
 *  order     every byte reaches the other side once and in order: guest ->
 *            client and client -> guest streams are sequence numbers
 *            (32-bit words tagged with the host port), checked on arrival
 *  loss      a client sees end of file only once the guest shut down its
 *            sending side or the connection was reset (by the guest, the
 *            device, a VMM reset), and then has every byte sent before
 *  used      the device returns only chains the guest made available,
 *            once, with used lengths within the buffers posted
 *  writes    guest memory changes only in RX buffers posted and not yet
 *            returned, and in the used rings (a shadow copy of every
 *            resident page is compared)
 *  resident  no page of guest memory becomes resident (mincore) unless the
 *            guest wrote it or posted it as an RX buffer: the relay faults
 *            in no hole of a sparse guest
 *  fds       /proc/self/fd holds exactly the harness's descriptors and those
 *            the device refers to (its VMM socket, kick and call fds,
 *            streams), and after each input what it held before
 *
 * Known findings (other branches fix them) would stop every run at once;
 * FUZZ_DEVICE_KNOWN lists the ones to stay clear of, as digits ("1,2,3"):
 *  1  a call eventfd the VMM set blocking, its counter near the maximum:
 *     the device's eventfd_write blocks (hang). Skipped: O_NONBLOCK is not
 *     cleared on call fds
 *  2  SET_MEM_TABLE while a ring runs resets last_avail to the last
 *     base: TX packets replayed. Skipped: not sent while a ring has run
 *     since its base was known
 *  3  kick fd and call fd one eventfd: a notify with nothing pushed kicks
 *     the device again (spin). Skipped: never one file
 *  4  zero-length descriptors do not count towards the chain bound (work).
 *     Skipped: at most 8 zero-length descriptors in a chain
 *  5  holes faulted in by the relay (resident). Skipped: the oracle
 *  6  a client that shuts down its sending side loses the guest's answer
 *     (loss). Skipped: the oracle for half-closed clients
 *  7  SET_VRING_ADDR while a ring runs: the same replay as 2 (used: a
 *     chain returned twice). Skipped: not sent while a ring has run since
 *     its base was known
 * FUZZ_DEVICE_TRACE=1 prints each operation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vsock/virtio/vhu_internal.h"
#include "vsock/virtio/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- guest memory layout (offsets in the memfd) ---- */
#define GUEST_CID 3
#define PAGE 4096u
#define MEMSIZE 0x400000u
#define NPAGES (MEMSIZE / PAGE)
#define GPA 0x100000ull
#define UADDR 0x40000000ull
#define RING_OFF(q) ((uint32_t)(q) * 0x10000u)
#define DESC_AT 0x0u
#define AVAIL_AT 0x4000u
#define USED_AT 0x8000u
#define MAX_NUM 1024u
#define IND_OFF 0x20000u              /* indirect tables, 4 KiB each */
#define IND_SLOT 0x1000u
#define IND_SLOTS 32
#define LONG_OFF 0x40000u             /* one table of 32768 descriptors */
#define LONG_DESCS 32768u
#define RX_OFF 0xC0000u
#define RX_SLOT 0x4000u
#define RX_SLOTS 64
#define TX_OFF 0x1C0000u
#define TX_SLOT 0x4000u
#define TX_SLOTS 64
#define HOLE_OFF 0x2C0000u            /* never written by the guest */
#define HOLE_SLOT 0x4000u
#define REGION_STEP 0x40000u          /* where a memory table may split */

#define F_INDIRECT (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)

#define CHAIN_STEP_BOUND (2 * (VRING_MAX_IOV + 1))
#define TX_BUDGET 256                 /* the device's, per pass */
#define SETTLE_TURNS 256
#define MAX_OPS 300
#define MAX_PIECES (VRING_MAX_IOV + 2)
#define MAX_CLIENTS 4
#define MAX_GCONNS 16
#define GOOD_PORTS 2                  /* the guest answers 5555 and 5556 */
#define DEAD_GUEST_PORT 0xdeadu       /* junk goes from here ... */
#define DEAD_HOST_PORT 0xbeefu        /* ... to a host port never used */

/* ---- state ---- */

static uv_loop_t loop;
static struct vhu_device dev;
static int started, memfd;
static uint8_t *mem, *shadow;
static char tmpdir[64], vhu_path[96], hyb_path[96];
static int idle_handles;
static unsigned known;                /* bit n: finding n is known, stay clear */
static long stall_ms = 50, hang_ms = 2000;
static int trace;

static uint8_t written[NPAGES];       /* the guest wrote this page */
static uint8_t rx_page[NPAGES];       /* the guest posted RX buffers here */
static uint8_t shadow_dirty[NPAGES];
static uint8_t wcount[MEMSIZE];       /* > 0: the device may write this byte */

unsigned long fuzz_device_desc_steps;
static unsigned long pops_turn;

struct piece {
	uint32_t off, len;
};

struct chain {
	int live;
	uint16_t first, ndesc;            /* descriptors [first, first + ndesc) */
	int slot, ind;                    /* data slot, indirect slot, or -1 */
	unsigned npieces;                 /* RX: the writable pieces, in order */
	struct piece pieces[MAX_PIECES];
};

struct gring {
	uint16_t num;                     /* 0: not set up by the guest */
	uint16_t avail_idx, last_used;
	uint8_t desc_busy[MAX_NUM];
	struct chain ch[MAX_NUM];
	uint64_t slots_busy;
	int kick_h, call_h;               /* the VMM's copies; may be one fd */
	int base_known;                   /* the VMM knows where the ring stands */
	uint16_t base;
};

static struct gring gr[2];
static uint64_t ind_busy;             /* indirect tables: both rings take them */

enum gstate { G_PENDING, G_OPEN, G_DEAD };

struct gconn {
	int used;
	enum gstate state;
	uint32_t host_port, guest_port;
	uint64_t g2h_sent, h2g_recv;
	uint32_t dev_buf_alloc, dev_fwd_cnt, buf_alloc;
	int shut_send, rst_sent, host_shut;
};

static struct gconn gc[MAX_GCONNS];

struct client {
	int fd;
	int got_ok, half, connect_sent;
	char ok[24];
	size_t ok_len;
	uint32_t host_port;
	uint64_t recv, sent;
};

static struct client cl[MAX_CLIENTS];

static int vmm = -1;                  /* our end of the vhost-user socket */
static uint64_t vmm_features;
static int vmm_split;                 /* the memory table's split, 0: one region */

#define MAX_CLOSED 256
static uint32_t closed_ports[MAX_CLOSED];
static unsigned nclosed;

static uint64_t seen_disconnects;

static const uint8_t *in;
static size_t in_left;
static unsigned step;
static char op_name[64];

/* ---- oracles ---- */

__attribute__((format(printf, 2, 3), noreturn))
static void broken(const char *oracle, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_device: ORACLE %s broken at step %u (%s):\n  ", oracle, step, op_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static int is_known(int n)
{
	return (known >> n) & 1;
}

static timer_t hang_timer;
static char hang_msg[200];

static void on_hang(int sig)
{
	(void)sig;
	(void)!write(2, hang_msg, strlen(hang_msg));
	abort();
}

static void arm(void)
{
	struct itimerspec it = { { 0, 0 }, { hang_ms / 1000, (hang_ms % 1000) * 1000000 } };

	snprintf(hang_msg, sizeof(hang_msg),
		 "\nfuzz_device: ORACLE stall broken at step %u (%s):\n  the step blocked for %ld ms "
		 "(a blocking syscall in the loop: eventfd_write on a call fd the VMM made blocking?)\n",
		 step, op_name, hang_ms);
	timer_settime(hang_timer, 0, &it, NULL);
}

static void disarm(void)
{
	struct itimerspec it = { { 0, 0 }, { 0, 0 } };

	timer_settime(hang_timer, 0, &it, NULL);
}

static double clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* The time a callback ran is the CPU time of this thread (the fuzzer may
 * share its cores: wall time counts others' work); one that waits without
 * running shows in wall time, bounded 10 times looser, and the hang timer. */
static void check_stall(const char *what, double cpu0, double wall0)
{
	double cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = now_ms() - wall0;

	if (cpu > (double)stall_ms)
		broken("stall", "%s ran %.1f ms (bound %ld ms of CPU time)", what, cpu, stall_ms);
	if (wall > 10.0 * (double)stall_ms)
		broken("stall", "%s took %.1f ms (%.1f ms of it running; bound %ld ms): it waited for "
		       "something", what, wall, cpu, 10 * stall_ms);
}

void fuzz_device_chain_walked(unsigned long steps, int status, uint16_t head);
void fuzz_device_chain_walked(unsigned long steps, int status, uint16_t head)
{
	pops_turn++;
	if (steps > CHAIN_STEP_BOUND)
		broken("work", "one chain walk (head %u, status %d) took %lu descriptor steps, bound %d: "
		       "zero-length descriptors not counted towards the chain bound?",
		       head, status, steps, CHAIN_STEP_BOUND);
}

/* ---- input ---- */

static uint8_t u8(void)
{
	if (in_left == 0)
		return 0;
	in_left--;
	return *in++;
}

static uint16_t u16(void)
{
	return (uint16_t)(u8() | u8() << 8);
}

/* ---- guest memory, as the guest writes it ---- */

static void mark_written(uint32_t off, uint32_t len)
{
	for (uint32_t p = off / PAGE; len > 0 && p <= (off + len - 1) / PAGE; p++)
		written[p] = shadow_dirty[p] = 1;
}

static void gw(uint32_t off, const void *src, uint32_t len)
{
	memcpy(mem + off, src, len);
	memcpy(shadow + off, src, len);
	mark_written(off, len);
}

static void gw_zero(uint32_t off, uint32_t len)
{
	memset(mem + off, 0, len);
	memset(shadow + off, 0, len);
	mark_written(off, len);
}

static void gw16(uint32_t off, uint16_t v)
{
	gw(off, &v, 2);
}

static void allow_writes(const struct piece *p, int delta)
{
	for (uint32_t i = 0; i < p->len; i++)
		wcount[p->off + i] = (uint8_t)(wcount[p->off + i] + delta);
	for (uint32_t pg = p->off / PAGE; p->len > 0 && pg <= (p->off + p->len - 1) / PAGE; pg++)
		rx_page[pg] = 1;
}

/* ---- the stream pattern: 32-bit sequence numbers tagged with the port ---- */

static uint8_t pattern(uint32_t host_port, uint64_t off)
{
	uint32_t w = (uint32_t)(off / 4) ^ (host_port * 0x9e3779b1u);

	return (uint8_t)(w >> (8 * (off % 4)));
}

static void fill_pattern(uint8_t *p, uint32_t host_port, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(host_port, off + i);
}

static void check_pattern(const char *dir, uint32_t host_port, uint64_t off, const uint8_t *p,
			  size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == pattern(host_port, off + i))
			continue;
		uint64_t at = off + i, seq = 0;
		int found = 0;

		/* what sequence number is there instead? */
		if (i + 4 <= len && (at % 4) == 0) {
			uint32_t w;

			memcpy(&w, p + i, 4);
			seq = w ^ (host_port * 0x9e3779b1u);
			found = 1;
		}
		broken("order", "%s stream of host port %u: byte %llu is %#x, expected %#x (sequence "
		       "number %llu)%s%llu: a byte delivered twice or out of order",
		       dir, host_port, (unsigned long long)at, p[i], pattern(host_port, at),
		       (unsigned long long)(at / 4), found ? "; the word there is number " : "",
		       found ? (unsigned long long)seq : 0ull);
	}
}

/* ---- the loop ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void turn(void)
{
	double cpu0 = clock_ms(CLOCK_THREAD_CPUTIME_ID), wall0 = now_ms();
	unsigned long steps0 = fuzz_device_desc_steps;
	unsigned long bound;

	pops_turn = 0;
	uv_run(&loop, UV_RUN_NOWAIT);
	check_stall("one loop turn", cpu0, wall0);
	bound = (unsigned long)CHAIN_STEP_BOUND * (TX_BUDGET + 2ul * MAX_NUM + 8);
	if (fuzz_device_desc_steps - steps0 > bound)
		broken("work", "one loop turn took %lu descriptor steps over %lu chains (bound %lu)",
		       fuzz_device_desc_steps - steps0, pops_turn, bound);
}

struct progress {
	uint64_t v[14];
};

static void progress(struct progress *p)
{
	unsigned n = 0;
	size_t held = 0;

	for (unsigned i = 0; i < dev.vvs.nconns; i++)
		held += dev.vvs.conns[i]->rx.len + dev.vvs.conns[i]->tx.len;
	memset(p, 0, sizeof(*p));
	p->v[n++] = dev.st.kicks;
	p->v[n++] = dev.st.calls;
	p->v[n++] = dev.st.messages;
	p->v[n++] = dev.st.bad_chains;
	p->v[n++] = dev.st.disconnects + dev.st.connects;
	p->v[n++] = dev.vvs.st.rx_pkts;
	p->v[n++] = dev.vvs.st.tx_pkts;
	p->v[n++] = dev.vvs.st.rx_bytes + dev.vvs.st.tx_bytes;
	p->v[n++] = (uint64_t)dev.handles_open;
	p->v[n++] = (uint64_t)dev.flush_pending;
	p->v[n++] = dev.vvs.nconns;
	p->v[n++] = held;
	p->v[n++] = (uint64_t)vhu_hybrid_clients(&dev);
	p->v[n++] = (uint64_t)(dev.streams != NULL);
}

/* Has the loop anything to do now: an event ready, a flush pending? */
static int loop_busy(void)
{
	struct pollfd p = { uv_backend_fd(&loop), POLLIN, 0 };

	return dev.flush_pending || poll(&p, 1, 0) == 1;
}

/* Run the loop until it is idle (nothing ready, nothing moved) for two
 * turns; it must get there within SETTLE_TURNS. */
static void settle(void)
{
	struct progress a, b;
	uint64_t kicks0 = dev.st.kicks, calls0 = dev.st.calls;
	int quiet = 0;

	progress(&a);
	for (int i = 0; i < SETTLE_TURNS; i++) {
		turn();
		progress(&b);
		if (memcmp(&a, &b, sizeof(a)) != 0 || loop_busy()) {
			quiet = 0;
			a = b;
		} else if (++quiet == 2) {
			return;
		}
	}
	broken("spin", "the loop did not go idle in %d turns with nobody doing anything: %llu kicks "
	       "and %llu calls meanwhile (a kick fd that is also the call fd, notified with nothing "
	       "used?)", SETTLE_TURNS, (unsigned long long)(dev.st.kicks - kicks0),
	       (unsigned long long)(dev.st.calls - calls0));
}

/* ---- the VMM ---- */

static void vmm_close(void)
{
	if (vmm >= 0)
		close(vmm);
	vmm = -1;
}

static void close_h(int q)
{
	if (gr[q].kick_h >= 0)
		close(gr[q].kick_h);
	if (gr[q].call_h >= 0 && gr[q].call_h != gr[q].kick_h)
		close(gr[q].call_h);
	gr[q].kick_h = gr[q].call_h = -1;
}

static void guest_ring_init(int q, uint16_t num);
static void gconn_all_dead(void);
static void check_memory(void);

/* The device forgot everything (RESET_OWNER, VMM gone): so does the guest,
 * as a rebooted one would. */
static void guest_reset(void)
{
	check_memory();          /* what the device wrote before it forgot */
	for (int q = 0; q < 2; q++) {
		guest_ring_init(q, 0);
		close_h(q);
	}
	gconn_all_dead();
	vmm_split = 0;
}

static void check_dropped(void)
{
	if (dev.st.disconnects != seen_disconnects) {
		seen_disconnects = dev.st.disconnects;
		vmm_close();
		guest_reset();
	}
}

/* Read the replies there are; GET_VRING_BASE's tell the base. */
static void vmm_replies(void)
{
	uint8_t buf[4096];
	ssize_t n;

	while (vmm >= 0 && (n = recv(vmm, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t at = 0; at + 12 <= n; ) {
			uint32_t h[3];

			memcpy(h, buf + at, 12);
			if (h[0] == 11 && h[2] == 8 && at + 20 <= n) {
				uint32_t st[2];

				memcpy(st, buf + at + 12, 8);
				if (st[0] < 2) {
					gr[st[0]].base = (uint16_t)st[1];
					gr[st[0]].base_known = 1;
				}
			}
			at += 12 + h[2];
		}
	}
}

static int vmm_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (vmm >= 0)
		return 1;
	vmm = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", vhu_path);
	if (vmm < 0 || connect(vmm, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		vmm_close();
		return 0;
	}
	for (int i = 0; i < 8 && dev.conn == NULL; i++)
		turn();
	if (dev.conn == NULL) {
		vmm_close();      /* a second connection, refused */
		return 0;
	}
	return 1;
}

/* One message; the device handles it before this returns. 0: the VMM is gone. */
static int vmm_msg(uint32_t req, const void *p, uint32_t size, const int *fds, int nfds)
{
	uint8_t buf[12 + 512];
	uint32_t hdr[3] = { req, VHU_VERSION, size };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} ctl;
	struct iovec iov = { buf, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t before = dev.st.messages;

	if (vmm < 0 && !vmm_connect())
		return 0;
	if (trace)
		fprintf(stderr, "  vmm: request %u, %u bytes, %d fds\n", req, size, nfds);
	memcpy(buf, hdr, 12);
	if (size > 0)
		memcpy(buf + 12, p, size);
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	if (sendmsg(vmm, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)(12 + size))
		return 0;
	for (int i = 0; i < 8 && dev.st.messages == before && dev.conn != NULL; i++)
		turn();
	vmm_replies();
	for (int q = 0; q < 2; q++)
		if (dev.q[q].enabled)
			gr[q].base_known = 0;    /* the device may take chains now */
	check_dropped();
	return vmm >= 0;
}

static int vmm_u64(uint32_t req, uint64_t v)
{
	return vmm_msg(req, &v, 8, NULL, 0);
}

static int ring_ran(void)
{
	for (int q = 0; q < 2; q++)
		if (dev.q[q].vr.num != 0 && !gr[q].base_known)
			return 1;
	return 0;
}

static void vmm_mem_table(uint8_t how)
{
	struct { uint32_t n, pad; struct { uint64_t gpa, size, uaddr, off; } r[2]; } mt;
	int fds[2] = { memfd, memfd }, bad = -1, nfds;
	uint32_t len = MEMSIZE;

	if (is_known(2) && ring_ran())
		return;
	memset(&mt, 0, sizeof(mt));
	switch (how % 6) {
	case 0: case 1:               /* one region */
	default:
		mt.n = 1;
		mt.r[0] = (typeof(mt.r[0])){ GPA, MEMSIZE, UADDR, 0 };
		vmm_split = 0;
		break;
	case 2: {                     /* two regions, split on a 256 KiB boundary */
		uint32_t s = REGION_STEP * (1 + (how >> 3) % (MEMSIZE / REGION_STEP - 1));

		mt.n = 2;
		mt.r[0] = (typeof(mt.r[0])){ GPA, s, UADDR, 0 };
		mt.r[1] = (typeof(mt.r[0])){ GPA + s, MEMSIZE - s, UADDR + s, s };
		vmm_split = (int)s;
		break;
	}
	case 3:                       /* the hole area partly outside guest memory */
		len = HOLE_OFF + REGION_STEP * ((how >> 3) % 5);
		mt.n = 1;
		mt.r[0] = (typeof(mt.r[0])){ GPA, len, UADDR, 0 };
		vmm_split = 0;
		break;
	case 4:                       /* unsealed memory: refused */
		bad = memfd_create("fuzz-unsealed", MFD_CLOEXEC);
		if (bad < 0 || ftruncate(bad, MEMSIZE) != 0)
			abort();
		fds[0] = bad;
		mt.n = 1;
		mt.r[0] = (typeof(mt.r[0])){ GPA, MEMSIZE, UADDR, 0 };
		break;
	case 5:                       /* a region larger than the file: refused */
		mt.n = 1;
		mt.r[0] = (typeof(mt.r[0])){ GPA, MEMSIZE, UADDR, (how >> 3) * (uint64_t)PAGE };
		break;
	}
	nfds = (int)mt.n;
	vmm_msg(5, &mt, 8 + 32 * mt.n, fds, nfds);
	if (bad >= 0)
		close(bad);
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		abort();
	return fd;
}

/* SET_VRING_KICK or _CALL; how: 0-3 a new eventfd, 4 the ring's other fd
 * (one file for both), 5 no fd, 6 a socket (refused). */
static void vmm_ring_fd(int q, int kick, uint8_t how)
{
	int *mine = kick ? &gr[q].kick_h : &gr[q].call_h;
	int *other = kick ? &gr[q].call_h : &gr[q].kick_h;
	uint64_t idx = (uint64_t)q;
	int fd, sv[2];

	how %= 7;
	if (how == 4 && (is_known(3) || *other < 0))
		how = 0;
	if (how == 5) {
		vmm_u64(kick ? 12 : 13, idx | (1u << 8));
		if (*mine >= 0 && *mine != *other)
			close(*mine);
		*mine = -1;
		return;
	}
	if (how == 6) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
			abort();
		vmm_msg(kick ? 12 : 13, &idx, 8, &sv[0], 1);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	fd = how == 4 ? *other : new_eventfd();
	if (!vmm_msg(kick ? 12 : 13, &idx, 8, &fd, 1)) {
		if (fd != *other)
			close(fd);
		return;
	}
	if (*mine >= 0 && *mine != *other)
		close(*mine);
	*mine = fd;
}

static void vmm_ring(int q, uint8_t fdhow)
{
	struct { uint32_t index, num; } st = { (uint32_t)q, gr[q].num }, base = { (uint32_t)q, 0 },
					  en = { (uint32_t)q, 1 };
	struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
		(uint32_t)q, 0, UADDR + RING_OFF(q) + DESC_AT, UADDR + RING_OFF(q) + USED_AT,
		UADDR + RING_OFF(q) + AVAIL_AT, 0 };

	if (!vmm_msg(8, &st, 8, NULL, 0) || !vmm_msg(10, &base, 8, NULL, 0) ||
	    !vmm_msg(9, &addr, sizeof(addr), NULL, 0))
		return;
	vmm_ring_fd(q, 1, fdhow & 7);
	vmm_ring_fd(q, 0, (fdhow >> 3) & 7);
	if (vmm >= 0)
		vmm_msg(18, &en, 8, NULL, 0);
}

/* As QEMU starts a device, on a fresh connection. */
static void op_vmm_start(void)
{
	uint8_t fb = u8(), mv = u8(), nb = u8(), fd0 = u8(), fd1 = u8();
	static const uint16_t nums[] = { 64, 128, 8, 256, 1024, 16, 2, 512 };
	uint64_t f = F_VERSION_1 | (fb & 1 ? F_INDIRECT : 0) | (fb & 2 ? F_EVENT_IDX : 0) |
		     (fb & 4 ? F_PROTOCOL : 0);
	struct { uint32_t off, size, flags; uint8_t data[8]; } cfg = { 0, 8, 0, { 0 } };

	if (vmm >= 0) {
		vmm_close();
		settle();
		check_dropped();
	}
	if (!vmm_connect() || !vmm_msg(3, NULL, 0, NULL, 0) || !vmm_msg(1, NULL, 0, NULL, 0) ||
	    !vmm_u64(2, f))
		return;
	vmm_features = f;
	if ((f & F_PROTOCOL) && (!vmm_msg(15, NULL, 0, NULL, 0) ||
				 !vmm_u64(16, PF_REPLY_ACK | PF_CONFIG)))
		return;
	if (!vmm_msg(24, &cfg, sizeof(cfg), NULL, 0))
		return;
	vmm_mem_table((uint8_t)(mv % 4));
	if (vmm < 0)
		return;
	for (int q = 0; q < 2; q++) {
		guest_ring_init(q, nums[(nb >> (3 * q)) & 7]);
		vmm_ring(q, q == 0 ? fd0 : fd1);
		if (vmm < 0)
			return;
	}
}

/* One message as the input says, kept consistent with the guest where a
 * real VMM would be. */
static void op_vmm_msg(void)
{
	uint8_t which = u8(), q = u8() & 1, arg = u8();
	struct { uint32_t index, num; } st = { q, 0 };

	switch (which % 20) {
	case 0: vmm_msg(3, NULL, 0, NULL, 0); break;                     /* SET_OWNER */
	case 1: vmm_msg(1, NULL, 0, NULL, 0); break;                     /* GET_FEATURES */
	case 2:                                                          /* SET_FEATURES */
		vmm_features = F_VERSION_1 | ((uint64_t)(arg & 7) << 28);
		vmm_u64(2, arg & 0x80 ? 1ull << 40 : vmm_features);
		break;
	case 3: vmm_mem_table(arg); break;
	case 4:                                                          /* SET_VRING_NUM */
		if (arg & 0x80) {
			static const uint32_t bad[] = { 0, 3, 65536, 100 };
			st.num = bad[arg & 3];
		} else {
			st.num = gr[q].num ? gr[q].num : 64;   /* the size the guest uses */
		}
		vmm_msg(8, &st, 8, NULL, 0);
		break;
	case 5: {                                                        /* SET_VRING_ADDR */
		struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
			q, 0, UADDR + RING_OFF(q) + DESC_AT, UADDR + RING_OFF(q) + USED_AT,
			UADDR + RING_OFF(q) + AVAIL_AT, 0 };

		if (arg & 0x80) {          /* outside memory, misaligned, across a region edge */
			static const uint64_t bad[] = { UADDR + MEMSIZE, UADDR + 1, 0, UADDR - 16 };
			addr.used = bad[arg & 3];
			if ((arg & 3) == 3 && vmm_split)
				addr.desc = UADDR + (uint64_t)vmm_split - 16;
		} else if (is_known(7) && ring_ran()) {
			break;
		}
		vmm_msg(9, &addr, sizeof(addr), NULL, 0);
		break;
	}
	case 6:                                                          /* SET_VRING_BASE */
		if (arg & 0x80) {
			st.num = 0x10000u + arg;
		} else {
			if (dev.q[q].enabled || !gr[q].base_known)
				break;             /* a VMM gives the base it was told */
			st.num = gr[q].base;
		}
		vmm_msg(10, &st, 8, NULL, 0);
		break;
	case 7: vmm_ring_fd(q, 1, arg); break;
	case 8: vmm_ring_fd(q, 0, arg); break;
	case 9:                                                          /* SET_VRING_ENABLE */
		st.num = arg & 1;
		vmm_msg(18, &st, 8, NULL, 0);
		break;
	case 10: vmm_msg(11, &st, 8, NULL, 0); break;                    /* GET_VRING_BASE */
	case 11:                                                         /* RESET_OWNER */
		if (vmm_msg(4, NULL, 0, NULL, 0))
			guest_reset();
		break;
	case 12: vmm_msg(15, NULL, 0, NULL, 0); break;
	case 13: vmm_u64(16, arg); break;
	case 14: vmm_msg(17, NULL, 0, NULL, 0); break;                   /* GET_QUEUE_NUM */
	case 15: {                                                       /* GET_CONFIG */
		struct { uint32_t off, size, flags; uint8_t data[8]; } cfg = { arg % 10, 8 - arg % 9, 0,
									      { 0 } };
		vmm_msg(24, &cfg, 12 + cfg.size, NULL, 0);
		break;
	}
	case 16: {                                                       /* a bad size */
		static const uint32_t reqs[] = { 2, 5, 8, 9, 10, 11, 12, 13, 18, 24 };
		uint8_t junk[64] = { 0 };

		vmm_msg(reqs[arg % 10], junk, (arg >> 4) % 64, NULL, 0);
		break;
	}
	case 17: vmm_msg(99, NULL, 0, NULL, 0); break;                   /* unknown: ignored */
	case 18: {                                                       /* SET_VRING_ERR */
		int fd = new_eventfd();
		uint64_t idx = q;

		vmm_msg(14, &idx, 8, &fd, 1);
		close(fd);
		break;
	}
	case 19: {                                                       /* a bad version */
		uint32_t hdr[3] = { 1, 2, 0 };

		if (vmm >= 0) {
			(void)!send(vmm, hdr, 12, MSG_NOSIGNAL | MSG_DONTWAIT);
			settle();
			check_dropped();
		}
		break;
	}
	}
}

/* What the VMM can do to the eventfds it shares with the device. */
static void op_vmm_fds(void)
{
	uint8_t a = u8();
	int q = a & 1, kick = (a >> 1) & 1;
	int fd = kick ? gr[q].kick_h : gr[q].call_h;
	struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
	uint64_t v;

	if (fd < 0)
		return;
	switch ((a >> 2) % 4) {
	case 0: case 1:                   /* fill the counter to the maximum */
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
			(void)!read(fd, &v, 8);
		v = 0xfffffffffffffffeull - ((a >> 4) & 1);
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT))
			(void)!write(fd, &v, 8);
		break;
	case 2:                           /* blocking, for both sides of the file */
		if (!kick && is_known(1))
			break;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		break;
	case 3:                           /* take the calls (or a kick) there are */
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
			(void)!read(fd, &v, 8);
		break;
	}
}

/* ---- the guest ---- */

static uint64_t gpa_of(uint32_t off)
{
	return GPA + off;
}

static void desc_write(int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };

	gw(RING_OFF(q) + DESC_AT + 16u * i, &d, sizeof(d));
}

static void chain_free(int q, uint16_t head)
{
	struct gring *r = &gr[q];
	struct chain *c = &r->ch[head];

	if (!c->live)
		return;
	for (unsigned i = 0; i < c->ndesc; i++)
		r->desc_busy[(c->first + i) % MAX_NUM] = 0;
	if (c->slot >= 0)
		r->slots_busy &= ~(1ull << c->slot);
	if (c->ind >= 0)
		ind_busy &= ~(1ull << c->ind);
	for (unsigned i = 0; i < c->npieces; i++)
		allow_writes(&c->pieces[i], -1);
	c->live = 0;
}

static void guest_ring_init(int q, uint16_t num)
{
	struct gring *r = &gr[q];

	for (unsigned h = 0; h < MAX_NUM; h++)
		chain_free(q, (uint16_t)h);
	memset(r->desc_busy, 0, sizeof(r->desc_busy));
	r->slots_busy = 0;
	r->avail_idx = r->last_used = 0;
	r->num = num;
	r->base = 0;
	r->base_known = 1;
	gw_zero(RING_OFF(q), 0x10000);
}

/* ndesc free descriptors in a row: the first, or -1. */
static int desc_alloc(int q, unsigned ndesc)
{
	struct gring *r = &gr[q];

	if (r->num == 0 || ndesc == 0 || ndesc > r->num)
		return -1;
	for (unsigned first = 0; first + ndesc <= r->num; first++) {
		unsigned k = 0;

		while (k < ndesc && !r->desc_busy[first + k])
			k++;
		if (k == ndesc) {
			for (k = 0; k < ndesc; k++)
				r->desc_busy[first + k] = 1;
			return (int)first;
		}
		first += k;
	}
	return -1;
}

static int bit_alloc(uint64_t *busy, int n)
{
	for (int i = 0; i < n; i++)
		if (!(*busy & (1ull << i))) {
			*busy |= 1ull << i;
			return i;
		}
	return -1;
}

static void make_available(int q, uint16_t head)
{
	struct gring *r = &gr[q];

	gw16(RING_OFF(q) + AVAIL_AT + 4 + 2u * (r->avail_idx % r->num), head);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	gw16(RING_OFF(q) + AVAIL_AT + 2, r->avail_idx);
}

static void kick(int q)
{
	uint64_t one = 1;
	struct pollfd p = { gr[q].kick_h, POLLOUT, 0 };

	if (gr[q].kick_h >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT))
		(void)!write(gr[q].kick_h, &one, 8);
}

/* Cut [off, off + len) into k non-empty pieces at input-chosen points. */
static unsigned cut(uint32_t off, uint32_t len, unsigned k, struct piece *out)
{
	unsigned n = 0;

	if (k > len)
		k = len;
	if (k == 0)
		k = 1;
	while (n + 1 < k) {
		uint32_t left = len - (k - n - 1), take = 1 + u8() % (left < 255 ? left : 255);

		if (take > left)
			take = left;
		out[n++] = (struct piece){ off, take };
		off += take;
		len -= take;
	}
	out[n++] = (struct piece){ off, len };
	return n;
}

/* A chain over PIECES, the descriptors WFLAG: shape 0 in the ring's table,
 * 1 through an indirect table, 2 with a run of zero-length descriptors
 * after the first, 3 ending in a loop, 4 through a long indirect table of
 * zero-length descriptors, 5 an indirect descriptor with NEXT (bad), 6 a
 * nested indirect table (bad). The head, or -1 (no room). */
static int build_chain(int q, int shape, const struct piece *pieces, unsigned n, uint16_t wflag,
		       struct chain *out)
{
	struct gring *r = &gr[q];
	struct vring_desc tbl[MAX_PIECES];
	unsigned zeros = 0;
	uint32_t toff = 0, count = 0;
	int first;

	out->slot = out->ind = -1;
	if (n > MAX_PIECES)
		n = MAX_PIECES;
	for (unsigned i = 0; i < n; i++)
		tbl[i] = (struct vring_desc){ gpa_of(pieces[i].off), pieces[i].len, wflag, 0 };
	if (shape == 4 && q == 0)
		shape = 2;        /* the long table is the TX ring's, rewritten at will */
	if (shape == 4 && is_known(4))
		return -1;
	if (shape == 1 || shape >= 4) {
		if (shape == 4) {
			count = 64 + u16() % (LONG_DESCS - 64);
			toff = LONG_OFF;
			for (uint32_t i = 0; i < count; i++) {
				struct vring_desc d = i < n ? tbl[i]
							    : (struct vring_desc){ gpa_of(toff), 0, wflag, 0 };

				d.next = (uint16_t)(i + 1);
				if (i + 1 < count)
					d.flags |= VRING_DESC_F_NEXT;
				gw(toff + 16u * i, &d, 16);
			}
		} else {
			out->ind = bit_alloc(&ind_busy, IND_SLOTS);
			if (out->ind < 0)
				return -1;
			toff = IND_OFF + (uint32_t)out->ind * IND_SLOT;
			for (unsigned i = 0; i < n; i++) {
				tbl[i].next = (uint16_t)(i + 1);
				if (i + 1 < n)
					tbl[i].flags |= VRING_DESC_F_NEXT;
			}
			if (shape == 6)
				tbl[n - 1] = (struct vring_desc){ gpa_of(toff), 16, VRING_DESC_F_INDIRECT, 0 };
			gw(toff, tbl, 16u * n);
			count = n;
		}
		first = desc_alloc(q, 1);
		if (first < 0) {
			if (out->ind >= 0)
				ind_busy &= ~(1ull << out->ind);
			out->ind = -1;
			return -1;
		}
		desc_write(q, (uint16_t)first, gpa_of(toff), 16u * count,
			   (uint16_t)(VRING_DESC_F_INDIRECT | (shape == 5 ? VRING_DESC_F_NEXT : 0)),
			   (uint16_t)first);
		out->first = (uint16_t)first;
		out->ndesc = 1;
		return first;
	}
	if (shape == 2) {
		zeros = is_known(4) ? 1 + u8() % 8u : 1 + u16() % (unsigned)r->num;
		if (n + zeros > r->num)
			zeros = r->num > n ? r->num - n : 0;
	}
	first = desc_alloc(q, n + zeros);
	if (first < 0)
		return -1;
	for (unsigned i = 0; i < n + zeros; i++) {
		struct vring_desc d = i == 0 ? tbl[0] : i <= zeros
				      ? (struct vring_desc){ tbl[0].addr, 0, wflag, 0 } : tbl[i - zeros];
		uint16_t idx = (uint16_t)(first + i);

		if (i + 1 < n + zeros) {
			d.flags |= VRING_DESC_F_NEXT;
			d.next = (uint16_t)(idx + 1);
		} else if (shape == 3) {
			/* back to the first (bounded by the segment count), or a
			 * zero-length descriptor onto itself (bounded by nothing but
			 * the ring size) */
			d.flags |= VRING_DESC_F_NEXT;
			d.next = (uint16_t)first;
			if (!is_known(4) && n + zeros > 1) {
				d.len = 0;
				d.next = idx;
			}
		}
		desc_write(q, idx, d.addr, d.len, d.flags, d.next);
	}
	out->first = (uint16_t)first;
	out->ndesc = (uint16_t)(n + zeros);
	return first;
}

/* RX buffers: n of them, each a slot cut into pieces, maybe with a
 * descriptor into a hole or across a region edge, in a chain of some shape. */
static void op_post_rx(void)
{
	struct gring *r = &gr[0];
	unsigned n = 1 + u8() % 16;

	for (unsigned b = 0; b < n && r->num > 0; b++) {
		uint8_t how = u8(), extra = u8();
		uint32_t len = VVS_HDR_SIZE + 1 + u16() % (RX_SLOT - VVS_HDR_SIZE);
		struct piece pieces[MAX_PIECES];
		struct chain c;
		unsigned np, k = (how >> 3) & 1 ? 1 + u8() % 66 : 1 + ((how >> 4) & 3);
		int slot = bit_alloc(&r->slots_busy, RX_SLOTS), head;
		uint32_t soff;

		if (slot < 0)
			break;
		soff = RX_OFF + (uint32_t)slot * RX_SLOT;
		np = cut(soff, len, k, pieces);
		if ((extra & 3) == 1 && np < MAX_PIECES)      /* more room in a hole */
			pieces[np++] = (struct piece){ HOLE_OFF + (uint32_t)slot * HOLE_SLOT,
						       1 + u16() % HOLE_SLOT };
		if ((extra & 3) == 2 && vmm_split && np < MAX_PIECES)   /* across regions */
			pieces[np++] = (struct piece){ (uint32_t)vmm_split - 32, 64 };
		memset(&c, 0, sizeof(c));
		head = build_chain(0, how % 7, pieces, np, (extra & 4) ? 0 : VRING_DESC_F_WRITE, &c);
		if (head < 0) {
			r->slots_busy &= ~(1ull << slot);
			break;
		}
		c.slot = slot;
		c.live = 1;
		c.npieces = np;
		memcpy(c.pieces, pieces, np * sizeof(pieces[0]));
		for (unsigned i = 0; i < np; i++)
			allow_writes(&c.pieces[i], +1);
		r->ch[head] = c;
		make_available(0, (uint16_t)head);
	}
	if (!(n & 1))
		kick(0);
}

/* ---- guest connections ---- */

static struct gconn *gconn_find(uint32_t host_port, uint32_t guest_port)
{
	for (int i = 0; i < MAX_GCONNS; i++)
		if (gc[i].used && gc[i].host_port == host_port && gc[i].guest_port == guest_port)
			return &gc[i];
	return NULL;
}

static struct gconn *gconn_by_host(uint32_t host_port)
{
	for (int i = 0; i < MAX_GCONNS; i++)
		if (gc[i].used && gc[i].host_port == host_port)
			return &gc[i];
	return NULL;
}

static void gconn_all_dead(void)
{
	for (int i = 0; i < MAX_GCONNS; i++)
		if (gc[i].used)
			gc[i].state = G_DEAD;
}

static int was_closed(uint32_t host_port)
{
	for (unsigned i = 0; i < nclosed && i < MAX_CLOSED; i++)
		if (closed_ports[i] == host_port)
			return 1;
	return 0;
}

static struct client *client_by_port(uint32_t host_port)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (cl[i].fd >= 0 && cl[i].got_ok && cl[i].host_port == host_port)
			return &cl[i];
	return NULL;
}

/* One packet on the TX ring: header (and payload) in a slot, in a chain of
 * the shape asked. Returns 1 if it was queued. */
static int guest_send(struct vvs_hdr *h, const uint8_t *payload, uint32_t plen, uint8_t shape,
		      int junk)
{
	struct gring *r = &gr[1];
	struct piece pieces[MAX_PIECES];
	struct chain c;
	uint8_t pkt[TX_SLOT];
	unsigned np;
	int slot, head, sh;

	if (r->num == 0 || plen > TX_SLOT - VVS_HDR_SIZE)
		return 0;
	slot = bit_alloc(&r->slots_busy, TX_SLOTS);
	if (slot < 0)
		return 0;
	h->len = (junk && (shape & 0x40)) ? plen + 8 : plen;
	vvs_hdr_encode(h, pkt);
	if (plen > 0)
		memcpy(pkt + VVS_HDR_SIZE, payload, plen);
	gw(TX_OFF + (uint32_t)slot * TX_SLOT, pkt, VVS_HDR_SIZE + plen);
	switch (shape & 3) {
	case 0:
		np = cut(TX_OFF + (uint32_t)slot * TX_SLOT, VVS_HDR_SIZE + plen, 1, pieces);
		break;
	case 1:
		pieces[0] = (struct piece){ TX_OFF + (uint32_t)slot * TX_SLOT, VVS_HDR_SIZE };
		np = 1;
		if (plen > 0)
			pieces[np++] = (struct piece){ TX_OFF + (uint32_t)slot * TX_SLOT + VVS_HDR_SIZE, plen };
		break;
	default:
		np = cut(TX_OFF + (uint32_t)slot * TX_SLOT, VVS_HDR_SIZE + plen,
			 junk ? 1 + u8() % (MAX_PIECES - 1) : 1 + u8() % VRING_MAX_IOV, pieces);
		break;
	}
	sh = (shape >> 2) & 1;           /* plain or indirect */
	if (junk) {
		uint8_t j = (shape >> 3) & 7;

		if (j == 1 && np < MAX_PIECES)         /* a descriptor into a hole after it */
			pieces[np++] = (struct piece){ HOLE_OFF + (uint32_t)slot * HOLE_SLOT,
						       1 + u16() % HOLE_SLOT };
		if (j == 2 && vmm_split && np < MAX_PIECES)
			pieces[np++] = (struct piece){ (uint32_t)vmm_split - 32, 64 };
		if (j >= 3)
			sh = j - 1;                     /* 2..6: zeros, loop, long, bad indirect */
	}
	memset(&c, 0, sizeof(c));
	head = build_chain(1, sh, pieces, np, (junk && (shape & 0x80)) ? VRING_DESC_F_WRITE : 0, &c);
	if (head < 0) {
		r->slots_busy &= ~(1ull << slot);
		return 0;
	}
	c.slot = slot;
	c.live = 1;
	r->ch[head] = c;
	make_available(1, (uint16_t)head);
	return 1;
}

static void base_hdr(struct vvs_hdr *h, const struct gconn *g, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = GUEST_CID;
	h->dst_cid = VVS_HOST_CID;
	h->src_port = g->guest_port;
	h->dst_port = g->host_port;
	h->type = VVS_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = g->buf_alloc;
	h->fwd_cnt = (uint32_t)g->h2g_recv;
}

/* The guest answers a REQUEST: RESPONSE, or RST. */
static void op_answer(void)
{
	uint8_t a = u8(), shape = u8();
	struct vvs_hdr h;

	for (int i = 0; i < MAX_GCONNS; i++) {
		struct gconn *g = &gc[(a + i) % MAX_GCONNS];

		if (!g->used || g->state != G_PENDING)
			continue;
		g->buf_alloc = (a & 0x40) ? 4096u << (a & 7) : VVS_BUF;
		base_hdr(&h, g, (a & 0x80) ? VVS_OP_RST : VVS_OP_RESPONSE);
		if (!guest_send(&h, NULL, 0, shape & 0x07, 0))
			return;
		g->state = (a & 0x80) ? G_DEAD : G_OPEN;
		if (a & 0x80)
			g->rst_sent = 1;
		break;
	}
	if (!(shape & 0x80))
		kick(1);
}

/* The guest sends on one of its connections: data (sequence numbers,
 * within the credit the device gave), SHUTDOWN, RST, credit packets, or a
 * malformed packet that resets it. */
static void op_send(void)
{
	uint8_t a = u8(), kind = u8(), shape = u8();
	uint32_t want = u16();
	struct gconn *g = NULL;
	struct vvs_hdr h;
	static uint8_t payload[TX_SLOT];

	for (int i = 0; i < MAX_GCONNS; i++) {
		struct gconn *c = &gc[(a + i) % MAX_GCONNS];

		if (c->used && c->state == G_OPEN) {
			g = c;
			break;
		}
	}
	if (g == NULL)
		return;
	switch (kind % 8) {
	case 0: case 1: case 2: {                 /* data */
		uint32_t credit = g->dev_buf_alloc - (uint32_t)(g->g2h_sent - g->dev_fwd_cnt);
		uint32_t len = want % (TX_SLOT - VVS_HDR_SIZE + 1);

		if (g->shut_send)
			return;
		if ((uint32_t)(g->g2h_sent - g->dev_fwd_cnt) >= g->dev_buf_alloc)
			credit = 0;
		if (len > credit && !(kind & 0x80))
			len = credit;
		if (len == 0)
			return;
		fill_pattern(payload, g->host_port, g->g2h_sent, len);
		base_hdr(&h, g, VVS_OP_RW);
		if (guest_send(&h, payload, len, shape & 0x07, 0))
			g->g2h_sent += len;
		break;
	}
	case 3:                                   /* SHUTDOWN */
		base_hdr(&h, g, VVS_OP_SHUTDOWN);
		h.flags = 1 + kind / 8 % 3;
		if (guest_send(&h, NULL, 0, shape & 0x07, 0) && (h.flags & VVS_SHUTDOWN_SEND))
			g->shut_send = 1;
		break;
	case 4:                                   /* RST */
		base_hdr(&h, g, VVS_OP_RST);
		if (guest_send(&h, NULL, 0, shape & 0x07, 0)) {
			g->rst_sent = 1;
			g->state = G_DEAD;
		}
		break;
	case 5:                                   /* CREDIT_UPDATE */
	case 6:                                   /* CREDIT_REQUEST */
		base_hdr(&h, g, kind % 8 == 5 ? VVS_OP_CREDIT_UPDATE : VVS_OP_CREDIT_REQUEST);
		guest_send(&h, NULL, 0, shape & 0x07, 0);
		break;
	case 7:
		if (kind & 0x20) {                /* a second REQUEST: dropped */
			base_hdr(&h, g, VVS_OP_REQUEST);
			guest_send(&h, NULL, 0, shape & 0x07, 0);
			break;
		}
		/* malformed: the device resets it */
		base_hdr(&h, g, (kind & 0x40) ? 0 : VVS_OP_RW);
		h.type = (kind & 0x40) ? VVS_TYPE_STREAM : 2;
		if (guest_send(&h, NULL, 0, shape & 0x07, 0))
			g->state = G_DEAD;
		break;
	}
	if (!(shape & 0x80))
		kick(1);
}

/* Junk to a port nobody uses, in chains of every shape: zero-length runs,
 * loops, long and bad indirect tables, holes, region edges. */
static void op_junk(void)
{
	uint8_t shape = u8(), a = u8();
	struct vvs_hdr h = { GUEST_CID, VVS_HOST_CID, DEAD_GUEST_PORT, DEAD_HOST_PORT, 0,
			     VVS_TYPE_STREAM, VVS_OP_RW, 0, 0, 0 };
	static uint8_t payload[512];
	uint32_t len = a % sizeof(payload);

	if (a & 0x80)
		h.src_cid = 99;
	memset(payload, 0x5a, len);
	guest_send(&h, payload, len, shape, 1);
	if (!(a & 0x40))
		kick(1);
}

/* Take what the device returned; check it; the RX packets are read as a
 * guest would. */
static void rx_packet(const uint8_t *p, uint32_t len)
{
	struct vvs_hdr h;
	struct gconn *g;

	vvs_hdr_decode(p, &h);
	if (trace) {
		char line[160];

		vvs_hdr_format(&h, line, sizeof(line));
		fprintf(stderr, "  guest rx: %s\n", line);
	}
	if (h.len != len - VVS_HDR_SIZE || h.src_cid != VVS_HOST_CID || h.dst_cid != GUEST_CID ||
	    h.type != VVS_TYPE_STREAM)
		broken("used", "RX packet of %u bytes with len %u, cids %llu -> %llu, type %u", len,
		       h.len, (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid, h.type);
	g = gconn_find(h.src_port, h.dst_port);
	if (h.op == VVS_OP_REQUEST) {
		if (g != NULL && g->state != G_DEAD)
			return;
		if (g == NULL)
			for (int i = 0; i < MAX_GCONNS && g == NULL; i++)
				if (!gc[i].used || gc[i].state == G_DEAD)
					g = &gc[i];
		if (g == NULL)
			return;
		memset(g, 0, sizeof(*g));
		g->used = 1;
		g->state = G_PENDING;
		g->host_port = h.src_port;
		g->guest_port = h.dst_port;
		g->dev_buf_alloc = h.buf_alloc;
		g->dev_fwd_cnt = h.fwd_cnt;
		g->buf_alloc = VVS_BUF;
		return;
	}
	if (g == NULL || g->state == G_DEAD)
		return;
	g->dev_buf_alloc = h.buf_alloc;
	g->dev_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VVS_OP_RW:
		check_pattern("host->guest", g->host_port, g->h2g_recv, p + VVS_HDR_SIZE, h.len);
		g->h2g_recv += h.len;
		break;
	case VVS_OP_RST:
		g->state = G_DEAD;
		break;
	case VVS_OP_SHUTDOWN: {
		struct client *c = client_by_port(g->host_port);

		g->host_shut |= (int)h.flags;
		if ((h.flags & VVS_SHUTDOWN_SEND) && c != NULL && c->half && !was_closed(g->host_port) &&
		    g->h2g_recv != c->sent)
			broken("loss", "host port %u: the device shut down its sending side after %llu "
			       "bytes, the client sent %llu", g->host_port,
			       (unsigned long long)g->h2g_recv, (unsigned long long)c->sent);
		break;
	}
	default:
		break;
	}
}

static void reap(int q)
{
	struct gring *r = &gr[q];
	uint16_t used;
	static uint8_t pkt[VVS_MAX_PKT + RX_SLOT];

	if (r->num == 0)
		return;
	memcpy(&used, mem + RING_OFF(q) + USED_AT + 2, 2);
	if ((uint16_t)(used - r->last_used) > r->num)
		broken("used", "ring %d: used index %u, %u ahead of the guest's %u with %u entries",
		       q, used, (uint16_t)(used - r->last_used), r->last_used, r->num);
	while (r->last_used != used) {
		struct vring_used_elem e;
		struct chain *c;
		uint32_t total = 0, got = 0;

		memcpy(&e, mem + RING_OFF(q) + USED_AT + 4 + 8u * (r->last_used % r->num), 8);
		r->last_used++;
		if (e.id >= r->num || !r->ch[e.id].live)
			broken("used", "ring %d: the device returned chain %u, which the guest has not "
			       "made available (returned twice, or a replay of old entries)", q, e.id);
		c = &r->ch[e.id];
		if (q == 0) {
			for (unsigned i = 0; i < c->npieces; i++)
				total += c->pieces[i].len;
			if (e.len > total || (e.len > 0 && e.len < VVS_HDR_SIZE))
				broken("used", "RX chain %u: used length %u, %u bytes posted", e.id, e.len,
				       total);
			for (unsigned i = 0; i < c->npieces && got < e.len; i++) {
				uint32_t k = c->pieces[i].len < e.len - got ? c->pieces[i].len : e.len - got;

				memcpy(pkt + got, mem + c->pieces[i].off, k);
				got += k;
			}
			if (e.len > 0)
				rx_packet(pkt, e.len);
		}
		chain_free(q, (uint16_t)e.id);
	}
}

/* ---- clients ---- */

static void op_client_open(void)
{
	uint8_t a = u8();
	struct client *c = &cl[a % MAX_CLIENTS];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static const uint32_t ports[] = { 5555, 5556, 7, 0xffffffffu };
	char line[40];
	int n;

	if (c->fd >= 0)
		return;
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", hyb_path);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return;
	}
	if (a & 0x80)
		return;                       /* no CONNECT line yet (or ever) */
	n = (a & 0x40) ? snprintf(line, sizeof(line), "CONNECT x%u\n", (a >> 2) & 3)
		       : snprintf(line, sizeof(line), "CONNECT %u\n", ports[(a >> 2) & 3]);
	(void)!send(c->fd, line, (size_t)n, MSG_NOSIGNAL);
	c->connect_sent = 1;
}

/* Read what came: the OK line, then the guest's stream, checked. */
static void client_read(struct client *c)
{
	uint8_t buf[16384];

	for (int rounds = 0; c->fd >= 0 && rounds < 64; rounds++) {
		ssize_t n = recv(c->fd, buf, c->got_ok ? sizeof(buf) : 1, MSG_DONTWAIT);
		struct gconn *g;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (trace && n <= 0)
			fprintf(stderr, "  client %d: %s after %llu bytes\n", (int)(c - cl),
				n == 0 ? "end of file" : strerror(errno), (unsigned long long)c->recv);
		if (n <= 0) {
			/* end of file: the connection ended; was it ended? */
			if (c->got_ok) {
				int legit = was_closed(c->host_port);

				g = gconn_by_host(c->host_port);
				if (!legit && g != NULL && (g->shut_send || g->rst_sent)) {
					legit = 1;
					if (g->shut_send && !g->rst_sent && g->g2h_sent != c->recv)
						broken("loss", "host port %u: the client got %llu bytes and end of "
						       "file, the guest sent %llu and shut down", c->host_port,
						       (unsigned long long)c->recv,
						       (unsigned long long)g->g2h_sent);
				}
				if (!legit && !(c->half && is_known(6)))
					broken("loss", "host port %u: the client%s got end of file after %llu "
					       "bytes, but neither the guest (no SHUTDOWN, no RST) nor the "
					       "device (no reset) ended the connection: what the guest sends "
					       "now is lost", c->host_port,
					       c->half ? ", which only shut down its sending side," : "",
					       (unsigned long long)c->recv);
			}
			close(c->fd);
			c->fd = -1;
			return;
		}
		if (!c->got_ok) {
			if (c->ok_len + 1 >= sizeof(c->ok) || buf[0] == '\0')
				broken("order", "a client got a malformed OK line");
			c->ok[c->ok_len++] = (char)buf[0];
			if (buf[0] == '\n') {
				unsigned port;

				c->ok[c->ok_len] = '\0';
				if (sscanf(c->ok, "OK %u\n", &port) != 1)
					broken("order", "a client got \"%s\" for its CONNECT", c->ok);
				c->host_port = port;
				c->got_ok = 1;
				if (trace)
					fprintf(stderr, "  client %d: OK %u\n", (int)(c - cl), port);
			}
			continue;
		}
		check_pattern("guest->client", c->host_port, c->recv, buf, (size_t)n);
		c->recv += (uint64_t)n;
	}
}

static void op_client_write(void)
{
	struct client *c = &cl[u8() % MAX_CLIENTS];
	uint32_t len = u16() % 20000;
	static uint8_t buf[20000];
	ssize_t n;

	if (c->fd >= 0 && !c->got_ok)
		client_read(c);
	if (c->fd < 0 || !c->got_ok || c->half || len == 0)
		return;
	fill_pattern(buf, c->host_port, c->sent, len);
	n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		c->sent += (uint64_t)n;
}

static void op_client_end(int how)
{
	struct client *c = &cl[u8() % MAX_CLIENTS];

	if (c->fd < 0)
		return;
	if (how == 0) {
		client_read(c);
		return;
	}
	if (how == 1) {
		if (c->got_ok && !c->half) {
			shutdown(c->fd, SHUT_WR);
			c->half = 1;
		}
		return;
	}
	close(c->fd);
	c->fd = -1;
}

/* ---- the device's callbacks, seen on the way to hybrid.c ---- */

static void note_closed(uint32_t host_port)
{
	closed_ports[nclosed++ % MAX_CLOSED] = host_port;
}

static void w_connected(struct vvs_conn *c, int status)
{
	if (status != 0)
		note_closed(c->host_port);
	vhu_hybrid_ops.connected(c, status);
}

static void w_closed(struct vvs_conn *c, const char *why)
{
	note_closed(c->host_port);
	vhu_hybrid_ops.closed(c, why);
}

static void w_readable(struct vvs_conn *c)
{
	vhu_hybrid_ops.readable(c);
}

static void w_writable(struct vvs_conn *c)
{
	vhu_hybrid_ops.writable(c);
}

static const struct vvs_ops watched_ops = {
	.connected = w_connected, .readable = w_readable, .writable = w_writable,
	.closed = w_closed,
};

/* ---- checks after every step ---- */

static void check_memory(void)
{
	static unsigned char vec[NPAGES];

	if (mincore(mem, MEMSIZE, vec) != 0)
		abort();
	for (uint32_t p = 0; p < NPAGES; p++) {
		uint32_t off = p * PAGE;

		if (!(vec[p] & 1))
			continue;
		if (!written[p] && !rx_page[p] && !is_known(5))
			broken("resident", "page %u of guest memory (offset %#x, gpa %#llx) is resident, "
			       "but the guest never wrote it nor posted it as an RX buffer: a hole "
			       "faulted in by the relay", p, off, (unsigned long long)gpa_of(off));
		if (memcmp(mem + off, shadow + off, PAGE) == 0)
			continue;
		for (uint32_t i = 0; i < PAGE; i++)
			if (mem[off + i] != shadow[off + i] && wcount[off + i] == 0)
				broken("writes", "the device wrote guest memory at offset %#x (gpa %#llx): "
				       "%#x, was %#x; not in an RX buffer the guest has posted, nor a used "
				       "ring", off + i, (unsigned long long)gpa_of(off + i), mem[off + i],
				       shadow[off + i]);
		memcpy(shadow + off, mem + off, PAGE);
		shadow_dirty[p] = 1;
	}
}

static int base_fds;

static void check_fds(void)
{
	int harness = 1 /* memfd */, device = 0, n;

	harness += vmm >= 0;
	for (int q = 0; q < 2; q++) {
		harness += gr[q].kick_h >= 0;
		harness += gr[q].call_h >= 0 && gr[q].call_h != gr[q].kick_h;
		device += dev.q[q].kick_fd >= 0;
		device += dev.q[q].call_fd >= 0;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		harness += cl[i].fd >= 0;
	device += dev.conn != NULL;
	device += (int)dev.mem.n;        /* each mapping keeps its file, for pread() */
	device += (int)vhu_hybrid_clients(&dev);
	n = count_fds();
	if (n != base_fds + harness + device)
		broken("fds", "%d descriptors open, expected %d: %d before the input, %d the harness's, "
		       "%d the device refers to (VMM socket, memory files, kick and call fds, hybrid streams)",
		       n, base_fds + harness + device, base_fds, harness, device);
}

static void check_queues(void)
{
	for (unsigned i = 0; i < dev.vvs.nconns; i++)
		if (dev.vvs.conns[i]->rx.len > VVS_BUF || dev.vvs.conns[i]->tx.len > VVS_BUF)
			broken("used", "a connection holds more than VVS_BUF");
}

static void observe(void)
{
	settle();
	check_dropped();
	vmm_replies();
	check_queues();
	check_memory();
	reap(1);
	reap(0);
	check_fds();
}

/* ---- set-up and the input ---- */

static void quiet_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	(void)d;
	if (trace)
		fprintf(stderr, "  device%s: %s\n", warn ? " (warn)" : "", msg);
	if (cause == NULL || msg == NULL)
		abort();
}

/* The temporary directory goes with the process (not after a crash: it
 * holds the sockets then, to look at). */
static void remove_tmpdir(void)
{
	unlink(vhu_path);
	unlink(hyb_path);
	rmdir(tmpdir);
}

static void start(void)
{
	char err[160];
	const char *e;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 5 };
	struct sigaction sa = { .sa_handler = on_hang };

	if ((e = getenv("FUZZ_DEVICE_KNOWN")) != NULL)
		for (; *e; e++)
			if (*e >= '1' && *e <= '9')
				known |= 1u << (*e - '0');
	if ((e = getenv("FUZZ_DEVICE_STALL_MS")) != NULL)
		stall_ms = atol(e);
	if ((e = getenv("FUZZ_DEVICE_HANG_MS")) != NULL)
		hang_ms = atol(e);
	trace = getenv("FUZZ_DEVICE_TRACE") != NULL;
	sigaction(SIGRTMIN + 5, &sa, NULL);   /* vmmfd.c has SIGRTMIN + 1 */
	if (timer_create(CLOCK_MONOTONIC, &sev, &hang_timer) != 0)
		abort();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fuzz-device-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		abort();
	snprintf(vhu_path, sizeof(vhu_path), "%s/vhost.sock", tmpdir);
	snprintf(hyb_path, sizeof(hyb_path), "%s/hybrid.sock", tmpdir);
	atexit(remove_tmpdir);
	uv_loop_init(&loop);
	if (vhu_start(&dev, &loop, vhu_path, GUEST_CID, &watched_ops, NULL, err, sizeof(err)) != 0 ||
	    vhu_hybrid_listen(&dev, hyb_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_device: %s\n", err);
		abort();
	}
	dev.log = quiet_log;
	memfd = memfd_create("fuzz-device-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, MEMSIZE) != 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
		abort();
	mem = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	shadow = calloc(1, MEMSIZE);
	if (mem == MAP_FAILED || shadow == NULL)
		abort();
	for (int q = 0; q < 2; q++) {
		struct piece used = { RING_OFF(q) + USED_AT, 0x8000 };

		for (uint32_t i = 0; i < used.len; i++)
			wcount[used.off + i] = 1;     /* the used rings are the device's */
		gr[q].kick_h = gr[q].call_h = -1;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		cl[i].fd = -1;
	uv_run(&loop, UV_RUN_NOWAIT);
	idle_handles = dev.handles_open;
	started = 1;
}

/* A fresh guest: its memory all holes again, nothing posted. */
static void fresh_guest(void)
{
	for (int q = 0; q < 2; q++)
		guest_ring_init(q, 0);
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MEMSIZE) != 0)
		abort();
	for (uint32_t p = 0; p < NPAGES; p++)
		if (shadow_dirty[p]) {
			memset(shadow + p * PAGE, 0, PAGE);
			shadow_dirty[p] = 0;
		}
	memset(written, 0, sizeof(written));
	memset(rx_page, 0, sizeof(rx_page));
	for (int q = 0; q < 2; q++) {
		gr[q].num = 0;
		gr[q].base_known = 1;
		gr[q].base = 0;
	}
	memset(gc, 0, sizeof(gc));
	nclosed = 0;
	vmm_split = 0;
}

static const char *const op_names[] = {
	"vmm start", "vmm message", "vmm message", "vmm fds", "vmm reconnect", "post rx",
	"post rx", "guest send", "guest send", "guest junk", "guest kick", "guest answer",
	"client open", "client write", "client read", "client shutdown", "client close",
	"time jump", "reap calls",
};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!started)
		start();
	fresh_guest();
	settle();
	base_fds = count_fds() - 1;      /* memfd counted apart */
	seen_disconnects = dev.st.disconnects;
	in = data;
	in_left = size;
	for (step = 0; in_left > 0 && step < MAX_OPS; step++) {
		uint8_t op = u8() % NOPS;

		snprintf(op_name, sizeof(op_name), "%s", op_names[op]);
		if (trace)
			fprintf(stderr, "step %u: %s\n", step, op_name);
		arm();
		switch (op) {
		case 0: op_vmm_start(); break;
		case 1: case 2: op_vmm_msg(); break;
		case 3: op_vmm_fds(); break;
		case 4: vmm_close(); break;
		case 5: case 6: op_post_rx(); break;
		case 7: case 8: op_send(); break;
		case 9: op_junk(); break;
		case 10: kick(u8() & 1); break;
		case 11: op_answer(); break;
		case 12: op_client_open(); break;
		case 13: op_client_write(); break;
		case 14: op_client_end(0); break;
		case 15: op_client_end(1); break;
		case 16: op_client_end(2); break;
		case 17: {
			double cpu0 = clock_ms(CLOCK_THREAD_CPUTIME_ID), wall0 = now_ms();

			vvs_expire(&dev.vvs, uv_now(&loop) + 1000ull * u8());
			check_stall("vvs_expire", cpu0, wall0);
			break;
		}
		case 18: op_vmm_fds(); break;
		}
		observe();
		disarm();
	}
	/* the end: clients read and gone, the VMM gone, nothing left over */
	snprintf(op_name, sizeof(op_name), "end of input");
	arm();
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (cl[i].fd >= 0) {
			client_read(&cl[i]);
			if (cl[i].fd >= 0)
				close(cl[i].fd);
			cl[i].fd = -1;
		}
	observe();
	vmm_close();
	observe();
	for (int q = 0; q < 2; q++)
		close_h(q);
	for (int i = 0; i < 16 && dev.handles_open > idle_handles; i++)
		turn();
	if (dev.streams != NULL || dev.vvs.nconns != 0 || dev.conn != NULL)
		broken("fds", "after the input: streams %s, %u vsock connections, VMM %s",
		       dev.streams ? "left" : "none", dev.vvs.nconns, dev.conn ? "attached" : "gone");
	check_fds();
	disarm();
	return 0;
}
