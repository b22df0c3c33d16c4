#!/usr/bin/python3
"""A conformance case's options (case.json) and context preparation, shared by record.sh and
tests/e2e/test_conformance.py.
Usage: caseinfo.py prepare CTX        modes normalised (git keeps only +x), case.json's
                                      "modes" {PATH: "0600"}, "mkdir" [PATH] and "hardlinks"
                                      {NEW: EXISTING} (git keeps no hardlinks), then every
                                      mtime in CTX (links too) := compare.CTX_MTIME
       caseinfo.py docker-args CTX    `docker build` flags for the case, one a line
       caseinfo.py error CTX          case.json's "error" (empty if the build must succeed)
       caseinfo.py deliberate CTX     case.json's "deliberate" (empty if none)

A case whose build fails: "error" is a substring of the failing build's output, on both sides
(record.sh records Docker's matching line as {"error": LINE}), or, with "deliberate" (the
reason, also in README.md), on slipway's side only: Docker's image is recorded as usual."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def load(ctx):
    """case.json: {"target": STAGE, "build_args": {K: V}, "ignore": [summary keys],
    "modes": {PATH: MODE}, "mkdir": [PATH], "hardlinks": {NEW: EXISTING},
    "error": SUBSTRING, "deliberate": REASON, "known": [diff substrings], "note": WHY (e.g. why
    "ignore" leaves something out)}."""
    path = os.path.join(ctx, "case.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def build_flags(ctx):
    info = load(ctx)
    flags = []
    if info.get("target"):
        flags += ["--target", info["target"]]
    for k, v in sorted(info.get("build_args", {}).items()):
        flags += ["--build-arg", "%s=%s" % (k, v)]
    return flags


def prepare(ctx):
    info = load(ctx)
    for d in info.get("mkdir", []):
        os.makedirs(os.path.join(ctx, d), exist_ok=True)
    for new, existing in sorted(info.get("hardlinks", {}).items()):
        os.link(os.path.join(ctx, existing), os.path.join(ctx, new))
    for root, dirs, files in os.walk(ctx):
        for n in dirs + files:
            p = os.path.join(root, n)
            if os.path.islink(p):
                continue
            st = os.stat(p)
            os.chmod(p, 0o755 if os.path.isdir(p) or st.st_mode & 0o100 else 0o644)
    os.chmod(ctx, 0o755)
    for p, mode in info.get("modes", {}).items():
        os.chmod(os.path.join(ctx, p), int(mode, 8))
    t = compare.CTX_MTIME
    for root, dirs, files in os.walk(ctx, topdown=False):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (t, t), follow_symlinks=False)
    os.utime(ctx, (t, t))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "docker-args", "error",
                                                 "deliberate"):
        sys.exit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif sys.argv[1] in ("error", "deliberate"):
        print(load(sys.argv[2]).get(sys.argv[1], ""))
    else:
        for flag in build_flags(sys.argv[2]):
            print(flag)
