#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mdns-peer.py - an independent mDNS implementation (python3-zeroconf) on
one interface address, for the mDNS tests. One line per event, flushed:

  mdns-peer.py ADDR browse SECONDS
      browse _adb._tcp.local: "ADD <instance> <address> <port>" once an
      instance resolves, "REMOVE <instance>" when it goes (a goodbye, or
      its TTL)
  mdns-peer.py ADDR register NAME PORT SECONDS
      hold instance NAME._adb._tcp.local (host zc-peer.local, ADDR, PORT);
      "READY" once zeroconf has probed and announced it
"""
import socket
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

TYPE = "_adb._tcp.local."


def say(*words):
    print(*words, flush=True)


def browse(zc, seconds):
    def changed(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            info = zeroconf.get_service_info(service_type, name, timeout=3000)
            if info is None:
                say("UNRESOLVED", name)
                return
            for addr in info.parsed_addresses():
                say("ADD", name, addr, info.port)
        elif state_change is ServiceStateChange.Removed:
            say("REMOVE", name)

    ServiceBrowser(zc, TYPE, handlers=[changed])
    say("READY")
    time.sleep(seconds)


def register(zc, addr, name, port, seconds):
    info = ServiceInfo(TYPE, "%s.%s" % (name, TYPE), addresses=[socket.inet_aton(addr)],
                       port=port, server="zc-peer.local.")
    zc.register_service(info)
    say("READY")
    time.sleep(seconds)


def main():
    addr, mode = sys.argv[1], sys.argv[2]
    zc = Zeroconf(interfaces=[addr], ip_version=IPVersion.V4Only)
    try:
        if mode == "browse":
            browse(zc, float(sys.argv[3]))
        else:
            register(zc, addr, sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    finally:
        zc.close()


main()
