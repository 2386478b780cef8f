#!/bin/sh
# Install the Debian packages `make bench` needs, when any is missing: the
# nginx it compares against (with its stream module, a separate package on
# Debian), ab, and the clients the benchmark drives. Only for the benchmark;
# `make check` does not need them. Quiet when everything is present.
set -eu

PKGS="nginx libnginx-mod-stream apache2-utils openssl curl nodejs python3 procps"

missing=
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
missing=${missing# }
[ -z "$missing" ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "bench/deps.sh: not a Debian-like system; install the equivalents of: $missing" >&2
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "bench/deps.sh: missing packages: $missing" >&2
	echo "bench/deps.sh: as root, run: apt-get update && apt-get install -y --no-install-recommends $missing" >&2
	exit 1
fi

echo "bench/deps.sh: installing: $missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
