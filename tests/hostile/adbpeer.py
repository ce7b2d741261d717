#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""adbpeer.py - hostile adb peers for tests/hostile/: a guest behind a Unix
socket (the relay's target unix:PATH) or a PC on a TCP front. Every mode is
bounded by SECONDS.

  adbpeer.py guest PATH MODE SECONDS [ARG]   listen as a hostile guest
      okay-flood       answer CNXN and the PC's OPEN, then send OKAYs on that
                       stream, never read
      wrte-flood       answer CNXN and the PC's OPEN, then send WRTEs of 4 KiB
                       on that stream without waiting for OKAYs, never read
      open-flood N     answer CNXN, then send N OPENs to tcp:9 (never reversed)
      open-reversed N  answer CNXN, wait for the PC's reverse:forward, then
                       send N OPENs to its local address, never answer them
      payload P        answer CNXN announcing max payload P, then behave
      auth-flood       send AUTH tokens (no CNXN), as fast as the relay takes them
      banner TEXT      answer CNXN with banner TEXT ("\\n" and "\\x.." decoded)
      mute             accept, never read, never send
      deaf             answer CNXN, then read everything and answer nothing
      sink             answer CNXN and every OPEN (OKAY), read everything,
                       OKAY every WRTE
      serve-cut FILE   serve FILE to shell:/exec: (cat) and sync: (pull) as
                       fast as it can, without waiting for OKAYs, and die
                       (close mid-frame) at a random byte of each transfer
  adbpeer.py pc PORT MODE SECONDS [ARG]      connect as a hostile PC
      auth-flood       send CNXN, then AUTH signatures, never read
      idle N           open N connections, send nothing, report when closed
      mute             send CNXN and OPEN shell:, then never read
      open-flood N     send CNXN, then N OPENs of shell:, reading what comes
      refused N        N connections one after another, each sending nothing
                       and waiting (up to 2 s) for the relay to close it
      churn N          N connections one after another, each sending CNXN
                       and hanging up at once
      urgent N         N connections one after another, each sending CNXN,
                       OPEN shell:, then a WRTE of 128 KiB with one TCP urgent
                       (MSG_OOB) byte in its payload, and hanging up 1 s later
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from peer import serve_unix  # noqa: E402

CNXN, AUTH, OPEN, WRTE, CLSE, OKAY = (0x4E584E43, 0x48545541, 0x4E45504F, 0x45545257,
                                      0x45534C43, 0x59414B4F)


def frame(cmd, a0, a1, payload=b""):
    return struct.pack("<6I", cmd, a0, a1, len(payload), 0, cmd ^ 0xFFFFFFFF) + payload


def device_cnxn(max_payload=1024 * 1024, banner=b"device::ro.product.name=evil;features=shell_v2"):
    return frame(CNXN, 0x01000001, max_payload, banner)


class Reader:
    """Frames from a socket, without blocking longer than the socket's timeout."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def frames(self):
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return []
        if not data:
            raise EOFError
        self.buf += data
        out = []
        while len(self.buf) >= 24:
            cmd, a0, a1, n = struct.unpack("<4I", self.buf[:16])
            if len(self.buf) < 24 + n:
                break
            out.append((cmd, a0, a1, self.buf[24:24 + n]))
            self.buf = self.buf[24 + n:]
        return out


def send_all_until(sock, data, end):
    """sendall that gives up at `end` (the relay may stop reading us)."""
    view = memoryview(data)
    while view and time.time() < end:
        try:
            n = sock.send(view)
        except (BlockingIOError, socket.timeout):
            time.sleep(0.01)
            continue
        view = view[n:]
    return not view


def wait_cnxn(c, end):
    rd = Reader(c)
    while time.time() < end:
        for f in rd.frames():
            if f[0] == CNXN:
                return rd
    raise EOFError


def wait_open(rd, end):
    while time.time() < end:
        for f in rd.frames():
            if f[0] == OPEN:
                return f
    raise EOFError


def guest_okay_flood(c, end, arg):
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn())
    host_id = wait_open(rd, end)[1]   # a stream the PC opened: its OKAYs pass
    burst = frame(OKAY, 9, host_id) * 4096
    c.settimeout(0.05)
    while time.time() < end:
        send_all_until(c, burst, end)


def guest_wrte_flood(c, end, arg):
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn())
    host_id = wait_open(rd, end)[1]
    c.sendall(frame(OKAY, 9, host_id))
    burst = frame(WRTE, 9, host_id, b"w" * 4096) * 64
    c.settimeout(0.05)
    while time.time() < end:
        send_all_until(c, burst, end)


def guest_open_flood(c, end, arg):
    wait_cnxn(c, end)
    c.sendall(device_cnxn())
    c.settimeout(0.05)
    for i in range(int(arg)):
        if not send_all_until(c, frame(OPEN, 1000 + i, 0, b"tcp:9\0"), end):
            break
    while time.time() < end:
        time.sleep(0.05)


def guest_open_reversed(c, end, arg):
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn())
    local = None
    while local is None and time.time() < end:
        for cmd, a0, a1, data in rd.frames():
            if cmd == OPEN and data.startswith(b"reverse:forward:"):
                spec = data[len(b"reverse:forward:"):].rstrip(b"\0")
                if spec.startswith(b"norebind:"):
                    spec = spec[len(b"norebind:"):]
                local = spec.split(b";", 1)[1]
                c.sendall(frame(OKAY, 99, a0) + frame(WRTE, 99, a0, b"OKAY"))
    if local is None:
        return
    print("reversed %s" % local.decode(), flush=True)
    c.settimeout(0.05)
    for i in range(int(arg)):
        if not send_all_until(c, frame(OPEN, 2000 + i, 0, local + b"\0"), end):
            break
    while time.time() < end:
        try:
            rd.frames()
        except EOFError:
            return


def guest_payload(c, end, arg):
    wait_cnxn(c, end)
    c.sendall(device_cnxn(int(arg)))
    rd = Reader(c)
    c.settimeout(0.1)
    while time.time() < end:
        for cmd, a0, a1, data in rd.frames():
            if cmd == OPEN:   # answer every stream with OKAY, then CLSE
                c.sendall(frame(OKAY, 500, a0) + frame(CLSE, 500, a0))


def guest_auth_flood(c, end, arg):
    c.settimeout(0.05)
    token = frame(AUTH, 1, 0, os.urandom(20))
    while time.time() < end:
        send_all_until(c, token * 64, end)


def guest_banner(c, end, arg):
    banner = arg.encode().decode("unicode_escape").encode("latin-1")
    c.settimeout(1)
    rd = wait_cnxn(c, end)
    c.sendall(frame(CNXN, 0x01000001, 4096, banner))
    c.settimeout(0.1)
    while time.time() < end:
        for cmd, a0, a1, data in rd.frames():
            if cmd == OPEN and data.startswith(b"shell:echo "):   # the relay's probe
                text = data[len(b"shell:echo "):].rstrip(b"\0") + b"\n"
                c.sendall(frame(OKAY, 5, a0) + frame(WRTE, 5, a0, text) + frame(CLSE, 5, a0))
            elif cmd == OPEN:
                c.sendall(frame(CLSE, 0, a0))


def guest_mute(c, end, arg):
    while time.time() < end:
        time.sleep(0.05)


def guest_deaf(c, end, arg):
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn())
    c.settimeout(0.1)
    while time.time() < end:
        rd.frames()       # EOFError once the relay closes the link


def guest_sink(c, end, arg):
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn())
    c.settimeout(0.1)
    ids = 1000
    while time.time() < end:
        for cmd, a0, a1, _ in rd.frames():
            if cmd == OPEN:
                ids += 1
                c.sendall(frame(OKAY, ids, a0))
            elif cmd == WRTE:
                c.sendall(frame(OKAY, a1, a0))


def sync_reply(cmd, payload=b"", arg=None):
    n = len(payload) if arg is None else arg
    return cmd + struct.pack("<I", n) + payload


def cut_stream(c, rd, local, remote, data, max_payload, cut_at, end):
    """WRTE data on (local, remote) in random-sized frames, never waiting;
    stop at byte cut_at of what goes on the wire and return False (died)."""
    import random
    wire = bytearray()
    off = 0
    while off < len(data):
        n = random.randint(1, max_payload)
        wire += frame(WRTE, local, remote, data[off:off + n])
        off += n
    wire += frame(CLSE, local, remote)
    if cut_at < len(wire):
        send_all_until(c, bytes(wire[:cut_at]), end)
        return False
    send_all_until(c, bytes(wire), end)
    return True


def guest_serve_cut(c, end, path):
    import random
    with open(path, "rb") as f:
        blob = f.read()
    rd = wait_cnxn(c, end)
    c.sendall(device_cnxn(1024 * 1024, b"device::ro.product.name=cutter;features="))
    c.settimeout(0.05)
    sync_buf = b""
    while time.time() < end:
        for cmd, a0, a1, data in rd.frames():
            if cmd == OPEN:
                svc = data.rstrip(b"\0")
                c.sendall(frame(OKAY, 77, a0))
                if svc.startswith(b"shell:") or svc.startswith(b"exec:"):
                    if b"cat" not in svc:   # any other command: no output
                        c.sendall(frame(CLSE, 77, a0))
                        continue
                    body = blob
                    if not cut_stream(c, rd, 77, a0, body, 65536, random.randrange(len(body) + 64), end):
                        return
            elif cmd == WRTE:
                c.sendall(frame(OKAY, 77, a0))
                sync_buf += data
                while len(sync_buf) >= 8:
                    req, n = sync_buf[:4], struct.unpack("<I", sync_buf[4:8])[0]
                    if len(sync_buf) < 8 + n:
                        break
                    sync_buf = sync_buf[8 + n:]
                    if req in (b"STAT", b"LSTA"):
                        c.sendall(frame(WRTE, 77, a0, req[:0] + b"STAT" + struct.pack("<III", 0o100644, len(blob), 0)))
                    elif req == b"RECV":
                        body = bytearray()
                        for off in range(0, len(blob), 65536):
                            chunk = blob[off:off + 65536]
                            body += sync_reply(b"DATA", chunk)
                        body += sync_reply(b"DONE", arg=0)
                        if not cut_stream(c, rd, 77, a0, bytes(body), 65536, random.randrange(len(body) + 64), end):
                            return
                    elif req == b"QUIT":
                        c.sendall(frame(CLSE, 77, a0))


GUEST = {"serve-cut": guest_serve_cut, "okay-flood": guest_okay_flood,
         "wrte-flood": guest_wrte_flood, "open-flood": guest_open_flood,
         "open-reversed": guest_open_reversed, "payload": guest_payload,
         "auth-flood": guest_auth_flood, "banner": guest_banner, "mute": guest_mute,
         "deaf": guest_deaf, "sink": guest_sink}


def run_guest(path, mode, secs, arg):
    conns = serve_unix(path, secs, lambda c, end: GUEST[mode](c, end, arg))
    print("guest: %d connections" % conns, flush=True)
    return 0


def pc_auth_flood(port, end, arg):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=shell_v2"))
    s.settimeout(0.05)
    sig = frame(AUTH, 2, 0, os.urandom(256))
    sent = 0
    while time.time() < end:
        if send_all_until(s, sig * 64, end):
            sent += 64
    print("pc: %d AUTH frames sent" % sent, flush=True)


def pc_idle(port, end, arg):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(int(arg))]
    print("READY", flush=True)
    closed_at = {}
    while time.time() < end and len(closed_at) < len(socks):
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            s.settimeout(0.02)
            try:
                if s.recv(4096) == b"":
                    closed_at[i] = time.time()
            except socket.timeout:
                pass
            except OSError:
                closed_at[i] = time.time()
    print("pc: %d of %d idle connections closed by the relay" % (len(closed_at), len(socks)),
          flush=True)


def pc_mute(port, end, arg):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=shell_v2"))
    s.settimeout(0.1)
    wait_cnxn(s, end)   # the guest is online: an OPEN now reaches it
    s.sendall(frame(OPEN, 1, 0, b"shell:\0"))
    print("READY", flush=True)
    while time.time() < end:
        time.sleep(0.05)


def pc_open_flood(port, end, arg):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=shell_v2"))
    s.settimeout(0.1)
    rd = wait_cnxn(s, end)
    s.settimeout(0.001)      # frames() returns [] once nothing is waiting
    sent, clse = 0, 0

    def drain():
        n = 0
        for _ in range(10000):
            got = rd.frames()
            if not got:
                break
            n += sum(1 for f in got if f[0] == CLSE)
        return n
    for i in range(int(arg)):
        if not send_all_until(s, frame(OPEN, 1 + i, 0, b"shell:\0"), end):
            break
        sent += 1
        if i % 32 == 31:
            clse += drain()   # the relay's CLSEs: it must not stop reading us
    while clse < sent - 64 and time.time() < end:
        clse += drain()
    print("pc: %d OPENs sent, %d refused with CLSE" % (sent, clse), flush=True)


def pc_refused(port, end, arg):
    closed = 0
    for _ in range(int(arg)):
        if time.time() > end:
            break
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(2)
        try:
            if s.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except OSError:
            closed += 1
        s.close()
    print("pc: %d of %s connections refused" % (closed, arg), flush=True)


def pc_churn(port, end, arg):
    done = 0
    for _ in range(int(arg)):
        if time.time() > end:
            break
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=shell_v2"))
        except OSError:
            pass
        s.close()
        done += 1
    print("pc: %d connections made and dropped" % done, flush=True)


def pc_urgent(port, end, arg):
    done = 0
    for _ in range(int(arg)):
        if time.time() > end:
            break
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=shell_v2"))
        s.settimeout(0.1)
        rd = wait_cnxn(s, end)
        s.sendall(frame(OPEN, 1, 0, b"shell:\0"))
        remote = None
        while remote is None and time.time() < end:
            remote = next((f[1] for f in rd.frames() if f[0] == OKAY and f[2] == 1), None)
        payload = os.urandom(128 * 1024)
        s.sendall(frame(WRTE, 1, remote, payload)[:24 + 40000])
        time.sleep(0.1)                     # the relay is splicing this payload now
        s.send(b"!", socket.MSG_OOB)
        send_all_until(s, payload[40000:], end)
        time.sleep(1)                       # connected: the relay must go on
        s.close()
        done += 1
    print("pc: %d connections sent an urgent byte and hung up" % done, flush=True)


PC = {"auth-flood": pc_auth_flood, "idle": pc_idle, "mute": pc_mute, "open-flood": pc_open_flood,
      "refused": pc_refused, "churn": pc_churn, "urgent": pc_urgent}


def main(argv):
    if len(argv) >= 5 and argv[1] == "guest" and argv[3] in GUEST:
        return run_guest(argv[2], argv[3], float(argv[4]), argv[5] if len(argv) > 5 else "")
    if len(argv) >= 5 and argv[1] == "pc" and argv[3] in PC:
        PC[argv[3]](int(argv[2]), time.time() + float(argv[4]), argv[5] if len(argv) > 5 else "")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
