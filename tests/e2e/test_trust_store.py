"""Kills and crashes must never change what an image contains (issue 18 §1, §5): a snapshot,
blob or record is visible only when complete; deletion goes through ROOT/trash; `fsck` checks
the store; `prune` sweeps what killed commands left behind."""
import fcntl
import os
import signal
import subprocess
import sys
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
    p = slipway("fsck")
    assert "no problems" in p.stdout


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


def fsck(slipway, *args):
    p = slipway("fsck", *args, check=False)
    assert p.returncode in (0, 1), p.stderr
    return p


def layer_dir(slipway, diff_id):
    return os.path.join(slipway.root, "snapshots", diff_id.split(":")[1])


def test_fsck_finds_and_repairs_damaged_snapshots_and_blobs(slipway, busybox_image, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    for i in range(50):
        (ctx / "d" / ("f%02d" % i)).write_text("x" * i)
    # stage `mid` is not shipped: its layer is a snapshot with no blob
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS mid\nRUN mkdir /m && echo 12345 > /m/a && echo 6789 > /m/b\n"
        "FROM busybox\nCOPY d /d\nCOPY --from=mid /m/b /b\n"
        # a whiteout, an opaque directory and a hardlink: fsck knows their overlay forms
        "RUN rm /etc/group && rm -rf /usr && mkdir -p /usr/x && busybox ln /b /b2\n")
    slipway("build", "-t", "app", ctx)
    p = fsck(slipway)
    assert p.returncode == 0, p.stdout
    assert "no problems" in p.stdout

    # a shipped layer's snapshot loses files (what a killed deletion left)
    app = slipway.inspect("app")
    copy_layer = app["RootFS"]["Layers"][1]
    os.unlink(os.path.join(layer_dir(slipway, copy_layer), "d", "f07"))
    os.unlink(os.path.join(layer_dir(slipway, copy_layer), "d", "f08"))
    # the intermediate stage's snapshot (no blob) loses one
    mids = [n for n in os.listdir(os.path.join(slipway.root, "snapshots"))
            if os.path.exists(os.path.join(slipway.root, "snapshots", n, "m", "b"))]
    assert len(mids) == 1
    os.unlink(os.path.join(slipway.root, "snapshots", mids[0], "m", "b"))
    p = fsck(slipway)
    assert p.returncode == 1
    assert "2 missing, 0 extra, 0 changed (first: missing `d/f07`)" in p.stdout, p.stdout
    assert "used by image docker.io/library/app:latest" in p.stdout
    assert "sha256:%s" % mids[0] in p.stdout and "files are missing or changed" in p.stdout

    p = fsck(slipway, "--repair")
    assert p.returncode == 0, p.stdout
    assert p.stdout.count("repaired:") == 2, p.stdout
    assert fsck(slipway).returncode == 0
    assert slipway("run", "--rm", "app", "sh", "-c", "ls /d | wc -l").stdout.strip() == "50"
    # the damaged build-step snapshot and its cache records went: the rebuild makes it again
    out = slipway("build", "-t", "app", ctx).stderr
    assert "RUN mkdir /m" in out
    assert slipway("run", "--rm", "app", "cat", "/b").stdout == "6789\n"

    # a blob whose bytes changed: reported with what it holds; repair drops what used it
    blob = os.path.join(slipway.root, "blobs", "sha256", app["Id"].split(":")[1])
    with open(blob, "ab") as f:
        f.write(b" ")
    p = fsck(slipway)
    assert p.returncode == 1
    assert "blob %s holds data of digest" % app["Id"] in p.stdout, p.stdout
    p = fsck(slipway, "--repair")
    assert p.returncode == 0, p.stdout
    assert "image docker.io/library/app:latest removed" in p.stdout
    assert slipway("inspect", "app", check=False).returncode != 0
    assert fsck(slipway).returncode == 0
    slipway("build", "-t", "app", ctx)
    assert fsck(slipway).returncode == 0


def prune_leftovers(slipway):
    out = slipway("prune").stdout
    return [line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("Removed what a killed command left: ")], out


def test_sigkilled_run_rm_leaves_nothing_after_prune(slipway, busybox_image):
    proc = subprocess.Popen([slipway.binary, "--root", slipway.root, "run", "--rm", busybox_image,
                             "sh", "-c", "head -c 3000000 /bin/busybox > /big; sleep 1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    containers = os.path.join(slipway.root, "containers")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [c for c in os.listdir(containers)
                 if os.path.exists(os.path.join(containers, c, "upper", "big"))]
        if found:
            break
        time.sleep(0.02)
    assert found, "the container never started"
    time.sleep(0.2)  # let head finish writing (only the size reported depends on it)
    proc.kill()
    proc.wait()
    left, out = prune_leftovers(slipway)
    assert left == ["%s (%s)" % (os.path.join(containers, found[0]), left[0].split(" (")[1][:-1])]
    assert not os.path.exists(os.path.join(containers, found[0]))
    assert os.listdir(os.path.join(slipway.root, "leases")) == []
    assert prune_leftovers(slipway)[0] == []
    # a container run without --rm stays (as docker keeps it), and so does a finished one
    slipway("run", "--name", "kept", busybox_image, "true")
    assert prune_leftovers(slipway)[0] == []
    assert os.path.exists(os.path.join(containers, "kept"))


def test_sigkilled_save_leaves_nothing_after_prune(slipway, busybox_image, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "big").write_bytes(os.urandom(48 << 20))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY big /big\n")
    slipway("build", "-t", "big", ctx)
    out = tmp_path / "out.tar"
    for attempt in range(10):
        proc = subprocess.Popen([slipway.binary, "--root", slipway.root, "save", "-o", out, "big"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tmp = "%s.tmp.%d" % (out, proc.pid)
        while proc.poll() is None and not os.path.exists(tmp):
            pass
        proc.kill()
        proc.wait()
        if os.path.exists(tmp):
            break
        # the save finished before the poll saw its temp file: try again
        os.unlink(out)
    assert os.path.exists(tmp), "never caught save mid-way"
    assert not os.path.exists(out)
    left, _ = prune_leftovers(slipway)
    assert len(left) == 1 and left[0].startswith(tmp + " ("), left
    assert not os.path.exists(tmp)
    assert os.listdir(os.path.join(slipway.root, "leases")) == []


def fill(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        open(os.path.join(d, "f%05d" % i), "w").close()


def test_trash_is_purged_beside_commands_and_only_when_alone(slipway):
    """The trash (and tmp/, and what a killed purge left) is moved out of the way by the next
    command alone on the store and removed beside its work; never while another holds the store."""
    slipway("images")
    root = slipway.root
    trash, tmp, purge = (os.path.join(root, d) for d in ("trash", "tmp", "purge"))
    fill(os.path.join(trash, "snap.1.1", "d"), 3000)
    fill(os.path.join(tmp, "copy-x"), 10)
    fill(os.path.join(purge, "LEFTOV", "trash", "old"), 10)
    # another slipway process has the store open (shared lock): its lower dirs may be in there
    with open(os.path.join(root, "lock")) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        slipway("images")
        assert os.listdir(trash) == ["snap.1.1"]
        assert os.listdir(tmp) == ["copy-x"]
        assert os.listdir(purge) == ["LEFTOV"]
    # alone: all of it is one new batch at once (or already gone), none of it in sight
    slipway("images")
    assert os.listdir(trash) == [] and os.listdir(tmp) == []
    batches = os.listdir(purge)
    assert len(batches) <= 1 and "LEFTOV" not in batches, batches
    # prune removes whatever is left
    slipway("prune")
    assert os.listdir(purge) == [] and os.listdir(trash) == []
    assert "no problems" in slipway("fsck").stdout


def test_waiting_for_the_store_lock_names_the_holder(slipway):
    slipway("images")
    lock = os.path.join(slipway.root, "lock")
    hold = ("import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, lock], stdout=subprocess.PIPE, text=True)
    waiter = None
    try:
        assert holder.stdout.readline() == "locked\n"
        waiter = subprocess.Popen([slipway.binary, "--root", slipway.root, "images"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = waiter.stderr.readline()
        assert "is locked by pid %d (`%s -c import fcntl" % (holder.pid, sys.executable) in line, line
        assert "exclusive): waiting for it" in line, line
        assert waiter.poll() is None  # still waiting
    finally:
        holder.kill()
        holder.wait()
    assert waiter.wait(timeout=60) == 0
