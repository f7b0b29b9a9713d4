#!/usr/bin/env bash
# deps.sh: install the Debian packages apiscale needs, if any is missing.
#
#   deps.sh       what make, make test and make demo need
#   deps.sh deb   what make deb and make deb-test need
#
# Works as root or as a normal user with sudo.  Set APISCALE_NO_APT=1 to
# only report what is missing.
set -euo pipefail

DEB_PACKAGES=(
	build-essential
	debhelper
	dpkg-dev
	fakeroot
	# pg_buildext, which builds the extension for each PostgreSQL version
	postgresql-server-dev-all
	postgresql-server-dev-15
	libevent-dev
	libinih-dev
	libkrb5-dev
	libpq-dev
	libssl-dev
	lintian
	# systemd-analyze verify, for the units
	systemd
)

PACKAGES=(
	build-essential
	clang
	# libFuzzer and the sanitizer runtimes clang links: only a Recommends
	# of clang, which --no-install-recommends below skips.
	libclang-rt-dev
	clang-format
	postgresql-15
	postgresql-server-dev-15
	# gssapi/gssapi.h: libpq/libpq.h (errors.c wraps the protocol layer)
	# includes it on Debian's GSS-enabled server build
	libkrb5-dev
	postgresql-contrib
	libevent-dev
	libinih-dev
	libpq-dev
	libssl-dev
	openssl
	pgbouncer
	# promtool, to check and unit-test contrib/prometheus/'s alerting rules
	prometheus
	python3
	python3-pytest
	python3-psycopg
	python3-psycopg2
	python3-asyncpg
	python3-sqlalchemy
	chromium # headless, for tests/pooler/test_dashboard.py
	valgrind
	# the pooler tests move its clock (pool_recycle = -1)
	libfaketime
	# ss: the pooler tests read TCP counters to see what it buffers
	iproute2
	# (promtool also checks apiscale.metrics(): tests/monitoring/metrics.py)
	# a load balancer in front of two poolers (tests/pooler/test_instances.py)
	haproxy
	# random SQL against the extension (tests/sqlsmith/run.sh)
	sqlsmith
)

if [ "${1:-}" = deb ]; then
	PACKAGES=("${DEB_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${APISCALE_NO_APT:-}" = 1 ]; then
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	SUDO="sudo"
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Do not let the Debian package start (and keep running) its own cluster.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
