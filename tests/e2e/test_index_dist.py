"""Image indexes (multi-platform images) everywhere an image goes: push (every manifest by
digest, then the index under the tag), pull --all-platforms / --platform / the host's default,
save and load (OCI layout, oci-archive, docker-archive), and hostile indexes refused at every
door with nothing stored. Real components: Debian's docker-registry on loopback and skopeo as
the independent reader. The two-platform images are hand-made OCI layouts (an amd64 and an
arm64 image of one small layer each): distribution needs no emulation."""
import gzip
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tarfile

import registry_fixtures as rf

HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NAME = "docker.io/library/multi:v1"


def run(slipway_bin, env, *args, check=True, timeout=300):
    p = subprocess.run([slipway_bin, *args], env=env, capture_output=True, encoding="utf-8",
                       errors="replace", timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("slipway %s failed (%d):\n%s\n%s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fresh_env(env, tmp_path, name):
    e = dict(env)
    e["SLIPWAY_ROOT"] = str(tmp_path / name)
    return e


def snapshot_exists(env, diff_id):
    return os.path.isdir(os.path.join(env["SLIPWAY_ROOT"], "snapshots", diff_id.split(":")[1]))


def stored_blobs(env):
    d = os.path.join(env["SLIPWAY_ROOT"], "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


AMD = rf.make_tar([("arch.txt", "file", b"amd64\n")])
ARM = rf.make_tar([("arch.txt", "file", b"arm64\n")])
LAYER = {"amd64": AMD, "arm64": ARM}


def two_platform_layout(path, name=NAME):
    """An OCI layout whose index.json lists one index (tag `multi`) of an amd64 and an arm64
    image, named `name` by its annotations. Returns the digests {amd64, arm64, multi}."""
    d = rf.write_oci_layout(path, [{"layers": [AMD], "arch": "amd64", "index_tag": "multi"},
                                   {"layers": [ARM], "arch": "arm64", "index_tag": "multi"}])
    ij = json.loads((path / "index.json").read_text())
    if name:
        ij["manifests"][0]["annotations"]["io.containerd.image.name"] = name
    (path / "index.json").write_text(json.dumps(ij))
    return d


def put_blob(path, data):
    d = sha(data)
    (path / "blobs" / "sha256" / d[7:]).write_bytes(data)
    return d


def registry_put_manifest(registry, repo, ref, body, media_type):
    c = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=30)
    c.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
              headers={"Content-Type": media_type})
    r = c.getresponse()
    text = r.read()
    assert r.status == 201, (r.status, text)


def skopeo_raw(ref):
    p = rf.skopeo("inspect", "--raw", "--tls-verify=false", "docker://" + ref)
    return p.stdout


# ---- push, then read back by skopeo, then pull into fresh stores ----

def test_push_index_read_by_skopeo_and_pulled_into_fresh_stores(slipway_bin, reg_env,
                                                                registry_open, tmp_path):
    d = two_platform_layout(tmp_path / "layout")
    p = run(slipway_bin, reg_env, "load", "-i", str(tmp_path / "layout"))
    assert "Loaded image: multi:v1" in p.stdout
    ref = "%s/team/multi:v1" % registry_open.host
    p = run(slipway_bin, reg_env, "push", "multi:v1", ref)
    assert "v1: digest: %s" % d["multi"] in p.stdout

    raw = skopeo_raw(ref)
    assert sha(raw.encode()) == d["multi"]  # the stored index, byte for byte
    idx = json.loads(raw)
    assert idx["mediaType"] == MT_INDEX
    assert [m["digest"] for m in idx["manifests"]] == [d["amd64"], d["arm64"]]
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):  # each manifest was pushed by digest, with its blobs
        m = json.loads(skopeo_raw("%s/team/multi@%s" % (registry_open.host, d[arch])))
        assert m["mediaType"] == MT_MANIFEST
    cfg = json.loads(rf.skopeo("inspect", "--config", "--raw", "--tls-verify=false",
                               "--override-arch", "arm64",
                               "docker://" + ref).stdout)
    assert cfg["architecture"] == "arm64"

    # --all-platforms: both images and the index, digest kept
    env = fresh_env(reg_env, tmp_path, "all")
    p = run(slipway_bin, env, "pull", "--all-platforms", ref)
    assert "Digest: %s" % d["multi"] in p.stderr
    assert snapshot_exists(env, sha(AMD)) and snapshot_exists(env, sha(ARM))
    out = tmp_path / "all-layout"
    run(slipway_bin, env, "save", "--format", "oci-dir", "-o", str(out), ref)
    top = json.loads((out / "index.json").read_text())["manifests"]
    assert [(m["mediaType"], m["digest"]) for m in top] == [(MT_INDEX, d["multi"])]
    for arch in ("amd64", "arm64"):
        assert (out / "blobs" / "sha256" / d[arch][7:]).exists()
    # and the same index goes back out: a push from the fresh store gives the same digest
    p = run(slipway_bin, env, "push", ref, "%s/again/multi:v1" % registry_open.host)
    assert "v1: digest: %s" % d["multi"] in p.stdout

    # --platform: that image only; no flag: the host's, as docker
    env = fresh_env(reg_env, tmp_path, "arm")
    p = run(slipway_bin, env, "pull", "--platform", "linux/arm64", ref)
    assert "Digest: %s" % d["arm64"] in p.stderr
    assert snapshot_exists(env, sha(ARM)) and not snapshot_exists(env, sha(AMD))
    if HOST in LAYER:
        other = "arm64" if HOST == "amd64" else "amd64"
        env = fresh_env(reg_env, tmp_path, "host")
        p = run(slipway_bin, env, "pull", ref)
        assert "Digest: %s" % d[HOST] in p.stderr
        assert snapshot_exists(env, sha(LAYER[HOST]))
        assert not snapshot_exists(env, sha(LAYER[other]))

    p = run(slipway_bin, env, "pull", "--all-platforms", "--platform", "linux/arm64", ref,
            check=False)
    assert p.returncode == 2 and "exclude each other" in p.stderr


def test_pull_all_platforms_of_a_single_image_is_a_plain_pull(slipway_bin, reg_env,
                                                             registry_open, tmp_path):
    layout = tmp_path / "one"
    d = rf.write_oci_layout(layout, [{"layers": [AMD], "tag": "one"}])
    rf.skopeo_push_layout(layout, "one", "%s/single:one" % registry_open.host)
    p = run(slipway_bin, reg_env, "pull", "--all-platforms", "%s/single:one" % registry_open.host)
    assert "Digest: %s" % d["one"] in p.stderr
    assert snapshot_exists(reg_env, sha(AMD))


# ---- save / load round trips ----

def test_save_load_round_trip_keeps_the_index_digest(slipway_bin, reg_env, tmp_path):
    d = two_platform_layout(tmp_path / "layout")
    run(slipway_bin, reg_env, "load", "-i", str(tmp_path / "layout"))
    for fmt, out in (("docker", tmp_path / "m.tar"), ("oci", tmp_path / "m-oci.tar"),
                     ("oci-dir", tmp_path / "m-dir")):
        run(slipway_bin, reg_env, "save", "--format", fmt, "-o", str(out), "multi:v1")
        env = fresh_env(reg_env, tmp_path, "root-" + fmt)
        p = run(slipway_bin, env, "load", "-i", str(out))
        assert p.stdout.strip() == "Loaded image: multi:v1", p.stdout
        assert snapshot_exists(env, sha(AMD)) and snapshot_exists(env, sha(ARM))
        again = tmp_path / ("again-" + fmt)
        run(slipway_bin, env, "save", "--format", "oci-dir", "-o", str(again), "multi:v1")
        top = json.loads((again / "index.json").read_text())["manifests"]
        assert len(top) == 1 and top[0]["digest"] == d["multi"], top
        assert top[0]["mediaType"] == MT_INDEX
        assert top[0]["annotations"]["io.containerd.image.name"] == NAME

    # the docker archive: every platform's image in manifest.json, the name on the host's
    with tarfile.open(tmp_path / "m.tar") as tf:
        man = json.load(tf.extractfile("manifest.json"))
        index = json.load(tf.extractfile("index.json"))
        names = tf.getnames()
    assert index["manifests"][0]["digest"] == d["multi"]
    assert len(man) == 2
    tagged = [m for m in man if m["RepoTags"]]
    assert len(tagged) == 1 and tagged[0]["RepoTags"] == ["multi:v1"]
    host_layer = tagged[0]["Layers"][0]
    assert host_layer in names
    with tarfile.open(tmp_path / "m.tar") as tf:  # the host's image (else the first: amd64)
        assert gzip.decompress(tf.extractfile(host_layer).read()) == LAYER.get(HOST, AMD)


def test_load_index_with_attestation_entry(slipway_bin, reg_env, tmp_path):
    """BuildKit's attestation manifests (platform unknown/unknown) are not images: skipped
    (and a push of the index says why it cannot be sent as it is)."""
    path = tmp_path / "layout"
    d = two_platform_layout(path)
    idx_blob = path / "blobs" / "sha256" / d["multi"][7:]
    idx = json.loads(idx_blob.read_text())
    att = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha(b"{}"), "size": 2},
                      "layers": []}).encode()
    put_blob(path, b"{}")
    idx["manifests"].append({"mediaType": MT_MANIFEST, "digest": put_blob(path, att),
                             "size": len(att),
                             "platform": {"os": "unknown", "architecture": "unknown"},
                             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                             "vnd.docker.reference.digest": d["amd64"]}})
    new = json.dumps(idx).encode()
    ij = json.loads((path / "index.json").read_text())
    ij["manifests"][0].update(digest=put_blob(path, new), size=len(new))
    (path / "index.json").write_text(json.dumps(ij))
    p = run(slipway_bin, reg_env, "load", "-i", str(path))
    assert p.stdout.strip() == "Loaded image: multi:v1"
    assert snapshot_exists(reg_env, sha(AMD)) and snapshot_exists(reg_env, sha(ARM))
    # its manifest was not kept, so the index cannot go to a registry as it is: said so
    p = run(slipway_bin, reg_env, "push", "multi:v1", "127.0.0.1:%d/x:y" % rf.refused_port(),
            check=False)
    assert p.returncode == 1
    assert "attestation manifest %s" % sha(att) in p.stderr and "skopeo copy --all" in p.stderr


# ---- hostile indexes: refused with a clear error, nothing stored ----

def hostile_layout(path, kind):
    """A two-platform layout made hostile: an entry whose manifest is not there, a nested
    index, or a huge entry count."""
    d = two_platform_layout(path)
    blobs = path / "blobs" / "sha256"
    if kind == "missing":
        (blobs / d["arm64"][7:]).unlink()
        return d, d["arm64"]
    idx = json.loads((blobs / d["multi"][7:]).read_text())
    if kind == "nested":
        idx["manifests"].append({"mediaType": MT_INDEX, "digest": d["multi"], "size": 1})
    else:
        entry = dict(idx["manifests"][0])
        idx["manifests"] = [entry] * 10000
    new = json.dumps(idx).encode()
    ij = json.loads((path / "index.json").read_text())
    ij["manifests"][0].update(digest=put_blob(path, new), size=len(new))
    (path / "index.json").write_text(json.dumps(ij))
    return d, ij["manifests"][0]["digest"]


def test_load_refuses_hostile_indexes(slipway_bin, reg_env, tmp_path):
    expect = {"missing": "entry 1 (linux/arm64)",
              "nested": "is itself an index: nested indexes are not supported",
              "huge": "lists 10000 manifests (more than 256)"}
    for kind, msg in expect.items():
        path = tmp_path / kind
        d, named = hostile_layout(path, kind)
        for src in (path, tmp_path / (kind + ".tar")):
            if src != path:
                with tarfile.open(src, "w") as tf:
                    for n in os.listdir(path):
                        tf.add(path / n, arcname=n)
            p = run(slipway_bin, reg_env, "load", "-i", str(src), check=False)
            assert p.returncode == 1, p
            assert msg in p.stderr, p.stderr
            assert named in p.stderr, p.stderr
            assert "nothing was stored" in p.stderr, p.stderr
            assert stored_blobs(reg_env) == [], kind
            assert not snapshot_exists(reg_env, sha(AMD))


def test_pull_all_platforms_refuses_hostile_indexes(slipway_bin, reg_env, registry_open,
                                                     tmp_path):
    host = registry_open.host
    layout = tmp_path / "layout"
    d = two_platform_layout(layout, name=None)
    rf.skopeo_push_layout(layout, "multi", "%s/bad/multi:ok" % host, all_images=True)
    idx = json.loads(skopeo_raw("%s/bad/multi:ok" % host))

    # an index listing an index (the registry checks that it exists, not what it is)
    nested = dict(idx, manifests=idx["manifests"] + [
        {"mediaType": MT_INDEX, "digest": d["multi"], "size": len(skopeo_raw(
            "%s/bad/multi:ok" % host))}])
    registry_put_manifest(registry_open, "bad/multi", "nested", json.dumps(nested), MT_INDEX)
    # a huge entry count (the same manifest, many times: every reference exists)
    huge = dict(idx, manifests=[idx["manifests"][0]] * 5000)
    registry_put_manifest(registry_open, "bad/multi", "huge", json.dumps(huge), MT_INDEX)
    cases = {"nested": "is itself an index: nested indexes are not supported",
             "huge": "lists 5000 manifests (more than 256)"}
    for tag, msg in cases.items():
        p = run(slipway_bin, reg_env, "pull", "--all-platforms", "%s/bad/multi:%s" % (host, tag),
                check=False)
        assert p.returncode == 1 and msg in p.stderr, p.stderr
        assert stored_blobs(reg_env) == [], tag

    # an entry whose manifest the registry no longer has: refused before any layer is fetched
    link = (registry_open.storage / "docker/registry/v2/repositories/bad/multi/_manifests"
            / "revisions/sha256" / d["arm64"][7:])
    shutil.rmtree(link)
    p = run(slipway_bin, reg_env, "pull", "--all-platforms", "%s/bad/multi:ok" % host,
            check=False)
    assert p.returncode == 1
    assert "index entry %s (linux/arm64)" % d["arm64"] in p.stderr, p.stderr
    assert "404" in p.stderr
    assert stored_blobs(reg_env) == []
    assert not snapshot_exists(reg_env, sha(AMD))  # the good entry's layer was not fetched


# ---- a two-platform build: -o type=oci|local, --push, --cache-to/--cache-from ----

BY_ARCH = "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n"
PLATFORMS = "linux/amd64,linux/arm64"


def arch_context(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(BY_ARCH)
    (ctx / "amd64.txt").write_text("amd64\n")
    (ctx / "arm64.txt").write_text("arm64\n")
    return ctx


def build(slipway_bin, env, ctx, *args, check=True):
    return run(slipway_bin, env, "build", "--progress", "plain", "--platform", PLATFORMS, *args,
               str(ctx), check=check)


def test_build_outputs_carry_the_index(slipway_bin, reg_env, tmp_path):
    ctx = arch_context(tmp_path)
    out = tmp_path / "layout"
    iid = tmp_path / "iid"
    build(slipway_bin, reg_env, ctx, "-t", "multi:b", "--iidfile", str(iid),
          "-o", "type=oci,dest=%s" % out)
    digest = iid.read_text()
    top = json.loads((out / "index.json").read_text())["manifests"]
    assert [(m["mediaType"], m["digest"]) for m in top] == [(MT_INDEX, digest)]
    assert top[0]["annotations"]["org.opencontainers.image.ref.name"] == "b"
    # skopeo reads the layout: an index of the two platforms' manifests
    raw = rf.skopeo("inspect", "--raw", "oci:%s:b" % out).stdout
    assert sha(raw.encode()) == digest
    idx = json.loads(raw)
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["amd64", "arm64"]
    for m in idx["manifests"]:
        assert (out / "blobs" / "sha256" / m["digest"][7:]).exists()

    # type=local: a directory per platform, as buildx
    local = tmp_path / "files"
    build(slipway_bin, reg_env, ctx, "-o", "type=local,dest=%s" % local)
    assert (local / "linux_amd64" / "arch.txt").read_text() == "amd64\n"
    assert (local / "linux_arm64" / "arch.txt").read_text() == "arm64\n"
    p = build(slipway_bin, reg_env, ctx, "-o", "type=tar,dest=%s" % (tmp_path / "x.tar"),
              check=False)
    assert p.returncode == 2 and "type=local" in p.stderr


def test_build_push_index_then_pull_all_platforms(slipway_bin, reg_env, registry_open, tmp_path):
    ctx = arch_context(tmp_path)
    ref = "%s/team/built:1" % registry_open.host
    iid = tmp_path / "iid"
    p = build(slipway_bin, reg_env, ctx, "-t", ref, "--push", "--iidfile", str(iid))
    digest = iid.read_text()
    assert "pushed %s@%s" % (ref, digest) in p.stderr
    raw = skopeo_raw(ref)
    assert sha(raw.encode()) == digest
    idx = json.loads(raw)
    assert idx["mediaType"] == MT_INDEX and len(idx["manifests"]) == 2

    env = fresh_env(reg_env, tmp_path, "fresh")
    p = run(slipway_bin, env, "pull", "--all-platforms", ref)
    assert "Digest: %s" % digest in p.stderr
    for arch in ("amd64", "arm64"):
        info = json.loads(run(slipway_bin, env, "inspect", "--platform", "linux/" + arch,
                              ref).stdout)[0]
        assert info["Architecture"] == arch
        files = tmp_path / ("files-" + arch)
        run(slipway_bin, env, "save", "--format", "oci-dir", "-o", str(files), ref)
        assert json.loads((files / "index.json").read_text())["manifests"][0]["digest"] == digest


def test_build_from_a_registry_index_pulls_each_platform(slipway_bin, reg_env, registry_open,
                                                        tmp_path):
    """FROM an index in a registry: each target platform's stage gets that platform's image
    (pulled for it), and --pull pulls the base again for every target, not for the host's
    alone (the other platforms kept their old base)."""
    ctx = arch_context(tmp_path)
    base = "%s/team/base:1" % registry_open.host
    build(slipway_bin, reg_env, ctx, "-t", base, "--push")
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM %s\nCOPY x /x\n" % base)
    (app / "x").write_text("x\n")
    env = fresh_env(reg_env, tmp_path, "fresh")

    def arch_files(*args):
        out = tmp_path / ("out%d" % len(list(tmp_path.glob("out*"))))
        run(slipway_bin, env, "build", "--progress", "plain", *args,
            "-o", "type=local,dest=%s" % out, str(app))
        if (out / "arch.txt").exists():
            return (out / "arch.txt").read_text()
        return [(out / d / "arch.txt").read_text() for d in ("linux_amd64", "linux_arm64")]

    assert arch_files("--platform", PLATFORMS) == ["amd64\n", "arm64\n"]
    # The name now holds an index of the two images the build pulled.
    raw = json.loads(run(slipway_bin, env, "inspect", "--raw", "index", base).stdout)
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    # The base changes in the registry: a build without --pull keeps the stored one.
    (ctx / "amd64.txt").write_text("amd64 v2\n")
    (ctx / "arm64.txt").write_text("arm64 v2\n")
    build(slipway_bin, reg_env, ctx, "-t", base, "--push")
    assert arch_files("--platform", PLATFORMS) == ["amd64\n", "arm64\n"]
    assert arch_files("--platform", PLATFORMS, "--pull") == ["amd64 v2\n", "arm64 v2\n"]
    # One foreign platform: --pull pulls that platform's image.
    (ctx / "arm64.txt").write_text("arm64 v3\n")
    build(slipway_bin, reg_env, ctx, "-t", base, "--push")
    assert arch_files("--platform", "linux/arm64", "--pull") == "arm64 v3\n"
    assert arch_files("--platform", PLATFORMS) == ["amd64 v2\n", "arm64 v3\n"]


def test_cache_to_carries_every_platform(slipway_bin, reg_env, registry_open, tmp_path):
    ctx = arch_context(tmp_path)
    # History entries of config-only steps before a stage's first layer step (the ARG) take the
    # build's clock, one second apart at times: a fixed epoch keeps the digests comparable.
    reg_env = dict(reg_env, SOURCE_DATE_EPOCH="1700000000")
    cache = "%s/cache/multi:max" % registry_open.host
    a_iid, b_iid = tmp_path / "a.iid", tmp_path / "b.iid"
    # the ARG's history entry (no layer before it) has the build's time: the same for both
    reg_env = dict(reg_env, SOURCE_DATE_EPOCH="1700000000")
    p = build(slipway_bin, reg_env, ctx, "-t", "multi:c", "--iidfile", str(a_iid),
              "--cache-to", "type=registry,ref=%s,mode=max" % cache)
    assert "2 cache records (mode=max)" in p.stderr, p.stderr
    env = fresh_env(reg_env, tmp_path, "b")
    p = build(slipway_bin, env, ctx, "-t", "multi:c", "--iidfile", str(b_iid),
              "--cache-from", "type=registry,ref=" + cache)
    # each platform's COPY hit the remote records: nothing ran, the same index came out
    assert p.stderr.count("CACHED") == 2, p.stderr
    assert b_iid.read_text() == a_iid.read_text()


def test_pull_all_platforms_stages_every_layer_before_committing(slipway_bin, reg_env,
                                                                  registry_open, tmp_path):
    host = registry_open.host
    shared = rf.make_tar([("etc", "dir", None), ("etc/shared.txt", "file", b"both\n")])
    evil = rf.make_tar([("../evil.txt", "file", b"out of the root\n")])
    # a layer both platforms share is downloaded once
    layout = tmp_path / "shared"
    rf.write_oci_layout(layout, [{"layers": [shared, AMD], "arch": "amd64", "index_tag": "s"},
                                 {"layers": [shared, ARM], "arch": "arm64", "index_tag": "s"}])
    rf.skopeo_push_layout(layout, "s", "%s/sh/multi:s" % host, all_images=True)
    p = run(slipway_bin, reg_env, "pull", "--all-platforms", "%s/sh/multi:s" % host)
    assert p.stderr.count("Already exists") == 1, p.stderr
    assert all(snapshot_exists(reg_env, sha(t)) for t in (shared, AMD, ARM))

    # the arm64 image's layer leaves its root: refused, and the amd64 image is not stored either
    env = fresh_env(reg_env, tmp_path, "evil-root")
    layout = tmp_path / "evil"
    rf.write_oci_layout(layout, [{"layers": [AMD], "arch": "amd64", "index_tag": "e"},
                                 {"layers": [evil], "arch": "arm64", "index_tag": "e"}])
    rf.skopeo_push_layout(layout, "e", "%s/ev/multi:e" % host, all_images=True)
    p = run(slipway_bin, env, "pull", "--all-platforms", "%s/ev/multi:e" % host, check=False)
    assert p.returncode == 1 and "../evil.txt" in p.stderr, p.stderr
    assert stored_blobs(env) == []
    assert not snapshot_exists(env, sha(AMD))
    assert not os.listdir(os.path.join(env["SLIPWAY_ROOT"], "tmp"))
