# SPDX-License-Identifier: Apache-2.0
# lib.sh - helpers for VM lab scenarios, sourced inside the guest before the
# scenario script. A scenario is a list of steps; each step prints
# "LAB STEP name", then "LAB OK name" or "LAB FAIL name: reason" and the
# scenario stops at the first failure. Background processes are killed on
# exit; their logs are printed when a step fails.

LAB_STEP=none
LAB_LOGS=""
LAB_PIDS=""

step() { LAB_STEP=$1; echo "LAB STEP $1"; }
ok() { echo "LAB OK $LAB_STEP${1:+ $1}"; }
info() { echo "LAB INFO $*"; }

fail() {
	echo "LAB FAIL $LAB_STEP: $*"
	for f in $LAB_LOGS; do
		[ -f "$f" ] || continue
		echo "--- $f (last 25 lines)"
		tail -n 25 "$f"
	done
	exit 1
}

lab_cleanup() {
	for p in $LAB_PIDS; do kill "$p" 2>/dev/null; done
}
trap lab_cleanup EXIT

# modload NAME [PARAM=VALUE...]: insmod NAME's dependency chain in order,
# the parameters going to NAME itself
modload() {
	m=$1
	shift
	[ -f "/lab/modules/$m" ] || fail "module $m is not in the image"
	last=$(tail -n 1 "/lab/modules/$m")
	while read -r ko; do
		name=$(basename "$ko" .ko | tr - _)
		grep -q "^$name " /proc/modules && continue
		if [ "$ko" = "$last" ]; then
			insmod "$ko" "$@" || fail "insmod $ko $* failed"
		else
			insmod "$ko" || fail "insmod $ko failed"
		fi
	done < "/lab/modules/$m"
}

# spawn VAR LOG CMD...: start CMD in the background, output to LOG
spawn() {
	var=$1 logf=$2
	shift 2
	"$@" > "$logf" 2>&1 &
	eval "$var=$!"
	LAB_PIDS="$LAB_PIDS $!"
	case " $LAB_LOGS " in *" $logf "*) ;; *) LAB_LOGS="$LAB_LOGS $logf" ;; esac
}

# ms: milliseconds since boot
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# wait_for SECS CMD...: run CMD every 0.1 s until it succeeds or SECS pass
wait_for() {
	end=$(( $(ms) + $1 * 1000 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}
