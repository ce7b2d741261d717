#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""splice-peer.py - a PC and a guest that check every frame the relay
passes host->guest, for splice.test: the guest listens on a Unix socket,
the PC connects to the relay's TCP front.

  splice-peer.py GUEST_SOCKET FRONT_PORT MIB

Two streams. On B (its OPEN names a delayed_ack window, so the relay passes
it as it is) the PC streams MIB MiB of WRTEs of mixed sizes (1 byte to the
max payload; most large enough for the relay to splice), each payload a
pattern of its sequence number. On A (stop-and-wait, pipelined by the
relay) the guest keeps sending small WRTEs to the PC, which the relay
answers with OKAYs of its own: frames the relay makes up for the guest
while large payloads are on their way to it. The guest reads slowly at
times, so the relay's writes to it fill up. The guest checks that every
frame it gets is whole and well formed, that B's WRTEs come in order with
the right bytes, and that each of its WRTEs on A got one OKAY. Exit 0 when
all holds, 1 with a reason.
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time

CNXN, OPEN, WRTE, CLSE, OKAY = 0x4E584E43, 0x4E45504F, 0x45545257, 0x45534C43, 0x59414B4F
NAMES = {CNXN: "CNXN", OPEN: "OPEN", WRTE: "WRTE", CLSE: "CLSE", OKAY: "OKAY"}
MAXP = 256 * 1024


def frame(cmd, a0, a1, payload=b""):
    return struct.pack("<6I", cmd, a0, a1, len(payload), sum(payload) & 0xFFFFFFFF,
                       cmd ^ 0xFFFFFFFF) + payload


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


def recv_frame(s):
    h = recv_exact(s, 24)
    cmd, a0, a1, ln, _chk, magic = struct.unpack("<6I", h)
    if magic != cmd ^ 0xFFFFFFFF or cmd not in NAMES or ln > MAXP:
        raise ValueError("not a frame: %s" % h.hex())
    return cmd, a0, a1, recv_exact(s, ln)


def payload(seq, size):
    seed = hashlib.sha256(struct.pack("<I", seq)).digest()
    return (seed * (size // 32 + 1))[:size]


SIZES = [65536, 1, 200000, 24, 131072, 4096, MAXP, 17000, 3, 100000, 65536 + 7]


def schedule(mib):
    total, seq = 0, 0
    while total < mib * 1024 * 1024:
        size = SIZES[seq % len(SIZES)]
        yield seq, size
        total += size
        seq += 1


def guest(path, mib, result):
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    result["listening"].set()
    c, _ = ls.accept()
    try:
        cmd, _, _, _ = recv_frame(c)
        assert cmd == CNXN, "first frame %s" % NAMES[cmd]
        c.sendall(frame(CNXN, 0x01000001, MAXP, b"device::ro.product.name=splice;features="))
        streams = {}
        while len(streams) < 2:
            cmd, a0, a1, data = recv_frame(c)
            assert cmd == OPEN, "expected OPEN, got %s" % NAMES[cmd]
            gid = 100 + len(streams)
            streams[data.rstrip(b"\0")] = (gid, a0)
            c.sendall(frame(OKAY, gid, a0))
        ga, ha = streams[b"a:"]
        gb, hb = streams[b"b:"]
        expect = schedule(mib)
        sent = okays = 0
        waiting = False
        n = 0
        while True:
            if not waiting and sent < 1000:
                c.sendall(frame(WRTE, ga, ha, b"ping %d" % sent))
                sent += 1
                waiting = True
            cmd, a0, a1, data = recv_frame(c)
            n += 1
            if cmd == OKAY and a1 == ga:
                assert waiting, "an OKAY on A the guest did not wait for"
                okays += 1
                waiting = False
            elif cmd == WRTE and a1 == gb:
                try:
                    seq, size = next(expect)
                except StopIteration:
                    raise AssertionError("a WRTE on B beyond the schedule")
                if len(data) != size or data != payload(seq, size):
                    raise AssertionError("WRTE %d on B: %d bytes, wanted %d%s" % (
                        seq, len(data), size, "" if len(data) != size else " (other bytes)"))
                if seq == result["last_seq"]:
                    break
            elif cmd == OKAY and a1 == gb:
                pass
            else:
                raise AssertionError("unexpected %s %d %d" % (NAMES[cmd], a0, a1))
            if n % 50 == 0:
                time.sleep(0.02)   # a slow reader now and then: the relay's writes fill up
        assert okays >= sent - 1, "%d OKAYs for %d WRTEs on A" % (okays, sent)
        result["guest"] = "ok: %d frames, %d WRTEs on A answered" % (n, okays)
    except Exception as e:  # noqa: BLE001 - reported, the test fails
        result["guest"] = "guest: %s" % e
    finally:
        c.close()
        ls.close()


def pc(port, mib, result):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lock = threading.Lock()
    s.sendall(frame(CNXN, 0x01000001, MAXP, b"host::features=cmd\0"))
    cmd, _, _, _ = recv_frame(s)
    assert cmd == CNXN
    s.sendall(frame(OPEN, 1, 0, b"a:\0"))
    s.sendall(frame(OPEN, 2, 0x7FFFFFFF, b"b:\0"))
    ids = {}
    while len(ids) < 2:
        cmd, a0, a1, _ = recv_frame(s)
        assert cmd == OKAY, NAMES[cmd]
        ids[a1] = a0

    def reader():
        try:
            while True:
                cmd, a0, a1, _ = recv_frame(s)
                if cmd == WRTE and a1 == 1:
                    with lock:
                        s.sendall(frame(OKAY, 1, a0))
        except (EOFError, OSError, ValueError):
            pass

    threading.Thread(target=reader, daemon=True).start()
    for seq, size in schedule(mib):
        with lock:
            s.sendall(frame(WRTE, 2, ids[2], payload(seq, size)))
    return s


def main():
    path, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    result = {"listening": threading.Event(), "guest": "guest: did not finish",
              "last_seq": max(seq for seq, _ in schedule(mib))}
    g = threading.Thread(target=guest, args=(path, mib, result), daemon=True)
    g.start()
    result["listening"].wait(10)
    s = pc(port, mib, result)
    g.join(120)
    s.close()
    print(result["guest"])
    return 0 if result["guest"].startswith("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
