#!/usr/bin/env bash
# Push benchmark (not a test): a ~300 MB image (the python:slim stand-in from
# scripts/base-image.sh, imported with `slipway import`) pushed to an empty local docker-registry by
# `slipway push` and by `skopeo copy`, interleaved for ROUNDS rounds (fresh registries each
# round), then pushed again when every blob already exists. Prints times and ratios.
#   usage: bench/push-bench.sh [ROUNDS]      (env SLIPWAY: binary, default build/slipway)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
slipway=${SLIPWAY:-$here/build/slipway}
py=/usr/bin/python3
work=$(mktemp -d /var/tmp/slipway-push-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

rootfs=$("$here/scripts/base-image.sh")
echo "base rootfs: $rootfs ($(du -m "$rootfs" | cut -f1) MB uncompressed)"

# The image: `slipway import` of the rootfs (one gzip layer, so the chunked upload path runs),
# and the same blobs as an OCI layout (`slipway save --format oci-dir`) for skopeo.
export SLIPWAY_ROOT=$work/store DOCKER_CONFIG=$work/docker
"$slipway" import -c 'CMD ["python3"]' "$rootfs" bench:latest >/dev/null
"$slipway" save --format oci-dir -o "$work/layout" bench:latest
echo "image: $(du -sm "$work/layout/blobs" | cut -f1) MB of blobs"
tag=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$work/layout/index.json")

start_registry() { # name -> sets $reg to host:port (no subshell: the pid must be remembered)
	local d=$work/$1 port
	port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$d/storage"
	cat >"$d/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $d/storage}}
http: {addr: 127.0.0.1:$port, secret: bench}
YML
	/usr/bin/docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
		sleep 0.05
	done
	reg=127.0.0.1:$port
}

now() { date +%s.%N; }
elapsed() { $py -c "print('%.2f' % ($2 - $1))"; }

declare -a t_sw t_sk t_sw2 t_sk2
for r in $(seq "$rounds"); do
	start_registry "sw$r"
	a=$reg
	start_registry "sk$r"
	b=$reg
	t0=$(now)
	"$slipway" push -q bench:latest "$a/bench:latest"
	t1=$(now)
	skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:$tag" \
		"docker://$b/bench:latest"
	t2=$(now)
	"$slipway" push -q bench:latest "$a/bench:latest"
	t3=$(now)
	skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:$tag" \
		"docker://$b/bench:latest"
	t4=$(now)
	t_sw+=("$(elapsed "$t0" "$t1")")
	t_sk+=("$(elapsed "$t1" "$t2")")
	t_sw2+=("$(elapsed "$t2" "$t3")")
	t_sk2+=("$(elapsed "$t3" "$t4")")
	d1=$(skopeo inspect --tls-verify=false "docker://$a/bench:latest" | $py -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
	echo "round $r: slipway ${t_sw[-1]}s  skopeo ${t_sk[-1]}s  | again: slipway ${t_sw2[-1]}s  skopeo ${t_sk2[-1]}s  (pushed $d1)"
done

$py - "${t_sw[*]}" "${t_sk[*]}" "${t_sw2[*]}" "${t_sk2[*]}" <<'PY'
import statistics, sys
sw, sk, sw2, sk2 = ([float(x) for x in a.split()] for a in sys.argv[1:5])
m = statistics.median
print("\nmedian of %d rounds" % len(sw))
print("  empty registry : slipway %.2fs  skopeo %.2fs  ratio skopeo/slipway %.2fx" % (m(sw), m(sk), m(sk) / m(sw)))
print("  all blobs exist: slipway %.2fs  skopeo %.2fs  ratio skopeo/slipway %.2fx" % (m(sw2), m(sk2), m(sk2) / m(sw2)))
print("  re-push / first push (slipway): %.1f%%" % (100 * m(sw2) / m(sw)))
PY
echo "(docker push: no dockerd here, not measured)"
