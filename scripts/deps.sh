#!/usr/bin/env bash
# Install every Debian package slipway's build, tests, demo and benchmarks need.
# Idempotent: packages already present are skipped and `apt-get update` runs at most once.
# A fresh VM often runs apt at boot (unattended-upgrades, cloud-init): we wait for its lock,
# saying who holds it, instead of failing with apt's raw "Could not get lock".
set -euo pipefail
pkgs=(
  build-essential pkg-config clang clang-format libclang-rt-14-dev
  libarchive-dev libdeflate-dev libisal-dev libzstd-dev libssl-dev libjansson-dev
  libcurl4-openssl-dev libsqlite3-dev libcmocka-dev libseccomp-dev
  python3 python3-pytest python3-requests python3-jwt python3-cryptography zstd
  docker-registry apache2-utils skopeo umoci mmdebstrap busybox-static
  iproute2 curl go-md2man debhelper dpkg-dev slirp4netns uidmap git openssh-client openssl
  procps qemu-user-static arch-test zsh fish
)
lock_wait=${APT_LOCK_TIMEOUT:-900}
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

# The processes holding apt's or dpkg's locks (POSIX locks, as apt takes them), one per line.
apt_lock_holders() {
  lslocks --noheadings --raw --output PID,PATH 2>/dev/null |
    awk '$2 ~ /^\/var\/lib\/(dpkg\/lock(-frontend)?|apt\/lists\/lock)$|^\/var\/cache\/apt\/archives\/lock$/ {print $1}' |
    sort -u | while read -r pid; do
      printf '%s (%s)\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)"
    done
}

wait_for_apt() {
  local waited=0 holders
  while holders=$(apt_lock_holders) && [ -n "$holders" ]; do
    if [ "$waited" -ge "$lock_wait" ]; then
      echo "deps: apt is still locked after ${lock_wait}s by: $(echo "$holders" | paste -sd, -)" >&2
      echo "deps: wait for it to finish (or stop it), then run 'make deps' again;" \
        "APT_LOCK_TIMEOUT=SECONDS waits longer" >&2
      exit 1
    fi
    [ $((waited % 30)) -eq 0 ] &&
      echo "deps: waiting for apt's lock, held by $(echo "$holders" | paste -sd, -)" \
        "(${waited}s of ${lock_wait}s)" >&2
    sleep 5
    waited=$((waited + 5))
  done
}

echo "deps: installing ${missing[*]}"
sudo_=; [ "$(id -u)" -eq 0 ] || sudo_=sudo
wait_for_apt
# DPkg::Lock::Timeout covers the race between our check and apt taking the lock (apt >= 1.9.11
# waits for dpkg's lock; `update` takes the lists lock, checked above).
apt_opts=(-o "DPkg::Lock::Timeout=$lock_wait")
$sudo_ apt-get "${apt_opts[@]}" update -qq
wait_for_apt
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get "${apt_opts[@]}" install -y -qq \
  --no-install-recommends "${missing[@]}"
