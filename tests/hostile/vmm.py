#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vmm.py SOCKET MODE [OPTIONS]: a scripted hostile VMM on the relay's
vhost-user socket. Every loop is bounded in count and in time; each mode
prints one line per attempt ("<mode>: <what happened>") and exits 0 when
it could play its part (what the relay did is for the test to judge).

Modes:
  dribble      a message sent one byte every --pause (0.9) s, its eventfd with
               the first byte; reconnect when dropped; for --duration s
  shrink       guest memory as an unsealed memfd (SET_MEM_TABLE); then a
               sealed one, an attempt to shrink it, and a kick; --unsealed-kick
               also shrinks and kicks if the unsealed one was taken
  kick-socket  a socketpair end whose peer is closed as the tx kick fd, kept
               connected for --hold s
  badsize      --count connections, each sending SET_VRING_ADDR with 8 bytes of
               its 40 (and then waiting, at most 2 s, to be dropped)
  call-block   the tx ring's call eventfd made blocking (O_NONBLOCK cleared on
               the file it shares with the relay) and its counter filled to the
               maximum, then a tx packet kicked: the relay's call would wait
               until someone reads the counter; nobody does for --hold s
"""
import argparse, fcntl, mmap, os, socket, struct, sys, time

GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE = 15, 16, 18
NEED_REPLY = 0x8
F_VERSION_1, F_PROTOCOL_FEATURES = 1 << 32, 1 << 30
PF_REPLY_ACK, PF_CONFIG = 1 << 3, 1 << 9
MEMSIZE = 1 << 20
GPA, UADDR = 0x100000, 0x7F0000000000   # as the region says; never dereferenced here
NUM = 16                                 # ring size


def msg(req, payload=b"", flags=0):
    return struct.pack("<III", req, 1 | flags, len(payload)) + payload


class Dropped(Exception):
    """The relay closed the connection."""


class Vmm:
    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def close(self):
        self.s.close()

    def send(self, req, payload=b"", flags=0, fds=()):
        data = msg(req, payload, flags)
        try:
            if fds:
                socket.send_fds(self.s, [data], list(fds))
            else:
                self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Dropped() from e

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.s.recv(n - len(data))
            except ConnectionResetError as e:
                raise Dropped() from e
            if not chunk:
                raise Dropped()
            data += chunk
        return data

    def reply_u64(self, req):
        r, flags, size = struct.unpack("<III", self.recv_exact(12))
        if r != req or size != 8:
            raise SystemExit("vmm: bad reply %d/%#x/%d to %d" % (r, flags, size, req))
        return struct.unpack("<Q", self.recv_exact(8))[0]

    def acked(self, req, payload=b"", fds=()):
        """Send with need_reply: 0 taken, non-zero refused."""
        self.send(req, payload, NEED_REPLY, fds)
        return self.reply_u64(req)

    def handshake(self):
        self.send(SET_OWNER)
        self.send(GET_FEATURES)
        self.reply_u64(GET_FEATURES)
        self.send(SET_FEATURES, struct.pack("<Q", F_VERSION_1 | F_PROTOCOL_FEATURES))
        self.send(GET_PROTOCOL_FEATURES)
        self.reply_u64(GET_PROTOCOL_FEATURES)
        self.acked(SET_PROTOCOL_FEATURES, struct.pack("<Q", PF_REPLY_ACK | PF_CONFIG))

    def wait_dropped(self, secs):
        """Seconds until the relay closes the connection, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            self.s.settimeout(max(0.001, min(0.2, secs - (time.monotonic() - t0))))
            try:
                if self.s.recv(4096) == b"":
                    return time.monotonic() - t0
            except socket.timeout:
                continue
            except ConnectionResetError:
                return time.monotonic() - t0
        return None


def guest_memory(sealed):
    fd = os.memfd_create("hostile-vmm", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, MEMSIZE)
    if sealed:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd


def mem_table(v, memfd):
    table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", GPA, MEMSIZE, UADDR, 0)
    return v.acked(SET_MEM_TABLE, table, [memfd])


def rings(v, kick_fds):
    """Both rings in the first 32 KiB of guest memory (zeroed: empty), kicked
    through kick_fds[i], started. The rx ring gets buffers later, if ever."""
    calls = []
    for i in range(2):
        base = i * 0x4000
        v.acked(SET_VRING_NUM, struct.pack("<II", i, NUM))
        v.acked(SET_VRING_BASE, struct.pack("<II", i, 0))
        v.acked(SET_VRING_ADDR, struct.pack("<IIQQQQ", i, 0, UADDR + base, UADDR + base + 0x2000,
                                            UADDR + base + 0x1000, 0))
        status = v.acked(SET_VRING_KICK, struct.pack("<Q", i), [kick_fds[i]])
        call = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        calls.append(call)
        v.acked(SET_VRING_CALL, struct.pack("<Q", i), [call])
        v.acked(SET_VRING_ENABLE, struct.pack("<II", i, 1))
        if status != 0:
            return status, calls
    return 0, calls


def post_tx(memfd):
    """One tx packet (a 44-byte REQUEST header) on the tx ring, as a guest
    would queue it; written through our own mapping of the memory."""
    m = mmap.mmap(memfd, 0x10000)
    base = 0x4000
    hdr = struct.pack("<QQIIIHHIII", 3, 2, 1234, 7777, 0, 1, 1, 0, 262144, 0)
    m[0x8000:0x8000 + len(hdr)] = hdr
    m[base:base + 16] = struct.pack("<QIHH", GPA + 0x8000, len(hdr), 0, 0)   # desc 0
    m[base + 0x1000 + 4:base + 0x1000 + 6] = struct.pack("<H", 0)          # avail ring[0]
    m[base + 0x1000 + 2:base + 0x1000 + 4] = struct.pack("<H", 1)          # avail idx
    m.close()


def dribble(path, args):
    end = time.monotonic() + args.duration
    n = 0
    while time.monotonic() < end and n < 100:
        n += 1
        v = Vmm(path)
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        data = msg(SET_VRING_CALL, struct.pack("<Q", 0))
        t0 = time.monotonic()
        sent = 0
        try:
            for i, byte in enumerate(data):
                if i == 0:
                    socket.send_fds(v.s, [data[:1]], [efd])
                else:
                    v.s.sendall(bytes([byte]))
                sent += 1
                if time.monotonic() > end:
                    break
                # the pause, watching for the relay closing the connection
                if v.wait_dropped(args.pause) is not None:
                    raise Dropped()
                v.s.settimeout(5)
            print("dribble: %d of %d bytes sent in %.1f s, not dropped" %
                  (sent, len(data), time.monotonic() - t0), flush=True)
        except (Dropped, BrokenPipeError, ConnectionResetError):
            print("dribble: dropped after %.1f s, %d of %d bytes sent" %
                  (time.monotonic() - t0, sent, len(data)), flush=True)
        os.close(efd)
        v.close()


def shrink(path, args):
    # 1. unsealed memory
    v = Vmm(path)
    v.handshake()
    plain = guest_memory(False)
    status = mem_table(v, plain)
    print("shrink: unsealed memory %s" % ("refused" if status else "taken"), flush=True)
    if status == 0 and args.unsealed_kick:
        kicks = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(2)]
        rings(v, kicks)
        post_tx(plain)
        os.ftruncate(plain, 0)
        print("shrink: unsealed memory shrunk to 0 under the relay, kicking", flush=True)
        os.eventfd_write(kicks[1], 1)
        time.sleep(0.5)
    v.close()
    os.close(plain)

    # 2. sealed memory, a shrink attempt, then a kick of a queued packet
    v = Vmm(path)
    v.handshake()
    sealed = guest_memory(True)
    status = mem_table(v, sealed)
    print("shrink: sealed memory %s" % ("refused" if status else "taken"), flush=True)
    kicks = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(2)]
    rings(v, kicks)
    post_tx(sealed)
    try:
        os.ftruncate(sealed, 0)
        print("shrink: sealed memory shrunk (the kernel ignored the seal)", flush=True)
    except PermissionError:
        print("shrink: shrinking sealed memory failed with EPERM", flush=True)
    os.eventfd_write(kicks[1], 1)
    time.sleep(0.5)
    try:
        v.send(GET_FEATURES)
        v.reply_u64(GET_FEATURES)
        print("shrink: relay answers after the kick", flush=True)
    except (Dropped, socket.timeout):
        print("shrink: no answer after the kick", flush=True)
    v.close()
    os.close(sealed)


def kick_socket(path, args):
    v = Vmm(path)
    v.handshake()
    memfd = guest_memory(True)
    mem_table(v, memfd)
    a, b = socket.socketpair()
    b.close()                        # the peer is gone: a reads EOF, forever
    kick0 = os.eventfd(0, os.EFD_CLOEXEC)
    status, _ = rings(v, [kick0, a.fileno()])
    print("kick-socket: socket kick fd %s" % ("refused" if status else "taken"), flush=True)
    a.close()
    left = v.wait_dropped(args.hold)
    print("kick-socket: %s" % ("held %.0f s" % args.hold if left is None else
                               "dropped after %.1f s" % left), flush=True)
    v.close()


def badsize(path, args):
    dropped = answered = 0
    end = time.monotonic() + 60
    for _ in range(args.count):
        if time.monotonic() > end:
            break
        v = Vmm(path)
        try:
            v.send(SET_OWNER)
            v.send(SET_VRING_ADDR, struct.pack("<II", 1, 0), NEED_REPLY)   # 8 of 40 bytes
            if v.wait_dropped(2) is None:
                answered += 1
            else:
                dropped += 1
        except Dropped:
            dropped += 1
        v.close()
    print("badsize: %d dropped, %d not dropped" % (dropped, answered), flush=True)


def call_block(path, args):
    v = Vmm(path)
    v.handshake()
    memfd = guest_memory(True)
    mem_table(v, memfd)
    kicks = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(2)]
    status, calls = rings(v, kicks)
    if status != 0:
        print("call-block: rings refused", flush=True)
        return
    call = calls[1]
    fcntl.fcntl(call, fcntl.F_SETFL, fcntl.fcntl(call, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    os.eventfd_write(call, 0xFFFFFFFFFFFFFFFE)        # the most it holds
    post_tx(memfd)
    t0 = time.monotonic()
    os.eventfd_write(kicks[1], 1)
    print("call-block: tx kicked with the call eventfd blocking and full", flush=True)
    left = v.wait_dropped(args.hold)
    print("call-block: %s" % ("connection held %.0f s" % args.hold if left is None else
                              "dropped after %.1f s" % left), flush=True)
    # the counter as the relay left it: it never added to a full one
    fcntl.fcntl(call, fcntl.F_SETFL, fcntl.fcntl(call, fcntl.F_GETFL) | os.O_NONBLOCK)
    print("call-block: call counter %#x after %.1f s" % (os.eventfd_read(call), time.monotonic() - t0),
          flush=True)
    v.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    p.add_argument("mode", choices=["dribble", "shrink", "kick-socket", "badsize", "call-block"])
    p.add_argument("--pause", type=float, default=0.9)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--hold", type=float, default=5)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--unsealed-kick", action="store_true")
    args = p.parse_args()
    {"dribble": dribble, "shrink": shrink, "kick-socket": kick_socket,
     "badsize": badsize, "call-block": call_block}[args.mode](args.socket, args)


if __name__ == "__main__":
    sys.exit(main())
