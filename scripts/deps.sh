#!/usr/bin/env bash
# Install every Debian package slipway's build, tests, demo and benchmarks need.
# Idempotent: packages already present are skipped and `apt-get update` runs at most once.
set -euo pipefail
pkgs=(
  build-essential pkg-config clang clang-format libclang-rt-14-dev
  libarchive-dev libdeflate-dev libisal-dev libzstd-dev libssl-dev libjansson-dev
  libcurl4-openssl-dev libsqlite3-dev libcmocka-dev libseccomp-dev
  python3 python3-pytest python3-requests python3-jwt python3-cryptography zstd
  docker-registry apache2-utils skopeo umoci mmdebstrap busybox-static
  iproute2 curl
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo_=; [ "$(id -u)" -eq 0 ] || sudo_=sudo
$sudo_ apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}"
