"""Hostile layers are refused at every door: `load` (docker-archive, OCI archive, OCI layout
dir), `import`, `pull` and `build --cache-from`. Each hostile class (`..`, absolute names,
hardlinks out or through a symlink, a symlinked parent, whiteouts outside or through a symlink)
must fail the command at once, naming the image, the layer digest and the offending entry, and
leave the store exactly as it was: no image, no layer row, no blob, no snapshot, nothing in
tmp/. The hostile layer sits on a good one that is not in the store yet, so "nothing stored"
also covers the good layers of a refused image."""
import gzip
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import urllib.parse
import urllib.request

import pytest

import registry_fixtures as rf
from conftest import SlipwayRunner
from test_build import make_ctx

# class -> (tar entries, the entry named in the error, what the error says about it)
HOSTILE = {
    "dotdot": ([("../evil", "file", b"x")], "../evil", "escapes the layer root"),
    "absolute": ([("/evil", "file", b"x")], "/evil", "absolute path"),
    "hardlink_out": ([("x", "hardlink", "../../etc/passwd")], "x", "escapes the layer root"),
    "hardlink_via_symlink": ([("d", "dir", None), ("d/f", "file", b"f"), ("l", "symlink", "d"),
                              ("h", "hardlink", "l/f")], "h", "not an earlier file"),
    "symlinked_parent": ([("d", "symlink", "/tmp"), ("d/evil", "file", b"x")], "d/evil",
                         "goes through a symlink"),
    "whiteout_out": ([("../.wh.evil", "file", b"")], "../.wh.evil", "escapes the layer root"),
    "whiteout_via_symlink": ([("l", "symlink", "/etc"), ("l/.wh.passwd", "file", b"")],
                             "l/.wh.passwd", "goes through a symlink"),
}


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def good_tar():
    # Not in the store before the test: a refused image must not leave it behind either.
    return rf.busybox_tar(extra=[("etc/good.txt", "file", b"a good layer\n")])


def hostile_tar(cls):
    return rf.make_tar(HOSTILE[cls][0])


def store_state(s):
    """Everything a door could leave behind."""
    root = s.root

    def ls(*p):
        d = os.path.join(root, *p)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    rows = {}
    db = os.path.join(root, "slipway.db")
    if os.path.exists(db):
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        for t in ("layers", "images", "names", "snapshots", "image_layers"):
            rows[t] = sorted(c.execute("SELECT * FROM %s" % t).fetchall())
        c.close()
    return {"images": s("images", "-q").stdout.split(), "blobs": ls("blobs", "sha256"),
            "snapshots": ls("snapshots"), "tmp": ls("tmp"), "rows": rows}


@pytest.fixture
def seeded(slipway, busybox_rootfs_tar):
    """A store that holds an image already (so "unchanged" is not "empty")."""
    slipway("import", busybox_rootfs_tar, "busybox:latest")
    return slipway


def assert_refused(p, cls, *names):
    _, entry, why = HOSTILE[cls]
    assert p.returncode != 0, p.stdout + p.stderr
    err = p.stderr
    assert "entry `%s`" % entry in err, err
    assert why in err, err
    for n in names:
        assert n in err, (n, err)


# ---- archives written by hand ----

def docker_archive(path, layers, tag):
    """docker save's format: manifest.json, <config>.json, <n>/layer.tar (plain tars)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": [sha(t) for t in layers]}}).encode()
    cname = sha(config)[7:] + ".json"
    files = {cname: config}
    names = []
    for i, t in enumerate(layers):
        names.append("%d/layer.tar" % i)
        files[names[-1]] = t
    files["manifest.json"] = json.dumps(
        [{"Config": cname, "RepoTags": [tag], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tf:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return str(path)


def oci_layout(path, layers, tag):
    rf.write_oci_layout(path, [{"layers": layers, "tag": tag}])
    return str(path)


def tar_dir(src, dst):
    with tarfile.open(dst, "w") as tf:
        for n in sorted(os.listdir(src)):
            tf.add(os.path.join(src, n), arcname=n)
    return str(dst)


@pytest.mark.parametrize("cls", sorted(HOSTILE))
def test_load_docker_archive_refuses(seeded, tmp_path, cls):
    before = store_state(seeded)
    bad = hostile_tar(cls)
    path = docker_archive(tmp_path / "a.tar", [good_tar(), bad], "hostile:%s" % cls)
    p = seeded("load", "-i", path, check=False)
    assert_refused(p, cls, "hostile:%s" % cls, sha(bad))
    assert store_state(seeded) == before


@pytest.mark.parametrize("cls", sorted(HOSTILE))
def test_load_oci_refuses(seeded, tmp_path, cls):
    before = store_state(seeded)
    bad = hostile_tar(cls)
    layout = oci_layout(tmp_path / "layout", [good_tar(), bad], "hostile:%s" % cls)
    bad_digest = sha(gzip.compress(bad, mtime=0))
    for src in (layout, tar_dir(layout, tmp_path / "oci.tar")):  # OCI layout dir, OCI archive
        p = seeded("load", "-i", src, check=False)
        assert_refused(p, cls, "hostile:%s" % cls, bad_digest)
        assert store_state(seeded) == before, src


@pytest.mark.parametrize("cls", sorted(HOSTILE))
def test_import_refuses(seeded, tmp_path, cls):
    before = store_state(seeded)
    bad = hostile_tar(cls)
    path = tmp_path / "rootfs.tar"
    path.write_bytes(bad)
    p = seeded("import", str(path), "hostile:" + cls, check=False)
    assert_refused(p, cls, "hostile:" + cls, sha(bad))
    assert store_state(seeded) == before


def test_a_good_archive_still_loads(seeded, tmp_path):
    """The control: the same archives with the hostile layer left out load and run."""
    path = docker_archive(tmp_path / "a.tar", [good_tar()], "fine:1")
    seeded("load", "-i", path)
    layout = oci_layout(tmp_path / "layout", [good_tar()], "fine:2")
    seeded("load", "-i", tar_dir(layout, tmp_path / "oci.tar"))
    for ref in ("fine:1", "fine:2"):
        assert seeded("run", "--rm", ref, "cat", "/etc/good.txt").stdout == "a good layer\n"
    assert store_state(seeded)["tmp"] == []


# ---- registries: pushed by hand (a real registry stores any bytes) ----

def push_blob(host, repo, data):
    d = sha(data)
    req = urllib.request.Request("http://%s/v2/%s/blobs/uploads/" % (host, repo), method="POST",
                                 data=b"")
    loc = urllib.request.urlopen(req).headers["Location"]
    loc = urllib.parse.urljoin("http://%s/" % host, loc)
    loc += ("&" if "?" in loc else "?") + "digest=" + d
    req = urllib.request.Request(loc, method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).read()
    return d


def push_manifest(host, repo, tag, manifest):
    body = json.dumps(manifest).encode()
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (host, repo, tag), method="PUT",
                                 data=body, headers={"Content-Type": manifest["mediaType"]})
    urllib.request.urlopen(req).read()
    return sha(body)


def push_image(host, repo, tag, tars):
    descs = []
    for t in tars:
        blob = gzip.compress(t, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": push_blob(host, repo, blob), "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]}}
                        ).encode()
    return push_manifest(host, repo, tag, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(host, repo, config), "size": len(config)},
        "layers": descs})


def test_pull_refuses(seeded, registry_open, reg_env):
    env = {k: reg_env[k] for k in ("DOCKER_CONFIG", "HOME", "SLIPWAY_RETRY_BASE_MS")}
    host = registry_open.host
    push_image(host, "hostile/img", "control", [good_tar()])
    for cls in sorted(HOSTILE):
        before = store_state(seeded)
        bad = hostile_tar(cls)
        push_image(host, "hostile/img", cls, [good_tar(), bad])
        ref = "%s/hostile/img:%s" % (host, cls)
        p = seeded("pull", "-q", ref, check=False, env=env)
        assert_refused(p, cls, ref, sha(gzip.compress(bad, mtime=0)))
        assert store_state(seeded) == before, cls
    # The control: the good layer alone pulls and runs.
    seeded("pull", "-q", "%s/hostile/img:control" % host, env=env)
    out = seeded("run", "--rm", "%s/hostile/img:control" % host, "cat", "/etc/good.txt").stdout
    assert out == "a good layer\n"


CACHE_DOCKERFILE = ("FROM scratch\n"
                    "COPY busybox /bin/busybox\n"
                    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                    "RUN echo built > /built.txt\n")


def test_cache_from_refuses(slipway_bin, registry_open, reg_env, tmp_path):
    """A cache whose records point at hostile layers fails the build (it is not a miss to
    quietly run past: whoever could push it can poison other records too), stores nothing."""
    env = {k: reg_env[k] for k in ("DOCKER_CONFIG", "HOME", "SLIPWAY_RETRY_BASE_MS")}
    env["SLIPWAY_RETRIES"] = "1"
    a = SlipwayRunner(slipway_bin, tmp_path / "storeA")
    host = registry_open.host
    ctx = make_ctx(tmp_path / "ctx", CACHE_DOCKERFILE)
    good = "%s/cache/app:good" % host
    a("build", "-q", "--cache-to", "type=registry,ref=%s,mode=max" % good, ctx, env=env)
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    manifest = json.loads(urllib.request.urlopen(urllib.request.Request(
        "http://%s/v2/cache/app/manifests/good" % host, headers=accept)).read())
    config = json.loads(urllib.request.urlopen(
        "http://%s/v2/cache/app/blobs/%s" % (host, manifest["config"]["digest"])).read())
    for cls in sorted(HOSTILE):
        bad = hostile_tar(cls)
        blob = gzip.compress(bad, mtime=0)
        d = push_blob(host, "cache/app", blob)
        # Every record's layer becomes the hostile one (same shape, other bytes).
        for layer in config["layers"]:
            layer["blob"] = d
            layer["annotations"]["diffID"] = sha(bad)
            layer["annotations"]["size"] = len(blob)
            layer["annotations"]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        cj = json.dumps(config).encode()
        m = dict(manifest)
        m["config"] = dict(manifest["config"], digest=push_blob(host, "cache/app", cj),
                           size=len(cj))
        m["layers"] = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                        "size": len(blob)}]
        push_manifest(host, "cache/app", cls, m)

        b = SlipwayRunner(slipway_bin, tmp_path / ("store-" + cls))
        b("images")  # the store exists, empty
        before = store_state(b)
        p = b("build", "--progress=plain", "-t", "img", "--cache-from",
              "%s/cache/app:%s" % (host, cls), ctx, check=False, env=env)
        assert_refused(p, cls, "%s/cache/app" % host, d)
        assert p.returncode == 1 and "running the step" not in p.stderr, p.stderr
        after = store_state(b)
        assert d[7:] not in after["blobs"]
        assert after == before, cls
