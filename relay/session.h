/*
 * session.h - the adb-aware session between one front connection (the PC's
 * adb server) and one guest link. Frames are parsed both ways and forwarded
 * cut-through; the host's CNXN is cached and replayed to every new guest
 * link, so the PC's transport survives guest reboots.
 */
#ifndef RELAY_SESSION_H
#define RELAY_SESSION_H

#include <uv.h>

#include "adbproto.h"
#include "bufpool.h"
#include "hostport.h"
#include "output.h"
#include "streams.h"
#include "vsock.h"

struct route;

enum link_state {
	LINK_DOWN,        /* waiting for the backoff timer */
	LINK_CONNECTING,  /* vsock connect in progress */
	LINK_UP,          /* connected; online once the guest's CNXN is seen */
	LINK_CLOSING,     /* guest handle closing */
};

struct session {
	struct route *route;
	struct session *prev, *next;
	uint32_t id;                   /* unique in this process, for captures */
	char peer[64];

	struct hostport *host;
	struct adb_reader host_rd;
	struct bufpool host_pool;      /* buffers read from the host */
	struct output to_host;
	int host_reading;
	struct poolbuf *host_rbuf;     /* buffer lent to the current read */

	uv_pipe_t guest;
	int guest_handle;              /* guest is initialised, not yet closed */
	enum link_state link;
	unsigned link_gen;             /* bumped on every new guest link */
	unsigned links_made;
	int guest_online;              /* guest's CNXN seen on this link */
	struct adb_reader guest_rd;
	struct bufpool guest_pool;     /* buffers read from the guest */
	struct output to_guest;
	int guest_reading;
	struct poolbuf *guest_rbuf;
	struct vsock_connect *connecting;
	uv_timer_t backoff;
	unsigned backoff_attempt;
	char down_reason[128];

	/* frame being read from the host: forwarded to which link, if any */
	int h2g_forward;
	unsigned h2g_gen;
	/* frame being read from the guest: payload bytes still owed to the host */
	uint32_t g2h_left;

	/* the host's CNXN, replayed to each new guest link */
	uint8_t cnxn[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t cnxn_len;
	int cnxn_complete;
	unsigned cnxn_sent_gen;        /* link_gen it was last sent on, 0: never */

	struct stream_table streams;
	int closing;
	int handles_open;
};

/* Start a session for a PC on `host` (the session owns it from now on). */
int session_start(struct route *route, struct hostport *host);
/* Close the session (both sides); it frees itself once handles are closed. */
void session_close(struct session *s, const char *reason);

#endif
