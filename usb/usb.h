/* SPDX-License-Identifier: Apache-2.0 */
/*
 * usb.h - one FunctionFS adb function on the libuv loop: ep0 (descriptors,
 * strings, events; kept open for the life of the function, because closing
 * it unbinds the whole gadget), and bulk transfers with Linux AIO and an
 * eventfd, several in flight each way, no thread per endpoint.
 *
 * Reads deliver whatever one OUT transfer carried (a header, a payload or a
 * part of one). Writes are whole transfers the caller fills in a claimed
 * bounce buffer of USB_XFER_MAX bytes (16 KiB, a multiple of every speed's
 * wMaxPacketSize) and commits; the caller decides the framing. The device
 * never sends a zero-length packet.
 */
#ifndef USB_USB_H
#define USB_USB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include <linux/aio_abi.h>

#define USB_OUT_XFERS 4
#define USB_IN_XFERS 8
#define USB_XFER_MAX (16 * 1024)
#define USB_PATH_MAX 108

enum usb_state {
	USB_CLOSED,     /* ep0 not open */
	USB_READY,      /* descriptors written: the gadget may be bound */
	USB_ONLINE,     /* host configured us (ENABLE): bulk I/O possible */
};

struct usb_function;

/* State changes: READY once after open, then ONLINE / READY (offline) as
 * the host enables and disables the function; also BIND and UNBIND (the
 * gadget bound to a UDC or let go of it: f->bound), with the state as it
 * was. `why` names the event. */
typedef void (*usb_state_cb)(struct usb_function *f, enum usb_state state, const char *why);
/* OUT buffers: fill buf (len 0 = none available now). */
typedef void (*usb_alloc_cb)(struct usb_function *f, uv_buf_t *buf);
/* One OUT transfer completed: nread > 0 bytes, or a uv error (buffers
 * are always handed back, UV_ECANCELED when reading was stopped). */
typedef void (*usb_read_cb)(struct usb_function *f, ssize_t nread, const uv_buf_t *buf);

/* An IN transfer finished (its slot is free again): 0, or a uv error. */
typedef void (*usb_in_cb)(struct usb_function *f, int status);

struct usb_xfer {
	struct iocb cb;
	struct usb_function *f;
	int busy;
	/* OUT */
	uv_buf_t buf;
	long res;                       /* result, until delivered in order */
	/* IN */
	uint8_t *bounce;
	size_t len;
};

struct usb_stats {
	uint64_t enables, disables, binds, unbinds, setups, halts;
	uint64_t drops;                 /* usb_drop_host() halts */
	uint64_t out_xfers, in_xfers;
};

struct usb_function {
	uv_loop_t *loop;
	char dir[USB_PATH_MAX];
	char name[32];                  /* for log lines */
	enum usb_state state;
	int bound;                      /* the gadget is bound to a UDC */
	int ep0, ep_out, ep_in;
	uv_poll_t ep0_poll;
	int evfd;
	uv_poll_t aio_poll;
	aio_context_t aio;
	int handles_open;

	usb_state_cb on_state;
	usb_alloc_cb on_alloc;
	usb_read_cb on_read;
	void *data;                     /* for on_state: the function's owner */
	void *io_data;                  /* for I/O callbacks: the current user */

	int reading;
	struct usb_xfer out[USB_OUT_XFERS];
	unsigned out_next;              /* next slot to submit (in order) */
	unsigned out_inflight;
	struct usb_xfer in[USB_IN_XFERS];
	unsigned in_next;               /* oldest in-flight slot */
	unsigned in_inflight;
	usb_in_cb on_in;

	/* usb_drop_host(): IN transfers cancelled, then bulk IN halted until
	 * the host has dropped its transport (drop.c) */
	enum { USB_DROP_NONE, USB_DROP_DRAINING, USB_DROP_HALTED } drop;
	unsigned drop_tries;
	uv_timer_t drop_timer;

	void (*close_cb)(struct usb_function *f);
	struct usb_stats st;
};

/* Open DIR/ep0, write descriptors and strings, open the bulk endpoints and
 * start serving ep0 events. 0, or a negative errno with ERR set. */
int usb_function_open(struct usb_function *f, uv_loop_t *loop, const char *dir,
		      const char *name, usb_state_cb on_state, void *data,
		      char *err, size_t errlen);
/* Close everything (the gadget unbinds); close_cb once all is released. */
void usb_function_close(struct usb_function *f, void (*close_cb)(struct usb_function *f));

/* Keep up to USB_OUT_XFERS reads in flight while online. */
int usb_read_start(struct usb_function *f, usb_alloc_cb alloc, usb_read_cb read);
/* Submit no more reads; in-flight ones complete normally. */
void usb_read_stop(struct usb_function *f);
/* Cancel every in-flight transfer: reads come back UV_ECANCELED, writes
 * report through their usb_in_cb; from the loop, soon after. usb_idle()
 * says when none is left. */
void usb_cancel_all(struct usb_function *f);
/* Make the host drop its transport on this function, as it does when a
 * device's adbd closes FunctionFS, without letting go of ep0 (which would
 * unbind the whole gadget): drop.c. Every transfer in flight is
 * cancelled and no new one starts until the host's read has failed. 0 (under way), or -ENOTCONN
 * when the host has not enabled the function. */
int usb_drop_host(struct usb_function *f);
/* Is a drop under way? The owner starts no reads until it is done. */
int usb_dropping(const struct usb_function *f);
int usb_idle(const struct usb_function *f);

/* IN: set the completion callback, claim the next free bounce buffer
 * (NULL if all USB_IN_XFERS are in flight or we are not online), fill up
 * to USB_XFER_MAX bytes and commit them as one transfer (len > 0). */
void usb_in_set_cb(struct usb_function *f, usb_in_cb cb);
uint8_t *usb_in_claim(struct usb_function *f);
int usb_in_commit(struct usb_function *f, size_t len);

const char *usb_state_name(enum usb_state s);

/* Where usb/ sends its log lines (none by default); warn: a problem, else
 * an event worth a line; cause: the line's format, the same for every line
 * of one kind (a USB host can repeat some at will: rate-limit by it). */
typedef void (*usb_log_fn)(struct usb_function *f, int warn, const void *cause, const char *msg);
void usb_set_log(usb_log_fn fn);

#endif
