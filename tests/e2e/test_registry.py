"""slipway pull / push / login against real registries (Debian's docker-registry on loopback:
open, htpasswd basic auth, bearer tokens) and checked by an independent client (skopeo)."""
import gzip
import json
import os
import stat
import subprocess

import registry_fixtures as rf


def run(slipway_bin, env, *args, input=None, check=True, timeout=300):
    p = subprocess.run([slipway_bin, *args], env=env, input=input, capture_output=True,
                       encoding="utf-8", errors="replace", timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("slipway %s failed (%d):\n%s\n%s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def docker_config(env):
    return json.loads(open(os.path.join(env["DOCKER_CONFIG"], "config.json")).read())


# ---- login ----

def test_login_basic_writes_docker_config(slipway_bin, reg_env, registry_basic):
    r = registry_basic
    p = run(slipway_bin, reg_env, "login", "-u", r.user, "--password-stdin", r.host,
            input=r.password + "\n")
    assert "Login Succeeded" in p.stdout
    path = os.path.join(reg_env["DOCKER_CONFIG"], "config.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    auth = docker_config(reg_env)["auths"][r.host]["auth"]
    assert rf.base64.b64decode(auth).decode() == "alice:wonderland"


def test_login_keeps_other_entries(slipway_bin, reg_env, registry_basic):
    os.makedirs(reg_env["DOCKER_CONFIG"])
    with open(os.path.join(reg_env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump({"auths": {"other.example": {"auth": "eDp5"}}, "psFormat": "x"}, f)
    run(slipway_bin, reg_env, "login", "-u", "alice", "-p", "wonderland", registry_basic.host)
    cfg = docker_config(reg_env)
    assert cfg["psFormat"] == "x"
    assert cfg["auths"]["other.example"]["auth"] == "eDp5"
    assert registry_basic.host in cfg["auths"]


def test_login_bad_password_fails_and_writes_nothing(slipway_bin, reg_env, registry_basic):
    p = run(slipway_bin, reg_env, "login", "-u", "alice", "-p", "nope", registry_basic.host,
            check=False)
    assert p.returncode == 1
    assert "401" in p.stderr and registry_basic.host in p.stderr
    assert not os.path.exists(os.path.join(reg_env["DOCKER_CONFIG"], "config.json"))


def test_login_token_service(slipway_bin, reg_env, registry_token):
    r = registry_token
    run(slipway_bin, reg_env, "login", "-u", r.user, "-p", r.password, r.host)
    assert any(q["user"] == "bob" and q["status"] == 200 for q in r.tokens.requests)
    p = run(slipway_bin, reg_env, "login", "-u", r.user, "-p", "wrong", r.host, check=False)
    assert p.returncode == 1
    assert "token service refused" in p.stderr and "slipway login" in p.stderr


def test_login_usage_errors(slipway_bin, reg_env):
    p = run(slipway_bin, reg_env, "login", check=False)
    assert p.returncode == 2
    p = run(slipway_bin, reg_env, "login", "--password-stdin", "localhost:1", check=False,
            input="x\n")
    assert p.returncode == 2 and "--username" in p.stderr
    p = run(slipway_bin, reg_env, "login", "--help")
    assert "--password-stdin" in p.stdout


def test_login_unreachable_names_url(slipway_bin, reg_env):
    """A refused connection on this machine fails at once (nothing listens: retrying cannot
    help), naming the URL and asking whether the registry is up; a pull likewise."""
    port = rf.refused_port()
    p = run(slipway_bin, reg_env, "login", "-u", "a", "-p", "b", "127.0.0.1:%d" % port,
            check=False)
    assert p.returncode == 1
    assert "http://127.0.0.1:%d/v2/" % port in p.stderr
    assert "retry" not in p.stderr, p.stderr
    assert "nothing listens there on this machine: is the registry up?" in p.stderr, p.stderr
    p = run(slipway_bin, reg_env, "pull", "localhost:%d/x" % port, check=False)
    assert p.returncode == 1 and "retry" not in p.stderr, p.stderr
    assert "http://localhost:%d/v2/x/manifests/latest" % port in p.stderr, p.stderr


# ---- pull ----

def snapshot(env, diff_id):
    return os.path.join(env["SLIPWAY_ROOT"], "snapshots", diff_id.split(":")[1])


def blob(env, digest):
    return os.path.join(env["SLIPWAY_ROOT"], "blobs", "sha256", digest.split(":")[1])


def sha(data):
    return "sha256:" + rf.hashlib.sha256(data).hexdigest()


def tmp_leftovers(env):
    d = os.path.join(env["SLIPWAY_ROOT"], "tmp")
    return os.listdir(d) if os.path.isdir(d) else []


def layout_push(tmp_path, registry, repo, images, tag="latest", creds=None, all_images=False):
    layout = tmp_path / ("layout-" + repo.replace("/", "-") + "-" + tag)
    digests = rf.write_oci_layout(layout, images)
    rf.skopeo_push_layout(layout, tag, "%s/%s:%s" % (registry.host, repo, tag), creds=creds,
                          all_images=all_images)
    return digests


def test_pull_image_pushed_by_skopeo(slipway_bin, reg_env, registry_open, tmp_path):
    tar = rf.busybox_tar()
    digests = layout_push(tmp_path, registry_open, "team/busybox",
                          [{"layers": [tar], "tag": "v1"}], tag="v1")
    p = run(slipway_bin, reg_env, "pull", "%s/team/busybox:v1" % registry_open.host)
    assert digests["v1"] in p.stderr
    snap = snapshot(reg_env, sha(tar))
    assert open(os.path.join(snap, "etc/hello.txt")).read() == "hello from a registry\n"
    assert os.path.islink(os.path.join(snap, "bin/sh"))
    assert os.path.exists(blob(reg_env, digests["v1"]))
    assert tmp_leftovers(reg_env) == []
    # a second pull finds every layer in the store
    p = run(slipway_bin, reg_env, "pull", "%s/team/busybox:v1" % registry_open.host)
    assert "Already exists" in p.stderr


def test_pull_zstd_and_uncompressed_layers(slipway_bin, reg_env, registry_open, tmp_path):
    base = rf.busybox_tar()
    top = rf.make_tar([("etc", "dir", None), ("etc/top.txt", "file", b"top layer\n")])
    for comp in ("zstd", "none"):
        layout_push(tmp_path, registry_open, "comp/" + comp,
                    [{"layers": [base, top], "comp": comp, "tag": comp}], tag=comp)
        run(slipway_bin, reg_env, "pull", "%s/comp/%s:%s" % (registry_open.host, comp, comp))
        assert open(os.path.join(snapshot(reg_env, sha(top)), "etc/top.txt")).read() == \
            "top layer\n"


def test_pull_index_picks_platform(slipway_bin, reg_env, registry_open, tmp_path):
    amd = rf.make_tar([("arch.txt", "file", b"amd64\n")])
    arm = rf.make_tar([("arch.txt", "file", b"arm64\n")])
    d = layout_push(tmp_path, registry_open, "multi",
                    [{"layers": [amd], "arch": "amd64", "index_tag": "latest"},
                     {"layers": [arm], "arch": "arm64", "index_tag": "latest"}],
                    all_images=True)
    ref = "%s/multi:latest" % registry_open.host
    p = run(slipway_bin, reg_env, "pull", ref)
    assert d["amd64"] in p.stderr
    assert os.path.exists(snapshot(reg_env, sha(amd)))
    assert not os.path.exists(snapshot(reg_env, sha(arm)))
    p = run(slipway_bin, reg_env, "pull", "--platform", "linux/arm64", ref)
    assert d["arm64"] in p.stderr
    assert open(os.path.join(snapshot(reg_env, sha(arm)), "arch.txt")).read() == "arm64\n"
    p = run(slipway_bin, reg_env, "pull", "--platform", "linux/s390x", ref, check=False)
    assert p.returncode == 1
    assert "linux/s390x" in p.stderr and "linux/arm64" in p.stderr
    p = run(slipway_bin, reg_env, "pull", "--platform", "bogus", ref, check=False)
    assert p.returncode == 2


def test_pull_missing_image_names_url(slipway_bin, reg_env, registry_open):
    p = run(slipway_bin, reg_env, "pull", "%s/nope:latest" % registry_open.host, check=False)
    assert p.returncode == 1
    assert "http://%s/v2/nope/manifests/latest" % registry_open.host in p.stderr
    assert "404" in p.stderr


def test_pull_digest_mismatch_leaves_nothing(slipway_bin, reg_env, registry_open, tmp_path):
    tar = rf.busybox_tar()
    layout = tmp_path / "layout"
    digests = rf.write_oci_layout(layout, [{"layers": [tar]}])
    rf.skopeo_push_layout(layout, "latest", "%s/corrupt:latest" % registry_open.host)
    manifest = json.loads((layout / "blobs/sha256" / digests["latest"][7:]).read_text())
    layer = manifest["layers"][0]["digest"]
    data = registry_open.blob_data_path(layer)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one byte flipped
    data.write_bytes(bytes(raw))
    p = run(slipway_bin, reg_env, "pull", "%s/corrupt:latest" % registry_open.host, check=False)
    assert p.returncode == 1
    assert "digest mismatch" in p.stderr and layer in p.stderr
    assert not os.path.exists(blob(reg_env, layer))
    assert not os.path.exists(blob(reg_env, digests["latest"]))
    assert not os.path.exists(snapshot(reg_env, sha(tar)))
    assert tmp_leftovers(reg_env) == []


EVIL = {
    "dotdot": [("../../../../../../tmp/{m}", "file", b"escaped\n")],
    "absolute": [("/tmp/{m}", "file", b"escaped\n")],
    "symlink-then-file": [("evil", "symlink", "/tmp"), ("evil/{m}", "file", b"escaped\n")],
    "hardlink-outside": [("passwd", "hardlink", "../../../../../../etc/passwd")],
}


def test_pull_refuses_malicious_layers(slipway_bin, reg_env, registry_open, tmp_path):
    for name, entries in EVIL.items():
        marker = "slipway-escape-%s-%d" % (name, os.getpid())
        tar = rf.make_tar([(n.format(m=marker), k, p) for n, k, p in entries])
        layout_push(tmp_path, registry_open, "evil/" + name, [{"layers": [tar]}])
        p = run(slipway_bin, reg_env, "pull", "%s/evil/%s" % (registry_open.host, name),
                check=False)
        assert p.returncode != 0, name
        # Refused at the door, naming the layer and the entry; nothing of it stored.
        assert "layer sha256:" in p.stderr and "entry `" in p.stderr, (name, p.stderr)
        assert not os.path.exists("/tmp/" + marker), name
        assert not os.path.exists(snapshot(reg_env, sha(tar))), name
        assert not os.path.exists(blob(reg_env, sha(gzip.compress(tar, mtime=0)))), name
    assert open("/etc/passwd").read().startswith("root:")


def test_pull_retries_dropped_connection(slipway_bin, reg_env, registry_open, tmp_path,
                                         flaky_proxy):
    tar = rf.busybox_tar()
    layout_push(tmp_path, registry_open, "flaky", [{"layers": [tar]}])
    proxy = flaky_proxy(registry_open, fail=2)
    p = run(slipway_bin, reg_env, "pull", "%s/flaky:latest" % proxy.host)
    assert "retry 1/4: GET http://%s/v2/flaky/blobs/sha256:" % proxy.host in p.stderr
    assert proxy.broken == 2
    assert os.path.exists(snapshot(reg_env, sha(tar)))


def test_pull_gives_up_on_hangups(slipway_bin, reg_env, registry_open, tmp_path, flaky_proxy):
    layout_push(tmp_path, registry_open, "flaky", [{"layers": [rf.busybox_tar()]}])
    proxy = flaky_proxy(registry_open, fail=-1)
    env = dict(reg_env, SLIPWAY_RETRIES="2")
    p = run(slipway_bin, env, "pull", "%s/flaky:latest" % proxy.host, check=False)
    assert p.returncode == 1
    assert "gave up after 3 attempts" in p.stderr
    assert "http://%s/v2/flaky/blobs/sha256:" % proxy.host in p.stderr
    assert p.stderr.count("slipway: retry") >= 2
    assert tmp_leftovers(env) == []


# ---- push ----

def pulled_image(slipway_bin, env, tmp_path, registry, repo="src/busybox"):
    """An image in the store, pulled from `registry` (pushed there by skopeo)."""
    tar = rf.busybox_tar()
    top = rf.make_tar([("etc", "dir", None), ("etc/top.txt", "file", b"pushed by slipway\n")])
    d = layout_push(tmp_path, registry, repo, [{"layers": [tar, top]}])
    ref = "%s/%s:latest" % (registry.host, repo)
    run(slipway_bin, env, "pull", ref)
    return ref, d["latest"]


def test_push_read_by_skopeo_and_mounts(slipway_bin, reg_env, registry_open, tmp_path):
    src, digest = pulled_image(slipway_bin, reg_env, tmp_path, registry_open)
    dest = "%s/other/app:v2" % registry_open.host
    p = run(slipway_bin, reg_env, "push", src, dest)
    assert "Mounted from src/busybox" in p.stderr
    assert "digest: %s" % digest in p.stdout
    info = json.loads(rf.skopeo("inspect", "--tls-verify=false", "docker://" + dest).stdout)
    assert info["Digest"] == digest
    out = tmp_path / "copied"
    rf.skopeo("copy", "--src-tls-verify=false", "docker://" + dest, "oci:%s:x" % out)
    assert (out / "blobs/sha256" / digest[7:]).exists()
    # everything is there now: a second push uploads nothing
    t = rf.time.time()
    p = run(slipway_bin, reg_env, "push", src, dest)
    assert p.stderr.count("already exists") == 3 and "Pushed" not in p.stderr
    assert rf.time.time() - t < 5


def test_push_chunked_with_basic_auth(slipway_bin, reg_env, registry_open, registry_basic,
                                      tmp_path):
    src, digest = pulled_image(slipway_bin, reg_env, tmp_path, registry_open)
    dest = "%s/private/app:1.0" % registry_basic.host
    p = run(slipway_bin, reg_env, "push", src, dest, check=False)
    assert p.returncode == 1
    assert "401" in p.stderr and "slipway login %s" % registry_basic.host in p.stderr
    run(slipway_bin, reg_env, "login", "-u", "alice", "-p", "wonderland", registry_basic.host)
    p = run(slipway_bin, reg_env, "push", "--chunk-size", "100000", src, dest)
    assert "Pushed" in p.stderr
    info = json.loads(rf.skopeo("inspect", "--tls-verify=false", "--creds", "alice:wonderland",
                                "docker://" + dest).stdout)
    assert info["Digest"] == digest
    out = tmp_path / "copied"
    rf.skopeo("copy", "--src-tls-verify=false", "--src-creds", "alice:wonderland",
              "docker://" + dest, "oci:%s:x" % out)
    # and slipway pulls it back into a fresh store
    env2 = dict(reg_env, SLIPWAY_ROOT=str(tmp_path / "root2"))
    p = run(slipway_bin, env2, "pull", dest)
    assert digest in p.stderr


def test_push_survives_dropped_uploads(slipway_bin, reg_env, registry_open, tmp_path,
                                       flaky_proxy):
    src, digest = pulled_image(slipway_bin, reg_env, tmp_path, registry_open)
    # monolithic: the PUT landed but its answer was lost; HEAD finds the blob
    proxy = flaky_proxy(registry_open, drop_uploads=1)
    dest = "%s/drop/mono:1" % proxy.host
    p = run(slipway_bin, reg_env, "push", "-j", "1", src, dest)
    assert proxy.dropped == ["PUT"]
    assert "digest: %s" % digest in p.stdout
    # chunked: a PATCH is lost; the blob is not there, so a new session uploads it again
    proxy = flaky_proxy(registry_open, drop_uploads=1)
    dest = "%s/drop/chunked:1" % proxy.host
    p = run(slipway_bin, reg_env, "push", "-j", "1", "--chunk-size", "100000", src, dest)
    assert proxy.dropped == ["PATCH"]
    assert "retry 1/4: upload of sha256:" in p.stderr and "new upload session" in p.stderr
    out = tmp_path / "copied"  # read straight from the registry behind the proxy
    rf.skopeo("copy", "--src-tls-verify=false",
              "docker://%s/drop/chunked:1" % registry_open.host, "oci:%s:x" % out)
    assert (out / "blobs/sha256" / digest[7:]).exists()


def test_bearer_token_flow(slipway_bin, reg_env, registry_token, tmp_path):
    r = registry_token
    creds = "%s:%s" % (r.user, r.password)
    tar = rf.busybox_tar()
    layout_push(tmp_path, r, "public/busybox", [{"layers": [tar]}], creds=creds)
    layout_push(tmp_path, r, "private/busybox", [{"layers": [tar]}], creds=creds)
    r.tokens.requests.clear()
    # anonymous pull of a public repository
    run(slipway_bin, reg_env, "pull", "%s/public/busybox" % r.host)
    anon = [q for q in r.tokens.requests if q["user"] is None]
    assert anon and anon[0]["scopes"] == ["repository:public/busybox:pull"]
    assert anon[0]["service"] == r.tokens.service
    # a private one needs a login
    p = run(slipway_bin, reg_env, "pull", "%s/private/busybox" % r.host, check=False)
    assert p.returncode == 1 and "slipway login %s" % r.host in p.stderr
    run(slipway_bin, reg_env, "login", "-u", r.user, "-p", r.password, r.host)
    run(slipway_bin, reg_env, "pull", "%s/private/busybox" % r.host)
    # push with a pull,push token; the mount asks for both repositories' scopes
    p = run(slipway_bin, reg_env, "push", "%s/private/busybox" % r.host,
            "%s/private/copy:1" % r.host)
    assert "Mounted from" in p.stderr
    scopes = [s for q in r.tokens.requests for s in q["scopes"]]
    assert "repository:private/copy:pull,push" in scopes
    assert any(q["user"] == "bob" for q in r.tokens.requests)


def test_push_usage(slipway_bin, reg_env):
    p = run(slipway_bin, reg_env, "push", check=False)
    assert p.returncode == 2
    p = run(slipway_bin, reg_env, "push", "--help")
    assert "--chunk-size" in p.stdout
    p = run(slipway_bin, reg_env, "pull", "--help")
    assert "--platform" in p.stdout


# ---- with the rest of slipway: run what was pulled, build FROM it, push the build ----

def test_pull_run_build_push(slipway_bin, reg_env, registry_open, tmp_path):
    r = registry_open
    layout_push(tmp_path, r, "base/busybox",
                [{"layers": [rf.busybox_tar()], "cmd": ["/bin/cat", "/etc/hello.txt"]}])
    base = "%s/base/busybox:latest" % r.host
    run(slipway_bin, reg_env, "pull", base)
    p = run(slipway_bin, reg_env, "run", "--rm", base)
    assert p.stdout == "hello from a registry\n"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM %s\nRUN echo built > /built.txt\n"
                                    "CMD [\"/bin/cat\", \"/built.txt\"]\n" % base)
    run(slipway_bin, reg_env, "build", "--progress", "plain", "-t", "app:1", str(ctx))
    dest = "%s/team/app:1" % r.host
    p = run(slipway_bin, reg_env, "push", "app:1", dest)
    assert "Mounted from base/busybox" in p.stderr  # the base layer came from this registry
    digest = p.stdout.split("digest: ")[1].split()[0]
    info = json.loads(rf.skopeo("inspect", "--tls-verify=false", "docker://" + dest).stdout)
    assert info["Digest"] == digest and len(info["Layers"]) == 2
    # a fresh store pulls the built image back and runs it
    env2 = dict(reg_env, SLIPWAY_ROOT=str(tmp_path / "root2"))
    run(slipway_bin, env2, "pull", dest)
    assert run(slipway_bin, env2, "run", "--rm", dest).stdout == "built\n"


def test_reference_normalisation_and_scheme(slipway_bin, reg_env):
    # Docker Hub names go to registry-1.docker.io over HTTPS (unreachable here: the URL shows)
    p = run(slipway_bin, reg_env, "pull", "python:slim", check=False)
    assert p.returncode == 1
    assert "pull docker.io/library/python:slim" in p.stderr
    assert "https://registry-1.docker.io/v2/library/python/manifests/slim" in p.stderr
    p = run(slipway_bin, reg_env, "pull", "registry.invalid:5000/x", check=False)
    assert "https://registry.invalid:5000/v2/x/manifests/latest" in p.stderr
    # a name that does not resolve fails at once (no retries), saying so
    assert "retry" not in p.stderr and "does not resolve" in p.stderr, p.stderr
    p = run(slipway_bin, reg_env, "pull", "--insecure-registry", "registry.invalid:5000",
            "registry.invalid:5000/x", check=False)
    assert "http://registry.invalid:5000/v2/x/manifests/latest" in p.stderr
    p = run(slipway_bin, reg_env, "pull", "Bad:Name", check=False)
    assert p.returncode == 2


def test_build_pulls_missing_from_image(slipway_bin, reg_env, registry_open, tmp_path):
    r = registry_open
    layout_push(tmp_path, r, "base/busybox", [{"layers": [rf.busybox_tar()]}])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM %s/base/busybox\nRUN cat /etc/hello.txt > /copy.txt\n"
                                    % r.host)
    run(slipway_bin, reg_env, "build", "--progress", "plain", "-t", "auto:1", str(ctx))
    p = run(slipway_bin, reg_env, "run", "--rm", "auto:1", "/bin/cat", "/copy.txt")
    assert p.stdout == "hello from a registry\n"
    (ctx / "Dockerfile").write_text("FROM %s/base/missing:1\n" % r.host)
    p = run(slipway_bin, reg_env, "build", "--progress", "plain", str(ctx), check=False)
    assert p.returncode == 1
    assert "is not in the store and could not be pulled" in p.stderr
    assert "http://%s/v2/base/missing/manifests/1: HTTP 404" % r.host in p.stderr


def test_docker_schema2_pull_and_push(slipway_bin, reg_env, registry_open, tmp_path):
    r = registry_open
    tar = rf.busybox_tar()
    layout = tmp_path / "layout"
    rf.write_oci_layout(layout, [{"layers": [tar]}])
    rf.skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:%s:latest" % layout,
              "docker://%s/v2s2/busybox:latest" % r.host)
    raw = json.loads(rf.skopeo("inspect", "--raw", "--tls-verify=false",
                               "docker://%s/v2s2/busybox:latest" % r.host).stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    p = run(slipway_bin, reg_env, "pull", "%s/v2s2/busybox" % r.host)
    assert os.path.exists(os.path.join(snapshot(reg_env, sha(tar)), "etc/hello.txt"))
    digest = p.stderr.split("Digest: ")[1].split()[0]
    # pushed back byte for byte: same digest, still a Docker schema 2 manifest
    dest = "%s/v2s2/copy:1" % r.host
    p = run(slipway_bin, reg_env, "push", "%s/v2s2/busybox" % r.host, dest)
    assert "digest: %s" % digest in p.stdout
    raw2 = json.loads(rf.skopeo("inspect", "--raw", "--tls-verify=false",
                                "docker://" + dest).stdout)
    assert raw2 == raw
