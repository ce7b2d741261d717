/* SPDX-License-Identifier: Apache-2.0 */
/*
 * usb_internal.h - what function.c and bulk.c share, not for users of usb/.
 */
#ifndef USB_INTERNAL_H
#define USB_INTERNAL_H

#include "usb/usb.h"

int usb_bulk_init(struct usb_function *f);
/* Wait for in-flight transfers (handing buffers back), free AIO state. */
void usb_bulk_destroy(struct usb_function *f);
void usb_log(struct usb_function *f, int warn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* drop.c's timer, made with the function (one more handle to close); a
 * drop under way ends with the host's connection (DISABLE, UNBIND, ENABLE). */
void usb_drop_init(struct usb_function *f);
void usb_drop_cancel(struct usb_function *f);

#endif
