"""End-to-end tests of what real Dockerfiles and `docker build` scripts use beyond the basics
(issue 15): `ADD https://…` against a real HTTP server on loopback (names, modes, mtimes,
--chown/--chmod, never unpacked, --checksum, revalidation with ETag/If-Modified-Since, retries,
the proxy build args)."""
import email.utils
import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time

import pytest

from conftest import SlipwayRunner
from test_build import Builder, Image, cached, make_ctx, ran

BASE = """FROM scratch AS bb
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""

LAST_MODIFIED = 1445412480  # Wed, 21 Oct 2015 07:28:00 GMT


class Files:
    """What the test server serves: path -> {body, etag, last_modified, disposition}, plus
    `fail_first` paths that answer 503 once, and a log of (path, status, headers)."""

    def __init__(self):
        self.files = {}
        self.fail_first = set()
        self.cut_first = set()
        self.log = []
        self.lock = threading.Lock()

    def requests(self, path):
        with self.lock:
            return [e for e in self.log if e[0] == path]


def make_handler(files):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path
            with files.lock:
                f = files.files.get(path)
                rng = self.headers.get("Range")
                if path in files.cut_first and f is not None:
                    # Headers for the whole file, half of it, then the connection drops.
                    files.cut_first.discard(path)
                    files.log.append((path, "cut", dict(self.headers)))
                    body = f["body"]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", f["etag"])
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    time.sleep(0.2)  # let the half reach the client, then end the stream early
                    self.connection.shutdown(socket.SHUT_WR)
                    self.close_connection = True
                    return
                if rng and f is not None and self.headers.get("If-Range") == f.get("etag"):
                    start = int(rng.split("=")[1].rstrip("-"))
                    files.log.append((path, 206, dict(self.headers)))
                    body = f["body"]
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1,
                                                                         len(body)))
                    self.send_header("Content-Length", str(len(body) - start))
                    self.send_header("ETag", f["etag"])
                    self.end_headers()
                    self.wfile.write(body[start:])
                    return
                if path in files.fail_first:
                    files.fail_first.discard(path)
                    status = 503
                elif f is None:
                    status = 404
                elif f.get("etag") and self.headers.get("If-None-Match") == f["etag"]:
                    status = 304
                elif (not self.headers.get("If-None-Match") and f.get("last_modified")
                      and self.headers.get("If-Modified-Since")
                      and email.utils.parsedate_to_datetime(
                          self.headers["If-Modified-Since"]).timestamp() >= f["last_modified"]):
                    status = 304
                else:
                    status = 200
                files.log.append((path, status, dict(self.headers)))
            self.send_response(status)
            if status == 200:
                body = f["body"]
                if f.get("etag"):
                    self.send_header("ETag", f["etag"])
                if f.get("last_modified"):
                    self.send_header("Last-Modified",
                                     email.utils.formatdate(f["last_modified"], usegmt=True))
                if f.get("disposition"):
                    self.send_header("Content-Disposition", f["disposition"])
            else:
                body = b"" if status == 304 else b"no\n"
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server():
    files = Files()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    files.url = "http://127.0.0.1:%d" % httpd.server_address[1]
    yield files
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def b(slipway, tmp_path):
    return Builder(slipway, tmp_path)


def tgz(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_add_url_names_modes_mtime_and_revalidation(b, server, tmp_path):
    arch = tgz("inside.txt", b"packed\n")
    server.files["/files/hello.txt"] = {"body": b"hello v1\n", "etag": '"v1"',
                                       "last_modified": LAST_MODIFIED}
    server.files["/files/app.tar.gz"] = {"body": arch, "last_modified": LAST_MODIFIED}
    server.files["/?id=3"] = {"body": b"a,b\n", "etag": '"cd"',
                              "disposition": 'attachment; filename="report.csv"'}
    u = server.url
    df = BASE + """
FROM bb
ADD {u}/files/hello.txt /data/
ADD --chown=1234:5678 --chmod=644 {u}/files/hello.txt /data/renamed.txt
ADD {u}/?id=3 /cd/
ADD {u}/files/app.tar.gz /arch/
""".format(u=u)
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, steps = b.export(ctx)
    fs = img.files()
    hello = fs["data/hello.txt"]
    assert (hello.mode, hello.uid, hello.gid) == (0o600, 0, 0)
    assert hello.mtime == LAST_MODIFIED
    assert hello.data == b"hello v1\n"
    ren = fs["data/renamed.txt"]
    assert (ren.mode, ren.uid, ren.gid, ren.data) == (0o644, 1234, 5678, b"hello v1\n")
    assert fs["cd/report.csv"].data == b"a,b\n"  # no name in the URL's path: Content-Disposition
    assert fs["arch/app.tar.gz"].data == arch  # a remote archive is never unpacked
    assert "arch/inside.txt" not in fs
    assert len(server.requests("/files/hello.txt")) == 2  # two ADDs of it, no cache yet
    history = [h.get("created_by", "") for h in img.config["history"]]
    assert any(h.startswith("ADD %s/files/hello.txt /data/" % u) for h in history), history

    # Rebuild: each URL is revalidated with one conditional request answered 304, all cached.
    before = {p: len(server.requests(p)) for p in server.files}
    img2, out, steps = b.export(ctx)
    assert not ran(steps), out
    assert len(cached(steps)) >= 4, out
    for p in server.files:
        new = server.requests(p)[before[p]:]
        assert [s for _, s, _ in new] == [304] * (2 if p == "/files/hello.txt" else 1), (p, new)
    hello_reqs = server.requests("/files/hello.txt")
    assert hello_reqs[-1][2].get("If-None-Match") == '"v1"'
    assert "If-Modified-Since" in server.requests("/files/app.tar.gz")[-1][2]
    assert img2.manifest == img.manifest

    # The server's file changes: downloaded again, those ADD steps run, the others stay cached.
    server.files["/files/hello.txt"] = {"body": b"hello v2\n", "etag": '"v2"',
                                       "last_modified": LAST_MODIFIED + 60}
    before = {p: len(server.requests(p)) for p in server.files}
    img3, out, steps = b.export(ctx)
    assert len([k for k in ran(steps) if "hello.txt" in k]) == 2, out
    # The later ADDs run again (their parent changed) from the stored download: a 304 each.
    for p in ("/files/app.tar.gz", "/?id=3"):
        assert [s for _, s, _ in server.requests(p)[before[p]:]] == [304], p
    assert [s for _, s, _ in server.requests("/files/hello.txt")[before["/files/hello.txt"]:]] \
        == [200, 304]
    fs = img3.files()
    assert fs["data/hello.txt"].data == b"hello v2\n"
    assert fs["data/hello.txt"].mtime == LAST_MODIFIED + 60


def test_add_url_same_content_keeps_cache(b, server, tmp_path):
    """The step's key is the content digest: a new ETag with the same bytes changes nothing."""
    server.files["/f.txt"] = {"body": b"same\n", "etag": '"a"'}
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nADD %s/f.txt /f.txt\nRUN cat /f.txt\n"
                   % server.url)
    b.build(ctx)
    server.files["/f.txt"] = {"body": b"same\n", "etag": '"b"'}
    rc, out, steps = b.build(ctx)
    assert [s for _, s, _ in server.requests("/f.txt")] == [200, 200]
    assert not ran(steps), out


def test_add_url_retry_checksum_and_errors(b, server, tmp_path):
    body = b"pinned content\n"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    server.files["/pinned.bin"] = {"body": body, "etag": '"p"'}
    server.fail_first.add("/pinned.bin")
    env = {"SLIPWAY_RETRY_BASE_MS": "20"}
    df = BASE + "FROM bb\nADD --checksum=%s %s/pinned.bin /p\n" % (digest, server.url)
    ctx = make_ctx(tmp_path / "ok", df)
    rc, out, steps = b.build(ctx, env=env)
    assert [s for _, s, _ in server.requests("/pinned.bin")] == [503, 200]
    assert "retry 1/" in out and "HTTP 503" in out, out
    # The content is pinned and in the store: a rebuild makes no request at all.
    rc, out, steps = b.build(ctx, env=env)
    assert len(server.requests("/pinned.bin")) == 2
    assert not ran(steps), out

    wrong = "sha256:" + "0" * 64
    ctx = make_ctx(tmp_path / "bad", BASE + "FROM bb\nADD --checksum=%s %s/pinned.bin /p\n"
                   % (wrong, server.url))
    rc, out, _ = b.build(ctx, check=False, env=env)
    assert rc == 1, out
    assert wrong in out and digest in out and "/pinned.bin" in out, out

    ctx = make_ctx(tmp_path / "missing", BASE + "FROM bb\nADD %s/nope.txt /n\n" % server.url)
    rc, out, _ = b.build(ctx, check=False, env=env)
    assert rc == 1 and "HTTP 404" in out and "/nope.txt" in out and "Dockerfile:5" in out, out
    assert len(server.requests("/nope.txt")) == 1  # a 404 is not retried

    ctx = make_ctx(tmp_path / "copy", BASE + "FROM bb\nCOPY %s/pinned.bin /p\n" % server.url)
    rc, out, _ = b.build(ctx, check=False, env=env)
    assert rc != 0 and "ADD only" in out, out


def test_add_url_resumes_a_cut_download(b, server, tmp_path):
    """A transfer cut mid-body goes on from where it stopped (Range + If-Range), and the file
    is whole."""
    body = bytes(range(256)) * 4096  # 1 MiB
    server.files["/big.bin"] = {"body": body, "etag": '"big1"'}
    server.cut_first.add("/big.bin")
    plain = os.urandom(3 << 20)  # and a whole download of many chunks
    server.files["/plain.bin"] = {"body": plain, "etag": '"p"'}
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nADD %s/big.bin /big.bin\nADD %s/plain.bin /\n"
                   % (server.url, server.url))
    dest = str(tmp_path / "oci")
    rc, out, steps = b.build(ctx, "-o", "type=oci,dest=" + dest,
                             env={"SLIPWAY_RETRY_BASE_MS": "20"})
    log = server.requests("/big.bin")
    assert [s for _, s, _ in log] == ["cut", 206], (log, out)
    assert Image(dest).files()["big.bin"].data == body
    assert Image(dest).files()["plain.bin"].data == plain
    # From where the first transfer stopped (what reached slipway of the half sent).
    got = int(log[1][2]["Range"][len("bytes="):-1])
    assert 0 < got <= len(body) // 2, log[1][2]["Range"]
    assert log[1][2]["If-Range"] == '"big1"'
    assert "resuming at byte %d" % got in out, out


def test_add_url_through_proxy_build_arg(b, server, tmp_path):
    """HTTP_PROXY given as a build arg carries the download (the host does not resolve)."""
    url = "http://slipway-test.invalid/via/proxy.txt"
    server.files[url] = {"body": b"proxied\n"}  # a proxy sees the absolute URL
    ctx = make_ctx(tmp_path / "ctx", BASE + "FROM bb\nADD %s /x/\n" % url)
    img, out, steps = b.export(ctx, "--build-arg", "HTTP_PROXY=" + server.url)
    assert img.files()["x/proxy.txt"].data == b"proxied\n"
    assert len(server.requests(url)) == 1
    # Proxy args are not part of the image's history or config.
    assert server.url not in str(img.config)


# ---- --build-context ----------------------------------------------------------------------


def write(path, files):
    for rel, data in files.items():
        p = os.path.join(path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(data)


def test_build_context_directory(b, tmp_path):
    proj = tmp_path / "proj"
    write(proj, {"src/app.py": "print(1)\n", "src/secret.key": "k\n", ".dockerignore": "**/*.key\n"})
    ctx = make_ctx(tmp_path / "ctx", BASE + """
FROM bb
COPY --from=project src/ /app/
RUN cat /app/app.py > /ran
""")
    img, out, steps = b.export(ctx, "--build-context", "project=" + str(proj))
    fs = img.files()
    assert fs["app/app.py"].data == b"print(1)\n"
    assert (fs["app/app.py"].uid, fs["app/app.py"].gid) == (0, 0)
    assert "app/secret.key" not in fs  # the named directory's own .dockerignore
    # Unchanged: cached; a changed file in the named directory re-runs the COPY and what follows.
    rc, out, steps = b.build(ctx, "--build-context", "project=" + str(proj))
    assert not ran(steps), out
    write(proj, {"src/app.py": "print(2)\n"})
    img, out, steps = b.export(ctx, "--build-context", "project=" + str(proj))
    assert any("COPY --from=project" in k for k in ran(steps)), out
    assert any("RUN cat" in k for k in ran(steps)), out
    assert img.files()["app/app.py"].data == b"print(2)\n"
    # Without the flag, `project` is an image reference that cannot be found.
    rc, out, _ = b.build(ctx, check=False)
    assert rc != 0 and "project" in out, out


def test_build_context_images(b, slipway, busybox_image, tmp_path):
    slipway("tag", busybox_image, "mybase:1")
    # FROM alpine (not in the store, no network) and a stage, both replaced by named contexts;
    # the replaced stage's own instructions are not built (its COPY would fail).
    df = """FROM scratch AS deps
COPY does-not-exist /x
FROM alpine
COPY --from=deps /etc/group /copied-group
COPY --from=tools /etc/passwd /copied-passwd
RUN echo built > /built
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    args = ["--build-context", "alpine=docker-image://mybase:1",
            "--build-context", "deps=docker-image://mybase:1",
            "--build-context", "tools=docker-image://busybox"]
    img, out, steps = b.export(ctx, *args)
    fs = img.files()
    assert fs["built"].data == b"built\n"
    assert fs["copied-group"].data.startswith(b"root:x:0:")
    assert fs["copied-passwd"].data.startswith(b"root:x:0:0:")
    assert "bin/busybox" in fs  # the base is the busybox image
    assert not any("does-not-exist" in k for k in steps), out

    # oci-layout://: the image of an OCI layout directory (loaded into the store first).
    layout = tmp_path / "layout"
    slipway("save", "--format", "oci-dir", "-o", layout, "mybase:1")
    ctx2 = make_ctx(tmp_path / "ctx2", "FROM base\nRUN echo from-layout > /o\n")
    img, out, steps = b.export(ctx2, "--build-context", "base=oci-layout://" + str(layout))
    assert img.files()["o"].data == b"from-layout\n"
    assert "bin/busybox" in img.files()

    # Errors name the flag: a directory cannot be FROM; a bad spec; a missing directory.
    ctx3 = make_ctx(tmp_path / "ctx3", "FROM dirctx\n")
    rc, out, _ = b.build(ctx3, "--build-context", "dirctx=" + str(tmp_path), check=False)
    assert rc == 2 and "--build-context" in out and "dirctx" in out, out
    rc, out, _ = b.build(ctx3, "--build-context", "nothing", check=False)
    assert rc == 2 and "NAME=DIR" in out, out
    rc, out, _ = b.build(ctx3, "--build-context", "x=" + str(tmp_path / "nope"), check=False)
    assert rc == 2 and "nope" in out, out


# ---- --push, -o type=image, --pull, --metadata-file, --load --------------------------------


def skopeo_digest(ref):
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", "docker://" + ref],
                         stdout=subprocess.PIPE, check=True).stdout
    return "sha256:" + hashlib.sha256(out).hexdigest()


def test_push_output_image_metadata_and_pull(b, slipway, slipway_bin, busybox_image,
                                             registry_open, tmp_path):
    host = registry_open.host
    ctx = make_ctx(tmp_path / "ctx", "FROM busybox\nRUN echo one > /v\n")
    meta = tmp_path / "meta.json"
    rc, out, steps = b.build(ctx, "-t", host + "/app:1", "--push", "--load",
                             "--metadata-file", meta)
    m = json.loads(meta.read_text())
    info = slipway.inspect(host + "/app:1")
    assert m["containerimage.config.digest"] == info["Id"], m
    assert m["image.name"] == host + "/app:1"
    assert m["containerimage.descriptor"]["digest"] == m["containerimage.digest"]
    assert m["containerimage.descriptor"]["mediaType"].endswith("manifest.v1+json")
    # What the registry has is byte for byte the stored manifest.
    assert skopeo_digest(host + "/app:1") == m["containerimage.digest"]
    assert "pushing %s/app:1" % host in out

    rc, out, steps = b.build(ctx, "-o", "type=image,name=%s/app:2,push=true" % host)
    assert skopeo_digest(host + "/app:2") == m["containerimage.digest"]
    assert slipway.inspect(host + "/app:2")["Id"] == info["Id"]
    rc, out, _ = b.build(ctx, "--push", check=False)
    assert rc == 2 and "-t" in out, out

    # --pull: a second store builds FROM the pushed base; the base then changes in the
    # registry: without --pull the stored one is used, with --pull the new one.
    base = host + "/base:1"
    b.build(make_ctx(tmp_path / "b1", "FROM busybox\nRUN echo v1 > /marker\n"), "-t", base,
            "--push")
    other = Builder(SlipwayRunner(slipway_bin, tmp_path / "root2"), tmp_path)
    user = make_ctx(tmp_path / "user", "FROM %s\nRUN cat /marker > /seen\n" % base)
    img, out, _ = other.export(user)
    assert img.files()["seen"].data == b"v1\n"
    b.build(make_ctx(tmp_path / "b2", "FROM busybox\nRUN echo v2 > /marker\n"), "-t", base,
            "--push")
    img, out, _ = other.export(user)
    assert img.files()["seen"].data == b"v1\n"
    img, out, _ = other.export(user, "--pull")
    assert "pulling %s (--pull)" % base in out
    assert img.files()["seen"].data == b"v2\n"
    # --pull needs the registry: an unreachable one fails the build, naming the image.
    registry_open.stop()
    rc, out, _ = other.build(user, "--pull", check=False,
                             env={"SLIPWAY_RETRIES": "0"})
    assert rc == 1 and "--pull" in out and base in out, out


def test_add_host_shm_size_ulimit(b, tmp_path):
    ctx = make_ctx(tmp_path / "ctx", BASE + """
FROM bb
RUN grep myhost /etc/hosts > /hosts-line; df -k /dev/shm | tail -1 > /shm; \\
    ulimit -Sn > /nofile; ulimit -Hn > /nofile-hard
""")
    flags = ["--add-host", "myhost:10.1.2.3", "--shm-size", "128m", "--ulimit", "nofile=512:1024"]
    img, out, steps = b.export(ctx, *flags)
    fs = img.files()
    assert fs["hosts-line"].data.split() == [b"10.1.2.3", b"myhost"]
    assert fs["shm"].data.split()[1] == b"131072", fs["shm"].data  # 128 MiB in KiB
    assert fs["nofile"].data == b"512\n" and fs["nofile-hard"].data == b"1024\n"
    assert "etc/hosts" not in fs  # the hosts file is a mount, never in a layer
    # The flags are part of the RUN's key: the same flags hit, none re-run it.
    rc, out, steps = b.build(ctx, *flags)
    assert not ran(steps), out
    img, out, steps = b.export(ctx)
    assert any("RUN grep" in k for k in ran(steps)), out
    assert img.files()["shm"].data.split()[1] == b"65536"  # Docker's default, 64 MiB
    rc, out, _ = b.build(ctx, "--ulimit", "nofile=9:2", check=False)
    assert rc == 2 and "soft limit" in out, out
    rc, out, _ = b.build(ctx, "--add-host", "nocolon", check=False)
    assert rc == 2 and "HOST:IP" in out, out


# ---- --ssh and RUN --mount=type=ssh ---------------------------------------------------------


def ssh_add_files(dest):
    """/usr/bin/ssh-add and the libraries it loads, under dest (for a busybox image)."""
    out = subprocess.run(["ldd", "/usr/bin/ssh-add"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    paths = ["/usr/bin/ssh-add"]
    for line in out.splitlines():
        for w in line.split():
            if w.startswith("/"):
                paths.append(w)
    for p in paths:
        d = os.path.join(dest, p.lstrip("/"))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        with open(os.path.realpath(p), "rb") as src, open(d, "wb") as f:
            f.write(src.read())


class Agent:
    """A real ssh-agent on a socket of its own, holding a new ed25519 key."""

    def __init__(self, tmp, name):
        self.dir = tmp / name
        self.dir.mkdir()
        self.key = self.dir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name + "-key",
                        "-f", str(self.key)], check=True)
        self.sock = "/tmp/sw-test-%s-%d.sock" % (name, os.getpid())
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", self.sock],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            if os.path.exists(self.sock):
                break
            time.sleep(0.01)
        env = dict(os.environ, SSH_AUTH_SOCK=self.sock)
        subprocess.run(["ssh-add", "-q", str(self.key)], env=env, check=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def test_ssh_agent_forwarding(b, busybox_image, tmp_path):
    agents = []
    try:
        agents.append(Agent(tmp_path, "agent1"))
        a = agents[0]
        priv = Agent(tmp_path, "private")  # only its key file is used (private ssh-agent)
        agents.append(priv)
        ctx = tmp_path / "ctx"
        ssh_add_files(ctx / "sshroot")
        (ctx / "Dockerfile").write_text("""FROM busybox
COPY --chmod=755 sshroot/ /
RUN --mount=type=ssh ssh-add -l > /keys-default; echo "$SSH_AUTH_SOCK" > /sock-path; \\
    stat -c '%u:%g %a %F' "$SSH_AUTH_SOCK" > /sock-stat
RUN --mount=type=ssh,id=mine,target=/tmp/agent,uid=65534,gid=65534,mode=0660 \\
    SSH_AUTH_SOCK=/tmp/agent ssh-add -l > /keys-mine; stat -c '%u:%g %a' /tmp/agent > /mine-stat
RUN --mount=type=ssh,id=absent ls /run/buildkit > /absent 2>&1 || echo none > /absent
""")
        env = {"SSH_AUTH_SOCK": a.sock}
        args = ["--ssh", "default", "--ssh", "mine=" + str(priv.key)]
        dest = str(tmp_path / "oci")
        rc, out, steps = b.build(str(ctx), *args, "-o", "type=oci,dest=" + dest, env=env)
        img = Image(dest)
        fs = img.files()
        assert b"agent1-key" in fs["keys-default"].data, fs["keys-default"].data
        assert fs["sock-path"].data == b"/run/buildkit/ssh_agent.0\n"
        assert fs["sock-stat"].data == b"0:0 600 socket\n"
        assert b"private-key" in fs["keys-mine"].data and b"agent1-key" not in fs["keys-mine"].data
        assert fs["mine-stat"].data == b"65534:65534 660\n"
        assert fs["absent"].data == b"none\n"  # not given, not required: no mount
        # Nothing of the agent in a layer, the history or the output.
        key_bytes = priv.key.read_bytes()
        for layer in img.layers():
            for e in layer:
                assert not e.name.startswith(("run/buildkit", "tmp/agent")), e.name
                assert e.data is None or key_bytes not in e.data
        assert a.sock not in json.dumps(img.config) and a.sock not in out
        # Another agent socket for the same id: the steps stay cached (the socket is no input).
        a2 = Agent(tmp_path, "agent2")
        agents.append(a2)
        rc, out, steps = b.build(str(ctx), *args, env={"SSH_AUTH_SOCK": a2.sock})
        assert not ran(steps), out
        # required=true without --ssh ID fails, naming it.
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=ssh,id=deploy,required=true true\n")
        rc, out, _ = b.build(str(ctx), check=False, env=env)
        assert rc == 1 and "deploy" in out and "--ssh" in out, out
        rc, out, _ = b.build(str(ctx), "--ssh", "default", check=False, env={"SSH_AUTH_SOCK": ""})
        assert rc == 2 and "SSH_AUTH_SOCK" in out, out
    finally:
        for ag in agents:
            ag.stop()


# ---- ADD <git repository> -------------------------------------------------------------------


class GitServer:
    """A bare repository served over HTTP (git's "dumb" protocol: plain files) on loopback,
    with a request log, and a work tree to commit from."""

    ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")

    def __init__(self, tmp):
        self.root = tmp / "srv"
        self.bare = self.root / "repo.git"
        self.work = tmp / "work"
        self.git("init", "-q", "--bare", "-b", "main", str(self.bare))
        self.git("init", "-q", "-b", "main", str(self.work))
        self.log = []
        log, root = self.log, str(self.root)

        class H(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=root, **k)

            def log_message(self, *a):
                pass

            def do_GET(self):
                log.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/repo.git" % self.httpd.server_address[1]

    def git(self, *args, cwd=None):
        return subprocess.run(["git", *args], cwd=cwd, env=self.ENV, check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()

    def commit(self, files, tag=None):
        for rel, data in files.items():
            p = self.work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(data)
            if rel.endswith(".sh"):
                p.chmod(0o755)
        self.git("add", "-A", cwd=self.work)
        self.git("commit", "-q", "-m", "c", cwd=self.work)
        if tag:
            self.git("tag", "-a", "-m", tag, tag, cwd=self.work)
        self.git("push", "-q", "--tags", str(self.bare), "main", cwd=self.work)
        self.git("update-server-info", cwd=self.bare)
        return self.git("rev-parse", "HEAD", cwd=self.work)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_add_git(b, tmp_path):
    srv = GitServer(tmp_path)
    try:
        srv.commit({"a.txt": "a1\n", "sub/b.txt": "b-v1\n", "run.sh": "#!/bin/sh\n",
                    ".dockerignore": "a.txt\n"}, tag="v1")
        srv.commit({"sub/b.txt": "b-v2\n"})
        u = srv.url
        ctx = make_ctx(tmp_path / "ctx", BASE + """
FROM bb
ADD {u}#v1:sub /sub/
ADD {u}#main /src/
ADD --keep-git-dir=true {u} /full/
""".format(u=u))
        img, out, steps = b.export(ctx)
        fs = img.files()
        assert fs["sub/b.txt"].data == b"b-v1\n"  # the annotated tag's commit, its subdir
        assert "sub/a.txt" not in fs
        assert fs["src/a.txt"].data == b"a1\n"  # the repository's .dockerignore is content
        assert fs["src/sub/b.txt"].data == b"b-v2\n"
        assert fs["src/run.sh"].mode == 0o755 and fs["src/run.sh"].uid == 0
        assert not any(k.startswith("src/.git") for k in fs)
        assert "full/.git/HEAD" in fs and fs["full/sub/b.txt"].data == b"b-v2\n"

        # Unchanged commits: every ADD cached after resolving its ref (no object fetched).
        n = len(srv.log)
        rc, out, steps = b.build(ctx)
        assert not ran(steps), out
        assert srv.log[n:] and not [p for p in srv.log[n:] if "/objects/" in p], srv.log[n:]

        # A new commit on main: the steps that follow it run; the tag's content stays.
        srv.commit({"a.txt": "a2\n"})
        img, out, steps = b.export(ctx)
        assert any("#main" in k for k in ran(steps)), out
        assert not any("#v1" in k for k in ran(steps)), out
        fs = img.files()
        assert fs["src/a.txt"].data == b"a2\n" and fs["sub/b.txt"].data == b"b-v1\n"

        # Errors name the repository and the ref; COPY takes no repository.
        for df, want in (("ADD %s#nope /x/\n" % u, "nope"),
                         ("ADD %s#main:missing /x/\n" % u, "missing"),
                         ("ADD %s#main:../up /x/\n" % u, "leaves the repository"),
                         ("COPY %s /x/\n" % u, "ADD only"),
                         ("ADD --keep-git-dir=true a.txt /x/\n", "git sources only"),
                         ("ADD --checksum=sha256:%s %s /x/\n" % ("0" * 64, u),
                          "http(s) URL sources only")):
            c = make_ctx(tmp_path / ("e%d" % len(want)), BASE + "FROM bb\n" + df,
                         {"a.txt": "x"})
            rc, out, _ = b.build(c, check=False)
            assert rc != 0 and want in out, (df, out)
    finally:
        srv.stop()


# ---- build --check --------------------------------------------------------------------------


RULE_CASES = {
    "StageNameCasing": ("FROM scratch AS Builder\n", 1),
    "FromAsCasing": ("FROM scratch as builder\n", 1),
    "NoEmptyContinuation": ("FROM scratch\nLABEL a=1 \\\n\n    b=2\n", 3),
    "ConsistentInstructionCasing": ("FROM scratch\nLABEL a=1\nlabel b=2\n", 3),
    "DuplicateStageName": ("FROM scratch AS a\nFROM scratch AS a\n", 2),
    "ReservedStageName": ("FROM scratch AS context\n", 1),
    "JSONArgsRecommended": ("FROM scratch\nCMD run me\n", 2),
    "MaintainerDeprecated": ("FROM scratch\nMAINTAINER me@example.com\n", 2),
    "UndefinedArgInFrom": ("FROM scratch AS a\nFROM ${BASE:-a}\n", 2),
    "WorkdirRelativePath": ("FROM scratch\nWORKDIR app\n", 2),
    "UndefinedVar": ("FROM scratch\nARG A\nCOPY $A $MISSING /x/\n", 3),
    "MultipleInstructionsDisallowed": ("FROM scratch\nCMD [\"a\"]\nCMD [\"b\"]\n", 3),
    "LegacyKeyValueFormat": ("FROM scratch\nENV KEY value\n", 2),
    "RedundantTargetPlatform": ("FROM --platform=$TARGETPLATFORM scratch\n", 1),
    "SecretsUsedInArgOrEnv": ("FROM scratch\nARG GITHUB_TOKEN\n", 2),
    "InvalidDefaultArgInFrom": ("ARG TAG\nFROM busybox:${TAG}\n", 2),
    "FromPlatformFlagConstDisallowed": ("FROM --platform=linux/amd64 scratch\n", 1),
    "CopyIgnoredFile": ("FROM scratch\nCOPY secret.txt /\n", 2),
}


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_check_rule_and_skip(slipway, tmp_path, rule):
    df, line = RULE_CASES[rule]
    ctx = make_ctx(tmp_path / "ctx", df, {".dockerignore": "secret.txt\n", "secret.txt": "s"})
    p = slipway("build", "--check", ctx, check=False)
    want = "Dockerfile:%d: %s: " % (line, rule)
    assert p.returncode == 1 and want in p.stdout, p.stdout + p.stderr
    w = [l for l in p.stdout.splitlines() if want in l][0]
    assert "; " in w and "http" not in w  # one line: what is wrong; the fix, no link
    # The directive skips it (also given with others, and `all`).
    for d in ("# check=skip=%s\n" % rule, "# check=skip=JSONArgsRecommended,%s\n" % rule,
              "# check=skip=all\n"):
        make_ctx(tmp_path / "ctx", d + df)
        p = slipway("build", "--check", ctx, check=False)
        assert ": %s: " % rule not in p.stdout, (d, p.stdout)


def test_check_warns_on_build_and_error_directive(b, tmp_path):
    df = BASE + "FROM bb\nMAINTAINER me\nRUN true\n"
    ctx = make_ctx(tmp_path / "ctx", df)
    rc, out, steps = b.build(ctx)  # a warning does not stop a build
    assert "warning: " in out and ":5: MaintainerDeprecated:" in out, out
    ctx2 = make_ctx(tmp_path / "ctx2", "# check=error=true\n" + df)
    rc, out, steps = b.build(ctx2, check=False)
    assert rc == 1 and "check=error=true" in out and not ran(steps), out
    ctx3 = make_ctx(tmp_path / "ctx3", "# check=error=true;skip=MaintainerDeprecated\n" + df)
    b.build(ctx3)
    rc, out, _ = b.build(make_ctx(tmp_path / "ctx4", "# check=skip=NoSuchRule\n" + df),
                         check=False)
    assert rc == 0 and "NoSuchRule" in out, out


def test_check_runs_on_every_dockerfile_of_the_repo(slipway, tmp_path):
    """`build --check` on every Dockerfile of tests/ and examples/ and on the parser vectors:
    it exits 0 (clean), 1 (warnings) or 2 (a Dockerfile that does not parse), never crashes."""
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    files = []
    for top in ("tests", "examples"):
        for d, _, names in os.walk(os.path.join(repo, top)):
            for n in names:
                p = os.path.join(d, n)
                if "Dockerfile" in n or "parse_vectors" in d and not n.endswith(".md"):
                    files.append(p)
    assert len(files) > 20, files
    ctx = tmp_path / "empty"
    ctx.mkdir()
    for f in files:
        p = slipway("build", "--check", "-f", f, ctx, check=False)
        assert p.returncode in (0, 1, 2), (f, p.returncode, p.stderr[-2000:])
        assert "Check complete" in p.stdout or p.returncode == 2, (f, p.stdout, p.stderr)
