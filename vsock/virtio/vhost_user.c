/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost_user.c - the vhost-user back end of the relay's virtio-vsock
 * device: the listening socket, the VMM's messages (a dispatch table with
 * each request's payload size; each handler owns the descriptors it
 * adopts, every other received descriptor is closed after the message),
 * guest memory mappings (sealed memfds only, their holes never faulted in
 * on a guest's say: see "holes" below), and the two virtqueues
 * moving packets between the guest and the protocol core. Reading and
 * writing the VMM's socket is vhu_conn.c's.
 */
#include "vsock/virtio/vhost_user.h"
#include "vsock/virtio/vhu_internal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

enum {
	VHU_GET_FEATURES = 1, VHU_SET_FEATURES = 2, VHU_SET_OWNER = 3, VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5, VHU_SET_VRING_NUM = 8, VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10, VHU_GET_VRING_BASE = 11, VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13, VHU_SET_VRING_ERR = 14, VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16, VHU_GET_QUEUE_NUM = 17, VHU_SET_VRING_ENABLE = 18,
	VHU_GET_CONFIG = 24, VHU_SET_CONFIG = 25,
};

#define VHU_FLAG_NEED_REPLY 0x8u
#define VHU_VRING_NOFD (1u << 8)

#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL_FEATURES (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define OFFERED_FEATURES (F_INDIRECT_DESC | F_EVENT_IDX | F_PROTOCOL_FEATURES | F_VERSION_1)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define OFFERED_PROTOCOL (PF_REPLY_ACK | PF_CONFIG)

#define HOLE_BUDGET_PAGES 4096 /* RX pages in holes the relay may fill (16 MiB), */
#define HOLE_REFILL_MS (3600 * 1000 / HOLE_BUDGET_PAGES) /* a page back this often */
#define EMPTY_KICKS_MAX 1024   /* kicks in a row with nothing new available */
#define TX_BUDGET 256          /* packets per kick before yielding */
#define STEP_BUDGET 16384      /* descriptors walked per pass over a ring before
				* yielding (a chain takes up to VRING_MAX_CHAIN) */
#define SOCKET_MODE 0600       /* only the VMM's user may connect */

void vhu_log(struct vhu_device *d, int warn, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (d->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->log(d, warn, fmt, msg);
}

static void schedule_flush(struct vhu_device *d);

/* The device stops until the VMM resets it or goes; its connections end
 * (on the next loop turn, not inside the pass that failed), so that their
 * owners see the link lost instead of waiting on it for ever. */
static void fail_device(struct vhu_device *d, const char *why)
{
	if (d->failed[0] == '\0')
		vhu_log(d, 1, "device failed: %s", why);
	snprintf(d->failed, sizeof(d->failed), "%s", why);
	schedule_flush(d);
}

void vhu_close_fds(struct vhu_msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

/* ---- holes: guest memory the VMM never allocated ----
 *
 * A memfd of the right size may be sparse (QEMU's guest memory is, until
 * the guest writes it; a VMM can punch holes later with fallocate, the file
 * being shared). Touching a hole through our mapping allocates a page,
 * charged to the relay, not the VMM. So, for each chain, mincore() (which
 * looks at the file's pages and faults nothing in) says which pages exist:
 * - tx data with pages missing is read with pread() from the file: holes
 *   read as zeros and nothing is allocated (a page swapped out by the host
 *   comes back charged to its owner);
 * - an indirect table with pages missing is refused (vring.c's hook): a
 *   guest writes its tables just before it queues them;
 * - an RX buffer is written where the guest put it (a guest may post
 *   buffers in memory it never wrote), but the pages the write filled count
 *   against HOLE_BUDGET_PAGES, the device's (holes_refill); once it is
 *   spent, buffers with pages missing are refused (the last write may pass
 *   it by at most one packet's pages).
 * The answers are kept for the rest of a pass (the window cache below).
 * Limit: a VMM that punches a hole between the check (at most a pass
 * earlier) and the access still makes us allocate that page (a race per
 * page, not a rate). */

static size_t page_size(void)
{
	static size_t pg;

	if (pg == 0)
		pg = (size_t)sysconf(_SC_PAGESIZE);
	return pg;
}

/* One mincore() per buffer cut the device's 4 KiB guest->host throughput
 * to less than half (bench_virtio), and was 13% of the relay's CPU through
 * a virtio: target with 4 KiB RX buffers; so a pass over a ring (vhu_flush,
 * vhu_process_tx) or one write of the protocol core into RX buffers
 * (core_rx_buffer) keeps the answers for the HOLE_WINDOWS windows of up to
 * HOLE_WINDOW pages from its last buffers on (guests take their buffers
 * from a few places, in order), and forgets them when the next pass
 * begins, when the memory table changes (holes_forget), and after writing
 * an RX buffer that had pages missing (those pages exist now: asked anew,
 * to charge them). A hole punched during a pass is the same race as one
 * punched between a check and the access. A window starts at the first page
 * not known, so a buffer of 17 pages (64 KiB and a header) takes one call.
 * Measured through a virtio: target (bench_virtio --relay), the relay's
 * mincore() calls per MiB host->guest: with 4 KiB RX buffers 316 when RX
 * buffers were asked anew, 74 kept; with 64 KiB ones 60 and 59 (about one
 * a pass). */
#define HOLE_WINDOW 32
#define HOLE_WINDOWS 8

static struct hole_window {
	uintptr_t base;
	size_t pages;
	unsigned char vec[HOLE_WINDOW];
} hole_win[HOLE_WINDOWS];
static unsigned hole_nwin, hole_next;

static void holes_forget(void)
{
	hole_nwin = 0;
}

/* Is the page at A (page aligned) missing from guest memory's file? NEED:
 * the pages from A on that the caller asks about (inside guest memory). */
static int page_absent(uintptr_t a, size_t need)
{
	size_t pg = page_size(), n = HOLE_WINDOW;
	struct hole_window *w;
	unsigned char v;

	for (unsigned i = 0; i < hole_nwin; i++)
		if (a - hole_win[i].base < hole_win[i].pages * pg)
			return !(hole_win[i].vec[(a - hole_win[i].base) / pg] & 1);
	w = &hole_win[hole_nwin < HOLE_WINDOWS ? hole_nwin : hole_next++ % HOLE_WINDOWS];
	if (mincore((void *)a, n * pg, w->vec) != 0) {
		/* the window passes the mapping's end: what was asked */
		n = need < HOLE_WINDOW ? need : HOLE_WINDOW;
		if (mincore((void *)a, n * pg, w->vec) != 0)
			return mincore((void *)a, pg, &v) != 0 || !(v & 1);
	}
	w->base = a;
	w->pages = n;
	if (hole_nwin < HOLE_WINDOWS)
		hole_nwin++;
	return !(w->vec[0] & 1);
}

/* Pages of [p, p+len) missing from guest memory's file. */
static size_t pages_absent(const void *p, size_t len)
{
	size_t pg = page_size(), absent = 0;
	uintptr_t a = (uintptr_t)p & ~(pg - 1), end = (uintptr_t)p + len;

	for (; a < end; a += pg)
		absent += (size_t)page_absent(a, (end - a + pg - 1) / pg);
	return absent;
}

static int pages_present(const void *p, size_t len)
{
	size_t pg = page_size();
	uintptr_t a = (uintptr_t)p & ~(pg - 1), end = (uintptr_t)p + len;

	for (; a < end; a += pg)
		if (page_absent(a, (end - a + pg - 1) / pg))
			return 0;
	return 1;
}

static int tx_present(const struct vring_chain *ch)
{
	for (unsigned i = 0; i < ch->nout; i++)
		if (!pages_present(ch->out[i].iov_base, ch->out[i].iov_len))
			return 0;
	return 1;
}

/* Copy a chain's readable part into d->pkt from guest memory's files:
 * bytes, or 0 if a read failed. */
static size_t tx_read_files(struct vhu_device *d, const struct vring_chain *ch)
{
	size_t len = 0;

	for (unsigned i = 0; i < ch->nout; i++) {
		const uint8_t *p = ch->out[i].iov_base;
		size_t want = ch->out[i].iov_len, got = 0;
		unsigned r = 0;

		while (r < d->mem.n && !(p >= (uint8_t *)d->maps[r] &&
					 p < (uint8_t *)d->maps[r] + d->map_len[r]))
			r++;
		if (r == d->mem.n)
			return 0;
		for (int tries = 0; got < want && tries < 8; tries++) {
			ssize_t n = pread(d->map_fd[r], d->pkt + len + got, want - got,
					  (off_t)(p - (uint8_t *)d->maps[r]) + (off_t)got);

			if (n <= 0 && !(n < 0 && errno == EINTR))
				return 0;
			if (n > 0)
				got += (size_t)n;
		}
		if (got < want)
			return 0;
		len += want;
	}
	return len;
}

/* The hole budget is the device's, across VMM connections: it comes back
 * at a page every HOLE_REFILL_MS (16 MiB an hour), whatever the VMM does. */
static void holes_refill(struct vhu_device *d)
{
	uint64_t now = uv_now(d->loop), pages = (now - d->hole_refill_at) / HOLE_REFILL_MS;

	if (pages == 0)
		return;
	d->hole_refill_at += pages * HOLE_REFILL_MS;
	d->hole_pages = d->hole_pages + pages < HOLE_BUDGET_PAGES ? d->hole_pages + pages
								   : HOLE_BUDGET_PAGES;
}

/* After writing an RX buffer: the pages it filled (ABSENT missing before,
 * fewer now) come off the budget. */
static void charge_holes(struct vhu_device *d, size_t absent, size_t now)
{
	size_t filled = absent > now ? absent - now : 0;

	d->hole_pages -= filled < d->hole_pages ? filled : d->hole_pages;
}

/* Missing pages in the CAP bytes of an RX buffer the device would write. */
static size_t rx_absent(const struct vring_chain *ch, size_t cap)
{
	size_t absent = 0;

	for (unsigned i = 0; i < ch->nin && cap > 0; i++) {
		size_t k = ch->in[i].iov_len < cap ? ch->in[i].iov_len : cap;

		absent += pages_absent(ch->in[i].iov_base, k);
		cap -= k;
	}
	return absent;
}

/* ---- queues ---- */

static void on_flush_idle(uv_idle_t *h);

/* Flush on the next loop iteration, not inside whatever asked for it. */
static void schedule_flush(struct vhu_device *d)
{
	if (!d->flush_pending) {
		d->flush_pending = 1;
		uv_idle_start(&d->flush_idle, on_flush_idle);
	}
}

static void notify(struct vhu_queue *q, struct vhu_device *d)
{
	char why[96];
	int rc;

	if (q->call_fd < 0 || !vring_need_notify(&q->vr))
		return;
	rc = vmmfd_signal(q->call_fd);
	if (rc == 0 || rc == -EAGAIN) {
		d->st.calls++;
		return;
	}
	/* never again: the VMM made this call eventfd wait (or broke it) */
	close(q->call_fd);
	q->call_fd = -1;
	snprintf(why, sizeof(why), "call of ring %d %s", q->index,
		 rc == -ETIMEDOUT ? "would block (the VMM cleared O_NONBLOCK and filled it)"
				  : strerror(-rc));
	fail_device(d, why);
}

static int queue_ready(const struct vhu_queue *q)
{
	return q->enabled && q->vr.num != 0;
}

int vhu_ready(const struct vhu_device *d)
{
	return d->conn != NULL && d->failed[0] == '\0' && queue_ready(&d->q[0]) &&
	       queue_ready(&d->q[1]);
}

void vhu_process_tx(struct vhu_device *d)
{
	struct vhu_queue *q = &d->q[1];
	struct vring_chain ch;
	unsigned steps = 0;
	int n = 0;

	if (!queue_ready(q) || d->failed[0] != '\0')
		return;     /* a kick before the ring is set up, or a failed device */
	holes_forget();
	for (;;) {
		enum vring_status st = vring_pop(&q->vr, &d->mem, &ch);
		size_t len = 0;
		int present;

		if (st == VRING_EMPTY) {
			/* re-arm kicks, then look once more: the guest may have
			 * queued a packet it will not kick for */
			if (!vring_enable_kicks(&q->vr))
				break;
			continue;
		}
		if (st == VRING_EBADRING) {
			fail_device(d, "tx ring: driver made more available than the ring holds");
			return;
		}
		if (st == VRING_OK && (ch.out_len < VVS_HDR_SIZE ||
				       ch.out_len > VVS_MAX_PKT)) {
			st = VRING_EBADCHAIN;
			ch.error = "tx packet of a bad size";
		}
		present = st == VRING_OK && tx_present(&ch);
		if (st == VRING_OK && !present && (len = tx_read_files(d, &ch)) == 0) {
			st = VRING_EBADCHAIN;
			ch.error = "tx packet unreadable from guest memory's file";
		}
		if (st == VRING_OK && present && ch.nout <= 2 &&
		    ch.out[0].iov_len == VVS_HDR_SIZE) {
			/* the usual split, header then payload: use guest memory as is */
			vvs_input(&d->vvs, ch.out[0].iov_base,
				  ch.nout == 2 ? ch.out[1].iov_base : NULL, ch.out_len - VVS_HDR_SIZE);
		} else if (st == VRING_OK) {
			/* gather header and payload, whatever the descriptor split
			 * (pages missing: read from the file above) */
			for (unsigned i = 0; present && i < ch.nout; i++) {
				memcpy(d->pkt + len, ch.out[i].iov_base, ch.out[i].iov_len);
				len += ch.out[i].iov_len;
			}
			vvs_input(&d->vvs, d->pkt, d->pkt + VVS_HDR_SIZE, len - VVS_HDR_SIZE);
		} else {
			d->st.bad_chains++;
			vhu_log(d, 1, "tx chain %u dropped: %s", ch.head, ch.error);
		}
		vring_push(&q->vr, ch.head, 0);
		if (d->failed[0] != '\0')
			return;
		steps += ch.steps;
		if (++n == TX_BUDGET || steps >= STEP_BUDGET) {
			/* let other work run; come back on the next loop turn */
			d->tx_pending = 1;
			schedule_flush(d);
			break;
		}
	}
	/* a call only for chains returned: a kick that yields nothing costs
	 * one read (with one eventfd as kick and call, a call for nothing
	 * would be the next kick, forever) */
	if (n > 0)
		notify(q, d);
}

void vhu_flush(struct vhu_device *d)
{
	struct vhu_queue *q = &d->q[0];
	struct vring_chain ch;
	int pushed = 0, bad = 0;
	unsigned steps = 0;

	if (!queue_ready(q) || d->failed[0] != '\0')
		return;
	holes_forget();
	holes_refill(d);
	while (d->failed[0] == '\0') {
		enum vring_status st = vring_pop(&q->vr, &d->mem, &ch);
		size_t n, cap, done = 0, absent = 0;

		if (st == VRING_EMPTY) {
			if (!vring_enable_kicks(&q->vr))
				break;
			continue;       /* buffers came while we re-armed kicks */
		}
		if (st == VRING_EBADRING) {
			fail_device(d, "rx ring: driver made more available than the ring holds");
			return;
		}
		steps += ch.steps;
		if (st == VRING_OK && (ch.nout > 0 || ch.in_len < VVS_HDR_SIZE)) {
			st = VRING_EBADCHAIN;
			ch.error = "rx buffer not writable or shorter than a header";
		}
		if (st == VRING_OK &&
		    (absent = rx_absent(&ch, ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT)) > 0 &&
		    d->hole_pages == 0) {
			st = VRING_EBADCHAIN;
			ch.error = "rx buffer in holes of guest memory, beyond the budget (16 MiB)";
		}
		if (st != VRING_OK) {
			d->st.bad_chains++;
			vhu_log(d, 1, "rx chain %u dropped: %s", ch.head, ch.error);
			vring_push(&q->vr, ch.head, 0);
			pushed++;
			if (++bad == TX_BUDGET || steps >= STEP_BUDGET) {
				schedule_flush(d);   /* a guest reposting garbage: yield */
				break;
			}
			continue;
		}
		cap = ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT;
		if (ch.nin == 1) {
			/* one buffer, as Linux posts them: write the packet in place */
			n = vvs_output(&d->vvs, ch.in[0].iov_base, cap);
		} else {
			n = vvs_output(&d->vvs, d->pkt, cap);
			for (unsigned i = 0; i < ch.nin && done < n; i++) {
				size_t k = ch.in[i].iov_len < n - done ? ch.in[i].iov_len : n - done;
				memcpy(ch.in[i].iov_base, d->pkt + done, k);
				done += k;
			}
		}
		if (n == 0) {
			q->vr.last_avail--;   /* keep the buffer for later */
			break;
		}
		vring_push(&q->vr, ch.head, (uint32_t)n);
		pushed++;
		if (absent > 0) {
			holes_forget();     /* the pages it filled exist now */
			charge_holes(d, absent, rx_absent(&ch, cap));
		}
		if (steps >= STEP_BUDGET) {
			schedule_flush(d);   /* the rest on the next loop turn */
			break;
		}
	}
	if (pushed || d->rx_unsignalled)
		notify(q, d);
	d->rx_unsignalled = 0;
}

/* The protocol core's direct path: one RX buffer of the usual shape (a
 * single writable descriptor), or NULL and the ring untouched, for
 * vhu_flush() to deal with whatever else is there. The buffers of one
 * write are a pass: the first forgets what earlier ones learnt. */
static uint8_t *core_rx_buffer(struct vvs_device *v, size_t *cap, int first)
{
	struct vhu_device *d = v->data;
	struct vhu_queue *q = &d->q[0];
	struct vring_chain ch;
	uint16_t next = q->vr.last_avail;
	size_t absent;

	if (first)
		holes_forget();
	holes_refill(d);
	if (!queue_ready(q) || d->failed[0] != '\0')
		return NULL;
	if (vring_pop(&q->vr, &d->mem, &ch) != VRING_OK ||
	    ch.nin != 1 || ch.nout > 0 || ch.in_len <= VVS_HDR_SIZE ||
	    ((absent = rx_absent(&ch, ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT)) > 0 &&
	     d->hole_pages == 0)) {
		q->vr.last_avail = next;   /* a bad chain is vhu_flush's to return */
		return NULL;
	}
	d->rx_head = ch.head;
	*cap = ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT;
	d->rx_absent = absent;     /* what it filled is charged when used */
	d->rx_buf = (struct iovec){ ch.in[0].iov_base, *cap };
	return ch.in[0].iov_base;
}

/* The call for buffers used this way goes out on the next loop turn, one
 * for all of them. */
static void core_rx_commit(struct vvs_device *v, size_t len)
{
	struct vhu_device *d = v->data;

	vring_push(&d->q[0].vr, d->rx_head, (uint32_t)len);
	if (d->rx_absent > 0) {
		holes_forget();     /* the pages it filled exist now */
		charge_holes(d, d->rx_absent, pages_absent(d->rx_buf.iov_base, d->rx_buf.iov_len));
	}
	d->rx_unsignalled = 1;
	schedule_flush(d);
}

/* ---- watched descriptors: one heap handle per watch, freed on close ---- */

struct watch {
	uv_poll_t poll;
	struct vhu_device *dev;
};

static uv_poll_t *watch_start(struct vhu_device *d, int fd, uv_poll_cb cb, void *ctx)
{
	struct watch *w = malloc(sizeof(*w));

	if (w == NULL)
		return NULL;
	w->dev = d;
	if (uv_poll_init(d->loop, &w->poll, fd) != 0) {
		free(w);
		return NULL;
	}
	w->poll.data = ctx;
	uv_poll_start(&w->poll, UV_READABLE, cb);
	d->handles_open++;
	return &w->poll;
}

void vhu_handle_gone(struct vhu_device *d)
{
	if (--d->handles_open == 0 && d->on_closed != NULL)
		d->on_closed(d);
}

static void watch_closed(uv_handle_t *h)
{
	struct watch *w = (struct watch *)h;
	struct vhu_device *d = w->dev;

	free(w);
	vhu_handle_gone(d);
}

static void watch_stop(uv_poll_t **w)
{
	if (*w != NULL)
		uv_close((uv_handle_t *)*w, watch_closed);
	*w = NULL;
}

static void stop_kicks(struct vhu_queue *q)
{
	watch_stop(&q->kick_watch);
}

static void on_kick(uv_poll_t *p, int status, int events)
{
	struct vhu_queue *q = p->data;
	struct vhu_device *d = q->dev;
	int rc = status < 0 ? status : vmmfd_take(q->kick_fd);
	char why[64];

	(void)events;
	if (rc != 0) {
		/* still watched, a kick fd that cannot be read keeps the loop busy */
		stop_kicks(q);
		close(q->kick_fd);
		q->kick_fd = -1;
		snprintf(why, sizeof(why), "kick of ring %d unreadable: %s", q->index,
			 rc == -EIO ? "short read" : strerror(-rc));
		fail_device(d, why);
		return;
	}
	d->st.kicks++;
	/* a kick that keeps firing with nothing new in the ring (a semaphore
	 * eventfd on a kernel that does not say so, a VMM writing kicks in a
	 * loop) would cost a pass every loop turn */
	if (q->vr.num != 0) {
		uint16_t idx = le16toh(__atomic_load_n(&q->vr.avail[1], __ATOMIC_ACQUIRE));

		if (idx != q->kick_idx) {
			q->kick_idx = idx;
			q->empty_kicks = 0;
		} else if (++q->empty_kicks >= EMPTY_KICKS_MAX) {
			stop_kicks(q);
			close(q->kick_fd);
			q->kick_fd = -1;
			snprintf(why, sizeof(why), "kick of ring %d fired %d times with nothing new",
				 q->index, EMPTY_KICKS_MAX);
			fail_device(d, why);
			return;
		}
	}
	if (q->index == 1)
		vhu_process_tx(d);
	vhu_flush(d);
}

static void start_kicks(struct vhu_queue *q)
{
	if (q->kick_watch == NULL && q->kick_fd >= 0)
		q->kick_watch = watch_start(q->dev, q->kick_fd, on_kick, q);
}

/* Translate a ring's addresses. A ring set up afresh starts at its base;
 * one that ran (OLD, when the memory table changes under running rings)
 * keeps where it was: only its pointers are new. */
static int setup_ring(struct vhu_device *d, struct vhu_queue *q, const struct vring *old)
{
	if (q->num == 0 || q->desc_ua == 0)
		return 0;      /* not all known yet */
	if (vring_setup(&q->vr, &d->mem, q->num, q->desc_ua, q->avail_ua, q->used_ua,
			(d->features & F_EVENT_IDX) != 0) != 0)
		return -1;
	q->vr.last_avail = q->base;
	if (old != NULL && old->num == q->vr.num) {
		q->vr.last_avail = old->last_avail;
		q->vr.used_idx = old->used_idx;
		q->vr.signalled_used = old->signalled_used;
		q->vr.signalled_valid = old->signalled_valid;
	}
	return 0;
}

static void reset_queue(struct vhu_queue *q)
{
	stop_kicks(q);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	q->kick_fd = q->call_fd = -1;
	memset(&q->vr, 0, sizeof(q->vr));
	q->num = 0;
	q->base = 0;
	q->desc_ua = q->avail_ua = q->used_ua = 0;
	q->enabled = 0;
	q->kick_idx = 0;
	q->empty_kicks = 0;
}

static void unmap_memory(struct vhu_device *d)
{
	holes_forget();
	for (unsigned i = 0; i < d->mem.n; i++) {
		munmap(d->maps[i], d->map_len[i]);
		close(d->map_fd[i]);
	}
	memset(&d->mem, 0, sizeof(d->mem));
	memset(d->maps, 0, sizeof(d->maps));
}

/* Everything the VMM gave us goes back: rings, eventfds, mappings, and
 * every vsock connection is reset. */
static void reset_device(struct vhu_device *d, const char *why)
{
	for (int i = 0; i < VHU_NQUEUES; i++)
		reset_queue(&d->q[i]);
	unmap_memory(d);
	vvs_device_reset(&d->vvs, why);
	d->features = d->protocol_features = 0;
	d->owner = 0;
	d->rx_unsignalled = 0;
	/* the hole budget stays: a VMM that resets or reconnects does not
	 * get another 16 MiB of the relay's memory (holes_refill) */
	d->failed[0] = '\0';
}

/* ---- message handlers: 0 ok (acked if asked), 1 replied, <0 refused ---- */

#define ANY_SIZE UINT32_MAX     /* the handler checks the payload's size */

struct vhu_request {
	const char *name;
	int (*handle)(struct vhu_device *d, struct vhu_msg *m);
	uint32_t size;              /* of the payload, exactly, or ANY_SIZE */
};

static const struct vhu_request *request_of(uint32_t request);

/* Log why M is refused; ERR back (-EPROTO: malformed, the VMM goes). */
__attribute__((format(printf, 4, 5)))
static int refuse(struct vhu_device *d, const struct vhu_msg *m, int err, const char *fmt, ...)
{
	const struct vhu_request *r = request_of(m->request);
	char why[224], msg[320];
	va_list ap;

	if (d->log == NULL)
		return err;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "vhost-user %s refused: %s", r != NULL ? r->name : "request",
		 why);
	d->log(d, 1, fmt, msg);
	return err;
}

/* A reply that cannot be queued drops the VMM (vhu_conn.c). */
static int reply(struct vhu_device *d, struct vhu_msg *m, const void *payload, uint32_t size)
{
	vhu_conn_send(d->conn, m->request, payload, size);
	return 1;
}

static int reply_u64(struct vhu_device *d, struct vhu_msg *m, uint64_t v)
{
	return reply(d, m, &v, sizeof(v));
}

static struct vhu_queue *queue_of(struct vhu_device *d, uint32_t index)
{
	return index < VHU_NQUEUES ? &d->q[index] : NULL;
}

static int no_ring(struct vhu_device *d, struct vhu_msg *m, uint32_t index)
{
	return refuse(d, m, -EINVAL, "no ring %u", index);
}

static int get_features(struct vhu_device *d, struct vhu_msg *m)
{
	return reply_u64(d, m, OFFERED_FEATURES);
}

static int set_features(struct vhu_device *d, struct vhu_msg *m)
{
	if (m->p.u64 & ~OFFERED_FEATURES)
		return refuse(d, m, -EINVAL, "features %#llx were not offered",
			      (unsigned long long)(m->p.u64 & ~OFFERED_FEATURES));
	d->features = m->p.u64;
	return 0;
}

static int set_owner(struct vhu_device *d, struct vhu_msg *m)
{
	d->owner = 1;
	return 0;
}

static int reset_owner(struct vhu_device *d, struct vhu_msg *m)
{
	reset_device(d, "VMM reset the device");
	return 0;
}

static int get_protocol_features(struct vhu_device *d, struct vhu_msg *m)
{
	return reply_u64(d, m, OFFERED_PROTOCOL);
}

static int set_protocol_features(struct vhu_device *d, struct vhu_msg *m)
{
	d->protocol_features = m->p.u64 & OFFERED_PROTOCOL;
	return 0;
}

static int get_queue_num(struct vhu_device *d, struct vhu_msg *m)
{
	return reply_u64(d, m, VHU_NQUEUES);
}

/* Region I's file must stay at least END bytes long under the mapping, or
 * touching the lost pages faults (SIGBUS): a seal against shrinking
 * promises it, checked before the size so that the size holds. */
static int check_region_file(struct vhu_device *d, struct vhu_msg *m, uint32_t i, uint64_t end)
{
	int seals = fcntl(m->fds[i], F_GET_SEALS);
	struct stat sb;

	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return refuse(d, m, -EINVAL,
			      "region %u is not sealed against shrinking (F_SEAL_SHRINK): give the "
			      "VM sealed memfd memory (QEMU: memory-backend-memfd, seal=on, the "
			      "default)", i);
	if (fstat(m->fds[i], &sb) != 0 || !S_ISREG(sb.st_mode) || end > (uint64_t)sb.st_size)
		return refuse(d, m, -EINVAL, "region %u needs a file of %llu bytes", i,
			      (unsigned long long)end);
	return 0;
}

/* Does a region of LEN bytes fit this process's address space? Not always
 * on a 32-bit host, where a guest's gigabytes would be truncated to what
 * size_t holds. */
static int mappable(uint64_t len)
{
	return (uint64_t)(size_t)len == len && len <= PTRDIFF_MAX;
}

static int set_mem_table(struct vhu_device *d, struct vhu_msg *m)
{
	uint32_t n = m->p.mem.nregions;
	struct vring old[VHU_NQUEUES];
	int rc = 0;

	holes_forget();     /* the mappings change */
	if (m->size < 8 || n > GM_MAX_REGIONS || m->size != 8 + n * 32u)
		return refuse(d, m, -EPROTO, "%u bytes for %u regions", m->size, n);
	if (n == 0 || (int)n != m->nfds)
		return refuse(d, m, -EINVAL, "%u regions with %d descriptors", n, m->nfds);
	/* QEMU sends a new table to running rings (memory hotplug): their
	 * state (indices, notification) stays, only addresses are redone; a
	 * ring that cannot be stays stopped, to resume where it was once the
	 * VMM gives it addresses that map */
	for (int i = 0; i < VHU_NQUEUES; i++) {
		old[i] = d->q[i].vr;
		if (old[i].num != 0)
			d->q[i].base = old[i].last_avail;
		memset(&d->q[i].vr, 0, sizeof(d->q[i].vr));   /* re-translated below */
	}
	unmap_memory(d);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t size = m->p.mem.r[i].size, off = m->p.mem.r[i].offset;
		void *p;

		if (size == 0 || off > UINT64_MAX - size)
			rc = refuse(d, m, -EINVAL, "region %u: size %llu at offset %llu", i,
				    (unsigned long long)size, (unsigned long long)off);
		else if (!mappable(size + off))
			rc = refuse(d, m, -EINVAL, "region %u: %llu bytes cannot be mapped by a "
				    "%zu-bit process: give the VM less memory, or run a 64-bit relay",
				    i, (unsigned long long)(size + off), sizeof(void *) * 8);
		else
			rc = check_region_file(d, m, i, size + off);
		if (rc != 0)
			break;
		p = mmap(NULL, size + off, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[i], 0);
		if (p == MAP_FAILED) {
			rc = refuse(d, m, -EINVAL, "region %u: mmap: %s", i, strerror(errno));
			break;
		}
		d->maps[i] = p;
		d->map_len[i] = size + off;
		d->map_fd[i] = m->fds[i];   /* kept for pread() of holes */
		m->fds[i] = -1;
		d->mem.r[i] = (struct gm_region){ m->p.mem.r[i].gpa, size, m->p.mem.r[i].uaddr,
						  (uint8_t *)p + off };
		d->mem.n = i + 1;
		d->mem.present = pages_present;
	}
	if (rc != 0) {
		unmap_memory(d);
		return rc;
	}
	for (int i = 0; i < VHU_NQUEUES; i++)
		if (setup_ring(d, &d->q[i], &old[i]) != 0)
			vhu_log(d, 1, "ring %d stopped: its addresses are not in the new memory", i);
	return 0;
}

static int set_vring_num(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q = queue_of(d, m->p.state.index);
	uint32_t num = m->p.state.num;

	if (q == NULL)
		return no_ring(d, m, m->p.state.index);
	if (num == 0 || num > 32768 || (num & (num - 1)))
		return refuse(d, m, -EINVAL, "ring size %u", num);
	q->num = num;
	return 0;
}

static int set_vring_base(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q = queue_of(d, m->p.state.index);

	if (q == NULL)
		return no_ring(d, m, m->p.state.index);
	if (m->p.state.num > 0xffff)
		return refuse(d, m, -EINVAL, "ring base %u", m->p.state.num);
	q->base = (uint16_t)m->p.state.num;
	q->vr.last_avail = q->base;
	return 0;
}

static int set_vring_addr(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q = queue_of(d, m->p.addr.index);

	struct vring running;

	if (q == NULL)
		return no_ring(d, m, m->p.addr.index);
	/* new addresses for a ring that runs (QEMU sends them only with dirty
	 * logging, which we do not offer; a hostile VMM at will): its position
	 * stays, or the guest's packets would be taken again */
	running = q->vr;
	q->desc_ua = m->p.addr.desc;
	q->avail_ua = m->p.addr.avail;
	q->used_ua = m->p.addr.used;
	if (setup_ring(d, q, q->enabled && running.num != 0 ? &running : NULL) != 0)
		return refuse(d, m, -EINVAL, "ring %u is not in guest memory", m->p.addr.index);
	return 0;
}

static int get_vring_base(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q = queue_of(d, m->p.state.index);
	struct { uint32_t index, num; } st;

	if (q == NULL)
		return no_ring(d, m, m->p.state.index);
	/* the ring stops here, as the spec says */
	q->enabled = 0;
	stop_kicks(q);
	st.index = m->p.state.index;
	st.num = q->vr.last_avail;
	q->base = q->vr.last_avail;
	/* both rings stopped: the guest reset its device (reboot, driver
	 * reload) and forgot every connection; so do we */
	if (!d->q[0].enabled && !d->q[1].enabled && d->vvs.nconns > 0)
		vvs_device_reset(&d->vvs, "guest reset its vsock device");
	return reply(d, m, &st, sizeof(st));
}

/* Only an eventfd is safe to watch and signal: anything else (a socket
 * whose peer has gone reads end of file at once, forever) would keep the
 * loop busy. The kernel names an eventfd's file "anon_inode:[eventfd]", a
 * name no path, pipe or socket can have. Its name goes to KIND. */
/* An eventfd in semaphore mode gives 1 a read and stays readable: a kick
 * that fires again every loop turn, for as long as its counter lasts
 * (2^64). Linux 6.5 and later say so in fdinfo; the kick watch below
 * catches it on older kernels too. */
static int is_semaphore(int fd)
{
	char path[40], buf[512];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, "eventfd-semaphore: 1") != NULL;
}

static int is_eventfd(int fd, char *kind, size_t len)
{
	char link[32];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, kind, len - 1);
	if (n < 0) {
		snprintf(kind, len, "%s: %s", link, strerror(errno));
		return 0;
	}
	kind[n] = '\0';
	return strcmp(kind, "anon_inode:[eventfd]") == 0;
}

static int set_vring_fd(struct vhu_device *d, struct vhu_msg *m, int kick)
{
	uint32_t index = (uint32_t)(m->p.u64 & 0xff);
	struct vhu_queue *q = queue_of(d, index);
	char kind[64];
	int fd = -1;

	if (q == NULL)
		return no_ring(d, m, index);
	if (!(m->p.u64 & VHU_VRING_NOFD)) {
		if (m->nfds != 1)
			return refuse(d, m, -EINVAL, "%d descriptors, not 1", m->nfds);
		if (!is_eventfd(m->fds[0], kind, sizeof(kind)))
			return refuse(d, m, -EINVAL, "ring %u: not an eventfd (%s)", index, kind);
		if (is_semaphore(m->fds[0]))
			return refuse(d, m, -EINVAL, "ring %u: a semaphore eventfd", index);
		fd = m->fds[0];
		m->fds[0] = -1;     /* adopted */
		/* a kick read or a call never waits, whatever the VMM asked */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	if (kick) {
		stop_kicks(q);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = fd;
		/* without protocol features a ring starts when its kick fd comes */
		if (!(d->features & F_PROTOCOL_FEATURES))
			q->enabled = 1;
		start_kicks(q);
	} else {
		if (q->call_fd >= 0)
			close(q->call_fd);
		q->call_fd = fd;
	}
	return 0;
}

static int set_vring_kick(struct vhu_device *d, struct vhu_msg *m)
{
	return set_vring_fd(d, m, 1);
}

static int set_vring_call(struct vhu_device *d, struct vhu_msg *m)
{
	return set_vring_fd(d, m, 0);
}

static int set_vring_err(struct vhu_device *d, struct vhu_msg *m)
{
	return 0;           /* its fd, if any, is closed with the message */
}

static int set_vring_enable(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q = queue_of(d, m->p.state.index);

	if (q == NULL)
		return no_ring(d, m, m->p.state.index);
	q->enabled = m->p.state.num != 0;
	if (q->enabled) {
		start_kicks(q);
		schedule_flush(d);
	}
	return 0;
}

/* The config header (offset, size, flags) and SIZE bytes of it. */
static int config_size_ok(const struct vhu_msg *m)
{
	return m->size >= 12 && m->p.config.size <= sizeof(m->p.config.data) &&
	       m->size == 12 + m->p.config.size;
}

static int get_config(struct vhu_device *d, struct vhu_msg *m)
{
	uint8_t space[8];
	uint32_t off = m->p.config.offset, size = m->p.config.size;

	if (!config_size_ok(m))
		return refuse(d, m, -EPROTO, "%u bytes for %u of config", m->size, size);
	if (off > sizeof(space) || size > sizeof(space) - off)
		return refuse(d, m, -EINVAL, "%u bytes at %u: the config space has 8", size, off);
	for (int i = 0; i < 8; i++)
		space[i] = (uint8_t)(d->vvs.guest_cid >> (8 * i));
	memcpy(m->p.config.data, space + off, size);
	return reply(d, m, &m->p.config, 12 + size);
}

static int set_config(struct vhu_device *d, struct vhu_msg *m)
{
	if (!config_size_ok(m))
		return refuse(d, m, -EPROTO, "%u bytes for %u of config", m->size,
			      m->p.config.size);
	return 0;           /* guest_cid is ours to decide */
}

static const struct vhu_request requests[] = {
	[VHU_GET_FEATURES] = { "GET_FEATURES", get_features, 0 },
	[VHU_SET_FEATURES] = { "SET_FEATURES", set_features, 8 },
	[VHU_SET_OWNER] = { "SET_OWNER", set_owner, 0 },
	[VHU_RESET_OWNER] = { "RESET_OWNER", reset_owner, 0 },
	[VHU_SET_MEM_TABLE] = { "SET_MEM_TABLE", set_mem_table, ANY_SIZE },
	[VHU_SET_VRING_NUM] = { "SET_VRING_NUM", set_vring_num, 8 },
	[VHU_SET_VRING_ADDR] = { "SET_VRING_ADDR", set_vring_addr, 40 },
	[VHU_SET_VRING_BASE] = { "SET_VRING_BASE", set_vring_base, 8 },
	[VHU_GET_VRING_BASE] = { "GET_VRING_BASE", get_vring_base, 8 },
	[VHU_SET_VRING_KICK] = { "SET_VRING_KICK", set_vring_kick, 8 },
	[VHU_SET_VRING_CALL] = { "SET_VRING_CALL", set_vring_call, 8 },
	[VHU_SET_VRING_ERR] = { "SET_VRING_ERR", set_vring_err, 8 },
	[VHU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", get_protocol_features, 0 },
	[VHU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", set_protocol_features, 8 },
	[VHU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", get_queue_num, 0 },
	[VHU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", set_vring_enable, 8 },
	[VHU_GET_CONFIG] = { "GET_CONFIG", get_config, ANY_SIZE },
	[VHU_SET_CONFIG] = { "SET_CONFIG", set_config, ANY_SIZE },
};

static const struct vhu_request *request_of(uint32_t request)
{
	const struct vhu_request *r = request < sizeof(requests) / sizeof(requests[0])
				      ? &requests[request] : NULL;

	return r != NULL && r->handle != NULL ? r : NULL;
}

int vhu_handle(struct vhu_device *d, struct vhu_msg *m)
{
	const struct vhu_request *r = request_of(m->request);

	if (r == NULL) {
		vhu_log(d, 1, "unsupported vhost-user request %u", m->request);
		return -ENOTSUP;
	}
	if (r->size != ANY_SIZE && m->size != r->size)
		return refuse(d, m, -EPROTO, "%u bytes of payload, not %u", m->size, r->size);
	return r->handle(d, m);
}

/* ---- the VMM connection ---- */

const char *vhu_message(struct vhu_device *d, struct vhu_msg *m)
{
	int rc;

	d->st.messages++;
	rc = vhu_handle(d, m);
	if (rc < 0)
		d->st.bad_messages++;
	if (rc == -EPROTO)
		return "malformed request";
	if (rc <= 0 && (m->flags & VHU_FLAG_NEED_REPLY) && (d->protocol_features & PF_REPLY_ACK))
		reply_u64(d, m, rc == 0 ? 0 : 1);
	else if (rc < 0 && rc != -ENOTSUP)
		return "request refused";
	return NULL;
}

void vhu_drop_vmm(struct vhu_device *d, const char *why)
{
	if (d->conn == NULL)
		return;
	vhu_log(d, 0, "VMM disconnected: %s", why);
	d->st.disconnects++;
	reset_device(d, "VMM disconnected");
	vhu_conn_close(d->conn);
	d->conn = NULL;
}

static void on_listener(uv_poll_t *p, int status, int events)
{
	struct vhu_device *d = p->data;
	int fd;

	(void)status;
	(void)events;
	fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (d->conn != NULL) {
		vhu_log(d, 1, "second VMM connection refused");
		close(fd);
		return;
	}
	if (vhu_conn_open(d, fd) != 0)
		return;
	d->st.connects++;
	vhu_log(d, 0, "VMM connected");
}

/* ---- the protocol core's callbacks: ours, then the owner's ---- */

static void on_flush_idle(uv_idle_t *h)
{
	struct vhu_device *d = h->data;

	uv_idle_stop(h);
	d->flush_pending = 0;
	if (d->failed[0] != '\0') {
		if (d->vvs.nconns > 0)
			vvs_device_reset(&d->vvs, d->failed);
		return;
	}
	if (d->tx_pending) {
		d->tx_pending = 0;
		vhu_process_tx(d);
	}
	vhu_flush(d);
}

static void on_expire_tick(uv_timer_t *t)
{
	struct vhu_device *d = t->data;

	vvs_expire(&d->vvs, uv_now(d->loop));
	if (d->vvs.nconns == 0)
		uv_timer_stop(t);
}

/* Every connection starts with output (its REQUEST): the deadline tick
 * runs from then until the table is empty. */
static void core_output(struct vvs_device *v)
{
	struct vhu_device *d = v->data;

	if (!uv_is_active((uv_handle_t *)&d->expire_tick))
		uv_timer_start(&d->expire_tick, on_expire_tick, VHU_EXPIRE_TICK_MS,
			       VHU_EXPIRE_TICK_MS);
	schedule_flush(d);
}

static uint64_t core_now(struct vvs_device *v)
{
	struct vhu_device *d = v->data;

	return uv_now(d->loop);
}

/* The callbacks of c's owner: its own (vhu_connect) or the device user's. */
static const struct vvs_ops *owner_ops(const struct vvs_conn *c)
{
	const struct vhu_device *d = c->dev->data;

	return c->owner_ops != NULL ? c->owner_ops : d->user_ops;
}

#define FORWARD(name, ...) \
	do { \
		const struct vvs_ops *o_ = owner_ops(c); \
		if (o_->name != NULL) \
			o_->name(__VA_ARGS__); \
	} while (0)

static void core_connected(struct vvs_conn *c, int status) { FORWARD(connected, c, status); }
static void core_readable(struct vvs_conn *c) { FORWARD(readable, c); }
static void core_writable(struct vvs_conn *c) { FORWARD(writable, c); }
static void core_closed(struct vvs_conn *c, const char *why) { FORWARD(closed, c, why); }

static size_t core_deliver(struct vvs_conn *c, const uint8_t *p, size_t len)
{
	const struct vvs_ops *o = owner_ops(c);

	return o->deliver != NULL ? o->deliver(c, p, len) : 0;
}

static const struct vvs_ops core_ops = {
	.connected = core_connected, .readable = core_readable, .writable = core_writable,
	.closed = core_closed, .output = core_output, .deliver = core_deliver,
	.rx_buffer = core_rx_buffer, .rx_commit = core_rx_commit, .now_ms = core_now,
};

/* ---- life cycle ---- */

int vhu_start(struct vhu_device *d, uv_loop_t *loop, const char *path, uint64_t guest_cid,
	      const struct vvs_ops *ops, void *data, char *err, size_t errlen)
{
	int fd;

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->listen_fd = -1;
	d->user_ops = ops;
	for (int i = 0; i < VHU_NQUEUES; i++) {
		d->q[i].dev = d;
		d->q[i].index = i;
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	}
	d->hole_pages = HOLE_BUDGET_PAGES;
	d->hole_refill_at = uv_now(loop);
	d->pkt = malloc(VVS_MAX_PKT);
	if (d->pkt == NULL) {
		snprintf(err, errlen, "out of memory");
		return UV_ENOMEM;
	}
	fd = vhu_listen_unix("", path, SOCKET_MODE, (uid_t)-1, (gid_t)-1, 4, &d->path_id, err,
			     errlen);
	if (fd < 0) {
		free(d->pkt);
		return fd;
	}
	snprintf(d->path, sizeof(d->path), "%s", path);   /* fits: it was bound */
	d->listen_fd = fd;
	d->listen_watch = watch_start(d, fd, on_listener, d);
	uv_idle_init(loop, &d->flush_idle);
	d->flush_idle.data = d;
	uv_timer_init(loop, &d->expire_tick);
	d->expire_tick.data = d;
	d->handles_open += 2;
	vvs_device_init(&d->vvs, guest_cid, &core_ops, d);
	d->vvs.data = d;
	d->data_owner = data;
	return 0;
}

struct vvs_conn *vhu_connect(struct vhu_device *d, uint32_t guest_port, const struct vvs_ops *ops,
			     void *data)
{
	struct vvs_conn *c = vvs_connect(&d->vvs, guest_port, data);

	if (c != NULL)
		c->owner_ops = ops;
	return c;
}

static void idle_closed(uv_handle_t *h)
{
	vhu_handle_gone(h->data);
}

void vhu_stop(struct vhu_device *d, void (*on_closed)(struct vhu_device *d))
{
	d->on_closed = on_closed;
	if (d->ext_stop != NULL)
		d->ext_stop(d);
	vhu_drop_vmm(d, "relay stopping");
	vvs_device_reset(&d->vvs, "relay stopping");
	watch_stop(&d->listen_watch);
	close(d->listen_fd);
	d->listen_fd = -1;
	vhu_unlink_listener(d->path, &d->path_id);
	uv_close((uv_handle_t *)&d->flush_idle, idle_closed);
	uv_close((uv_handle_t *)&d->expire_tick, idle_closed);
	free(d->pkt);
	d->pkt = NULL;
}
