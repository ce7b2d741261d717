/* SPDX-License-Identifier: Apache-2.0 */
/*
 * function.c - a FunctionFS adb function's control side: open ep0, write
 * descriptors and strings, open the bulk endpoints, serve ep0 events
 * (BIND, UNBIND, ENABLE, DISABLE, SETUP, SUSPEND, RESUME) from the loop.
 * ep0 stays open until usb_function_close(): closing it would unregister
 * the whole gadget, other functions included.
 */
#include "usb/usb.h"
#include "usb/ffs_desc.h"
#include "usb/usb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *usb_state_name(enum usb_state s)
{
	switch (s) {
	case USB_CLOSED: return "closed";
	case USB_READY:  return "ready";
	case USB_ONLINE: return "online";
	}
	return "?";
}

static void set_state(struct usb_function *f, enum usb_state st, const char *why)
{
	if (f->state == st)
		return;
	f->state = st;
	if (f->on_state != NULL)
		f->on_state(f, st, why);
}

/* BIND and UNBIND leave the state as it is: the owner hears of them all
 * the same (f->bound) */
static void report_bound(struct usb_function *f, const char *why)
{
	if (f->on_state != NULL)
		f->on_state(f, f->state, why);
}

static void go_offline(struct usb_function *f, const char *why)
{
	usb_drop_cancel(f);
	if (f->state != USB_ONLINE)
		return;
	usb_cancel_all(f);
	set_state(f, USB_READY, why);
}

/* Answer a control request addressed to the function. Device-to-host
 * requests get an empty reply; host-to-device data is read and dropped. */
static void handle_setup(struct usb_function *f, const struct usb_ctrlrequest *req)
{
	uint8_t buf[256];
	uint16_t len = req->wLength;
	ssize_t n;

	f->st.setups++;
	if (req->bRequestType & USB_DIR_IN)
		n = write(f->ep0, buf, 0);
	else
		n = read(f->ep0, buf, len < sizeof(buf) ? len : sizeof(buf));
	if (n < 0 && errno != EAGAIN)
		usb_log(f, 1, "setup 0x%02x/0x%02x: %s", req->bRequestType, req->bRequest,
			strerror(errno));
}

static void handle_event(struct usb_function *f, const struct usb_functionfs_event *ev)
{
	switch (ev->type) {
	case FUNCTIONFS_BIND:
		f->st.binds++;
		f->bound = 1;
		usb_log(f, 0, "bound to a UDC");
		report_bound(f, "bound to a UDC");
		break;
	case FUNCTIONFS_UNBIND:
		f->st.unbinds++;
		f->bound = 0;
		if (f->state == USB_ONLINE)
			go_offline(f, "unbound");
		else
			report_bound(f, "unbound");
		break;
	case FUNCTIONFS_ENABLE:
		f->st.enables++;
		go_offline(f, "re-enabled");
		set_state(f, USB_ONLINE, "enabled by the host");
		break;
	case FUNCTIONFS_DISABLE:
		f->st.disables++;
		go_offline(f, "disabled by the host");
		break;
	case FUNCTIONFS_SETUP:
		handle_setup(f, &ev->u.setup);
		break;
	case FUNCTIONFS_SUSPEND:
	case FUNCTIONFS_RESUME:
		break;
	default:
		usb_log(f, 1, "unknown ep0 event %u", ev->type);
	}
}

static void on_ep0(uv_poll_t *p, int status, int events)
{
	struct usb_function *f = p->data;
	struct usb_functionfs_event ev[4];
	ssize_t n;

	(void)events;
	if (status < 0) {
		usb_log(f, 1, "ep0 poll: %s", uv_strerror(status));
		return;
	}
	n = read(f->ep0, ev, sizeof(ev));
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			usb_log(f, 1, "ep0 read: %s", strerror(errno));
		return;
	}
	for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++)
		handle_event(f, &ev[i]);
}

static int open_in(const char *dir, const char *file, int flags, char *err, size_t errlen)
{
	char path[USB_PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	}
	return fd;
}

static int write_blob(int fd, const void *p, size_t len, const char *what, char *err, size_t errlen)
{
	ssize_t n = write(fd, p, len);

	if (n == (ssize_t)len)
		return 0;
	snprintf(err, errlen, "writing %s to ep0: %s", what,
		 n < 0 ? strerror(errno) : "short write");
	return n < 0 ? -errno : -EIO;
}

int usb_function_open(struct usb_function *f, uv_loop_t *loop, const char *dir,
		      const char *name, usb_state_cb on_state, void *data,
		      char *err, size_t errlen)
{
	uint8_t desc[FFS_DESC_MAX], strs[FFS_STRINGS_MAX];
	int rc;

	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->ep0 = f->ep_out = f->ep_in = f->evfd = -1;
	f->on_state = on_state;
	f->data = data;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	snprintf(f->name, sizeof(f->name), "%s", name);

	f->ep0 = open_in(dir, "ep0", O_RDWR, err, errlen);
	if (f->ep0 < 0)
		return f->ep0;
	rc = write_blob(f->ep0, desc, ffs_build_descriptors(desc), "descriptors", err, errlen);
	if (rc == 0)
		rc = write_blob(f->ep0, strs, ffs_build_strings(strs), "strings", err, errlen);
	if (rc == 0 && (f->ep_out = open_in(dir, "ep1", O_RDWR | O_NONBLOCK, err, errlen)) < 0)
		rc = f->ep_out;
	if (rc == 0 && (f->ep_in = open_in(dir, "ep2", O_RDWR | O_NONBLOCK, err, errlen)) < 0)
		rc = f->ep_in;
	if (rc == 0 && (rc = usb_bulk_init(f)) != 0)
		snprintf(err, errlen, "%s: AIO set-up: %s", dir, strerror(-rc));
	if (rc != 0) {
		if (f->ep_in >= 0)
			close(f->ep_in);
		if (f->ep_out >= 0)
			close(f->ep_out);
		close(f->ep0);
		f->ep0 = f->ep_out = f->ep_in = -1;
		return rc;
	}
	fcntl(f->ep0, F_SETFL, fcntl(f->ep0, F_GETFL) | O_NONBLOCK);
	uv_poll_init(loop, &f->ep0_poll, f->ep0);
	f->ep0_poll.data = f;
	uv_poll_start(&f->ep0_poll, UV_READABLE, on_ep0);
	f->handles_open++;
	usb_drop_init(f);
	f->handles_open++;
	set_state(f, USB_READY, "descriptors written");
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct usb_function *f = h->data;

	if (--f->handles_open > 0)
		return;
	usb_bulk_destroy(f);
	close(f->ep_in);
	close(f->ep_out);
	close(f->ep0);
	f->ep0 = f->ep_out = f->ep_in = -1;
	if (f->close_cb != NULL)
		f->close_cb(f);
}

void usb_function_close(struct usb_function *f, void (*close_cb)(struct usb_function *f))
{
	f->close_cb = close_cb;
	f->on_state = NULL;
	usb_cancel_all(f);
	f->state = USB_CLOSED;
	f->bound = 0;
	uv_close((uv_handle_t *)&f->ep0_poll, on_handle_closed);
	uv_close((uv_handle_t *)&f->aio_poll, on_handle_closed);
	uv_close((uv_handle_t *)&f->drop_timer, on_handle_closed);
}
