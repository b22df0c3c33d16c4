# shellcheck shell=bash
# shellcheck disable=SC2034 # CSV_HEADER, LAST_STATUS: read by bench/run.sh
# Benchmark library, sourced by bench/run.sh: the peers' daemons (a private dockerd, a throw-away
# docker-registry), one adapter per builder (slipway, buildkit, buildah) that turns a scenario into
# a command line, and the timer that runs a command and appends one row to the raw CSV.
#
# Every builder keeps its state under $W (the work dir), never in the system's default places, so
# the benchmark does not disturb a Docker or Buildah the machine already has, nor teammates' runs.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REPO=${REPO:-$(cd "$BENCH_DIR/.." && pwd)}
SLIPWAY=${SLIPWAY:-$REPO/build/slipway}
DOCKER=/usr/bin/docker # Debian's client: /usr/local/bin/docker may be another version
IMG=bench-django       # the built image's name in every builder

blog() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
	blog "error: $*"
	exit 1
}

# umount_under DIR: unmount everything mounted at or below DIR, deepest first.
umount_under() {
	local d
	d=$(realpath -m "$1")
	awk -v d="$d" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# free_port: an unused TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------
# dockerd: private data-root, exec-root, pidfile and socket; no iptables, no bridge (builds use
# --network host). DOCKER_CONFIG is private too, so no credentials or contexts leak in.

dockerd_start() {
	local d=$W/docker
	mkdir -p "$d/config"
	echo '{}' >"$d/config/config.json" # Buildah and skopeo read it too (as their auth file)
	export DOCKER_HOST=unix://$d/sock DOCKER_BUILDKIT=1 DOCKER_CONFIG=$d/config
	dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver overlay2 \
		--data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" -H "$DOCKER_HOST" \
		--log-level warn >"$d/log" 2>&1 &
	DOCKERD_PID=$!
	local i
	for i in $(seq 120); do
		$DOCKER version >/dev/null 2>&1 && return 0
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.5
	done
	tail -20 "$d/log" >&2
	die "dockerd did not start (log: $d/log)"
}

dockerd_stop() {
	[ -n "${DOCKERD_PID:-}" ] || return 0
	kill "$DOCKERD_PID" 2>/dev/null || true
	local i
	for i in $(seq 60); do
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "$DOCKERD_PID" 2>/dev/null || true
	wait "$DOCKERD_PID" 2>/dev/null || true
	DOCKERD_PID=
	umount_under "$W/docker"
}

# dockerd's resident memory in kB: field VmRSS or VmHWM of /proc/PID/status.
dockerd_mem() {
	awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DOCKERD_PID/status"
}

# ---------------------------------------------------------------------------------------------
# The example's local PyPI (scripts/wheelhouse.sh) on a kernel-chosen loopback port.

wheelhouse_start() {
	local wh
	WHEEL_PORT=$(free_port)
	# A private copy (a few MB): the shared cache may be rebuilt or pruned by another checkout's
	# scripts/wheelhouse.sh while the benchmark runs.
	wh=$("$REPO/scripts/wheelhouse.sh")
	rm -rf "$W/wheelhouse"
	cp -a "$wh/." "$W/wheelhouse"
	ls "$W"/wheelhouse/simple/django/*.whl >/dev/null || die "no Django wheel in $wh"
	/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$W/wheelhouse" "$WHEEL_PORT" \
		>"$W/wheelhouse.log" 2>&1 &
	WHEEL_PID=$!
	local i
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$WHEEL_PORT/simple/" 2>/dev/null && return 0
		sleep 0.1
	done
	die "the wheelhouse did not start (log: $W/wheelhouse.log)"
}

wheelhouse_stop() {
	[ -n "${WHEEL_PID:-}" ] || return 0
	kill "$WHEEL_PID" 2>/dev/null || true
	wait "$WHEEL_PID" 2>/dev/null || true
	WHEEL_PID=
}

# ---------------------------------------------------------------------------------------------
# docker-registry: a fresh, empty one for every push, on a kernel-chosen loopback port.

registry_start() {
	local d=$W/registry
	rm -rf "$d"
	mkdir -p "$d/data"
	REGISTRY_PORT=$(free_port)
	cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
	/usr/bin/docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
	REGISTRY_PID=$!
	local i
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null && return 0
		sleep 0.1
	done
	die "docker-registry did not start (log: $d/log)"
}

registry_stop() {
	[ -n "${REGISTRY_PID:-}" ] || return 0
	kill "$REGISTRY_PID" 2>/dev/null || true
	wait "$REGISTRY_PID" 2>/dev/null || true
	REGISTRY_PID=
}

# archive_layer_bytes FILE: the image's size unpacked: the sum of its layers' uncompressed tar
# sizes, read from a docker-archive (whose layers may be stored plain, gzip or zstd).
archive_layer_bytes() {
	/usr/bin/python3 - "$1" <<'EOF'
import json, subprocess, sys, tarfile, zlib
total = 0
with tarfile.open(sys.argv[1]) as t:
    for layer in json.load(t.extractfile("manifest.json"))[0]["Layers"]:
        f = t.extractfile(layer)
        head = f.read(4)
        if head[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(31)
            total += len(d.decompress(head))
            while chunk := f.read(1 << 20):
                total += len(d.decompress(chunk))
                while d.unused_data:  # concatenated gzip members
                    rest, d = d.unused_data, zlib.decompressobj(31)
                    total += len(d.decompress(rest))
            total += len(d.flush())
        elif head == b"\x28\xb5\x2f\xfd":
            p = subprocess.run(["zstd", "-dc"], input=head + f.read(), capture_output=True, check=True)
            total += len(p.stdout)
        else:
            total += t.getmember(layer).size
print(total)
EOF
}

# registry_image_bytes REPO TAG: sum of the compressed layer sizes of a pushed manifest.
registry_image_bytes() {
	curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://127.0.0.1:$REGISTRY_PORT/v2/$1/manifests/$2" |
		/usr/bin/python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))'
}

# ---------------------------------------------------------------------------------------------
# Builder adapters. `<builder>_reset` empties the builder's store completely (untimed). The
# `<builder>_<scenario>` functions set the array CMD to the one command that is timed; untimed
# preparation (tagging before a push) runs inside them. A scenario's context is $CTX_DIR/<builder>.

buildah_() {
	buildah --root "$W/buildah/root" --runroot "$W/buildah/run" --storage-driver overlay "$@"
}

# fresh_fs DIR: an empty ext4 of its own mounted at DIR (mkfs's defaults, so with a journal), on
# a loop device over a sparse file DIR.img (O_DIRECT: the data is cached once, in the builder's
# fs). Every builder (and the chroot limit) keeps its state on one, made anew every round.
# Why: this VM's root ext4 has no journal, and without one the inode allocator skips inodes
# freed in the last 60 s one by one, 6 min while their inode table block is dirty
# (recently_deleted() in fs/ext4/ialloc.c): after `buildah rm` deleted its 17k-file container,
# the next builder's import was 3-7x slower even 62 s later (perf: 60% of its cycles in
# recently_deleted/find_inode_bit). On a filesystem of its own, no builder pays for another's
# deletions, and the filesystem is the usual journaled ext4.
BENCH_FS_GB=${BENCH_FS_GB:-24}
fresh_fs() {
	local d=$1 img=$1.img dev
	umount_under "$d"
	rm -rf "$d" "$img" # one inode: the old filesystem goes with its image file
	truncate -s "${BENCH_FS_GB}G" "$img"
	mkfs.ext4 -q -F "$img" # a sparse file: discard zeroes it, so no lazy init runs later
	dev=$(losetup --direct-io=on --find --show "$img")
	mkdir -p "$d"
	mount "$dev" "$d"
	losetup -d "$dev" # detached (autoclear) when unmounted
}

slipway_reset() { fresh_fs "$W/slipway"; }
slipway_import() { CMD=("$SLIPWAY" --root "$W/slipway" import "$BASE_TAR" python:slim); }
slipway_build() {
	CMD=("$SLIPWAY" --root "$W/slipway" build --progress=plain "${BUILD_ARGS[@]}" -t "$IMG"
		-f "$1/Dockerfile" "$1")
}
slipway_save() { CMD=("$SLIPWAY" --root "$W/slipway" save -o "$1" "$IMG"); }
slipway_push() { CMD=("$SLIPWAY" --root "$W/slipway" push "$IMG" "$1"); }

# slipway's recipe (issue 12): the same example with no Dockerfile read (`--recipe python`), its
# own store; PYTHON_IMAGE names the local stand-in base.
recipe_reset() { fresh_fs "$W/recipe"; }
recipe_import() { CMD=("$SLIPWAY" --root "$W/recipe" import "$BASE_TAR" python:slim); }
recipe_build() {
	CMD=("$SLIPWAY" --root "$W/recipe" build --progress=plain --recipe python "${BUILD_ARGS[@]}"
		--build-arg PYTHON_IMAGE=python:slim -t "$IMG" "$1")
}
recipe_save() { CMD=("$SLIPWAY" --root "$W/recipe" save -o "$1" "$IMG"); }
recipe_push() { CMD=("$SLIPWAY" --root "$W/recipe" push "$IMG" "$1"); }

# A fresh dockerd on an empty data-root (a new filesystem, as for the others).
buildkit_reset() {
	[ -z "${DOCKERD_PID:-}" ] || [ ! -d "$W/docker/data" ] || {
		dockerd_stop
		fresh_fs "$W/docker/data"
		dockerd_start
	}
}
buildkit_import() { CMD=("$DOCKER" import "$BASE_TAR" python:slim); }
buildkit_build() {
	CMD=("$DOCKER" build --network host --progress plain "${BUILD_ARGS[@]}" -t "$IMG"
		-f "$1/Dockerfile" "$1")
}
buildkit_save() { CMD=("$DOCKER" save -o "$1" "$IMG"); }
buildkit_push() {
	$DOCKER tag "$IMG" "$1"
	CMD=("$DOCKER" push "$1")
}

buildah_reset() { fresh_fs "$W/buildah"; }
# Buildah has no `import`: a scratch container, the rootfs added (it unpacks local tars), commit.
buildah_import() {
	CMD=(bash -c 'set -e; r=$1 rr=$2 tar=$3
		b() { buildah --root "$r" --runroot "$rr" --storage-driver overlay "$@"; }
		c=$(b from scratch); b add "$c" "$tar" / >/dev/null
		b commit -q "$c" python:slim >/dev/null; b rm "$c" >/dev/null'
		_ "$W/buildah/root" "$W/buildah/run" "$BASE_TAR")
}
# --layers: cache every step (Buildah's default is to squash without caching); --isolation
# chroot: the fastest isolation that works as root without a runtime daemon.
buildah_build() {
	CMD=(buildah --root "$W/buildah/root" --runroot "$W/buildah/run" --storage-driver overlay
		bud --isolation chroot --network host --layers --pull-never "${BUILD_ARGS[@]}" -t "$IMG"
		-f "$1/Dockerfile" "$1")
}
buildah_save() {
	CMD=(buildah --root "$W/buildah/root" --runroot "$W/buildah/run" --storage-driver overlay
		push -q "$IMG" "docker-archive:$1:$IMG:latest")
}
# The push peer for Buildah's store is skopeo, the containers/image tool Buildah itself uses.
buildah_push() {
	CMD=(skopeo copy -q --dest-tls-verify=false
		"containers-storage:[overlay@$W/buildah/root+$W/buildah/run]localhost/$IMG:latest"
		"docker://$1")
}

# ---------------------------------------------------------------------------------------------
# The timer. measure SCENARIO BUILDER [--mem]: runs "${CMD[@]}" under GNU time, appends a row to
# $RAW. Wall time comes from bash's $EPOCHREALTIME (no fork around the timed command).
#   rss_tree_kb: GNU time's max RSS: the largest single process among the command and the
#                children it waited for (for Buildah that includes the RUN steps' processes).
#   rss_self_kb: with --mem, the client process's own VmHWM, polled every 50 ms (monotonic, so
#                the last reading misses at most the final 50 ms of growth).
#   daemon_kb:   with --mem and BuildKit, dockerd's VmHWM after the command minus its VmRSS
#                before (its high-water mark is reset first through /proc/PID/clear_refs);
#   daemon_peak_kb: that VmHWM itself, the daemon's peak during the command.

CSV_HEADER=round,scenario,builder,seconds,status,rss_tree_kb,rss_self_kb,daemon_kb,daemon_peak_kb,bytes
ROUND=0

poll_hwm() { # TIME_PID: print the peak VmHWM (kB) of TIME_PID's child while it runs
	local tpid=$1 child="" hwm=0 k v sfd
	exec {sfd}<> <(:)
	while kill -0 "$tpid" 2>/dev/null; do
		[ -n "$child" ] || read -r child _ <"/proc/$tpid/task/$tpid/children" 2>/dev/null || true
		if [ -n "$child" ] && [ -r "/proc/$child/status" ]; then
			while read -r k v _; do
				if [ "$k" = VmHWM: ]; then
					((v > hwm)) && hwm=$v
					break
				fi
			done <"/proc/$child/status" 2>/dev/null || true
		fi
		read -r -t 0.05 -u "$sfd" _ || true
	done
	echo "$hwm"
}

measure() {
	local scen=$1 b=$2 mem=${3:-} log tf t0 t1 rc tpid ppid="" rss_self="" dk="" dp="" d0=""
	log=$RES/logs/r$ROUND-$scen-$b.log
	local n=2
	while [ -e "$log" ]; do # a repetition
		log=$RES/logs/r$ROUND-$scen-$b.$n.log
		n=$((n + 1))
	done
	tf=$W/time.out
	if [ -n "$mem" ] && [ "$b" = buildkit ]; then
		echo 5 >"/proc/$DOCKERD_PID/clear_refs"
		d0=$(dockerd_mem VmRSS)
	fi
	# Start every measurement with no dirty page cache left by the previous one (untimed), so
	# one builder's writeback does not land in the next builder's time.
	sync
	t0=$EPOCHREALTIME
	/usr/bin/time -f %M -o "$tf" "${CMD[@]}" >"$log" 2>&1 &
	tpid=$!
	if [ -n "$mem" ]; then
		poll_hwm "$tpid" >"$W/hwm.out" &
		ppid=$!
	fi
	rc=0
	wait "$tpid" || rc=$?
	t1=$EPOCHREALTIME
	if [ -n "$ppid" ]; then
		wait "$ppid" || true
		rss_self=$(cat "$W/hwm.out")
	fi
	if [ -n "$d0" ]; then
		dp=$(dockerd_mem VmHWM)
		dk=$((dp - d0))
	fi
	local secs rss_tree
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	rss_tree=$(tail -1 "$tf" | grep -E '^[0-9]+$' || true)
	local status=ok
	if [ "$rc" -ne 0 ]; then
		status=fail
		blog "FAILED: $scen $b (exit $rc), last lines of $log:"
		tail -5 "$log" | sed 's/^/    /' >&2
	fi
	echo "$ROUND,$scen,$b,$secs,$status,$rss_tree,$rss_self,$dk,$dp," >>"$RAW"
	blog "r$ROUND $scen $b: ${secs}s $status${rss_tree:+ rss=${rss_tree}kB}${rss_self:+ self=${rss_self}kB}${dp:+ dockerd=${dp}kB (+${dk}kB)}"
	LAST_STATUS=$status
	return 0
}

# record SCENARIO BUILDER BYTES: a row with no time, for sizes measured after the fact.
record() {
	echo "$ROUND,$1,$2,,ok,,,,,$3" >>"$RAW"
	blog "r$ROUND $1 $2: $3 bytes"
}
