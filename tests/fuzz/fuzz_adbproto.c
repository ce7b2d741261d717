/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_adbproto.c - libFuzzer target for the adb frame reader and banner
 * parser. The first input byte picks the max payload and a split pattern;
 * the rest is the byte stream, fed in pieces. Every event is checked
 * against the reader's contract: payload chunks are slices of the current
 * input at the expected offset, headers pass validation, frames end after
 * exactly data_length bytes, and the bytes consumed rebuild the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adbproto/adbproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const uint32_t max_payloads[4] = { 4096, 65536, 256 * 1024, ADB_MAX_PAYLOAD };

static void check_banner(const uint8_t *p, size_t len)
{
	struct adb_banner b;
	const char *v;
	size_t vlen;

	if (adb_banner_parse((const char *)p, len, &b) != 0)
		return;
	CHECK(b.state + b.state_len <= (const char *)p + len);
	CHECK(b.props + b.props_len <= (const char *)p + len);
	if (adb_banner_prop(&b, "features", &v, &vlen) == 0)
		CHECK(v >= b.props && v + vlen <= b.props + b.props_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct adb_reader r;
	struct adb_frame_event ev;
	uint8_t cnxn[ADB_HANDSHAKE_MAX];
	size_t consumed = 0, cnxn_len = 0;
	uint32_t seen = 0;
	int in_frame = 0;

	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	uint32_t max = max_payloads[ctl & 3];
	size_t step = (size_t)(ctl >> 2) + 1;  /* 1..64 bytes per input */
	data++;
	size--;

	adb_reader_init(&r, max);
	while (consumed < size) {
		const uint8_t *in = data + consumed;
		size_t n = size - consumed < step ? size - consumed : step;
		const uint8_t *p = in;
		size_t left = n;
		enum adb_reader_event e;

		while ((e = adb_reader_next(&r, &p, &left, &ev)) != ADB_EV_NEED_MORE) {
			if (e == ADB_EV_ERROR) {
				CHECK(ev.error != ADB_OK);
				return 0;
			}
			if (e == ADB_EV_HEADER) {
				CHECK(!in_frame);
				CHECK(adb_header_validate(&ev.header, max) == ADB_OK);
				CHECK(memcmp(ev.header_raw, data + (size_t)(p - data) - ADB_HEADER_SIZE,
					     ADB_HEADER_SIZE) == 0);
				in_frame = 1;
				seen = 0;
				cnxn_len = 0;
			} else if (e == ADB_EV_PAYLOAD) {
				CHECK(in_frame && ev.len > 0);
				CHECK(ev.data >= in && ev.data + ev.len <= in + n);
				CHECK(ev.payload_offset == seen);
				seen += (uint32_t)ev.len;
				CHECK(seen <= ev.header.data_length);
				if (ev.header.command == ADB_CMD_CNXN) {
					memcpy(cnxn + cnxn_len, ev.data, ev.len);
					cnxn_len += ev.len;
				}
			} else if (e == ADB_EV_END) {
				CHECK(in_frame && seen == ev.header.data_length);
				in_frame = 0;
				if (ev.header.command == ADB_CMD_CNXN)
					check_banner(cnxn, cnxn_len);
			}
		}
		CHECK(left == 0);
		consumed += n;
	}
	return 0;
}
