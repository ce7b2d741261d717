# SPDX-License-Identifier: Apache-2.0
# evil.sh - for guest-virtio-*.test: a relay whose route "evil" targets
# its own virtio device (with a hybrid socket), adb 29 as that route's PC,
# and the hostile guest (evil-guest.c) attacking that device. Sourced after
# lib.sh.

EVIL=${EVIL:-$top_builddir/tests/hostile/evil-guest}
HYBRID_CLIENT="python3 $top_srcdir/tests/hostile/hybrid-client.py"
VHOST=$TMP/vhost.sock
HYBRID=$TMP/hybrid.sock

# evil_relay [ROUTE-LINE]: the relay, with ROUTE-LINE in route evil
# (front tcp:127.0.0.1:$EVIL_FRONT)
evil_relay() {
	[ -x "$EVIL" ] || fail "$EVIL not built"
	EVIL_FRONT=$(free_port)
	hostile_relay "route evil {
    front tcp:127.0.0.1:$EVIL_FRONT
    target virtio:$VHOST:3:5555
    ${1:-}
}
virtio-hybrid $VHOST $HYBRID"
	wait_for 5 test -S "$HYBRID" || fail "no hybrid socket"
	pc_attach "127.0.0.1:$EVIL_FRONT"
}

# start_evil MODE [ARG]: the hostile guest on the device; its output in
# $TMP/evil.out
start_evil() {
	"$EVIL" "$VHOST" "$@" >"$TMP/evil.out" 2>>"$TMP/evil.log" &
	EVIL_PID=$!
	PIDS="$PIDS $EVIL_PID"
	wait_for 10 grep -q READY "$TMP/evil.out" || fail "evil guest did not start: $(cat "$TMP/evil.log")"
}

stop_evil() {
	kill "$EVIL_PID" 2>/dev/null
	wait "$EVIL_PID" 2>/dev/null
	pc_check "127.0.0.1:$EVIL_FRONT" "after the attack"
}

evil_alive() { kill -0 "$EVIL_PID" 2>/dev/null || fail "evil guest died: $(tail -n 3 "$TMP/evil.log")"; }

# live_while PID: check_live every second while PID runs (at most 60 times)
live_while() {
	local i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 60 ]; do
		check_live "during the attack"
		sleep 1
		i=$((i + 1))
	done
}
