#!/usr/bin/python3
"""Compare two images file by file and field by field (stdlib only).

An image is a docker-archive tar (`docker save`, `slipway save --format docker`) or a summary
JSON this tool printed before. The summary holds what Docker conformance is judged on:
  - config: architecture, os and the config fields a Dockerfile sets (Env, Cmd, Entrypoint,
    WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck, Shell, OnBuild,
    ArgsEscaped);
  - history: created_by, empty_layer and comment of every entry (which instruction made what);
  - layers: per layer the instruction that made it and its tar entries: path, type, mode, uid,
    gid, size, link target, sha256 of the bytes, xattrs, whiteouts (`.wh.NAME`) and opaque
    markers (`.wh..wh..opq`), and an mtime *class* (absolute times differ from build to build:
    `ctx` = the context's fixed time, `base` = the base rootfs's, `epoch` = SOURCE_DATE_EPOCH
    when given, `0`, else `build`). Big layers (a base image) are kept as a count and a hash.

Usage:
  compare.py summary IMAGE [--ctx-mtime T] [--epoch T]      print the summary JSON
  compare.py diff A B [--labels docker,slipway] [--ctx-mtime T] [--epoch T]
                                                            readable diff; exit 1 if they differ
"""
import argparse
import difflib
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile

SHADOW_FILES = ("/etc/shadow",)


def shadow_without_days(data):
    """/etc/shadow with each line's lastchg field (days since 1970 of the last password change:
    `useradd` writes the day the image was built) set to "DAY", so a build on another day
    compares equal (the recorded python case failed the day after it was recorded, Docker's and
    slipway's files differing in that field only). The field's digits are still in the size."""
    out = []
    for line in data.split(b"\n"):
        f = line.split(b":")
        if len(f) > 2 and f[2].isdigit():
            f[2] = b"DAY"
        out.append(b":".join(f))
    return b"\n".join(out)


CTX_MTIME = 1600000000  # tests/conformance: every context file has this mtime
BASE_MTIME = 1700000000  # tests/conformance/rootfs.py, scripts/base-image.sh
MAX_LISTED = 400  # a layer with more entries is summarised as count + hash
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
                 "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild", "ArgsEscaped")
TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
         tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
         tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def mtime_class(t, ctx_mtime, epoch, base_mtime=BASE_MTIME):
    if epoch is not None and t == epoch:
        return "epoch"
    if t == ctx_mtime:
        return "ctx"
    if t == base_mtime:
        return "base"
    return "0" if t == 0 else "build"


def entry_of(tf, m, ctx_mtime, epoch, base_mtime=BASE_MTIME):
    path = m.name
    while path.startswith("./"):
        path = path[2:]
    path = "/" + path.rstrip("/")
    e = {"path": path, "type": TYPES.get(m.type, "type-%r" % m.type), "mode": "%04o" % (m.mode & 0o7777),
         "uid": m.uid, "gid": m.gid}
    base = path.rsplit("/", 1)[1]
    if base == ".wh..wh..opq":
        e["opaque"] = True
    elif base.startswith(".wh."):
        e["whiteout"] = True
    if m.isreg():
        data = tf.extractfile(m).read()
        e["size"] = len(data)
        e["sha256"] = hashlib.sha256(data).hexdigest()[:16]
        if path in SHADOW_FILES:
            e["_sha256_days_free"] = hashlib.sha256(shadow_without_days(data)).hexdigest()[:16]
    if m.issym() or m.islnk():
        e["link"] = m.linkname
    if m.ischr() or m.isblk():
        e["dev"] = "%d:%d" % (m.devmajor, m.devminor)
    xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
              if k.startswith("SCHILY.xattr.")}
    if xattrs:
        e["xattrs"] = xattrs
    if not (e.get("whiteout") or e.get("opaque")):
        e["mtime"] = mtime_class(int(m.mtime), ctx_mtime, epoch, base_mtime)
    return e


def read_layer(data, ctx_mtime, epoch, base_mtime=BASE_MTIME):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        sys.exit("compare.py: zstd layers are not supported (save with gzip)")
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            entries.append(entry_of(tf, m, ctx_mtime, epoch, base_mtime))
    return entries


def summarise_entries(entries):
    paths = [e["path"] for e in entries]
    out = {"count": len(entries)}
    dups = sorted({p for p in paths if paths.count(p) > 1}) if len(paths) != len(set(paths)) \
        else []
    if dups:
        out["duplicates"] = dups
    entries = sorted(entries, key=lambda e: e["path"])
    listed = len(entries) <= MAX_LISTED
    for e in entries:
        # A listed /etc/shadow compares without its build day; a big layer's hash (a base
        # image, the same bytes on both sides) stays the hash of the bytes as they are.
        days_free = e.pop("_sha256_days_free", None)
        if listed and days_free:
            e["sha256"] = days_free
    if listed:
        out["entries"] = entries
    else:
        blob = json.dumps(entries, sort_keys=True).encode()
        out["sha256"] = hashlib.sha256(blob).hexdigest()
    return out


def summarise_archive(path, ctx_mtime=CTX_MTIME, epoch=None, base_mtime=BASE_MTIME):
    with tarfile.open(path) as outer:
        names = {n[2:] if n.startswith("./") else n: n for n in outer.getnames()}

        def member(name):
            return outer.extractfile(names[name[2:] if name.startswith("./") else name]).read()
        manifest = json.loads(member("manifest.json"))
        if len(manifest) != 1:
            sys.exit("compare.py: %s holds %d images, expected one" % (path, len(manifest)))
        manifest = manifest[0]
        config = json.loads(member(manifest["Config"]))
        layers = [read_layer(member(name), ctx_mtime, epoch, base_mtime)
                  for name in manifest["Layers"]]
    cfg = config.get("config") or {}
    history = []
    for h in config.get("history") or []:
        item = {"created_by": h.get("created_by", "")}
        if h.get("empty_layer"):
            item["empty_layer"] = True
        if h.get("comment"):
            item["comment"] = h["comment"]
        history.append(item)
    made_by = [h["created_by"] or h.get("comment", "") for h in history
               if not h.get("empty_layer")]
    out_layers = []
    for i, entries in enumerate(layers):
        layer = {"made_by": made_by[i] if i < len(made_by) else "(no history entry)"}
        layer.update(summarise_entries(entries))
        out_layers.append(layer)
    return {
        "architecture": config.get("architecture"),
        "os": config.get("os"),
        "config": {k: cfg.get(k) for k in CONFIG_FIELDS if cfg.get(k) not in (None, [], {}, "")},
        "history": history,
        "layers": out_layers,
    }



def base_mtime_of(path):
    """The time a base rootfs tar was clamped to (mmdebstrap under SOURCE_DATE_EPOCH writes no
    later mtime, and every file it creates has exactly that one): its newest mtime."""
    with tarfile.open(path) as tf:
        return max(int(m.mtime) for m in tf)


def summarise_rootfs(path, base_mtime):
    """A base rootfs tar (what `import` is given) summarised as the layer it must become."""
    with open(path, "rb") as f:
        return summarise_entries(read_layer(f.read(), CTX_MTIME, None, base_mtime))


BYTES = ("sha256", "size")


def judge_base(want, got, base):
    """Judge slipway's work, not the Debian archive's. `want` was recorded from Docker on the
    base of its day; `base` is the summary of the base tar slipway was given now.
    - An imported layer is compared with `base` itself: slipway must store exactly the tar it
      was given, whatever the archive put in it.
    - When `base` is not the recorded one (a security update or point release since), the
      files a RUN step wrote by running the base's programs on the base's files (/etc/passwd
      after useradd, a version string, bytecode) may differ for that reason alone: their bytes
      are not compared, everything else (paths, types, modes, owners, links, xattrs,
      whiteouts, mtime classes, layer boundaries, config, history) still is. Files COPY put
      there come from the context and are always compared byte for byte.
    Returns True when the base is the recorded one (a fully strict comparison)."""
    same = True
    for layer in want.get("layers", []):
        if layer["made_by"].startswith("Imported from"):
            same = same and (layer.get("count"), layer.get("sha256"), layer.get("entries")) == (
                base.get("count"), base.get("sha256"), base.get("entries"))
            made_by = layer["made_by"]
            layer.clear()
            layer.update(json.loads(json.dumps(base)), made_by=made_by)
    if not same:
        for summary in (want, got):
            for layer in summary.get("layers", []):
                if layer["made_by"].startswith("RUN ") and "entries" in layer:
                    for e in layer["entries"]:
                        if e["type"] == "file" and not (e.get("whiteout") or e.get("opaque")):
                            for k in BYTES:
                                e.pop(k, None)
    return same


def load(path, ctx_mtime, epoch):
    if path.endswith(".json"):
        with open(path) as f:
            return json.load(f)
    return summarise_archive(path, ctx_mtime, epoch)


# Differences between Debian's Docker 20.10 (BuildKit 0.8, the only Docker here) and slipway
# that are either fixed in later BuildKit releases, which slipway follows, or deliberate (see
# README.md, "Deliberate differences"). `tolerate(summary)` rewrites a summary so that these
# compare equal; the test applies it to both sides, so anything else still fails.
def _stub(e):
    """A mount point runc created for a RUN step (BuildKit >= 0.10 removes them)."""
    return e["type"] == "dir" and e["path"] in ("/dev", "/proc", "/sys", "/etc")


_RUN_ARGS = re.compile(r"^RUN \|(\d+) ((?:\S+=\S* )*)")


def _history_key(h):
    c = h
    # BuildKit >= 0.10 writes COPY --chown/--chmod/--parents into the history; 0.8 did not.
    c = re.sub(r"^(COPY|ADD)((?: --(?:chown|chmod|parents)=?\S*)+) ", r"\1 ", c)
    # BuildKit >= 0.11 writes an ARG's value as resolved (build arg, global default); 0.8 the
    # Dockerfile's text. Compare the names.
    if c.startswith("ARG "):
        c = "ARG " + " ".join(w.split("=", 1)[0] for w in c[4:].split())
    # RUN |N K=V...: the ARGs a RUN sees; 0.8 listed a redeclared ARG twice.
    m = _RUN_ARGS.match(c)
    if m:
        kv = dict(w.split("=", 1) for w in m.group(2).split())
        c = "RUN |%d %s" % (len(kv), "".join("%s=%s " % i for i in kv.items())) + c[m.end():]
    # HEALTHCHECK %q: BuildKit >= 0.12 has StartInterval (a 4th duration).
    c = re.sub(r'^(HEALTHCHECK &\{\[.*\] "[^"]*" "[^"]*" "[^"]*")( "[^"]*")( \'.*\'\})$',
               r"\1\3", c)
    return c


def tolerate(summary):
    summary = json.loads(json.dumps(summary))
    entries_layers = [x for x in summary.get("layers", [])]
    non_empty = [h for h in summary.get("history", []) if not h.get("empty_layer")]
    keep = []
    for i, layer in enumerate(entries_layers):
        made_by = layer.get("made_by", "")
        if "entries" in layer:
            es = layer["entries"]
            if made_by.startswith("RUN "):
                inside_etc = any(e["path"].startswith("/etc/") for e in es)
                es = [e for e in es if not (_stub(e) and (e["path"] != "/etc" or not inside_etc))]
            for e in es:
                if e.get("whiteout") or e.get("opaque"):
                    # Docker Engine's graphdriver writes whiteouts 0600 (opaque: the dir's
                    # mode); containerd/BuildKit's differ and slipway write mode 0, 0:0.
                    e.update(mode="-", uid=0, gid=0)
                if e["type"] == "dir" and e.get("mtime") in ("ctx", "build"):
                    # Docker 20.10 loses context directories' mtimes; see README.
                    e["mtime"] = "ctx|build"
            layer["entries"], layer["count"] = es, len(es)
        if layer.get("count") == 0 and made_by.startswith(("RUN ", "WORKDIR ")):
            # A RUN / WORKDIR that changed nothing: Docker keeps an empty layer, slipway adds
            # none (README, deliberate differences).
            if i < len(non_empty):
                non_empty[i]["empty_layer"] = True
            continue
        keep.append(layer)
    summary["layers"] = keep
    for h in summary.get("history", []):
        h["created_by"] = _history_key(h["created_by"])
    for layer in keep:
        layer["made_by"] = _history_key(layer["made_by"])
    return summary


def fmt(v):
    return json.dumps(v, sort_keys=True)


def diff_entries(la, lb, names, out):
    if la.get("duplicates") != lb.get("duplicates"):
        out.append("    duplicate paths: %s %s, %s %s" % (
            names[0], la.get("duplicates"), names[1], lb.get("duplicates")))
    if "entries" not in la or "entries" not in lb:
        if la.get("count") != lb.get("count") or la.get("sha256") != lb.get("sha256"):
            out.append("    %d entries (hash %s) vs %d entries (hash %s)" % (
                la["count"], la.get("sha256", "-")[:12], lb["count"], lb.get("sha256", "-")[:12]))
        return
    ea = {e["path"]: e for e in la["entries"]}
    eb = {e["path"]: e for e in lb["entries"]}
    for p in sorted(set(ea) | set(eb)):
        if p not in eb:
            out.append("    - %s only in %s: %s" % (p, names[0], brief(ea[p])))
        elif p not in ea:
            out.append("    + %s only in %s: %s" % (p, names[1], brief(eb[p])))
        elif ea[p] != eb[p]:
            keys = sorted(set(ea[p]) | set(eb[p]))
            d = ["%s %s≠%s" % (k, fmt(ea[p].get(k)), fmt(eb[p].get(k)))
                 for k in keys if ea[p].get(k) != eb[p].get(k)]
            out.append("    ~ %s: %s" % (p, ", ".join(d)))


def brief(e):
    s = "%s %s %d:%d" % (e["type"], e["mode"], e["uid"], e["gid"])
    if "size" in e:
        s += " %dB" % e["size"]
    if "link" in e:
        s += " -> " + e["link"]
    return s


def diff(a, b, names=("A", "B")):
    """Readable differences between two summaries (a list of lines; empty if equal)."""
    out = []
    for k in ("architecture", "os"):
        if a.get(k) != b.get(k):
            out.append("%s: %s %s, %s %s" % (k, names[0], fmt(a.get(k)), names[1], fmt(b.get(k))))
    ca, cb = a.get("config", {}), b.get("config", {})
    for k in CONFIG_FIELDS:
        if ca.get(k) != cb.get(k):
            out.append("config.%s:\n    %-8s %s\n    %-8s %s" % (k, names[0], fmt(ca.get(k)),
                                                             names[1], fmt(cb.get(k))))
    ha = ["%s%s" % ("(empty) " if h.get("empty_layer") else "", h["created_by"] or
                    "comment: " + h.get("comment", "")) for h in a.get("history", [])]
    hb = ["%s%s" % ("(empty) " if h.get("empty_layer") else "", h["created_by"] or
                    "comment: " + h.get("comment", "")) for h in b.get("history", [])]
    if ha != hb:
        out.append("history:")
        for line in difflib.unified_diff(ha, hb, names[0], names[1], lineterm="", n=1):
            out.append("    " + line)
    la, lb = a.get("layers", []), b.get("layers", [])
    if len(la) != len(lb):
        out.append("layers: %s has %d, %s has %d" % (names[0], len(la), names[1], len(lb)))
    sm = difflib.SequenceMatcher(a=[x["made_by"] for x in la], b=[x["made_by"] for x in lb],
                                 autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        pairs = list(zip(range(i1, i2), range(j1, j2))) if op in ("equal", "replace") else []
        for i, j in pairs:
            sub = []
            diff_entries(la[i], lb[j], names, sub)
            if sub or la[i]["made_by"] != lb[j]["made_by"]:
                title = la[i]["made_by"] if la[i]["made_by"] == lb[j]["made_by"] else \
                    "%s / %s" % (la[i]["made_by"], lb[j]["made_by"])
                out.append("layer %d/%d (%s):" % (i + 1, j + 1, title))
                out.extend(sub)
        if op in ("delete", "replace"):
            for i in range(i1 + len(pairs), i2):
                out.append("layer %d only in %s (%s): %d entries" % (
                    i + 1, names[0], la[i]["made_by"], la[i]["count"]))
        if op in ("insert", "replace"):
            for j in range(j1 + len(pairs), j2):
                out.append("layer %d only in %s (%s): %d entries" % (
                    j + 1, names[1], lb[j]["made_by"], lb[j]["count"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("summary", "diff"))
    ap.add_argument("images", nargs="+")
    ap.add_argument("--labels", default="A,B")
    ap.add_argument("--ctx-mtime", type=int, default=CTX_MTIME)
    ap.add_argument("--epoch", type=int)
    ap.add_argument("--tolerate", action="store_true",
                    help="forgive the known Docker 20.10 / deliberate differences (tolerate())")
    args = ap.parse_args()
    if args.cmd == "summary":
        if len(args.images) != 1:
            ap.error("summary takes one image")
        json.dump(load(args.images[0], args.ctx_mtime, args.epoch), sys.stdout, indent=1,
                  sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if len(args.images) != 2:
        ap.error("diff takes two images")
    a, b = (load(p, args.ctx_mtime, args.epoch) for p in args.images)
    if args.tolerate:
        a, b = tolerate(a), tolerate(b)
    lines = diff(a, b, tuple(args.labels.split(",", 1)))
    print("\n".join(lines) if lines else "identical")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
