"""Registry faults (issue 18 §5): pull and push through tests/e2e/fault_proxy.py in front of a
real docker-registry. Each case must end (the subprocess timeout is the hang detector) with a
message naming the fault and the URL, and leave nothing in the store's tmp/. Deadlines are made
short with SLIPWAY_BLOB_TIMEOUT (seconds; a transfer's deadline is that + 1 s per 100 KiB)."""
import http.client
import json
import os
import subprocess

import pytest

import registry_fixtures as rf
from fault_proxy import FaultProxy

TIMEOUT = 90  # a case still running by then is a hang: the test fails


def run(slipway_bin, env, *args):
    return subprocess.run([slipway_bin, *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def tmp_leftovers(env):
    d = os.path.join(env["SLIPWAY_ROOT"], "tmp")
    return os.listdir(d) if os.path.isdir(d) else []


@pytest.fixture
def image(registry_open, tmp_path):
    """faults/img:latest in the registry: one small layer (a few KiB: the drip's 2 B/s would
    take an hour). Returns (layer digest, layer size) as the registry serves them."""
    layer = rf.make_tar([("etc", "dir", None),
                         ("etc/data.txt", "file",
                          "".join("fault line %d\n" % i for i in range(700)).encode())])
    layout = tmp_path / "layout"
    rf.write_oci_layout(layout, [{"layers": [layer], "comp": "none"}])
    rf.skopeo_push_layout(layout, "latest", "%s/faults/img:latest" % registry_open.host)
    # skopeo may recompress on the way: ask the registry what it serves
    c = http.client.HTTPConnection("127.0.0.1", registry_open.port, timeout=10)
    c.request("GET", "/v2/faults/img/manifests/latest", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    manifest = json.loads(c.getresponse().read())
    c.close()
    return manifest["layers"][0]["digest"], manifest["layers"][0]["size"]


@pytest.fixture
def proxy(registry_open):
    made = []

    def make(fault, **kw):
        p = FaultProxy(registry_open, fault, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def env_for(reg_env, **kw):
    env = dict(reg_env, SLIPWAY_BLOB_TIMEOUT="2", SLIPWAY_RETRIES="2")
    env.update({k: str(v) for k, v in kw.items()})
    return env


def blob_url(px, digest):
    return "http://%s/v2/faults/img/blobs/%s" % (px.host, digest)


# ---- pull ----

def test_pull_drip_ends_at_the_deadline(slipway_bin, reg_env, image, proxy):
    digest, size = image
    px = proxy("drip")
    env = env_for(reg_env)  # the stall detector (60 s at < 1 KiB/s) is not what ends it
    p = run(slipway_bin, env, "pull", "%s/faults/img" % px.host)
    assert p.returncode == 1
    assert blob_url(px, digest) in p.stderr, p.stderr
    assert "the registry stalled or is too slow: received" in p.stderr
    assert "of %d bytes, then the transfer's deadline passed" % size in p.stderr
    assert "SLIPWAY_BLOB_TIMEOUT" in p.stderr
    assert px.faults == 1  # one blob, one deadline: no new attempt once the time is spent
    assert tmp_leftovers(env) == []


def test_pull_stall_is_detected_and_bounded(slipway_bin, reg_env, image, proxy):
    digest, size = image
    px = proxy("stall")
    env = env_for(reg_env, SLIPWAY_HTTP_STALL_SECONDS=1, SLIPWAY_BLOB_TIMEOUT=3,
                  SLIPWAY_RETRIES=4)
    p = run(slipway_bin, env, "pull", "%s/faults/img" % px.host)
    assert p.returncode == 1
    # the stall detector cut the first attempt, the deadline the last one
    assert "retry 1/4: GET %s: Operation too slow" % blob_url(px, digest) in p.stderr, p.stderr
    assert "slipway: error: pull %s/faults/img:latest" % px.host in p.stderr
    assert blob_url(px, digest) in p.stderr.splitlines()[-1]
    assert "the registry stalled or is too slow" in p.stderr.splitlines()[-1]
    assert tmp_leftovers(env) == []


def test_pull_reset_mid_blob(slipway_bin, reg_env, image, proxy):
    digest, size = image
    px = proxy("reset")
    env = env_for(reg_env)
    p = run(slipway_bin, env, "pull", "%s/faults/img" % px.host)
    assert p.returncode == 1
    last = p.stderr.splitlines()[-1]
    assert blob_url(px, digest) in last, p.stderr
    assert "Connection reset by peer" in last
    assert "(received %d of %d bytes)" % (size // 2, size) in last
    assert "gave up after 3 attempts" in last
    assert px.faults == 3
    assert tmp_leftovers(env) == []


@pytest.mark.parametrize("status", [429, 503])
def test_pull_honours_retry_after(slipway_bin, reg_env, image, proxy, status):
    digest, size = image
    px = proxy("retry_after", times=1, retry_after="2", status=status)
    env = env_for(reg_env, SLIPWAY_BLOB_TIMEOUT=60)  # backoff alone would wait 0.02 s
    p = run(slipway_bin, env, "pull", "%s/faults/img" % px.host)
    assert p.returncode == 0, p.stderr
    assert ("retry 1/2: GET %s: HTTP %d, Retry-After: 2; waiting 2.0s"
            % (blob_url(px, digest), status)) in p.stderr
    hits = [t for t, m, path, _ in px.events if m == "GET" and path.endswith(digest)]
    assert len(hits) == 2
    assert hits[1] - hits[0] >= 1.9
    assert tmp_leftovers(env) == []


@pytest.mark.parametrize("delta", [100, -100])
def test_pull_wrong_size_in_manifest(slipway_bin, reg_env, image, proxy, delta):
    digest, size = image
    px = proxy("wrong_size", size_delta=delta)
    env = env_for(reg_env)
    p = run(slipway_bin, env, "pull", "%s/faults/img" % px.host)
    assert p.returncode == 1
    last = p.stderr.splitlines()[-1]
    assert "blob %s from %s: size differs: the manifest says %d bytes" % (
        digest, blob_url(px, digest), size + delta) in last, p.stderr
    if delta > 0:
        assert "the registry sent %d (%s, the right digest: the manifest is wrong)" % (
            size, digest) in last
    else:
        assert "bytes, the registry sent more; nothing was stored" in last
    assert "digest mismatch" not in last
    assert tmp_leftovers(env) == []


# ---- push ----

@pytest.fixture
def pulled(slipway_bin, reg_env, registry_open, image):
    """faults/img pulled straight from the registry (no proxy): the image to push."""
    ref = "%s/faults/img:latest" % registry_open.host
    p = run(slipway_bin, reg_env, "pull", ref)
    assert p.returncode == 0, p.stderr
    return ref


def registry_has(registry, repo, tag):
    c = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    c.request("HEAD", "/v2/%s/manifests/%s" % (repo, tag), headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    st = c.getresponse().status
    c.close()
    return st == 200


@pytest.mark.parametrize("status", [429, 503])
def test_push_honours_retry_after(slipway_bin, reg_env, registry_open, pulled, proxy, status):
    px = proxy("retry_after", times=1, retry_after="2", status=status)
    env = env_for(reg_env, SLIPWAY_BLOB_TIMEOUT=60)
    dest = "%s/pushed/img:latest" % px.host
    p = run(slipway_bin, env, "push", "--jobs", "1", pulled, dest)
    assert p.returncode == 0, p.stderr
    assert "HTTP %d, Retry-After: 2; waiting 2.0s" % status in p.stderr
    posts = [t for t, m, path, _ in px.events if m == "POST"]
    assert posts[1] - posts[0] >= 1.9
    assert registry_has(registry_open, "pushed/img", "latest")


def test_push_stall_ends_at_the_deadline(slipway_bin, reg_env, registry_open, pulled, proxy):
    px = proxy("stall")
    env = env_for(reg_env, SLIPWAY_HTTP_STALL_SECONDS=1, SLIPWAY_RETRIES=4)
    p = run(slipway_bin, env, "push", pulled, "%s/pushed/img:latest" % px.host)
    assert p.returncode == 1
    last = p.stderr.splitlines()[-1]
    assert "uploading blob sha256:" in last, p.stderr
    assert "PUT http://%s/v2/pushed/img/blobs/uploads/" % px.host in last
    assert "the registry stalled or is too slow: sent" in last
    assert not registry_has(registry_open, "pushed/img", "latest")
    assert tmp_leftovers(env) == []


def test_push_reset_gives_up(slipway_bin, reg_env, registry_open, pulled, proxy):
    px = proxy("reset")
    env = env_for(reg_env, SLIPWAY_RETRIES=1)
    p = run(slipway_bin, env, "push", pulled, "%s/pushed/img:latest" % px.host)
    assert p.returncode == 1
    last = p.stderr.splitlines()[-1]
    assert "PUT http://%s/v2/pushed/img/blobs/uploads/" % px.host in last, p.stderr
    assert "Connection reset by peer" in last or "Empty reply from server" in last
    assert "gave up after 2 upload attempts" in last
    assert not registry_has(registry_open, "pushed/img", "latest")
    assert tmp_leftovers(env) == []
