#!/bin/sh
# Install the Debian packages Mezite needs to build and test, if missing.
set -eu

PKGS="build-essential pkg-config byacc libbsd-dev libtls-dev libssl-dev
libevent-dev libh2o-evloop-dev libprotobuf-c-dev protobuf-c-compiler
check mandoc clang libclang-rt-14-dev curl openssl nghttp2-client
python3 python3-pytest procps psmisc valgrind util-linux
qemu-system-x86 linux-image-amd64 busybox-static cpio kmod iproute2
haproxy h2o"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
