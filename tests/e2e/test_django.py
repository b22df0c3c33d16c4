"""The article, end to end (issue 5): examples/django built with its four Dockerfiles and run.

What these tests prove, each with an assertion that can fail:
1. all four Dockerfiles build, and each image serves the page;
2. the multi-stage final images hold no source checkout, compiler or build-essential, but the app
   under /usr/local, the collected static files and the compiled .mo (sizes and layer counts of
   every image are printed: run pytest with -s to see them);
3. the article's cache claims, read from `--progress=plain` output (`#N CACHED`);
4. the final image: migrate creates the database then is a no-op, gunicorn answers on loopback,
   static file and German translation, GUNICORN_WORKERS=2, clean stop on SIGTERM.

Needs root, the base image (scripts/base-image.sh, cached) and the loopback wheelhouse
(scripts/wheelhouse.sh). The builds need Debian's apt mirror (the article's build-essential).
"""
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "examples", "django")
DOCKERFILES = {
    "naive": "Dockerfile.naive",
    "requirements": "Dockerfile.requirements",
    "multistage": "Dockerfile.multistage",
    "final": "Dockerfile",
}
BUILD_TIMEOUT = 1800


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60, proc=None, headers=None):
    """GET url until it answers 200; returns the body. Fails early if proc exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"container exited with {proc.returncode} before {url} answered")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
            last = e
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


# --- progress output -------------------------------------------------------------------------


class Step:
    def __init__(self, num, name):
        self.num = num
        self.name = name
        # "[builder 2/5] RUN ...", or "[2/5] RUN ..." in a single-stage build
        m = re.match(r"\[\s*(?:([^\]\s]+)\s+)?(\d+)/(\d+)\s*\]\s*(.*)$", name)
        self.is_instruction = bool(m)
        self.stage = (m.group(1) or "-") if m else ""
        self.index = int(m.group(2)) if m else 0
        self.instruction = " ".join((m.group(4) if m else name).split())
        self.status = None  # "CACHED", "DONE", "ERROR"

    @property
    def cached(self):
        return self.status == "CACHED"

    def __repr__(self):
        return f"#{self.num} {self.name} -> {self.status}"


def parse_plain(output):
    """BuildKit-style plain progress -> [Step]: `#N [stage i/n] INSTR` opens step N, `#N CACHED`
    or `#N DONE 1.2s` or `#N ERROR ...` closes it; other `#N ...` lines are its output."""
    steps = {}
    for line in output.splitlines():
        m = re.match(r"^#(\d+) (.*)$", line.rstrip())
        if not m:
            continue
        num, rest = int(m.group(1)), m.group(2).strip()
        if num not in steps:
            steps[num] = Step(num, rest)
            continue
        word = rest.split(" ", 1)[0].rstrip(":")
        if word in ("CACHED", "DONE", "ERROR", "CANCELED"):
            steps[num].status = word
    return [steps[n] for n in sorted(steps)]


def instruction_steps(steps):
    """Only the Dockerfile instructions, i.e. steps named `[stage i/n] ...`; not the CANCELED
    ones (work done on a COPY --from guess that did not hold, redone in steps of their own)."""
    return [s for s in steps if s.is_instruction and s.status != "CANCELED"]


def filesystem_steps(steps):
    """The steps that make layers (RUN, COPY, ADD): these are CACHED or run."""
    return [s for s in instruction_steps(steps) if s.instruction.split(" ", 1)[0] in ("RUN", "COPY", "ADD")]


def find(steps, *needles, stage=None):
    """The one step whose instruction contains all needles (and is in `stage` if given)."""
    hits = [
        s
        for s in instruction_steps(steps)
        if all(n in s.instruction for n in needles) and (stage is None or s.stage == stage)
    ]
    assert len(hits) == 1, f"expected one step with {needles} in stage {stage}, got {hits}"
    return hits[0]


def show(title, steps):
    print(f"\n--- {title}")
    for s in instruction_steps(steps):
        print(f"  {'CACHED' if s.cached else s.status or '?':6} [{s.stage}] {s.instruction[:90]}")


# --- images ----------------------------------------------------------------------------------


class Image:
    """An image read back from `slipway save`: layer tars in order, whiteouts applied."""

    def __init__(self, path):
        self.layers = []  # (compressed blob size, bytes of the files in it)
        self.files = {}  # path -> (layer index, member name)
        self._tar = tarfile.open(path)
        # Archive member names, with or without a leading "./".
        self._members = {os.path.normpath(m.name): m for m in self._tar.getmembers()}
        names = self._members
        if "index.json" in names:
            index = self._json("index.json")
            manifest = self._json(self._blob(index["manifests"][0]["digest"]))
            self.config = self._json(self._blob(manifest["config"]["digest"]))
            layer_paths = [self._blob(d["digest"]) for d in manifest["layers"]]
        else:
            top = self._json("manifest.json")[0]
            self.config = self._json(top["Config"])
            layer_paths = top["Layers"]
        for i, lp in enumerate(layer_paths):
            self._apply(i, lp)

    def _file(self, name):
        return self._tar.extractfile(self._members[os.path.normpath(name)])

    def _json(self, name):
        return json.load(self._file(name))

    @staticmethod
    def _blob(digest):
        algo, hexd = digest.split(":", 1)
        return f"blobs/{algo}/{hexd}"

    def _open_layer(self, lp):
        head = self._file(lp).read(4)
        raw = self._file(lp)
        if head[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)
        if head == b"\x28\xb5\x2f\xfd":
            zstd = subprocess.run(
                ["zstd", "-dc"], input=raw.read(), stdout=subprocess.PIPE, check=True
            )
            return io.BytesIO(zstd.stdout)
        return raw

    def _apply(self, i, lp):
        compressed = self._members[os.path.normpath(lp)].size
        uncompressed = 0
        with tarfile.open(fileobj=self._open_layer(lp), mode="r|") as layer:
            for m in layer:
                uncompressed += m.size
                name = os.path.normpath(m.name.lstrip("./") or ".").lstrip("/")
                base, leaf = os.path.split(name)
                if leaf == ".wh..wh..opq":
                    prefix = base + "/"
                    self.files = {k: v for k, v in self.files.items() if not k.startswith(prefix)}
                elif leaf.startswith(".wh."):
                    gone = os.path.join(base, leaf[4:])
                    self.files = {
                        k: v
                        for k, v in self.files.items()
                        if k != gone and not k.startswith(gone + "/")
                    }
                else:
                    self.files[name] = (i, m.name)
        self.layers.append((compressed, uncompressed))

    def has(self, path):
        return path.lstrip("/") in self.files

    def glob(self, pattern):
        rx = re.compile(pattern)
        return sorted(p for p in self.files if rx.search(p))

    def read(self, path):
        i, member = self.files[path.lstrip("/")]
        lp = self._layer_paths()[i]
        with tarfile.open(fileobj=self._open_layer(lp), mode="r|") as layer:
            for m in layer:
                if m.name == member:
                    return layer.extractfile(m).read().decode()
        raise KeyError(path)

    def _layer_paths(self):
        if "index.json" in self._members:
            index = self._json("index.json")
            manifest = self._json(self._blob(index["manifests"][0]["digest"]))
            return [self._blob(d["digest"]) for d in manifest["layers"]]
        return self._json("manifest.json")[0]["Layers"]


# --- fixtures --------------------------------------------------------------------------------


class Slipway:
    def __init__(self, binary, root, index_url, workdir):
        self.binary = binary
        self.root = root
        self.index_url = index_url
        self.workdir = workdir
        self.env = dict(os.environ, SLIPWAY_ROOT=root)
        self.build_times = {}

    def __call__(self, *args, timeout=600, check=True, **kw):
        p = subprocess.run(
            [self.binary, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            **kw,
        )
        if check:
            assert p.returncode == 0, f"slipway {' '.join(args)} exited {p.returncode}:\n{p.stdout[-4000:]}"
        return p

    def build(self, tag, dockerfile, context=EXAMPLE, target=None):
        t0 = time.monotonic()
        args = ["build", "--progress=plain", "--build-arg", f"PIP_INDEX_URL={self.index_url}"]
        if target:
            args += ["--target", target]
        args += ["-t", tag, "-f", os.path.join(context, dockerfile), context]
        p = self(*args, timeout=BUILD_TIMEOUT)
        seconds = time.monotonic() - t0
        self.build_times.setdefault(tag, []).append(seconds)
        steps = parse_plain(p.stdout)
        assert instruction_steps(steps), f"no `#N [stage i/n] ...` steps in plain progress:\n{p.stdout[-3000:]}"
        return steps, seconds

    def image(self, tag):
        out = os.path.join(self.workdir, hashlib.sha256(tag.encode()).hexdigest()[:12] + ".tar")
        if os.path.exists(out):
            os.unlink(out)
        self("save", "-o", out, "--format", "oci", tag, timeout=600)
        return Image(out)

    def start(self, image, *args, env=None, volumes=(), rm=True, name=None):
        """`slipway run` in the background on its own network, the entrypoint's [::]:80
        published on a free loopback port (`-p 127.0.0.1:PORT:80`)."""
        port = free_port()
        env = dict(env or {})
        cmd = [self.binary, "run"]
        if rm:
            cmd.append("--rm")
        if name:
            cmd += ["--name", name]
        for k, v in env.items():
            cmd += ["-e", f"{k}={v}"]
        for v in volumes:
            cmd += ["-v", v]
        cmd += ["-p", f"127.0.0.1:{port}:80", image, *args]
        log = open(os.path.join(self.workdir, f"run-{port}.log"), "w+")
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return Container(proc, port, log)


class Container:
    def __init__(self, proc, port, log):
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=30):
        """SIGTERM to `slipway run` (forwarded to the entrypoint's gunicorn); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running {timeout}s after SIGTERM:\n{self.output()[-3000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def dj(slipway_bin, python_base_tar, tmp_path_factory):
    """slipway on a temp store holding python:slim, with the wheelhouse served on loopback."""
    binary = slipway_bin
    work = tmp_path_factory.mktemp("django")
    root = str(work / "store")
    wheelhouse = subprocess.run(
        [os.path.join(REPO, "scripts", "wheelhouse.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    # The index is served from this process on a port the kernel picks (port 0): nothing else,
    # not even a second test run at the same time, can take it first.
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietFiles, directory=wheelhouse))
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://127.0.0.1:{port}/simple/"
        # any Django 3.2.x wheel: a Debian security update may move the patch level
        assert re.search(r"Django-3\.2\.\d+-", wait_http(index + "django/", timeout=20))
        sw = Slipway(binary, root, index, str(work))
        sw("import", "--change", 'CMD ["python3"]', python_base_tar, "python:slim", timeout=900)
        yield sw
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work / "store", ignore_errors=True)


@pytest.fixture(scope="module")
def builds(dj):
    """Each Dockerfile built once (lazily), cold: name -> (steps, seconds)."""
    done = {}

    def build(kind):
        if kind not in done:
            done[kind] = dj.build(f"foo:{kind}", DOCKERFILES[kind])
        return done[kind]

    return build


@pytest.fixture(scope="module")
def images(dj, builds):
    done = {}

    def image(kind):
        if kind not in done:
            builds(kind)
            img = dj.image(f"foo:{kind}")
            done[kind] = img
            compressed = sum(c for c, _ in img.layers)
            uncompressed = sum(u for _, u in img.layers)
            print(
                f"\nimage foo:{kind}: {len(img.layers)} layers, "
                f"{compressed / 1e6:.1f} MB compressed, {uncompressed / 1e6:.1f} MB of files, "
                f"cold build {dj.build_times[f'foo:{kind}'][0]:.1f} s"
            )
        return done[kind]

    return image


def context_copy(tmp_path):
    ctx = tmp_path / "foo"
    shutil.copytree(EXAMPLE, ctx)
    return str(ctx)


def edit_line(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text, f"{old!r} not in {path}"
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


# --- 1. all four build and run ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DOCKERFILES))
def test_dockerfile_builds_and_runs(dj, builds, images, kind):
    steps, seconds = builds(kind)
    errors = [s for s in instruction_steps(steps) if s.status == "ERROR"]
    assert not errors, errors
    img = images(kind)
    assert img.config["config"]["Entrypoint"] == ["/app/docker-entrypoint.sh"]
    assert "DJANGO_SETTINGS_MODULE=foo.settings" in img.config["config"]["Env"]
    c = dj.start(f"foo:{kind}")
    try:
        page = wait_http(c.url + "/", proc=c.proc)
        assert "Hello from foo" in page
        assert re.search(r"visited \d+ times?", page), page
    finally:
        rc = c.stop()
    assert rc == 0, c.output()[-3000:]


# --- 2. what the multi-stage final images hold -----------------------------------------------


@pytest.mark.parametrize("kind", ["multistage", "final"])
def test_final_image_contents(images, kind):
    img = images(kind)
    # No source checkout: /app has only the entrypoint, manage.py and the collected static files.
    app = {p.split("/")[1] for p in img.glob(r"^app/.") if p.count("/") >= 1}
    assert app <= {"docker-entrypoint.sh", "manage.py", "static.dist"}, app
    assert not img.has("app/setup.py") and not img.glob(r"^app/foo/")
    # No compiler, no build-essential.
    assert not img.glob(r"^usr/bin/(gcc|cc|g\+\+|make)(-\d+)?$"), img.glob(r"^usr/bin/(gcc|make)")
    assert not img.glob(r"^usr/lib/gcc/"), "gcc's libexec is in the image"
    status = img.read("var/lib/dpkg/status")
    assert "Package: python3" in status
    for pkg in ("build-essential", "gcc", "python3-dev", "make"):
        assert f"\nPackage: {pkg}\n" not in "\n" + status, f"{pkg} is installed"
    # The app and its dependencies installed under /usr/local.
    site = "usr/local/lib/python3.11/dist-packages"
    for p in (
        "foo/__init__.py",
        "foo/views.py",
        "foo/migrations/0001_initial.py",
        "foo/templates/foo/index.html",
        "foo/static/foo/style.css",
        "foo/locale/de/LC_MESSAGES/django.po",
        "foo/locale/de/LC_MESSAGES/django.mo",
        "django/__init__.py",
        "gunicorn/__init__.py",
    ):
        assert img.has(f"{site}/{p}"), f"/{site}/{p} missing"
    assert img.glob(rf"^{site}/foo-1\.0\.0\.(dist|egg)-info/")
    assert img.has("usr/local/bin/gunicorn")
    assert img.has("app/static.dist/foo/style.css")
    assert img.has("app/docker-entrypoint.sh")


def test_image_sizes_and_layers(dj, images):
    """The article's point in numbers. This app needs no compiler, so the naive images are not
    bigger for it (only the source checkout, a few kB); the multi-stage images leave behind the
    builder stage with build-essential, which is what they are for."""
    dj.build("foo:final-builder", "Dockerfile", target="builder")
    rows = {kind: images(kind) for kind in DOCKERFILES}
    rows["final-builder"] = dj.image("foo:final-builder")
    sizes = {k: sum(u for _, u in img.layers) for k, img in rows.items()}
    print("\n| image | layers | compressed MB | files MB |\n|---|---|---|---|")
    for kind, img in rows.items():
        compressed = sum(c for c, _ in img.layers)
        print(f"| foo:{kind} | {len(img.layers)} | {compressed / 1e6:.1f} | {sizes[kind] / 1e6:.1f} |")
    assert sizes["final"] < sizes["final-builder"] - 100e6, sizes
    assert abs(sizes["final"] - sizes["multistage"]) < 0.02 * sizes["final"], sizes
    # The source checkout is in the single-stage images only.
    for kind in ("naive", "requirements"):
        assert rows[kind].has("app/setup.py") and rows[kind].has("app/foo/views.py"), kind
    for kind in ("multistage", "final"):
        assert not rows[kind].has("app/setup.py"), kind
    # One layer per filesystem step on top of the base's one.
    assert len(rows["final"].layers) == 1 + 4, len(rows["final"].layers)


# --- 3. cache behaviour ----------------------------------------------------------------------


def test_requirements_first_keeps_dependency_install_after_py_edit(dj, builds, tmp_path):
    builds("requirements")
    ctx = context_copy(tmp_path)
    steps, _ = dj.build("foo:req-edit0", "Dockerfile.requirements", ctx)
    assert all(s.cached for s in filesystem_steps(steps)), steps
    edit_line(os.path.join(ctx, "foo", "views.py"), "Count this visit", "Count this one visit")
    steps, seconds = dj.build("foo:req-edit1", "Dockerfile.requirements", ctx)
    show(f"requirements-first after a .py edit ({seconds:.1f} s)", steps)
    assert find(steps, "pip install").cached, "the dependency install re-ran"
    assert find(steps, "COPY requirements.txt").cached
    assert not find(steps, "COPY . .").cached, "COPY . . should see the edit"
    assert not find(steps, "collectstatic").cached


def test_naive_reruns_dependency_install_after_py_edit(dj, builds, tmp_path):
    """The article's complaint about the naive Dockerfile, checked as well."""
    builds("naive")
    ctx = context_copy(tmp_path)
    dj.build("foo:naive-edit0", "Dockerfile.naive", ctx)
    edit_line(os.path.join(ctx, "foo", "views.py"), "Count this visit", "Count this one visit")
    steps, seconds = dj.build("foo:naive-edit1", "Dockerfile.naive", ctx)
    show(f"naive after a .py edit ({seconds:.1f} s)", steps)
    assert not find(steps, "pip install").cached


def final_dependency_steps(steps):
    return (
        find(steps, "setup.py egg_info"),
        find(steps, "pip install", "requires.txt"),
    )


def test_final_py_edit_reruns_only_steps_after_copy(dj, builds, tmp_path):
    builds("final")
    ctx = context_copy(tmp_path)
    steps, _ = dj.build("foo:edit0", "Dockerfile", ctx)
    assert all(s.cached for s in filesystem_steps(steps)), [
        s for s in filesystem_steps(steps) if not s.cached
    ]
    edit_line(os.path.join(ctx, "foo", "views.py"), "Count this visit", "Count this one visit")
    steps, seconds = dj.build("foo:edit1", "Dockerfile", ctx)
    show(f"final Dockerfile after a one-line .py edit ({seconds:.1f} s)", steps)
    egg_info, deps = final_dependency_steps(steps)
    assert egg_info.cached and deps.cached, "a dependency step re-ran"
    # In the builder stage, the steps before `COPY . .` are cached and the rest re-run; the
    # static-builder (FROM builder) re-runs; every other step is cached, except the final
    # stage's COPY --from, which re-run or not depending on whether the copied files changed.
    copy_all = find(steps, "COPY . .")
    static_stage = find(steps, "collectstatic").stage
    assert copy_all.stage != static_stage
    for s in filesystem_steps(steps):
        if s.stage == copy_all.stage:
            assert s.cached == (s.index < copy_all.index), f"{s}: wrong side of COPY . ."
        elif s.stage == static_stage:
            assert not s.cached, f"{s} should re-run (FROM builder)"
        elif "--from=" not in s.instruction:
            assert s.cached, f"{s} should be cached"
    assert not find(steps, "COPY --from=builder").cached, "the installed app changed"
    for needle in ("compilemessages", "pip install --no-warn-script-location --prefix=/install ."):
        assert not find(steps, needle).cached, needle
    assert not find(steps, "collectstatic").cached
    assert find(steps, "COPY manage.py docker-entrypoint.sh").cached
    # ...and the edit is in the image.
    img = dj.image("foo:edit1")
    assert "Count this one visit" in img.read("usr/local/lib/python3.11/dist-packages/foo/views.py")


def test_final_version_bump_reruns_egg_info_not_dependency_install(dj, builds, tmp_path):
    builds("final")
    ctx = context_copy(tmp_path)
    dj.build("foo:bump0", "Dockerfile", ctx)
    edit_line(os.path.join(ctx, "setup.py"), 'version="1.0.0"', 'version="1.0.1"')
    steps, seconds = dj.build("foo:bump1", "Dockerfile", ctx)
    show(f"final Dockerfile after a setup.py version bump ({seconds:.1f} s)", steps)
    egg_info, deps = final_dependency_steps(steps)
    assert not find(steps, "COPY setup.py").cached
    assert not egg_info.cached, "egg_info should re-run: setup.py changed"
    assert find(steps, "COPY --from=dependencies").cached, "requires.txt is unchanged"
    assert deps.cached, "the dependency install re-ran although requires.txt is unchanged"
    assert find(steps, "apt-get install").cached
    assert not find(steps, "--prefix=/install .").cached
    img = dj.image("foo:bump1")
    assert img.glob(r"^usr/local/lib/python3\.11/dist-packages/foo-1\.0\.1\.(dist|egg)-info/")


def test_final_dependency_change_reruns_dependency_install(dj, builds, tmp_path):
    builds("final")
    ctx = context_copy(tmp_path)
    dj.build("foo:dep0", "Dockerfile", ctx)
    edit_line(
        os.path.join(ctx, "setup.py"),
        '"Django>=3.2,<4.0",',
        '"Django>=3.2,<4.0",\n        "sqlparse>=0.2.2",',
    )
    steps, seconds = dj.build("foo:dep1", "Dockerfile", ctx)
    show(f"final Dockerfile after adding a dependency ({seconds:.1f} s)", steps)
    egg_info, deps = final_dependency_steps(steps)
    assert not egg_info.cached
    assert not find(steps, "COPY --from=dependencies").cached, "requires.txt changed"
    assert not deps.cached, "the dependency install must re-run when requires.txt changes"
    assert find(steps, "apt-get install").cached


# --- 4. running the final image --------------------------------------------------------------


def test_final_migrate_on_first_start_then_noop(dj, builds, tmp_path):
    builds("final")
    data = tmp_path / "data"
    data.mkdir()
    db = data / "db.sqlite3"
    volume = [f"{data}:/data"]
    env = {"FOO_DB_PATH": "/data/db.sqlite3"}
    counts = []
    outputs = []
    for start in (1, 2):
        c = dj.start("foo:final", env=env, volumes=volume)
        try:
            wait_http(c.url + "/", proc=c.proc)
            page = get(c.url + "/")
            counts.append(int(re.search(r"visited (\d+) time", page).group(1)))
        finally:
            assert c.stop() == 0, c.output()[-3000:]
        outputs.append(c.output())
        if start == 1:
            assert db.exists() and db.stat().st_size > 0, "migrate did not create the database"
    assert "Applying foo.0001_initial... OK" in outputs[0], outputs[0][-3000:]
    assert "No migrations to apply." in outputs[1], outputs[1][-3000:]
    assert "Applying" not in outputs[1]
    # The view wrote the counter to the volume's database; the second start reads it back.
    assert counts[1] > counts[0], counts


def test_final_serves_static_and_german(dj, builds):
    builds("final")
    c = dj.start("foo:final")
    try:
        wait_http(c.url + "/", proc=c.proc)
        page = get(c.url + "/")
        assert "Hello from foo" in page and '<html lang="en">' in page
        de = get(c.url + "/", headers={"Accept-Language": "de"})
        assert "Hallo von foo" in de and "Mal besucht" in de, de
        css = get(c.url + "/static/foo/style.css")
        assert "foo-static-marker" in css
    finally:
        assert c.stop() == 0, c.output()[-3000:]


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_gunicorn(pid):
    """gunicorn's master or a worker: `python3 /usr/local/bin/gunicorn ...` (not dj, whose
    own arguments mention GUNICORN_CMD_ARGS)."""
    argv = cmdline(pid).split(" ")
    return any(os.path.basename(a) == "gunicorn" for a in argv[:2])


def test_final_gunicorn_workers_and_sigterm(dj, builds):
    builds("final")
    c = dj.start("foo:final", env={"GUNICORN_WORKERS": "2"})
    try:
        wait_http(c.url + "/", proc=c.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            gunicorns = [p for p in descendants(c.proc.pid) if is_gunicorn(p)]
            if len(gunicorns) >= 3:
                break
            time.sleep(0.2)
        time.sleep(1)  # no third worker shows up late
        gunicorns = [p for p in descendants(c.proc.pid) if is_gunicorn(p)]
        print(f"\ngunicorn processes under `slipway run`: {len(gunicorns)}: {gunicorns}")
        assert len(gunicorns) == 3, [cmdline(p) for p in gunicorns]  # the master and 2 workers
        assert c.output().count("Booting worker with pid") == 2, c.output()[-3000:]
    finally:
        t0 = time.monotonic()
        rc = c.stop()
        took = time.monotonic() - t0
    out = c.output()
    print(f"SIGTERM: exit status {rc} after {took:.2f} s")
    assert rc == 0, out[-3000:]
    assert "Handling signal: term" in out, out[-3000:]
    assert "Shutting down: Master" in out, out[-3000:]
    assert took < 15
    with pytest.raises(urllib.error.URLError):
        get(c.url + "/")
    assert not [p for p in gunicorns if is_gunicorn(p)], "a gunicorn process survived"


# ---- the newcomer's command: `slipway build -t foo examples/django` without the index ----

def test_example_without_its_index_fails_at_once_naming_the_command(slipway, busybox_rootfs_tar):
    """No index on the Dockerfiles' loopback address: every build of the example fails at its
    first RUN, before running it (the base here is busybox tagged python:slim: no pip to wait
    for), names the ARG's file:line and the URL, and quotes the Dockerfile's note with the exact
    command that starts the index. The address is a port held bound without listening (refuses,
    whatever else runs on this machine)."""
    slipway("import", busybox_rootfs_tar, "python:slim")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d/simple/" % held.getsockname()[1]
        for kind, name in DOCKERFILES.items():
            t0 = time.monotonic()
            p = slipway("build", "--progress=plain", "--build-arg", "PIP_INDEX_URL=" + url,
                        "-t", "foo", "-f", os.path.join(EXAMPLE, name), EXAMPLE, check=False)
            assert p.returncode == 1, (kind, p.stdout, p.stderr)
            assert time.monotonic() - t0 < 10, kind
            # the first RUN with the arg in its environment fails, not run; no pip ran
            heads = dict(re.findall(r"^(#\d+) (\[.*)$", p.stderr, re.M))
            failed = re.findall(r"^(#\d+) ERROR", p.stderr, re.M)
            assert len(failed) == 1 and " RUN " in heads[failed[0]] + " ", p.stderr
            done = re.findall(r"^(#\d+) DONE", p.stderr, re.M)
            assert not [n for n in done if "pip" in heads[n]], p.stderr
            assert re.search(r"%s:\d+: ARG PIP_INDEX_URL: nothing listens at %s" % (
                re.escape(name), re.escape(url)), p.stderr), p.stderr
            assert "this step was not run" in p.stderr, (kind, p.stderr)
            assert "scripts/wheelhouse.sh serve 3141 &" in p.stderr, (kind, p.stderr)
        # --network none: the RUN steps would not reach it anyway, so no check
        p = slipway("build", "--network", "none", "--build-arg", "PIP_INDEX_URL=" + url,
                    EXAMPLE, check=False)
        assert "nothing listens" not in p.stderr, p.stderr
        held.listen(1)
        p = slipway("build", "--build-arg", "PIP_INDEX_URL=" + url, EXAMPLE, check=False)
        assert p.returncode != 0 and "nothing listens" not in p.stderr, p.stderr
    assert slipway("images", "-q").stdout.split() == [slipway("images", "-q", "python:slim")
                                                       .stdout.strip()]


def test_cached_rebuild_needs_no_index(slipway, busybox_image, tmp_path):
    """The index is needed by the RUN steps that run, not by a rebuild whose steps are all
    cached: with the index down, a no-op rebuild succeeds (same image), a step that must run
    fails before it runs, naming the ARG."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n# start it: my-index serve &\nARG PIP_INDEX_URL\nRUN echo ran-$((6*7))\n")
    for attempt in range(5):
        with socket.socket() as up:
            up.bind(("127.0.0.1", 0))
            up.listen(1)
            port = up.getsockname()[1]
            url = "http://127.0.0.1:%d/simple/" % port
            p = slipway("build", "--progress=plain", "--build-arg", "PIP_INDEX_URL=" + url,
                        "-t", "one", str(ctx))
            assert "ran-42" in p.stderr, p.stderr
        with socket.socket() as down:  # the same port, bound and never listening: refused
            down.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                down.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken in between by someone else: another port
            p = slipway("build", "--progress=plain", "--build-arg", "PIP_INDEX_URL=" + url,
                        "-t", "two", str(ctx))
            assert "CACHED" in p.stderr and "nothing listens" not in p.stderr, p.stderr
            assert slipway.inspect("one")["Id"] == slipway.inspect("two")["Id"]
            p = slipway("build", "--no-cache", "--progress=plain", "--build-arg",
                        "PIP_INDEX_URL=" + url, str(ctx), check=False)
            assert p.returncode == 1, p.stderr
            assert "Dockerfile:3: ARG PIP_INDEX_URL: nothing listens at " + url in p.stderr
            assert "this step was not run" in p.stderr and "my-index serve &" in p.stderr
            assert "ran-42" not in p.stderr
            return
    pytest.fail("could not hold a refused port 5 times in a row")
