#!/usr/bin/env bash
# Debian packages the benchmark alone needs: the peers (Docker's dockerd + BuildKit, Buildah) and
# GNU time for peak memory. Kept apart from scripts/deps.sh so the test suite never pulls them in.
# Idempotent: packages already present are skipped and `apt-get update` runs at most once.
set -euo pipefail
pkgs=(docker.io buildah skopeo docker-registry time uidmap)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "bench deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "bench deps: installing ${missing[*]}"
sudo_=
[ "$(id -u)" -eq 0 ] || sudo_=sudo
$sudo_ apt-get update -qq
# policy-rc.d 101: the package must not start the system dockerd; the benchmark runs its own.
prc=/usr/sbin/policy-rc.d
made_prc=
if [ ! -e $prc ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo_ tee $prc >/dev/null
	$sudo_ chmod 755 $prc
	made_prc=1
fi
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -z "$made_prc" ] || $sudo_ rm -f $prc
