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
  remap        a guest on running rings (Guest below) opens a stream to the
               client of the hybrid socket --hybrid and sends it numbered
               packets, with SET_MEM_TABLE (the same memory again, as QEMU does
               on memory hotplug) between batches, one of them longer than
               the tx ring; prints what the client received
  same-fd      one eventfd as the tx ring's kick and call, kicked once; the
               VMM stays idle for --hold s
  long-chains  a tx ring of 32768 entries whose one chain is 32767 zero-length
               descriptors and an indirect table of 32768 more, made available
               again as fast as the relay returns it, for --duration s
  holes        --size MiB of sealed memfd guest memory (a file of the right
               size, holes everywhere but the rings) and --count tx packets,
               each a descriptor into a page of a hole (--indirect: an
               indirect table there); the VMM stays --hold s
  second       a VMM set up (handshake), then --count more connections one
               after the other, each waiting (at most 2 s) to be closed; then
               the first one asked GET_FEATURES
  msg-flood    a VMM set up, then whole messages (SET_VRING_BASE, no reply
               asked) written as fast as the socket takes them for
               --duration s; then GET_FEATURES
  kick-flood   a tx ring of 4096 entries kept full of 44-byte RST packets
               (for no connection: the device answers nothing) and its kick
               eventfd written without pause, for --duration s
"""
import argparse, ctypes, fcntl, mmap, os, re, socket, struct, sys, time

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


def guest_memory(sealed, size=MEMSIZE):
    fd = os.memfd_create("hostile-vmm", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if sealed:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd


def mem_table(v, memfd, size=MEMSIZE):
    table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", GPA, size, UADDR, 0)
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


# ---- a guest on running rings, for the ring attacks ----

F_INDIRECT_DESC, F_EVENT_IDX = 1 << 28, 1 << 29
D_NEXT, D_WRITE, D_INDIRECT = 1, 2, 4
OP_REQUEST, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW = 1, 2, 3, 4, 5
GUEST_CID = 3
BUF = 4096                               # rx buffer, tx slot
TX_SLOTS = 8                             # tx packets in flight, 2 descriptors each


def page_up(n):
    return (n + 4095) & ~4095


def vvs_hdr(src_port, dst_port, op, length=0, src_cid=GUEST_CID):
    return struct.pack("<QQIIIHHIII", src_cid, 2, src_port, dst_port, length, 1, op, 0,
                       262144, 0)


class Guest:
    """Sealed memfd memory of SIZE bytes, mapped here too; from offset 0 the
    rx ring (num[0] entries) and the tx ring (num[1]), then rx buffers and
    tx slots of BUF bytes, then room for alloc(). Indices as a driver keeps
    them; the relay's side is seen only in the used rings."""

    def __init__(self, v, size=MEMSIZE, num=(NUM, NUM)):
        self.v, self.size, self.num = v, size, num
        self.memfd = guest_memory(True, size)
        self.m = mmap.mmap(self.memfd, size)
        self.rings, off = [], 0
        for n in num:
            avail = off + 16 * n
            used = page_up(avail + 6 + 2 * n)
            self.rings.append((off, avail, used))
            off = page_up(used + 6 + 8 * n)
        self.rx_off = off
        self.tx_off = off + num[0] * BUF
        self.free = self.tx_off + TX_SLOTS * BUF
        self.avail_idx, self.last_used = [0, 0], [0, 0]
        self.sent = 0

    def alloc(self, n):
        off, self.free = self.free, page_up(self.free + n)
        assert self.free <= self.size
        return off

    def u16(self, off):
        """The ring index at OFF in one 16-bit load, as a driver reads it
        (struct reads it byte by byte: torn while the device moves it)."""
        v = ctypes.c_uint16.from_buffer(self.m, off)
        x = v.value
        del v
        return x

    def set_u16(self, off, x):
        """The ring index at OFF in one 16-bit store, as a driver writes it:
        struct writes the low byte, then the high one, and a device that
        reads between them sees an index 255 behind (more made available
        than the ring holds: the device fails, rightly)."""
        v = ctypes.c_uint16.from_buffer(self.m, off)
        v.value = x
        del v

    def desc(self, ring, i, off, length, flags=0, nxt=0):
        struct.pack_into("<QIHH", self.m, self.rings[ring][0] + 16 * i, GPA + off, length,
                         flags, nxt)

    def publish(self, ring, head):
        n, avail = self.num[ring], self.rings[ring][1]
        struct.pack_into("<H", self.m, avail + 4 + 2 * (self.avail_idx[ring] % n), head)
        self.avail_idx[ring] = (self.avail_idx[ring] + 1) & 0xffff
        self.set_u16(avail + 2, self.avail_idx[ring])

    def used_idx(self, ring):
        return self.u16(self.rings[ring][2] + 2)

    def start(self, kicks, calls, features=F_VERSION_1 | F_PROTOCOL_FEATURES):
        """SET_FEATURES again with FEATURES, the memory, both rings; 0 or
        the first refusal."""
        self.kicks = kicks
        self.v.send(SET_FEATURES, struct.pack("<Q", features))
        if mem_table(self.v, self.memfd, self.size) != 0:
            return 1
        for i in range(2):
            desc, avail, used = self.rings[i]
            for req, payload, fds in (
                    (SET_VRING_NUM, struct.pack("<II", i, self.num[i]), ()),
                    (SET_VRING_BASE, struct.pack("<II", i, 0), ()),
                    (SET_VRING_ADDR, struct.pack("<IIQQQQ", i, 0, UADDR + desc, UADDR + used,
                                                 UADDR + avail, 0), ()),
                    (SET_VRING_KICK, struct.pack("<Q", i), [kicks[i]]),
                    (SET_VRING_CALL, struct.pack("<Q", i), [calls[i]]),
                    (SET_VRING_ENABLE, struct.pack("<II", i, 1), ())):
                status = self.v.acked(req, payload, fds)
                if status != 0:
                    return status
        return 0

    def kick(self, ring):
        os.eventfd_write(self.kicks[ring], 1)

    def post_rx(self):
        for j in range(self.num[0]):
            self.desc(0, j, self.rx_off + j * BUF, BUF, D_WRITE)
            self.publish(0, j)
        self.kick(0)

    def recv(self, timeout):
        """The next packet the device put in an rx buffer, as (header fields,
        payload), the buffer posted again; None after TIMEOUT s."""
        n, used = self.num[0], self.rings[0][2]
        end = time.monotonic() + timeout
        while self.used_idx(0) == self.last_used[0]:
            if time.monotonic() > end:
                return None
            time.sleep(0.001)
        head, length = struct.unpack_from("<II", self.m, used + 4 + 8 * (self.last_used[0] % n))
        self.last_used[0] = (self.last_used[0] + 1) & 0xffff
        off = self.rx_off + (head % n) * BUF
        h = struct.unpack_from("<QQIIIHHIII", self.m, off)
        payload = bytes(self.m[off + 44:off + min(length, BUF)])
        self.publish(0, head % n)
        self.kick(0)
        return h, payload

    def tx_returned(self):
        return (self.used_idx(1) - self.last_used[1]) & 0xffff

    def in_flight(self):
        return (self.sent - self.tx_returned()) & 0xffff

    def send(self, hdr, payload=b"", timeout=5):
        """One tx packet, header and payload descriptors as Linux queues them;
        False if the device returned no slot within TIMEOUT s."""
        end = time.monotonic() + timeout
        while self.in_flight() >= TX_SLOTS:
            if time.monotonic() > end:
                return False
            time.sleep(0.001)
        slot = self.sent % TX_SLOTS
        off = self.tx_off + slot * BUF
        self.m[off:off + len(hdr)] = hdr
        self.m[off + 64:off + 64 + len(payload)] = payload
        if payload:
            self.desc(1, 2 * slot, off, len(hdr), D_NEXT, 2 * slot + 1)
            self.desc(1, 2 * slot + 1, off + 64, len(payload))
        else:
            self.desc(1, 2 * slot, off, len(hdr))
        self.publish(1, 2 * slot)
        self.sent += 1
        self.kick(1)
        return True

    def drained(self, timeout=5):
        """Has the device returned every tx packet within TIMEOUT s?"""
        end = time.monotonic() + timeout
        while self.in_flight() != 0:
            if time.monotonic() > end:
                return False
            time.sleep(0.001)
        return True


def running_guest(path, size=MEMSIZE, num=(NUM, NUM), same_fd=False):
    """A VMM with a guest on started rings; its kick and call eventfds. With
    SAME_FD the tx ring's kick is its call."""
    v = Vmm(path)
    v.handshake()
    g = Guest(v, size, num)
    kicks = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(2)]
    calls = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(2)]
    if same_fd:
        calls[1] = kicks[1]
    if g.start(kicks, calls) != 0:
        raise SystemExit("vmm: the relay refused the guest's rings")
    return v, g


def remap(path, args):
    v, g = running_guest(path)
    g.post_rx()
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(5)
    client.connect(args.hybrid)
    client.sendall(b"CONNECT 5555\n")
    p = g.recv(5)
    if p is None or p[0][6] != OP_REQUEST:
        raise SystemExit("vmm: no REQUEST from the device: %r" % (p,))
    host_port = p[0][2]
    g.send(vvs_hdr(5555, host_port, OP_RESPONSE))
    line = b""
    while not line.endswith(b"\n") and len(line) < 64:
        ch = client.recv(1)
        if not ch:
            break
        line += ch
    print("remap: hybrid client connected: %s" % line.decode(errors="replace").strip(),
          flush=True)
    # batches of packets, SET_MEM_TABLE after each: 3, 3, then more than
    # the ring holds (NUM), then 4
    seq = 0
    for batch in (3, 3, NUM + 4, 4):
        for _ in range(batch):
            data = b"<packet %d>" % seq
            if not g.send(vvs_hdr(5555, host_port, OP_RW, len(data)), data, timeout=2):
                print("remap: the tx ring stalled at packet %d" % seq, flush=True)
                break
            seq += 1
        if not g.drained(2):
            print("remap: the device did not return packet %d" % seq, flush=True)
        status = mem_table(v, g.memfd, g.size)
        print("remap: SET_MEM_TABLE after %d packets %s" %
              (seq, "refused" if status else "taken"), flush=True)
    # what the client received, until the expected bytes or 3 s of silence
    want = b"".join(b"<packet %d>" % i for i in range(seq))
    got = b""
    client.settimeout(3)
    while len(got) < 2 * len(want):
        try:
            chunk = client.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
        if got == want:
            break
    numbers = [int(x) for x in re.findall(rb"<packet (\d+)>", got)]
    print("remap: the client received %d packets: %s" %
          (len(numbers), " ".join(str(n) for n in numbers)), flush=True)
    print("remap: %s" % ("all %d in order, none twice" % seq if got == want else
                         "not the %d packets sent, in order, once each" % seq), flush=True)
    client.close()
    v.close()


def same_fd(path, args):
    v, g = running_guest(path, same_fd=True)
    g.kick(1)
    print("same-fd: the tx ring's kick and call are one eventfd, kicked once", flush=True)
    left = v.wait_dropped(args.hold)
    print("same-fd: %s" % ("held %.0f s" % args.hold if left is None else
                           "dropped after %.1f s" % left), flush=True)
    v.close()


def long_chains(path, args):
    n = 32768
    v, g = running_guest(path, size=4 << 20, num=(NUM, n))
    g.post_rx()
    table, hdr = g.alloc(16 * n), g.alloc(BUF)
    # a packet nobody answers: an RST for no connection
    g.m[hdr:hdr + 44] = vvs_hdr(1, 1, OP_RST)
    link = struct.Struct("<QIHH")
    ring = bytearray()
    for i in range(n - 1):
        ring += link.pack(GPA + hdr, 0, D_NEXT, i + 1)
    ring += link.pack(GPA + table, 16 * n, D_INDIRECT, 0)
    ind = bytearray()
    for i in range(n - 1):
        ind += link.pack(GPA + hdr, 0, D_NEXT, i + 1)
    ind += link.pack(GPA + hdr, 44, 0, 0)
    g.m[g.rings[1][0]:g.rings[1][0] + 16 * n] = bytes(ring)
    g.m[table:table + 16 * n] = bytes(ind)
    # every avail entry is head 0 (zeroed memory): keep the ring full
    avail = g.rings[1][1]
    t0 = time.monotonic()
    first = g.used_idx(1)
    returned = 0
    print("long-chains: chains of %d descriptors queued" % (2 * n), flush=True)
    while time.monotonic() - t0 < args.duration:
        used = g.used_idx(1)
        returned += (used - first) & 0xffff
        first = used
        g.set_u16(avail + 2, (used + n) & 0xffff)
        g.kick(1)
        time.sleep(0.002)
        if v.wait_dropped(0.001) is not None:
            print("long-chains: dropped", flush=True)
            break
    print("long-chains: %d chains returned in %.1f s" % (returned, time.monotonic() - t0),
          flush=True)
    v.close()


def holes(path, args):
    size = args.size << 20
    v, g = running_guest(path, size=size)
    g.post_rx()
    base = page_up(g.free)
    pages = (size - base) // 4096
    sent = 0
    for i in range(args.count):
        slot = i % TX_SLOTS
        end = time.monotonic() + 5
        while g.in_flight() >= TX_SLOTS and time.monotonic() < end:
            time.sleep(0.0002)
        if g.in_flight() >= TX_SLOTS:
            print("holes: the tx ring stalled after %d packets" % sent, flush=True)
            break
        # a 44-byte header in a page nobody wrote: a hole of the memfd;
        # --indirect: an indirect table there, naming a header there
        page = base + (i % pages) * 4096
        if args.indirect:
            g.desc(1, 2 * slot, page, 16, D_INDIRECT)
        else:
            g.desc(1, 2 * slot, page, 44)
        g.publish(1, 2 * slot)
        g.sent += 1
        sent += 1
        if i % TX_SLOTS == TX_SLOTS - 1:
            g.kick(1)
    g.kick(1)
    g.drained(5)
    print("holes: %d packets%s into holes of %d MiB, %d returned" %
          (sent, " (indirect tables)" if args.indirect else "", args.size,
           sent - g.in_flight()), flush=True)
    print("holes: READY", flush=True)
    left = v.wait_dropped(args.hold)
    print("holes: %s" % ("held %.0f s" % args.hold if left is None else
                         "dropped after %.1f s" % left), flush=True)
    v.close()


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


def second(path, args):
    v = Vmm(path)
    v.handshake()
    closed = kept = 0
    end = time.monotonic() + 60
    for _ in range(args.count):
        if time.monotonic() > end:
            break
        w = Vmm(path)
        if w.wait_dropped(2) is None:
            kept += 1
        else:
            closed += 1
        w.close()
    print("second: %d more connections, %d closed by the relay, %d kept" %
          (closed + kept, closed, kept), flush=True)
    try:
        v.send(GET_FEATURES)
        v.reply_u64(GET_FEATURES)
        print("second: the first VMM is answered", flush=True)
    except (Dropped, socket.timeout):
        print("second: the first VMM is not answered", flush=True)
    v.close()


def msg_flood(path, args):
    v = Vmm(path)
    v.handshake()
    batch = msg(SET_VRING_BASE, struct.pack("<II", 0, 0)) * 1024
    sent = 0
    v.s.settimeout(0.2)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < args.duration:
            try:
                sent += v.s.send(batch)
            except socket.timeout:
                continue
    except (BrokenPipeError, ConnectionResetError):
        print("msg-flood: dropped after %.1f s" % (time.monotonic() - t0), flush=True)
        return
    one = msg(SET_VRING_BASE, struct.pack("<II", 0, 0))
    if sent % len(one):                # the rest of a message the socket took in part
        v.s.settimeout(5)
        v.s.sendall(one[sent % len(one):])
        sent += len(one) - sent % len(one)
    print("msg-flood: %d messages in %.1f s" % (sent // len(one), time.monotonic() - t0),
          flush=True)
    # the reply comes after everything queued before it
    v.s.settimeout(30)
    try:
        v.send(GET_FEATURES)
        v.reply_u64(GET_FEATURES)
        print("msg-flood: answered after the flood", flush=True)
    except (Dropped, socket.timeout):
        print("msg-flood: not answered after the flood", flush=True)
    v.close()


def kick_flood(path, args):
    n = 4096
    v, g = running_guest(path, size=4 << 20, num=(NUM, n))
    g.post_rx()
    hdr = g.alloc(BUF)
    g.m[hdr:hdr + 44] = vvs_hdr(1, 1, OP_RST)
    g.desc(1, 0, hdr, 44)          # every avail entry is head 0 (zeroed memory)
    # the indices in one 16-bit load and store each (torn, a moving index
    # would make more available than the ring holds: the device fails)
    avail_idx = ctypes.c_uint16.from_buffer(g.m, g.rings[1][1] + 2)
    used_idx = ctypes.c_uint16.from_buffer(g.m, g.rings[1][2] + 2)
    t0 = time.monotonic()
    first = used_idx.value
    returned = kicks = 0
    print("kick-flood: %d RST packets queued" % n, flush=True)
    while time.monotonic() - t0 < args.duration:
        used = used_idx.value
        returned += (used - first) & 0xffff
        first = used
        avail_idx.value = (used + n) & 0xffff
        for _ in range(64):
            g.kick(1)
        kicks += 64
        if v.wait_dropped(0.0005) is not None:
            print("kick-flood: dropped", flush=True)
            break
    print("kick-flood: %d kicks, %d packets returned in %.1f s" %
          (kicks, returned, time.monotonic() - t0), flush=True)
    del avail_idx, used_idx
    v.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    p.add_argument("mode", choices=["dribble", "shrink", "kick-socket", "badsize", "call-block",
                                    "remap", "same-fd", "long-chains", "holes", "second",
                                    "msg-flood", "kick-flood"])
    p.add_argument("--pause", type=float, default=0.9)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--hold", type=float, default=5)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--unsealed-kick", action="store_true")
    p.add_argument("--hybrid")
    p.add_argument("--indirect", action="store_true")
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()
    {"dribble": dribble, "shrink": shrink, "kick-socket": kick_socket,
     "badsize": badsize, "call-block": call_block, "remap": remap, "same-fd": same_fd,
     "long-chains": long_chains, "holes": holes, "second": second, "msg-flood": msg_flood,
     "kick-flood": kick_flood}[args.mode](args.socket, args)


if __name__ == "__main__":
    sys.exit(main())
