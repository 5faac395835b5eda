#!/bin/sh
# make check-fresh: make demo and make check work the first time they are
# run on a fresh Debian 12.  A minimal Debian 12 root is made with
# mmdebstrap --variant=apt (the package set of the debian:bookworm
# container image), with only what it takes to get the tree in added
# (ca-certificates, git, make, sudo), and kept pristine.  Then, each in
# a copy of that root of its own, so that each is the first thing run
# there, in a clone of this repository's HEAD under /root (mode 0700, as
# a home directory is):
#
#	demo	make demo, once, in the background on a free port; it must
#		serve /healthz, and is stopped
#	check	make check, the whole of it, except that the integration
#		suite takes the files that use a program from a package
#		(curl, nghttp, h2load, grpcio, OpenSSH, tinyproxy,
#		ssh-audit, sslscan) and its runs against the sanitizer
#		and libtls builds a few files each (INTEGRATION_TESTS, VARIANT_TESTS,
#		and not the unit suites under the sanitizers: VARIANT_UNIT=no;
#		under valgrind, one suite: VALGRIND_TESTS):
#		packages, builds and paths are what a first run can get
#		wrong, and the machine's own make check runs every test
#		against the same tree; the tests marked heavy are left
#		out (HEAVY=no), for the same reason; and each fuzz target
#		runs 2 s, not 5
#
# Neither phase may leave a process running in its root, nor the
# service of HAProxy, h2o, tinyproxy or OpenSSH's sshd enabled there.  The roots are unmounted and removed
# whatever happens.  Run as root.
#
# Environment: FRESH_MIRROR and FRESH_SECURITY (the Debian mirrors;
# default: the ones this machine's apt uses), FRESH_PHASES (default
# "demo check"), FRESH_TMP (where the roots go; default /var/tmp),
# FRESH_KEEP=1 (leave the roots, unmounted, for a look afterwards).
set -eu

if [ -n "${MEZITE_FRESH_ROOT:-}" ]; then
	echo "check-fresh: already inside a fresh root; not nesting another"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "check-fresh: run as root: it makes a Debian root and chroots" \
	    "into it" >&2
	exit 1
fi
for t in mmdebstrap git curl python3; do
	command -v $t >/dev/null 2>&1 ||
	    { echo "check-fresh: $t missing; make deps-check installs it" >&2
	    exit 1; }
done

cd "$(dirname "$0")/.."
repo=$(git rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
	echo "check-fresh: note: uncommitted changes are not tested; HEAD is"
fi
phases=${FRESH_PHASES:-demo check}

# The mirrors this machine's apt uses, from its deb822 sources or its
# sources.list; Debian's own otherwise.
mirror_of() {
	suite=$1
	m=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk -v s="$suite" '
		    /^[ \t]*$/ { u = ""; ok = 0; next }
		    /^URIs:/ { u = $2 }
		    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
		    u != "" && ok { print u; exit }' \
		    /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' \
		    /etc/apt/sources.list)
	fi
	echo "$m"
}
mirror=${FRESH_MIRROR:-$(mirror_of bookworm)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${FRESH_SECURITY:-$(mirror_of bookworm-security)}
security=${security:-http://deb.debian.org/debian-security}

# Not /tmp, which may be memory: a root with make check's packages
# takes about 3 GB.
work=$(mktemp -d "${FRESH_TMP:-/var/tmp}/mezite-fresh.XXXXXX")
roots=""

# Every process whose root is in one of ours: the chroot's, and those
# that chrooted further down from there.
procs_in() {
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case $r in
		"$1" | "$1"/*) echo "${p#/proc/}" ;;
		esac
	done
}

kill_in() {
	for sig in TERM KILL; do
		pids=$(procs_in "$1")
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		kill -$sig $pids 2>/dev/null || :
		sleep 2
	done
}

unmount_root() {
	for m in dev sys proc; do
		if mountpoint -q "$1/$m"; then
			umount -R "$1/$m" 2>/dev/null || umount -R -l "$1/$m"
		fi
	done
}

remove_root() {
	kill_in "$1"
	unmount_root "$1"
	# Nothing may be mounted below it any more: never remove through a
	# bind of the machine's own /dev or /sys.
	if awk -v r="$1/" 'index($2 "/", r) == 1 { found = 1 }
	    END { exit !found }' /proc/self/mounts; then
		echo "check-fresh: $1 still has mounts; left in place" >&2
		return 1
	fi
	if [ "${FRESH_KEEP:-0}" = 1 ]; then
		echo "check-fresh: kept $1"
		return 0
	fi
	rm -rf --one-file-system "$1"
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	for r in $roots; do
		remove_root "$r" || rc=1
	done
	[ "${FRESH_KEEP:-0}" = 1 ] || rm -rf --one-file-system "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

now() {
	date +%s
}

# A copy of the pristine root, with the machine's proc, sys and dev (as
# slaves, so that nothing unmounted there goes back) and the tree cloned
# under /root.
new_root() {
	r="$work/$1"
	roots="$roots $r"
	cp -a "$work/base" "$r"
	mount -t proc proc "$r/proc"
	mount --rbind /sys "$r/sys"
	mount --make-rslave "$r/sys"
	mount --rbind /dev "$r/dev"
	mount --make-rslave "$r/dev"
	git -c advice.detachedHead=false clone -q "$repo" "$r/root/mezite"
	git -C "$r/root/mezite" -c advice.detachedHead=false checkout -q \
	    --detach "$head"
}

# The environment of a command in a root, as a login into a fresh
# container would have it: nothing from this make or this environment.
root_env="HOME=/root LANG=C.UTF-8 TERM=dumb MEZITE_FRESH_ROOT=1
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Nothing of a phase may outlive it, and what deps.sh installed must not
# be set to start at boot.
check_left() {
	r=$1
	bad=0
	pids=$(procs_in "$r")
	if [ -n "$pids" ]; then
		echo "check-fresh: $2 left processes running:" >&2
		# shellcheck disable=SC2086
		ps -o pid,args -p "$(echo $pids | tr ' ' ,)" >&2 || :
		bad=1
	fi
	for s in haproxy h2o tinyproxy ssh; do
		for l in "$r"/etc/rc[2-5].d/S*"$s" \
		    "$r/etc/systemd/system/multi-user.target.wants/$s.service"; do
			[ ! -e "$l" ] && [ ! -L "$l" ] && continue
			echo "check-fresh: $2 left $s enabled: ${l#"$r"}" >&2
			bad=1
		done
	done
	[ -e "$r/usr/sbin/policy-rc.d" ] && {
		echo "check-fresh: $2 left /usr/sbin/policy-rc.d" >&2
		bad=1
	}
	return $bad
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

phase_demo() {
	r="$work/demo"
	new_root demo
	port=$(free_port)
	log="$work/demo.log"
	t0=$(now)
	# shellcheck disable=SC2086
	setsid chroot "$r" /usr/bin/env -i $root_env /bin/sh -c \
	    "cd /root/mezite && exec make demo DEMO_PORT=$port" \
	    > "$log" 2>&1 < /dev/null &
	pid=$!
	served=""
	while [ $(($(now) - t0)) -lt 900 ]; do
		if [ "$(curl -sk --max-time 5 \
		    "https://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ]; then
			served=yes
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	t1=$(now)
	# Stop it as Ctrl-C would: its whole process group.
	kill -INT "-$pid" 2>/dev/null || :
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do
		sleep 1
		i=$((i + 1))
	done
	kill -KILL "-$pid" 2>/dev/null || :
	wait "$pid" 2>/dev/null || :
	if [ -z "$served" ]; then
		cat "$log"
		echo "check-fresh: make demo did not serve /healthz on its" \
		    "first run ($((t1 - t0)) s)" >&2
		return 1
	fi
	grep -q "curl -k https://127.0.0.1:$port/" "$log" || {
		cat "$log"
		echo "check-fresh: make demo did not say what to try" >&2
		return 1
	}
	echo "check-fresh: demo: the first make demo served /healthz after" \
	    "$((t1 - t0)) s (packages, build, start)"
	check_left "$r" "make demo"
	remove_root "$r"
	roots=$(echo "$roots" | sed "s|$r||")
}

# One line: it goes through make's command line and a recipe's.
v=tests/integration
variant_tests="$v/test_routing.py $v/test_clientcert.py $v/test_transfer.py"
variant_tests="$variant_tests $v/test_auth.py"
integration_tests="test_setup.py test_routing.py test_clientcert.py"
integration_tests="$integration_tests test_transfer.py test_auth.py"
integration_tests="$integration_tests test_hostile_https.py test_tunnel.py"
integration_tests="$integration_tests test_ssh.py test_msh_ssh.py"
integration_tests="$integration_tests test_tlsscan.py"

phase_check() {
	r="$work/check"
	new_root check
	t0=$(now)
	# shellcheck disable=SC2086
	if ! chroot "$r" /usr/bin/env -i $root_env /bin/sh -c \
	    "cd /root/mezite && make check FUZZ_TIME=2 HEAVY=no \
	    INTEGRATION_TESTS='$integration_tests' \
	    VARIANT_TESTS='$variant_tests' VARIANT_UNIT=no \
	    VALGRIND_TESTS=tests/unit/check_imsg" \
	    < /dev/null; then
		echo "check-fresh: make check failed on its first run" \
		    "($(($(now) - t0)) s)" >&2
		return 1
	fi
	echo "check-fresh: check: the first make check passed in" \
	    "$(($(now) - t0)) s"
	check_left "$r" "make check"
	remove_root "$r"
	roots=$(echo "$roots" | sed "s|$r||")
}

echo "check-fresh: Debian 12 from $mirror and $security; testing $head"
t0=$(now)
mkdir "$work/base"
chmod 0755 "$work" "$work/base"
if ! mmdebstrap --variant=apt --include=ca-certificates,git,make,sudo \
    bookworm "$work/base" "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main" > "$work/mmdebstrap.log" 2>&1
then
	cat "$work/mmdebstrap.log"
	echo "check-fresh: mmdebstrap failed" >&2
	exit 1
fi
echo "check-fresh: root: made in $(($(now) - t0)) s"
start=$t0

for p in $phases; do
	case $p in
	demo)	phase_demo ;;
	check)	phase_check ;;
	*)	echo "check-fresh: no phase $p" >&2; exit 2 ;;
	esac
done
echo "check-fresh: passed in $(($(now) - start)) s"
