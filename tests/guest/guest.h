/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest.h - shared declarations of adbd-testguest, a small adb *device*
 * daemon for tests: logging and options (main.c), listeners and the hybrid
 * vsock handshake (listen.c), adb connections and the per-stream layer
 * (conn.c), the services shell:/exec: (shell.c), sync: (sync.c) and
 * tcp: (forward.c, what `adb forward` opens), and the services that restart
 * adbd, root:/unroot:/tcpip:/usb:/reboot:/reconnect, with the emulated
 * restart itself (restart.c).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "adbproto/adbproto.h"

/* ---- main.c: options, logging, shutdown ---- */

struct guest_options {
	const char *name;        /* ro.product.name / ro.product.device */
	const char *features;    /* the banner's features= list (announced only) */
	uint32_t max_payload;    /* what we offer in CNXN (before min with host's) */
	int verbose;             /* -v: debug lines and one line per frame */
	const char **listen;     /* the --listen specs, opened again after a restart */
	int nlisten;
	int root_at_boot;        /* --root: the "root" state at start and after reboot: */
	int root;                /* the "root" state now (root:/unroot: flip it) */
	unsigned restart_downtime_ms; /* --restart-downtime: root:/unroot:/tcpip:/usb: */
	unsigned reboot_downtime_ms;  /* --reboot-downtime: reboot: */
};

extern struct guest_options g_opt;
extern uv_loop_t *g_loop;
extern int g_shutting_down;

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);

/* ---- listen.c: listeners ---- */

/* Parse and open one --listen SPEC. Returns 0, or -1 after logging why. */
int listener_open(const char *spec);
/* Open every g_opt.listen spec; on a failure close those opened (as
 * listeners_close(restarting) does) and return -1 (after logging why),
 * else 0. */
int listeners_open_all(int restarting);
/* Close every listener. `restarting`: leave unix:/hybrid: paths behind as
 * sockets nobody listens on (connects are refused, as while a real daemon
 * restarts); else (shutdown) remove the paths, those left behind too. */
void listeners_close(int restarting);

/* Incremental parser of the hybrid vsock command "CONNECT <port>\n",
 * fed one byte at a time. */
#define HYBRID_CMD_MAX 32
struct hybrid_hs {
	char buf[HYBRID_CMD_MAX];
	size_t len;
};
/* 0: need more, 1: complete (*port set), -1: garbage (reason in *why). */
int hybrid_hs_feed(struct hybrid_hs *hs, char byte, uint32_t *port, const char **why);

/* ---- tests/vm/guest_vsock.c: kernel vsock, only inside lab guests ---- */

/* A listening socket on `port` (any CID), or -1 with the reason in why. */
int lab_vsock_listen(uint32_t port, char *why, size_t len);
/* Accept one connection: its fd (non-blocking) and peer, or -1 (errno). */
int lab_vsock_accept(int lfd, uint32_t *cid, uint32_t *port);

/* ---- conn.c: one adb connection ---- */

enum conn_kind { CONN_TCP, CONN_PIPE };

struct conn;
struct stream;
struct inq;

/* Take over an accepted (not yet reading) stream handle. `handle` must
 * have been allocated by conn_handle_alloc() and initialised by the
 * caller; `hybrid` starts with the CONNECT handshake; `peer` names the
 * peer in log lines. */
uv_stream_t *conn_handle_alloc(enum conn_kind kind);
void conn_handle_free(uv_stream_t *handle);
void conn_start(uv_stream_t *handle, int hybrid, const char *peer);
/* Close every connection (shutdown, restart); `why` goes to the log. */
void conns_close_all(const char *why);

/*
 * The stream layer, as seen by a service. Data to the host goes out with
 * stream_send(), one WRTE at a time: the buffer must stay untouched until
 * ops->ready() is called (the host's OKAY has arrived and the write is
 * done). Data from the host arrives through ops->data(); the service calls
 * stream_consumed() once it has used all of it, which sends the OKAY.
 */
struct service_ops {
	const char *name;
	/* Set up the service for `arg` (what follows "shell:" etc). Return 0,
	 * or -1 to refuse the OPEN (CLSE(0, host id) goes back), or
	 * STREAM_START_LATER to answer later with stream_opened() (OKAY, then
	 * started()) or stream_refused() (CLSE), as adbd answers a tcp: OPEN
	 * only once its connect is done. Until then the stream cannot send and
	 * the host cannot write to it. */
	int (*start)(struct stream *s, const char *arg);
	/* The OKAY for the OPEN has been sent: start producing output. */
	void (*started)(struct stream *s);
	/* One WRTE payload from the host; call stream_consumed() when done. */
	void (*data)(struct stream *s, const uint8_t *buf, size_t len);
	/* The previous stream_send() was acknowledged: may send again. */
	void (*ready)(struct stream *s);
	/* The stream is gone (host CLSE, connection lost, or after the
	 * service finished): release everything. May be called more than
	 * once; must not call stream functions other than ref/unref and
	 * stream_kick. */
	void (*abort)(struct stream *s);
	/* Last reference dropped: free the service's private data. */
	void (*release)(struct stream *s);
};

#define STREAM_START_LATER 1

struct stream {
	struct conn *conn;
	uint32_t id;             /* our (device) local id */
	uint32_t host_id;        /* the host's local id */
	const struct service_ops *ops;
	void *svc;               /* service private data */
	int refs;
	int closed;              /* removed from the connection's table */
	int opening;             /* OPEN not answered yet (STREAM_START_LATER) */
	int finishing;           /* service ended; CLSE once the last WRTE is acked */
	int wrte_pending;        /* WRTE sent, host OKAY not yet seen */
	int write_inflight;      /* WRTE not yet handed to the kernel */
	uint8_t *inbuf;          /* current host WRTE payload */
	uint32_t incap, inlen;
	int in_busy;             /* inbuf holds data the service still consumes */
	int in_collecting;       /* a WRTE payload is being copied into inbuf */
	/* delayed_ack (conn.c): the bytes we may still send before the host's
	 * OKAYs give more, and host WRTE payloads that came while inbuf was busy */
	int64_t send_window;
	struct inq *inq, *inq_tail, *inq_filling;
	size_t inq_bytes;
};

uint32_t stream_max_payload(const struct stream *s); /* negotiated */
const char *stream_peer(const struct stream *s);     /* for log lines */
int stream_can_send(const struct stream *s);
void stream_send(struct stream *s, const uint8_t *data, size_t len);
void stream_consumed(struct stream *s);
void stream_finish(struct stream *s);
void stream_opened(struct stream *s);   /* answer a STREAM_START_LATER OPEN: OKAY */
void stream_refused(struct stream *s);  /* ... or CLSE */
void stream_ref(struct stream *s);
void stream_unref(struct stream *s);
/* Drop the stream's whole adb connection at once, no CLSE (adbd's
 * kick_transport); `why` goes to the log. Safe from any service callback,
 * abort included (a no-op once the connection is closing). */
void stream_kick(struct stream *s, const char *why);

/* ---- services ---- */
extern const struct service_ops shell_service; /* shell: stdout+stderr */
extern const struct service_ops exec_service;  /* exec: stdout only */
extern const struct service_ops sync_service;  /* sync: legacy push/pull */
extern const struct service_ops forward_service; /* tcp:[HOST:]PORT */

/* ---- restart.c: the services that restart adbd, and the restart ---- */
extern const struct service_ops root_service;      /* root: */
extern const struct service_ops unroot_service;    /* unroot: */
extern const struct service_ops tcpip_service;     /* tcpip:PORT */
extern const struct service_ops usb_service;       /* usb: */
extern const struct service_ops reboot_service;    /* reboot:[TARGET] */
extern const struct service_ops reconnect_service; /* reconnect */
/* Shutdown: forget a pending restart and close the restart timer. */
void restart_shutdown(void);

#endif /* GUEST_H */
