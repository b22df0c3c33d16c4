#!/usr/bin/env bash
# `make demo` (after `make deps` and `make all`): the article's Django example, built and run by
# slipway. Builds the base image (cached), imports it as python:slim, serves the local wheelhouse,
# builds examples/django with its final Dockerfile (cold, then unchanged, then after a one-line
# code change on a temp copy), runs the image and fetches its page, then the same project with no
# Dockerfile (`slipway recipe`, `build --recipe python`, the same edit, run), prints sizes and
# times, and cleans up (the store in $SLIPWAY_ROOT and the base-image cache are kept). Safe to
# run again.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
sw=${SLIPWAY:-$repo/build/slipway}
own_store=
[ -n "${SLIPWAY_ROOT:-}" ] || own_store=1
export SLIPWAY_ROOT=${SLIPWAY_ROOT:-/var/tmp/slipway-demo}
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (builds use namespaces and overlayfs)" >&2; exit 2; }
[ -x "$sw" ] || { echo "demo: $sw not built; run 'make' first" >&2; exit 2; }
# Two demos on one store would prune and retag under each other: take turns.
exec 8>"$SLIPWAY_ROOT.demo-lock"
flock -n 8 || { echo "demo: another demo uses $SLIPWAY_ROOT; waiting for it..." >&2; flock 8; }

tmp=$(mktemp -d /var/tmp/slipway-demo-run.XXXXXX)
server_pid= run_pid=
cleanup() {
	if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
		kill -TERM "$run_pid" 2>/dev/null || true
		wait "$run_pid" 2>/dev/null || true
	fi
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Layers and compressed size of an image, read from `slipway save --format oci`.
image_stats() {
	"$sw" save -o "$tmp/img.tar" --format oci "$1" >/dev/null
	python3 - "$tmp/img.tar" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
blob = lambda d: json.load(t.extractfile("blobs/" + d.replace(":", "/")))
m = blob(json.load(t.extractfile("index.json"))["manifests"][0]["digest"])
print(len(m["layers"]), "%.1f" % (sum(l["size"] for l in m["layers"]) / 1e6))
PY
	rm -f "$tmp/img.tar"
}

step "base image: Debian bookworm + python3, pip, Django, gunicorn (mmdebstrap, cached)"
t0=$(now)
base=$("$repo/scripts/base-image.sh")
echo "$base ($(du -m "$base" | cut -f1) MB, $(since "$t0") s)"

if [ -n "$own_store" ] && [ -e "$SLIPWAY_ROOT" ]; then
	# The cold build below is --no-cache anyway: drop the last run's cache and untagged images
	# from the demo's own store, so that running the demo again does not grow it.
	step "slipway prune --all   (the demo's store, left by a previous run)"
	"$sw" prune --all
fi

step "slipway import $base python:slim   (store: $SLIPWAY_ROOT)"
t0=$(now)
"$sw" import --change 'CMD ["python3"]' "$base" python:slim
t_import=$(since "$t0")

step "local PyPI on loopback: wheels made from Debian's packages (scripts/wheelhouse.sh)"
wheels=$("$repo/scripts/wheelhouse.sh")
# The Dockerfiles' default address (127.0.0.1:3141) when it is free: the index URL is in the
# build's cache keys, so the builds that follow the demo (its last lines) then find its cache.
port=3141
python3 -c 'import socket; socket.socket().bind(("127.0.0.1", 3141))' 2>/dev/null || port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$wheels" "$port" >/dev/null 2>&1 &
server_pid=$!
index=http://127.0.0.1:$port/simple/
for _ in $(seq 50); do curl -fs "$index" >/dev/null && break; sleep 0.1; done
ls "$wheels"/simple/*/ | grep whl
echo "index: $index"

ctx=$tmp/foo
cp -a "$repo/examples/django" "$ctx"
build() { "$sw" build --progress=plain --build-arg "PIP_INDEX_URL=$index" -f "$ctx/Dockerfile" "$@" "$ctx"; }

step "cold build: slipway build --no-cache -t foo:demo examples/django (the article's final Dockerfile)"
t0=$(now)
build --no-cache -t foo:demo
t_cold=$(since "$t0")

step "rebuild, nothing changed"
t0=$(now)
build -t foo:demo
t_noop=$(since "$t0")

step "rebuild after a one-line change to foo/views.py"
sed -i 's/Count this visit/Count this one visit/' "$ctx/foo/views.py"
t0=$(now)
build -t foo:demo
t_edit=$(since "$t0")

step "the builder stage, for comparison (all cached): slipway build --target builder"
build --target builder -t foo:demo-builder

step "slipway run --rm foo:demo   (the article's docker-entrypoint.sh: migrate, then gunicorn)"
app_port=$(free_port)
# The entrypoint binds [::]:80 in the container's own network; -p publishes it on a free
# loopback port of the host.
"$sw" run --rm -e GUNICORN_WORKERS=2 -p "127.0.0.1:$app_port:80" foo:demo &
run_pid=$!
for _ in $(seq 300); do
	curl -fs "http://127.0.0.1:$app_port/" >/dev/null && break
	kill -0 "$run_pid" 2>/dev/null || { echo "demo: the container exited" >&2; exit 1; }
	sleep 0.1
done
for lang in en de; do
	echo "\$ curl -H 'Accept-Language: $lang' http://127.0.0.1:$app_port/"
	curl -fsS -H "Accept-Language: $lang" "http://127.0.0.1:$app_port/" | grep -E '<h1>|visited|besucht'
done
echo "\$ curl http://127.0.0.1:$app_port/static/foo/style.css"
curl -fsS "http://127.0.0.1:$app_port/static/foo/style.css" | head -1
kill -TERM "$run_pid"
rc=0
wait "$run_pid" || rc=$?
run_pid=
echo "SIGTERM: container exited with status $rc"

step "no Dockerfile: slipway recipe examples/django   (what slipway reads, and its plan)"
rctx=$tmp/foo-recipe
cp -a "$repo/examples/django" "$rctx"
"$sw" recipe "$rctx"
# --recipe python: the example has the article's Dockerfiles beside it; a project without one
# needs no flag. PYTHON_IMAGE: the local stand-in base instead of python:3.N-slim.
rbuild() {
	"$sw" build --progress=plain --recipe python --build-arg PYTHON_IMAGE=python:slim \
		--build-arg "PIP_INDEX_URL=$index" "$@" "$rctx"
}
step "slipway build --recipe python -t foo:recipe examples/django   (the article's recipe, applied by slipway)"
t0=$(now)
rbuild -t foo:recipe
t_rcold=$(since "$t0")
# As for the Dockerfile above: an unchanged rebuild first (it also hashes, once, what each
# COPY --from copies, e.g. the dependency tree, so the edit below is timed like the Dockerfile's).
step "recipe: rebuild, nothing changed"
t0=$(now)
rbuild -t foo:recipe
t_rnoop=$(since "$t0")
step "recipe: rebuild after the same one-line change to foo/views.py"
sed -i 's/Count this visit/Count this one visit/' "$rctx/foo/views.py"
t0=$(now)
rbuild -t foo:recipe
t_redit=$(since "$t0")

step "slipway run --rm -p 127.0.0.1:PORT:8000 foo:recipe   (the recipe's entrypoint: migrate, then gunicorn on 8000)"
app_port=$(free_port)
"$sw" run --rm -e GUNICORN_WORKERS=2 -p "127.0.0.1:$app_port:8000" foo:recipe &
run_pid=$!
for _ in $(seq 300); do
	curl -fs "http://127.0.0.1:$app_port/" >/dev/null && break
	kill -0 "$run_pid" 2>/dev/null || { echo "demo: the container exited" >&2; exit 1; }
	sleep 0.1
done
for lang in en de; do
	echo "\$ curl -H 'Accept-Language: $lang' http://127.0.0.1:$app_port/"
	curl -fsS -H "Accept-Language: $lang" "http://127.0.0.1:$app_port/" | grep -E '<h1>|visited|besucht'
done
kill -TERM "$run_pid"
wait "$run_pid" || true
run_pid=

step "summary"
read -r base_layers base_mb < <(image_stats python:slim)
read -r foo_layers foo_mb < <(image_stats foo:demo)
read -r bld_layers bld_mb < <(image_stats foo:demo-builder)
printf '%-34s %8s %16s\n' image layers "compressed MB"
printf '%-34s %8s %16s\n' python:slim "$base_layers" "$base_mb"
printf '%-34s %8s %16s\n' "foo:demo (examples/django)" "$foo_layers" "$foo_mb"
printf '%-34s %8s %16s\n' "its builder stage (not shipped)" "$bld_layers" "$bld_mb"
read -r rc_layers rc_mb < <(image_stats foo:recipe)
printf '%-34s %8s %16s\n' "foo:recipe (no Dockerfile)" "$rc_layers" "$rc_mb"
echo
printf '%-34s %10s\n' step seconds
printf '%-34s %10s\n' "import base rootfs" "$t_import"
printf '%-34s %10s\n' "cold build (--no-cache)" "$t_cold"
printf '%-34s %10s\n' "rebuild, nothing changed" "$t_noop"
printf '%-34s %10s\n' "rebuild after a one-line .py edit" "$t_edit"
printf '%-34s %10s\n' "recipe: first build" "$t_rcold"
printf '%-34s %10s\n' "recipe: rebuild, nothing changed" "$t_rnoop"
printf '%-34s %10s   (%s x the Dockerfile'"'"'s)\n' "recipe: one-line .py edit" "$t_redit" \
	"$(awk -v a="$t_redit" -v b="$t_edit" 'BEGIN { printf "%.2f", a / b }')"
# What a newcomer does next, with the demo's store (slipway's default store is another).
swr=$sw
index_arg=
[ "$port" = 3141 ] || index_arg="--build-arg PIP_INDEX_URL=$index "
[ "${sw#"$repo"/}" = "$sw" ] || swr=${sw#"$repo"/}
step "the demo's images stay in its store, $SLIPWAY_ROOT ($(du -sh "$SLIPWAY_ROOT" | cut -f1))"
cat <<EOF
slipway's default store is /var/lib/slipway; to go on with the demo's (from $repo):
  export SLIPWAY_ROOT=$SLIPWAY_ROOT
  $swr images                                  # python:slim, foo:demo, foo:recipe
  scripts/wheelhouse.sh serve $port &           # examples/django's pip index
  $swr build ${index_arg}-t foo examples/django
  $swr run -d --name foo -p 127.0.0.1:8000:80 foo   # migrate, then gunicorn: a few seconds
  curl http://127.0.0.1:8000/
  $swr logs foo; $swr stop foo; $swr rm foo; kill %1   # %1: the index
EOF
[ "$rc" -eq 0 ]
