#!/bin/sh
# make bench: mezited side by side with HAProxy -> h2o, h2o alone and an
# in-process TLS sink, on loopback.  Installs the peers if missing, builds
# the helpers into a temporary directory, builds mezited again with the
# keys in the master (KEYS=master), makes one certificate, and
# hands over to bench.py, which starts the servers, measures, stops them
# and prints the table; then tunnels.py measures agent tunnels against
# HAProxy, and run-ktls.sh what kTLS changes, in a VM.  See
# tests/bench/README.md.
#
# Environment: MEZITED (another build), BENCH_RUNS (>= 3), BENCH_OUT
# (also write the table and the raw figures there), BENCH_PROFILE=1,
# BENCH_KEEP=1 (keep the work directory), and the per-measurement knobs
# documented in the README.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tests/bench"

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: run as root: mezited drops to nobody in chroots of its" \
	    "own, and the servers get cgroups" >&2
	exit 1
fi

# The peers and the VM, when missing; their services neither started
# nor enabled.
sh "$top/scripts/deps.sh" bench

mezited=${MEZITED:-$top/master/mezited}
[ -x "$mezited" ] || { echo "bench: $mezited missing; run make" >&2; exit 1; }

work=$(mktemp -d /tmp/mezite-bench.XXXXXX)
chmod 0755 "$work"
pypid=""

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$pypid" ] && kill -0 "$pypid" 2>/dev/null; then
		kill -TERM "$pypid" 2>/dev/null || :
		i=0
		while kill -0 "$pypid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.2
			i=$((i + 1))
		done
		kill -KILL "$pypid" 2>/dev/null || :
	fi
	# Every server bench.py started, by PID, and what they forked
	# (their cgroup, if they had one).
	if [ -f "$work/pids" ]; then
		for p in $(cat "$work/pids"); do
			kill -TERM "$p" 2>/dev/null || :
		done
	fi
	for cg in /sys/fs/cgroup/mezite-bench.$$ \
	    /sys/fs/cgroup/unified/mezite-bench.$$; do
		[ -d "$cg" ] || continue
		for d in "$cg"/*/; do
			[ -f "$d/cgroup.procs" ] || continue
			for p in $(cat "$d/cgroup.procs"); do
				kill -KILL "$p" 2>/dev/null || :
			done
		done
	done
	if [ -f "$work/pids" ]; then
		for p in $(cat "$work/pids"); do
			kill -KILL "$p" 2>/dev/null || :
		done
	fi
	for cg in /sys/fs/cgroup/mezite-bench.$$ \
	    /sys/fs/cgroup/unified/mezite-bench.$$; do
		[ -d "$cg" ] || continue
		sleep 0.2
		rmdir "$cg"/*/ "$cg" 2>/dev/null || :
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The C helpers: the load generator, the TLS sink and the generator of
# agent tunnels.
mkdir -p "$work/bin" "$work/pki"
CFLAGS_BENCH="-O2 -g -Wall -Wextra -Wno-unused-parameter"
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$work/bin/loadgen" "$here/loadgen.c" -lssl -lcrypto
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$work/bin/tlssink" "$here/tlssink.c" -lssl -lcrypto
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$work/bin/tunnelgen" "$here/tunnelgen.c" -lssl -lcrypto

# One ECDSA P-256 certificate for every server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 3 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/pki/key.pem" -out "$work/pki/cert.pem" 2>/dev/null
chmod 0600 "$work/pki/key.pem"
cat "$work/pki/cert.pem" "$work/pki/key.pem" > "$work/pki/haproxy.pem"
chmod 0600 "$work/pki/haproxy.pem"

# The same tree built with the TLS keys in the master (KEYS=master): its
# new connections beside mezited's price the ca process's round trip.
# Not when MEZITED names another build, which it would not match.
if [ -z "${MEZITED:-}" ]; then
	mkdir "$work/km"
	(cd "$top" && { git ls-files -z 2>/dev/null |
	    xargs -0 cp --parents -t "$work/km" 2>/dev/null ||
	    tar cf - --exclude='*.o' . | (cd "$work/km" && tar xf -); })
	make -C "$work/km" -s -j2 KEYS=master master/mezited >/dev/null
	export MEZITED_KM="$work/km/master/mezited"
fi

# Bounded overall: bench.py gives up before BENCH_MAX_SECS (780 s), and
# timeout(1) is the backstop.
export BENCH_CGROUP="mezite-bench.$$"
timeout -k 10 840 /usr/bin/python3 "$here/bench.py" "$work" "$top" &
pypid=$!
wait "$pypid"

# Agent tunnels: idle tunnels' memory beside HAProxy's idle mTLS
# connections, and one stream through a tunnel beside HAProxy in TCP
# mode (BENCH_TUNNEL=0 skips them, here and in the VM).
tunnel=${BENCH_TUNNEL:-1}
if [ "$tunnel" = 1 ]; then
	timeout -k 10 420 /usr/bin/python3 "$here/tunnels.py" host "$work" \
	    "$top" "$work/tunnels" &
	pypid=$!
	wait "$pypid"
	[ -z "${BENCH_OUT:-}" ] || {
		cat "$work/tunnels.txt" >> "$BENCH_OUT"
		cp "$work/tunnels.json" "$BENCH_OUT.tunnels.json"
	}
fi

# The SSH bastion against an OpenSSH jump host (BENCH_SSH=0 skips it).
if [ "${BENCH_SSH:-1}" = 1 ]; then
	echo
	s="$work/ssh.txt"
	timeout -k 10 300 /usr/bin/python3 "$here/sshbench.py" "$work" \
	    "$top" > "$s" &
	pypid=$!
	wait "$pypid" || { cat "$s"; exit 1; }
	cat "$s"
	[ -z "${BENCH_OUT:-}" ] || cat "$s" >> "$BENCH_OUT"
fi

# HTTP/2 with the session in the kernel, in a VM whose kernel has TLS
# support, and idle tunnels with kTLS (BENCH_KTLS=0 skips it).
if [ "${BENCH_KTLS:-1}" = 1 ]; then
	echo
	k="$work/ktls.txt"
	[ "$tunnel" != 1 ] || export TUNNELGEN="$work/bin/tunnelgen"
	sh "$here/run-ktls.sh" ${BENCH_OUT:+"$BENCH_OUT.ktls.json" \
	    "$BENCH_OUT.tunnels-vm.json"} > "$k" || { cat "$k"; exit 1; }
	cat "$k"
	[ -z "${BENCH_OUT:-}" ] || cat "$k" >> "$BENCH_OUT"
fi
