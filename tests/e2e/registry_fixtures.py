"""Registry fixtures for the end-to-end tests (imported by conftest.py).

Real components only: Debian's `docker-registry` started on 127.0.0.1 with a temp config and
storage dir, open, behind htpasswd basic auth, or behind a bearer-token service written here
(stdlib http.server; JWTs signed RS256 with python3-jwt, the registry trusting a self-signed
cert made with openssl). Also an OCI-layout builder so skopeo can push images that slipway then
pulls, and a proxy that hangs up mid-blob to exercise retries.
"""
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import socket
import socketserver
import subprocess
import tarfile
import threading
import time
import urllib.parse

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_REFUSING = []


def refused_port():
    """A loopback port where a connection is refused for the rest of the test session: bound
    but never listening, so no other process (another test run at the same time) can take it
    and answer."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _REFUSING.append(s)
    return s.getsockname()[1]


def _wait_http(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("docker-registry exited with %d" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v2/")
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("docker-registry did not answer on port %d" % port)


class Registry:
    """A running docker-registry. host is "127.0.0.1:PORT" (plain HTTP: slipway's default)."""

    def __init__(self, tmp, auth=None, name="registry"):
        self.dir = tmp / name
        self.storage = self.dir / "storage"
        self.storage.mkdir(parents=True)
        self.auth = auth or {}
        self.log = open(self.dir / "registry.log", "wb")
        # A free port is free only until someone else takes it (another test run at the same
        # time): a registry that could not bind it exits, and we try another.
        for attempt in range(8):
            self.port = free_port()
            self.host = "127.0.0.1:%d" % self.port
            self.proc = self._start()
            try:
                _wait_http(self.port, self.proc)
                return
            except RuntimeError:
                if self.proc.poll() is None or attempt == 7:
                    self.stop()
                    raise

    def _start(self):
        cfg = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "slipway-test"},
        }
        if self.auth:
            cfg["auth"] = self.auth
        # docker-registry reads YAML; JSON is YAML.
        self.config = self.dir / "config.yml"
        self.config.write_text(json.dumps(cfg))
        return subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)],
                                stdout=self.log, stderr=subprocess.STDOUT)

    def blob_data_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return (self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- bearer token service ----

class TokenService:
    """Issues registry JWTs. users: {name: password}; anonymous callers get `pull` only on
    repositories listed in public_repos. Every request is logged in self.requests."""

    def __init__(self, tmp, users, public_repos=()):
        import jwt  # python3-jwt (Debian), see scripts/deps.sh

        self.jwt = jwt
        self.users = dict(users)
        self.public = set(public_repos)
        self.requests = []
        self.dir = tmp / "token"
        self.dir.mkdir()
        self.key = self.dir / "key.pem"
        self.cert = self.dir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=slipway-test-token", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.key_pem = self.key.read_bytes()
        self.service = "slipway-test-registry"
        self.issuer = "slipway-test-issuer"
        svc = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                svc.handle(self)

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def registry_auth(self):
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.cert)}}

    def handle(self, h):
        url = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(url.query)
        user = None
        hdr = h.headers.get("Authorization", "")
        if hdr.startswith("Basic "):
            u, _, p = base64.b64decode(hdr[6:]).decode().partition(":")
            if self.users.get(u) != p:
                self.requests.append({"user": u, "scopes": q.get("scope", []), "status": 401})
                h.send_response(401)
                h.send_header("Content-Type", "application/json")
                h.end_headers()
                h.wfile.write(b'{"details":"invalid credentials"}')
                return
            user = u
        access = []
        for scope in q.get("scope", []):
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if user is None:
                wanted = [a for a in wanted if a == "pull" and name in self.public]
            access.append({"type": typ, "name": name, "actions": wanted})
        self.requests.append({"user": user, "scopes": q.get("scope", []), "status": 200,
                              "service": q.get("service", [None])[0]})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": base64.b16encode(os.urandom(8)).decode(), "access": access}
        tok = self.jwt.encode(claims, self.key_pem, algorithm="RS256",
                              headers={"x5c": [self.x5c]})
        body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- a proxy that hangs up mid-blob ----

class FlakyProxy:
    """Forwards to a registry; the first `fail` GETs of blobs send the headers and half the body,
    then close the connection. fail=-1 breaks every blob GET. The first `drop_uploads` PUT/PATCH
    requests of blob uploads reach the registry, but the connection is closed before the
    answer (the client cannot know whether they landed)."""

    def __init__(self, target_port, fail, drop_uploads=0):
        self.target = target_port
        self.fail = fail
        self.drop_uploads = drop_uploads
        self.dropped = []
        self.broken = 0
        self.lock = threading.Lock()
        px = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                c = http.client.HTTPConnection("127.0.0.1", px.target, timeout=30)
                # Host is kept, so the registry's Location headers point back at the proxy.
                hdrs = dict(self.headers.items())
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                if self.command in ("PUT", "PATCH") and "/blobs/uploads/" in self.path:
                    with px.lock:
                        drop = len(px.dropped) < px.drop_uploads
                        if drop:
                            px.dropped.append(self.command)
                    if drop:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                cut = False
                if self.command == "GET" and "/blobs/sha256:" in self.path and r.status == 200:
                    with px.lock:
                        if px.fail < 0 or px.broken < px.fail:
                            px.broken += 1
                            cut = True
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data[: len(data) // 2] if cut else data)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = forward

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- OCI layouts built by hand (skopeo pushes them) ----

def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(entries):
    """entries: list of (name, kind, payload) with kind in file|dir|symlink|hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
                tf.addfile(ti)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size, ti.mode = len(data), 0o755
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def busybox_tar(extra=()):
    bb = open(BUSYBOX, "rb").read()
    entries = [("bin", "dir", None), ("bin/busybox", "file", bb), ("bin/sh", "symlink", "busybox"),
               ("bin/cat", "symlink", "busybox"), ("bin/echo", "symlink", "busybox"),
               ("etc", "dir", None), ("etc/hello.txt", "file", b"hello from a registry\n")]
    return make_tar(entries + list(extra))


def compress(data, comp):
    if comp == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if comp == "zstd":
        out = subprocess.run(["zstd", "-q", "-c"], input=data, check=True,
                             capture_output=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def write_oci_layout(path, images):
    """images: list of dicts {layers: [tar bytes], comp: gzip|zstd|none, arch, cmd, tag}.
    One entry per image in index.json; with `index_tag` on all of them they are grouped in a
    nested image index (a multi-platform image). Returns {tag or arch: manifest digest}."""
    path.mkdir(parents=True, exist_ok=True)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data):
        d = _sha(data)
        (blobs / d[7:]).write_bytes(data)
        return d

    out, descs = {}, []
    for img in images:
        layer_descs, diff_ids = [], []
        for tar in img["layers"]:
            blob, mt = compress(tar, img.get("comp", "gzip"))
            layer_descs.append({"mediaType": mt, "digest": put(blob), "size": len(blob)})
            diff_ids.append(_sha(tar))
        config = {"architecture": img.get("arch", "amd64"), "os": "linux",
                  "config": {"Cmd": img.get("cmd", ["/bin/sh"]), "Env": ["PATH=/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cj = json.dumps(config).encode()
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": put(cj), "size": len(cj)},
                    "layers": layer_descs}
        mj = json.dumps(manifest).encode()
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(mj),
                "size": len(mj), "platform": {"architecture": img.get("arch", "amd64"),
                                              "os": "linux"}}
        key = img.get("arch", "amd64") if img.get("index_tag") else img.get("tag", "latest")
        out[key] = desc["digest"]
        descs.append((img, desc))
    entries = []
    groups = {}
    for img, desc in descs:
        if img.get("index_tag"):
            groups.setdefault(img["index_tag"], []).append(desc)
        else:
            d = dict(desc)
            d["annotations"] = {"org.opencontainers.image.ref.name": img.get("tag", "latest")}
            entries.append(d)
    for tag, ds in groups.items():
        ij = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": ds}).encode()
        out[tag] = put(ij)
        entries.append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": out[tag],
                        "size": len(ij),
                        "annotations": {"org.opencontainers.image.ref.name": tag}})
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return out


def skopeo(*args, check=True):
    return subprocess.run(["skopeo", "--insecure-policy", *args], check=check,
                          capture_output=True, text=True, timeout=300)


def skopeo_push_layout(layout, tag, dest, creds=None, all_images=False):
    args = ["copy", "--dest-tls-verify=false"]
    if all_images:
        args.append("--all")
    if creds:
        args += ["--dest-creds", creds]
    return skopeo(*args, "oci:%s:%s" % (layout, tag), "docker://" + dest)


# ---- fixtures ----

@pytest.fixture
def reg_env(tmp_path):
    """Environment for running slipway against test registries: a temp store and a temp docker
    config dir (so ~/.docker/config.json is never touched), fast retries."""
    env = dict(os.environ)
    env["SLIPWAY_ROOT"] = str(tmp_path / "root")
    env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    env["SLIPWAY_RETRY_BASE_MS"] = "20"
    env["HOME"] = str(tmp_path / "home")
    return env


@pytest.fixture
def registry_open(tmp_path):
    r = Registry(tmp_path, name="open")
    yield r
    r.stop()


@pytest.fixture
def registry_basic(tmp_path):
    """docker-registry behind htpasswd (bcrypt) basic auth; user `alice`, password `wonderland`."""
    htp = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-B", "-b", "-c", str(htp), "alice", "wonderland"], check=True,
                   capture_output=True)
    r = Registry(tmp_path, auth={"htpasswd": {"realm": "slipway-test", "path": str(htp)}},
                 name="basic")
    r.user, r.password = "alice", "wonderland"
    yield r
    r.stop()


@pytest.fixture
def registry_token(tmp_path):
    """docker-registry behind a bearer-token service; user `bob`, password `builder`;
    anonymous pull allowed on repository `public/busybox`. r.tokens is the service."""
    ts = TokenService(tmp_path, {"bob": "builder"}, public_repos=["public/busybox"])
    r = Registry(tmp_path, auth=ts.registry_auth(), name="token")
    r.tokens = ts
    r.user, r.password = "bob", "builder"
    yield r
    r.stop()
    ts.stop()


@pytest.fixture
def flaky_proxy():
    made = []

    def make(target, fail=0, drop_uploads=0):
        p = FlakyProxy(target.port, fail, drop_uploads)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
