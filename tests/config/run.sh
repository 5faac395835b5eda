#!/bin/sh
#
# Configuration golden tests (make check-config), run from anywhere:
#
#	NN.conf		must parse; the output of mezited -nv must equal
#			NN.ok.  NN.args holds extra arguments (-D ...).
#	bad-NN.conf	must fail with exit status 1, and stderr must equal
#			bad-NN.err: the file:line: message lines.
#
# MEZITED names the binary to test (default master/mezited, as built).
# UPDATE=1 rewrites the expected files from the output instead: read them
# before committing.

set -u
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
LC_ALL=C
export LC_ALL
MEZITED=${MEZITED:-./master/mezited}
UPDATE=${UPDATE:-0}
dir=tests/config

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mezite-config.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Git does not keep modes: private keys must be 0600, and bad-09 needs
# one that others can read.
set_modes() {
	chmod 600 $dir/key.pem $dir/auth-key.pem &&
	    chmod 644 $dir/key-open.pem
}
set_modes || exit 1

# As root, mezited -n also checks that the users and chroots named exist;
# the expected output must not depend on this machine's accounts.  Root
# therefore runs the tests as nobody, in a copy of the files that nobody
# owns (same relative paths, so the same messages).
run=
if [ "$(id -u)" = 0 ]; then
	uid=$(id -u nobody) && gid=$(id -g nobody) || exit 1
	mkdir -p $tmp/top/tests && cp -R $dir $tmp/top/tests/ &&
	    cp "$MEZITED" $tmp/mezited || exit 1
	chown -R $uid:$gid $tmp/top || exit 1
	chmod 755 $tmp $tmp/mezited || exit 1
	MEZITED=$tmp/mezited
	run="setpriv --reuid=$uid --regid=$gid --clear-groups"
	cd $tmp/top && set_modes || exit 1
fi

pass=0
fail=0

ok() {
	pass=$((pass + 1))
}

failed() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

for conf in $dir/[0-9][0-9].conf; do
	n=${conf%.conf}
	args=
	if [ -f $n.args ]; then
		args=$(cat $n.args)
	fi
	# shellcheck disable=SC2086
	$run $MEZITED -nv $args -f $conf >$tmp/out 2>$tmp/err
	rc=$?
	if [ $rc -ne 0 ]; then
		failed "$conf: exit status $rc"
		cat $tmp/err
	elif [ "$UPDATE" = 1 ]; then
		cp $tmp/out $top/$n.ok
		ok
	elif diff -u $n.ok $tmp/out; then
		ok
	else
		failed "$conf: output differs from $n.ok"
	fi
done

for conf in $dir/bad-[0-9][0-9].conf; do
	n=${conf%.conf}
	$run $MEZITED -n -f $conf >$tmp/out 2>$tmp/err
	rc=$?
	if [ $rc -ne 1 ]; then
		failed "$conf: exit status $rc, not 1"
		cat $tmp/err
	elif [ "$UPDATE" = 1 ]; then
		cp $tmp/err $top/$n.err
		ok
	elif diff -u $n.err $tmp/err; then
		ok
	else
		failed "$conf: messages differ from $n.err"
	fi
done

echo "config: $pass passed, $fail failed"
[ $fail -eq 0 ]
