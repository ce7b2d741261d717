/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_usb_desc.c - the FunctionFS blobs of the adb function, walked the
 * way f_fs parses them: header, per-speed counts, each descriptor's length
 * and type, the adb interface triple, endpoint addresses and packet sizes
 * per speed, SuperSpeed companions, the WINUSB compat ID, and the strings.
 */
#include <check.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <stdlib.h>
#include <string.h>

#include "usb/ffs_desc.h"
#include "tests/unit/unit.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Walk `count` USB descriptors of one speed; check them; return the
 * position after them. */
static size_t check_speed(const uint8_t *d, size_t pos, uint32_t count, uint16_t maxpacket, int ss)
{
	int endpoints = 0;

	for (uint32_t i = 0; i < count; i++) {
		uint8_t len = d[pos], type = d[pos + 1];

		ck_assert_uint_gt(len, 1);
		if (i == 0) {
			ck_assert_uint_eq(type, USB_DT_INTERFACE);
			ck_assert_uint_eq(len, USB_DT_INTERFACE_SIZE);
			ck_assert_uint_eq(d[pos + 4], 2);             /* endpoints */
			ck_assert_uint_eq(d[pos + 5], 0xff);
			ck_assert_uint_eq(d[pos + 6], 0x42);
			ck_assert_uint_eq(d[pos + 7], 0x01);
		} else if (type == USB_DT_ENDPOINT) {
			ck_assert_uint_eq(len, USB_DT_ENDPOINT_SIZE);
			ck_assert_uint_eq(d[pos + 2], endpoints == 0 ? 0x01 : 0x82);
			ck_assert_uint_eq(d[pos + 3], USB_ENDPOINT_XFER_BULK);
			ck_assert_uint_eq(le16(d + pos + 4), maxpacket);
			endpoints++;
		} else {
			ck_assert(ss);
			ck_assert_uint_eq(type, USB_DT_SS_ENDPOINT_COMP);
			ck_assert_uint_eq(len, USB_DT_SS_EP_COMP_SIZE);
		}
		pos += len;
	}
	ck_assert_int_eq(endpoints, 2);
	return pos;
}

START_TEST(descriptors_parse_like_f_fs)
{
	uint8_t d[FFS_DESC_MAX];
	size_t n = ffs_build_descriptors(d), pos;

	ck_assert_uint_eq(le32(d), FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	ck_assert_uint_eq(le32(d + 4), n);
	ck_assert_uint_eq(le32(d + 8), FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC |
				       FUNCTIONFS_HAS_SS_DESC | FUNCTIONFS_HAS_MS_OS_DESC);
	ck_assert_uint_eq(le32(d + 12), 3);
	ck_assert_uint_eq(le32(d + 16), 3);
	ck_assert_uint_eq(le32(d + 20), 5);
	ck_assert_uint_eq(le32(d + 24), 1);
	pos = check_speed(d, 28, 3, 64, 0);
	pos = check_speed(d, pos, 3, 512, 0);
	pos = check_speed(d, pos, 5, 1024, 1);
	/* MS OS extended compat ID, interface 0 -> "WINUSB" */
	ck_assert_uint_eq(d[pos], 0);
	ck_assert_uint_eq(le32(d + pos + 1), 35);
	ck_assert_uint_eq(le16(d + pos + 5), 1);
	ck_assert_uint_eq(le16(d + pos + 7), 4);
	ck_assert_uint_eq(d[pos + 9], 1);
	ck_assert_uint_eq(d[pos + 12], 1);
	ck_assert_int_eq(memcmp(d + pos + 13, "WINUSB\0\0", 8), 0);
	ck_assert_uint_eq(pos + 11 + 24, n);
}
END_TEST

START_TEST(strings_blob)
{
	uint8_t s[FFS_STRINGS_MAX];
	size_t n = ffs_build_strings(s);

	ck_assert_uint_eq(le32(s), FUNCTIONFS_STRINGS_MAGIC);
	ck_assert_uint_eq(le32(s + 4), n);
	ck_assert_uint_eq(le32(s + 8), 1);
	ck_assert_uint_eq(le32(s + 12), 1);
	ck_assert_uint_eq(le16(s + 16), 0x0409);
	ck_assert_str_eq((const char *)s + 18, "ADB Interface");
	ck_assert_uint_eq(n, 18 + sizeof("ADB Interface"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("usb_desc");
	TCase *tc = tcase_create("blobs");

	tcase_add_test(tc, descriptors_parse_like_f_fs);
	tcase_add_test(tc, strings_blob);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
