#!/usr/bin/env bash
# Rootless against root (issue 13), side by side in one run: the same Dockerfile on the Python
# base (scripts/base-image.sh), built by root and by a throwaway user of this script's own (with a
# /etc/subuid range; removed at exit), each with a store of its own on the same filesystem.
# Rows: cold build (--no-cache; the base is imported and its export blob made once before), a
# rebuild after a .py edit, a no-op rebuild, `images` (which runs outside the user namespace).
# REPS rounds (default 5), interleaved, root then rootless in each; medians and
# the rootless/root ratio to stdout (markdown) and bench/results/rootless-<UTC time>.md.
# Usage: bench/rootless-bench.sh [REPS]     (as root; SLIPWAY=path/to/slipway to pick a binary,
#        BENCH_LABEL=TEXT to say what it is in the table's header,
#        ROOTLESS_OUT=FILE.md for the table's file: bench/run.sh puts it with its run's results)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=${1:-5}
[ "$(id -u)" -eq 0 ] || { echo "rootless-bench: run as root (it creates a user)" >&2; exit 1; }
binary=${SLIPWAY:-$repo/build/slipway}
# shellcheck source=bench/lib.sh
BENCH_DIR=$here REPO=$repo . "$here/lib.sh" # fresh_fs, umount_under
BENCH_FS_GB=${BENCH_FS_GB:-8}
base=$("$repo/scripts/base-image.sh" | tail -1)
W=$(mktemp -d /var/tmp/slipway-rootless-bench.XXXXXX)
chmod 755 "$W"
user=swbench$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
useradd -M -d "$W/home" -s /bin/sh "$user"
cleanup() {
  umount_under "$W"
  # userdel fails while another process (a test's useradd, apt) holds /etc/passwd's lock: retry,
  # so no user is left behind. 6: no such user.
  local i rc
  for i in $(seq 60); do
    rc=0
    userdel -r "$user" >/dev/null 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 6 ] && [ "$rc" -ne 12 ] || break
    sleep 0.5
  done
  id "$user" >/dev/null 2>&1 && echo "rootless-bench: could not remove user $user" >&2
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "$binary" "$W/slipway"
chmod 755 "$W/slipway"
uid=$(id -u "$user")
gid=$(id -g "$user")
# Root's side and the user's home (its store and context) each on an ext4 of their own, made
# here (with a journal): on this VM's journal-less root ext4, the inode allocator skips the
# inodes freed in the last minutes one by one, so one side's deletions would slow the other's
# file creation (see fresh_fs in bench/lib.sh, and BENCHMARKS.md's Method).
fresh_fs "$W/root"
fresh_fs "$W/home"
chown "$uid:$gid" "$W/home"

mkctx() { # DIR OWNER
  mkdir -p "$1/app"
  cat >"$1/Dockerfile" <<'EOF'
FROM py:1
RUN groupadd -g 1000 app && useradd -u 1000 -g app -m app
RUN python3 -m compileall -q /usr/lib/python3.11 >/dev/null; mkdir -p /srv/app
COPY --chown=1000:1000 app/ /srv/app/
RUN python3 -m compileall -q /srv/app && python3 /srv/app/main.py > /srv/out.txt
USER app
CMD ["python3", "/srv/app/main.py"]
EOF
  for i in $(seq 1 200); do printf "def f%d(x):\n    return x + %d\n" "$i" "$i" >"$1/app/m$i.py"; done
  echo 'print(sum(range(1000)))' >"$1/app/main.py"
  chown -R "$2" "$1"
}
mkctx "$W/root/ctx" root:root
mkctx "$W/home/ctx" "$uid:$gid"
chmod 755 "$W/home"

# Both sides start slipway through the same two execs (setpriv, env), so that their cost, a few
# ms on a loaded machine, is in both times and not counted as rootless's.
as_root() { setpriv --reuid 0 --regid 0 --init-groups -- env HOME=/root \
  "$W/slipway" --root "$W/root/store" "$@"; }
as_user() { setpriv --reuid "$uid" --regid "$gid" --init-groups -- env HOME="$W/home" \
  "$W/slipway" --root "$W/home/store" "$@"; }
ctx_root=$W/root/ctx
ctx_user=$W/home/ctx

now() { date +%s.%N; }
declare -A T
timeit() { # KEY CMD...
  local k=$1 t0 t1
  shift
  t0=$(now)
  "$@" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }
  t1=$(now)
  T[$k]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') "
}
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.4f", m}'; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for who in root user; do
  run=as_$who
  ctx=ctx_$who
  $run import "$base" py:1 >/dev/null
  $run build -q -t app "${!ctx}" >/dev/null # the base's export blob, made once per store
done
for r in $(seq 1 "$reps"); do
  order="root user"
  [ $((r % 2)) -eq 1 ] || order="user root" # alternate who goes first
  for who in $order; do
    run=as_$who
    ctx=ctx_$who
    timeit "cold-$who" $run build -q --no-cache -t app "${!ctx}"
    for k in 1 2 3; do
      echo "# edit $r.$k" >>"${!ctx}/app/m7.py"
      timeit "edit-$who" $run build -q -t app "${!ctx}"
    done
    for k in 1 2 3 4 5; do
      timeit "noop-$who" $run build -q -t app "${!ctx}"
      timeit "images-$who" $run images
    done
  done
done

out=${ROOTLESS_OUT:-$repo/bench/results/rootless-$(date -u +%Y%m%dT%H%M%SZ).md}
{
  echo "slipway: \`$binary\` (sha256 $(sha256sum "$W/slipway" | cut -c1-12))${BENCH_LABEL:+, $BENCH_LABEL};" \
    "$(nproc) CPUs, load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
  echo
  echo "| median of $reps rounds (cold: 1 build a round, edit: 3, noop and images: 5) | root | rootless | rootless / root |"
  echo "|---|---|---|---|"
  for k in cold edit noop images; do
    a=$(median "${T[$k-root]}")
    b=$(median "${T[$k-user]}")
    echo "| $k | ${a} s | ${b} s | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') |"
  done
  echo
  echo "Samples (s, in run order):"
  echo
  for k in cold edit noop images; do
    echo "- $k: root ${T[$k-root]}; rootless ${T[$k-user]}"
  done
} | tee "$out"
