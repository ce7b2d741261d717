/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drop.c - make the host drop its transport on the function without
 * letting go of ep0 (which would unbind the whole gadget, and the relay
 * could not bind it again): what a real device's host sees when its adbd
 * restarts, done with the function's own endpoint files.
 *
 * f_fs halts an endpoint on a read against its direction. The host's adb
 * always has a bulk IN read pending; halted, that read fails (a stall,
 * EPIPE for adb's usbfs backend), adb kicks the transport, and on its next
 * scan of the bus (about every second) finds the device, still attached,
 * again: a new transport, a new CNXN on bulk OUT. Nothing clears the halt
 * on the host's side (adb sends no CLEAR_FEATURE), so the function clears
 * it itself once the host's read has failed and before that next scan:
 * DROP_CLEAR_MS after the halt. In between no IN transfer is submitted
 * (usb_in_claim gives none), and a UDC refuses to halt an endpoint with
 * transfers queued, so the IN transfers in flight are cancelled first.
 * Other functions of the gadget are not touched: no reset, no
 * reconfiguration, no DISABLE or ENABLE.
 *
 * Measured in the VM lab (dummy_hcd, adb 29 and 34, usbfs backend): the
 * transport gone within 50-170 ms, a new one registered within 0.6 s.
 */
#include "usb/usb.h"
#include "usb/usb_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/usb/functionfs.h>

#define DROP_RETRY_MS 10      /* waiting for cancelled IN transfers to come back */
#define DROP_TRIES 100        /* ... at most this often, then give up */
#define DROP_CLEAR_MS 200     /* halt held until the host's read has failed */

static void on_drop_timer(uv_timer_t *t);

static void drop_done(struct usb_function *f)
{
	f->drop = USB_DROP_NONE;
	/* IN transfers may go out again: the current user may have waited */
	if (f->on_in != NULL && f->io_data != NULL)
		f->on_in(f, 0);
}

static void halt_in(struct usb_function *f)
{
	uint8_t byte;
	ssize_t n = read(f->ep_in, &byte, sizeof(byte));

	if (n < 0 && errno == EBADMSG) {
		f->drop = USB_DROP_HALTED;
		f->st.drops++;
		usb_log(f, 0, "bulk IN halted: the host drops its transport");
		uv_timer_start(&f->drop_timer, on_drop_timer, DROP_CLEAR_MS, 0);
		return;
	}
	if (n < 0 && errno == EAGAIN && ++f->drop_tries < DROP_TRIES) {
		uv_timer_start(&f->drop_timer, on_drop_timer, DROP_RETRY_MS, 0);
		return;
	}
	usb_log(f, 1, "cannot halt bulk IN to make the host drop its transport: %s",
		n < 0 ? strerror(errno) : "the read did not halt it");
	drop_done(f);
}

static void on_drop_timer(uv_timer_t *t)
{
	struct usb_function *f = t->data;

	if (f->drop == USB_DROP_DRAINING) {
		if (f->in_inflight > 0 && ++f->drop_tries < DROP_TRIES) {
			uv_timer_start(&f->drop_timer, on_drop_timer, DROP_RETRY_MS, 0);
			return;
		}
		halt_in(f);
		return;
	}
	if (f->drop == USB_DROP_HALTED) {
		if (ioctl(f->ep_in, FUNCTIONFS_CLEAR_HALT) != 0)
			usb_log(f, 1, "clearing the halt of bulk IN: %s", strerror(errno));
		drop_done(f);
	}
}

int usb_drop_host(struct usb_function *f)
{
	if (f->state != USB_ONLINE)
		return -ENOTCONN;
	if (f->drop != USB_DROP_NONE)
		return 0;
	f->drop = USB_DROP_DRAINING;
	f->drop_tries = 0;
	usb_cancel_in(f);
	uv_timer_start(&f->drop_timer, on_drop_timer, 0, 0);
	return 0;
}

void usb_drop_init(struct usb_function *f)
{
	uv_timer_init(f->loop, &f->drop_timer);
	f->drop_timer.data = f;
	f->drop = USB_DROP_NONE;
}
