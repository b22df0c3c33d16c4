#!/usr/bin/env bash
# Build the `python:slim` stand-in rootfs from Debian's packages with mmdebstrap.
# No public image registry is reachable here, so the article's base image is made locally:
# Debian bookworm with python3, pip, setuptools, Django, gunicorn and gettext.
# The tarball is cached by the hash of this script, so a second run is instant.
# Usage: scripts/base-image.sh [OUT.tar]   (prints the path of the tarball)
# -- arch --
# ARCH=arm64 scripts/base-image.sh: the same base for a Debian architecture (run under
# emulation: needs qemu-user-static and its binfmt_misc handler, see README "Platforms"),
# cached as python-slim-bookworm-ARCH-KEY.tar. The key of the host's base is the hash of this
# script without the lines between these markers, so the cached host tarball stays valid.
# -- end arch --
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SLIPWAY_CACHE:-/var/cache/slipway}
key=$(sha256sum "$here/base-image.sh" | cut -c1-12)
# -- arch --
host_arch=$(dpkg --print-architecture)
arch=${ARCH:-$host_arch}
key=$(sed '/^# -- arch --$/,/^# -- end arch --$/d' "$here/base-image.sh" | sha256sum | cut -c1-12)
if [ "$arch" != "$host_arch" ]; then
	key=$(sha256sum "$here/base-image.sh" | cut -c1-12)
	set -- "${1:-$cache/python-slim-bookworm-$arch-$key.tar}"
	# mmdebstrap runs the foreign packages' scripts through the binfmt_misc handler.
	mmdebstrap() { command mmdebstrap --arch="$arch" "$@"; }
fi
# -- end arch --
out=${1:-$cache/python-slim-bookworm-$key.tar}
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$(dirname "$out")"
pkgs=python3,python3-pip,python3-setuptools,python3-wheel,python3-venv,python3-django,gunicorn,gettext,ca-certificates
mirror=${DEBIAN_MIRROR:-}
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# --variant=apt: essential + apt, like debian:bookworm-slim; docs and man pages dropped as
# the slim images do. SOURCE_DATE_EPOCH keeps the tarball reproducible.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} \
	mmdebstrap --quiet --format=tar --variant=apt --include="$pkgs" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--customize-hook='chroot "$1" ln -sf python3 /usr/bin/python' \
	--customize-hook='chroot "$1" ln -sf pip3 /usr/bin/pip' \
	--customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
	bookworm "$tmp" $mirror >&2
mv "$tmp" "$out"
trap - EXIT
echo "$out"
