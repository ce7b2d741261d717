/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ffs_desc.c - FunctionFS descriptor and string blobs for one adb interface,
 * serialized byte by byte in little endian (layout: linux/usb/functionfs.h,
 * USB 2.0 ch. 9, USB 3.x ch. 9 SuperSpeed endpoint companion, Microsoft OS
 * 1.0 extended compat ID).
 */
#include "usb/ffs_desc.h"

#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <string.h>

struct blob {
	uint8_t *p;
	size_t len;
};

static void put8(struct blob *b, uint8_t v)
{
	b->p[b->len++] = v;
}

static void put16(struct blob *b, uint16_t v)
{
	put8(b, (uint8_t)v);
	put8(b, (uint8_t)(v >> 8));
}

static void put32(struct blob *b, uint32_t v)
{
	put16(b, (uint16_t)v);
	put16(b, (uint16_t)(v >> 16));
}

static void put_bytes(struct blob *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_interface(struct blob *b)
{
	put8(b, USB_DT_INTERFACE_SIZE);
	put8(b, USB_DT_INTERFACE);
	put8(b, 0);             /* bInterfaceNumber */
	put8(b, 0);             /* bAlternateSetting */
	put8(b, 2);             /* bNumEndpoints */
	put8(b, ADB_CLASS);
	put8(b, ADB_SUBCLASS);
	put8(b, ADB_PROTOCOL);
	put8(b, 1);             /* iInterface: the first string */
}

static void put_endpoint(struct blob *b, uint8_t address, uint16_t maxpacket)
{
	put8(b, USB_DT_ENDPOINT_SIZE);
	put8(b, USB_DT_ENDPOINT);
	put8(b, address);
	put8(b, USB_ENDPOINT_XFER_BULK);
	put16(b, maxpacket);
	put8(b, 0);             /* bInterval */
}

static void put_ss_companion(struct blob *b)
{
	put8(b, USB_DT_SS_EP_COMP_SIZE);
	put8(b, USB_DT_SS_ENDPOINT_COMP);
	put8(b, 0);             /* bMaxBurst */
	put8(b, 0);             /* bmAttributes */
	put16(b, 0);            /* wBytesPerInterval */
}

/* one speed's interface and endpoints; returns how many descriptors */
static uint32_t put_speed(struct blob *b, uint16_t maxpacket, int ss)
{
	put_interface(b);
	put_endpoint(b, 1 | USB_DIR_OUT, maxpacket);
	if (ss)
		put_ss_companion(b);
	put_endpoint(b, 2 | USB_DIR_IN, maxpacket);
	if (ss)
		put_ss_companion(b);
	return ss ? 5 : 3;
}

size_t ffs_build_descriptors(uint8_t out[FFS_DESC_MAX])
{
	struct blob b = { out, 0 };
	size_t counts;

	put32(&b, FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	put32(&b, 0);           /* length, patched below */
	put32(&b, FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC |
		  FUNCTIONFS_HAS_SS_DESC | FUNCTIONFS_HAS_MS_OS_DESC);
	counts = b.len;
	b.len += 4 * 4;         /* fs, hs, ss and os counts, patched below */
	uint32_t fs = put_speed(&b, FFS_FS_MAXPACKET, 0);
	uint32_t hs = put_speed(&b, FFS_HS_MAXPACKET, 0);
	uint32_t ss = put_speed(&b, FFS_SS_MAXPACKET, 1);

	/* MS OS 1.0 extended compat ID: interface 0 is "WINUSB" */
	put8(&b, 0);            /* interface */
	put32(&b, 11 + 24);     /* dwLength: header + one function section */
	put16(&b, 1);           /* bcdVersion */
	put16(&b, 4);           /* wIndex: extended compat ID */
	put8(&b, 1);            /* bCount */
	put8(&b, 0);
	put8(&b, 0);            /* bFirstInterfaceNumber */
	put8(&b, 1);            /* Reserved1, must be 1 */
	put_bytes(&b, "WINUSB\0\0", 8);
	put_bytes(&b, "\0\0\0\0\0\0\0\0", 8);
	put_bytes(&b, "\0\0\0\0\0\0", 6);

	struct blob patch = { out, 4 };
	put32(&patch, (uint32_t)b.len);
	patch.len = counts;
	put32(&patch, fs);
	put32(&patch, hs);
	put32(&patch, ss);
	put32(&patch, 1);
	return b.len;
}

size_t ffs_build_strings(uint8_t out[FFS_STRINGS_MAX])
{
	struct blob b = { out, 0 };

	put32(&b, FUNCTIONFS_STRINGS_MAGIC);
	put32(&b, 0);           /* length, patched below */
	put32(&b, 1);           /* str_count */
	put32(&b, 1);           /* lang_count */
	put16(&b, 0x0409);      /* en-US */
	put_bytes(&b, ADB_INTERFACE_STRING, sizeof(ADB_INTERFACE_STRING));
	struct blob patch = { out, 4 };
	put32(&patch, (uint32_t)b.len);
	return b.len;
}
