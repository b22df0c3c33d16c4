#!/usr/bin/env bash
# Rootless against root (issue 13), side by side in one run: the same Dockerfile on the Python
# base (scripts/base-image.sh), built by root and by a throwaway user of this script's own (with a
# /etc/subuid range; removed at exit), each with a store of its own on the same filesystem.
# Rows: cold build (--no-cache; the base is imported and its export blob made once before), a
# rebuild after a .py edit, a no-op rebuild. REPS rounds (default 5), interleaved; medians and
# the rootless/root ratio to stdout (markdown) and bench/results/rootless-<UTC time>.md.
# Usage: bench/rootless-bench.sh [REPS]     (as root; SLIPWAY=path/to/slipway to pick a binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=${1:-5}
[ "$(id -u)" -eq 0 ] || { echo "rootless-bench: run as root (it creates a user)" >&2; exit 1; }
base=$("$repo/scripts/base-image.sh" | tail -1)
W=$(mktemp -d /var/tmp/slipway-rootless-bench.XXXXXX)
chmod 755 "$W"
user=swbench$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
useradd -m -d "$W/home" -s /bin/sh "$user"
cleanup() { userdel -r "$user" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
cp "${SLIPWAY:-$repo/build/slipway}" "$W/slipway"
chmod 755 "$W/slipway"
uid=$(id -u "$user")
gid=$(id -g "$user")

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
mkctx "$W/ctx-root" root:root
mkctx "$W/home/ctx" "$uid:$gid"
chmod 755 "$W/home"

as_root() { "$W/slipway" --root "$W/store-root" "$@"; }
as_user() { setpriv --reuid "$uid" --regid "$gid" --init-groups -- env HOME="$W/home" \
  "$W/slipway" --root "$W/home/store" "$@"; }
ctx_root=$W/ctx-root
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
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

for who in root user; do
  run=as_$who
  ctx=ctx_$who
  $run import "$base" py:1 >/dev/null
  $run build -q -t app "${!ctx}" >/dev/null # the base's export blob, made once per store
done
for r in $(seq 1 "$reps"); do
  for who in root user; do
    run=as_$who
    ctx=ctx_$who
    timeit "cold-$who" $run build -q --no-cache -t app "${!ctx}"
    echo "# edit $r" >>"${!ctx}/app/m7.py"
    timeit "edit-$who" $run build -q -t app "${!ctx}"
    timeit "noop-$who" $run build -q -t app "${!ctx}"
  done
done

out="$repo/bench/results/rootless-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "| build ($reps rounds, median) | root | rootless | rootless / root |"
  echo "|---|---|---|---|"
  for k in cold edit noop; do
    a=$(median "${T[$k-root]}")
    b=$(median "${T[$k-user]}")
    echo "| $k | ${a} s | ${b} s | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') |"
  done
} | tee "$out"
