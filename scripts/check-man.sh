#!/bin/sh
# make check-man: mandoc -Tlint -Wstyle on Mezite's manual pages, with a
# result that does not depend on the machine.  mandoc looks up every .Xr
# in the manual path.  Here that path holds Mezite's pages alone, so a
# reference from one of them to another must resolve; whether a system
# page (chroot(2), syslog(3), ...) is found depends on what the machine
# has installed, so "referenced manual not found" for a page that is not
# Mezite's is not counted.  Every other message fails the lint.
#
#	check-man.sh man/page.N ...
set -eu

[ $# -gt 0 ] || { echo "usage: $0 page ..." >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
manpath=$(mktemp -d "${TMPDIR:-/tmp}/mezite-man.XXXXXX")
trap 'rm -rf "$manpath"' EXIT

ours=""
for p in "$@"; do
	f=${p##*/}
	mkdir -p "$manpath/man${f##*.}"
	cp "$top/$p" "$manpath/man${f##*.}/"
	ours="$ours ${f%.*}"
done

cd "$top"
out=$(MANPATH=$manpath mandoc -Tlint -Wstyle "$@" 2>&1 |
    awk -v ours="$ours" '
	BEGIN { n = split(ours, a, " "); for (i = 1; i <= n; i++) own[a[i]] }
	# No mandoc.db in our manual path: mandoc says so, and searches it.
	/outdated mandoc\.db lacks/ { next }
	/referenced manual not found: Xr / {
		w = $0
		sub(/.*referenced manual not found: Xr /, "", w)
		split(w, x, " ")
		if (!(x[1] in own))
			next
	}
	{ print }') || { echo "check-man: mandoc failed" >&2; exit 1; }
if [ -n "$out" ]; then
	printf '%s\n' "$out"
	exit 1
fi
echo "man: lint clean"
