#!/usr/bin/env bash
# Re-record the conformance suite's expectations from real Docker (BuildKit):
# for every case under tests/conformance/cases/ (or the CASEs given), build it with
# `docker build`, `docker save` the image, and write compare.py's summary of it to
# tests/conformance/expected/<case>.json. tests/e2e/test_conformance.py compares slipway's
# build of the same case with that file (CI has no dockerd).
#
# Usage: tests/conformance/record.sh [CASE...]
#   DOCKER_HOST=unix://SOCK  use that dockerd (left running); otherwise a private dockerd is
#                            started under a temp dir and stopped on exit (trap)
#   CONFORM_KEEP=DIR         also keep docker's archives there (DIR/<case>.tar)
#
# A case is a directory holding a Dockerfile and its context; optional files:
#   Dockerfile.docker  what Docker builds instead, when Debian's Docker (20.10, BuildKit 0.8)
#                      lacks the feature (heredocs, --link, --parents, --exclude): an
#                      equivalent Dockerfile whose image a newer Docker builds from `Dockerfile`
#   case.json          {"target": STAGE, "build_args": {K: V}, "ignore": ["history", ...],
#                      "error": SUBSTRING, "deliberate": REASON, ...} (caseinfo.py): a case
#                      with "error" must fail; its expectation is {"error": Docker's line}, or
#                      with "deliberate" (only slipway fails) Docker's image as usual
# Every context file's mtime is set to compare.py's CTX_MTIME first (as the test does).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3
DOCKER=/usr/bin/docker # Debian's client: /usr/local/bin/docker may be another version
export DOCKER_BUILDKIT=1

work=$(mktemp -d /tmp/conform-record.XXXXXX)
DOCKERD_PID=
cleanup() {
	if [ -n "$DOCKERD_PID" ]; then
		kill "$DOCKERD_PID" 2>/dev/null || true
		for _ in $(seq 60); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$DOCKERD_PID" 2>/dev/null || true
		wait "$DOCKERD_PID" 2>/dev/null || true
		# the overlay mounts of a killed daemon would keep the temp dir busy
		grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${DOCKER_HOST:-}" ]; then
	mkdir -p "$work/docker/config"
	echo '{}' >"$work/docker/config/config.json"
	export DOCKER_HOST=unix://$work/docker/sock DOCKER_CONFIG=$work/docker/config
	dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver overlay2 \
		--data-root "$work/docker/data" --exec-root "$work/docker/exec" \
		--pidfile "$work/docker/pid" -H "$DOCKER_HOST" --log-level warn \
		>"$work/docker/log" 2>&1 &
	DOCKERD_PID=$!
	for _ in $(seq 120); do
		$DOCKER version >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.5
	done
	$DOCKER version >/dev/null 2>&1 || {
		tail -20 "$work/docker/log" >&2
		echo "record.sh: dockerd did not start" >&2
		exit 1
	}
fi

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
	for d in "$here"/cases/*/; do
		cases+=("$(basename "$d")")
	done
fi

# The bases, imported as the test imports them into slipway.
$PY "$here/rootfs.py" "$work/busybox.tar"
$DOCKER import -c 'CMD ["sh"]' "$work/busybox.tar" conform-busybox:latest >/dev/null
if grep -qs 'conform-python' $(printf "$here/cases/%s/Dockerfile* " "${cases[@]}"); then
	$DOCKER import -c 'CMD ["python3"]' "$("$repo/scripts/base-image.sh")" \
		conform-python:latest >/dev/null
fi

mkdir -p "$here/expected"
failed=0
# Docker's errors name paths on its host (/var/lib/docker/overlay2/ID/merged/...): dropped
DOCKER_ROOT_RE='/[^ ]*/overlay2/[^/ ]*/merged'

for c in "${cases[@]}"; do
	src=$here/cases/$c
	[ -f "$src/Dockerfile" ] || {
		echo "record.sh: no case $c" >&2
		exit 2
	}
	ctx=$work/ctx/$c
	mkdir -p "$ctx"
	cp -a "$src/." "$ctx/"
	$PY "$here/caseinfo.py" prepare "$ctx"
	df=Dockerfile
	[ -f "$ctx/Dockerfile.docker" ] && df=Dockerfile.docker
	mapfile -t extra < <($PY "$here/caseinfo.py" docker-args "$ctx")
	want_error=$($PY "$here/caseinfo.py" error "$ctx")
	deliberate=$($PY "$here/caseinfo.py" deliberate "$ctx")
	echo "== $c" >&2
	if ! $DOCKER build --network host -q -f "$ctx/$df" -t "conform-case:$c" "${extra[@]}" \
		"$ctx" >"$work/$c.log" 2>&1; then
		if [ -n "$want_error" ] && [ -z "$deliberate" ] && grep -qF -- "$want_error" "$work/$c.log"; then
			grep -F -m1 -- "$want_error" "$work/$c.log" | sed "s|$DOCKER_ROOT_RE||g" |
				$PY -c 'import json,sys; print(json.dumps({"error": sys.stdin.read().strip()}, indent=1))' \
					>"$here/expected/$c.json"
			continue
		fi
		cat "$work/$c.log" >&2
		failed=1
		continue
	fi
	if [ -n "$want_error" ] && [ -z "$deliberate" ]; then
		echo "record.sh: $c: Docker built it, but case.json says it fails with: $want_error" >&2
		failed=1
		continue
	fi
	$DOCKER save -o "$work/$c.tar" "conform-case:$c"
	$PY "$here/compare.py" summary "$work/$c.tar" >"$here/expected/$c.json"
	[ -z "${CONFORM_KEEP:-}" ] || { mkdir -p "$CONFORM_KEEP" && cp "$work/$c.tar" "$CONFORM_KEEP/"; }
	$DOCKER rmi "conform-case:$c" >/dev/null
done
exit $failed
