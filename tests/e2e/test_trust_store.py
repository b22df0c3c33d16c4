"""Kills and crashes must never change what an image contains (issue 18 §1, §5): a snapshot,
blob or record is visible only when complete; deletion goes through ROOT/trash; `fsck` checks
the store; `prune` sweeps what killed commands left behind."""
import os
import signal
import subprocess
import time

import pytest

N_FILES = 20000
# the same Dockerfile gives the same layer (so a rebuild meets the old snapshot's name)
SDE = {"SOURCE_DATE_EPOCH": "1700000000"}


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_stopped(proc, timeout=120):
    """Wait until proc stopped itself (SLIPWAY_TEST_STOP_AFTER_UNLINKS); fail if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the process exited (%s) before the stop point" % proc.returncode
        if proc_state(proc.pid) == "T":
            return
        time.sleep(0.01)
    raise AssertionError("the process never reached its stop point")


def kill_at_unlink(slipway, n, *args):
    """Run `slipway ARGS`, let it remove n files, SIGKILL it there."""
    proc = subprocess.Popen([slipway.binary, "--root", slipway.root, *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, SLIPWAY_TEST_STOP_AFTER_UNLINKS=str(n)))
    try:
        wait_stopped(proc)
    finally:
        proc.kill()
        proc.wait()


def many_files_context(tmp_path):
    ctx = tmp_path / "ctx"
    d = ctx / "d"
    d.mkdir(parents=True)
    for i in range(N_FILES):
        (d / ("f%05d" % i)).write_bytes(b"%d\n" % i)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY d /d\n")
    return ctx


def count_in_image(slipway, image):
    """Files in /d as a container sees them (through the image's snapshots, not its blobs)."""
    out = slipway("run", "--rm", image, "sh", "-c", "ls /d | wc -l").stdout
    return int(out.strip())


def test_sigkilled_prune_does_not_poison_rebuild(slipway, busybox_image, tmp_path):
    ctx = many_files_context(tmp_path)
    slipway("build", "-t", "many", ctx, env=SDE)
    assert count_in_image(slipway, "many") == N_FILES
    slipway("rmi", "many")
    # prune -a stops after removing 5,000 files: in the middle of that layer's snapshot
    kill_at_unlink(slipway, 5000, "prune", "-a")
    slipway("build", "-t", "many", ctx, env=SDE)
    assert count_in_image(slipway, "many") == N_FILES
    # and the layer's blob agrees with its snapshot: an image built FROM it sees them all too
    (ctx / "Dockerfile.child").write_text("FROM many\nRUN ls /d | wc -l > /count\n")
    slipway("build", "-t", "child", "-f", ctx / "Dockerfile.child", ctx, env=SDE)
    assert slipway("run", "--rm", "child", "cat", "/count").stdout.strip() == str(N_FILES)
    # the killed prune's trash was emptied by the next command alone on the store
    assert os.listdir(os.path.join(slipway.root, "trash")) == []


def test_rebuild_replaces_leftover_snapshot_dir(slipway, busybox_image, tmp_path):
    """A directory in the way of a snapshot's rename (what a killed process of an older slipway
    left) is never adopted: the complete one takes its place."""
    ctx = many_files_context(tmp_path)
    slipway("build", "-t", "many", ctx, env=SDE)
    diff_id = slipway.inspect("many")["RootFS"]["Layers"][-1]
    slipway("rmi", "many")
    slipway("prune", "-a")
    snap = os.path.join(slipway.root, "snapshots", diff_id.split(":")[1])
    os.makedirs(os.path.join(snap, "d"))
    for i in range(3):
        open(os.path.join(snap, "d", "f%05d" % i), "w").close()
    slipway("build", "-t", "many", ctx, env=SDE)
    assert count_in_image(slipway, "many") == N_FILES
