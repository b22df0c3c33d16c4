"""Registry build cache (`build --cache-to/--cache-from type=registry`) against a real
docker-registry on loopback: a build in store A exports its cache records; a build in an empty
store B imports them. RUN steps report to a tiny HTTP server on the host (RUN shares the host's
network), so "did not run" is observed, not inferred from the progress output alone."""
import http.server
import json
import os
import threading
import urllib.request

import pytest

import registry_fixtures as rf
from conftest import SlipwayRunner
from test_build import cached, make_ctx, parse_steps, ran


class Marker:
    """Counts GET /<name> from RUN steps (busybox wget)."""

    def __init__(self):
        self.hits = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.hits.append(self.path.lstrip("/"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def run(self, name, then):
        return "RUN wget -q -O /dev/null http://127.0.0.1:%d/%s && %s\n" % (self.port, name, then)


@pytest.fixture
def marker():
    m = Marker()
    yield m
    m.srv.shutdown()


def dockerfile(m):
    return ("FROM scratch AS bb\n"
            "COPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            "FROM bb AS mid\n" + m.run("mid", "echo mid > /mid.txt") +
            "FROM bb\n"
            "COPY --from=mid /mid.txt /mid.txt\n"
            "COPY a.txt /a.txt\n" + m.run("final1", "cat /a.txt > /b.txt") +
            "COPY c.txt /c.txt\n" + m.run("final2", "cat /c.txt > /d.txt") +
            'CMD ["sh"]\n')


@pytest.fixture
def stores(slipway_bin, reg_env, tmp_path):
    env = {k: reg_env[k] for k in ("DOCKER_CONFIG", "HOME", "SLIPWAY_RETRY_BASE_MS")}
    env["SLIPWAY_RETRIES"] = "1"
    a = SlipwayRunner(slipway_bin, tmp_path / "storeA")
    b = SlipwayRunner(slipway_bin, tmp_path / "storeB")
    return a, b, env


def build(s, env, ctx, *args, check=True):
    p = s("build", "--progress=plain", *args, ctx, check=False, env=env)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def image_id(s, ref="img"):
    return s.inspect(ref)["Id"]


def test_cache_max_all_steps_hit_in_empty_store(stores, registry_open, marker, tmp_path):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    cache = "%s/cache/app:buildcache" % registry_open.host
    build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=%s,mode=max" % cache)
    assert sorted(marker.hits) == ["final1", "final2", "mid"]
    marker.hits.clear()

    p = build(b, env, ctx, "-t", "img", "--cache-from", "type=registry,ref=" + cache)
    steps = parse_steps(p.stderr)
    assert ran(steps) == [], p.stderr
    assert len(cached(steps)) == 8, p.stderr
    assert marker.hits == []
    assert image_id(b) == image_id(a)
    out = b("run", "--rm", "img", "cat", "/mid.txt", "/b.txt", "/d.txt").stdout
    assert out == "mid\na\nc\n"

    # One changed file: only the steps after it run.
    with open(os.path.join(ctx, "c.txt"), "w") as f:
        f.write("c2\n")
    p = build(b, env, ctx, "-t", "img2", "--cache-from", cache)  # plain ref = type=registry
    steps = parse_steps(p.stderr)
    assert [k.split("] ", 1)[1] for k in ran(steps)] == [
        "COPY c.txt /c.txt",
        "RUN wget -q -O /dev/null http://127.0.0.1:%d/final2 && cat /c.txt > /d.txt" % marker.port]
    assert marker.hits == ["final2"]


def test_cache_min_exports_final_stages_only(stores, registry_open, marker, tmp_path):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    cache = "%s/cache/app:min" % registry_open.host
    build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=" + cache)  # default min
    marker.hits.clear()
    p = build(b, env, ctx, "-t", "img", "--cache-from", "type=registry,ref=" + cache)
    steps = parse_steps(p.stderr)
    # The intermediate stage `mid` was not exported: its RUN runs; the rest hits (the COPY
    # --from keys on the copied content, which is the same).
    assert [k for k in ran(steps)] == [k for k in steps if "/mid " in k], p.stderr
    assert marker.hits == ["mid"]
    assert image_id(b) == image_id(a)


def test_cache_from_unreachable_or_missing_warns(stores, registry_open, marker, tmp_path,
                                                busybox_rootfs_tar):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    dead = "127.0.0.1:%d/cache/app:x" % rf.refused_port()
    missing = "%s/cache/none:x" % registry_open.host
    image = "%s/plain/image:1" % registry_open.host  # an image, not a cache (docker's habit)
    a("import", busybox_rootfs_tar, "bb:1")
    a("push", "-q", "bb:1", image, env=env)
    p = build(b, env, ctx, "-t", "img", "--cache-from", "type=registry,ref=" + dead,
              "--cache-from", missing, "--cache-from", image)
    assert "--cache-from type=registry,ref=" not in p.stderr
    assert ("--cache-from %s" % dead) in p.stderr and "building without it" in p.stderr
    assert ("--cache-from %s" % missing) in p.stderr and "404" in p.stderr
    assert ("--cache-from %s" % image) in p.stderr and "not a slipway build cache" in p.stderr
    assert sorted(marker.hits) == ["final1", "final2", "mid"]
    assert b.inspect("img")["Id"].startswith("sha256:")


def test_cache_to_failure_is_an_error_after_the_image(stores, marker, tmp_path):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    dead = "127.0.0.1:%d/cache/app:x" % rf.refused_port()
    p = build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=" + dead, check=False)
    assert p.returncode == 1, p.stderr
    assert dead in p.stderr and "slipway login" in p.stderr
    assert a.inspect("img")["Id"].startswith("sha256:")  # the image was stored


def test_cache_spec_errors(stores, tmp_path, marker):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    p = build(a, env, ctx, "--cache-to", "type=local,dest=/tmp/x", check=False)
    assert p.returncode == 2 and "only type=registry" in p.stderr
    p = build(a, env, ctx, "--cache-to", "type=registry", check=False)
    assert p.returncode == 2 and "ref=" in p.stderr


def test_cache_with_basic_auth(stores, registry_basic, marker, tmp_path):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    cache = "%s/cache/app:auth" % registry_basic.host
    # Without credentials: the export fails (401) and says what to do.
    p = build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=" + cache, check=False)
    assert p.returncode == 1 and "401" in p.stderr and "slipway login" in p.stderr
    a("login", "-u", "alice", "-p", "wonderland", registry_basic.host, env=env)  # B shares it
    build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=%s,mode=max" % cache)
    marker.hits.clear()
    p = build(b, env, ctx, "-t", "img", "--cache-from", cache)
    assert ran(parse_steps(p.stderr)) == [], p.stderr
    assert marker.hits == []
    assert image_id(b) == image_id(a)


def test_cache_corrupt_layers_are_refused(stores, registry_open, marker, tmp_path):
    a, b, env = stores
    ctx = make_ctx(tmp_path / "ctx", dockerfile(marker), {"a.txt": "a\n", "c.txt": "c\n"})
    cache = "%s/cache/app:bad" % registry_open.host
    build(a, env, ctx, "-t", "img", "--cache-to", "type=registry,ref=%s,mode=max" % cache)
    manifest = json.loads(urllib.request.urlopen(urllib.request.Request(
        "http://%s/v2/cache/app/manifests/bad" % registry_open.host,
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).read())
    assert manifest["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
    for layer in manifest["layers"]:  # same length, other bytes
        path = registry_open.blob_data_path(layer["digest"])
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    marker.hits.clear()
    p = build(b, env, ctx, "-t", "img", "--cache-from", cache)
    assert "digest mismatch" in p.stderr and "running the step" in p.stderr
    assert sorted(marker.hits) == ["final1", "final2", "mid"]  # every step with a layer ran
    assert b("run", "--rm", "img", "cat", "/d.txt").stdout == "c\n"
