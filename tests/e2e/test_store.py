"""The store and image formats end to end: import / images / inspect / history / tag / rmi /
prune / save / load, read back by independent tools (skopeo, umoci), and a store that survives
kill -9 in the middle of an import."""
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def blobs(root):
    d = os.path.join(str(root), "blobs", "sha256")
    return set(os.listdir(d))


def run(*cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=True, **kw)


# ---- import, images, inspect, history ----

def test_import_busybox(slipway, busybox_rootfs_tar):
    p = slipway("import", busybox_rootfs_tar, "bb:1", "-c", 'CMD ["sh"]',
                "-c", 'ENV PATH=/bin:/usr/bin LANG="C.UTF-8"', "-c", "WORKDIR /tmp",
                "-c", "USER nobody", "-c", "EXPOSE 8080 53/udp", "-c", "LABEL a=b c=\"d e\"",
                "-c", "VOLUME /data", "-c", "ENTRYPOINT /bin/echo hi", "-m", "from a test")
    image_id = p.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71

    info = slipway.inspect("bb:1")
    assert info["Id"] == image_id
    assert info["RepoTags"] == ["bb:1"]
    cfg = info["Config"]
    assert cfg["Cmd"] == ["sh"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/echo hi"]
    assert cfg["Env"] == ["PATH=/bin:/usr/bin", "LANG=C.UTF-8"]
    assert cfg["WorkingDir"] == "/tmp" and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"a": "b", "c": "d e"}
    assert cfg["Volumes"] == {"/data": {}}
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    # the layer is the tar itself: its diffID is the tar's sha256
    assert info["RootFS"]["Layers"] == [sha256_file(busybox_rootfs_tar)]
    assert info["Layers"][0]["MediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert info["Size"] == os.path.getsize(busybox_rootfs_tar)
    # unpacked by the import itself (one read of the tar): the first run pays nothing
    snap = os.path.join(slipway.root, "snapshots", info["RootFS"]["Layers"][0][7:])
    assert os.path.isfile(os.path.join(snap, "bin", "busybox"))
    assert os.listdir(os.path.join(slipway.root, "tmp")) == []

    lines = slipway("images").stdout.splitlines()
    assert lines[0].split()[:4] == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    row = lines[1].split()
    assert row[:3] == ["bb", "1", image_id[7:19]]
    assert slipway("images", "-q").stdout.split() == [image_id[7:19]]

    hist = slipway("history", "bb:1").stdout.splitlines()
    assert hist[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert len(hist) == 2 and hist[1].startswith(image_id[7:19]) and "from a test" in hist[1]

    # inspect --format and --raw
    assert slipway("inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "bb:1").stdout.strip() == \
        image_id + ' ["sh"]'
    raw = slipway("inspect", "--raw", "config", "bb:1").stdout.rstrip("\n")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == image_id
    manifest = json.loads(slipway("inspect", "--raw", "manifest", "bb:1").stdout)
    assert manifest["config"]["digest"] == image_id
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_import_bad_input(slipway, busybox_rootfs_tar, tmp_path):
    p = slipway("import", busybox_rootfs_tar, "bb", "-c", "RUN echo", check=False)
    assert p.returncode == 2 and "unsupported instruction" in p.stderr
    p = slipway("import", busybox_rootfs_tar, "Bad:Name", check=False)
    assert p.returncode == 2 and "Bad:Name" in p.stderr
    p = slipway("import", str(tmp_path / "missing.tar"), "x", check=False)
    assert p.returncode == 1 and "missing.tar" in p.stderr
    assert slipway("images", "-q").stdout.strip() == ""


def test_import_compressed_and_reproducible(slipway_bin, busybox_rootfs_tar, tmp_path):
    from conftest import SlipwayRunner
    data = open(busybox_rootfs_tar, "rb").read()
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(data))
    zst = tmp_path / "rootfs.tar.zst"
    run("zstd", "-q", "-o", str(zst), busybox_rootfs_tar)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    results = []
    for i, src in enumerate([busybox_rootfs_tar, gz, zst]):
        s = SlipwayRunner(slipway_bin, tmp_path / ("root%d" % i))
        s("import", src, "bb", "-m", "same", env=env)
        info = s.inspect("bb")
        results.append((info["Id"], info["Descriptor"]["digest"], info["RootFS"]["Layers"]))
        assert info["Created"] == "2023-11-14T22:13:20Z"
    # same content, same epoch: identical image ID and manifest digest from empty stores
    s = SlipwayRunner(slipway_bin, tmp_path / "stdin")
    s("import", "-", "bb", "-m", "same", input=gz.read_bytes(), env=env)
    info = s.inspect("bb")
    results.append((info["Id"], info["Descriptor"]["digest"], info["RootFS"]["Layers"]))
    assert results[0] == results[1] == results[2] == results[3]
    assert results[0][2] == [sha256_file(busybox_rootfs_tar)]


def reblob_rows(root):
    import sqlite3
    db = sqlite3.connect(os.path.join(str(root), "slipway.db"))
    try:
        return db.execute("SELECT diff_id, compression, digest FROM reblob").fetchall()
    finally:
        db.close()


def build_ctx(path, dockerfile, files):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    for name, data in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(data)
    return str(path)


def test_import_fast_then_gzip6_in_built_images(slipway_bin, busybox_rootfs_tar, tmp_path):
    """import stores the build's fast gzip; an image built on it ships the base at gzip:6, the
    very blob `import --compression gzip:6` makes, made once; the imported image keeps its own."""
    from conftest import SlipwayRunner
    env = {"SOURCE_DATE_EPOCH": "1700000000"}  # the two stores' images compared at the end
    s = SlipwayRunner(slipway_bin, tmp_path / "root")
    s("import", busybox_rootfs_tar, "bb", env=env)
    fast = s.inspect("bb")["Layers"][0]
    diff_id = fast["DiffID"]
    assert reblob_rows(tmp_path / "root") == [(diff_id, "gzip:6", "")]

    ref = SlipwayRunner(slipway_bin, tmp_path / "ref")
    ref("import", "--compression", "gzip:6", busybox_rootfs_tar, "bb", env=env)
    want = ref.inspect("bb")["Layers"][0]
    assert reblob_rows(tmp_path / "ref") == []  # an explicit --compression is used as it is
    assert want["DiffID"] == diff_id and want["Digest"] != fast["Digest"]
    assert want["Size"] < fast["Size"]

    for i in range(2):
        ctx = build_ctx(tmp_path / ("ctx%d" % i), "FROM bb\nCOPY f /f\n", {"f": "v%d\n" % i})
        p = s("--debug", "build", "-q", "-t", "app%d" % i, ctx, env=env)
        # made beside the first build (started with it), found made by the second
        assert ("to gzip:6 in the background" in p.stderr) == (i == 0), p.stderr
        assert "to gzip:6 now" not in p.stderr, p.stderr
        shipped = s.inspect("app%d" % i)["Layers"][0]
        assert shipped["DiffID"] == diff_id
        assert shipped["Digest"] == want["Digest"] and shipped["Size"] == want["Size"]
    # the blob is the layer: it decompresses to the diffID
    blob = tmp_path / "root" / "blobs" / "sha256" / want["Digest"][7:]
    with gzip.open(blob, "rb") as f:
        assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == diff_id
    assert reblob_rows(tmp_path / "root") == [(diff_id, "gzip:6", want["Digest"])]
    assert s.inspect("bb")["Layers"][0]["Digest"] == fast["Digest"]  # its manifest is unchanged
    # the same image from the reference store (its base imported at gzip:6 already)
    ctx = build_ctx(tmp_path / "ctxr", "FROM bb\nCOPY f /f\n", {"f": "v1\n"})
    ref("build", "-q", "-t", "app1", ctx, env=env)
    assert ref.inspect("app1")["Descriptor"]["digest"] == s.inspect("app1")["Descriptor"]["digest"]

    for name in ("app0", "app1", "bb"):
        s("rmi", name)
    s("prune", "-a")
    assert reblob_rows(tmp_path / "root") == []


def test_import_reblob_cancelled_with_the_build(slipway, python_base_tar, tmp_path):
    """A failing build stops the base's background recompression: nothing is left in tmp/ and
    nothing is recorded; the next build that ships the base makes it."""
    slipway("import", python_base_tar, "py")
    (diff_id, comp, digest), = reblob_rows(slipway.root)
    assert comp == "gzip:6" and digest == ""
    ctx = build_ctx(tmp_path / "ctx", "FROM py\nRUN false\n", {})
    p = slipway("build", "-q", ctx, check=False)
    assert p.returncode != 0
    assert os.listdir(os.path.join(str(slipway.root), "tmp")) == []
    assert reblob_rows(slipway.root) == [(diff_id, "gzip:6", "")]
    ctx = build_ctx(tmp_path / "ctx2", "FROM py\nCOPY f /f\n", {"f": "x"})
    slipway("build", "-q", "-t", "app", ctx)
    shipped = slipway.inspect("app")["Layers"][0]
    assert shipped["DiffID"] == diff_id
    assert shipped["Digest"] != slipway.inspect("py")["Layers"][0]["Digest"]
    assert reblob_rows(slipway.root) == [(diff_id, "gzip:6", shipped["Digest"])]


# ---- names ----

def test_tag_rmi(slipway, busybox_image):
    image_id = slipway.inspect(busybox_image)["Id"]
    slipway("tag", "busybox", "localhost:5000/bb:v1")
    slipway("tag", image_id[7:19], "other")
    assert slipway.inspect("localhost:5000/bb:v1")["Id"] == image_id
    assert sorted(slipway.inspect(image_id)["RepoTags"]) == \
        ["busybox:latest", "localhost:5000/bb:v1", "other:latest"]
    p = slipway("rmi", image_id, check=False)
    assert p.returncode == 1 and "several names" in p.stderr
    assert slipway("rmi", "other").stdout.strip() == "Untagged: other:latest"
    assert slipway("inspect", "other", check=False).returncode == 1
    out = slipway("rmi", "-f", image_id[7:19]).stdout
    assert "Deleted: " + image_id in out and "Untagged: busybox:latest" in out
    assert slipway("images", "-q").stdout.strip() == ""
    p = slipway("rmi", "nothere", check=False)
    assert p.returncode == 1 and "nothere" in p.stderr
    p = slipway("tag", "busybox", "x", check=False)
    assert p.returncode == 1


def test_rmi_base_image_in_use(slipway, busybox_image, busybox_rootfs_tar, tmp_path):
    """rmi of a base other images are built on, as docker rmi does: by its last name it is only
    untagged (`Untagged:`, no `Deleted:`), and it stays, with its layers, for the images on it;
    by ID it is refused, -f too. A container running an image holds it the same way (its last
    name goes only with -f, `prune -a` keeps it)."""
    base = slipway.inspect(busybox_image)
    ctx = build_ctx(tmp_path / "ctx", "FROM busybox\nRUN echo hi > /hi\n", {})
    slipway("build", "-q", "-t", "app:1", ctx)
    p = slipway("rmi", base["Id"][7:19], check=False)
    assert p.returncode == 1, p.stdout
    assert "cannot be forced" in p.stderr and "app:1" in p.stderr, p.stderr
    assert slipway("rmi", "-f", base["Id"], check=False).returncode == 1
    slipway("tag", "busybox", "bb2")
    assert slipway("rmi", "bb2").stdout == "Untagged: bb2:latest\n"
    out = slipway("rmi", "busybox").stdout
    assert out == "Untagged: busybox:latest\n", out
    assert slipway.inspect(base["Id"])["RepoTags"] == []  # still there, untagged
    # nothing of the base goes at prune: the child runs and its layers are the base's
    slipway("prune")
    assert slipway("run", "--rm", "app:1", "cat", "/hi").stdout == "hi\n"
    assert slipway("fsck").returncode == 0
    # with the child gone the base goes by ID: only now `Deleted:`
    out = slipway("rmi", "app:1").stdout.splitlines()
    assert out[0] == "Untagged: app:1" and out[1].startswith("Deleted: sha256:"), out
    assert slipway("rmi", base["Id"]).stdout == "Deleted: %s\n" % base["Id"]

    # a container: the last name of its image stays without -f, the ID cannot go while it runs
    slipway("import", busybox_rootfs_tar, "bb:1", "-c", 'CMD ["sh"]')
    image_id = slipway.inspect("bb:1")["Id"]
    cid = slipway("run", "-d", "bb:1", "sleep", "1000").stdout.strip()
    try:
        p = slipway("rmi", "bb:1", check=False)
        assert p.returncode == 1 and cid[:12] in p.stderr and "--force" in p.stderr, p.stderr
        p = slipway("rmi", "-f", image_id, check=False)
        assert p.returncode == 1 and "running" in p.stderr and cid[:12] in p.stderr, p.stderr
        assert slipway("rmi", "-f", "bb:1").stdout == "Untagged: bb:1\n"  # kept: it runs
        assert slipway.inspect(image_id)["RepoTags"] == []
        slipway("prune", "-a")  # keeps an image a container runs, its layers too
        assert slipway.inspect(image_id)["RepoTags"] == []
        assert slipway("exec", cid, "cat", "/etc/group").stdout.startswith("root:x:0:")
    finally:
        slipway("rm", "-f", cid)
    assert slipway("rmi", image_id).stdout == "Deleted: %s\n" % image_id


def test_prune(slipway, busybox_rootfs_tar, tmp_path):
    from conftest import make_busybox_rootfs_tar
    other = make_busybox_rootfs_tar(tmp_path / "other.tar", {"etc/other": b"x\n"})
    slipway("import", busybox_rootfs_tar, "keep")
    slipway("import", other, "drop")
    before = blobs(slipway.root)
    assert len(before) == 6  # 2 x (layer, config, manifest)
    slipway("rmi", "drop")
    out = slipway("prune").stdout
    assert "Total reclaimed space" in out
    after = blobs(slipway.root)
    assert len(after) == 3
    assert os.listdir(os.path.join(slipway.root, "tmp")) == []
    # what stays is complete: the image still saves and reads back
    slipway("save", "-o", tmp_path / "keep.tar", "keep")
    run("skopeo", "inspect", "docker-archive:%s" % (tmp_path / "keep.tar"))
    # an image that lost its name goes with -a
    slipway("import", other, "keep")  # takes the name: the first image is dangling now
    assert len(slipway("images", "-q").stdout.split()) == 2
    cache_mount = os.path.join(slipway.root, "mounts", "pip")
    os.makedirs(cache_mount)
    open(os.path.join(cache_mount, "wheel"), "w").write("x")
    slipway("prune")
    assert os.path.exists(os.path.join(cache_mount, "wheel"))  # only -a drops cache mounts
    slipway("prune", "-a")
    assert not os.path.exists(cache_mount)
    assert len(slipway("images", "-q").stdout.split()) == 1
    assert len(blobs(slipway.root)) == 3
    assert slipway("prune", "--keep-storage", "nonsense", check=False).returncode == 2


# ---- save / load, read back by skopeo and umoci ----

def test_save_docker_archive(slipway, busybox_image, slipway_bin, tmp_path):
    info = slipway.inspect(busybox_image)
    out = tmp_path / "bb.tar"
    slipway("save", "-o", out, busybox_image)
    with tarfile.open(out) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
        repos = json.load(tf.extractfile("repositories"))
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    assert manifest[0]["Config"] == "blobs/sha256/" + info["Id"][7:]
    assert all(layer in names for layer in manifest[0]["Layers"])
    assert "busybox" in repos and "index.json" in names and "oci-layout" in names

    sk = json.loads(run("skopeo", "inspect", "docker-archive:%s" % out).stdout)
    assert sk["Layers"] == info["RootFS"]["Layers"]  # skopeo reports diffIDs here
    assert sk["Architecture"] == "amd64"
    run("skopeo", "copy", "-q", "docker-archive:%s" % out, "oci:%s:x" % (tmp_path / "copy"))

    from conftest import SlipwayRunner
    other = SlipwayRunner(slipway_bin, tmp_path / "root2")
    assert other("load", "-i", out).stdout.strip() == "Loaded image: busybox:latest"
    back = other.inspect("busybox")
    assert back["Id"] == info["Id"]
    assert back["Descriptor"]["digest"] == info["Descriptor"]["digest"]
    # loading again is a no-op hit
    other("load", "-i", out)
    assert len(other("images", "-q").stdout.split()) == 1


def test_save_oci(slipway, busybox_image, slipway_bin, tmp_path):
    info = slipway.inspect(busybox_image)
    layout = tmp_path / "layout"
    slipway("save", "--format", "oci-dir", "-o", layout, busybox_image)
    index = json.load(open(layout / "index.json"))
    ann = index["manifests"][0]["annotations"]
    assert ann["org.opencontainers.image.ref.name"] == "latest"
    assert ann["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    sk = json.loads(run("skopeo", "inspect", "oci:%s" % layout).stdout)
    assert sk["Digest"] == info["Descriptor"]["digest"]
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", "%s:latest" % layout, str(bundle))
    assert os.path.islink(bundle / "rootfs" / "bin" / "sh")
    assert os.path.getsize(bundle / "rootfs" / "bin" / "busybox") == os.path.getsize("/bin/busybox")
    cfg = json.load(open(bundle / "config.json"))
    assert cfg["process"]["args"] == ["sh"]

    arch = tmp_path / "bb-oci.tar"
    slipway("save", "--format", "oci", "-o", arch, busybox_image)
    sk2 = json.loads(run("skopeo", "inspect", "oci-archive:%s" % arch).stdout)
    assert sk2["Digest"] == info["Descriptor"]["digest"]
    from conftest import SlipwayRunner
    for src in (arch, layout):
        other = SlipwayRunner(slipway_bin, tmp_path / ("r-" + os.path.basename(str(src))))
        assert "Loaded image: busybox:latest" in other("load", "-i", src).stdout
        assert other.inspect("busybox")["Descriptor"]["digest"] == info["Descriptor"]["digest"]


def test_load_legacy_docker_archive(slipway, busybox_rootfs_tar, tmp_path):
    """docker save before 25: <id>/layer.tar uncompressed, config <id>.json, manifest.json."""
    layer = open(busybox_rootfs_tar, "rb").read()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "history": [{"created": "2023-11-14T22:13:20Z"}],
                         "created": "2023-11-14T22:13:20Z"}).encode()
    cid = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": cid + ".json", "RepoTags": ["legacy:1"],
                            "Layers": ["abc/layer.tar"]}]).encode()
    out = tmp_path / "legacy.tar"
    with tarfile.open(out, "w") as tf:
        for name, data in ((cid + ".json", config), ("abc/layer.tar", layer),
                           ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    assert slipway("load", "-i", out).stdout.strip() == "Loaded image: legacy:1"
    info = slipway.inspect("legacy:1")
    assert info["Id"] == "sha256:" + cid  # config kept byte for byte
    assert info["RootFS"]["Layers"] == [diff_id]
    # a layer that does not match its diffID is refused (in a store that lacks that layer),
    # and nothing is recorded
    slipway("rmi", "legacy:1")
    slipway("prune")
    bad = tmp_path / "bad.tar"
    corrupt = bytearray(layer)
    corrupt[600] ^= 0xFF  # inside the first file's data
    with tarfile.open(bad, "w") as tf:
        for name, data in ((cid + ".json", config), ("abc/layer.tar", bytes(corrupt)),
                           ("manifest.json", manifest.replace(b"legacy:1", b"bad:1"))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    p = slipway("load", "-i", bad, check=False)
    assert p.returncode == 1 and "diffID" in p.stderr
    assert slipway("inspect", "bad:1", check=False).returncode == 1


# ---- the Python base, speed and crash consistency ----

def test_import_python_base(slipway, python_base_tar, tmp_path):
    t0 = time.monotonic()
    slipway("import", python_base_tar, "python:slim", "-c", 'CMD ["python3"]')
    seconds = time.monotonic() - t0
    print("\nimport of %s (%d MB): %.2fs" % (os.path.basename(python_base_tar),
                                            os.path.getsize(python_base_tar) >> 20, seconds))
    info = slipway.inspect("python:slim")
    assert info["RootFS"]["Layers"] == [sha256_file(python_base_tar)]
    assert info["Size"] == os.path.getsize(python_base_tar)
    assert seconds < 30
    slipway("save", "-o", tmp_path / "py.tar", "python:slim")
    sk = json.loads(run("skopeo", "inspect", "docker-archive:%s" % (tmp_path / "py.tar")).stdout)
    assert sk["Layers"] == info["RootFS"]["Layers"]


def test_kill9_mid_import_leaves_store_consistent(slipway, python_base_tar, busybox_rootfs_tar):
    slipway("import", busybox_rootfs_tar, "before")
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen([slipway.binary, "--root", slipway.root, "import",
                                 python_base_tar, "victim"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the store opens, the old image is intact, the victim is all there or not at all
        names = slipway("images").stdout
        assert "before" in names
        p = slipway("inspect", "victim", check=False)
        if p.returncode == 0:
            assert json.loads(p.stdout)[0]["Size"] == os.path.getsize(python_base_tar)
        slipway("rmi", "victim", check=False)
    # the next command alone on the store clears tmp/; prune drops orphan blobs
    slipway("images")
    assert os.listdir(os.path.join(slipway.root, "tmp")) == []
    slipway("prune")
    assert len(blobs(slipway.root)) == 3
    slipway("import", python_base_tar, "victim")
    assert slipway.inspect("victim")["RootFS"]["Layers"] == [sha256_file(python_base_tar)]


def test_history_columns_aligned_with_and_without_trunc(slipway, busybox_image, tmp_path):
    """history's columns start where their headers do, also with --no-trunc (full IDs and
    commands longer than the default widths)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    long_cmd = "echo " + "a-long-word-" * 12
    (ctx / "Dockerfile").write_text("FROM %s\nRUN %s > /x\nENV A=1\n" % (busybox_image, long_cmd))
    slipway("build", "-q", "-t", "h", str(ctx))
    for args in ((), ("--no-trunc",)):
        lines = slipway("history", *args, "h").stdout.splitlines()
        head = lines[0]
        cols = [head.index(h) for h in ("CREATED", "CREATED BY", "SIZE", "COMMENT")]
        for line in lines[1:]:
            for c in cols:
                assert line[c - 3:c] == "   " and line[c] != " " or line[c:c + 2] == "  ", (
                    args, head, line)
        if args:
            assert long_cmd in "\n".join(lines)
            assert lines[1].startswith("sha256:")
