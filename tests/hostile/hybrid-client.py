#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# hybrid-client.py - clients of a virtio device's hybrid socket for the
# hostile-guest tests; every wait is bounded. Each mode prints one line.
#
#   connect PATH PORT            "CONNECT PORT": the reply line ("closed" if none)
#   vanish PATH PORT N GO        N clients answered OK send, shut down their
#                                sending side, and once the file GO exists all
#                                close altogether
#   hangup PATH PORT N HOLD_S    N clients, at most 50 at once, each sends
#                                "CONNECT PORT" and hangs up HOLD_S later
#   wait PATH PORT N             N clients at once send "CONNECT PORT" and wait
#                                (up to 20 s) for the answer: counts of OK and closed
#   silent PATH N                N clients that say nothing: seconds until the
#                                last was closed
#   push PATH PORT N SECONDS     N clients connect and write without reading;
#                                a closed one connects again; counts at the end
#   halfclose PATH PORT N        N clients each send "CONNECT PORT", wait for
#                                OK, send "hello I" and shut down their sending
#                                side (as socat does); "HALF-CLOSED N", then
#                                each reads to EOF (20 s at most): how many got
#                                "got hello I"
import os
import socket
import sys
import time


def client(path, port=None):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    for _ in range(500):          # a full backlog: the relay catches up
        try:
            s.connect(path)
            break
        except BlockingIOError:
            time.sleep(0.01)
    else:
        raise TimeoutError("backlog of %s full for 5 s" % path)
    if port is not None:
        s.sendall(b"CONNECT %d\n" % port)
    return s


def reply_line(s):
    line = b""
    try:
        while not line.endswith(b"\n") and len(line) < 64:
            ch = s.recv(1)
            if not ch:
                return "closed"
            line += ch
    except (ConnectionResetError, socket.timeout):
        return "closed"
    return line.decode(errors="replace").strip()


def connect(path, port):
    try:
        s = client(path, int(port))
    except (BrokenPipeError, ConnectionResetError):
        print("closed")           # refused before the CONNECT line was out
        return
    print(reply_line(s))


def hangup(path, port, n, hold):
    done = 0
    while done < int(n):
        batch = [client(path, int(port)) for _ in range(min(50, int(n) - done))]
        time.sleep(float(hold))
        for s in batch:
            s.close()
        done += len(batch)
    print("hung_up=%d" % done)


def wait(path, port, n):
    socks = [client(path, int(port)) for _ in range(int(n))]
    replies = [reply_line(s) for s in socks]
    ok = sum(r.startswith("OK ") for r in replies)
    print("ok=%d closed=%d" % (ok, replies.count("closed")))


def silent(path, n):
    t0 = time.monotonic()
    socks = [client(path) for _ in range(int(n))]
    for s in socks:
        try:
            if s.recv(1):
                print("got-bytes")
                return
        except (ConnectionResetError, socket.timeout):
            pass
    print("closed_after_s=%.1f" % (time.monotonic() - t0))


def push(path, port, n, secs):
    end = time.monotonic() + float(secs)
    data = b"p" * 65536
    socks, opened, closed = [], 0, 0
    while time.monotonic() < end:
        while len(socks) < int(n):
            s = client(path, int(port))
            s.setblocking(False)
            socks.append(s)
            opened += 1
        for s in list(socks):
            try:
                s.send(data)
            except BlockingIOError:
                pass
            except OSError:
                socks.remove(s)
                s.close()
                closed += 1
        time.sleep(0.01)
    print("opened=%d closed=%d" % (opened, closed))


def half_closed(path, port, n):
    """n clients answered OK, each sent "hello I" and shut down its sending
    side: their sockets, or None (what went wrong is printed)"""
    socks = []
    for i in range(int(n)):
        s = client(path, int(port))
        line = reply_line(s)
        if not line.startswith("OK "):
            print("client %d: %s" % (i, line))
            return None
        s.sendall(b"hello %d" % i)
        s.shutdown(socket.SHUT_WR)
        socks.append(s)
    print("HALF-CLOSED %d" % len(socks), flush=True)
    return socks


def halfclose(path, port, n):
    socks = half_closed(path, port, n)
    if socks is None:
        return
    answered, end = 0, time.monotonic() + 20
    for i, s in enumerate(socks):
        data = b""
        try:
            while time.monotonic() < end:
                s.settimeout(max(0.01, end - time.monotonic()))
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        answered += data == b"got hello %d" % i
        s.close()
    print("answered=%d of %d" % (answered, len(socks)))


def vanish(path, port, n, go):
    """n clients, each answered OK, send and shut down their sending side;
    once the file go exists (at most 20 s), all close altogether"""
    socks = half_closed(path, port, n)
    if socks is None:
        return
    end = time.monotonic() + 20
    while not os.path.exists(go) and time.monotonic() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()
    print("VANISHED %d" % len(socks), flush=True)


MODES = {"connect": connect, "hangup": hangup, "wait": wait, "silent": silent, "push": push,
         "halfclose": halfclose, "vanish": vanish}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
