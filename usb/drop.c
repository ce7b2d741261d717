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
 * DROP_CLEAR_MS after the halt. Every transfer in flight is cancelled
 * first, and the halt waits until all have come back: a UDC refuses to
 * halt an endpoint with transfers queued, and an OUT read left queued
 * would take the CNXN of the host's next transport into the session that
 * is ending, where it would be lost (the host then waits for an answer
 * for ever). Until the halt is cleared no transfer starts (usb_in_claim
 * gives none; the owner waits for usb_dropping() to be 0 before it reads
 * again).
 * Other functions of the gadget are not touched: no reset, no
 * reconfiguration, no DISABLE or ENABLE.
 *
 * A drop ends with the connection it was for: DISABLE, UNBIND or a new
 * ENABLE cancel it (usb_drop_cancel), so a halt never lands on the host's
 * next connection. f_fs reports EBADMSG for the halting read whether or not
 * the UDC took the halt: a host that keeps its transport anyway sends its
 * next frames without a CNXN, and the owner drops it again then.
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

	if (f->state != USB_ONLINE) {
		/* the host disabled the function meanwhile: its transport is gone */
		if (f->drop == USB_DROP_HALTED)
			ioctl(f->ep_in, FUNCTIONFS_CLEAR_HALT);
		drop_done(f);
		return;
	}
	if (f->drop == USB_DROP_DRAINING) {
		if (usb_idle(f)) {
			halt_in(f);
		} else if (++f->drop_tries < DROP_TRIES) {
			uv_timer_start(&f->drop_timer, on_drop_timer, DROP_RETRY_MS, 0);
		} else {
			/* never halt under a transfer: it would go to the host's
			 * next transport */
			usb_log(f, 1, "transfers did not come back within %d ms: the host "
				"keeps its transport", DROP_RETRY_MS * DROP_TRIES);
			drop_done(f);
		}
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
	usb_cancel_all(f);
	uv_timer_start(&f->drop_timer, on_drop_timer, 0, 0);
	return 0;
}

void usb_drop_cancel(struct usb_function *f)
{
	if (f->drop == USB_DROP_NONE)
		return;
	uv_timer_stop(&f->drop_timer);
	if (f->drop == USB_DROP_HALTED)
		ioctl(f->ep_in, FUNCTIONFS_CLEAR_HALT);
	f->drop = USB_DROP_NONE;
}

int usb_dropping(const struct usb_function *f)
{
	return f->drop != USB_DROP_NONE;
}

void usb_drop_init(struct usb_function *f)
{
	uv_timer_init(f->loop, &f->drop_timer);
	f->drop_timer.data = f;
	f->drop = USB_DROP_NONE;
}
