/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adbproto.c - adb message header codec, validation, checksum, banner
 * parsing and the incremental frame reader. See adbproto.h.
 */
#include "adbproto/adbproto.h"

#include <string.h>

enum reader_state { RS_HEADER, RS_PAYLOAD, RS_END, RS_ERROR };

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void adb_header_init(struct adb_header *h, uint32_t command, uint32_t arg0,
		     uint32_t arg1, uint32_t data_length, uint32_t data_check)
{
	h->command = command;
	h->arg0 = arg0;
	h->arg1 = arg1;
	h->data_length = data_length;
	h->data_check = data_check;
	h->magic = command ^ 0xffffffffu;
}

void adb_header_encode(const struct adb_header *h, uint8_t out[ADB_HEADER_SIZE])
{
	put_le32(out + 0, h->command);
	put_le32(out + 4, h->arg0);
	put_le32(out + 8, h->arg1);
	put_le32(out + 12, h->data_length);
	put_le32(out + 16, h->data_check);
	put_le32(out + 20, h->magic);
}

void adb_header_decode(const uint8_t in[ADB_HEADER_SIZE], struct adb_header *h)
{
	h->command = get_le32(in + 0);
	h->arg0 = get_le32(in + 4);
	h->arg1 = get_le32(in + 8);
	h->data_length = get_le32(in + 12);
	h->data_check = get_le32(in + 16);
	h->magic = get_le32(in + 20);
}

static int command_known(uint32_t command)
{
	switch (command) {
	case ADB_CMD_CNXN:
	case ADB_CMD_AUTH:
	case ADB_CMD_OPEN:
	case ADB_CMD_OKAY:
	case ADB_CMD_CLSE:
	case ADB_CMD_WRTE:
	case ADB_CMD_STLS:
		return 1;
	default:
		return 0;
	}
}

enum adb_error adb_header_validate(const struct adb_header *h, uint32_t max_payload)
{
	if (h->magic != (h->command ^ 0xffffffffu))
		return ADB_EMAGIC;
	if (!command_known(h->command))
		return ADB_ECOMMAND;
	if ((h->command == ADB_CMD_CNXN || h->command == ADB_CMD_AUTH) &&
	    h->data_length > ADB_HANDSHAKE_MAX)
		return ADB_EHANDSHAKE;
	if (h->data_length > max_payload)
		return ADB_ETOOBIG;
	return ADB_OK;
}

const char *adb_strerror(enum adb_error err)
{
	switch (err) {
	case ADB_OK:         return "ok";
	case ADB_EMAGIC:     return "bad magic";
	case ADB_ECOMMAND:   return "unknown command";
	case ADB_ETOOBIG:    return "payload larger than max payload";
	case ADB_EHANDSHAKE: return "handshake payload larger than 4096";
	}
	return "unknown error";
}

const char *adb_command_name(uint32_t command)
{
	switch (command) {
	case ADB_CMD_SYNC: return "SYNC";
	case ADB_CMD_CNXN: return "CNXN";
	case ADB_CMD_AUTH: return "AUTH";
	case ADB_CMD_OPEN: return "OPEN";
	case ADB_CMD_OKAY: return "OKAY";
	case ADB_CMD_CLSE: return "CLSE";
	case ADB_CMD_WRTE: return "WRTE";
	case ADB_CMD_STLS: return "STLS";
	default:           return "????";
	}
}

uint32_t adb_checksum(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len--)
		sum += *p++;
	return sum;
}

int adb_banner_parse(const char *buf, size_t len, struct adb_banner *out)
{
	const char *colon = memchr(buf, ':', len);
	const char *end = buf + len;
	const char *second;

	if (colon == NULL)
		return -1;
	out->state = buf;
	out->state_len = (size_t)(colon - buf);
	second = memchr(colon + 1, ':', (size_t)(end - colon - 1));
	if (second == NULL) {
		out->props = end;
		out->props_len = 0;
		return 0;
	}
	out->props = second + 1;
	out->props_len = (size_t)(end - second - 1);
	/* A NUL terminator (adbd sends one in some versions) ends the banner. */
	const char *nul = memchr(out->props, '\0', out->props_len);
	if (nul != NULL)
		out->props_len = (size_t)(nul - out->props);
	return 0;
}

int adb_banner_prop(const struct adb_banner *b, const char *key,
		    const char **val, size_t *val_len)
{
	size_t klen = strlen(key);
	const char *p = b->props;
	const char *end = b->props + b->props_len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *item_end = semi ? semi : end;
		size_t item_len = (size_t)(item_end - p);

		if (item_len > klen && p[klen] == '=' && memcmp(p, key, klen) == 0) {
			*val = p + klen + 1;
			*val_len = item_len - klen - 1;
			return 0;
		}
		p = item_end + 1;
	}
	return -1;
}

void adb_reader_init(struct adb_reader *r, uint32_t max_payload)
{
	memset(r, 0, sizeof(*r));
	r->max_payload = max_payload;
	r->state = RS_HEADER;
}

void adb_reader_set_max_payload(struct adb_reader *r, uint32_t max_payload)
{
	r->max_payload = max_payload;
}

int adb_reader_at_boundary(const struct adb_reader *r)
{
	return (r->state == RS_HEADER && r->hdr_have == 0) || r->state == RS_END;
}

uint32_t adb_reader_piece_left(const struct adb_reader *r)
{
	switch (r->state) {
	case RS_HEADER:
		return (uint32_t)(ADB_HEADER_SIZE - r->hdr_have);
	case RS_PAYLOAD:
		return r->cur.data_length - r->payload_done;
	default:
		return 0;
	}
}

void adb_reader_skip_payload(struct adb_reader *r, uint32_t n)
{
	if (r->state != RS_PAYLOAD)
		return;
	if (n > r->cur.data_length - r->payload_done)
		n = r->cur.data_length - r->payload_done;
	r->payload_done += n;
	if (r->payload_done == r->cur.data_length)
		r->state = RS_END;
}

static enum adb_reader_event reader_fail(struct adb_reader *r,
					 struct adb_frame_event *out,
					 enum adb_error err)
{
	r->state = RS_ERROR;
	r->error = err;
	out->error = err;
	return ADB_EV_ERROR;
}

static enum adb_reader_event read_header(struct adb_reader *r, const uint8_t **data,
					 size_t *len, struct adb_frame_event *out)
{
	size_t had = r->hdr_have;
	size_t take = ADB_HEADER_SIZE - had;

	if (take > *len)
		take = *len;
	memcpy(r->hdr + had, *data, take);
	r->hdr_have += take;
	*data += take;
	*len -= take;
	if (r->hdr_have < ADB_HEADER_SIZE)
		return ADB_EV_NEED_MORE;

	adb_header_decode(r->hdr, &r->cur);
	enum adb_error err = adb_header_validate(&r->cur, r->max_payload);
	if (err != ADB_OK)
		return reader_fail(r, out, err);

	out->header = r->cur;
	memcpy(out->header_raw, r->hdr, ADB_HEADER_SIZE);
	out->header_contiguous = (had == 0);
	out->data = NULL;
	out->len = 0;
	out->payload_offset = 0;
	out->error = ADB_OK;
	r->hdr_have = 0;
	r->payload_done = 0;
	r->state = r->cur.data_length ? RS_PAYLOAD : RS_END;
	return ADB_EV_HEADER;
}

static enum adb_reader_event read_payload(struct adb_reader *r, const uint8_t **data,
					  size_t *len, struct adb_frame_event *out)
{
	uint32_t left = r->cur.data_length - r->payload_done;
	size_t take = *len < left ? *len : left;

	if (take == 0)
		return ADB_EV_NEED_MORE;
	out->header = r->cur;
	out->data = *data;
	out->len = take;
	out->payload_offset = r->payload_done;
	*data += take;
	*len -= take;
	r->payload_done += (uint32_t)take;
	if (r->payload_done == r->cur.data_length)
		r->state = RS_END;
	return ADB_EV_PAYLOAD;
}

enum adb_reader_event adb_reader_next(struct adb_reader *r, const uint8_t **data,
				      size_t *len, struct adb_frame_event *out)
{
	switch (r->state) {
	case RS_ERROR:
		out->error = r->error;
		return ADB_EV_ERROR;
	case RS_END:
		out->header = r->cur;
		out->data = NULL;
		out->len = 0;
		r->state = RS_HEADER;
		return ADB_EV_END;
	case RS_PAYLOAD:
		return read_payload(r, data, len, out);
	default:
		if (*len == 0)
			return ADB_EV_NEED_MORE;
		return read_header(r, data, len, out);
	}
}
