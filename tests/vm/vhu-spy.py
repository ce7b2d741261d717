#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vhu-spy.py LISTEN BACKEND LOG [LIFETIME]: a transparent vhost-user relay for the
VM lab. It listens on the Unix socket LISTEN for a VMM (QEMU's chardev
socket), connects to the back end's socket BACKEND for each VMM that comes,
and passes everything on unchanged: each message the VMM sends whole, with
the descriptors that came with it (SCM_RIGHTS), and the back end's replies
as they come. It appends one line per VMM message to LOG:

    <ms since start> <conn> <REQUEST> size=<n> fds=<n> [detail]

(SET_MEM_TABLE and ADD_MEM_REG/REM_MEM_REG with their regions), plus
"<ms> <conn> connect" and "<ms> <conn> closed: <why>" lines. One VMM at a
time; when either side closes, the other is closed too and the next VMM is
awaited. Runs until killed, or LIFETIME seconds (default 900).

The relay itself logs no vhost-user message and counts them only in total
(struct vhu_stats, not in its status), so this is how a test sees which
requests arrive while the rings run.
"""
import os, select, socket, struct, sys, time

NAMES = {
    1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER",
    5: "SET_MEM_TABLE", 6: "SET_LOG_BASE", 7: "SET_LOG_FD", 8: "SET_VRING_NUM",
    9: "SET_VRING_ADDR", 10: "SET_VRING_BASE", 11: "GET_VRING_BASE",
    12: "SET_VRING_KICK", 13: "SET_VRING_CALL", 14: "SET_VRING_ERR",
    15: "GET_PROTOCOL_FEATURES", 16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM",
    18: "SET_VRING_ENABLE", 19: "SEND_RARP", 20: "NET_SET_MTU",
    21: "SET_SLAVE_REQ_FD", 22: "IOTLB_MSG", 23: "SET_VRING_ENDIAN",
    24: "GET_CONFIG", 25: "SET_CONFIG", 26: "CREATE_CRYPTO_SESSION",
    27: "CLOSE_CRYPTO_SESSION", 28: "POSTCOPY_ADVISE", 29: "POSTCOPY_LISTEN",
    30: "POSTCOPY_END", 31: "GET_INFLIGHT_FD", 32: "SET_INFLIGHT_FD",
    33: "GPU_SET_SOCKET", 34: "RESET_DEVICE", 35: "VRING_KICK",
    36: "GET_MAX_MEM_SLOTS", 37: "ADD_MEM_REG", 38: "REM_MEM_REG",
    39: "SET_STATUS", 40: "GET_STATUS",
}
HDR = 12
MAX_PAYLOAD = 1 << 20      # far above any vhost-user message
MAX_FDS = 64


class Closed(Exception):
    pass


def regions(req, payload):
    """The memory regions a memory message describes, for the log."""
    out = []
    if req == 5 and len(payload) >= 8:
        n = struct.unpack_from("<I", payload)[0]
        for i in range(min(n, (len(payload) - 8) // 32)):
            gpa, size, ua, off = struct.unpack_from("<QQQQ", payload, 8 + 32 * i)
            out.append("gpa=0x%x+0x%x" % (gpa, size))
        return "nregions=%d %s" % (n, " ".join(out))
    if req in (37, 38) and len(payload) >= 40:
        gpa, size, ua, off = struct.unpack_from("<QQQQ", payload, 8)
        return "gpa=0x%x+0x%x" % (gpa, size)
    return ""


def recv_exact(s, n, fds):
    """N bytes from S (descriptors that ride along appended to FDS)."""
    buf = b""
    while len(buf) < n:
        data, anc, flags, _ = s.recvmsg(n - len(buf), socket.CMSG_SPACE(MAX_FDS * 4))
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack("%di" % (len(cdata) // 4), cdata[:len(cdata) // 4 * 4]))
        if flags & socket.MSG_CTRUNC:
            raise Closed("descriptors truncated")
        if not data:
            raise Closed("EOF" if not buf else "EOF inside a message")
        buf += data
    return buf


def send_all(s, data, fds):
    if fds:
        n = socket.send_fds(s, [data], fds)
        data = data[n:]
    if data:
        s.sendall(data)


def serve(vmm, backend, conn, log, t0, end):
    """Pass one VMM connection through until either side closes."""
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise Closed("lifetime over")
        ready, _, _ = select.select([vmm, backend], [], [], left)
        if backend in ready:
            fds = []
            data, anc, flags, _ = backend.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(struct.unpack("%di" % (len(cdata) // 4), cdata[:len(cdata) // 4 * 4]))
            try:
                if not data:
                    raise Closed("back end closed")
                send_all(vmm, data, fds)
            finally:
                for fd in fds:
                    os.close(fd)
        if vmm in ready:
            fds = []
            try:
                hdr = recv_exact(vmm, HDR, fds)
                req, flags, size = struct.unpack("<III", hdr)
                if size > MAX_PAYLOAD:
                    raise Closed("payload of %d bytes" % size)
                payload = recv_exact(vmm, size, fds) if size else b""
                log.write("%d %d %s size=%d fds=%d %s\n" % (
                    (time.monotonic() - t0) * 1000, conn, NAMES.get(req, "REQUEST_%d" % req),
                    size, len(fds), regions(req, payload)))
                send_all(backend, hdr + payload, fds)
            finally:
                for fd in fds:
                    os.close(fd)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    listen_path, backend_path, log_path = sys.argv[1:4]
    t0 = time.monotonic()
    end = t0 + (float(sys.argv[4]) if len(sys.argv) == 5 else 900)
    log = open(log_path, "a", buffering=1)
    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(listen_path)
    os.chmod(listen_path, 0o600)
    ls.listen(1)
    conn = 0
    while time.monotonic() < end:
        ls.settimeout(max(end - time.monotonic(), 0.01))
        try:
            vmm, _ = ls.accept()
        except socket.timeout:
            break
        conn += 1
        backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        why = "?"
        try:
            backend.settimeout(5)
            backend.connect(backend_path)
            # a message never waits long on either side: bounded reads
            vmm.settimeout(10)
            backend.settimeout(10)
            log.write("%d %d connect\n" % ((time.monotonic() - t0) * 1000, conn))
            serve(vmm, backend, conn, log, t0, end)
        except (Closed, OSError) as e:
            why = str(e)
        log.write("%d %d closed: %s\n" % ((time.monotonic() - t0) * 1000, conn, why))
        vmm.close()
        backend.close()


if __name__ == "__main__":
    main()
