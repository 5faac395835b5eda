#!/bin/sh
# HTTP/2 requests through mezited with kTLS, beside h2o and mezited in
# relay mode: tests/bench/ktls_h2.py inside a VM that boots Debian's own
# kernel (scripts/vm-run.sh), whose tls module this machine's kernel may
# lack.  The VM's CPU is qemu's "max" model, so that the guest's kernel
# and OpenSSL both find AES-NI, as on the host; the guest has no udev to
# load the kernel's AES-NI and CLMUL modules, so it is done here.  With
# TUNNELGEN (the path of a built tunnelgen) in the environment, the same
# VM then measures idle agent tunnels with and without kTLS
# (tests/bench/tunnels.py vm).  Prints the tables; with OUT.json, writes
# the HTTP/2 figures there, and with TUNNELS.json the tunnels' figures.
#
#	run-ktls.sh [OUT.json [TUNNELS.json]]
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$(mktemp -d "${TMPDIR:-/tmp}/mezite-ktls-h2.XXXXXX")
trap 'rm -rf "$out"' EXIT

# The guest sees the host's /tmp as its own empty tmpfs, but the output
# directory at the same path: tunnelgen goes there.
tunnels=
if [ -n "${TUNNELGEN:-}" ]; then
	cp "$TUNNELGEN" "$out/tunnelgen"
	tunnels="&& /usr/bin/python3 tests/bench/tunnels.py vm $top \
	    $out/tunnelgen $out/tunnels"
fi

rc=0
log=$(VM_CPU=max VM_OUT="$out" sh scripts/vm-run.sh "modprobe -a \
    aesni_intel ghash_clmulni_intel; export ${MEZITED:+MEZITED=$MEZITED} \
    BENCH_QUICK=${BENCH_QUICK:-0} ${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS} \
    ${BENCH_VM_TUNNELS:+BENCH_VM_TUNNELS=$BENCH_VM_TUNNELS}; \
    /usr/bin/python3 tests/bench/ktls_h2.py $top $out/ktls $tunnels") ||
    rc=$?
if [ $rc -ne 0 ] || [ ! -s "$out/ktls.txt" ] || [ ! -s "$out/ktls.json" ]
then
	printf '%s\n' "$log"
	echo "run-ktls: no figures from the VM" >&2
	exit 1
fi
if [ -n "$tunnels" ] &&
    { [ ! -s "$out/tunnels.txt" ] || [ ! -s "$out/tunnels.json" ]; }; then
	printf '%s\n' "$log"
	echo "run-ktls: no tunnel figures from the VM" >&2
	exit 1
fi
cat "$out/ktls.txt"
[ -z "$tunnels" ] || cat "$out/tunnels.txt"
[ $# -eq 0 ] || cp "$out/ktls.json" "$1"
[ $# -lt 2 ] || [ -z "$tunnels" ] || cp "$out/tunnels.json" "$2"
