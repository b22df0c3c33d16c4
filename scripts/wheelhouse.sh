#!/usr/bin/env bash
# A local PyPI for the offline Django example: wheels of Django, gunicorn and their dependencies,
# made from the Debian packages inside the base image (scripts/base-image.sh), laid out as a
# PEP 503 "simple" index that `python3 -m http.server` can serve on loopback. RUN steps share the
# host's network, so the example's `pip install` reaches it at http://127.0.0.1:PORT/simple/.
# Debian's egg-info drops install_requires (dpkg carries the dependencies), so the upstream lists
# are restored below: pip then resolves Django -> asgiref, pytz, sqlparse as it would on PyPI.
# The index is cached by the hash of this script and of the base tarball's name.
# Usage: scripts/wheelhouse.sh                 prints the index root (holds simple/)
#        scripts/wheelhouse.sh serve PORT      serves it on 127.0.0.1:PORT in the foreground
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SLIPWAY_CACHE:-/var/cache/slipway}
base=$("$here/base-image.sh")
key=$( (sha256sum <"$here/wheelhouse.sh"; basename "$base") | sha256sum | cut -c1-12)
out=$cache/wheelhouse-$key

mkdir -p "$cache"
# One builder at a time (tests and the demo may start together); the others wait, then reuse it.
exec 9>"$cache/wheelhouse.lock"
flock 9
if [ ! -d "$out/simple" ]; then
	tmp=$(mktemp -d "$cache/wheelhouse.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/root"
	tar -C "$tmp/root" -xf "$base" ./usr ./etc ./var/lib/dpkg ./bin ./lib ./lib64 2>/dev/null ||
		tar -C "$tmp/root" -xf "$base"
	cat >"$tmp/root/mkwheels.py" <<'PY'
import glob, os, shutil, subprocess, sys
from wheel.metadata import pkginfo_to_metadata
from wheel.wheelfile import WheelFile

SITE = "/usr/lib/python3/dist-packages"
# Debian package -> (project, upstream install_requires that Debian's egg-info dropped)
PACKAGES = {
    "python3-django": ("Django", ["asgiref>=3.3.2,<4", "pytz", "sqlparse>=0.2.2"]),
    "python3-asgiref": ("asgiref", []),
    "python3-tz": ("pytz", []),
    "python3-sqlparse": ("sqlparse", []),
    "python3-gunicorn": ("gunicorn", ["setuptools>=3.0"]),
    "python3-wheel": ("wheel", []),
}
out = sys.argv[1]

def norm(name):
    return name.lower().replace("_", "-").replace(".", "-")

def build(deb, project, requires):
    files = subprocess.run(["dpkg", "-L", deb], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    egg = [f for f in files if f.startswith(SITE + "/") and f.endswith(".egg-info")][0]
    version = os.path.basename(egg)[len(project) + 1:-len(".egg-info")]
    dist = project.replace("-", "_") + "-" + version
    # Restore the upstream requirements in front of the extras sections.
    req = os.path.join(egg, "requires.txt")
    old = open(req).read() if os.path.exists(req) else ""
    tmp_egg = "/tmp/" + os.path.basename(egg)
    shutil.copytree(egg, tmp_egg)
    with open(os.path.join(tmp_egg, "requires.txt"), "w") as f:
        f.write("\n".join(requires) + "\n" + old.lstrip("\n") if requires else old)
    meta = pkginfo_to_metadata(tmp_egg, os.path.join(tmp_egg, "PKG-INFO"))
    os.makedirs(os.path.join(out, "simple", norm(project)), exist_ok=True)
    path = os.path.join(out, "simple", norm(project), dist + "-py3-none-any.whl")
    with WheelFile(path, "w") as whl:
        for f in sorted(files):
            if not f.startswith(SITE + "/") or f.startswith(egg) or not os.path.isfile(f):
                continue  # directories, the egg-info, and links to absent files (jquery)
            whl.write(f, os.path.relpath(f, SITE))
        di = dist + ".dist-info/"
        whl.writestr(di + "METADATA", meta.as_string())
        whl.writestr(di + "WHEEL", "Wheel-Version: 1.0\nGenerator: slipway-wheelhouse\n"
                     "Root-Is-Purelib: true\nTag: py3-none-any\n")
        for name in ("entry_points.txt", "top_level.txt"):
            if os.path.exists(os.path.join(egg, name)):
                whl.write(os.path.join(egg, name), di + name)
    print(path)

for deb, (project, requires) in PACKAGES.items():
    build(deb, project, requires)
# pip and setuptools: Debian ships their upstream wheels (python3-pip-whl, -setuptools-whl).
for whl in glob.glob("/usr/share/python-wheels/*.whl"):
    project = os.path.basename(whl).split("-")[0]
    if project in ("pip", "setuptools"):
        os.makedirs(os.path.join(out, "simple", norm(project)), exist_ok=True)
        shutil.copy(whl, os.path.join(out, "simple", norm(project)))
        print(whl)
PY
	mkdir -p "$tmp/root/tmp"
	chroot "$tmp/root" /usr/bin/python3 /mkwheels.py /tmp/wh >&2
	rm -rf "$out"
	mv "$tmp/root/tmp/wh" "$out"
	rm -rf "$tmp"
	trap - EXIT
fi
flock -u 9
exec 9>&-

case "${1:-}" in
serve) exec python3 -m http.server --bind 127.0.0.1 --directory "$out" "${2:?port}" ;;
"") echo "$out" ;;
*) echo "usage: $0 [serve PORT]" >&2; exit 2 ;;
esac
