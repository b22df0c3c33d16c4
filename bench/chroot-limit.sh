#!/usr/bin/env bash
# The chroot limit: the commands a rebuild must re-run, timed straight in a chroot of the same base
# rootfs with no builder around them. A builder's rebuild time over this is its overhead (sandbox
# set-up, context hashing, snapshotting, layer writing, manifests).
#
#   chroot-limit.sh prepare BASE_TAR WORK          extract the rootfs once (untimed)
#   chroot-limit.sh edit|bump DOCKERFILE CTX WORK  print the seconds the re-run commands took
#
# Which commands re-run is read from the Dockerfile, the way the article's cache behaves:
#   edit: the RUNs after `COPY . .` in its stage, then every RUN of the stages built FROM it;
#   bump: first the RUNs after `COPY setup.py` in its stage (egg_info), then the edit's commands.
# Each command runs as `/bin/sh -c` in a fresh overlay of the rootfs with the Dockerfile's ENV and
# the stage's WORKDIR; the context is copied in beforehand, untimed. The dependency install is
# not replayed (it stays cached in both scenarios): the base image already holds Django.
set -euo pipefail

plan() { # DOCKERFILE MODE: print "cwd<TAB>command" lines, then ENV as "=K<TAB>V"
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import re, shlex, sys
path, mode = sys.argv[1], sys.argv[2]
lines, cur = [], ""
for raw in open(path):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
stages, env = [], {}
for ln in lines:
    word, _, rest = ln.strip().partition(" ")
    word, rest = word.upper(), rest.strip()
    if word == "FROM":
        toks = rest.split()
        name = toks[2] if len(toks) > 2 and toks[1].lower() == "as" else None
        parent = next((s for s in stages if s["name"] == toks[0]), None)
        stages.append({"name": name, "parent": parent, "ops": [],
                       "wd": parent["wd"] if parent else "/"})
        continue
    st = stages[-1]
    if word == "WORKDIR":
        st["wd"] = rest
    elif word == "ENV":
        if "=" in rest.split()[0]:
            for kv in shlex.split(rest):
                k, _, v = kv.partition("=")
                env[k] = v
        else:
            k, _, v = rest.partition(" ")
            env[k] = v.strip()
    elif word == "RUN":
        st["ops"].append(("run", st["wd"], rest))
    elif word == "COPY":
        st["ops"].append(("copy", st["wd"], rest))

def runs_after(st, pred):
    out, seen = [], False
    for kind, wd, arg in st["ops"]:
        if kind == "copy" and pred(arg):
            seen = True
        elif kind == "run" and seen:
            out.append((wd, arg))
    return out

def descends(st, anc):
    while st["parent"]:
        if st["parent"] is anc:
            return True
        st = st["parent"]
    return False

app = next(s for s in stages if any(k == "copy" and a.split() == [".", "."] for k, _, a in s["ops"]))
cmds = runs_after(app, lambda a: a.split() == [".", "."])
for s in stages:
    if descends(s, app):
        cmds += [(wd, a) for k, wd, a in s["ops"] if k == "run"]
if mode == "bump":
    dep = next(s for s in stages if any(k == "copy" and a.split()[:1] == ["setup.py"]
                                        for k, _, a in s["ops"]))
    cmds = [("dep:" + wd, a) for wd, a in runs_after(dep, lambda a: a.split()[:1] == ["setup.py"])] + cmds
for wd, a in cmds:
    if a.startswith("["):
        import json
        a = " ".join(shlex.quote(x) for x in json.loads(a))
    print(f"{wd}\t{a}")
for k, v in env.items():
    print(f"={k}\t{v}")
EOF
}

# stage_mount WORK NAME: a fresh overlay of the rootfs at WORK/NAME/m with /proc and /dev.
stage_mount() {
	local d=$1/$2
	rm -rf "$d"
	mkdir -p "$d/u" "$d/w" "$d/m"
	mount -t overlay overlay -o "lowerdir=$1/rootfs,upperdir=$d/u,workdir=$d/w" "$d/m"
	mount -t proc proc "$d/m/proc"
	mount --rbind /dev "$d/m/dev"
	echo "$d/m"
}

case ${1:-} in
prepare)
	base=$2 work=$3
	if [ ! -e "$work/rootfs/.bench-ok" ]; then
		rm -rf "$work/rootfs"
		mkdir -p "$work/rootfs"
		tar -xpf "$base" -C "$work/rootfs" --numeric-owner
		touch "$work/rootfs/.bench-ok"
	fi
	;;
edit | bump)
	[ -n "${SW_CHROOT_UNSHARED:-}" ] ||
		SW_CHROOT_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
	mode=$1 dockerfile=$2 ctx=$3 work=$4
	envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
	cmds=()
	while IFS=$'\t' read -r a b; do
		if [ "${a:0:1}" = = ]; then envs+=("${a:1}=$b"); else cmds+=("$a"$'\t'"$b"); fi
	done < <(plan "$dockerfile" "$mode")
	app=$(stage_mount "$work" app)
	appwd=$(printf '%s\n' "${cmds[@]}" | grep -v '^dep:' | head -1 | cut -f1)
	mkdir -p "$app$appwd" "$app/install"
	cp -a "$ctx/." "$app$appwd/"
	dep=
	if [ "$mode" = bump ]; then
		dep=$(stage_mount "$work" dep)
		depwd=$(printf '%s\n' "${cmds[@]}" | grep '^dep:' | head -1 | cut -f1)
		depwd=${depwd#dep:}
		mkdir -p "$dep$depwd"
		cp -a "$ctx/setup.py" "$dep$depwd/"
	fi
	total=0
	for c in "${cmds[@]}"; do
		wd=${c%%$'\t'*} sh_cmd=${c#*$'\t'} root=$app
		if [ "${wd:0:4}" = dep: ]; then
			wd=${wd#dep:} root=$dep
		fi
		t0=$EPOCHREALTIME
		env -i "${envs[@]}" chroot "$root" /bin/sh -c "cd \"\$1\" && $sh_cmd" sh "$wd" >&2
		t1=$EPOCHREALTIME
		total=$(awk -v t="$total" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", t + b - a }')
	done
	echo "$total"
	;;
*)
	echo "usage: $0 prepare BASE_TAR WORK | $0 edit|bump DOCKERFILE CTX WORK" >&2
	exit 2
	;;
esac
