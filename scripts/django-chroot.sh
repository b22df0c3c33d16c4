#!/usr/bin/env bash
# Prove the Django example and the commands of its Dockerfiles without any image builder: run
# each Dockerfile's steps by hand in chroots of the base rootfs (scripts/chroot-lib.sh), then
# start the final image's entrypoint and check the page, the German translation, a static file,
# migrate's idempotence and a clean SIGTERM. Needs root.
# Usage: scripts/django-chroot.sh [naive|requirements|multistage|final]...   (default: all four)
set -euo pipefail
# shellcheck source=scripts/chroot-lib.sh
. "$(dirname "$0")/chroot-lib.sh"
trap ch_cleanup EXIT
ch_setup
say() { printf '\n== %s\n' "$*"; }

# The single-image Dockerfiles (naive: COPY . . first; requirements: requirements.txt first).
single() {
	local s=$1
	ch_stage "$s"
	ch_env "$s" DJANGO_SETTINGS_MODULE=foo.settings
	ch_run "$s" 'mkdir -p /app'
	ch_workdir "$s" /app
	if [ "$s" = requirements ]; then
		ch_copy_context "$s" /app requirements.txt
		ch_run "$s" 'pip install --ignore-installed -r requirements.txt gunicorn'
		ch_copy_context "$s" /app
	else
		ch_copy_context "$s" /app
		ch_run "$s" 'pip install --ignore-installed -r requirements.txt gunicorn'
	fi
	ch_run "$s" 'python manage.py collectstatic'
	ch_run "$s" 'python manage.py compilemessages'
	serve "$s"
}

multistage() {
	ch_stage ms-builder
	ch_env ms-builder DJANGO_SETTINGS_MODULE=foo.settings
	ch_run ms-builder 'pip install -U pip setuptools'
	ch_run ms-builder 'mkdir -p /app'
	ch_workdir ms-builder /app
	ch_run ms-builder 'apt-get update && apt-get install -y build-essential python3-dev'
	ch_run ms-builder 'mkdir -p /install'
	ch_copy_context ms-builder /app
	ch_run ms-builder 'python manage.py compilemessages'
	ch_run ms-builder "sh -c 'pip install --no-warn-script-location --ignore-installed --prefix=/install . gunicorn'"
	ch_run ms-builder 'cp -r /install/local/* /usr/local'
	ch_run ms-builder "sh -c 'python manage.py collectstatic --no-input'"
	final_stage multistage ms-builder ms-builder
}

final() {
	ch_stage base-builder
	ch_env base-builder DJANGO_SETTINGS_MODULE=foo.settings
	ch_run base-builder 'pip install -U pip setuptools'
	ch_run base-builder 'mkdir -p /app'
	ch_workdir base-builder /app
	ch_umount_stage base-builder

	ch_stage dependencies base-builder
	ch_copy_context dependencies /app setup.py
	ch_run dependencies 'python setup.py egg_info'
	say "requires.txt, and what the article's grep keeps of it"
	cat "$CH_WORK/dependencies/root/app/foo.egg-info/requires.txt"
	ch_run dependencies 'echo "-> $(grep -e ^$ -m 1 -B 9999 foo.egg-info/requires.txt)"'

	ch_stage builder base-builder
	ch_run builder 'apt-get update && apt-get install -y build-essential python3-dev'
	ch_run builder 'mkdir -p /install'
	ch_copy_from dependencies /app/foo.egg-info/requires.txt builder /tmp/requires.txt
	ch_run builder "sh -c 'pip install --no-warn-script-location --ignore-installed --prefix=/install \$(grep -e ^$ -m 1 -B 9999 /tmp/requires.txt) gunicorn'"
	ch_copy_context builder /app
	ch_run builder 'python manage.py compilemessages'
	ch_run builder "sh -c 'pip install --no-warn-script-location --prefix=/install .'"

	ch_stage static-builder builder
	ch_run static-builder 'cp -r /install/local/* /usr/local'
	ch_run static-builder "sh -c 'python manage.py collectstatic --no-input'"
	final_stage final builder static-builder
}

# The final stage of both multi-stage Dockerfiles: common-base plus the copied results.
final_stage() {
	local s=$1 builder=$2 static=$3
	ch_stage "$s"
	ch_env "$s" DJANGO_SETTINGS_MODULE=foo.settings
	ch_run "$s" 'mkdir -p /app'
	ch_copy_context "$s" /app manage.py docker-entrypoint.sh
	ch_copy_from "$builder" /install/local "$s" /usr/local
	ch_copy_from "$static" /app/static.dist "$s" /app/static.dist
	local r=$CH_WORK/$s/root
	say "$s: final image checks"
	for p in /app/setup.py /app/foo /usr/bin/gcc /usr/bin/make; do
		if [ -e "$r$p" ]; then echo "FAIL: $p in the final image"; exit 1; fi
	done
	ls "$r"/usr/local/lib/python3*/dist-packages/foo/locale/de/LC_MESSAGES/django.mo
	ls "$r"/usr/local/lib/python3*/dist-packages/foo/templates/foo/index.html
	ls "$r"/app/static.dist/foo/style.css
	serve "$s"
}

# Start the entrypoint twice (migrate creates the DB, then is a no-op), fetch the page in English
# and German and a static file, then stop gunicorn with SIGTERM.
serve() {
	local s=$1 port log=$CH_WORK/$1.log pid
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	ch_run "$s" 'rm -f /data/db.sqlite3; mkdir -p /data'
	for start in 1 2; do
		chroot "$CH_WORK/$s/root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
			DJANGO_SETTINGS_MODULE=foo.settings FOO_DB_PATH=/data/db.sqlite3 GUNICORN_WORKERS=2 \
			GUNICORN_CMD_ARGS=--config=python:foo.gunicorn_conf FOO_BIND="127.0.0.1:$port" \
			/app/docker-entrypoint.sh >"$log.$start" 2>&1 &
		pid=$!
		for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
		say "$s: start $start"
		grep -E 'Applying|No migrations|Listening|Booting worker' "$log.$start" || true
		curl -fsS "http://127.0.0.1:$port/" | grep -E 'Hello|visited'
		curl -fsS -H 'Accept-Language: de' "http://127.0.0.1:$port/" | grep -E 'Hallo von foo'
		curl -fsS "http://127.0.0.1:$port/static/foo/style.css" | grep -q foo-static-marker
		kill -TERM "$pid"
		local rc=0
		wait "$pid" || rc=$?
		echo "SIGTERM -> exit status $rc"
		[ "$rc" -eq 0 ]
	done
	grep -q 'Applying foo.0001_initial' "$log.1"
	grep -q 'No migrations to apply' "$log.2"
	say "$s: OK"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(naive requirements multistage final)
for t in "${targets[@]}"; do
	case $t in
	naive | requirements) single "$t" ;;
	multistage) multistage ;;
	final) final ;;
	*) echo "unknown target $t" >&2; exit 2 ;;
	esac
done
say "all OK: ${targets[*]}"
