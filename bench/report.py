#!/usr/bin/env python3
"""Write BENCHMARKS.md from one benchmark run's raw results (bench/results/<run>/raw.csv and
meta.json, as bench/run.sh saves them): medians over rounds, ratios against each peer, the chroot
limit for the rebuilds, memory, sizes, and how to reproduce.

Usage: bench/report.py [RESULTS_DIR] [OUT.md]   (default: the newest run, BENCHMARKS.md)
"""
import csv
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

NAMES = {"slipway": "slipway", "recipe": "slipway recipe", "buildkit": "BuildKit", "buildah": "Buildah"}
PEERS = ["buildkit", "buildah"]
SCENARIOS = [
    ("cold", "cold build, empty cache", "≤ 0.95 × BuildKit"),
    ("noop", "no-op rebuild", "≤ 0.2 × BuildKit"),
    ("edit", "rebuild after a one-line `.py` edit", "≤ 0.8 × BuildKit; ≤ 1.05 × chroot"),
    ("bump", "rebuild after a `setup.py` version bump", "≤ 0.8 × BuildKit; ≤ 1.05 × chroot"),
    ("save", "export to a docker-archive file", ""),
    ("import", "import the base rootfs", "≤ 0.5 × `docker import`"),
    ("push", "push to an empty local registry", "≤ 0.3 × `skopeo copy`"),
]
TOOLS = {
    "import": {"slipway": "`slipway import`", "recipe": "`slipway import`", "buildkit": "`docker import`",
               "buildah": "`buildah from scratch` + `add` + `commit`"},
    "save": {"slipway": "`slipway save`", "recipe": "`slipway save`", "buildkit": "`docker save`",
             "buildah": "`buildah push docker-archive:`"},
    "push": {"slipway": "`slipway push`", "recipe": "`slipway push`", "buildkit": "`docker push`",
             "buildah": "`skopeo copy` from Buildah's store"},
}


def newest_run():
    root = os.path.join(HERE, "results")
    runs = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "raw.csv")))
    if not runs:
        sys.exit("report: no bench/results/*/raw.csv: run bench/run.sh first")
    return os.path.join(root, runs[-1])


def platforms_section():
    """The newest bench/platforms-bench.sh result (bench/results/platforms-*.md), as a section."""
    root = os.path.join(HERE, "results")
    runs = sorted(f for f in os.listdir(root) if f.startswith("platforms-") and f.endswith(".md"))
    if not runs:
        return []
    rel = os.path.join("bench", "results", runs[-1])
    return ["## Multi-platform build (`build --platform linux/amd64,linux/arm64`)", "",
            f"From [`{rel}`]({rel}), not from the run above:", "",
            *open(os.path.join(root, runs[-1])).read().rstrip("\n").split("\n"), ""]


def load(res):
    rows = list(csv.DictReader(open(os.path.join(res, "raw.csv"))))
    meta = json.load(open(os.path.join(res, "meta.json")))
    return rows, meta


def median(rows, scen, builder, field="seconds"):
    """Median of FIELD over the successful rows; None if there are none; 'fail' if all failed."""
    sel = [r for r in rows if r["scenario"] == scen and r["builder"] == builder]
    vals = [float(r[field]) for r in sel if r["status"] == "ok" and r.get(field) not in ("", None)]
    if vals:
        return statistics.median(vals), len(vals)
    return ("fail", 0) if sel else (None, 0)


def fmt_s(v):
    if v is None:
        return "—"
    if v == "fail":
        return "failed"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def ratio(a, b):
    if not isinstance(a, float) or not isinstance(b, float) or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def mb(kb):
    return "—" if not isinstance(kb, float) else f"{kb / 1024:.0f}"


def time_table(rows, builders):
    has_sw = "slipway" in builders
    head = ["scenario"] + [NAMES[b] for b in builders] + ["chroot limit"]
    if has_sw:
        head += [f"slipway / {NAMES[p]}" for p in PEERS if p in builders] + ["slipway / chroot"]
    has_rc = has_sw and "recipe" in builders
    if has_rc:  # the recipe (no Dockerfile) against slipway on the article's Dockerfile
        head.append("recipe / slipway")
    head.append("target")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scen, label, target in SCENARIOS:
        med = {b: median(rows, scen, b)[0] for b in builders + ["chroot"]}
        cells = [label] + [fmt_s(med[b]) for b in builders] + [fmt_s(med["chroot"])]
        if has_sw:
            cells += [ratio(med["slipway"], med[p]) for p in PEERS if p in builders]
            cells.append(ratio(med["slipway"], med["chroot"]))
        if has_rc:
            cells.append(ratio(med["recipe"], med["slipway"]))
        cells.append(target)
        out.append("| " + " | ".join(cells) + " |")
    return out


def overhead_table(rows, builders):
    out = ["| rebuild | chroot limit (s) | " + " | ".join(
        f"{NAMES[b]} overhead (s)" for b in builders) + " |",
        "|" + "---|" * (2 + len(builders))]
    for scen in ("edit", "bump"):
        lim = median(rows, scen, "chroot")[0]
        cells = [scen, fmt_s(lim)]
        for b in builders:
            v = median(rows, scen, b)[0]
            cells.append(f"{v - lim:+.2f}" if isinstance(v, float) and isinstance(lim, float)
                         else "—")
        out.append("| " + " | ".join(cells) + " |")
    return out


def memory_table(rows, builders):
    out = ["| builder | client's own peak (MB) | daemon's peak (MB) | daemon's growth (MB) "
           "| builder total (MB) | largest process in the client's tree (MB) |",
           "|---|---|---|---|---|---|"]
    for b in builders:
        own = median(rows, "cold", b, "rss_self_kb")[0]
        dpk = median(rows, "cold", b, "daemon_peak_kb")[0] if b == "buildkit" else 0.0
        dgr = median(rows, "cold", b, "daemon_kb")[0] if b == "buildkit" else None
        tree = median(rows, "cold", b, "rss_tree_kb")[0]
        tot = own + dpk if isinstance(own, float) and isinstance(dpk, float) else None
        nod = b != "buildkit"
        out.append(f"| {NAMES[b]} | {mb(own)} | {'no daemon' if nod else mb(dpk)} "
                   f"| {'—' if nod else mb(dgr)} | {mb(tot)} | {mb(tree)} |")
    return out


def size_table(rows, builders):
    out = ["| builder | layers, uncompressed (MB) | pushed, compressed (MB) "
           "| docker-archive file (MB) |", "|---|---|---|---|"]
    for b in builders:
        u = median(rows, "image_bytes", b, "bytes")[0]
        a = median(rows, "archive_bytes", b, "bytes")[0]
        p = median(rows, "pushed_bytes", b, "bytes")[0]
        f = (lambda v: f"{v / 1e6:.1f}" if isinstance(v, float) else "—")
        out.append(f"| {NAMES[b]} | {f(u)} | {f(p)} | {f(a)} |")
    return out


def tools_table(builders):
    out = ["| scenario | " + " | ".join(NAMES[b] for b in builders) + " |",
           "|" + "---|" * (1 + len(builders))]
    for scen, tools in TOOLS.items():
        out.append(f"| {scen} | " + " | ".join(tools[b] for b in builders) + " |")
    return out


def rootless_file(res):
    """The rootless table of this run (RUN/rootless.md, from bench/rootless-bench.sh), else the
    newest one that script saved on its own (bench/results/rootless-*.md); None if none."""
    own = os.path.join(res, "rootless.md")
    if os.path.isfile(own):
        return own
    root = os.path.join(HERE, "results")
    alone = sorted(f for f in os.listdir(root) if f.startswith("rootless-") and f.endswith(".md"))
    return os.path.join(root, alone[-1]) if alone else None


ROOTLESS_TARGETS = {"cold": 1.15, "edit": 1.1, "noop": 1.1}


def rootless_section(res):
    path = rootless_file(res)
    if path is None:
        return ["## Rootless", "", "No rootless run yet: `bench/rootless-bench.sh`.", ""]
    text = open(path).read().strip().splitlines()
    if "Samples (s, in run order):" in text:  # the raw samples stay in the file
        text = text[:text.index("Samples (s, in run order):")]
        while text and not text[-1].strip():
            text.pop()
    ratios = {}
    for line in text:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("cold", "edit", "noop", "images"):
            try:
                ratios[cells[0]] = float(cells[3])
            except ValueError:
                pass
    rel = os.path.relpath(path, REPO)
    note = []
    for k, name in (("cold", "cold build"), ("edit", "`.py` edit rebuild"),
                    ("noop", "no-op rebuild")):
        if k in ratios:
            t = ROOTLESS_TARGETS[k]
            note.append(f"{name} {ratios[k]:.2f}× root (target ≤ {t}×: "
                        f"{'met' if ratios[k] <= t else 'missed'})")
    if "images" in ratios:
        note.append(f"`images` {ratios['images']:.2f}×")
    return [
        "## Rootless (the same slipway as an ordinary user, against root)",
        "",
        "`bench/rootless-bench.sh` (run by `bench/run.sh` after the rounds above, or alone): a",
        "throwaway user with a `/etc/subuid` range and root build the same Dockerfile on the",
        "`python:slim` stand-in in one run, interleaved (who goes first alternates every round),",
        "each with its store on an ext4 of its own made for the run. The Dockerfile (in the",
        "script) has no network steps: a RUN that adds a user, a RUN over the Python stdlib, a",
        "`COPY --chown=1000:1000` of 200 `.py` files and a RUN that compiles them. Rows: cold",
        "build (`--no-cache`), rebuild after a one-line `.py` edit, no-op rebuild, and `images`",
        f"(which runs outside the user namespace). From [`{rel}`]({rel}) (with every sample):",
        "",
        *text,
        "",
        "Rootless: " + "; ".join(note) + "." if note else "",
        "What rootless adds to every command that enters its user namespace is the two setuid",
        "`newuidmap`/`newgidmap` execs that map it (run side by side, a few ms). A build first",
        "tries outside the namespace (README, Rootless): a no-op rebuild, all cache hits, never",
        "maps; a rebuild with a step to run pays that try up to its first miss, then the",
        "mapping. On a shared machine the samples spread widely (the header gives the load",
        "average); the file lists every one.",
        "",
    ]


def main():
    res = sys.argv[1] if len(sys.argv) > 1 else newest_run()
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "BENCHMARKS.md")
    rows, meta = load(res)
    builders = [b for b in ["slipway", "recipe", "buildkit", "buildah"] if b in meta["builders"]]
    rel = os.path.relpath(os.path.abspath(res), REPO)
    rounds = max((int(r["round"]) for r in rows), default=0)
    v = meta.get("versions", {})
    lines = [
        "# Benchmarks",
        "",
        "slipway against the builders a user would pick instead, Docker's BuildKit and Buildah,",
        "on the same machine in one run, on the article's final Dockerfile "
        f"(`{meta['example']}/Dockerfile`).",
        "Generated by `bench/report.py` from the raw results in "
        f"[`{rel}/`]({rel}/) (`raw.csv`, `meta.json`): do not edit by hand.",
        "",
        f"- Run: {meta['date_utc']}, commit `{meta['git']}`, {rounds} round(s) "
        f"({meta.get('reps', 1)} rebuild(s) of each kind per round), "
        f"{meta.get('seconds_total', '?')} s in all; load average "
        f"{' '.join(meta['loadavg_start'])} at the start, "
        f"{' '.join(meta.get('loadavg_end', ['?']))} at the end.",
        f"- Machine: {meta['nproc']} cores ({meta['cpu']}), kernel {meta['kernel']}.",
        f"- Versions: slipway {v.get('slipway')}; {v.get('docker')} (BuildKit built into dockerd); "
        f"{v.get('buildah')} (overlay storage, `--isolation chroot`, `--layers`); "
        f"{v.get('skopeo')}.",
        f"- Base image: the mmdebstrap `python:slim` stand-in "
        f"({meta['base_tar_bytes'] / 1e6:.0f} MB tar, `scripts/base-image.sh`).",
        "",
        "## Time (medians over rounds, seconds; ratio < 1 means slipway is faster)",
        "",
        *time_table(rows, builders),
        "",
        "The chroot limit: the commands the rebuild must re-run (the RUNs after `COPY . .` and in",
        "the stages built from it; plus `egg_info` for the bump), timed straight in a chroot of the",
        "same rootfs with no builder around them (`bench/chroot-baseline.sh`, prepared once up to",
        "the dependency install, then run right after the builders each round). What a builder takes",
        "above it is its own overhead:",
        "",
        *overhead_table(rows, builders),
        "",
        "The tools timed in each scenario:",
        "",
        *tools_table(builders),
        "",
        "## Peak memory of the cold build (medians)",
        "",
        *memory_table(rows, builders),
        "",
        "- *client's own peak*: the client process's VmHWM, read from `/proc/PID/status` every 50 ms while",
        "  it runs (the high-water mark only grows, so at most the last 50 ms are missed).",
        "- *daemon's peak* (BuildKit only): dockerd does the build, so its high-water mark is reset",
        "  before the build (`echo 5 > /proc/PID/clear_refs`) and read after it (VmHWM); its",
        "  *growth* is that peak minus its VmRSS before the build (a Go heap kept from the import",
        "  just before is reused, so the growth understates what a build needs). *Builder total* =",
        "  client's own peak + daemon's peak: the memory the builder holds while it builds.",
        "  RUN steps' processes (apt, pip) are in neither; containerd, idle during builds, is not",
        "  counted.",
        "- *largest process in the client's tree*: GNU `time -v`'s max RSS, which covers the",
        "  children the client waited for: for slipway and Buildah that includes the RUN steps'",
        "  own processes (apt, pip), so it is bounded below by them; not comparable to BuildKit,",
        "  whose RUN steps are children of dockerd.",
        "",
        "## Final image size (medians)",
        "",
        *size_table(rows, builders),
        "",
        "*Layers, uncompressed*: the sum of the layer tars' sizes, unpacked from the exported",
        "docker-archive. *Pushed*: the sum of the layer blobs' sizes in the registry's manifest.",
        "The docker-archive file holds the layers as each tool writes them (`docker save` and",
        "Buildah: plain tars; `slipway save`: the stored compressed blobs).",
        "",
        *platforms_section(),
        *rootless_section(res),
        "## Method",
        "",
        "- Every builder keeps its state in a private scratch directory: a private dockerd",
        "  (`--iptables=false --bridge=none`, its own data-root, exec-root, pidfile and socket,",
        "  builds with `--network host`, Debian's client `/usr/bin/docker`, `DOCKER_BUILDKIT=1`),",
        "  Buildah with its own `--root`/`--runroot`, slipway with its own `--root`.",
        "- Each round starts from empty stores: the import scenario imports the base rootfs into",
        "  each builder, so the cold build that follows has an empty cache.",
        "- Every builder's state (slipway's root, dockerd's data-root, Buildah's root and runroot)",
        "  and the chroot limit's tree live on an ext4 of their own (mkfs.ext4's defaults, with a",
        "  journal; a loop device with direct I/O over a sparse file), made anew for each round.",
        "  This VM's root ext4 has no journal, and without one the inode allocator skips the",
        "  inodes freed in the last minute one by one (6 minutes while their inode table block is",
        "  dirty; `recently_deleted()` in `fs/ext4/ialloc.c`): after `buildah rm` deleted its",
        "  17k-file working container, the next builder's import was 3-7x slower even 62 s later",
        "  (perf: 60% of its cycles there). Separate filesystems keep one builder's deletions out",
        "  of another's times.",
        "- Interleaved: every scenario runs on each builder in turn before the next scenario, and",
        "  the order of the builders rotates every round, so slow spells of a shared machine hit",
        "  all of them. The chroot limit runs right after the builders, with the same edit.",
        "- Scenarios in order: import, cold build, no-op rebuild, one-line `.py` edit (a comment",
        "  appended to the app's `views.py`), `setup.py` version bump, export to a docker-archive",
        "  file, push to a fresh empty `docker-registry` on 127.0.0.1 (one per push, so no",
        "  builder finds another's blobs there).",
        "- Wall time is bash's `$EPOCHREALTIME` around the one timed command.",
        "  A `sync` (untimed) comes before each timed command, so writeback of one builder's",
        "  files does not land in the next one's time.",
        "- Push: slipway stores layers compressed when it builds (that time is in its build), so",
        "  its push only uploads; `docker push` and `skopeo copy` compress while they push.",
        "- Import: `slipway import` stores the base with the build's fast gzip and the cold build",
        "  that follows recompresses it at gzip -6 on an idle-priority thread for the image it",
        "  ships (that CPU time is in the cold build); `docker import` stores it uncompressed and",
        "  compresses at push; Buildah compresses at push too.",
        "- The cold build downloads `build-essential` from Debian's mirror, so it includes",
        "  network time, the same for every builder.",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "make bench                       # as root on Debian 12: installs the peers (bench/deps.sh),",
        "                                 # builds slipway, runs bench/run.sh, rewrites this file",
        "BENCH_ROUNDS=1 make bench        # one quick round",
        "BENCH_REPS=3 make bench          # 3 no-op/edit/bump rebuilds per round (more samples)",
        "BENCH_BUILDERS='buildkit buildah' ./bench/run.sh   # the peers only",
        "bench/rootless-bench.sh 5       # the rootless rows alone (5 rounds), then the line below",
        "./bench/report.py bench/results/RUN   # this file again from saved results",
        "```",
        "",
        "Raw rows: `round,scenario,builder,seconds,status,rss_tree_kb,rss_self_kb,daemon_kb,"
        "daemon_peak_kb,bytes`;",
        "logs of every timed command are in the run's `logs/` while the run's directory is local",
        "(they are not committed).",
        "",
    ]
    with open(dst, "w") as f:
        f.write("\n".join(lines))
    print(f"report: wrote {dst} from {rel}", file=sys.stderr)


if __name__ == "__main__":
    main()
