#!/bin/sh
# Install the Debian packages that Mezite needs, those missing only:
#
#	deps.sh [build]	build mezited and mezctl, and run make demo
#	deps.sh bench	make bench: the build's, the peers it is measured
#			against, and the VM of its kTLS part
#	deps.sh check	make check: all of the above, and the test tools
#
# No package installed here starts or enables a service: HAProxy's and
# h2o's would listen on ports 80 and 443, and the bench runs its own on
# loopback ports.  They are installed with a policy-rc.d that forbids
# starting any service, then disabled; one that started all the same is
# stopped.
set -eu

BUILD="build-essential pkg-config byacc libbsd-dev libtls-dev libssl-dev
libevent-dev libh2o-evloop-dev libprotobuf-c-dev protobuf-c-compiler
libnghttp2-dev libsqlite3-dev libcrypt-dev libssh-dev libseccomp-dev openssl
netbase curl"

# scripts/vm-run.sh: Debian's kernel (it has the tls module) under qemu,
# with a busybox initramfs; the guest's network is configured with ip.
VM="qemu-system-x86 linux-image-amd64 busybox-static cpio kmod iproute2"

# perf for BENCH_PROFILE=1 (tests/bench/README.md, "Where a handshake's
# time goes").
BENCH="haproxy h2o nghttp2-client python3 procps linux-perf $VM"

# make check-fresh bootstraps its Debian root with mmdebstrap and clones
# the tree with git; the hostile suite shuts a channel down from inside
# a worker with gdb and finds it with ss (iproute2); the auth worker's
# tests are a real gRPC client (grpcio, with stubs protoc generates) and
# sqlite3 looking at its store; python3-h2 sends what a gRPC library will
# not (malformed messages, floods of streams).  The tunnel's tests put a
# real sshd behind agents, an agent behind tinyproxy, and sign expired
# certificates with python3-cryptography; the bastion's logins are
# accounts the tests add with useradd (passwd); sslscan looks at the
# port's protocols and ciphers as a scanner would.
CHECK="check mandoc clang libclang-rt-14-dev python3-pytest psmisc
valgrind util-linux mmdebstrap git gdb python3-grpcio python3-protobuf
python3-h2 python3-cryptography protobuf-compiler sqlite3 openssh-server
openssh-client tinyproxy ssh-audit passwd sslscan $BENCH"

# Packages that come with a service, as package=service where the names
# differ: the tests start their own instances, never the system's.
SERVICES="haproxy h2o tinyproxy openssh-server=ssh"

case ${1:-build} in
build)	pkgs=$BUILD ;;
bench)	pkgs="$BUILD $BENCH" ;;
check)	pkgs="$BUILD $CHECK" ;;
*)	echo "usage: $0 [build | bench | check]" >&2; exit 2 ;;
esac

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'ok installed'
}

missing=""
for p in $pkgs; do
	case " $missing " in *" $p "*) continue ;; esac
	installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Services of packages installed now, with whether their pid file was
# already there (then the process is not ours to stop).
ours=""
for ps in $SERVICES; do
	p=${ps%=*}
	s=${ps#*=}
	case " $missing " in
	*" $p "*)
		pre=no
		[ ! -e "/run/$s.pid" ] || pre=yes
		ours="$ours $s:$pre" ;;
	esac
done

policy=/usr/sbin/policy-rc.d
made_policy=""
cleanup() {
	[ -z "$made_policy" ] || $SUDO rm -f "$policy"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# Mezite deps.sh: no service starts while it installs.\nexit 101\n' |
	    $SUDO tee "$policy" >/dev/null
	$SUDO chmod 0755 "$policy"
	made_policy=yes
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

# Disabled for every init: systemd's unit links (made whether or not
# systemd runs), the System V links, and stopped if running after all.
for sp in $ours; do
	s=${sp%:*}
	pre=${sp#*:}
	if [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now --quiet "$s.service" || :
	elif command -v deb-systemd-helper >/dev/null 2>&1; then
		$SUDO deb-systemd-helper disable "$s.service" >/dev/null 2>&1 || :
	fi
	if [ -x "/etc/init.d/$s" ]; then
		$SUDO update-rc.d "$s" disable >/dev/null 2>&1 || :
		if [ "$pre" = no ] && [ -e "/run/$s.pid" ]; then
			echo "deps: $s started while installing; stopping it"
			$SUDO "/etc/init.d/$s" stop >/dev/null 2>&1 || :
		fi
	fi
	if [ "$pre" = no ] && [ -s "/run/$s.pid" ] &&
	    [ -d "/proc/$(cat "/run/$s.pid")" ]; then
		echo "deps: $s is still running as its service" >&2
		exit 1
	fi
	echo "deps: $s installed, its service stopped and disabled"
done
