#!/bin/sh
# Build mezited another way in a copy of the tree and run the integration
# suite against it (and, for the sanitizers, the rest of make check that
# runs our code: the unit suites, the configuration goldens and the gRPC
# layer, unless VARIANT_UNIT=no; the fuzz targets always run under them):
#
#	sanitize	AddressSanitizer and UndefinedBehaviorSanitizer; any
#			report fails the run, even one from a child that the
#			supervisor then restarted (tests/integration/conftest.py
#			looks)
#	libtls		the master's libtls engine (make TLS=libtls), which
#			relays every session
#
# Tests marked heavy (a minute's outage, a hundred agents, 50 MB each
# way) run against the plain build only: their code paths are those of
# the others, at a size that costs minutes under the sanitizers.  So do
# those marked build, which run make on the tree, not the variant.
#
# VARIANT_TESTS in the environment names the test files to run (paths
# from the top of the tree); default: the whole suite.  make check-fresh
# runs a few, since the machine's own make check has run all of them
# against the same build.
set -eu

MEZITED_TLS=openssl
case ${1:-} in
sanitize)	vars="SANITIZE=1"
		# Two masters in every mezited: the default runs one per CPU.
		MEZITE_TEST_MASTERS=${MEZITE_TEST_MASTERS:-2} ;;
libtls)		vars="TLS=libtls" MEZITED_TLS=libtls ;;
*)		echo "usage: $0 sanitize | libtls" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mezite-$1.XXXXXX")
chmod 0755 "$work"	# the suite runs mezctl as nobody
trap 'rm -rf "$work"' EXIT

cd "$top"
git ls-files -z | xargs -0 cp --parents -t "$work" 2>/dev/null ||
    tar cf - --exclude='*.o' . | (cd "$work" && tar xf -)
make -C "$work" -s $vars master/mezited mezctl/mezctl msh/msh mezd/mezd

# These run where LeakSanitizer can read /proc: leaks fail them too.
if [ "$1" = sanitize ] && [ "${VARIANT_UNIT:-yes}" != no ]; then
	ASAN_OPTIONS="abort_on_error=1" \
	    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	    make -C "$work" -s $vars check-unit check-config check-grpc
	echo "$1: unit, configuration and gRPC tests passed"
fi

# Children run chrooted, where LeakSanitizer cannot read /proc.  Reports
# go to stderr, which is the daemon log the suite checks after each test.
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS UBSAN_OPTIONS MEZITED_TLS
[ -z "${MEZITE_TEST_MASTERS:-}" ] || export MEZITE_TEST_MASTERS
MEZITED="$work/master/mezited" MEZCTL="$work/mezctl/mezctl" \
    MSH="$work/msh/msh" MEZD="$work/mezd/mezd" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider -m "not heavy and not build" \
    ${VARIANT_TESTS:-tests/integration}
echo "$1: integration tests passed"
