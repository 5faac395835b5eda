#!/bin/sh
# HTTP/2 requests through mezited with kTLS, beside h2o and mezited in
# relay mode: tests/bench/ktls_h2.py inside a VM that boots Debian's own
# kernel (scripts/vm-run.sh), whose tls module this machine's kernel may
# lack.  The VM's CPU is qemu's "max" model, so that the guest's kernel
# and OpenSSL both find AES-NI, as on the host; the guest has no udev to
# load the kernel's AES-NI and CLMUL modules, so it is done here.  Prints
# the table; with OUT.json, writes the figures there.
#
#	run-ktls.sh [OUT.json]
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$(mktemp -d "${TMPDIR:-/tmp}/mezite-ktls-h2.XXXXXX")
trap 'rm -rf "$out"' EXIT

rc=0
log=$(VM_CPU=max VM_OUT="$out" sh scripts/vm-run.sh "modprobe -a \
    aesni_intel ghash_clmulni_intel; ${MEZITED:+MEZITED=$MEZITED} \
    BENCH_QUICK=${BENCH_QUICK:-0} ${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS} \
    /usr/bin/python3 tests/bench/ktls_h2.py $top $out/ktls") || rc=$?
if [ $rc -ne 0 ] || [ ! -s "$out/ktls.txt" ] || [ ! -s "$out/ktls.json" ]
then
	printf '%s\n' "$log"
	echo "run-ktls: no figures from the VM" >&2
	exit 1
fi
cat "$out/ktls.txt"
[ $# -eq 0 ] || cp "$out/ktls.json" "$1"
