/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c - adbd-relay.conf parsing: a full file, defaults, every
 * rejected form with its file:line message, the virtio-hybrid directive,
 * probe-mode (global and per route), tcp targets and the spec parsers;
 * the file itself: its size, NUL bytes, a read error.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/conf.h"
#include "tests/unit/unit.h"

static struct relay_config cfg;
static char err[512];

static int parse(const char *text)
{
	config_init(&cfg);
	err[0] = '\0';
	return config_parse(&cfg, text, "test.conf", err, sizeof(err));
}

static void teardown(void)
{
	config_free(&cfg);
}

START_TEST(full_file)
{
	ck_assert_int_eq(parse("# adbd-relay\n"
			       "control /run/x.sock\n"
			       "control-mode 0660\n"
			       "log-level debug\n"
			       "buffer 256K\n"
			       "probe-mode adb\n"
			       "route android {\n"
			       "    front tcp:127.0.0.1:6520   # comment\n"
			       "    target vsock:3:5555\n"
			       "    reconnect 50ms 2s\n"
			       "}\n"
			       "route fc {\n"
			       "\tfront tcp:[::1]:6521\n"
			       "\ttarget hybrid:/run/fc/v.sock:5555\n"
			       "\tbuffer 2M\n"
			       "\tmax-clients 2\n"
			       "\tmax-streams 64\n"
			       "\tprobe-interval 0\n"
			       "\tconnect-timeout 1s\n"
			       "\tprobe-mode connect\n"
			       "}\n"), 0);
	ck_assert_str_eq(cfg.control_path, "/run/x.sock");
	ck_assert_int_eq(cfg.control_mode, 0660);
	ck_assert_int_eq(cfg.log_level, LOG_LVL_DEBUG);
	ck_assert_uint_eq(cfg.nroutes, 2);
	ck_assert_str_eq(cfg.routes[0].name, "android");
	ck_assert_uint_eq(cfg.routes[0].buffer, 256 * 1024);
	ck_assert_uint_eq(cfg.routes[0].front.port, 6520);
	ck_assert_int_eq(cfg.routes[0].target.kind, VSOCK_KERNEL);
	ck_assert_uint_eq(cfg.routes[0].target.cid, 3);
	ck_assert_uint_eq(cfg.routes[0].target.port, 5555);
	ck_assert_uint_eq(cfg.routes[0].reconnect_min_ms, 50);
	ck_assert_uint_eq(cfg.routes[0].reconnect_max_ms, 2000);
	ck_assert_str_eq(cfg.routes[1].front.host, "::1");
	ck_assert_int_eq(cfg.routes[1].target.kind, VSOCK_HYBRID);
	ck_assert_str_eq(cfg.routes[1].target.path, "/run/fc/v.sock");
	ck_assert_uint_eq(cfg.routes[1].buffer, 2 * 1024 * 1024);
	ck_assert_uint_eq(cfg.routes[1].max_clients, 2);
	ck_assert_uint_eq(cfg.routes[1].max_streams, 64);
	ck_assert_uint_eq(cfg.routes[1].probe_interval_ms, 0);
	ck_assert_uint_eq(cfg.routes[1].connect_timeout_ms, 1000);
	ck_assert_int_eq(cfg.defaults.probe_mode, PROBE_ADB);
	ck_assert_int_eq(cfg.routes[0].probe_mode, PROBE_ADB);      /* the global default */
	ck_assert_int_eq(cfg.routes[1].probe_mode, PROBE_CONNECT);  /* overridden */
}
END_TEST

START_TEST(defaults_apply)
{
	ck_assert_int_eq(parse("route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"), 0);
	ck_assert_uint_eq(cfg.routes[0].buffer, 1024 * 1024);
	ck_assert_uint_eq(cfg.routes[0].reconnect_min_ms, 100);
	ck_assert_uint_eq(cfg.routes[0].reconnect_max_ms, 1000);
	ck_assert_uint_eq(cfg.routes[0].max_clients, 4);
	ck_assert_uint_eq(cfg.routes[0].probe_interval_ms, 2000);
	ck_assert_int_eq(cfg.routes[0].probe_mode, PROBE_CONNECT);
	ck_assert_str_eq(cfg.control_path, "/run/adbd-relay/control.sock");
	ck_assert_int_eq(cfg.control_mode, 0600);
}
END_TEST

/* routes with virtio targets on /run/vm/vhost.sock (lines 1-4) and
 * /run/vm2.sock (lines 5-8) */
#define VROUTE "route v {\nfront tcp:127.0.0.1:1\ntarget virtio:/run/vm/vhost.sock:3:5555\n}\n"
#define VROUTE2 "route w {\nfront tcp:127.0.0.1:2\ntarget virtio:/run/vm2.sock:4:5555\n}\n"

START_TEST(virtio_hybrid_accepted)
{
	ck_assert_int_eq(parse("virtio-hybrid /run/vm/vhost.sock /run/vm/hybrid.sock\n"
			       VROUTE VROUTE2
			       "virtio-hybrid /run/vm2.sock /run/vm2.hybrid   # after the routes\n"),
			 0);
	ck_assert_uint_eq(cfg.nroutes, 2);
	ck_assert_uint_eq(cfg.nhybrid, 2);
	ck_assert_str_eq(cfg.hybrid[0].socket, "/run/vm/vhost.sock");
	ck_assert_str_eq(cfg.hybrid[0].path, "/run/vm/hybrid.sock");
	ck_assert_str_eq(cfg.hybrid[1].socket, "/run/vm2.sock");
	ck_assert_str_eq(cfg.hybrid[1].path, "/run/vm2.hybrid");
	config_free(&cfg);
	ck_assert_uint_eq(cfg.nhybrid, 0);
	ck_assert_int_eq(parse(VROUTE), 0);          /* the directive is optional */
	ck_assert_uint_eq(cfg.nhybrid, 0);
}
END_TEST

START_TEST(virtio_hybrid_path_too_long)
{
	char text[512], longpath[VSOCK_PATH_MAX + 1];

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(text, sizeof(text), VROUTE "virtio-hybrid /run/vm/vhost.sock %s\n", longpath);
	ck_assert_int_eq(parse(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:5: virtio-hybrid takes SOCKET PATH"));
	/* 104 bytes: fits sun_path, not with the ".new" it is made under */
	longpath[VSOCK_LISTEN_PATH_MAX] = '\0';
	snprintf(text, sizeof(text), VROUTE "virtio-hybrid /run/vm/vhost.sock %s\n", longpath);
	ck_assert_int_eq(parse(text), -1);
	longpath[VSOCK_LISTEN_PATH_MAX - 1] = '\0';  /* 103 bytes */
	snprintf(text, sizeof(text), VROUTE "virtio-hybrid /run/vm/vhost.sock %s\n", longpath);
	ck_assert_int_eq(parse(text), 0);
}
END_TEST

/* No two listening sockets at one path, nor one at another's .new. */
START_TEST(listening_paths_do_not_collide)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{ "control /run/v.sock\n", "/run/v.sock is both the control socket and route v's "
		  "vhost-user socket" },
		{ "control /run/v.sock.new\n", "/run/v.sock.new (the control socket) is where "
		  "route v's vhost-user socket is made: /run/v.sock.new" },
		{ "control /run/c.sock\nvirtio-hybrid /run/v.sock /run/c.sock.new\n",
		  "/run/c.sock.new (a virtio-hybrid socket) is where the control socket is made" },
		{ "route w {\nfront tcp:127.0.0.1:2\ntarget virtio:/run/v.sock.new:4:5555\n}\n",
		  "/run/v.sock.new (route w's vhost-user socket) is where route v's" },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%sroute v {\nfront tcp:127.0.0.1:1\n"
			 "target virtio:/run/v.sock:3:5555\n}\n", cases[i].text);
		ck_assert_int_eq(parse(text), 0);
		ck_assert_int_eq(config_check_sockets(&cfg, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, cases[i].msg) != NULL, "%zu: %s", i, err);
		config_free(&cfg);
	}
	/* routes on one device share its socket */
	ck_assert_int_eq(parse("route v {\nfront tcp:127.0.0.1:1\ntarget virtio:/run/v.sock:3:5555\n}\n"
			       "route w {\nfront tcp:127.0.0.1:2\ntarget virtio:/run/v.sock:3:5556\n}\n"
			       "virtio-hybrid /run/v.sock /run/h.sock\n"), 0);
	ck_assert_int_eq(config_check_sockets(&cfg, err, sizeof(err)), 0);
}
END_TEST

/* The device's socket is made under SOCKET.new: it must leave room. */
START_TEST(virtio_socket_path_leaves_room)
{
	char text[512], longpath[VSOCK_LISTEN_PATH_MAX + 1];

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';      /* 104 bytes */
	snprintf(text, sizeof(text), "route v {\nfront tcp:127.0.0.1:1\ntarget virtio:%s:3:5555\n}\n",
		 longpath);
	ck_assert_int_eq(parse(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "socket path empty or too long"));
	longpath[sizeof(longpath) - 2] = '\0';      /* 103 bytes */
	snprintf(text, sizeof(text), "route v {\nfront tcp:127.0.0.1:1\ntarget virtio:%s:3:5555\n}\n",
		 longpath);
	ck_assert_int_eq(parse(text), 0);
}
END_TEST

static const struct {
	const char *text;
	const char *msg;
} bad[] = {
	{ "bogus 1\n", "test.conf:1: unknown setting 'bogus'" },
	{ "route a {\nfront tcp:127.0.0.1:1\n", "test.conf:2: route a is not closed" },
	{ "route a {\ntarget unix:/x\n}\n", "test.conf:3: route a has no front" },
	{ "route a {\nfront tcp:127.0.0.1:1\n}\n", "test.conf:3: route a has no target" },
	{ "route a {\nfront tcp:localhost:1\n", "test.conf:2: bad front 'tcp:localhost:1': 'localhost' is not a numeric IP address" },
	{ "route a {\nfront tcp:127.0.0.1:0\n", "port must be 1-65535" },
	{ "route a {\nfront usb:/f\ntarget unix:/x\n}\nroute b {\nfront usb:/f\ntarget unix:/y\n}\n",
	  "test.conf:8: routes a and b share a front address" },
	{ "route a {\nfront tcp:127.0.0.1:65536\n", "port must be 1-65535" },
	{ "route a {\ntarget vsock:2:5555\n", "reserved" },
	{ "route a {\ntarget vsock:x:5555\n", "decimal" },
	{ "route a {\ntarget udp:1.2.3.4:5\n", "expected vsock:CID:PORT" },
	{ "route a {\ntarget udp:1.2.3.4:5\n", "or tcp:HOST:PORT" },
	{ "route a {\ntarget tcp:adb.example.com:5555\n",
	  "test.conf:2: bad target 'tcp:adb.example.com:5555': HOST is not a numeric IPv4 address" },
	{ "route a {\ntarget tcp:127.0.0.1:65536\n",
	  "test.conf:2: bad target 'tcp:127.0.0.1:65536': PORT must be a number from 1 to 65535" },
	{ "route a {\ntarget tcp:[::1:5555\n", "test.conf:2: bad target 'tcp:[::1:5555': '[' without ']'" },
	{ "route a {\ntarget tcp:127.0.0.1\n", "expected tcp:HOST:PORT" },
	{ "route a {\ntarget unix:\n", "socket path empty or too long" },
	{ "route a {\nbuffer 1K\n", "buffer takes one size from 64K to 64M" },
	{ "route a {\nbuffer lots\n", "buffer takes one size" },
	{ "route a {\nreconnect 2s 1s\n", "reconnect takes MIN MAX" },
	{ "route a {\nmax-clients 0\n", "max-clients takes a number from 1 to 64" },
	{ "route a {\nmax-streams 99999999\n", "max-streams takes a number" },
	{ "route a {\nwhat 1\n", "test.conf:2: unknown route option 'what'" },
	{ "probe-mode ping\n", "test.conf:1: probe-mode 'ping' unknown: connect or adb" },
	{ "probe-mode\n", "test.conf:1: probe-mode takes one mode: connect or adb" },
	{ "route a {\nfront tcp:127.0.0.1:1\nprobe-mode ADB\n",
	  "test.conf:3: probe-mode 'ADB' unknown: connect or adb" },
	{ "route a {\nprobe-mode adb connect\n", "test.conf:2: probe-mode takes one mode" },
	{ "route bad/name {\n", "route name 'bad/name'" },
	{ "route a\n", "expected 'route NAME {'" },
	{ "control relative.sock\n", "absolute" },
	{ "control-mode 999\n", "octal" },
	{ "log-level loud\n", "log-level takes" },
	{ "a b c d e\n", "too many words" },
	{ "route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"
	  "route a {\nfront tcp:127.0.0.1:2\ntarget unix:/x\n}\n", "test.conf:8: route a defined twice" },
	{ "route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"
	  "route b {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n", "routes a and b share a front address" },
	{ "route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\nbuffer 1M\n",
	  "route defaults must come before the first route" },
	{ VROUTE "virtio-hybrid /run/vm/vhost.sock\n", "test.conf:5: virtio-hybrid takes SOCKET PATH" },
	{ VROUTE "virtio-hybrid /run/vm/vhost.sock h.sock\n", "test.conf:5: virtio-hybrid takes SOCKET PATH" },
	{ VROUTE "virtio-hybrid vhost.sock /run/h.sock\n", "test.conf:5: virtio-hybrid takes SOCKET PATH" },
	{ VROUTE "virtio-hybrid /run/vm/vhost.sock /run/vm/vhost.sock\n",
	  "test.conf:5: virtio-hybrid: PATH must differ from SOCKET" },
	{ VROUTE "virtio-hybrid /run/vm/vhost.sock /run/h1\nvirtio-hybrid /run/vm/vhost.sock /run/h2\n",
	  "test.conf:6: virtio-hybrid: /run/vm/vhost.sock has one already (line 5)" },
	{ VROUTE VROUTE2 "virtio-hybrid /run/vm/vhost.sock /run/h\nvirtio-hybrid /run/vm2.sock /run/h\n",
	  "test.conf:10: virtio-hybrid: /run/h is taken (line 9)" },
	{ "virtio-hybrid /run/a /run/b\nvirtio-hybrid /run/b /run/c\n",
	  "test.conf:2: virtio-hybrid: /run/b is the PATH of line 1" },
	{ "virtio-hybrid /run/a /run/b\nvirtio-hybrid /run/c /run/a\n",
	  "test.conf:2: virtio-hybrid: /run/a is the SOCKET of line 1" },
	{ "virtio-hybrid /run/other.sock /run/h\n" VROUTE,
	  "test.conf:1: virtio-hybrid: no route has a virtio target on /run/other.sock" },
	{ "virtio-hybrid /run/vm/vhost.sock /run/h\n"
	  "route a {\nfront tcp:127.0.0.1:1\ntarget hybrid:/run/vm/vhost.sock:5555\n}\n",
	  "test.conf:1: virtio-hybrid: no route has a virtio target on /run/vm/vhost.sock" },
	{ VROUTE "virtio-hybrid /run/vm/vhost.sock /run/vm2.sock\n" VROUTE2,
	  "test.conf:5: virtio-hybrid: /run/vm2.sock is route w's vhost-user socket" },
	{ "control /run/c.sock\n" VROUTE "virtio-hybrid /run/vm/vhost.sock /run/c.sock\n",
	  "test.conf:6: virtio-hybrid: /run/c.sock is the control socket" },
	{ "route a {\nvirtio-hybrid /run/vm/vhost.sock /run/h\n",
	  "test.conf:2: unknown route option 'virtio-hybrid'" },
	{ "mdns tv\n", "test.conf:1: unknown setting 'mdns'" },
	{ "route a {\nmdns\n", "test.conf:2: mdns takes one name: 1-40 letters" },
	{ "route a {\nmdns t.v\n", "test.conf:2: mdns takes one name" },
	{ "route a {\nmdns 01234567890123456789012345678901234567890\n", "mdns takes one name" },
	{ "route a {\nfront usb:/dev/usb-ffs/a\ntarget unix:/x\nmdns tv\n}\n",
	  "test.conf:5: route a: mdns needs a TCP front" },
	{ "route a {\nfront tcp:127.0.0.2:1\ntarget unix:/x\nmdns tv\n}\n",
	  "route a: mdns: front 127.0.0.2 is loopback" },
	{ "route a {\nfront tcp:[::1]:1\ntarget unix:/x\nmdns tv\n}\n", "is loopback" },
	{ "route a {\nfront tcp:0.0.0.0:1\ntarget unix:/x\nmdns tv\n}\n"
	  "route b {\nfront tcp:0.0.0.0:2\ntarget unix:/x\nmdns TV\n}\n",
	  "test.conf:10: routes a and b publish the same mdns name" },
};

START_TEST(rejects)
{
	ck_assert_int_eq(parse(bad[_i].text), -1);
	ck_assert_msg(strstr(err, bad[_i].msg) != NULL, "case %d: got '%s', want '%s'", _i, err,
		      bad[_i].msg);
	ck_assert_uint_eq(cfg.nroutes, 0);
	ck_assert_uint_eq(cfg.nhybrid, 0);
}
END_TEST

START_TEST(long_line_rejected)
{
	char text[1024];

	memset(text, 'x', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	ck_assert_int_eq(parse(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:1: line longer than"));
}
END_TEST

START_TEST(sizes_and_durations)
{
	size_t sz;
	unsigned ms;

	ck_assert_int_eq(config_parse_size("64K", &sz), 0);
	ck_assert_uint_eq(sz, 65536);
	ck_assert_int_eq(config_parse_size("3M", &sz), 0);
	ck_assert_uint_eq(sz, 3 << 20);
	ck_assert_int_eq(config_parse_size("100", &sz), 0);
	ck_assert_uint_eq(sz, 100);
	ck_assert_int_eq(config_parse_size("-1", &sz), -1);
	ck_assert_int_eq(config_parse_size("1G", &sz), -1);
	ck_assert_int_eq(config_parse_size("99999999999999999999999", &sz), -1);
	ck_assert_int_eq(config_parse_duration("250ms", &ms), 0);
	ck_assert_uint_eq(ms, 250);
	ck_assert_int_eq(config_parse_duration("3s", &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(config_parse_duration("3", &ms), -1);
	ck_assert_int_eq(config_parse_duration("3m", &ms), -1);
}
END_TEST

START_TEST(specs_round_trip)
{
	static const char *targets[] = { "vsock:3:5555", "vsock:1:1", "hybrid:/run/v.sock:5555",
					 "hybrid:/a:b/c:7", "unix:/run/adbd.sock",
					 "tcp:127.0.0.1:5555", "tcp:[::1]:5037",
					 "tcp:[fe80::1]:65535" };
	struct vsock_target t;
	struct front_spec f;
	char buf[256];

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		ck_assert_int_eq(vsock_target_parse(targets[i], &t, err, sizeof(err)), 0);
		vsock_target_format(&t, buf, sizeof(buf));
		ck_assert_str_eq(buf, targets[i]);
	}
	ck_assert_int_eq(front_spec_parse("tcp:[::1]:5037", &f, err, sizeof(err)), 0);
	front_spec_format(&f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "tcp:[::1]:5037");
	ck_assert_int_eq(front_spec_parse("udp:1.2.3.4:5", &f, err, sizeof(err)), -22);
	ck_assert_int_eq(front_spec_parse("usb:/dev/usb-ffs/adb", &f, err, sizeof(err)), 0);
	ck_assert_int_eq(f.kind, FRONT_USB);
	front_spec_format(&f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "usb:/dev/usb-ffs/adb");
	ck_assert_int_eq(front_spec_parse("usb:relative", &f, err, sizeof(err)), -22);
	ck_assert_int_eq(front_spec_parse("usb:", &f, err, sizeof(err)), -22);
}
END_TEST

/* tcp targets in a file: IPv4, [IPv6], localhost (taken as 127.0.0.1, so a
 * reload from one spelling to the other leaves the route alone) */
START_TEST(tcp_targets)
{
	ck_assert_int_eq(parse("route host {\n"
			       "    front tcp:127.0.0.1:6530\n"
			       "    target tcp:localhost:5555   # the host's own adbd\n"
			       "}\n"
			       "route net {\n"
			       "    front usb:/dev/usb-ffs/net\n"
			       "    target tcp:[::1]:5556\n"
			       "}\n"
			       "route v4 {\n"
			       "    front tcp:127.0.0.1:6531\n"
			       "    target tcp:192.168.122.10:5555\n"
			       "}\n"), 0);
	ck_assert_uint_eq(cfg.nroutes, 3);
	ck_assert_int_eq(cfg.routes[0].target.kind, VSOCK_TCP);
	ck_assert_str_eq(cfg.routes[0].target.host, "127.0.0.1");
	ck_assert_uint_eq(cfg.routes[0].target.port, 5555);
	ck_assert_int_eq(cfg.routes[1].target.kind, VSOCK_TCP);
	ck_assert_str_eq(cfg.routes[1].target.host, "::1");
	ck_assert_uint_eq(cfg.routes[1].target.port, 5556);
	ck_assert_str_eq(cfg.routes[2].target.host, "192.168.122.10");

	struct route_config a = cfg.routes[0];
	config_free(&cfg);
	ck_assert_int_eq(parse("route host {\nfront tcp:127.0.0.1:6530\ntarget tcp:127.0.0.1:5555\n}\n"), 0);
	ck_assert(route_config_equal(&a, &cfg.routes[0]));
	config_free(&cfg);
	ck_assert_int_eq(parse("route host {\nfront tcp:127.0.0.1:6530\ntarget tcp:127.0.0.1:5554\n}\n"), 0);
	ck_assert(!route_config_equal(&a, &cfg.routes[0]));
}
END_TEST

START_TEST(route_equality)
{
	ck_assert_int_eq(parse("route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"
			       "route b {\nfront tcp:127.0.0.1:2\ntarget unix:/x\n}\n"), 0);
	struct route_config a = cfg.routes[0];
	ck_assert(route_config_equal(&a, &cfg.routes[0]));
	ck_assert(!route_config_equal(&a, &cfg.routes[1]));
	a.buffer *= 2;
	ck_assert(!route_config_equal(&a, &cfg.routes[0]));
	/* a reload restarts a route whose probe changed, mode as interval */
	a = cfg.routes[0];
	a.probe_interval_ms = 500;
	ck_assert(!route_config_equal(&a, &cfg.routes[0]));
	a = cfg.routes[0];
	a.probe_mode = PROBE_ADB;
	ck_assert(!route_config_equal(&a, &cfg.routes[0]));
	/* published under another name: the old one says goodbye */
	a = cfg.routes[0];
	snprintf(a.mdns, sizeof(a.mdns), "tv");
	ck_assert(!route_config_equal(&a, &cfg.routes[0]));
}
END_TEST

START_TEST(mdns_names)
{
	ck_assert_int_eq(parse("route a {\nfront tcp:0.0.0.0:1\ntarget unix:/x\nmdns living-room_tv\n}\n"
			       "route b {\nfront tcp:[::]:2\ntarget unix:/x\n}\n"), 0);
	ck_assert_str_eq(cfg.routes[0].mdns, "living-room_tv");
	ck_assert_str_eq(cfg.routes[1].mdns, "");
}
END_TEST

START_TEST(probe_modes)
{
	enum probe_mode m = PROBE_ADB;

	ck_assert_int_eq(probe_mode_parse("connect", &m), 0);
	ck_assert_int_eq(m, PROBE_CONNECT);
	ck_assert_str_eq(probe_mode_name(m), "connect");
	ck_assert_int_eq(probe_mode_parse("adb", &m), 0);
	ck_assert_int_eq(m, PROBE_ADB);
	ck_assert_str_eq(probe_mode_name(m), "adb");
	ck_assert_int_eq(probe_mode_parse("", &m), -1);
	ck_assert_int_eq(probe_mode_parse("adbx", &m), -1);
	ck_assert_int_eq(m, PROBE_ADB);   /* untouched by a rejected value */
	/* a global default, overridden in one route; a route's own mode stays its own */
	ck_assert_int_eq(parse("probe-mode adb\n"
			       "route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"
			       "route b {\nfront tcp:127.0.0.1:2\ntarget unix:/x\n"
			       "probe-mode connect\n}\n"), 0);
	ck_assert_int_eq(cfg.routes[0].probe_mode, PROBE_ADB);
	ck_assert_int_eq(cfg.routes[1].probe_mode, PROBE_CONNECT);
	config_free(&cfg);
	ck_assert_int_eq(parse("route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n"
			       "probe-mode adb\n}\n"
			       "route b {\nfront tcp:127.0.0.1:2\ntarget unix:/x\n}\n"), 0);
	ck_assert_int_eq(cfg.routes[0].probe_mode, PROBE_ADB);
	ck_assert_int_eq(cfg.routes[1].probe_mode, PROBE_CONNECT);
	/* after the first route, a global probe-mode is refused like any default */
	config_free(&cfg);
	ck_assert_int_eq(parse("route a {\nfront tcp:127.0.0.1:1\ntarget unix:/x\n}\n"
			       "probe-mode adb\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "test.conf:5: route defaults must come before"));
}
END_TEST

/* Write LEN bytes of a configuration to a file: a route, then comment
 * lines to fill it; NUL_AT (if not 0) is made a NUL byte. Its path. */
static const char *conf_file(size_t len, size_t nul_at)
{
	static char path[64];
	static const char head[] = "route a {\n    front tcp:127.0.0.1:7001\n"
				   "    target tcp:127.0.0.1:5555\n}\n";
	char *text = malloc(len);
	size_t off = sizeof(head) - 1;
	FILE *f;
	int fd;

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_ge(len, off + 2);
	memcpy(text, head, off);
	while (off < len) {        /* "#xxx...\n" lines of at most 100 bytes */
		size_t n = len - off < 100 ? len - off : 100;

		memset(text + off, 'x', n);
		text[off] = '#';
		text[off + n - 1] = '\n';
		off += n;
	}
	if (nul_at != 0)
		text[nul_at] = '\0';
	snprintf(path, sizeof(path), "/tmp/test-config.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	free(text);
	return path;
}

static int load(const char *path)
{
	config_init(&cfg);
	err[0] = '\0';
	return config_load(&cfg, path, err, sizeof(err));
}

/* The file itself: at most CONFIG_FILE_MAX (64 KiB) bytes, no NUL byte
 * anywhere, a file that can be read; each refusal says why. */
START_TEST(file_size_and_nul_bytes)
{
	const char *p;
	char want[128];

	p = conf_file(CONFIG_FILE_MAX, 0);
	ck_assert_msg(load(p) == 0, "%s", err);
	ck_assert_uint_eq(cfg.nroutes, 1);
	config_free(&cfg);
	unlink(p);

	p = conf_file(CONFIG_FILE_MAX + 1, 0);
	ck_assert_int_eq(load(p), -1);
	snprintf(want, sizeof(want), "%s: larger than 65536 bytes", p);
	ck_assert_str_eq(err, want);
	config_free(&cfg);
	unlink(p);

	p = conf_file(1 << 20, 0);
	ck_assert_int_eq(load(p), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger than 65536 bytes"));
	config_free(&cfg);
	unlink(p);

	for (size_t at = 10; at < CONFIG_FILE_MAX; at += CONFIG_FILE_MAX / 3) {
		p = conf_file(CONFIG_FILE_MAX, at);      /* in the route, in a comment */
		ck_assert_int_eq(load(p), -1);
		snprintf(want, sizeof(want), "%s: NUL byte in configuration", p);
		ck_assert_str_eq(err, want);
		ck_assert_uint_eq(cfg.nroutes, 0);
		config_free(&cfg);
		unlink(p);
	}

	ck_assert_int_eq(load("/"), -1);              /* a directory: a read error */
	ck_assert_msg(strstr(err, "/: ") == err, "%s", err);
	ck_assert_uint_eq(cfg.nroutes, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, full_file);
	tcase_add_test(tc, defaults_apply);
	tcase_add_loop_test(tc, rejects, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, long_line_rejected);
	tcase_add_test(tc, file_size_and_nul_bytes);
	tcase_add_test(tc, virtio_hybrid_accepted);
	tcase_add_test(tc, virtio_hybrid_path_too_long);
	tcase_add_test(tc, virtio_socket_path_leaves_room);
	tcase_add_test(tc, listening_paths_do_not_collide);
	tcase_add_test(tc, sizes_and_durations);
	tcase_add_test(tc, specs_round_trip);
	tcase_add_test(tc, tcp_targets);
	tcase_add_test(tc, route_equality);
	tcase_add_test(tc, mdns_names);
	tcase_add_test(tc, probe_modes);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
