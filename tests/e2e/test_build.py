"""End-to-end tests of `slipway build` on a busybox base (FROM scratch + Debian's busybox-static,
so no base image is needed): step-by-step cache behaviour, image contents (files, modes, owners,
whiteouts), layer boundaries, config fields, multi-stage builds and --target, reproducible
digests, and the error messages for bad input."""
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time

import pytest

BUSYBOX = "/bin/busybox"
BASE = """FROM scratch AS bb
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def make_ctx(path, dockerfile, files=None):
    """A build context: busybox, the Dockerfile and {relpath: bytes|str}."""
    os.makedirs(path, exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(path, "busybox"))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    for rel, data in (files or {}).items():
        p = os.path.join(path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return str(path)


STEP_RE = re.compile(r"^#(\d+) (\[[^\]]*\]) (.*)$")
STATUS_RE = re.compile(r"^#(\d+) (CACHED|DONE [0-9.]+s|ERROR: .*)$")


def parse_steps(out):
    """{"[stage i/n] INSTRUCTION": "CACHED" | "DONE" | "ERROR"} from --progress=plain output."""
    names, status = {}, {}
    for line in out.splitlines():
        m = STEP_RE.match(line)
        if m:
            names[m.group(1)] = m.group(2) + " " + m.group(3)
            continue
        m = STATUS_RE.match(line)
        if m:
            status[m.group(1)] = m.group(2).split()[0].rstrip(":")
    return {names[n]: status.get(n) for n in names}


def ran(steps):
    return sorted(k for k, v in steps.items() if v == "DONE" and "FROM" not in k)


def cached(steps):
    return sorted(k for k, v in steps.items() if v == "CACHED")


class Builder:
    def __init__(self, slipway, tmp_path):
        self.s = slipway
        self.tmp = tmp_path
        self.n = 0

    def build(self, ctx, *args, check=True, env=None):
        p = self.s("build", "--progress=plain", *args, ctx, check=False, env=env)
        out = p.stdout + p.stderr
        if check:
            assert p.returncode == 0, "build failed:\n" + out
        return p.returncode, out, parse_steps(out)

    def image_id(self, out):
        m = re.search(r"image (sha256:[0-9a-f]{64})", out)
        assert m, out
        return m.group(1)

    def export(self, ctx, *args):
        """Build and export as an OCI layout; returns the Image."""
        self.n += 1
        dest = str(self.tmp / ("oci%d" % self.n))
        rc, out, steps = self.build(ctx, "-o", "type=oci,dest=" + dest, *args)
        return Image(dest), out, steps


class Entry:
    """A tar member and its bytes."""

    def __init__(self, ti, data):
        self.name, self.mode, self.uid, self.gid = ti.name, ti.mode, ti.uid, ti.gid
        self.linkname, self.mtime, self.data = ti.linkname, ti.mtime, data
        self.issym, self.isdir = ti.issym, ti.isdir


class Image:
    """An OCI layout written by -o type=oci."""

    def __init__(self, path):
        self.path = path
        index = self._json("index.json")
        self.manifest = self._blob_json(index["manifests"][0]["digest"])
        self.config = self._blob_json(self.manifest["config"]["digest"])

    def _json(self, rel):
        with open(os.path.join(self.path, rel)) as f:
            return json.load(f)

    def _blob(self, digest):
        with open(os.path.join(self.path, "blobs", *digest.split(":")), "rb") as f:
            return f.read()

    def _blob_json(self, digest):
        return json.loads(self._blob(digest))

    def layers(self):
        """[[TarInfo + .data], ...] per layer."""
        out = []
        for l in self.manifest["layers"]:
            raw = self._blob(l["digest"])
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            entries = []
            with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
                for ti in tf:
                    entries.append(Entry(ti, tf.extractfile(ti).read() if ti.isfile() else None))
            out.append(entries)
        return out

    def files(self):
        """The merged filesystem: {path: TarInfo} (whiteouts applied)."""
        fs = {}
        for entries in self.layers():
            for ti in entries:
                name = ti.name.rstrip("/")
                base = os.path.basename(name)
                if base.startswith(".wh."):
                    gone = os.path.join(os.path.dirname(name), base[4:])
                    for k in list(fs):
                        if k == gone or k.startswith(gone + "/"):
                            del fs[k]
                    continue
                fs[name] = ti
        return fs

    @property
    def cfg(self):
        return self.config.get("config", {})


@pytest.fixture
def b(slipway, tmp_path):
    return Builder(slipway, tmp_path)


# ---- cache behaviour ----------------------------------------------------------------------


APP_DOCKERFILE = BASE + """
FROM bb
WORKDIR /app
COPY requirements.txt .
RUN echo installing $(cat requirements.txt) && cp requirements.txt /installed
COPY . .
RUN cat main.py > /built
CMD ["cat", "/built"]
"""


def test_cache_step_by_step(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", APP_DOCKERFILE,
                   {"requirements.txt": "django\n", "main.py": "print(1)\n", "lib/util.py": "x=1\n"})
    _, out1, s1 = b.build(ctx)
    assert "[stage-1 5/5] RUN cat main.py > /built" in ran(s1)
    id1 = b.image_id(out1)

    # no-op rebuild: everything cached, same image
    _, out2, s2 = b.build(ctx)
    assert ran(s2) == [], out2
    assert b.image_id(out2) == id1

    # mtime-only change: still cached (mtimes are not in keys)
    os.utime(os.path.join(ctx, "main.py"), (1, 1))
    _, out3, s3 = b.build(ctx)
    assert ran(s3) == [], out3

    # edit one file: only the steps from `COPY . .` on run again
    with open(os.path.join(ctx, "main.py"), "w") as f:
        f.write("print(2)\n")
    _, out4, s4 = b.build(ctx)
    assert ran(s4) == ["[stage-1 4/5] COPY . .", "[stage-1 5/5] RUN cat main.py > /built"], out4
    assert "[stage-1 2/5] COPY requirements.txt ." in cached(s4)
    assert any("echo installing" in k for k in cached(s4))
    assert b.image_id(out4) != id1

    # a mode change is a content change
    os.chmod(os.path.join(ctx, "lib/util.py"), 0o600)
    _, out5, s5 = b.build(ctx)
    assert "[stage-1 4/5] COPY . ." in ran(s5)
    assert "[stage-1 2/5] COPY requirements.txt ." in cached(s5)

    # the dependency file changes: its install runs again
    with open(os.path.join(ctx, "requirements.txt"), "w") as f:
        f.write("django\nflask\n")
    _, out6, s6 = b.build(ctx)
    assert any("echo installing" in k for k in ran(s6)), out6


SPECULATE_DOCKERFILE = BASE + """
FROM bb AS dep
COPY a.txt /a.txt
RUN sleep 2 && cut -c1 /a.txt > /out

FROM bb AS app
COPY --from=dep /out /out
COPY b.txt /b.txt
RUN cat /out /b.txt > /res
"""


def done_line(out, instruction):
    """Index in out of the `#N DONE` line of the step whose name contains instruction."""
    ids = {name: n for n, name in re.findall(r"^#(\d+) (\[[^\]]*\] .*)$", out, re.M)}
    n = next((n for name, n in ids.items() if instruction in name), None)
    assert n, "no step %r in:\n%s" % (instruction, out)
    for i, line in enumerate(out.splitlines()):
        if re.match(r"#%s DONE" % n, line):
            return i
    raise AssertionError("step #%s (%s) never DONE in:\n%s" % (n, instruction, out))


def test_copy_from_speculation(b, tmp_path):
    """While the stage a COPY --from copies from still runs, the copying stage goes on with the
    content that stage gave last time (the article's version bump: egg_info re-runs, its
    requirements do not change). Checked when the source ends: a wrong guess re-runs the steps
    after the COPY, and the image is always the one the real content gives."""
    ctx = make_ctx(tmp_path / "ctx", SPECULATE_DOCKERFILE, {"a.txt": "xy\n", "b.txt": "1\n"})
    img, out, _ = b.export(ctx)
    assert img.files()["res"].data == b"x\n1\n", out

    # No guess before the source has given the same content twice in a row: the first
    # rebuild (nothing changed) confirms it.
    rc, out, steps = b.build(ctx)
    assert ran(steps) == [], out

    # The source re-runs (2 s) and gives the same /out: app's RUN runs meanwhile.
    make_ctx(ctx, SPECULATE_DOCKERFILE, {"a.txt": "xz\n", "b.txt": "2\n"})
    img, out, steps = b.export(ctx)
    assert img.files()["res"].data == b"x\n2\n", out
    assert done_line(out, "RUN cat") < done_line(out, "RUN sleep 2"), \
        "app did not go on while dep ran:\n" + out
    # Each step shows once: the check pass's cache hits are not printed again.
    assert len(set(re.findall(r"^#(\d+) \[app \d/3\] RUN cat", out, re.M))) == 1, out

    # A wrong guess: /out changes. The result is the real content's, not the guess's.
    make_ctx(ctx, SPECULATE_DOCKERFILE, {"a.txt": "wz\n", "b.txt": "3\n"})
    img, out, _ = b.export(ctx)
    assert img.files()["res"].data == b"w\n3\n", out
    assert img.files()["out"].data == b"w\n", out
    assert "--from=dep gave other content than in the last build" in out, out

    # The wrong guess is not made again until the new content is confirmed: with /out
    # changing at every build, app waits for dep (its RUN ends after dep's).
    make_ctx(ctx, SPECULATE_DOCKERFILE, {"a.txt": "uz\n", "b.txt": "4\n"})
    img, out, _ = b.export(ctx)
    assert img.files()["res"].data == b"u\n4\n", out
    assert done_line(out, "RUN sleep 2") < done_line(out, "RUN cat"), out
    assert "gave other content" not in out, out


def test_copy_from_guess_that_fails_a_run(b, tmp_path):
    """A RUN that fails only on the guessed content does not fail the build: the guess is
    checked, the failed work shown CANCELED, and the steps run on what the source gives."""
    df = SPECULATE_DOCKERFILE.replace("RUN cat /out /b.txt > /res",
                                      'RUN grep -q "$(cat /out)" /b.txt && cat /out /b.txt > /res')
    ctx = make_ctx(tmp_path / "ctx", df, {"a.txt": "xy\n", "b.txt": "x1\n"})
    b.build(ctx)
    b.build(ctx)  # confirms the prediction
    make_ctx(ctx, df, {"a.txt": "wz\n", "b.txt": "w2\n"})
    img, out, _ = b.export(ctx)
    assert img.files()["res"].data == b"w\nw2\n", out
    assert re.search(r"^#\d+ ERROR", out, re.M) and re.search(r"^#\d+ CANCELED", out, re.M), out
    assert "gave other content" in out, out
    # A failure that is real still fails the build, after the check.
    make_ctx(ctx, df, {"a.txt": "wz\n", "b.txt": "nothing\n"})
    rc, out, _ = b.build(ctx, check=False)
    assert rc != 0 and "RUN grep" in out, out


def test_scratch_metadata_before_a_layer_is_cached_too(b, tmp_path):
    """FROM scratch, ARG and ENV before the first layer step: their history entries take that
    layer's time (BuildKit's "first new layer time"), not the build's clock, so a rebuild from
    the cache in a later second gives the same image."""
    ctx = make_ctx(tmp_path / "ctx", "FROM scratch\nARG A=1\nENV B=2\nCOPY busybox /bb\n"
                   "ENV C=3\n")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    _, out1, _ = b.build(ctx, env=env)
    first = b.image_id(out1)
    time.sleep(1.1)  # the next build starts in another second of the clock
    _, out2, s = b.build(ctx, env=env)
    assert ran(s) == [], out2
    assert b.image_id(out2) == first, out2
    img, _, _ = b.export(ctx)
    hist = img.config["history"]
    assert [h["created_by"].split()[0] for h in hist] == ["ARG", "ENV", "COPY", "ENV"], hist
    assert len({h["created"] for h in hist}) == 1, hist  # all the COPY's time


def test_no_cache_runs_everything(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", APP_DOCKERFILE, {"requirements.txt": "a\n", "main.py": "m\n"})
    b.build(ctx)
    _, out, s = b.build(ctx, "--no-cache")
    assert cached(s) == [], out
    assert len(ran(s)) == 7, out


def test_dockerignore_keeps_files_out_and_cache_warm(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", APP_DOCKERFILE + 'RUN ls -a /app > /listing\n',
                   {"requirements.txt": "a\n", "main.py": "m\n", ".dockerignore": "*.log\nbuild\n!build/keep\n",
                    "debug.log": "x", "build/out.o": "o", "build/keep": "k"})
    img, out, _ = b.export(ctx)
    files = img.files()
    assert "app/main.py" in files
    assert "app/debug.log" not in files
    assert "app/build/out.o" not in files
    assert "app/build/keep" in files
    with open(os.path.join(ctx, "debug.log"), "w") as f:
        f.write("changed")
    _, out2, s2 = b.build(ctx)
    assert ran(s2) == [], out2


def test_copy_from_keys_on_content(b, tmp_path):
    """An upstream stage that runs again with the same result does not invalidate the COPY."""
    df = BASE + """
FROM bb AS gen
ARG STAMP
RUN mkdir /out && echo constant > /out/data && echo "stamp $STAMP"
FROM bb
COPY --from=gen /out /data
RUN cat /data/data > /copied
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    b.build(ctx, "--build-arg", "STAMP=1")
    _, out, s = b.build(ctx, "--build-arg", "STAMP=2")
    assert any("echo constant" in k for k in ran(s)), out  # upstream ran again...
    assert "[stage-2 1/2] COPY --from=gen /out /data" in cached(s), out  # ...same content
    assert "[stage-2 2/2] RUN cat /data/data > /copied" in cached(s), out


# ---- image contents -----------------------------------------------------------------------


def test_image_files_modes_owners_whiteouts(b, tmp_path):
    df = BASE + """
FROM bb
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group && echo 'staff:x:50:' >> /etc/group
COPY --chown=app:staff --chmod=640 secret.txt /srv/
COPY --chown=1234 tool.sh /usr/local/bin/tool
COPY dir /opt/dir/
RUN rm /bin/vi && mkdir -p /var/empty
RUN true
"""
    ctx = make_ctx(tmp_path / "ctx", df, {"secret.txt": "s3cr3t", "tool.sh": "#!/bin/sh\necho hi\n",
                                           "dir/a.txt": "a", "dir/sub/b.txt": "b"})
    os.chmod(os.path.join(ctx, "tool.sh"), 0o755)
    os.symlink("a.txt", os.path.join(ctx, "dir/link"))
    img, out, _ = b.export(ctx)
    files = img.files()
    s = files["srv/secret.txt"]
    assert (s.uid, s.gid, s.mode & 0o7777) == (1000, 50, 0o640)
    assert s.data == b"s3cr3t"
    t = files["usr/local/bin/tool"]
    assert (t.uid, t.gid, t.mode & 0o777) == (1234, 1234, 0o755)
    assert files["opt/dir/sub/b.txt"].data == b"b"
    assert files["opt/dir/link"].issym() and files["opt/dir/link"].linkname == "a.txt"
    assert "opt/dir/dir" not in files  # directory *contents* are copied
    assert "bin/vi" not in files and "bin/ls" in files
    # the RUN rm layer holds a whiteout, not a copy of /bin
    layers = img.layers()
    rm_layer = [ti.name for ti in layers[-1]]
    assert "bin/.wh.vi" in rm_layer
    assert not any(n.startswith("bin/") and ".wh." not in n for n in rm_layer if n != "bin")
    # `RUN true` changes nothing: no layer, an empty_layer history entry
    hist = img.config["history"]
    assert hist[-1]["created_by"].startswith("RUN /bin/sh -c true")
    assert hist[-1].get("empty_layer") is True
    assert len(img.manifest["layers"]) == len(img.config["rootfs"]["diff_ids"])
    assert len(img.manifest["layers"]) == sum(1 for h in hist if not h.get("empty_layer"))


def test_config_fields(b, tmp_path):
    df = BASE + """
FROM bb
ARG VERSION=1.0
ENV APP_HOME=/srv/app PATH=/opt/bin:$PATH
LABEL org.example.version=$VERSION maintainer="x y"
WORKDIR $APP_HOME
USER nobody
EXPOSE 80 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh"]
CMD echo hello
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, steps = b.export(ctx, "--label", "extra=1")
    c = img.cfg
    assert "APP_HOME=/srv/app" in c["Env"]
    assert "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in c["Env"]
    assert c["Labels"] == {"org.example.version": "1.0", "maintainer": "x y", "extra": "1"}
    assert c["WorkingDir"] == "/srv/app"
    assert c["User"] == "nobody"
    assert set(c["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert set(c["Volumes"]) == {"/data"}
    assert c["StopSignal"] == "SIGTERM"
    assert c["Healthcheck"]["Test"] == ["CMD-SHELL", "wget -q localhost || exit 1"]
    assert c["Healthcheck"]["Interval"] == 30 * 10**9 and c["Healthcheck"]["Retries"] == 3
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Entrypoint"] == ["/bin/sh"]
    assert c["Cmd"] == ["/bin/sh", "-ec", "echo hello"]
    # WORKDIR created the directory, owned by the USER in effect (root here: USER comes later)
    assert "srv/app" in img.files()
    hist = [h["created_by"] for h in img.config["history"]]
    assert "WORKDIR /srv/app" in hist
    assert any(h.startswith("ENV APP_HOME=/srv/app") for h in hist)
    assert img.config["architecture"] and img.config["os"] == "linux"


def test_arg_env_scoping(b, tmp_path):
    df = """ARG BASE=bb
ARG GLOBAL=g
""" + BASE + """
FROM $BASE AS s1
RUN echo "global=[$GLOBAL]" > /g1
ARG GLOBAL
RUN echo "global=[$GLOBAL]" > /g2
ARG OPT=default
ENV OPT=fromenv
RUN echo "opt=[$OPT]" > /o
ARG TARGETARCH
RUN echo "arch=[$TARGETARCH]" > /arch
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, _ = b.export(ctx, "--build-arg", "OPT=given")
    f = img.files()
    assert f["g1"].data == b"global=[]\n"  # global args are not visible until redeclared
    assert f["g2"].data == b"global=[g]\n"
    assert f["o"].data == b"opt=[fromenv]\n"  # ENV wins over ARG
    assert f["arch"].data.startswith(b"arch=[") and f["arch"].data != b"arch=[]\n"
    # build args are not part of the image's env
    assert not any(e.startswith(("OPT=given", "GLOBAL=")) for e in img.cfg["Env"])


def test_heredocs(b, tmp_path):
    df = BASE + """
FROM bb
RUN <<EOF
echo one > /h1
echo two >> /h1
EOF
COPY <<EOT /etc/greeting
hello
EOT
RUN <<EOF
#!/bin/sh
echo script > /h2
EOF
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, _ = b.export(ctx)
    f = img.files()
    assert f["h1"].data == b"one\ntwo\n"
    assert f["etc/greeting"].data == b"hello\n"
    assert f["h2"].data == b"script\n"


def test_run_mounts_cache_and_secret(b, tmp_path):
    df = BASE + """
FROM bb
RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/count; wc -l < /cache/count > /seen'
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /secret-len
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && cat /scratch/t > /tmpfs'
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    secret = tmp_path / "token"
    secret.write_text("top-secret-value")
    img, out, _ = b.export(ctx, "--secret", "id=token,src=%s" % secret)
    f = img.files()
    assert f["seen"].data.strip() == b"1"
    assert f["secret-len"].data.strip() == b"16"
    assert f["tmpfs"].data == b"t\n"
    assert not any(k.startswith(("cache", "scratch", "run/secrets")) for k in f)
    blob = json.dumps(img.config)
    assert "top-secret-value" not in blob
    # the cache directory persists across builds (the step runs again with --no-cache)
    img2, out2, _ = b.export(ctx, "--no-cache", "--secret", "id=token,src=%s" % secret)
    assert img2.files()["seen"].data.strip() == b"2"


# ---- multi-stage ----------------------------------------------------------------------------


MULTI = BASE + """
FROM bb AS broken
RUN exit 7

FROM bb AS builder
RUN mkdir /out && echo built > /out/artifact

FROM bb AS other
RUN echo other > /other

FROM bb
COPY --from=builder /out/artifact /artifact
COPY --from=0 /bin/busybox /bb-copy
"""


def test_multistage_only_needed_stages(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", MULTI)
    img, out, steps = b.export(ctx)
    f = img.files()
    assert f["artifact"].data == b"built\n"
    assert "bb-copy" in f
    assert "other" not in f
    assert not any("exit 7" in k for k in steps), out  # not needed: never run
    assert not any("echo other" in k for k in steps), out


def test_target_stage(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", MULTI)
    img, out, steps = b.export(ctx, "--target", "OTHER")  # stage names are case-insensitive
    f = img.files()
    assert f["other"].data == b"other\n"
    assert "artifact" not in f
    assert not any("builder" in k for k in steps), out
    rc, out, _ = b.build(ctx, "--target", "nosuch", check=False)
    assert rc == 2 and "nosuch" in out and "builder" in out


def test_reproducible_with_source_date_epoch(slipway_bin, tmp_path):
    from conftest import SlipwayRunner
    df = BASE + """
FROM bb
COPY . /src
RUN echo built > /out && touch /stamp
"""
    ctx = make_ctx(tmp_path / "ctx", df, {"a.txt": "a"})
    ids = []
    for i in range(2):
        s = SlipwayRunner(slipway_bin, tmp_path / ("root%d" % i))
        p = s("build", "-q", ctx, env={"SOURCE_DATE_EPOCH": "1700000000"})
        ids.append(p.stdout.strip().splitlines()[-1])
        os.utime(os.path.join(ctx, "a.txt"))  # a newer mtime must not matter either
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")


def test_export_tar(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo hi > /hi && rm /bin/ls\n")
    dest = tmp_path / "fs.tar"
    b.build(ctx, "-o", "type=tar,dest=%s" % dest)
    with tarfile.open(dest) as tf:
        names = {n.rstrip("/") for n in tf.getnames()}
        assert tf.extractfile("hi").read() == b"hi\n"
    assert "bin/busybox" in names and "bin/ls" not in names
    assert not any(".wh." in n for n in names)


def test_export_local_and_stdout(b, slipway, tmp_path):
    """buildx's -o DIR / type=local writes the image's files into DIR, keeping what DIR held
    (an image whiteout deletes nothing of DIR's); -o - is the filesystem tar on stdout, and -q
    then prints no image ID into it."""
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo hi > /hi && rm /bin/ls\n")
    for spec in ("DIR", "type=local,dest=DIR"):
        out = tmp_path / ("out-%d" % len(spec))
        (out / "bin").mkdir(parents=True)
        (out / "bin" / "ls").write_text("mine\n")  # the image deletes /bin/ls: stays here
        (out / "mine").write_text("kept\n")
        b.build(ctx, "-o", spec.replace("DIR", str(out)))
        assert (out / "hi").read_text() == "hi\n"
        assert (out / "bin" / "busybox").stat().st_size > 0
        assert (out / "bin" / "ls").read_text() == "mine\n"
        assert (out / "mine").read_text() == "kept\n"
        assert not any(".wh." in n for _, _, fs in os.walk(out) for n in fs)
    p = subprocess.run([slipway.binary, "--root", slipway.root, "build", "-q", "-o", "-", ctx],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert tf.extractfile("hi").read() == b"hi\n"
    assert b"sha256:" not in p.stdout[-2048:]
    assert os.listdir(os.path.join(slipway.root, "tmp")) == []


# ---- bad input -------------------------------------------------------------------------------


def err_build(b, tmp_path, df, files=None, *args):
    ctx = make_ctx(tmp_path / "ctx", df, files)
    rc, out, steps = b.build(ctx, *args, check=False)
    assert rc != 0, out
    return rc, out


def test_error_missing_file(b, tmp_path):
    rc, out = err_build(b, tmp_path, BASE + "FROM bb\nCOPY nothere.txt /x\n")
    assert "nothere.txt" in out and "Dockerfile:5" in out


def test_error_copy_outside_context(b, tmp_path):
    rc, out = err_build(b, tmp_path, BASE + "FROM bb\nCOPY ../x /x\n")
    assert "outside the build context" in out and "Dockerfile:5" in out
    (tmp_path / "secret").write_text("s")
    ctx = make_ctx(tmp_path / "ctx2", BASE + "FROM bb\nCOPY link /x\n")
    os.symlink(str(tmp_path / "secret"), os.path.join(ctx, "link"))
    rc, out, _ = b.build(ctx, check=False)
    assert rc != 0 and "outside the build context" in out


def test_error_bad_tag_before_any_step(b, tmp_path):
    """An invalid -t name is refused up front (exit 2), as docker build does: no step runs."""
    rc, out = err_build(b, tmp_path, BASE + "FROM bb\nRUN echo ran > /tmp/x\n", None,
                        "-t", "Bad:1")
    assert rc == 2, out
    assert "-t/--tag" in out and "Bad:1" in out and "lowercase" in out, out
    assert "RUN echo ran" not in out and "steps run" not in out, out


def test_relative_root(slipway_bin, tmp_path):
    """`--root store` (relative) works for a build with RUN steps and lands in ./store: the
    sandbox's overlay options and mounts need absolute paths, so the CLI resolves it first."""
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo ran > /ran\n")
    p = subprocess.run([slipway_bin, "--root", "store", "build", "--progress=plain", "-t", "rel:1",
                        "ctx"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout
    assert os.path.isdir(tmp_path / "store" / "snapshots"), os.listdir(tmp_path)
    p = subprocess.run([slipway_bin, "--root", "./store", "images"], cwd=tmp_path,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert p.returncode == 0 and "rel" in p.stdout, p.stdout


def test_error_unknown_stage_and_instruction(b, tmp_path):
    rc, out = err_build(b, tmp_path, BASE + "FROM bb AS first\nCOPY --from=later /x /x\n"
                        "FROM bb AS later\nFROM first\n")
    assert rc == 2 and "later" in out and "Dockerfile:5" in out
    rc, out = err_build(b, tmp_path / "n", BASE + "FROM bb\nCOPY --from=nosuchstage /x /x\n")
    assert "nosuchstage" in out and "Dockerfile:5" in out
    rc, out = err_build(b, tmp_path / "u", BASE + "FROM bb\nFROBNICATE x\n")
    assert rc == 2 and "unknown instruction" in out.lower() and ":5" in out


def test_error_failing_run(b, tmp_path):
    rc, out = err_build(b, tmp_path, BASE + "FROM bb\nRUN echo before-fail && exit 3\nRUN echo never\n")
    assert rc == 1
    assert "exit code: 3" in out and "Dockerfile:5" in out
    assert "before-fail" in out.split("error:")[-1]  # the tail of its output in the message
    assert "echo never" not in out
    # nothing was recorded: fixing nothing and building again runs the step again
    rc2, out2, steps = b.build(make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo before-fail && exit 3\n"),
                               check=False)
    assert rc2 == 1 and any("exit 3" in k and v == "ERROR" for k, v in steps.items()), out2


def test_copy_flags_add_tar_onbuild(b, tmp_path):
    df = BASE + """
FROM bb AS base
ONBUILD RUN echo triggered > /onbuild
FROM base
COPY --parents src/./a/*.txt /p/
COPY --exclude=*.log --exclude=sub/skip logs /l/
COPY --link link.txt /linked/
ADD archive.tar.gz /unpacked/
ADD plain.txt /added.txt
RUN --network=none sh -c 'cat /sys/class/net/*/operstate 2>/dev/null | sort -u > /net; ls /sys/class/net > /ifaces'
RUN --mount=type=bind,from=base,source=/bin,target=/basebin ls /basebin/busybox > /bound
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
USER app
WORKDIR /home/app/work
"""
    files = {"src/a/one.txt": "1", "src/a/two.txt": "2", "src/a/no.md": "n", "logs/keep.txt": "k",
             "logs/x.log": "x", "logs/sub/skip": "s", "logs/sub/ok": "o", "link.txt": "L", "plain.txt": "p"}
    ctx = make_ctx(tmp_path / "ctx", df, files)
    with tarfile.open(os.path.join(ctx, "archive.tar.gz"), "w:gz") as tf:
        data = b"inside the tar\n"
        ti = tarfile.TarInfo("dir/file.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    img, out, steps = b.export(ctx)
    f = img.files()
    assert f["onbuild"].data == b"triggered\n"  # the base stage's ONBUILD ran after FROM base
    assert f["p/a/one.txt"].data == b"1" and "p/a/two.txt" in f and "p/a/no.md" not in f
    assert "p/src" not in f  # --parents keeps the path after the /./ pivot
    assert "l/keep.txt" in f and "l/sub/ok" in f
    assert "l/x.log" not in f and "l/sub/skip" not in f
    assert f["linked/link.txt"].data == b"L"
    assert f["unpacked/dir/file.txt"].data == b"inside the tar\n"
    assert f["added.txt"].data == b"p"
    assert f["ifaces"].data.split() == [b"lo"]  # --network=none: only loopback
    assert f["bound"].data == b"/basebin/busybox\n"
    assert "basebin" not in f  # mount points never end up in a layer
    w = f["home/app/work"]
    assert w.isdir() and (w.uid, w.gid) == (1000, 1000)  # WORKDIR made as the USER
    assert img.cfg["User"] == "app"
    assert "OnBuild" not in img.cfg  # consumed by the child stage


def test_onbuild_recorded_in_config(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nONBUILD RUN echo hi\nONBUILD COPY . /src\n")
    img, out, _ = b.export(ctx)
    assert img.cfg["OnBuild"] == ["RUN echo hi", "COPY . /src"]


def test_export_docker_archive_quiet_iidfile(slipway, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo x > /x\n")
    slipway("build", "-q", "-t", "first:1", ctx)
    dest, iid = tmp_path / "img.tar", tmp_path / "iid"
    p = slipway("build", "-q", "-t", "second:2", "-o", "type=docker,dest=%s" % dest,
                "--iidfile", str(iid), ctx)
    image_id = p.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id), p.stdout
    assert iid.read_text() == image_id
    with tarfile.open(dest) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["second:2"]  # the -t of this build, not an older name
    assert manifest[0]["Config"].endswith(image_id.split(":")[1])


def test_ctrl_c_mid_step(slipway, tmp_path):
    import signal
    import time
    # A sleep of this process's own length, so that a test run beside this one (its own
    # sleeping step) cannot make the pgrep below fail.
    nap = "sleep %d" % (100000 + os.getpid())
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo started && %s && echo never\n" % nap)
    root = slipway.root
    p = subprocess.Popen([slipway.binary, "--root", root, "build", "--progress=plain", "--no-cache", ctx],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    deadline = time.time() + 30
    started = re.compile(r"^#\d+ [0-9.]+ started$", re.M)  # the step's output, not its name
    while not started.search(out) and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    assert started.search(out), out
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=20)
    assert p.returncode == 130  # 128 + SIGINT, as a shell reports an interrupted command
    assert time.time() - t0 < 10  # the long step was killed, not waited for
    assert "interrupted" in rest
    assert os.listdir(os.path.join(root, "tmp")) == []  # nothing left half-made
    ps = subprocess.run(["pgrep", "-f", nap], stdout=subprocess.PIPE, text=True)
    assert ps.stdout.strip() == ""  # no process of the step survives


def test_run_layer_hashed_beside_next_step(b, slipway, tmp_path):
    """A RUN layer of a stage outside the final image is hashed while the next RUN runs over
    its upper dir (solve-run.c's pending commit): the next steps see it, the image and the
    cache are the same as a step-by-step commit, a later failure still records it, and no
    temp dir is left behind."""
    gen = (BASE + "FROM bb AS gen\n"
           "RUN mkdir /data && for i in $(seq 1 300); do echo file $i > /data/f$i; done\n"
           "RUN ls /data | wc -l > /count && cat /data/f7 > /seven\n"
           "RUN rm /data/f1\n")
    df = gen + "FROM bb\nCOPY --from=gen /data /data\nCOPY --from=gen /count /seven /\n"
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, steps = b.export(ctx)
    files = img.files()
    assert "data/f2" in files and "data/f300" in files and "data/f1" not in files, out
    blobs = {e.name: e.data for layer in img.layers() for e in layer if e.data is not None}
    assert blobs["count"].strip() == b"300" and blobs["seven"] == b"file 7\n"
    tmp = os.path.join(slipway.root, "tmp")
    assert os.listdir(tmp) == []
    _, out2, steps2 = b.build(ctx)
    assert ran(steps2) == [], out2
    assert b.image_id(out2) == b.image_id(out)

    # The step after a pending one fails: the pending step is still recorded.
    fail = BASE + "FROM bb AS gen\nRUN echo one > /one\nRUN exit 4\nFROM bb\nCOPY --from=gen /one /\n"
    ctx2 = make_ctx(tmp_path / "ctx2", fail)
    rc, out3, _ = b.build(ctx2, check=False)
    assert rc == 1 and "exit code: 4" in out3, out3
    fixed = fail.replace("RUN exit 4", "RUN cat /one > /two")
    with open(os.path.join(ctx2, "Dockerfile"), "w") as f:
        f.write(fixed)
    _, out4, steps4 = b.build(ctx2)
    assert "[gen 1/2] RUN echo one > /one" in cached(steps4), out4
    assert "[gen 2/2] RUN cat /one > /two" in ran(steps4), out4
    assert os.listdir(tmp) == []


def test_identical_steps_in_parallel_stages_run_once(b, tmp_path):
    """Two stages with the same step (same key) built at the same time: it runs once and both
    stages get its layer, so the image is stable: a no-op rebuild gives the same image (with
    two runs the cache kept one layer and the image used the other)."""
    step = 'RUN ["/bin/busybox", "sh", "-c", "cat /proc/sys/kernel/random/uuid > /stamp; sleep 1"]\n'
    ctx = make_ctx(
        tmp_path / "ctx",
        BASE + "FROM bb AS a\n" + step + "FROM bb AS b\n" + step
        + "FROM bb\nCOPY --from=a /stamp /a\nCOPY --from=b /stamp /b\n",
    )
    img, out, steps = b.export(ctx)
    runs = [k for k in ran(steps) if "random/uuid" in k]
    assert len(runs) == 1, steps
    assert len([k for k in cached(steps) if "random/uuid" in k]) == 1, steps
    fs = {e.name: e.data for layer in img.layers() for e in layer}
    assert fs["a"] == fs["b"] and len(fs["a"].strip()) == 36, fs
    _, out2, steps2 = b.build(ctx)
    assert ran(steps2) == [], steps2
    _, out1, _ = b.build(ctx)
    assert b.image_id(out1) == b.image_id(out2)
    assert b.image_id(out) == b.image_id(out2)


def test_tty_progress_keeps_status_of_long_lines(slipway, tmp_path):
    """--progress=tty on a 60-column terminal: a step line longer than the screen is cut in its
    command, never in its status and time, so a failed step still shows ERROR."""
    import fcntl
    import select
    import struct
    import termios
    import time
    long_word = "x" * 150
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nRUN echo %s && exit 3\n" % long_word)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 60, 0, 0))
    p = subprocess.Popen([slipway.binary, "--root", slipway.root, "build", "--progress=tty", ctx],
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    assert p.wait(timeout=30) == 1
    text = out.decode(errors="replace")
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", x).rstrip("\r") for x in text.split("\n")]
    errs = [x for x in lines if re.search(r"RUN echo x+\.\.\. ERROR \d+\.\ds$", x)]
    assert errs, "\n".join(lines[-20:])
    assert all(len(x) <= 59 for x in errs), errs
