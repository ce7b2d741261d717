/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vsock.h - "connect a byte stream to a guest (cid, port)" behind one
 * transport interface, in the manner of Linux's vsock transport ops.
 *
 * Transports:
 *   kernel  AF_VSOCK to CID:PORT               spec "vsock:CID:PORT"
 *   hybrid  Firecracker / Cloud Hypervisor     spec "hybrid:PATH:PORT"
 *           Unix socket: "CONNECT <port>\n" -> "OK <n>\n"
 *   unix    a plain Unix stream socket         spec "unix:PATH"
 *   virtio  the relay's own virtio-vsock device, served to the VMM on the
 *           vhost-user socket PATH, guest CID    spec "virtio:PATH:CID:PORT"
 *   tcp     an adbd reachable over IP              spec "tcp:HOST:PORT"
 *           (TCP_NODELAY, keepalive); HOST is a numeric IPv4 address, an
 *           IPv6 address in brackets or "localhost" (127.0.0.1). Names
 *           are not resolved: neither parsing (done inside the loop on a
 *           reload) nor connecting ever waits for a resolver.
 *
 * A connection attempt runs on a libuv loop, never blocks, and ends in one
 * callback that receives a connected, non-blocking stream fd it then owns,
 * or, for a caller that takes them (vsock_link_start) and a virtio target,
 * a connection of the device itself (struct vsock_vconn): the caller's
 * bytes then go straight between its buffers and the guest's rings, with
 * no socket in between.
 */
#ifndef VSOCK_H
#define VSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define VSOCK_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
/* A path the relay listens at is made at PATH VSOCK_LISTEN_SUFFIX first
 * and renamed into place (vsock/virtio: VHU_LISTEN_SUFFIX, the same). */
#define VSOCK_LISTEN_SUFFIX ".new"
#define VSOCK_LISTEN_PATH_MAX (VSOCK_PATH_MAX - 4)
#define VSOCK_SPEC_MAX (VSOCK_PATH_MAX + 32)
#define VSOCK_HOST_MAX 46  /* INET6_ADDRSTRLEN */

enum vsock_kind {
	VSOCK_KERNEL,
	VSOCK_HYBRID,
	VSOCK_UNIX,
	VSOCK_VIRTIO,
	VSOCK_TCP,
};

struct vsock_target {
	enum vsock_kind kind;
	uint32_t cid;                 /* kernel, virtio */
	uint32_t port;                /* kernel, hybrid, virtio, tcp (1-65535) */
	char path[VSOCK_PATH_MAX];    /* hybrid, unix, virtio (vhost-user socket) */
	char host[VSOCK_HOST_MAX];    /* tcp: the address in inet_ntop's form */
};

/* Parse a target spec. Returns 0, or -EINVAL with a reason in err. */
int vsock_target_parse(const char *spec, struct vsock_target *t,
		       char *err, size_t errlen);
/* Format back to the canonical spec string (an IPv6 host in brackets,
 * "localhost" as 127.0.0.1). */
void vsock_target_format(const struct vsock_target *t, char *buf, size_t len);
int vsock_target_equal(const struct vsock_target *a, const struct vsock_target *b);

/*
 * One transport: how to start a connection and, optionally, the line
 * handshake that follows it. Each op returns 0 or a negative errno.
 */
struct vsock_transport {
	const char *name;
	/* Create a non-blocking stream socket and start connecting it.
	 * Sets *fd. Returns 0 when connected at once, -EINPROGRESS when the
	 * socket will become writable once connected, or another -errno. */
	int (*open)(const struct vsock_target *t, int *fd);
	/* Check the socket once connected, before any hello; NULL for none.
	 * Returns 0 or a negative errno that fails the attempt. */
	int (*established)(int fd);
	/* Bytes to send once connected (at most len), or 0 for none. */
	size_t (*hello)(const struct vsock_target *t, char *buf, size_t len);
	/* Check the reply line (without its '\n'); NULL when hello is NULL. */
	int (*check_reply)(const char *line, size_t len);
};

const struct vsock_transport *vsock_transport_for(enum vsock_kind kind);

extern const struct vsock_transport vsock_transport_kernel;
extern const struct vsock_transport vsock_transport_hybrid;
extern const struct vsock_transport vsock_transport_unix;
extern const struct vsock_transport vsock_transport_virtio;
extern const struct vsock_transport vsock_transport_tcp;

/*
 * The in-process virtio devices, one per vhost-user socket, shared by the
 * routes that name it and kept while any does (so a VMM restart finds it
 * listening). A route acquires its device when it starts and releases it
 * when it stops. Log lines of the devices go to `log` (none by default);
 * `cause` tells one kind of line from another (the same pointer for the
 * same kind), for rate limits.
 */
int vsock_virtio_acquire(uv_loop_t *loop, const struct vsock_target *t, char *err, size_t errlen);
void vsock_virtio_release(const struct vsock_target *t);
void vsock_virtio_set_log(void (*log)(const char *path, int warn, const void *cause,
				      const char *msg));
/* Packet trace of every device: wanted(path) is asked first (it must be
 * cheap), then line(path, text) gets the packet in the style of the
 * kernel's vsock trace events. NULL, NULL stops it. */
void vsock_virtio_set_trace(int (*wanted)(const char *path),
			    void (*line)(const char *path, const char *text));

/*
 * A device may also listen on a Unix socket of its own (mode 0660) where
 * other host programs reach its guest with the hybrid protocol:
 * "CONNECT <port>\n", "OK <n>\n", then the connection's bytes.
 */
struct vsock_virtio_hybrid {
	char socket[VSOCK_PATH_MAX];  /* the device's vhost-user socket */
	char path[VSOCK_PATH_MAX];    /* where other programs connect */
};
/* Give the devices that exist now exactly the hybrid sockets of H[0..N):
 * one no longer wanted or moved closes with its clients, a new one opens
 * (replacing a stale socket file), an unchanged one and every VMM
 * connection are left alone. Returns how many failed to open (logged). */
int vsock_virtio_set_hybrid(const struct vsock_virtio_hybrid *h, size_t n);

/*
 * A vsock connection of the relay's own virtio device, owned by the caller
 * of vsock_link_start in place of a socket, read and written like one:
 *
 * - read_start / read_stop: while reading, the guest's data goes straight
 *   from its packets into buffers the caller lends (alloc, then read with
 *   the bytes: one copy), as the guest sends them; while not, the device
 *   keeps what the guest sends within the credit it gives (VVS_BUF), and
 *   the guest waits. alloc giving no room: read with UV_ENOBUFS (stop
 *   reading then). Once the guest has sent everything (SHUTDOWN, RST, the
 *   VMM or the device gone), read with UV_EOF after the last byte, once.
 *   read may come from inside the device's work on the guest's rings: it
 *   may then write (the bytes wait for `writable`), stop reading or close,
 *   nothing else of the device.
 * - writev: of the pieces in turn, the bytes the guest's credit and the
 *   device's queue take now (copied once, into the guest's RX buffers when
 *   they are free, each filled from as many pieces as fit), 0 to
 *   wait for `writable`, or UV_EPIPE once the guest reset the connection
 *   (`writable` follows an error too, from the loop).
 * - close: the device says SHUTDOWN once what it took is out (RST while
 *   connecting, as a closed socket makes the hybrid protocol do), then
 *   closed(ctx) from the loop; no other callback after close.
 */
struct vsock_vconn;
struct vsock_vconn_cbs {
	void (*alloc)(void *ctx, uv_buf_t *buf);
	void (*read)(void *ctx, ssize_t nread, const uv_buf_t *buf);
	void (*writable)(void *ctx);
	void (*closed)(void *ctx);
};
void vsock_vconn_attach(struct vsock_vconn *vc, const struct vsock_vconn_cbs *cbs, void *ctx);
void vsock_vconn_read_start(struct vsock_vconn *vc);
void vsock_vconn_read_stop(struct vsock_vconn *vc);
ssize_t vsock_vconn_writev(struct vsock_vconn *vc, const struct iovec *iov, unsigned niov);
void vsock_vconn_close(struct vsock_vconn *vc);

/*
 * Asynchronous connect. cb is called exactly once, unless the attempt is
 * cancelled first: with fd >= 0 (connected; the callee owns fd) and
 * status 0, or with fd -1 and a negative errno. The attempt frees itself.
 */
struct vsock_connect;
typedef void (*vsock_connect_cb)(void *data, int fd, int status);

int vsock_connect_start(uv_loop_t *loop, const struct vsock_target *t,
			unsigned timeout_ms, vsock_connect_cb cb, void *data,
			struct vsock_connect **out);
/* The same for a caller that also takes device connections: for a virtio
 * target cb gets fd -1 and a connection it then owns (the device's answer
 * to its REQUEST is the connect), for the others an fd and NULL. */
typedef void (*vsock_link_cb)(void *data, int fd, struct vsock_vconn *vc, int status);
int vsock_link_start(uv_loop_t *loop, const struct vsock_target *t, unsigned timeout_ms,
		     vsock_link_cb cb, void *data, struct vsock_connect **out);
/* Abandon an attempt whose callback has not run yet: cb will not be
 * called; its socket or device connection is closed. */
void vsock_connect_cancel(struct vsock_connect *c);

#endif /* VSOCK_H */
