/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost_user.h - the relay's virtio-vsock device served to a VMM over
 * vhost-user: a Unix socket the VMM (QEMU's vhost-user-vsock-pci) connects
 * to, the messages QEMU 7.2 sends, guest memory mapped from the region fds,
 * the rx (0) and tx (1) virtqueues driven by kick and call eventfds on the
 * libuv loop, and the protocol core (virtio_vsock.h) in between.
 *
 * One VMM connection at a time. When it goes, every mapping and eventfd is
 * released and every vsock connection is reset; the listener stays, so a
 * restarted VMM gets a clean device. A broken ring puts the device in a
 * failed state (logged, counted) until the VMM reconnects; the relay runs on.
 *
 * The VMM is not trusted: its messages are read without blocking, each
 * within a deadline (vhu_conn.c); guest memory must come sealed against
 * shrinking (a shrunk mapping would fault, SIGBUS); kick and call
 * descriptors must be eventfds; a VMM that breaks the protocol loses its
 * connection and nothing else.
 *
 * The device core knows no extension: the hybrid protocol (hybrid.h) is
 * built on this header, never the other way round.
 */
#ifndef VSOCK_VHOST_USER_H
#define VSOCK_VHOST_USER_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <uv.h>

#include "vsock/virtio/virtio_vsock.h"
#include "vsock/virtio/vring.h"

#define VHU_MAX_FDS 8
#define VHU_NQUEUES 2     /* rx, tx; QEMU keeps the event queue */
#define VHU_EXPIRE_TICK_MS 1000   /* how often the core's deadlines are checked */

struct vhu_device;

/* A listening Unix stream socket at PATH (unix_listen.c): made at PATH
 * VHU_LISTEN_SUFFIX with MODE, owner UID and group GID ((uid_t)-1 and
 * (gid_t)-1 leave them), made to listen with BACKLOG, then renamed to
 * PATH, so PATH appears only once it accepts. A socket nobody listens on
 * at either name is replaced. The fd (non-blocking), or a uv error with
 * ERR set, starting with WHAT. */
#define VHU_LISTEN_SUFFIX ".new"
#define VHU_LISTEN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - \
			     (sizeof(VHU_LISTEN_SUFFIX) - 1))
/* Which file a listener is: it removes PATH only while PATH is still it. */
struct vhu_listen_id {
	dev_t dev;
	ino_t ino;
};
int vhu_listen_unix(const char *what, const char *path, mode_t mode, uid_t uid, gid_t gid,
		    int backlog, struct vhu_listen_id *id, char *err, size_t errlen);
/* Unlink PATH if it is still the socket ID names (a reload or another
 * program may have put something else there since). */
void vhu_unlink_listener(const char *path, const struct vhu_listen_id *id);
struct vhu_conn;                   /* the VMM's socket (vhu_conn.c) */

struct vhu_queue {
	struct vhu_device *dev;
	int index;
	struct vring vr;
	unsigned num;
	uint16_t base;
	uint64_t desc_ua, avail_ua, used_ua;
	int kick_fd, call_fd;
	uv_poll_t *kick_watch;             /* NULL when not watched */
	int enabled;
	uint16_t kick_idx;                 /* the avail idx at the last kick */
	unsigned empty_kicks;              /* kicks since, with nothing new */
};

struct vhu_stats {
	uint64_t connects, disconnects, messages, bad_messages;
	uint64_t bad_chains, kicks, calls;
};

struct vhu_device {
	uv_loop_t *loop;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct vhu_listen_id path_id;
	int listen_fd;
	uv_poll_t *listen_watch;
	struct vhu_conn *conn;             /* the VMM, NULL when none */

	uint64_t features, protocol_features;
	int owner;
	struct guestmem mem;
	void *maps[GM_MAX_REGIONS];
	size_t map_len[GM_MAX_REGIONS];
	int map_fd[GM_MAX_REGIONS];        /* the file of each mapping, for pread() */
	size_t hole_pages;                 /* RX pages the relay may still fill in holes */
	uint64_t hole_refill_at;           /* ms (the loop's clock): the budget's last refill */
	struct vhu_queue q[VHU_NQUEUES];

	struct vvs_device vvs;
	char failed[128];                  /* non-empty: why the device stopped */
	uint8_t *pkt;                      /* one packet, header and payload */
	uv_idle_t flush_idle;              /* deferred vhu_flush() */
	uv_timer_t expire_tick;            /* vvs_expire() every VHU_EXPIRE_TICK_MS
					    * while vvs has connections */
	int flush_pending;
	int tx_pending;                    /* tx work left after a budgeted pass */
	uint16_t rx_head;                  /* the RX buffer the core is filling */
	struct iovec rx_buf;               /* its bytes the core may write */
	size_t rx_absent;                  /* its pages in holes (hole_pages) */
	int rx_unsignalled;                /* RX buffers used, no call yet */
	const struct vvs_ops *user_ops;    /* the owner's vsock callbacks */
	void *data_owner;                  /* the owner's, given to vhu_start */
	struct vhu_stats st;
	/* cause: the format string of the vhu_log() call, for rate limits */
	void (*log)(struct vhu_device *d, int warn, const void *cause, const char *msg);
	void (*on_closed)(struct vhu_device *d);
	int handles_open;
	/* The hybrid extension's (hybrid.h), which the core never looks at:
	 * its streams, its listener, and what vhu_stop() calls first so that
	 * the extension lets go of the device. */
	struct vhu_stream *streams;        /* hybrid clients (hybrid.c) */
	struct vhu_listener *hybrid_listener; /* for other programs (hybrid_listen.c) */
	void (*ext_stop)(struct vhu_device *d);
};

/* Listen on PATH (a socket of mode 0600; a socket file left there is
 * replaced, anything else is an error) for a VMM; vsock connections go
 * through d->vvs with `ops` (see virtio_vsock.h). 0 or a uv error with ERR
 * set. */
int vhu_start(struct vhu_device *d, uv_loop_t *loop, const char *path, uint64_t guest_cid,
	      const struct vvs_ops *ops, void *data, char *err, size_t errlen);
/* Open a stream to the guest's port for an owner with callbacks of its
 * own (connected, readable, writable, closed, deliver of vvs_ops; the
 * others are the device's), not the ones given to vhu_start: a user of the
 * device that serves several kinds of connection. NULL if the table is
 * full. */
struct vvs_conn *vhu_connect(struct vhu_device *d, uint32_t guest_port, const struct vvs_ops *ops,
			     void *data);
/* Let an extension go first (ext_stop), drop the VMM and stop listening;
 * on_closed when every handle is closed. */
void vhu_stop(struct vhu_device *d, void (*on_closed)(struct vhu_device *d));
/* Move what the protocol core owes the guest into its rx ring. */
void vhu_flush(struct vhu_device *d);
/* Is a VMM attached with both rings running? */
int vhu_ready(const struct vhu_device *d);
/* One line through the device's log, if it has one; fmt is its cause. */
void vhu_log(struct vhu_device *d, int warn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
