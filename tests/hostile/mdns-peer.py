#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mdns-peer.py - a hostile mDNS peer for mdns-flood.test, plain sockets:

  mdns-peer.py ADDR flood SECONDS MAX
      from ADDR, to the group and to the relay's 10.77.0.1:5353, for
      SECONDS or MAX packets: malformed packets (random bytes, compression
      loops, pointers out of the packet, counts far past the size, labels
      over 63, names over 255, cut records) and valid queries (QM, QU,
      ANY, legacy, with known answers); prints what it sent
  mdns-peer.py ADDR ask
      one legacy (unicast) query for _adb._tcp.local PTR; prints the
      instance names answered within 2 s, or nothing
"""
import os
import random
import socket
import struct
import sys
import time

GROUP = ("224.0.0.251", 5353)
RELAY = ("10.77.0.1", 5353)


def name(text):
    out = b""
    for label in text.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def hdr(qd, an=0, ns=0, ar=0, ident=0, flags=0):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def question(text, qtype, qclass=1):
    return name(text) + struct.pack(">HH", qtype, qclass)


def packets():
    """(kind, bytes) forever, round robin"""
    ptr = question("_adb._tcp.local", 12)
    known = b"\xc0\x0c" + struct.pack(">HHIH", 12, 1, 4500, 5) + b"\x02tv\xc0\x0c"
    kinds = [
        ("random", lambda: os.urandom(random.randint(0, 1500))),
        ("self-loop", lambda: hdr(1) + b"\xc0\x0c" + struct.pack(">HH", 12, 1)),
        ("two-loop", lambda: hdr(1) + b"\x01a\xc0\x10\x01b\xc0\x0c" + struct.pack(">HH", 1, 1)),
        ("pointer-out", lambda: hdr(1) + b"\x01a\xc3\xff" + struct.pack(">HH", 1, 1)),
        ("huge-counts", lambda: hdr(0xffff, 0xffff, 0xffff, 0xffff) + ptr),
        ("long-label", lambda: hdr(1) + b"\x7f" + b"a" * 127 + b"\0" + struct.pack(">HH", 1, 1)),
        ("long-name", lambda: hdr(1) + (b"\x3f" + b"a" * 63) * 5 + b"\0" + struct.pack(">HH", 1, 1)),
        ("cut-record", lambda: hdr(0, 1, flags=0x8400) + name("tv._adb._tcp.local") + b"\0\x21\0\x01"),
        ("ptr-qm", lambda: hdr(1) + ptr),
        ("ptr-qu", lambda: hdr(1) + question("_adb._tcp.local", 12, 0x8001)),
        ("any-caps", lambda: hdr(1) + question("TV._ADB._tcp.local", 255)),
        ("known-answer", lambda: hdr(1, 1) + ptr + known),
        ("many-questions", lambda: hdr(200) + ptr * 200),
    ]
    while True:
        for kind, make in kinds:
            yield kind, make()


def flood(addr, seconds, most):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.bind((addr, 0))
    s.setblocking(False)
    end = time.monotonic() + seconds
    sent, counts = 0, {}
    for kind, data in packets():
        if sent >= most or (sent % 256 == 0 and time.monotonic() >= end):
            break
        try:
            s.sendto(data, GROUP if sent % 2 else RELAY)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            continue
        sent += 1
        counts[kind] = counts.get(kind, 0) + 1
    print("flood: %d packets in %d kinds" % (sent, len(counts)), flush=True)


def read_name(pkt, off, depth=0):
    labels = []
    while depth < 20:
        c = pkt[off]
        if c >= 0xc0:
            rest, _ = read_name(pkt, (c & 0x3f) << 8 | pkt[off + 1], depth + 1)
            return labels + rest, off + 2
        off += 1
        if c == 0:
            return labels, off
        labels.append(pkt[off:off + c].decode("utf-8", "replace"))
        off += c
    raise ValueError("loop")


def ask(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    s.settimeout(2)
    s.sendto(hdr(1, ident=0x5151) + question("_adb._tcp.local", 12), RELAY)
    try:
        pkt = s.recv(1500)
    except socket.timeout:
        return
    ident, _, qd, an, _, _ = struct.unpack(">HHHHHH", pkt[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(pkt, off)
        off += 4
    for _ in range(an):
        _, off = read_name(pkt, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", pkt[off:off + 10])
        off += 10
        if rtype == 12:
            labels, _ = read_name(pkt, off)
            print("ANSWER", labels[0], flush=True)
        off += rdlen


if sys.argv[2] == "flood":
    flood(sys.argv[1], float(sys.argv[3]), int(sys.argv[4]))
else:
    ask(sys.argv[1])
