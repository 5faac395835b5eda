#!/bin/sh
# HTTP/2 requests through mezited with kTLS, beside h2o and mezited in
# relay mode: tests/bench/ktls_h2.py inside a VM that boots Debian's own
# kernel (scripts/vm-run.sh), whose tls module this machine's kernel may
# lack.  The VM's CPU is qemu's "max" model, so that the guest's kernel
# and OpenSSL both find AES-NI, as on the host; the guest has no udev to
# load the kernel's AES-NI and CLMUL modules, so it is done here.
#
#	run-ktls.sh [OUT.json]
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
rc=0
out=$(VM_CPU=max sh scripts/vm-run.sh "modprobe -a aesni_intel \
    ghash_clmulni_intel; ${MEZITED:+MEZITED=$MEZITED} \
    BENCH_QUICK=${BENCH_QUICK:-0} \
    BENCH_RUNS=${BENCH_RUNS:-3} /usr/bin/python3 tests/bench/ktls_h2.py $top") ||
    rc=$?
if [ $rc -ne 0 ]; then
	printf '%s\n' "$out"
	exit $rc
fi
# The table, without the console's noise around it.
printf '%s\n' "$out" | sed -n 's/^.*\(== HTTP\/2 requests with the\)/\1/
    /^== HTTP\/2 requests with the/,/^GUEST_RC=/p' |
    grep -v '^GUEST_RC=\|^KTLS_H2_JSON '
if [ $# -ge 1 ]; then
	printf '%s\n' "$out" | sed -n 's/^KTLS_H2_JSON //p' > "$1"
	[ -s "$1" ] || { echo "run-ktls: no figures from the VM" >&2; exit 1; }
fi
