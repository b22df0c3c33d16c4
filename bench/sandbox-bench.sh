#!/usr/bin/env bash
# Sandbox set-up cost on the RUN critical path: a 20-step RUN Dockerfile on a busybox base built
# with --no-cache (every step runs), and 50 `slipway run --rm` of `true`, for one or two
# binaries, interleaved; prints the median wall time of each.
# Usage: bench/sandbox-bench.sh [REPS] [OTHER_SLIPWAY...]   (as root; SLIPWAY: the main binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
S=${SLIPWAY:-$here/../build/slipway}
reps=${1:-7}
bins=("$S" "${@:2}")
W=$(mktemp -d /var/tmp/slipway-sandbox-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/ctx" "$W/rootfs/bin" "$W/rootfs/etc"
cp /bin/busybox "$W/ctx/busybox"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/true"
echo 'root:x:0:0:root:/root:/bin/sh' >"$W/rootfs/etc/passwd"
{
  echo 'FROM scratch'
  echo 'COPY busybox /bin/busybox'
  echo 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
  for i in $(seq 1 19); do echo "RUN echo $i > /f$i"; done
} >"$W/ctx/Dockerfile"
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
declare -A build runs
for ((r = 0; r < reps; r++)); do
  for i in "${!bins[@]}"; do
    b=${bins[$i]}
    sync
    t0=$(now)
    "$b" --root "$W/store$i" build -q --no-cache "$W/ctx" >/dev/null
    t1=$(now)
    # --network host: the sandbox's own cost, not slirp4netns's start (run's default network)
    for _ in $(seq 50); do "$b" --root "$W/store$i" run --rm --network host --rootfs "$W/rootfs" true; done
    t2=$(now)
    build[$i]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') "
    runs[$i]+="$(awk -v a="$t1" -v b="$t2" 'BEGIN{print (b-a)/50}') "
  done
done
echo "| binary | 20-step RUN build, --no-cache (s) | run --rm true (s) |"
echo "|---|---|---|"
for i in "${!bins[@]}"; do
  # shellcheck disable=SC2086
  echo "| ${bins[$i]} | $(median ${build[$i]}) | $(median ${runs[$i]}) |"
done
