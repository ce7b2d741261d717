#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""notify-listener.py SOCKET HOST PORT OUT - play systemd's notify socket.

Prints one line per datagram to OUT. On READY=1 it also records whether
HOST:PORT (the relay's front) accepted a TCP connection at that moment, as
"READY=1 front=up|down", so a test can tell READY came after the front was
serving. WATCHDOG=1 lines carry the time they came, "WATCHDOG=1 t=SECONDS".
Exits after STOPPING=1 or 30 s.
"""
import socket
import sys
import time

path, host, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.5)
end = time.time() + 30
with open(out, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        line = msg
        if msg == "READY=1":
            try:
                socket.create_connection((host, port), timeout=1).close()
                line += " front=up"
            except OSError:
                line += " front=down"
        elif msg == "WATCHDOG=1":
            line += " t=%.3f" % time.monotonic()
        f.write(line + "\n")
        if msg == "STOPPING=1":
            break
