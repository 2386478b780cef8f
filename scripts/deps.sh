#!/bin/sh
# Install the Debian packages mtlsproxy needs to build and test, when any is
# missing. Quiet when everything is present.
set -eu

PKGS="build-essential pkg-config libssl-dev libevent-dev libyaml-dev check node-llhttp openssl curl nodejs python3 ca-certificates nginx"
# systemd integration: libsystemd to build with it; systemd-analyze,
# systemd-socket-activate and strace for its tests.  Installing the systemd
# package in a container is harmless: its scripts skip systemctl calls when
# systemd is not running.
PKGS="$PKGS libsystemd-dev systemd strace"

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
	echo "deps.sh: not a Debian-like system; install the equivalents of: $missing" >&2
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "deps.sh: missing packages: $missing" >&2
	echo "deps.sh: as root, run: apt-get update && apt-get install -y --no-install-recommends $missing" >&2
	exit 1
fi

echo "deps.sh: installing: $missing" >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
