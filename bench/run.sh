#!/usr/bin/env bash
# The benchmark: slipway against Docker's BuildKit and Buildah on the article's final Dockerfile,
# interleaved (each scenario runs on every builder in turn, the order rotated every round), then
# BENCHMARKS.md written from the raw results. `make bench` runs it; as root, on Debian 12.
#
# Environment (all optional):
#   BENCH_ROUNDS=3                  rounds (the medians are over rounds)
#   BENCH_REPS=1                    no-op/edit/bump rebuilds per round (cheap extra samples)
#   BENCH_BUILDERS="slipway recipe buildkit buildah"   (recipe: slipway with no Dockerfile)
#   BENCH_WORK=/var/tmp/slipway-bench.PID   scratch (several GB); removed at the end
#   BENCH_RESULTS=bench/results/<UTC time>  where raw.csv, meta.json and logs/ go
#   BENCH_NO_REPORT=1               do not rewrite BENCHMARKS.md
#   BENCH_NO_ROOTLESS=1             skip the rootless rows (bench/rootless-bench.sh, after the rounds)
#   SLIPWAY=build/slipway
# Rounds are independent: each starts from empty stores (the import scenario re-imports the base).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (dockerd, buildah and slipway's sandbox need it)"
ROUNDS=${BENCH_ROUNDS:-3}
REPS=${BENCH_REPS:-1}
read -r -a BUILDERS <<<"${BENCH_BUILDERS:-slipway recipe buildkit buildah}"
EXAMPLE=$REPO/examples/django # its final Dockerfile; bench/chroot-baseline.sh knows its steps
[ -f "$EXAMPLE/Dockerfile" ] || die "no $EXAMPLE/Dockerfile"
EDIT_FILE=foo/views.py
W=${BENCH_WORK:-/var/tmp/slipway-bench.$$}
RES=${BENCH_RESULTS:-$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)}
RAW=$RES/raw.csv
CTX_DIR=$W/ctx

"$BENCH_DIR/deps.sh" >&2
BASE_TAR=$("$REPO/scripts/base-image.sh")
export BASE_TAR
for b in "${BUILDERS[@]}"; do
	case $b in
	slipway | recipe) [ -x "$SLIPWAY" ] || die "$SLIPWAY not built: run make" ;;
	buildkit | buildah) ;;
	*) die "unknown builder '$b' (slipway, recipe, buildkit, buildah)" ;;
	esac
done

cleanup() {
	registry_stop
	wheelhouse_stop
	dockerd_stop
	[ -z "${CH_WORK:-}" ] || CH_KEEP=1 ch_cleanup # unmounts; the rm -rf below removes it
	umount_under "$W"
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W" "$RES/logs"
echo "$CSV_HEADER" >"$RAW"
has() { [[ " ${BUILDERS[*]} " == *" $1 "* ]]; }
! has buildkit || dockerd_start

# The facts a reader needs to judge the numbers.
meta() {
	local v_slipway=absent
	[ ! -x "$SLIPWAY" ] || v_slipway=$("$SLIPWAY" --version 2>/dev/null | head -1 || echo unknown)
	/usr/bin/python3 - <<EOF
import json, os, platform, subprocess, sys
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:
        return "absent"
json.dump({
    "date_utc": "$(date -u +%FT%TZ)",
    "git": out("git", "-C", "$REPO", "describe", "--always", "--dirty"),
    "rounds": $ROUNDS,
    "reps": $REPS,
    "builders": "${BUILDERS[*]}".split(),
    "example": os.path.relpath("$EXAMPLE", "$REPO"),
    "base_tar": "$BASE_TAR",
    "base_tar_bytes": os.path.getsize("$BASE_TAR"),
    "nproc": os.cpu_count(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
    "kernel": platform.release(),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "versions": {
        "slipway": "$v_slipway",
        "docker": out("$DOCKER", "--version"),
        "buildah": out("buildah", "--version"),
        "skopeo": out("skopeo", "--version"),
    },
}, open("$RES/meta.json", "w"), indent=1)
EOF
}
meta

fresh_ctx() { # BUILDER: a pristine copy of the example for this builder
	rm -rf "${CTX_DIR:?}/$1"
	mkdir -p "$CTX_DIR"
	cp -a "$EXAMPLE" "$CTX_DIR/$1"
}
edit_ctx() { echo "# bench: one-line edit, round $ROUND.$2" >>"$CTX_DIR/$1/$EDIT_FILE"; }
bump_ctx() {
	sed -i -E "s/(version *= *['\"])[^'\"]*/\\1$ROUND.0.$RANDOM/" "$CTX_DIR/$1/setup.py"
}
# The example's pip index: wheels from Debian's packages on loopback, one port for the whole run
# (it is in the builds' cache keys through PIP_INDEX_URL).
wheelhouse_start
BUILD_ARGS=(--build-arg "PIP_INDEX_URL=http://127.0.0.1:$WHEEL_PORT/simple/")

# The chroot limit's starting state, prepared once, untimed (bench/chroot-baseline.sh).
CH_WORK=$W/chroot CH_PORT=$WHEEL_PORT CH_CONTEXT=$CTX_DIR/chroot
fresh_fs "$CH_WORK"
# shellcheck source=bench/chroot-baseline.sh
SW_BASELINE_LIB=1 . "$BENCH_DIR/chroot-baseline.sh"
fresh_ctx chroot
blog "preparing the chroot limit (apt-get and the dependency install, untimed)"
CHROOT_OK=1
cb_prepare || {
	CHROOT_OK=
	cp "$CH_WORK/prepare.log" "$RES/logs/chroot-prepare.log" 2>/dev/null || true
	blog "the chroot limit could not be prepared (log $RES/logs/chroot-prepare.log); going on without it"
}

chroot_limit() { # MODE: the re-run commands straight in a chroot; the same edits as the builders
	local t rc=0 log=$RES/logs/r$ROUND-$1$2-chroot.log bump=0
	[ "$1" = edit ] || bump=1
	if [ -z "$CHROOT_OK" ]; then
		echo "$ROUND,$1,chroot,,fail,,,,," >>"$RAW"
		return 0
	fi
	# A background subshell, so `set -e` holds inside it and a failure fails only this row.
	(
		set -e
		rebuild "$1$ROUND-$2" "$bump"
	) >"$W/limit.out" 2>"$log" &
	wait $! || rc=$?
	# total egg_info compilemessages pip-install cp collectstatic, kept in the log
	echo "chroot limit: $(cat "$W/limit.out") (total egg_info compilemessages pip cp collectstatic)" >>"$log"
	read -r t _ <"$W/limit.out" || true
	[ "$(wc -w <"$W/limit.out")" -eq 6 ] || rc=1
	if [ $rc -eq 0 ]; then
		echo "$ROUND,$1,chroot,$t,ok,,,,," >>"$RAW"
		blog "r$ROUND $1 chroot: ${t}s"
	else
		echo "$ROUND,$1,chroot,,fail,,,,," >>"$RAW"
		blog "r$ROUND $1 chroot FAILED (log $log)"
	fi
}

started=$EPOCHREALTIME
for ROUND in $(seq 1 "$ROUNDS"); do
	# Rotate the order every round so no builder always goes first (warm page cache, less load).
	n=${#BUILDERS[@]} k=$(((ROUND - 1) % ${#BUILDERS[@]}))
	order=("${BUILDERS[@]:k}" "${BUILDERS[@]:0:k}")
	blog "round $ROUND/$ROUNDS: ${order[*]} ($n builders)"
	failed=" "

	for b in "${order[@]}"; do
		"${b}_reset"
		"${b}_import"
		measure import "$b"
	done
	for b in "${order[@]}" chroot; do fresh_ctx "$b"; done # pristine again every round
	for b in "${order[@]}"; do
		"${b}_build" "$CTX_DIR/$b"
		measure cold "$b" --mem
		[ "$LAST_STATUS" = ok ] || failed+="$b "
	done
	for scen in noop edit bump; do
		for rep in $(seq 1 "$REPS"); do
			for b in "${order[@]}" chroot; do
				case $scen in edit) edit_ctx "$b" "$rep" ;; bump) bump_ctx "$b" ;; esac
			done
			for b in "${order[@]}"; do
				[[ $failed != *" $b "* ]] || continue
				"${b}_build" "$CTX_DIR/$b"
				measure "$scen" "$b"
			done
			[ "$scen" = noop ] || chroot_limit "$scen" "$rep"
		done
	done
	for b in "${order[@]}"; do
		[[ $failed != *" $b "* ]] || continue
		f=$W/$b-archive.tar
		rm -f "$f"
		"${b}_save" "$f"
		measure save "$b"
		if [ "$LAST_STATUS" = ok ]; then
			record archive_bytes "$b" "$(stat -c %s "$f")"
			record image_bytes "$b" "$(archive_layer_bytes "$f" || echo)"
		fi
		rm -f "$f"
	done
	for b in "${order[@]}"; do
		[[ $failed != *" $b "* ]] || continue
		registry_start
		"${b}_push" "127.0.0.1:$REGISTRY_PORT/bench/django:$b"
		measure push "$b"
		if [ "$LAST_STATUS" = ok ]; then
			record pushed_bytes "$b" "$(registry_image_bytes bench/django "$b" || echo)"
		fi
		registry_stop
	done
done
total=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
blog "done: $ROUNDS round(s) in ${total}s; raw results in $RAW"
/usr/bin/python3 - "$RES/meta.json" "$total" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["seconds_total"] = int(sys.argv[2])
m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
# Rootless against root (issue 13): the same slipway as an ordinary user, side by side with root
# in one run of its own (bench/rootless-bench.sh: a throwaway user, both sides on fresh ext4s).
if has slipway && [ -z "${BENCH_NO_ROOTLESS:-}" ]; then
	blog "rootless: $ROUNDS round(s), root and an ordinary user side by side"
	ROOTLESS_OUT=$RES/rootless.md SLIPWAY=$SLIPWAY "$BENCH_DIR/rootless-bench.sh" "$ROUNDS" >&2 ||
		blog "rootless bench FAILED"
fi
[ -n "${BENCH_NO_REPORT:-}" ] || /usr/bin/python3 "$BENCH_DIR/report.py" "$RES" "$REPO/BENCHMARKS.md"
