#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""qmp.py SOCKET COMMAND [ARGS-JSON] [COMMAND [ARGS-JSON]...]: run QMP
commands on QEMU's monitor socket (-qmp unix:SOCKET,server=on,wait=off),
in order, after the capabilities handshake. Each command's "return" is
printed as one JSON line; the first error is printed to stderr and ends the
run with status 1. Every wait is bounded (--timeout, default 20 s, for the
whole run). Events QEMU sends meanwhile are skipped.

    qmp.py qmp.sock object-add '{"qom-type":"memory-backend-memfd","id":"m1","size":268435456,"share":true}' \\
        device_add '{"driver":"pc-dimm","id":"d1","memdev":"m1"}'
"""
import json, socket, sys, time


class Qmp:
    def __init__(self, path, deadline):
        self.deadline = deadline
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(self.left())
        self.s.connect(path)
        self.buf = b""
        greeting = self.read()
        if "QMP" not in greeting:
            raise RuntimeError("no QMP greeting: %r" % greeting)

    def left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("QMP timed out")
        return left

    def read(self):
        """The next JSON object QEMU sends."""
        while b"\n" not in self.buf:
            self.s.settimeout(self.left())
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError("QEMU closed the QMP socket")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, command, args=None):
        req = {"execute": command}
        if args:
            req["arguments"] = args
        self.s.settimeout(self.left())
        self.s.sendall(json.dumps(req).encode() + b"\n")
        while True:          # bounded by the deadline in read()
            r = self.read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError("%s: %s" % (command, r["error"].get("desc", r["error"])))


def main():
    argv = sys.argv[1:]
    timeout = 20.0
    if len(argv) >= 2 and argv[0] == "--timeout":
        timeout = float(argv[1])
        argv = argv[2:]
    if len(argv) < 2:
        sys.exit(__doc__)
    path, rest = argv[0], argv[1:]
    cmds = []
    while rest:
        cmd, rest = rest[0], rest[1:]
        args = None
        if rest and rest[0].startswith("{"):
            args, rest = json.loads(rest[0]), rest[1:]
        cmds.append((cmd, args))
    try:
        q = Qmp(path, time.monotonic() + timeout)
        q.run("qmp_capabilities")
        for cmd, args in cmds:
            print(json.dumps(q.run(cmd, args)), flush=True)
    except (OSError, RuntimeError, ValueError) as e:
        print("qmp.py: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
