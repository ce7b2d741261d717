/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ffs_desc.h - the FunctionFS blobs of an adb function: v2 descriptors for
 * full, high and super speed (interface 0xff/0x42/0x01, bulk OUT and IN),
 * the MS OS "WINUSB" compatible-ID descriptor, and the strings. Pure: built
 * into caller buffers, no I/O.
 */
#ifndef USB_FFS_DESC_H
#define USB_FFS_DESC_H

#include <stddef.h>
#include <stdint.h>

#define ADB_CLASS    0xff
#define ADB_SUBCLASS 0x42
#define ADB_PROTOCOL 0x01
#define ADB_INTERFACE_STRING "ADB Interface"

#define FFS_DESC_MAX 256
#define FFS_STRINGS_MAX 64

/* wMaxPacketSize of the bulk endpoints per speed */
#define FFS_FS_MAXPACKET 64
#define FFS_HS_MAXPACKET 512
#define FFS_SS_MAXPACKET 1024

/* Build the descriptor blob written first to ep0. Returns its length. */
size_t ffs_build_descriptors(uint8_t out[FFS_DESC_MAX]);
/* Build the strings blob written second. Returns its length. */
size_t ffs_build_strings(uint8_t out[FFS_STRINGS_MAX]);

#endif
