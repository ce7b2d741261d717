/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_adbproto.c - the adb wire codec: header layout and validation,
 * checksum, banners, and the incremental frame reader fed a stream of
 * frames split at every byte boundary, plus bad magic, oversize, truncated
 * and unknown-command input.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adbproto/adbproto.h"
#include "tests/unit/unit.h"

/* ---- header codec and validation ---- */

START_TEST(header_layout)
{
	struct adb_header h, d;
	uint8_t raw[ADB_HEADER_SIZE];
	static const uint8_t want[ADB_HEADER_SIZE] = {
		'C', 'N', 'X', 'N', 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00,
		0x07, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0xbc, 0xb1, 0xa7, 0xb1,
	};

	adb_header_init(&h, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, 7, 42);
	ck_assert_uint_eq(h.magic, ADB_CMD_CNXN ^ 0xffffffffu);
	adb_header_encode(&h, raw);
	ck_assert_mem_eq(raw, want, sizeof(want));
	adb_header_decode(raw, &d);
	ck_assert_mem_eq(&d, &h, sizeof(h));
	ck_assert_int_eq(adb_header_validate(&d, 4096), ADB_OK);
}
END_TEST

START_TEST(header_validation)
{
	struct adb_header h;

	adb_header_init(&h, ADB_CMD_WRTE, 1, 2, ADB_MAX_PAYLOAD, 0);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_OK);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD - 1), ADB_ETOOBIG);

	h.magic ^= 1;
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_EMAGIC);

	adb_header_init(&h, 0x41414141u, 0, 0, 0, 0);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_ECOMMAND);
	adb_header_init(&h, ADB_CMD_SYNC, 0, 0, 0, 0);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_ECOMMAND);

	/* CNXN and AUTH are capped at 4096 whatever was negotiated */
	adb_header_init(&h, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, 4097, 0);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_EHANDSHAKE);
	adb_header_init(&h, ADB_CMD_AUTH, ADB_AUTH_TOKEN, 0, 4096, 0);
	ck_assert_int_eq(adb_header_validate(&h, ADB_MAX_PAYLOAD), ADB_OK);

	ck_assert_str_eq(adb_command_name(ADB_CMD_OKAY), "OKAY");
	ck_assert_str_eq(adb_command_name(0x12345678u), "????");
	ck_assert_str_eq(adb_strerror(ADB_EMAGIC), "bad magic");
}
END_TEST

START_TEST(checksum)
{
	static const uint8_t data[] = { 0xff, 0x01, 0x80, 0x00, 0x7f };

	ck_assert_uint_eq(adb_checksum(0, data, sizeof(data)), 0xff + 1 + 0x80 + 0x7f);
	ck_assert_uint_eq(adb_checksum(adb_checksum(0, data, 2), data + 2, 3),
			  adb_checksum(0, data, sizeof(data)));
	ck_assert_uint_eq(adb_checksum(5, NULL, 0), 5);
}
END_TEST

/* ---- banners ---- */

START_TEST(banner_props_and_features)
{
	static const char dev[] =
		"device::ro.product.name=g1;ro.product.model=m;features=shell_v2x,cmd,abb";
	struct adb_banner b;
	const char *v;
	size_t vlen;

	ck_assert_int_eq(adb_banner_parse(dev, strlen(dev), &b), 0);
	ck_assert_uint_eq(b.state_len, 6);
	ck_assert_int_eq(memcmp(b.state, "device", 6), 0);
	ck_assert_int_eq(adb_banner_prop(&b, "ro.product.name", &v, &vlen), 0);
	ck_assert_uint_eq(vlen, 2);
	ck_assert_int_eq(memcmp(v, "g1", 2), 0);
	ck_assert_int_eq(adb_banner_prop(&b, "ro.product", &v, &vlen), -1);
	ck_assert_int_eq(adb_banner_prop(&b, "features", &v, &vlen), 0);
	ck_assert_uint_eq(vlen, strlen("shell_v2x,cmd,abb"));

	ck_assert_int_eq(adb_banner_parse("device", 6, &b), -1);
	/* not NUL-terminated: the length bounds the parse */
	ck_assert_int_eq(adb_banner_parse("host::features=cmdXXX", 18, &b), 0);
	ck_assert_int_eq(adb_banner_prop(&b, "features", &v, &vlen), 0);
	ck_assert_uint_eq(vlen, 3);
}
END_TEST

/* ---- the frame reader ---- */

struct frame_spec {
	uint32_t command;
	uint32_t len;
};

static const struct frame_spec frames[] = {
	{ ADB_CMD_CNXN, 40 }, { ADB_CMD_OPEN, 7 }, { ADB_CMD_OKAY, 0 },
	{ ADB_CMD_WRTE, 1 }, { ADB_CMD_WRTE, 300 }, { ADB_CMD_CLSE, 0 },
	{ ADB_CMD_WRTE, 4096 }, { ADB_CMD_OKAY, 0 },
};
#define NFRAMES (sizeof(frames) / sizeof(frames[0]))

static uint8_t *make_stream(size_t *out_len)
{
	size_t len = 0;
	uint8_t *buf, *p;

	for (size_t i = 0; i < NFRAMES; i++)
		len += ADB_HEADER_SIZE + frames[i].len;
	buf = p = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < NFRAMES; i++) {
		struct adb_header h;

		adb_header_init(&h, frames[i].command, (uint32_t)i, (uint32_t)i * 3, frames[i].len, 0);
		adb_header_encode(&h, p);
		p += ADB_HEADER_SIZE;
		for (uint32_t j = 0; j < frames[i].len; j++)
			*p++ = (uint8_t)(i * 31 + j * 7);
	}
	*out_len = len;
	return buf;
}

/* What a reader produced from a sequence of inputs, rebuilt as bytes. */
struct collected {
	uint8_t *bytes;
	size_t len;
	size_t nframes;
	uint32_t payload_seen;  /* of the current frame */
	int in_frame;
	enum adb_error error;
	int errors;
};

static void feed(struct adb_reader *r, struct collected *c, const uint8_t *in, size_t len)
{
	const uint8_t *data = in;
	size_t left = len;
	struct adb_frame_event ev;
	enum adb_reader_event e;

	while ((e = adb_reader_next(r, &data, &left, &ev)) != ADB_EV_NEED_MORE) {
		switch (e) {
		case ADB_EV_HEADER:
			ck_assert(!c->in_frame);
			if (ev.header_contiguous) {
				/* all 24 bytes came from this input, just before data */
				ck_assert_uint_ge((size_t)(data - in), ADB_HEADER_SIZE);
				ck_assert_mem_eq(data - ADB_HEADER_SIZE, ev.header_raw,
						 ADB_HEADER_SIZE);
			} else {
				ck_assert_uint_lt((size_t)(data - in), ADB_HEADER_SIZE);
			}
			memcpy(c->bytes + c->len, ev.header_raw, ADB_HEADER_SIZE);
			c->len += ADB_HEADER_SIZE;
			c->in_frame = 1;
			c->payload_seen = 0;
			break;
		case ADB_EV_PAYLOAD:
			ck_assert(c->in_frame);
			/* zero copy: the chunk is a slice of this input */
			ck_assert(ev.data >= in && ev.data + ev.len <= in + len);
			ck_assert_uint_eq(ev.payload_offset, c->payload_seen);
			memcpy(c->bytes + c->len, ev.data, ev.len);
			c->len += ev.len;
			c->payload_seen += (uint32_t)ev.len;
			break;
		case ADB_EV_END:
			ck_assert(c->in_frame);
			ck_assert_uint_eq(c->payload_seen, ev.header.data_length);
			c->in_frame = 0;
			c->nframes++;
			break;
		case ADB_EV_ERROR:
			c->error = ev.error;
			c->errors++;
			return;
		case ADB_EV_NEED_MORE:
			break;
		}
	}
	ck_assert_uint_eq(left, 0);
}

START_TEST(reader_every_split_point)
{
	size_t len;
	uint8_t *stream = make_stream(&len);
	struct collected c = { .bytes = malloc(len) };

	ck_assert_ptr_nonnull(c.bytes);
	/* two inputs split at each byte, and three inputs with a second cut
	 * spread pseudo-randomly over the rest */
	for (size_t cut = 0; cut <= len; cut++) {
		size_t seconds[2] = { cut, cut + (cut * 7919) % (len - cut + 1) };

		for (int k = 0; k < 2; k++) {
			size_t second = seconds[k];
			struct adb_reader r;

			adb_reader_init(&r, 4096);
			c.len = c.nframes = 0;
			c.in_frame = 0;
			feed(&r, &c, stream, cut);
			feed(&r, &c, stream + cut, second - cut);
			feed(&r, &c, stream + second, len - second);
			ck_assert_int_eq(c.errors, 0);
			ck_assert_uint_eq(c.nframes, NFRAMES);
			ck_assert_uint_eq(c.len, len);
			ck_assert_mem_eq(c.bytes, stream, len);
			ck_assert(adb_reader_at_boundary(&r));
		}
	}
	free(c.bytes);
	free(stream);
}
END_TEST

START_TEST(reader_byte_by_byte)
{
	size_t len;
	uint8_t *stream = make_stream(&len);
	struct collected c = { .bytes = malloc(len) };
	struct adb_reader r;

	adb_reader_init(&r, 4096);
	for (size_t i = 0; i < len; i++)
		feed(&r, &c, stream + i, 1);
	ck_assert_uint_eq(c.nframes, NFRAMES);
	ck_assert_mem_eq(c.bytes, stream, len);
	free(c.bytes);
	free(stream);
}
END_TEST

static enum adb_error first_error(const uint8_t *in, size_t len, uint32_t max, size_t *frames_ok)
{
	struct adb_reader r;
	struct collected c = { .bytes = malloc(len + ADB_HEADER_SIZE) };

	adb_reader_init(&r, max);
	feed(&r, &c, in, len);
	*frames_ok = c.nframes;
	free(c.bytes);
	return c.errors ? c.error : ADB_OK;
}

START_TEST(reader_rejects_bad_magic_sticky)
{
	uint8_t buf[2 * ADB_HEADER_SIZE];
	struct adb_header h;
	struct adb_reader r;
	struct adb_frame_event ev;
	size_t ok;

	adb_header_init(&h, ADB_CMD_OKAY, 1, 2, 0, 0);
	adb_header_encode(&h, buf);
	adb_header_encode(&h, buf + ADB_HEADER_SIZE);
	buf[ADB_HEADER_SIZE + 20] ^= 0x40;
	ck_assert_int_eq(first_error(buf, sizeof(buf), 4096, &ok), ADB_EMAGIC);
	ck_assert_uint_eq(ok, 1);

	/* once in error, the reader says so again without reading more */
	const uint8_t *d = buf + ADB_HEADER_SIZE;
	size_t left = ADB_HEADER_SIZE;
	adb_reader_init(&r, 4096);
	ck_assert_int_eq(adb_reader_next(&r, &d, &left, &ev), ADB_EV_ERROR);
	left = ADB_HEADER_SIZE;
	d = buf;
	ck_assert_int_eq(adb_reader_next(&r, &d, &left, &ev), ADB_EV_ERROR);
	ck_assert_int_eq(ev.error, ADB_EMAGIC);
	ck_assert_uint_eq(left, ADB_HEADER_SIZE);
}
END_TEST

START_TEST(reader_rejects_oversize_and_unknown)
{
	uint8_t buf[ADB_HEADER_SIZE];
	struct adb_header h;
	size_t ok;

	adb_header_init(&h, ADB_CMD_WRTE, 1, 2, 4097, 0);
	adb_header_encode(&h, buf);
	ck_assert_int_eq(first_error(buf, sizeof(buf), 4096, &ok), ADB_ETOOBIG);
	ck_assert_int_eq(first_error(buf, sizeof(buf), 8192, &ok), ADB_OK);

	adb_header_init(&h, ADB_CMD_CNXN, ADB_VERSION, 4096, 0xffffffffu, 0);
	adb_header_encode(&h, buf);
	ck_assert_int_eq(first_error(buf, sizeof(buf), ADB_MAX_PAYLOAD, &ok), ADB_EHANDSHAKE);

	adb_header_init(&h, 0x58585858u, 0, 0, 0, 0);
	adb_header_encode(&h, buf);
	ck_assert_int_eq(first_error(buf, sizeof(buf), 4096, &ok), ADB_ECOMMAND);
}
END_TEST

START_TEST(reader_truncated_frame_waits)
{
	size_t len;
	uint8_t *stream = make_stream(&len);
	struct collected c = { .bytes = malloc(len) };
	struct adb_reader r;

	/* all but the last byte of the 4096-byte WRTE and the final OKAY */
	size_t cut = len - ADB_HEADER_SIZE - 1;
	adb_reader_init(&r, 4096);
	feed(&r, &c, stream, cut);
	ck_assert_uint_eq(c.nframes, NFRAMES - 2);
	ck_assert(c.in_frame);
	ck_assert_uint_eq(c.payload_seen, 4095);
	ck_assert(!adb_reader_at_boundary(&r));
	ck_assert_int_eq(c.errors, 0);

	/* a header cut short is also pending, not an error */
	adb_reader_init(&r, 4096);
	c.len = c.nframes = 0;
	c.in_frame = 0;
	feed(&r, &c, stream, ADB_HEADER_SIZE - 1);
	ck_assert(!adb_reader_at_boundary(&r));
	ck_assert_uint_eq(c.len, 0);
	free(c.bytes);
	free(stream);
}
END_TEST

/* Payload bytes that went past the reader (spliced): it counts them and
 * ends the frame, and the next header is read as ever. */
START_TEST(reader_skips_spliced_payload)
{
	uint8_t buf[2 * ADB_HEADER_SIZE];
	const uint8_t *p = buf;
	size_t len = ADB_HEADER_SIZE;
	struct adb_header h;
	struct adb_frame_event fe;
	struct adb_reader r;

	adb_header_init(&h, ADB_CMD_WRTE, 1, 2, 1000, 0);
	adb_header_encode(&h, buf);
	adb_header_init(&h, ADB_CMD_OKAY, 3, 4, 0, 0);
	adb_header_encode(&h, buf + ADB_HEADER_SIZE);
	adb_reader_init(&r, 4096);
	ck_assert_uint_eq(adb_reader_piece_left(&r), ADB_HEADER_SIZE);
	ck_assert_int_eq(adb_reader_next(&r, &p, &len, &fe), ADB_EV_HEADER);
	ck_assert_uint_eq(adb_reader_piece_left(&r), 1000);
	adb_reader_skip_payload(&r, 600);
	ck_assert_uint_eq(adb_reader_piece_left(&r), 400);
	ck_assert_int_eq(adb_reader_next(&r, &p, &len, &fe), ADB_EV_NEED_MORE);
	adb_reader_skip_payload(&r, 400);
	ck_assert_int_eq(adb_reader_next(&r, &p, &len, &fe), ADB_EV_END);
	ck_assert_uint_eq(fe.header.command, ADB_CMD_WRTE);
	ck_assert(adb_reader_at_boundary(&r));
	adb_reader_skip_payload(&r, 5);   /* no payload: nothing happens */
	len = ADB_HEADER_SIZE;
	ck_assert_int_eq(adb_reader_next(&r, &p, &len, &fe), ADB_EV_HEADER);
	ck_assert_uint_eq(fe.header.command, ADB_CMD_OKAY);
}
END_TEST

START_TEST(reader_max_payload_changes_after_handshake)
{
	uint8_t buf[ADB_HEADER_SIZE];
	struct adb_header h;
	struct adb_reader r;
	struct adb_frame_event ev;
	const uint8_t *d = buf;
	size_t left = sizeof(buf);

	adb_header_init(&h, ADB_CMD_WRTE, 1, 2, 65536, 0);
	adb_header_encode(&h, buf);
	adb_reader_init(&r, ADB_MAX_PAYLOAD_V1);
	adb_reader_set_max_payload(&r, 256 * 1024);
	ck_assert_int_eq(adb_reader_next(&r, &d, &left, &ev), ADB_EV_HEADER);
	ck_assert_uint_eq(ev.header.data_length, 65536);
	ck_assert(ev.header_contiguous);
}
END_TEST

static Suite *adbproto_suite(void)
{
	Suite *s = suite_create("adbproto");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, header_layout);
	tcase_add_test(tc, header_validation);
	tcase_add_test(tc, checksum);
	tcase_add_test(tc, reader_skips_spliced_payload);
	tcase_add_test(tc, banner_props_and_features);
	tcase_add_test(tc, reader_every_split_point);
	tcase_add_test(tc, reader_byte_by_byte);
	tcase_add_test(tc, reader_rejects_bad_magic_sticky);
	tcase_add_test(tc, reader_rejects_oversize_and_unknown);
	tcase_add_test(tc, reader_truncated_frame_waits);
	tcase_add_test(tc, reader_max_payload_changes_after_handshake);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(adbproto_suite());
}
