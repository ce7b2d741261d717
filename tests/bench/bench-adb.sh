#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench-adb.sh - make bench's lab part: the real adb client and the real
# adbd in a QEMU guest (tests/vm/scenarios/bench-adb.sh), push and pull
# through the relay against straight to adbd, side by side; prints the
# ratios and writes them to bench-adb.json. Uses the VM lab's cache
# (LAB_CACHE, default vm-lab in the build tree: the first run fetches
# Debian's packages and builds the image, minutes). A benchmark: it fails
# only if the lab cannot run, never on a figure.
#   bench-adb.sh [MIB [ROUNDS]]
: "${LAB_TIMEOUT:=1200}"
. "$(dirname "$0")/../vm/lab.sh"
lab_setup bench-adb
lab_boot bench-adb "lab.mib=${1:-64} lab.rounds=${2:-3}" || lab_die "scenario bench-adb"
sed -n 's/^LAB INFO \(bench\|cpu\) /\1 /p' "$LAB_CONSOLE.txt" | python3 -c '
import json, re, sys
rows, cpu = [], {}
way = r"adb ([\d.]+) adbd ([\d.]+) relay ([\d.]+) ms/MiB, guest idle (\d+)%"
for line in sys.stdin:
    m = re.match(r"bench (\S+) (tcp|usb) (push|pull) (\d+) MiB: relay (\d+) ms .* direct (\d+) ms .* relay/direct ([\d.]+)", line)
    if m:
        rows.append({"client": m[1], "link": m[2], "direction": m[3], "mib": int(m[4]),
                     "relay_ms": int(m[5]), "direct_ms": int(m[6]), "relay_per_direct": float(m[7])})
    m = re.match(r"cpu (\S+) (tcp|usb) (push|pull): relay way " + way + "; direct way " + way, line)
    if m:
        cpu[m[1], m[2], m[3]] = {
            "relay_way_cpu_ms_per_mib": {"adb": float(m[4]), "adbd": float(m[5]), "relay": float(m[6])},
            "relay_way_guest_idle_pct": int(m[7]),
            "direct_way_cpu_ms_per_mib": {"adb": float(m[8]), "adbd": float(m[9])},
            "direct_way_guest_idle_pct": int(m[11])}
for r in rows:
    r.update(cpu.get((r["client"], r["link"], r["direction"]), {}))
json.dump({"bench": "adb-lab", "runs": rows}, open("bench-adb.json", "w"))
print("bench-adb: %d figures in bench-adb.json" % len(rows))
'
