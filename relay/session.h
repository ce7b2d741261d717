/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h - the adb-aware session between one front connection (the PC's
 * adb server) and one guest link. Frames are parsed both ways and forwarded
 * cut-through; the host's CNXN is cached and replayed to every new guest
 * link, so the PC's transport survives guest reboots. Guest frames are
 * held until whole and pass the shield (shield.h) before the PC sees them.
 *
 * A session knows its owner (a route) only through struct session_owner:
 * a few values, the counters it bumps and the ops it calls (connect to the
 * guest, guest state, errors, attach and detach). It never includes
 * route.h; route.c fills the owner, tests/ fill their own.
 *
 * A guest restart is invisible to the PC when the guest comes back the
 * same: the guest's CNXN the PC has is kept, and a new link's CNXN equal to
 * it (version, max payload as the shield clamps it, banner byte for byte)
 * is absorbed; the PC sees only the CLSEs of the streams that died with the
 * old link, and its `adb forward` list stays. A CNXN that differs (another
 * build, other features, another max payload), or that follows AUTH frames
 * the PC was sent on that link, is passed on: adb's host then closes every
 * stream, re-reads the banner and drops the transport's forwards (its
 * handle_offline runs the transport's disconnect callbacks), keeping the
 * transport id. A host CNXN forgets the kept one: a PC that (re)sent its
 * CNXN is owed the guest's answer.
 *
 * A restart the PC asked for is not hidden (owner->guest_restart, restart.h):
 * when the guest link is lost within RESTART_ASK_MS of a request (root:,
 * unroot:, tcpip:, usb: whose reply says "restarting"; reboot:, remount:,
 * reconnect), the session ends, as the PC's connection to a real adbd
 * would, after telling the owner (ops->restart_shown: a USB front makes
 * the host drop its transport). `show` does so for every loss, `hide` for
 * none.
 *
 * While the guest is down under a kept transport, an OPEN waits up to
 * owner->open_wait_ms for it (openhold.h) and goes to the guest when it is
 * back the same; it is answered with CLSE when the time is up, when the
 * guest comes back changed (the PC then drops its streams anyway), or at
 * once when open_wait_ms is 0 or the holding is full.
 *
 * Memory: each direction reads into a pool of `buffer` bytes (at least two
 * 64 KiB buffers; a TCP front's are 256 KiB where `buffer` holds two, but
 * a read of it takes at most 64 KiB past the payload being read, so what
 * is not payload still comes 64 KiB a read) and stops reading while that
 * pool is used up, while the output towards the other side holds `buffer` bytes or OUTPUT_MAX_BATCHES
 * batches, or while 64 KiB of frames the relay made up wait for the side
 * that caused them. So a connection holds at most 2 x buffer of data plus
 * 2 x (OUTPUT_MAX_BATCHES + 43) batches of about 2.8 KiB (43: the
 * header-only frames 64 KiB of one read can carry beyond the limit), plus
 * OPENHOLD_MAX held OPENs of at most OPENHOLD_PAYLOAD_MAX bytes each, plus
 * the frames pipelined streams hold: at most buffer bytes each way
 * (pipeline.h).
 *
 * Splice: the payload of a large host WRTE that goes to the guest as it
 * arrives moves from socket to socket through a pipe (datapath.h), never
 * through user space, when the PC is on TCP and the guest on a TCP or
 * AF_UNIX socket (kernel vsock has no splice: it is copied as before).
 * Headers are still read and checked; nothing is spliced while a capture
 * is on, while the frame is held (pipelined, or an OPEN waiting), or while
 * anything else waits to be written to the guest; what the guest does not
 * take at once goes into a pool buffer and the ordinary output, so the
 * memory bound and the order of frames hold. Guest frames are held whole
 * and copied as before: splice from an AF_UNIX socket copies in the
 * kernel, and measured costlier than read and write.
 */
#ifndef RELAY_SESSION_H
#define RELAY_SESSION_H

#include <stdarg.h>
#include <stdint.h>
#include <uv.h>

#include "adbproto/adbproto.h"
#include "relay/datapath/datapath.h"
#include "relay/framehold.h"
#include "relay/front/front.h"
#include "relay/guest_conn.h"
#include "relay/openhold.h"
#include "relay/pipeline.h"
#include "relay/restart.h"
#include "relay/shield.h"
#include "relay/streams.h"
#include "vsock/vsock.h"

struct session;

/* Which way a frame went, for the counters. */
enum dir { DIR_TO_GUEST = 0, DIR_TO_HOST = 1 };

/* The guest as its owner reports it: a session's link says, or the idle
 * probe while no session is there. */
enum guest_state { GUEST_UNKNOWN, GUEST_DOWN, GUEST_CONNECTING, GUEST_UP };

/* The counters an owner's sessions bump (a route's, for status). */
struct session_stats {
	uint64_t frames[2];
	uint64_t bytes[2];        /* payload bytes forwarded */
	uint64_t sessions;        /* front connections accepted, ever */
	uint64_t reconnects;      /* guest links re-established under a session */
	uint64_t errors;          /* malformed input, failed links */
	uint64_t stale_dropped;   /* frames for streams that no longer exist, either way */
	uint64_t refused_opens;   /* OPENs answered with CLSE by the relay */
	uint64_t cut_frames;      /* guest frames cut short by a lost link, dropped */
	uint64_t guest_refused;   /* guest frames the shield kept from the PC */
	uint64_t guest_paused;    /* pauses of a guest over SHIELD_TAKEN_RATE */
	uint64_t opens_held;      /* OPENs that waited for a guest that was down */
	uint64_t restarts_shown;  /* guest restarts the PC saw (its connection ended) */
	uint64_t acked_early;     /* WRTEs the relay acknowledged itself (pipeline.h) */
	uint64_t acked_lost;      /* ... to the PC, and lost with the guest link */
	uint64_t spliced;         /* payload bytes to the guest spliced, not copied */
};

/* What a session asks of its owner. Each gets the owner's `data`. */
struct session_ops {
	/* Connect to the guest, as vsock_link_start() to the owner's
	 * target (a socket, or the virtio device's own connection): 0 and cb
	 * later (once, unless cancelled), or < 0. */
	int (*connect)(void *owner, vsock_link_cb cb, void *data, struct vsock_connect **out);
	/* A connect in flight is given up: its cb is never called. */
	void (*connect_cancel)(void *owner, struct vsock_connect *c);
	/* The guest link changed (or says again) how the guest is. */
	void (*guest_state)(void *owner, enum guest_state st, const char *reason);
	/* Something went wrong (logged by the owner, rate-limited by fmt). */
	void (*error)(void *owner, const char *fmt, va_list ap);
	/* A new session, listed and counted by the owner: 0, or not
	 * admitted (too many clients; the owner says why): it closes. */
	int (*attach)(void *owner, struct session *s);
	/* The session is freed once this returns. */
	void (*detach)(void *owner, struct session *s);
	/* The guest restarted and the PC is to see it: the session closes
	 * right after (a TCP PC sees its connection end); a USB front makes
	 * the host drop its transport as well. May be NULL. */
	void (*restart_shown)(void *owner, struct session *s);
	/* The PC's first frame on this session is not its CNXN: it kept a
	 * transport from before (a USB host whose session ended under it).
	 * Once per session; 1: the session ends after that frame (the owner
	 * makes the host drop that transport). May be NULL. */
	int (*host_stale)(void *owner, struct session *s);
};

/* A session's owner, filled by it (route.c) and outliving its sessions. */
struct session_owner {
	const struct session_ops *ops;
	void *data;                    /* passed to every op */
	uv_loop_t *loop;
	const char *name;              /* for logs, traces and captures */
	const char *target;            /* the guest's address, for logs */
	size_t buffer;                 /* bytes each direction may read ahead */
	unsigned reconnect_min_ms, reconnect_max_ms;
	unsigned max_streams;
	int cnxn_deadline;             /* the PC has HOST_CNXN_TIMEOUT_MS to send CNXN */
	enum guest_restart guest_restart; /* what the PC sees of a guest restart */
	unsigned open_wait_ms;         /* an OPEN waits this long for a guest that is down */
	int pipeline;                  /* stop-and-wait streams pipelined (pipeline.h) */
	struct session_stats *st;
};

#define HOST_CNXN_TIMEOUT_MS 10000   /* a TCP PC's CNXN, as adb waits for a device's */
#define HOST_OPEN_KEEP 256            /* bytes of a host OPEN's service kept */
#define GUEST_SYNTH_QUEUE 64          /* frames made up that may wait for a host frame */

enum link_state {
	LINK_IDLE,        /* no guest link until the host's CNXN */
	LINK_DOWN,        /* waiting for the backoff timer */
	LINK_CONNECTING,  /* vsock connect in progress */
	LINK_UP,          /* connected; online once the guest's CNXN is seen */
	LINK_CLOSING,     /* guest handle closing */
};

struct session {
	const struct session_owner *owner;
	struct session *prev, *next;   /* the owner's list of its sessions */
	uint32_t id;                   /* unique in this process, for captures */
	char peer[64];

	struct front_conn *host;
	struct adb_reader host_rd;
	struct bufpool host_pool;      /* buffers read from the host */
	size_t host_turn;              /* bytes of full host reads in a row (this loop turn) */
	struct output to_host;
	int host_reading;

	struct guest_conn *guest;      /* the guest link, NULL once closed */
	enum link_state link;
	unsigned link_gen;             /* bumped on every new guest link */
	unsigned links_made;
	int guest_online;              /* guest's CNXN seen on this link */
	struct adb_reader guest_rd;
	struct bufpool guest_pool;     /* buffers read from the guest */
	struct pool_reader guest_reader;
	uint32_t guest_max_payload;    /* what the guest is told it may send */
	struct output to_guest;
	int guest_reading;
	struct vsock_connect *connecting;
	uv_timer_t backoff;            /* also the deadline for the host's CNXN */
	uv_timer_t taken_pause;        /* the guest is not read until it fires */
	int taken_paused;
	int taken_told;                /* ... which was logged */
	unsigned backoff_attempt;
	unsigned links_cut;            /* links cut for refused frames: the backoff's floor */
	char down_reason[128];

	/* frame being read from the host: forwarded to which link, if any */
	int h2g_forward;
	unsigned h2g_gen;
	uint8_t h2g_open[HOST_OPEN_KEEP]; /* start of a host OPEN's service */
	size_t h2g_open_len;
	int h2g_hold;                  /* it is an OPEN held while the guest is down */
	/* its payload spliced from the PC's socket to the guest's (a TCP
	 * front and a TCP or Unix guest, a WRTE forwarded as it arrives, of
	 * SPLICE_MIN bytes or more, no capture): the pipe, what the last
	 * splice did, and the pool buffer for what the guest did not take */
	struct splice_pump pump;
	struct splice_result h2g_sp;
	struct poolbuf *h2g_spill;
	int h2g_big;                   /* ... so the next header is read alone */
	int h2g_copy_once;             /* splice took nothing: read() next */
	int h2g_wait;                  /* not read until the guest's queue is empty */
	/* OPENs the PC sent while the guest was down, and their deadline */
	struct openhold held;
	uv_timer_t open_wait;
	int guest_was_online;          /* a link of this session had the guest online */
	/* a restart the PC asked for: when (0: none) and which */
	uint64_t restart_asked_ms;
	char restart_asked[RESTART_NAME_MAX];
	uint32_t restart_watch;        /* the PC's id of a stream whose reply may ask */
	int stale_told;                /* ops->host_stale called */
	int stale_close;               /* ... and the session ends for it */
	char restart_watch_name[RESTART_NAME_MAX];
	/* frame being read from the guest, held until whole */
	struct frame_hold g2h;
	int g2h_pass;                  /* its header passed; OPENs decided at the end */
	unsigned link_refused;         /* guest frames refused on this link */
	/* frames the relay made up for the guest (CLSEs of refused guest
	 * OPENs, OKAYs of pipelined streams), held while a host frame is half
	 * forwarded to it */
	struct {
		uint32_t cmd, arg0, arg1;
	} guest_synth[GUEST_SYNTH_QUEUE];
	unsigned nguest_synth;
	/* pipelined streams (pipeline.h): slots held per direction, the PC's
	 * id of the stream whose host frame is being held (or forwarded), and
	 * held PC frames that may go once no host frame is half forwarded */
	unsigned pipe_slots[2];
	uint32_t h2g_pipe;
	uint32_t h2g_forward_id;       /* ... and of the one forwarded as it arrives */
	int pipe_pending;
	struct shield shield;

	/* the host's CNXN, replayed to each new guest link */
	uint8_t cnxn[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t cnxn_len;
	int cnxn_complete;
	unsigned cnxn_sent_gen;        /* link_gen it was last sent on, 0: never */

	/* the guest's CNXN as the PC last got it (header with the max payload
	 * clamped, then the banner); a new link's equal CNXN is absorbed */
	uint8_t pc_cnxn[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t pc_cnxn_len;            /* 0: the PC has none (or sent CNXN since) */
	int link_auth_sent;            /* a guest AUTH reached the PC on this link */

	struct stream_table streams;
	int closing;
	int handles_open;
};

/* Start a session of `owner` for a PC on `host` (the session owns it from
 * now on). */
int session_start(const struct session_owner *owner, struct front_conn *host);
/* Close the session (both sides); it frees itself once handles are closed. */
void session_close(struct session *s, const char *reason);

#endif
