#!/usr/bin/env bash
# Engine micro-benchmarks from issue 3 (not tests; numbers go to stdout as a markdown table and to
# bench/results/engine-<UTC time>.md):
#   1. a 20-step Dockerfile on a busybox base: cold build, no-op rebuild, and a rebuild after
#      editing one context file that step 11 copies;
#   2. the diff of a one-file RUN on a 1 GB base next to the same on a 50 MB base. A step's diff
#      is its overlay upper dir, so both should cost about the same: the base's size must not show.
# Each measurement is repeated REPS times (default 5), interleaved, and the median is reported.
# Usage: bench/engine-bench.sh [REPS]      (as root; SLIPWAY=path/to/slipway to pick a binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
S=${SLIPWAY:-$repo/build/slipway}
reps=${1:-5}
[ -x "$S" ] || { echo "engine-bench: build slipway first (make)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/slipway-engine-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export SLIPWAY_ROOT=$W/root

now() { date +%s.%N; }
# timeit OUTVAR CMD...: run CMD quietly, append its wall time (s) to the array OUTVAR.
timeit() {
  local -n _acc=$1
  shift
  local t0 t1
  t0=$(now)
  "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }
  t1=$(now)
  _acc+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

# A busybox rootfs with SIZE_MB of payload spread over files of 1 MB (a realistic many-file base).
make_base() { # DIR SIZE_MB
  local d=$1 mb=$2
  mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/payload"
  cp /bin/busybox "$d/bin/busybox"
  for a in sh echo cat true mkdir rm touch cp ls; do ln -sf busybox "$d/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
  echo 'root:x:0:' >"$d/etc/group"
  head -c $((mb * 1024 * 1024)) /dev/urandom | split -b 1M - "$d/payload/f"
  tar -C "$d" -cf "$d.tar" .
}

echo "engine-bench: preparing bases (50 MB and 1 GB) in $W" >&2
make_base "$W/small" 50
make_base "$W/big" 1024
"$S" import "$W/small.tar" bench-small:latest >/dev/null
"$S" import "$W/big.tar" bench-big:latest >/dev/null
rm -rf "$W/small" "$W/big" "$W/small.tar" "$W/big.tar"

# ---- 1. 20-step Dockerfile ----
ctx=$W/ctx20
mkdir -p "$ctx/src"
for i in $(seq 1 50); do head -c 20000 /dev/urandom | base64 >"$ctx/src/m$i.txt"; done
echo "v1" >"$ctx/src/app.txt"
cat >"$ctx/Dockerfile" <<'DF'
FROM bench-small
ENV A=1
WORKDIR /app
RUN echo one > /app/one
COPY src/m1.txt src/m2.txt ./
RUN cat m1.txt m2.txt > both
ARG B=2
RUN echo "$B" > /app/b
LABEL stage=bench
RUN mkdir -p /app/data && echo data > /app/data/x
COPY src/app.txt /app/app.txt
RUN cp /app/app.txt /app/app.copy
ENV C=3
RUN echo "$C" > /app/c
COPY src/ /app/src/
RUN ls /app/src | wc -l > /app/count
USER root
RUN echo done > /app/done
EXPOSE 8000
CMD ["cat", "/app/done"]
DF
steps=$(grep -c '^[A-Z]' "$ctx/Dockerfile")
cold=() noop=() edit=()
for r in $(seq "$reps"); do
  timeit cold "$S" build -q --no-cache -t bench20 "$ctx"
  timeit noop "$S" build -q -t bench20 "$ctx"
  echo "v$r$RANDOM" >"$ctx/src/app.txt"
  timeit edit "$S" build -q -t bench20 "$ctx"
done

# ---- 2. one-file RUN over a 50 MB and a 1 GB base ----
for b in small big; do
  mkdir -p "$W/ctx-$b"
  printf 'FROM bench-%s\nRUN echo hello > /one-file\n' "$b" >"$W/ctx-$b/Dockerfile"
done
small=() big=()
for r in $(seq "$reps"); do
  timeit small "$S" build -q --no-cache "$W/ctx-small"
  timeit big "$S" build -q --no-cache "$W/ctx-big"
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$here/results/engine-$stamp.md
mkdir -p "$here/results"
{
  echo "### Engine micro-benchmarks ($stamp, $(git -C "$repo" rev-parse --short HEAD), medians of $reps, seconds)"
  echo
  echo "| measurement | median s |"
  echo "|---|---|"
  echo "| $steps-step Dockerfile, cold (\`--no-cache\`) | $(median "${cold[@]}") |"
  echo "| $steps-step Dockerfile, no-op rebuild | $(median "${noop[@]}") |"
  echo "| $steps-step Dockerfile, one context file edited (step 11 onward re-runs) | $(median "${edit[@]}") |"
  echo "| one-file RUN over a 50 MB base (whole build) | $(median "${small[@]}") |"
  echo "| one-file RUN over a 1 GB base (whole build) | $(median "${big[@]}") |"
  echo
  echo "1 GB / 50 MB ratio for the one-file RUN: $(awk -v a="$(median "${big[@]}")" -v b="$(median "${small[@]}")" 'BEGIN { printf "%.2f", a / b }')"
} | tee "$out"
