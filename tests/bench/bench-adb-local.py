#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# bench-adb-local.py - make bench's "what a user feels" part, on this
# machine (no VM): the real adb clients, Debian 12's adb 29 and adb 34
# (bookworm-backports, unpacked beside it into the build tree's lab cache
# by tests/vm/fetch-debs.sh, as the VM lab does), adb 34 once more with
# delayed_ack asked for (its server started with ADB_DELAYED_ACK=1 and
# ADB_BURST_MODE=1), each pushing and pulling MIB MiB of random data
# (sha256 checked) to the test guest (adbd-testguest on TCP) three ways:
# direct (adb connect to the guest's port), through adbd-relay, and
# through socat; with --base, through a second relay binary (an earlier
# build) too. Rounds interleave every client and way (the order of the
# ways turns each round); figures are medians: wall-clock ms of each adb
# push/pull command, and the relay's (socat's) CPU time per MiB, from
# /proc (its threads' schedstat, else utime+stime of /proc/PID/stat) before
# and after each transfer; beside it the CPU time of the ends (the adb
# command, its adb server and the guest), for every way: on a machine
# whose cores the ends and the middle share, a transfer that keeps every
# core busy can at best reach x/d = ends / (ends + middle), the ceiling
# printed, and "busy" says how much of the cores it used. Prints ratios
# (time direct/way: above 1 the way is faster) and writes
# bench-adb-local.json. A benchmark: it fails only if
# it cannot run, never on a figure; a transfer that fails or stalls (adb
# has CMD_TIMEOUT) is reported, its client and way are left out of later
# rounds, the rest runs on, and the exit status is 1. No round starts
# after the deadline; every process it started (guest, relays, socats, the
# private adb servers, run in the foreground as its children) is stopped
# at the end, whatever happens.
#
#   bench-adb-local.py [--json FILE] [--base RELAY] [--mib N] [--rounds N]
#                      [--deadline SECS] RELAY GUEST
#
# LAB_CACHE (default ./vm-lab, the build tree's) holds adb 34; when it
# cannot be fetched, only adb 29 runs (said so, and in the JSON).
import argparse
import glob
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP_SRCDIR = os.environ.get("top_srcdir",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CMD_TIMEOUT = 60             # one adb push or pull (64 MiB take well under 1 s)
CLK_TCK = os.sysconf("SC_CLK_TCK")

procs = []                   # every process we started, stopped by cleanup()


def say(msg):
    print("bench-adb-local: " + msg, flush=True)


def free_port():
    """A free TCP port on 127.0.0.1, outside adb's emulator range 5554-5585."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not 5554 <= port <= 5585:
            return port


def wait_listening(port, proc, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def spawn(argv, log, **kw):
    p = subprocess.Popen(argv, stdout=kw.pop("stdout", log), stderr=log, stdin=subprocess.DEVNULL, **kw)
    procs.append(p)
    return p


def cpu_s(pid):
    """CPU time of a process, all its threads, in seconds: the sum of its
    threads' /proc schedstat (nanoseconds), or utime + stime from
    /proc/PID/stat (clock ticks) on a kernel without schedstat."""
    try:
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, ProcessLookupError):
        pass
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_adb34(build_dir):
    """The adb 34 tree from the lab cache (fetched on first use), or None."""
    cache = os.path.abspath(os.environ.get("LAB_CACHE", os.path.join(build_dir, "vm-lab")))
    os.makedirs(cache, exist_ok=True)
    # the package list of build-image.sh's real peers: the same cache entry
    cmd = ["flock", os.path.join(cache, ".lock"), os.path.join(TOP_SRCDIR, "tests/vm/fetch-debs.sh"),
           cache, "peers", "bookworm-backports", "adbd", "adb"]
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=600, check=True, text=True).stdout
    except (subprocess.SubprocessError, OSError) as e:
        say("adb 34 not available (fetch-debs.sh: %s): adb 29 only" % e)
        return None
    root = out.strip().splitlines()[-1]
    adb = os.path.join(root, "usr/lib/android-sdk/platform-tools/adb")
    libs = glob.glob(os.path.join(root, "usr/lib/*/android"))
    if not os.access(adb, os.X_OK) or len(libs) != 1:
        say("adb 34 not found in %s: adb 29 only" % root)
        return None
    return adb, libs[0]


class Client:
    """One adb client version with its own adb server."""

    def __init__(self, name, adb, env_extra):
        self.name = name
        self.adb = adb
        self.env = dict(os.environ)
        self.env.pop("ADB_DELAYED_ACK", None)
        self.env.pop("ADB_BURST_MODE", None)
        self.env.update(env_extra)
        self.env["ANDROID_ADB_SERVER_PORT"] = str(free_port())

    def run(self, *args, timeout=30):
        return subprocess.run([self.adb] + list(args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                              timeout=timeout)

    def start(self, log):
        """The private adb server, in the foreground as our child (adb
        nodaemon server), so that it is stopped and reaped like the rest."""
        port = int(self.env["ANDROID_ADB_SERVER_PORT"])
        p = spawn([self.adb, "nodaemon", "server"], log, env=self.env)
        self.server_pid = p.pid
        if not wait_listening(port, p):
            raise RuntimeError("%s: its adb server did not start (log: %s)" % (self.name, log.name))

    def connect(self, port):
        serial = "127.0.0.1:%d" % port
        r = self.run("connect", serial)
        if r.returncode != 0 or "connected" not in r.stdout:
            raise RuntimeError("%s: adb connect %s: %s" % (self.name, serial, r.stdout.strip()))
        r = self.run("-s", serial, "wait-for-device", timeout=20)
        if r.returncode != 0:
            raise RuntimeError("%s: %s never came online: %s" % (self.name, serial, r.stdout.strip()))
        return serial

    def features(self, serial):
        r = self.run("-s", serial, "features")
        return r.stdout.split() if r.returncode == 0 else []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def median(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description="real adb clients: direct, through adbd-relay and socat")
    ap.add_argument("--json", default="bench-adb-local.json")
    ap.add_argument("--dat", help="the x/d ratios as a gnuplot table (tests/bench/chart-adb.gp)")
    ap.add_argument("--base", help="a second relay binary (an earlier build), run alike, interleaved")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--deadline", type=int, default=1200, help="no round starts after SECS (default 1200)")
    ap.add_argument("relay")
    ap.add_argument("guest")
    a = ap.parse_args()
    for tool, pkg in (("adb", "adb"), ("socat", "socat")):
        if shutil.which(tool) is None:
            sys.exit("bench-adb-local: %s is not installed (Debian package %s)" % (tool, pkg))
    build_dir = os.getcwd()
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench-adb-local.")
    log = open(os.path.join(tmp, "processes.log"), "w")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return run(a, build_dir, tmp, log, t0)
    finally:
        cleanup()
        log.close()
        if os.environ.get("KEEP_TMP"):
            say("files kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def start_ways(a, tmp, log):
    """The guest, then the ways to it: name -> (port, pid of the middle or
    None); the guest's pid."""
    gport = free_port()
    guest = spawn([os.path.abspath(a.guest), "--features", "delayed_ack",
                   "--listen", "tcp:127.0.0.1:%d" % gport], log,
                  stdout=subprocess.PIPE)
    if guest.stdout.readline().strip() != b"READY":
        raise RuntimeError("the test guest did not start (log: %s)" % log.name)
    ways = {"direct": (gport, None)}
    relays = [("relay", a.relay)] + ([("base", a.base)] if a.base else [])
    for name, binary in relays:
        port = free_port()
        p = spawn([os.path.abspath(binary), "-f", "tcp:127.0.0.1:%d" % port, "-t", "tcp:127.0.0.1:%d" % gport,
                   "-s", os.path.join(tmp, name + ".control"), "-l", "error"], log)
        if not wait_listening(port, p):
            raise RuntimeError("%s (%s) did not start (log: %s)" % (name, binary, log.name))
        ways[name] = (port, p)
    return gport, ways, guest.pid


def socat_for(gport, log):
    """One socat per client (no fork: its CPU time is its own process's)."""
    port = free_port()
    p = spawn(["socat", "-b", "65536", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,nodelay" % port,
               "TCP:127.0.0.1:%d,nodelay" % gport], log)
    # no probing connect: socat without fork serves exactly one connection
    end = time.monotonic() + 10
    while time.monotonic() < end and p.poll() is None:
        with open("/proc/net/tcp") as f:
            if any(l.split()[1].endswith(":%04X" % port) and l.split()[3] == "0A" for l in f):
                return port, p
        time.sleep(0.05)
    raise RuntimeError("socat did not start (log: %s)" % log.name)


def children_cpu_s():
    """CPU time of the children we have waited for (the adb commands)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(client, args, pid, guest_pid):
    """Wall ms of one adb command; CPU s of the middle (PID, or None) and
    of the ends (the command, its adb server, the guest)."""
    ends = lambda: children_cpu_s() + cpu_s(client.server_pid) + cpu_s(guest_pid)
    c0, e0 = cpu_s(pid) if pid else 0.0, ends()
    t = time.monotonic()
    try:
        r = client.run(*args, timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError("adb %s did not end in %d s" % (args[2], CMD_TIMEOUT))
    ms = (time.monotonic() - t) * 1000
    cpu = (cpu_s(pid) - c0) if pid else None
    ends_cpu = ends() - e0
    if r.returncode != 0:
        raise RuntimeError("adb %s failed: %s" % (args[2], r.stdout.strip()[-300:]))
    return ms, cpu, ends_cpu


def run(a, build_dir, tmp, log, t0):
    clients = [Client("adb29", shutil.which("adb"), {})]
    adb34 = fetch_adb34(build_dir)
    if adb34:
        adb, libs = adb34
        clients.append(Client("adb34", adb, {"LD_LIBRARY_PATH": libs}))
        clients.append(Client("adb34-dack", adb, {"LD_LIBRARY_PATH": libs, "ADB_DELAYED_ACK": "1",
                                                  "ADB_BURST_MODE": "1"}))
    gport, shared, guest_pid = start_ways(a, tmp, log)
    way_names = ["direct", "relay", "socat"] + (["base"] if a.base else [])
    conn = {}          # (client, way) -> (serial, pid of the middle)
    for c in clients:
        c.start(log)
        for w in way_names:
            port, p = socat_for(gport, log) if w == "socat" else shared[w]
            conn[(c.name, w)] = (c.connect(port), p.pid if p else None)
        say("%s: %s" % (c.name, c.run("version").stdout.splitlines()[1].strip()))
    feats = clients[-1].features(conn[(clients[-1].name, "direct")][0])
    dack = "delayed_ack" in feats
    if len(clients) > 1 and not dack:
        say("the test guest does not offer delayed_ack (features: %s): adb34-dack runs without it, "
            "as adb34" % (",".join(feats) or "none"))

    src = os.path.join(tmp, "src.bin")
    with open(src, "wb") as f:
        for _ in range(a.mib):
            f.write(os.urandom(1 << 20))
    want = sha256(src)
    guestfs = os.path.join(tmp, "guestfs")
    os.mkdir(guestfs)
    dst, back = os.path.join(guestfs, "copy.bin"), os.path.join(tmp, "back.bin")
    fig = {}           # (client, way, direction) -> {"ms": [...], "cpu": [...]}
    failed = {}        # (client, way) -> why: not run again (its transport may be stuck)
    done = 0
    for rnd in range(a.rounds):
        if time.monotonic() - t0 > a.deadline:
            say("deadline (%d s) reached after %d rounds" % (a.deadline, done))
            break
        order = way_names[rnd % len(way_names):] + way_names[:rnd % len(way_names)]
        for c in clients:
            for w in order:
                if (c.name, w) in failed:
                    continue
                try:
                    transfer(a, c, w, conn[(c.name, w)], guest_pid, src, dst, back, want, fig)
                except (RuntimeError, subprocess.SubprocessError) as e:
                    failed[(c.name, w)] = "round %d: %s" % (rnd + 1, e)
                    say("FAILED: %s %s, round %d: %s" % (c.name, w, rnd + 1, e))
        done += 1
        say("round %d of %d done (%.0f s)" % (rnd + 1, a.rounds, time.monotonic() - t0))
    report(a, clients, way_names, fig, done, dack, failed)
    # a figure never fails the benchmark; a transfer that could not be done does
    return 1 if failed else 0


def transfer(a, c, w, serial_pid, guest_pid, src, dst, back, want, fig):
    """One push and one pull by client c the way w, timed and checked."""
    serial, pid = serial_pid
    for d, args, out in (("push", ("-s", serial, "push", src, dst), dst),
                         ("pull", ("-s", serial, "pull", dst, back), back)):
        ms, cpu, ends = timed(c, args, pid, guest_pid)
        if sha256(out) != want:
            raise RuntimeError("%s: the copy's sha256 differs" % d)
        f = fig.setdefault((c.name, w, d), {"ms": [], "cpu": [], "ends": [], "busy": []})
        f["ms"].append(ms)
        f["ends"].append(ends * 1e6 / a.mib)
        f["busy"].append((ends + (cpu or 0.0)) / (ms / 1000) / os.cpu_count())
        if cpu is not None:
            f["cpu"].append(cpu * 1e6 / a.mib)
    os.unlink(back)


def report(a, clients, way_names, fig, rounds, dack, failed):
    others = [w for w in way_names if w != "direct"]
    print("\nadb push/pull of %d MiB to the test guest on this machine, median of %d rounds: wall ms "
          "(MB/s); for each way, x/d = direct time / its time (above 1: faster than direct), and its "
          "CPU us per MiB" % (a.mib, rounds))
    head = "%-11s %-5s %13s" % ("client", "dir", "direct")
    for w in others:
        head += " %13s %6s %7s" % (w, w[:5] + "/d", "cpu/MiB")
    print(head)
    mbps = lambda ms: a.mib * 1048576 / 1e6 / (ms / 1000)
    rows = []
    for c in clients:
        for d in ("push", "pull"):
            row = {"client": c.name, "direction": d, "mib": a.mib,
                   "delayed_ack": dack and c.name.endswith("dack")}
            line = "%-11s %-5s" % (c.name, d)
            for w in way_names:
                f = fig.get((c.name, w, d))
                if f is None:
                    line += " %13s" % "FAILED" + ("" if w == "direct" else " %6s %7s" % ("-", "-"))
                    row[w + "_failed"] = failed.get((c.name, w), "not run")
                    continue
                ms = median(f["ms"])
                row[w + "_ms"] = round(ms, 1)
                row[w + "_rounds"] = len(f["ms"])
                row[w + "_ends_cpu_us_per_mib"] = round(median(f["ends"]))
                row[w + "_busy"] = round(median(f["busy"]), 2)
                if w == "direct":
                    line += " %6.0f (%4.0f)" % (ms, mbps(ms))
                    continue
                cpu = median(f["cpu"])
                row[w + "_cpu_us_per_mib"] = round(cpu)
                line += " %6.0f (%4.0f)" % (ms, mbps(ms))
                if "direct_ms" in row:
                    row[w + "_per_direct"] = round(row["direct_ms"] / ms, 3)
                    line += " %6.2f" % row[w + "_per_direct"]
                else:
                    line += " %6s" % "-"
                line += " %7.0f" % cpu
            if "base_ms" in row and "relay_ms" in row:
                row["relay_per_base"] = round(row["base_ms"] / row["relay_ms"], 3)
                line += "  relay/base %.2f" % row["relay_per_base"]
            print(line)
            rows.append(row)
    cpu_report(rows, way_names)
    for (cn, w), why in sorted(failed.items()):
        print("FAILED: %s %s: %s" % (cn, w, why))
    if a.dat:
        write_dat(a.dat, rows, others)
    with open(a.json, "w") as f:
        json.dump({"bench": "adb-local", "mib": a.mib, "rounds": rounds,
                   "clients": [c.name for c in clients], "guest_delayed_ack": dack, "runs": rows}, f)
        f.write("\n")
    say("%d figures in %s" % (len(rows), a.json))


def cpu_report(rows, way_names):
    """Where the cores bound a way: the ends' CPU per MiB beside the
    middle's, the x/d ceiling that gives (the middle's CPU taken from
    cores the ends would use), and how busy the cores were."""
    print("\nCPU us per MiB of the ends (the adb command, its server, the guest) and of the middle, "
          "medians; ceil = ends/(ends + middle), the best x/d when every one of the %d cores is "
          "busy; busy = CPU used / (wall time x cores)" % os.cpu_count())
    head = "%-11s %-5s %11s" % ("client", "dir", "direct")
    for w in way_names[1:]:
        head += " %22s" % w
    print(head)
    print("%-11s %-5s %11s" % ("", "", "ends busy") + " %22s" % "ends  mid  ceil busy" * (len(way_names) - 1))
    for r in rows:
        line = "%-11s %-5s" % (r["client"], r["direction"])
        for w in way_names:
            if w + "_ms" not in r:
                line += " %11s" % "-" if w == "direct" else " %22s" % "-"
                continue
            ends, busy = r[w + "_ends_cpu_us_per_mib"], r[w + "_busy"]
            if w == "direct":
                line += " %6d %4.2f" % (ends, busy)
                continue
            mid = r[w + "_cpu_us_per_mib"]
            r[w + "_ceiling"] = round(ends / (ends + mid), 3) if ends + mid else 0
            line += " %5d %5d %5.2f %4.2f" % (ends, mid, r[w + "_ceiling"], busy)
        print(line)


def write_dat(path, rows, others):
    """One line per client and direction: a label, then each way's x/d
    (direct time / its time; 0 where it failed), for chart-adb.gp."""
    with open(path, "w") as f:
        f.write("label %s\n" % " ".join(others))   # the column headers
        for r in rows:
            f.write("%s-%s %s\n" % (r["client"], r["direction"], " ".join(
                "%.3f" % r.get(w + "_per_direct", 0) for w in others)))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        print("bench-adb-local: FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
