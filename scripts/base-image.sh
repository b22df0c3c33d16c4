#!/usr/bin/env bash
# Build the `python:slim` stand-in rootfs from Debian's packages with mmdebstrap.
# No public image registry is reachable here, so the article's base image is made locally:
# Debian bookworm with python3, pip, setuptools, Django, gunicorn and gettext.
# The tarball is cached by the hash of what it is made of (the suite, packages and mmdebstrap
# options below, not the rest of this script), so a second run is instant. One build at a time:
# a second caller waits for the first and reuses its tarball.
# Progress goes to stderr: a line per phase (mmdebstrap's `I:` lines), and its progress bars
# when stderr is a terminal.
# Usage: scripts/base-image.sh [OUT.tar]   (prints the path of the tarball)
# ARCH=arm64 scripts/base-image.sh: the same base for another Debian architecture, made under
# emulation (needs qemu-user-static and its binfmt_misc handler, see README "Platforms"),
# cached as python-slim-bookworm-ARCH-KEY.tar (--arch is one of the options the key hashes).
set -euo pipefail
cache=${SLIPWAY_CACHE:-/var/cache/slipway}
suite=bookworm
pkgs=python3,python3-pip,python3-setuptools,python3-wheel,python3-venv,python3-django,gunicorn,gettext,ca-certificates
# --variant=apt: essential + apt, like debian:bookworm-slim; docs and man pages dropped as
# the slim images do.
opts=(--format=tar --variant=apt --include="$pkgs"
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-include=/usr/share/locale/locale.alias'
	--customize-hook='chroot "$1" ln -sf python3 /usr/bin/python'
	--customize-hook='chroot "$1" ln -sf pip3 /usr/bin/pip'
	--customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/*')
name=python-slim-$suite
arch=${ARCH:-$(dpkg --print-architecture)}
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	# mmdebstrap runs the foreign packages' scripts through the binfmt_misc handler.
	opts+=(--arch="$arch")
	name=$name-$arch
fi
key=$(printf '%s\n' "$suite" "${opts[@]}" | sha256sum | cut -c1-12)
out=${1:-$cache/$name-$key.tar}
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
if ! flock -n 9; then
	echo "base image: another scripts/base-image.sh is making $out; waiting for it..." >&2
	flock 9
fi
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mirror=${DEBIAN_MIRROR:-}
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "base image: mmdebstrap $suite${ARCH:+ ($arch)} + $pkgs -> $out (once; a few minutes, most of it downloads)" >&2
start=$SECONDS
# SOURCE_DATE_EPOCH keeps the tarball reproducible.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} \
	mmdebstrap "${opts[@]}" "$suite" "$tmp" $mirror >&2
mv "$tmp" "$out"
trap - EXIT
echo "base image: done in $((SECONDS - start)) s ($(du -m "$out" | cut -f1) MB)" >&2
echo "$out"
