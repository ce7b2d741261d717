/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adbproto.h - the adb wire protocol: message header codec, validation,
 * payload checksum, connection banner, and an incremental frame reader.
 *
 * Pure code: no I/O, no event loop, no allocation. Facts follow AOSP adb's
 * implementation (adb.h, types.h), not the stale protocol.txt.
 */
#ifndef ADBPROTO_H
#define ADBPROTO_H

#include <stddef.h>
#include <stdint.h>

#define ADB_HEADER_SIZE 24

#define ADB_CMD_SYNC 0x434e5953u /* obsolete, never valid on the wire */
#define ADB_CMD_CNXN 0x4e584e43u
#define ADB_CMD_AUTH 0x48545541u
#define ADB_CMD_OPEN 0x4e45504fu
#define ADB_CMD_OKAY 0x59414b4fu
#define ADB_CMD_CLSE 0x45534c43u
#define ADB_CMD_WRTE 0x45545257u
#define ADB_CMD_STLS 0x534c5453u

#define ADB_VERSION_MIN            0x01000000u
#define ADB_VERSION_SKIP_CHECKSUM  0x01000001u
#define ADB_VERSION                ADB_VERSION_SKIP_CHECKSUM

#define ADB_MAX_PAYLOAD_V1      4096u
#define ADB_MAX_PAYLOAD         (1024u * 1024u)  /* largest any peer may announce */
#define ADB_HANDSHAKE_MAX       4096u            /* CNXN and AUTH payload cap */

#define ADB_AUTH_TOKEN        1u
#define ADB_AUTH_SIGNATURE    2u
#define ADB_AUTH_RSAPUBLICKEY 3u

struct adb_header {
	uint32_t command;
	uint32_t arg0;
	uint32_t arg1;
	uint32_t data_length;
	uint32_t data_check;
	uint32_t magic;
};

/* Why a header (or a stream of frames) was rejected. Zero means valid. */
enum adb_error {
	ADB_OK = 0,
	ADB_EMAGIC,        /* magic != command ^ 0xffffffff */
	ADB_ECOMMAND,      /* unknown or obsolete command */
	ADB_ETOOBIG,       /* data_length above the allowed maximum */
	ADB_EHANDSHAKE,    /* CNXN/AUTH payload above ADB_HANDSHAKE_MAX */
};

/* Fill a header; magic is derived from command. */
void adb_header_init(struct adb_header *h, uint32_t command, uint32_t arg0,
		     uint32_t arg1, uint32_t data_length, uint32_t data_check);
void adb_header_encode(const struct adb_header *h, uint8_t out[ADB_HEADER_SIZE]);
void adb_header_decode(const uint8_t in[ADB_HEADER_SIZE], struct adb_header *h);

/* Check magic, command and data_length against max_payload (and the
 * handshake cap for CNXN/AUTH). Returns ADB_OK or the reason. */
enum adb_error adb_header_validate(const struct adb_header *h, uint32_t max_payload);

const char *adb_strerror(enum adb_error err);
/* "CNXN", "OPEN", ... or "????" for anything unknown. Never NULL. */
const char *adb_command_name(uint32_t command);

/* Byte sum of a payload, as used in data_check below ADB_VERSION_SKIP_CHECKSUM.
 * Incremental: pass the previous sum (0 to start). */
uint32_t adb_checksum(uint32_t sum, const void *data, size_t len);

/*
 * Banner: "<state>:<serial>:<prop>=<value>;<prop>=<value>;..." where the
 * device sends "device::ro.product.name=X;...;features=a,b" and the host
 * "host::features=a,b". Parsing points into the caller's buffer.
 */
struct adb_banner {
	const char *state;   size_t state_len;   /* "device", "host", ... */
	const char *props;   size_t props_len;   /* everything after the second ':' */
};

/* Returns 0, or -1 if the banner has no ':' after the state. */
int adb_banner_parse(const char *buf, size_t len, struct adb_banner *out);
/* Find the value of property `key` in a parsed banner. Returns 0 and sets
 * val and val_len, or -1 if absent. */
int adb_banner_prop(const struct adb_banner *b, const char *key,
		    const char **val, size_t *val_len);

/*
 * Incremental frame reader. Feed it bytes split at any boundary; it yields
 * one event at a time without ever buffering a payload (only the 24 header
 * bytes are copied, because a header may straddle two inputs).
 *
 *   struct adb_reader r;
 *   adb_reader_init(&r, max_payload);
 *   while ((ev = adb_reader_next(&r, &data, &len, &out)) != ADB_EV_NEED_MORE) ...
 *
 * ADB_EV_HEADER:  out.header is a validated header; out.header_raw holds its
 *                 24 bytes, and out.header_contiguous says whether all 24 came
 *                 from this input (then they are the 24 bytes just before the
 *                 advanced *data).
 * ADB_EV_PAYLOAD: out.data/out.len is a slice of the input; out.payload_offset
 *                 is how far into the payload it starts.
 * ADB_EV_END:     the frame is complete (always follows the last payload
 *                 chunk, or directly the header when data_length == 0).
 * ADB_EV_ERROR:   out.error says why; the reader stays in error until reset.
 *
 * *data and *len advance past consumed bytes.
 */
enum adb_reader_event {
	ADB_EV_NEED_MORE = 0,
	ADB_EV_HEADER,
	ADB_EV_PAYLOAD,
	ADB_EV_END,
	ADB_EV_ERROR,
};

struct adb_frame_event {
	struct adb_header header;        /* current frame's header */
	uint8_t header_raw[ADB_HEADER_SIZE];
	int header_contiguous;           /* all 24 header bytes are in this input */
	const uint8_t *data;             /* PAYLOAD: slice of the input */
	size_t len;
	uint32_t payload_offset;         /* PAYLOAD: offset of data within payload */
	enum adb_error error;            /* ERROR: reason */
};

struct adb_reader {
	uint8_t hdr[ADB_HEADER_SIZE];
	size_t hdr_have;
	struct adb_header cur;
	uint32_t payload_done;
	uint32_t max_payload;
	int state;
	enum adb_error error;
};

void adb_reader_init(struct adb_reader *r, uint32_t max_payload);
/* Change the limit used for headers not yet read (after CNXN negotiation). */
void adb_reader_set_max_payload(struct adb_reader *r, uint32_t max_payload);
enum adb_reader_event adb_reader_next(struct adb_reader *r, const uint8_t **data,
				      size_t *len, struct adb_frame_event *out);
/* True between frames (no partial header or payload pending). */
int adb_reader_at_boundary(const struct adb_reader *r);
/* Bytes that complete the header or the payload being read: 24 between
 * frames, 0 once a frame is complete or in error. */
uint32_t adb_reader_piece_left(const struct adb_reader *r);
/* n (<= piece_left, in a payload) payload bytes went past the reader (spliced from
 * socket to socket): the next call yields ADB_EV_END once none are left. */
void adb_reader_skip_payload(struct adb_reader *r, uint32_t n);

#endif /* ADBPROTO_H */
