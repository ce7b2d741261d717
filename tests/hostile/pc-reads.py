#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# pc-reads.py - hostile PCs for pc-reads.test: header-only frames as fast
# as TCP takes them, from several connections at once.
#
#   pc-reads.py drop PORT NPC SECS WITNESS_PORT
#       NPC PCs send OKAYs for a stream that does not exist (the relay
#       drops them and writes nothing, so nothing pauses its reading of
#       them); meanwhile a witness PC on WITNESS_PORT (another route) sends
#       OPENs with local id 0, which the relay refuses with a CLSE itself,
#       and times each answer. Prints "witness N P50 P99 MAX" in ms.
#   pc-reads.py mute PORT NPC SECS
#       NPC PCs each send OPENs with local id 0 (refused: a CLSE made up
#       for each) and never read, for SECS. Prints "sent BYTES".
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from peer import HOST_CNXN, OKAY, OPEN, header  # noqa: E402


def hdr(cmd, a0, a1):
    return header(cmd, a0, a1, 0)


def pc(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(HOST_CNXN)
    return s


def flood(s, unit, end, sent):
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            sent[0] += s.send(unit)
        except socket.timeout:
            pass
        except OSError:
            return


def run(socks, unit, secs):
    sent = [0]
    end = time.monotonic() + secs
    ths = [threading.Thread(target=flood, args=(s, unit, end, sent)) for s in socks]
    for t in ths:
        t.start()
    return ths, sent, end


def main():
    mode, port, npc, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if mode == "drop":
        w = pc(int(sys.argv[5]))
        w.settimeout(5)
        w.recv(65536)      # the witness's guest's CNXN
        socks = [pc(port) for _ in range(npc)]
        ths, sent, end = run(socks, hdr(OKAY, 7, 9) * 8192, secs)
        time.sleep(0.3)
        lat = []
        while time.monotonic() < end - 0.2:
            t0 = time.perf_counter()
            w.sendall(hdr(OPEN, 0, 0))
            got = b""
            while len(got) < 24:
                got += w.recv(24 - len(got))
            lat.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.002)
        for t in ths:
            t.join()
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print("witness %d %.2f %.2f %.2f sent %d" % (len(lat), q(0.5), q(0.99), lat[-1], sent[0]))
    else:
        socks = [pc(port, rcvbuf=4096) for _ in range(npc)]
        ths, sent, _ = run(socks, hdr(OPEN, 0, 0) * 2048, secs)
        for t in ths:
            t.join()
        print("sent %d" % sent[0])


main()
