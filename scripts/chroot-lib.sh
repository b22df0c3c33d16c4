# Sourced by scripts/django-chroot.sh and bench/chroot-baseline.sh: run a Dockerfile's steps by
# hand, without any builder. Each stage is an overlayfs mount over the extracted base rootfs (or
# over its parent stage), entered with chroot, with /proc, /dev, /dev/shm and resolv.conf as a
# RUN step would see them. Needs root. Everything lives under $CH_WORK, removed by ch_cleanup.
# shellcheck shell=bash

CH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CH_WORK=${CH_WORK:-$(mktemp -d /var/tmp/slipway-chroot.XXXXXX)}
CH_PORT=${CH_PORT:-}
CH_SERVER_PID=
declare -A CH_LOWER CH_WORKDIR CH_ENV

# Extract the base tarball once per $CH_WORK and serve the wheelhouse on a free loopback port.
ch_setup() {
	local tar wh
	tar=$("$CH_REPO/scripts/base-image.sh")
	wh=$("$CH_REPO/scripts/wheelhouse.sh")
	mkdir -p "$CH_WORK/base"
	[ -e "$CH_WORK/base/usr" ] || tar -C "$CH_WORK/base" -xf "$tar"
	if [ -z "$CH_PORT" ]; then
		CH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		python3 -m http.server --bind 127.0.0.1 --directory "$wh" "$CH_PORT" >/dev/null 2>&1 &
		CH_SERVER_PID=$!
		for _ in $(seq 50); do
			curl -fs "http://127.0.0.1:$CH_PORT/simple/" >/dev/null && break
			sleep 0.1
		done
	fi
}

# ch_stage NAME [PARENT]: a new stage over PARENT's layers (the base image when omitted).
ch_stage() {
	local name=$1 parent=${2:-} d=$CH_WORK/$1
	mkdir -p "$d/upper" "$d/work" "$d/root"
	if [ -n "$parent" ]; then
		# overlayfs refuses an upper dir that is still mounted as the lower of another stage
		ch_umount_stage "$parent"
		CH_LOWER[$name]="$CH_WORK/$parent/upper:${CH_LOWER[$parent]}"
		CH_WORKDIR[$name]=${CH_WORKDIR[$parent]}
		CH_ENV[$name]=${CH_ENV[$parent]}
	else
		CH_LOWER[$name]="$CH_WORK/base"
		CH_WORKDIR[$name]=/
		CH_ENV[$name]=
	fi
	mount -t overlay overlay -o "lowerdir=${CH_LOWER[$name]},upperdir=$d/upper,workdir=$d/work" "$d/root"
	mount -t proc proc "$d/root/proc"
	# A minimal /dev of its own (a bind of the host's could propagate mounts back to it).
	mount -t tmpfs -o mode=755,nosuid dev "$d/root/dev"
	cp -a /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "$d/root/dev/"
	ln -s /proc/self/fd "$d/root/dev/fd"
	mkdir "$d/root/dev/shm"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$d/root/dev/shm"
	cp /etc/resolv.conf "$d/root/etc/resolv.conf"
}

ch_env() { CH_ENV[$1]="${CH_ENV[$1]} $2"; }
ch_workdir() { mkdir -p "$CH_WORK/$1/root$2"; CH_WORKDIR[$1]=$2; }

# ch_run STAGE 'shell command': like RUN, in the stage's workdir and env; the wheelhouse is the
# index, as the Dockerfiles' PIP_INDEX_URL build argument says.
ch_run() {
	local name=$1
	shift
	# shellcheck disable=SC2086
	chroot "$CH_WORK/$name/root" /usr/bin/env -i HOME=/root \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		PIP_INDEX_URL="http://127.0.0.1:$CH_PORT/simple/" ${CH_ENV[$name]} \
		/bin/sh -c "cd '${CH_WORKDIR[$name]}' && $*"
}

# ch_copy_context STAGE DEST [FILE...]: COPY from the context (the example, minus .dockerignore's
# generated files) into the stage; all of it when no FILE is given.
ch_copy_context() {
	local name=$1 dest=$2 ctx=${CH_CONTEXT:-$CH_REPO/examples/django}
	shift 2
	mkdir -p "$CH_WORK/$name/root$dest"
	if [ $# -eq 0 ]; then
		tar -C "$ctx" --exclude='Dockerfile*' --exclude=README.md --exclude=__pycache__ \
			--exclude='*.pyc' --exclude='*.egg-info' --exclude=build --exclude='*.mo' \
			--exclude=db.sqlite3 --exclude=static.dist -cf - . |
			tar -C "$CH_WORK/$name/root$dest" -xf -
	else
		(cd "$ctx" && cp -a "$@" "$CH_WORK/$name/root$dest/")
	fi
}

# ch_view STAGE: a read-only view of a finished stage (its upper dir over its lower layers).
ch_view() {
	local d=$CH_WORK/$1
	ch_umount_stage "$1"
	mkdir -p "$d/view"
	mountpoint -q "$d/view" || mount -t overlay overlay -o "ro,lowerdir=$d/upper:${CH_LOWER[$1]}" "$d/view"
}

# ch_copy_from SRC_STAGE PATH DST_STAGE DEST: COPY --from (a directory's contents, or a file).
ch_copy_from() {
	ch_view "$1"
	local src=$CH_WORK/$1/view$2 dst=$CH_WORK/$3/root$4
	if [ -d "$src" ]; then
		mkdir -p "$dst" && cp -a "$src/." "$dst/"
	else
		mkdir -p "$(dirname "$dst")" && cp -a "$src" "$dst"
	fi
}

ch_umount_stage() {
	local r=$CH_WORK/$1/root
	mountpoint -q "$r" || return 0
	umount -R "$r" 2>/dev/null || umount -lR "$r"
}

ch_cleanup() {
	local d
	if [ -n "$CH_SERVER_PID" ]; then
		kill "$CH_SERVER_PID" 2>/dev/null || true
		wait "$CH_SERVER_PID" 2>/dev/null || true
	fi
	CH_SERVER_PID=
	for d in "$CH_WORK"/*/root "$CH_WORK"/*/view; do
		if mountpoint -q "$d"; then umount -R "$d" 2>/dev/null || umount -lR "$d" || true; fi
	done
	if grep -q " $CH_WORK/" /proc/self/mounts; then
		echo "chroot-lib: mounts left under $CH_WORK, not removing it" >&2
	elif [ -z "${CH_KEEP:-}" ]; then
		rm -rf "$CH_WORK"
	fi
}
