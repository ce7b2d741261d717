#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""peer.py - misbehaving adb peers for the relay's robustness tests.

  peer.py host PORT MODE          connect as the PC, send bad input, expect the
                                  relay to close the connection (exit 0 if it did)
  peer.py hold PORT SECONDS       connect as the PC, send a valid CNXN, stay
                                  SECONDS; exit 1 if any malformed frame arrives
                                  or the relay closes the connection
  peer.py guest PATH MODE SECONDS listen on a Unix socket as a broken guest
"""
import os
import socket
import struct
import sys
import time

CNXN, OPEN, WRTE, CLSE, OKAY = 0x4E584E43, 0x4E45504F, 0x45545257, 0x45534C43, 0x59414B4F
KNOWN = {CNXN, OPEN, WRTE, CLSE, OKAY, 0x48545541, 0x534C5453}


def header(cmd, a0, a1, length, check=0, magic=None):
    if magic is None:
        magic = cmd ^ 0xFFFFFFFF
    return struct.pack("<6I", cmd, a0, a1, length, check, magic)


def frame(cmd, a0, a1, payload=b""):
    return header(cmd, a0, a1, len(payload), sum(payload) & 0xFFFFFFFF) + payload


HOST_CNXN = frame(CNXN, 0x01000001, 1024 * 1024, b"host::features=cmd\0")
DEVICE_CNXN = frame(CNXN, 0x01000001, 1024 * 1024,
                    b"device::ro.product.name=bad;ro.product.model=bad;ro.product.device=bad;features=")

HOST_MODES = {
    "garbage": lambda: os.urandom(4096),
    "badmagic": lambda: header(CNXN, 1, 4096, 0, magic=0x12345678),
    "oversize": lambda: HOST_CNXN + header(WRTE, 1, 1, 2 * 1024 * 1024),
    "handshake": lambda: header(CNXN, 0x01000001, 4096, 8192),
    "unknown": lambda: header(0x41414141, 0, 0, 0),
    "truncated": lambda: header(CNXN, 0x01000001, 4096, 100) + b"host::",
}


def wait_closed(s, secs):
    s.settimeout(secs)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def run_host(port, mode):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HOST_MODES[mode]())
    if mode == "truncated":
        s.shutdown(socket.SHUT_WR)
    return 0 if wait_closed(s, 5) else 1


def run_hold(port, secs):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HOST_CNXN)
    s.settimeout(0.2)
    buf = b""
    end = time.time() + secs
    frames = 0
    while time.time() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            print("hold: relay closed the host connection", file=sys.stderr)
            return 1
        buf += data
        while len(buf) >= 24:
            cmd, a0, a1, length, check, magic = struct.unpack("<6I", buf[:24])
            if magic != cmd ^ 0xFFFFFFFF or cmd not in KNOWN or length > 1024 * 1024:
                print("hold: malformed frame forwarded: %r" % buf[:24], file=sys.stderr)
                return 1
            if len(buf) < 24 + length:
                break
            buf = buf[24 + length:]
            frames += 1
    print("hold: %d well-formed frames" % frames)
    return 0


GUEST_MODES = {
    "garbage": lambda: DEVICE_CNXN + os.urandom(4096),
    "oversize": lambda: DEVICE_CNXN + header(WRTE, 1, 1, 16 * 1024 * 1024),
    "cut": lambda: DEVICE_CNXN + frame(OPEN, 7, 0, b"tcp:1\0") + header(WRTE, 7, 1, 1000) + b"x" * 10,
    "badmagic": lambda: header(CNXN, 1, 4096, 0, magic=0),
}


def serve_unix(path, secs, handle):
    """Listen on the Unix socket PATH for SECS seconds and give each
    connection in turn to handle(conn, end); returns how many there were."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    srv.settimeout(0.1)
    print("READY", flush=True)
    end = time.time() + secs
    served = 0
    while time.time() < end:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        served += 1
        c.settimeout(1)
        try:
            handle(c, end)
        except (OSError, EOFError):
            pass
        c.close()
    return served


def run_guest(path, mode, secs):
    def handle(c, end):
        c.recv(65536)  # the host's CNXN (replayed by the relay)
        c.sendall(GUEST_MODES[mode]())
        time.sleep(0.05)
    print("guest: served %d connections" % serve_unix(path, secs, handle))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "host":
        return run_host(int(argv[2]), argv[3])
    if len(argv) == 4 and argv[1] == "hold":
        return run_hold(int(argv[2]), float(argv[3]))
    if len(argv) == 5 and argv[1] == "guest":
        return run_guest(argv[2], argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
