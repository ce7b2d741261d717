/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adb-usbprobe.c - test equipment that plays the PC at the USB level
 * (libusb) against an adb function, to exercise framing the adb client
 * never produces: a header split over two transfers, header and payload
 * merged in one, payloads of whole packets followed by a zero-length
 * packet (and the check that the device never sends one back), cleared
 * halts, garbage, and a bus reset in the middle of a transfer.
 *
 *   adb-usbprobe SERIAL      run every case, "case NAME: ok" per case
 *
 * Exit status 0 when every case passed; the first failure is printed.
 */
#include <errno.h>
#include <libusb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adbproto/adbproto.h"

#define TIMEOUT_MS 5000

struct dev {
	libusb_context *ctx;
	libusb_device_handle *h;
	const char *serial;
	int iface;
	uint8_t ep_in, ep_out;
	uint16_t maxpacket;
	uint32_t next_local;
};

enum send_mode { SEND_NORMAL, SEND_SPLIT_HEADER, SEND_MERGED };

static const char *current_case = "setup";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "case %s: FAILED: ", current_case);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- finding and claiming the adb interface ---- */

static int find_adb_interface(libusb_device *d, struct dev *out)
{
	struct libusb_config_descriptor *cfg;
	int found = 0;

	if (libusb_get_active_config_descriptor(d, &cfg) != 0)
		return 0;
	for (int i = 0; i < cfg->bNumInterfaces && !found; i++) {
		const struct libusb_interface_descriptor *a = &cfg->interface[i].altsetting[0];

		if (a->bInterfaceClass != 0xff || a->bInterfaceSubClass != 0x42 ||
		    a->bInterfaceProtocol != 0x01 || a->bNumEndpoints != 2)
			continue;
		out->iface = a->bInterfaceNumber;
		for (int e = 0; e < 2; e++) {
			const struct libusb_endpoint_descriptor *ep = &a->endpoint[e];

			if (ep->bEndpointAddress & LIBUSB_ENDPOINT_IN)
				out->ep_in = ep->bEndpointAddress;
			else
				out->ep_out = ep->bEndpointAddress;
			out->maxpacket = ep->wMaxPacketSize;
		}
		found = 1;
	}
	libusb_free_config_descriptor(cfg);
	return found;
}

static int try_open(struct dev *d)
{
	libusb_device **list;
	ssize_t n = libusb_get_device_list(d->ctx, &list);
	int ok = 0;

	for (ssize_t i = 0; i < n && !ok; i++) {
		struct libusb_device_descriptor desc;
		libusb_device_handle *h;
		unsigned char sn[128];

		if (libusb_get_device_descriptor(list[i], &desc) != 0 || desc.iSerialNumber == 0)
			continue;
		if (libusb_open(list[i], &h) != 0)
			continue;
		if (libusb_get_string_descriptor_ascii(h, desc.iSerialNumber, sn, sizeof(sn)) > 0 &&
		    strcmp((char *)sn, d->serial) == 0 && find_adb_interface(list[i], d) &&
		    libusb_claim_interface(h, d->iface) == 0) {
			d->h = h;
			ok = 1;
		} else {
			libusb_close(h);
		}
	}
	libusb_free_device_list(list, 1);
	return ok;
}

static void open_dev(struct dev *d, unsigned wait_ms)
{
	for (unsigned waited = 0; !try_open(d); waited += 100) {
		if (waited >= wait_ms)
			die("no claimable adb interface on a device with serial %s", d->serial);
		sleep_ms(100);
	}
}

static void close_dev(struct dev *d)
{
	if (d->h == NULL)
		return;
	libusb_release_interface(d->h, d->iface);
	libusb_close(d->h);
	d->h = NULL;
}

/* ---- transfers ---- */

static void send_raw(struct dev *d, const void *buf, int len)
{
	int done = 0, rc;

	rc = libusb_bulk_transfer(d->h, d->ep_out, (unsigned char *)buf, len, &done, TIMEOUT_MS);
	if (rc != 0 || done != len)
		die("OUT transfer of %d bytes: %s (%d sent)", len, libusb_error_name(rc), done);
}

/* One IN transfer of up to `len` bytes: returns what arrived. */
static int recv_some(struct dev *d, void *buf, int len, unsigned timeout_ms)
{
	int got = 0, rc;

	rc = libusb_bulk_transfer(d->h, d->ep_in, buf, len, &got, timeout_ms);
	if (rc != 0)
		die("IN transfer of %d bytes: %s", len, libusb_error_name(rc));
	return got;
}

static void send_frame(struct dev *d, uint32_t cmd, uint32_t a0, uint32_t a1, const void *data,
		       uint32_t len, enum send_mode mode)
{
	uint8_t buf[ADB_HEADER_SIZE + 8192];
	struct adb_header h;

	if (len > sizeof(buf) - ADB_HEADER_SIZE)
		die("frame too large for the probe");
	adb_header_init(&h, cmd, a0, a1, len, adb_checksum(0, data, len));
	adb_header_encode(&h, buf);
	if (mode == SEND_MERGED) {
		memcpy(buf + ADB_HEADER_SIZE, data, len);
		send_raw(d, buf, (int)(ADB_HEADER_SIZE + len));
		return;
	}
	if (mode == SEND_SPLIT_HEADER) {
		send_raw(d, buf, 10);
		send_raw(d, buf + 10, ADB_HEADER_SIZE - 10);
	} else {
		send_raw(d, buf, ADB_HEADER_SIZE);
	}
	if (len > 0) {
		send_raw(d, data, (int)len);
		if (len % d->maxpacket == 0)
			send_raw(d, NULL, 0);   /* the host ends whole packets with a ZLP */
	}
}

/* Read one frame the way the adb host does: exactly 24 bytes of header in
 * one transfer, then the payload. */
static void recv_frame(struct dev *d, struct adb_header *h, uint8_t *payload, uint32_t cap,
		       unsigned timeout_ms)
{
	uint8_t raw[ADB_HEADER_SIZE];
	int n = recv_some(d, raw, sizeof(raw), timeout_ms);
	uint32_t got = 0;

	if (n == 0)
		die("zero-length packet from the device where a header was due");
	if (n != ADB_HEADER_SIZE)
		die("header transfer of %d bytes, expected 24", n);
	adb_header_decode(raw, h);
	if (adb_header_validate(h, ADB_MAX_PAYLOAD) != ADB_OK)
		die("bad header from the device: %s", adb_strerror(adb_header_validate(h, ADB_MAX_PAYLOAD)));
	if (h->data_length > cap)
		die("%s payload of %u bytes, more than expected", adb_command_name(h->command),
		    h->data_length);
	while (got < h->data_length) {
		n = recv_some(d, payload + got, (int)(h->data_length - got), TIMEOUT_MS);
		if (n == 0)
			die("zero-length packet inside a %u-byte payload", h->data_length);
		got += (uint32_t)n;
	}
}

/* ---- adb exchanges ---- */

static void connect_adb(struct dev *d, enum send_mode mode)
{
	static const char banner[] = "host::features=cmd";
	uint8_t payload[4096];
	struct adb_header h;

	send_frame(d, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner) - 1, mode);
	/* frames of an earlier session (CLSE of old streams) may come first */
	for (int i = 0; i < 64; i++) {
		recv_frame(d, &h, payload, sizeof(payload), TIMEOUT_MS);
		if (h.command == ADB_CMD_CNXN) {
			if (h.data_length < 7 || memcmp(payload, "device:", 7) != 0)
				die("device CNXN banner does not start with device:");
			return;
		}
	}
	die("no CNXN answer");
}

/* Run a shell command, collecting its output (up to cap bytes). */
static size_t shell(struct dev *d, const char *service, size_t svc_len, enum send_mode mode,
		    uint8_t *out, size_t cap)
{
	static uint8_t payload[ADB_MAX_PAYLOAD];
	uint32_t local = ++d->next_local, remote = 0;
	struct adb_header h;
	size_t n = 0;

	send_frame(d, ADB_CMD_OPEN, local, 0, service, (uint32_t)svc_len, mode);
	for (;;) {
		recv_frame(d, &h, payload, sizeof(payload), TIMEOUT_MS);
		if (h.arg1 != local)
			continue;            /* another stream's leftovers */
		if (h.command == ADB_CMD_OKAY) {
			remote = h.arg0;
		} else if (h.command == ADB_CMD_WRTE) {
			if (n + h.data_length > cap)
				die("shell output longer than %zu bytes", cap);
			memcpy(out + n, payload, h.data_length);
			n += h.data_length;
			send_frame(d, ADB_CMD_OKAY, local, h.arg0, NULL, 0, SEND_NORMAL);
		} else if (h.command == ADB_CMD_CLSE) {
			if (remote == 0)
				die("OPEN %.*s refused", (int)svc_len, service);
			return n;
		}
	}
}

static void expect_echo(struct dev *d, const char *word, enum send_mode mode)
{
	char svc[128];
	uint8_t out[256];
	int len = snprintf(svc, sizeof(svc), "shell:echo %s", word) + 1;
	size_t n = shell(d, svc, (size_t)len, mode, out, sizeof(out));

	if (n != strlen(word) + 1 || memcmp(out, word, strlen(word)) != 0)
		die("echo %s printed %zu bytes '%.*s'", word, n, (int)n, (char *)out);
}

/* ---- the cases ---- */

static void case_split_header(struct dev *d)
{
	connect_adb(d, SEND_SPLIT_HEADER);
	expect_echo(d, "split", SEND_SPLIT_HEADER);
}

static void case_merged(struct dev *d)
{
	connect_adb(d, SEND_MERGED);
	expect_echo(d, "merged", SEND_MERGED);
}

/* An OPEN payload of exactly two packets (then a ZLP), and 4096 bytes of
 * output: whole packets from the device, which must not add a ZLP. */
static void case_whole_packets(struct dev *d)
{
	static uint8_t out[8192];
	char svc[4096];
	size_t len = 2u * d->maxpacket;
	size_t n;

	if (len > sizeof(svc))
		die("maxpacket %u too large", d->maxpacket);
	memset(svc, ' ', len);
	memcpy(svc, "shell:printf %4096s x | tr ' ' a", 32);
	svc[len - 1] = '\0';
	connect_adb(d, SEND_NORMAL);
	n = shell(d, svc, len, SEND_NORMAL, out, sizeof(out));
	if (n != 4096 || out[0] != 'a' || out[4095] != 'x')
		die("printf of 4096 bytes gave %zu bytes", n);
	expect_echo(d, "after-whole-packets", SEND_NORMAL);
}

static void case_halt(struct dev *d)
{
	int rc;

	if ((rc = libusb_clear_halt(d->h, d->ep_out)) != 0 ||
	    (rc = libusb_clear_halt(d->h, d->ep_in)) != 0)
		die("clear halt: %s", libusb_error_name(rc));
	connect_adb(d, SEND_NORMAL);
	expect_echo(d, "after-halt", SEND_NORMAL);
}

static void case_garbage(struct dev *d)
{
	uint8_t junk[ADB_HEADER_SIZE];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0x5a ^ i * 37);
	send_raw(d, junk, sizeof(junk));
	sleep_ms(500);        /* the relay drops that session and starts a new one */
	connect_adb(d, SEND_NORMAL);
	expect_echo(d, "after-garbage", SEND_NORMAL);
}

static void case_reset_mid_transfer(struct dev *d)
{
	static const char svc[] = "shell:head -c 20000000 /dev/zero";
	uint8_t buf[16384];
	struct adb_header h;
	int rc;

	connect_adb(d, SEND_NORMAL);
	send_frame(d, ADB_CMD_OPEN, ++d->next_local, 0, svc, sizeof(svc), SEND_NORMAL);
	recv_frame(d, &h, buf, sizeof(buf), TIMEOUT_MS);     /* OKAY */
	recv_some(d, buf, ADB_HEADER_SIZE, TIMEOUT_MS);      /* a WRTE header */
	recv_some(d, buf, 512, TIMEOUT_MS);                  /* part of its payload */
	rc = libusb_reset_device(d->h);
	if (rc != 0 && rc != LIBUSB_ERROR_NOT_FOUND)
		die("reset: %s", libusb_error_name(rc));
	close_dev(d);
	open_dev(d, 10000);
	connect_adb(d, SEND_NORMAL);
	expect_echo(d, "after-reset", SEND_NORMAL);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*run)(struct dev *d);
	} cases[] = {
		{ "split-header", case_split_header },
		{ "merged", case_merged },
		{ "whole-packets", case_whole_packets },
		{ "halt", case_halt },
		{ "garbage", case_garbage },
		{ "reset-mid-transfer", case_reset_mid_transfer },
	};
	struct dev d = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: adb-usbprobe SERIAL\n");
		return 2;
	}
	d.serial = argv[1];
	if (libusb_init(&d.ctx) != 0)
		die("libusb_init failed");
	open_dev(&d, 10000);
	printf("device %s: interface %d, endpoints 0x%02x/0x%02x, max packet %u\n", d.serial,
	       d.iface, d.ep_out, d.ep_in, d.maxpacket);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		current_case = cases[i].name;
		cases[i].run(&d);
		printf("case %s: ok\n", cases[i].name);
		fflush(stdout);
	}
	close_dev(&d);
	libusb_exit(d.ctx);
	return 0;
}
