"""A full store filesystem (issue 18 §5): the store lives on a small tmpfs or loop-mounted ext4
the test mounts and fills. Readers (images, inspect, history, save to another filesystem) and deleters (rmi, prune)
still work; a writer (build, pull) fails naming ENOSPC and the filesystem; after prune, builds
work again. Needs root (mount); the mount is removed by the fixture's finalizer."""
import errno
import os
import subprocess
import tarfile

import pytest

import registry_fixtures as rf
from conftest import SlipwayRunner


@pytest.fixture(params=["tmpfs", "ext4"])
def small_fs(request, tmp_path):
    """A 64 MiB filesystem of its own: a tmpfs, or ext4 on a loop device (root may use ext4's
    reserved blocks, so "full" is full for root too)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    if request.param == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "slipway-full-test", str(mnt)]
    else:
        img = tmp_path / "ext4.img"
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
        cmd = ["mount", "-o", "loop", str(img), str(mnt)]
    subprocess.run(cmd, check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def free_bytes(path):
    v = os.statvfs(path)
    return v.f_bfree * v.f_frsize


def fill(mnt, leave=0):
    """Write mnt/filler until the filesystem is full, then give back `leave` bytes."""
    path = mnt / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    if leave:
        os.truncate(path, max(0, os.path.getsize(path) - leave))
    return path


def dockerfile(ctx, text):
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(text)
    return ctx


def test_full_store_reads_and_deletes_then_builds_again(slipway_bin, busybox_rootfs_tar,
                                                        small_fs, tmp_path):
    s = SlipwayRunner(slipway_bin, small_fs / "root")
    root = small_fs / "root"
    s("import", busybox_rootfs_tar, "bb:latest", "-c", 'CMD ["sh"]')
    assert os.path.getsize(root / "reserve") > 0  # room set aside while there was some
    big = dockerfile(tmp_path / "big", "FROM bb\nRUN head -c 12000000 /dev/urandom > /big\n")
    s("build", "-t", "big", big)
    fill(small_fs)  # to ENOSPC (ext4 still counts its own reserved clusters as free)

    # readers: no room needed
    out = s("images").stdout
    assert "big" in out and "bb" in out
    assert s.inspect("big")["Config"]["Cmd"] == ["sh"]
    assert "head -c 12000000" in s("history", "--no-trunc", "big").stdout
    saved = tmp_path / "big.tar"  # another filesystem
    s("save", "-o", saved, "big")
    with tarfile.open(saved) as tf:
        assert "manifest.json" in tf.getnames()

    # a writer fails, naming ENOSPC and the filesystem
    small = dockerfile(tmp_path / "small", "FROM bb\nRUN echo hi > /hi\n")
    p = s("build", "-t", "small", small, check=False)
    assert p.returncode == 1
    assert "No space left on device" in p.stderr, p.stderr
    assert "store's filesystem (`%s`, mounted on `%s`) is full" % (root, small_fs) in p.stderr
    assert "slipway prune" in p.stderr

    # deleters: rmi commits with the reserve's room, prune frees the layers
    p = s("rmi", "big")
    assert "released the 4 MiB set aside" in p.stderr, p.stderr
    assert not os.path.exists(root / "reserve")
    s("prune", "-a")
    assert free_bytes(small_fs) > 16 << 20
    assert "big" not in s("images").stdout

    # room again: builds work, and the reserve is set aside anew
    s("build", "-t", "small", small)
    assert s.inspect("small")["Id"].startswith("sha256:")
    assert os.path.getsize(root / "reserve") > 0
    assert os.listdir(root / "tmp") == []


def test_full_store_without_reserve_still_reads(slipway_bin, busybox_rootfs_tar, small_fs):
    s = SlipwayRunner(slipway_bin, small_fs / "root")
    s("import", busybox_rootfs_tar, "bb:latest")
    os.unlink(small_fs / "root" / "reserve")
    fill(small_fs)
    assert "bb" in s("images").stdout  # SQLite's exclusive locking mode: no -shm to write
    p = s("rmi", "bb", check=False)
    assert p.returncode == 1
    assert "No space left on device" in p.stderr and "by other means" in p.stderr, p.stderr
    os.unlink(small_fs / "filler")
    s("rmi", "bb")
    assert "bb" not in s("images").stdout


def test_pull_into_full_store_names_the_disk(slipway_bin, reg_env, registry_open, small_fs,
                                             tmp_path):
    layer = rf.make_tar([("data", "file", os.urandom(3 << 20))])
    layout = tmp_path / "layout"
    rf.write_oci_layout(layout, [{"layers": [rf.busybox_tar(), layer]}])
    ref = "%s/full/disk:latest" % registry_open.host
    rf.skopeo_push_layout(layout, "latest", ref)
    root = small_fs / "root"
    env = dict(reg_env, SLIPWAY_ROOT=str(root))
    subprocess.run([slipway_bin, "images"], env=env, check=True, capture_output=True)
    fill(small_fs, leave=1 << 20)
    p = subprocess.run([slipway_bin, "pull", ref], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 1
    assert "No space left on device" in p.stderr, p.stderr
    assert "Failure writing output" not in p.stderr
    assert "write `%s/tmp/pull-" % root in p.stderr
    assert "store's filesystem (`%s`, mounted on `%s`) is full" % (root, small_fs) in p.stderr
    assert "http://%s/v2/full/disk/blobs/sha256:" % registry_open.host in p.stderr
    assert os.listdir(root / "tmp") == []
