#!/usr/bin/env bash
# The floor for a rebuild: the commands that the final Dockerfile of examples/django must re-run
# after a one-line .py edit and after a setup.py version bump, timed straight in chroots of the
# base rootfs with no builder around them (scripts/chroot-lib.sh). A builder's rebuild time minus
# this is its overhead (issue 6).
#   edit: compilemessages, pip install ., cp -r /install/local/*, collectstatic
#   bump: the same plus `python setup.py egg_info`
# The stages up to the dependency install are prepared once, untimed (apt-get included, as in the
# Dockerfile). Each repetition starts from that state in fresh overlay stages. Needs root.
# Usage: bench/chroot-baseline.sh [REPETITIONS]    (default 3; prints medians in seconds)
# bench/run.sh sources it instead (SW_BASELINE_LIB=1) and calls cb_prepare once, then rebuild
# once per round right after the builders' rebuilds, with the same edits (CH_CONTEXT).
# shellcheck source=scripts/chroot-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/chroot-lib.sh"

# cb_prepare: the untimed state every rebuild starts from (needs CH_CONTEXT; calls ch_setup).
cb_prepare() {
	ch_setup
	echo "preparing base-builder, dependencies and builder up to the dependency install..." >&2
	cb_prepare_stages >"$CH_WORK/prepare.log" 2>&1 || {
		tail -30 "$CH_WORK/prepare.log" >&2
		return 1
	}
}

cb_prepare_stages() {
	ch_stage base-builder || return 1
	ch_env base-builder DJANGO_SETTINGS_MODULE=foo.settings || return 1
	ch_run base-builder 'pip install -U pip setuptools' || return 1
	ch_run base-builder 'mkdir -p /app' || return 1
	ch_workdir base-builder /app || return 1
	ch_stage dependencies base-builder || return 1
	ch_copy_context dependencies /app setup.py || return 1
	ch_run dependencies 'python setup.py egg_info' || return 1
	ch_stage builder base-builder || return 1
	ch_run builder 'apt-get update && apt-get install -y build-essential python3-dev' || return 1
	ch_run builder 'mkdir -p /install' || return 1
	ch_copy_from dependencies /app/foo.egg-info/requires.txt builder /tmp/requires.txt || return 1
	ch_run builder "sh -c 'pip install --no-warn-script-location --ignore-installed --prefix=/install \$(grep -e ^$ -m 1 -B 9999 /tmp/requires.txt) gunicorn'" || return 1
	ch_umount_stage builder || return 1
}

now() { date +%s.%N; }
# timed STAGE 'command': run it quietly, print its wall time in seconds.
timed() {
	local t0 t1
	t0=$(now)
	ch_run "$1" "$2" >>"$CH_WORK/run.log" 2>&1 || { tail -30 "$CH_WORK/run.log" >&2; exit 1; }
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# One rebuild after the context changed; prints "total egg_info compilemessages pip cp collectstatic".
rebuild() {
	local id=$1 bump=$2 egg=0 cm pip cp cs
	# As bench/lib.sh's measure() does before every builder's timed command: no dirty page
	# cache left by whatever ran before (in bench/run.sh, a builder's rebuild) is written back
	# during these timed commands.
	sync
	if [ "$bump" = 1 ]; then
		ch_stage "dep$id" base-builder
		ch_copy_context "dep$id" /app setup.py
		egg=$(timed "dep$id" 'python setup.py egg_info')
		ch_umount_stage "dep$id"
	fi
	ch_stage "b$id" builder
	ch_copy_context "b$id" /app
	cm=$(timed "b$id" 'python manage.py compilemessages')
	pip=$(timed "b$id" "sh -c 'pip install --no-warn-script-location --prefix=/install .'")
	ch_stage "s$id" "b$id"
	cp=$(timed "s$id" 'cp -r /install/local/* /usr/local')
	cs=$(timed "s$id" "sh -c 'python manage.py collectstatic --no-input'")
	ch_umount_stage "s$id"
	echo "$egg $cm $pip $cp $cs" | awk '{ printf "%.3f %s\n", $1 + $2 + $3 + $4 + $5, $0 }'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

[ -z "${SW_BASELINE_LIB:-}" ] || return 0

set -euo pipefail
reps=${1:-3}
trap 'ch_cleanup; rm -rf "$ctx"' EXIT
ctx=$(mktemp -d /var/tmp/slipway-baseline-ctx.XXXXXX)
cp -a "$CH_REPO/examples/django/." "$ctx/"
export CH_CONTEXT=$ctx
cb_prepare

for scenario in edit bump; do
	: >"$CH_WORK/$scenario.txt"
	for i in $(seq "$reps"); do
		if [ $scenario = edit ]; then
			echo "# edit $i" >>"$ctx/foo/views.py"
			rebuild "e$i" 0 >>"$CH_WORK/$scenario.txt"
		else
			sed -i -E "s/version=\"[^\"]*\"/version=\"1.0.$i\"/" "$ctx/setup.py"
			rebuild "v$i" 1 >>"$CH_WORK/$scenario.txt"
		fi
	done
	printf '%-5s median %6.2f s  (egg_info %.2f, compilemessages %.2f, pip install . %.2f, cp %.2f, collectstatic %.2f; %s runs)\n' \
		"$scenario" "$(median <"$CH_WORK/$scenario.txt")" \
		"$(awk '{print $2}' "$CH_WORK/$scenario.txt" | median)" \
		"$(awk '{print $3}' "$CH_WORK/$scenario.txt" | median)" \
		"$(awk '{print $4}' "$CH_WORK/$scenario.txt" | median)" \
		"$(awk '{print $5}' "$CH_WORK/$scenario.txt" | median)" \
		"$(awk '{print $6}' "$CH_WORK/$scenario.txt" | median)" "$reps"
done
