#!/usr/bin/env bash
# Multi-platform benchmark (issue 16; not a test): the cross-compilation pattern built for
# linux/amd64,linux/arm64 in one `build --platform`, against the two one-platform builds of the
# same Dockerfile one after the other (their sum: what a script looping over the platforms
# takes). The builder stage (FROM --platform=$BUILDPLATFORM, CPU work before its ARG
# TARGETARCH) runs natively, once in the two-platform build and once in each one-platform build;
# the final stage RUNs a little CPU work on each target (arm64: under qemu-user's binfmt_misc
# handler). Every build starts from a fresh store holding the two busybox bases only. REPS
# rounds (default 3), the three builds interleaved in rotating order; medians to stdout
# (markdown) and to bench/results/platforms-<UTC time>.md, which bench/report.py puts in
# BENCHMARKS.md.
#   usage: bench/platforms-bench.sh [REPS]   (as root; SLIPWAY=path/to/slipway to pick a binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=${1:-3}
slipway=${SLIPWAY:-$repo/build/slipway}
py=/usr/bin/python3
W=$(mktemp -d /var/tmp/slipway-platforms-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
host=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
[ "$host" = amd64 ] || {
	echo "platforms-bench: written for an amd64 host (the foreign target is arm64)" >&2
	exit 1
}

# The two bases: busybox rootfs tars as the e2e tests make them (tests/e2e/conftest.py), with
# the host's /bin/busybox and Debian's arm64 busybox-static (scripts/busybox-arch.sh).
bb_arm64=${BB_ARM64:-$("$repo/scripts/busybox-arch.sh" arm64)}
$py - "$W" "$repo" "$bb_arm64" <<'PY'
import sys
sys.path.insert(0, sys.argv[2] + "/tests/e2e")
import conftest
conftest.make_busybox_rootfs_tar(sys.argv[1] + "/bb-amd64.tar")
conftest.BUSYBOX_BIN = sys.argv[3]
conftest.make_busybox_rootfs_tar(sys.argv[1] + "/bb-arm64.tar")
PY

mkdir -p "$W/ctx"
cat >"$W/ctx/Dockerfile" <<'EOF'
ARG TARGETARCH
FROM --platform=$BUILDPLATFORM bb-amd64 AS build
RUN i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done; echo built > /out.txt
ARG TARGETARCH
RUN echo "for $TARGETARCH" >> /out.txt
FROM bb-${TARGETARCH}
RUN i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done
COPY --from=build /out.txt /
EOF

fresh() { # store dir: a new store with the two bases
	rm -rf "$1"
	"$slipway" --root "$1" import --platform linux/amd64 "$W/bb-amd64.tar" bb-amd64 >/dev/null
	"$slipway" --root "$1" import --platform linux/arm64 "$W/bb-arm64.tar" bb-arm64 >/dev/null
}

timed() { # name platforms: one build in a fresh store; prints seconds
	fresh "$W/store-$1"
	sync
	local t0=$EPOCHREALTIME
	"$slipway" --root "$W/store-$1" build --progress plain --platform "$2" -t bench "$W/ctx" \
		>"$W/log-$1" 2>&1
	local t1=$EPOCHREALTIME
	$py -c "print('%.2f' % ($t1 - $t0))"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -a both amd arm
for r in $(seq "$reps"); do
	order=(both amd arm)
	for i in $(seq $((r - 1))); do order=("${order[@]:1}" "${order[0]}"); done
	for k in "${order[@]}"; do
		case $k in
		both) both+=("$(timed both linux/amd64,linux/arm64)") ;;
		amd) amd+=("$(timed amd linux/amd64)") ;;
		arm) arm+=("$(timed arm linux/arm64)") ;;
		esac
	done
	echo "round $r: two-platform ${both[-1]} s, amd64 ${amd[-1]} s, arm64 ${arm[-1]} s" >&2
done
# The builder's shared RUN in the last two-platform build: its progress entries and how each
# ended (DONE: run; CACHED: the other target's, a hit on the record the first one wrote).
ended=$($py - "$W/log-both" <<'PY'
import sys
names, ends = {}, []
for line in open(sys.argv[1]):
    head, _, rest = line.rstrip("\n").partition(" ")
    if rest.startswith("[") and "-lt 1000000" in rest:
        names[head] = rest
    elif head in names and (rest.startswith("DONE") or rest == "CACHED"):
        ends.append(rest.split()[0])
print(" ".join(sorted(ends)))
PY
)

out=$repo/bench/results/platforms-$(date -u +%Y%m%dT%H%M%SZ).md
$py - "$out" "$(nproc)" "$(git -C "$repo" rev-parse --short HEAD)" "$reps" "$ended" \
	"$load0 / $(cut -d' ' -f1-3 /proc/loadavg)" \
	"${both[*]}" "${amd[*]}" "${arm[*]}" <<'PY'
import statistics, sys
out, nproc, commit, reps, ended, load = sys.argv[1:7]
both, amd, arm = ([float(x) for x in a.split()] for a in sys.argv[7:10])
mb, ma, mr = (statistics.median(v) for v in (both, amd, arm))
s = ma + mr
lines = [
    f"Commit `{commit}`, {nproc} cores (load average {load} at the start / end), {reps} "
    "round(s), medians in seconds (`bench/platforms-bench.sh`):",
    "",
    "| build | linux/amd64 alone | linux/arm64 alone | sum of the two | both in one `--platform` | one / sum |",
    "|---|---|---|---|---|---|",
    f"| cross-compilation Dockerfile, cold | {ma:.2f} | {mr:.2f} | {s:.2f} | {mb:.2f} | {mb / s:.2f}× |",
    "",
    "The Dockerfile (in the script): a builder stage `FROM --platform=$BUILDPLATFORM` whose first RUN "
    "counts to 1,000,000 in busybox sh (about 1.8 CPU-seconds natively) before `ARG TARGETARCH`, "
    "then a target stage that counts to 100,000 (0.2 s natively, about 2 s under qemu-user for "
    "arm64) and copies the builder's file. A one-platform build runs the builder's count each time; "
    "the two-platform build once, and the two target stages side by side. Measured on the shared "
    "2-core machine while other jobs ran (see the load average): the spread between rounds is wide.",
    "",
    "The builder stage's shared RUN (native, before `ARG TARGETARCH`) in the last two-platform "
    f"build: {ended.split().count('DONE')} run, {ended.split().count('CACHED')} cache hit "
    "(the other target waited for its record). Docker's BuildKit cannot be compared here: Debian 12's docker.io (20.10.24) has "
    "no buildx (`docker: 'buildx' is not a docker command`), and its `docker build --platform "
    "linux/amd64,linux/arm64` (DOCKER_BUILDKIT=1, the daemon's own BuildKit) fails with "
    "`\"amd64,linux\" is an invalid component of \"linux/amd64,linux/arm64\"`.",
]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
