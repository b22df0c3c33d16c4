#!/usr/bin/env bash
# Debian's busybox-static for another architecture: the tests' small foreign base (an arm64
# busybox rootfs imported with `slipway import --platform linux/arm64`). The package's files are
# only extracted (mmdebstrap --variant=extract: nothing of it runs, so no emulation is needed
# here), and /bin/busybox is cached as $SLIPWAY_CACHE/busybox-ARCH-KEY (KEY: hash of this script).
# Usage: scripts/busybox-arch.sh ARCH   (a Debian architecture, e.g. arm64; prints the path)
set -euo pipefail
arch=${1:?usage: scripts/busybox-arch.sh ARCH}
here=$(cd "$(dirname "$0")" && pwd)
cache=${SLIPWAY_CACHE:-/var/cache/slipway}
key=$(sha256sum "$here/busybox-arch.sh" | cut -c1-12)
out=$cache/busybox-$arch-$key
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/busybox-$arch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mmdebstrap --quiet --variant=extract --arch="$arch" --include=busybox-static --format=tar \
	bookworm "$tmp/pkg.tar" ${DEBIAN_MIRROR:-} >&2
tar -xf "$tmp/pkg.tar" -C "$tmp" ./bin/busybox
# Two runs at once each write their own copy; the rename makes either one the cached file.
mv -f "$tmp/bin/busybox" "$out"
echo "$out"
