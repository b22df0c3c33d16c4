"""Kill-anywhere torture (issue 18, "Done when"): build, no-cache build, prune, rmi, import, load,
save, pull, push (a real docker-registry on loopback) and `run --rm` are SIGKILLed at random points (half at a random time within the command's
measured duration, half at a random file removal through SLIPWAY_TEST_STOP_AFTER_UNLINKS), at
least 50 kills in all. After each kill `fsck` is clean and the image `app`, if there,
has all its files; at the end nothing is left after the next prune, and a rebuild
gives the image (digest) and the files of a clean store. The seed is printed and is in every
failure message; SLIPWAY_TORTURE_SEED=N repeats a run, SLIPWAY_TORTURE_KILLS=N changes the
count. Bounded: it stops killing after 150 s whatever the count."""
import os
import random
import signal
import subprocess
import time

SDE = {"SOURCE_DATE_EPOCH": "1700000000"}
DOCKERFILE = """FROM busybox AS mid
RUN mkdir /m && cd /m && for i in {nums}; do echo $i > f$i; done
FROM busybox
COPY d /d
COPY --from=mid /m /m
RUN echo done > /done
"""
CHECK = "ls -R /d /m | wc -l; cat /d/* /m/* /done | wc -c"


def make_context(path):
    (path / "d").mkdir(parents=True)
    for i in range(1500):
        (path / "d" / ("f%04d" % i)).write_text("%d\n" % i * (i % 7 + 1))
    (path / "Dockerfile").write_text(DOCKERFILE.format(nums=" ".join(map(str, range(300)))))
    return path


def wait_stopped_or_exit(proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with open("/proc/%d/stat" % proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.005)


def test_kill_anywhere(slipway, slipway_bin, busybox_rootfs_tar, registry_open, tmp_path):
    seed = int(os.environ.get("SLIPWAY_TORTURE_SEED", random.randrange(1 << 30)))
    target = int(os.environ.get("SLIPWAY_TORTURE_KILLS", "56"))
    print("\ntorture seed %d (SLIPWAY_TORTURE_SEED=%d repeats it)" % (seed, seed))
    why = "torture seed %d" % seed
    rng = random.Random(seed)
    ctx = make_context(tmp_path / "ctx")

    # the clean store's answer
    clean = type(slipway)(slipway_bin, tmp_path / "clean")
    clean("import", busybox_rootfs_tar, "busybox", "-c", 'CMD ["sh"]', env=SDE)
    clean("build", "-t", "app", ctx, env=SDE)
    want_id = clean.inspect("app")["Id"]
    want_files = clean("run", "--rm", "app", "sh", "-c", CHECK).stdout
    archive = tmp_path / "app.tar"
    clean("save", "-o", archive, "app")

    slipway("import", busybox_rootfs_tar, "busybox", "-c", 'CMD ["sh"]', env=SDE)
    out = tmp_path / "out.tar"
    ops = {
        "build": ["build", "-t", "app", ctx],
        "build --no-cache": ["build", "--no-cache", "-t", "app", ctx],
        "prune": ["prune"],
        "prune -a": ["prune", "-a"],
        "rmi": ["rmi", "app"],
        "import": ["import", busybox_rootfs_tar, "imported"],
        "load": ["load", "-i", archive],
        "save": ["save", "-o", out, "app"],
        "run --rm": ["run", "--rm", "app", "sh", "-c", "cat /d/* > /x; sleep 0.2"],
        "push": ["push", "app", registry_open.host + "/torture/app:1"],
        "pull": ["pull", registry_open.host + "/torture/app:1"],
    }
    # each once to completion (that also measures how long each takes here)
    duration = {}
    for name in ["build", "push", "pull", "save", "run --rm", "build --no-cache", "rmi", "load",
                 "import", "prune -a", "load"]:
        t = time.monotonic()
        slipway(*ops[name], env=SDE)
        duration[name] = time.monotonic() - t
    duration["prune"] = duration["prune -a"]

    kills, log, deadline = 0, [], time.monotonic() + 150
    names = sorted(ops)
    while kills < target and time.monotonic() < deadline:
        name = rng.choice(names)
        env = dict(os.environ, **SDE)
        by_unlink = rng.random() < 0.5
        if by_unlink:
            env["SLIPWAY_TEST_STOP_AFTER_UNLINKS"] = str(rng.randint(1, 800))
        else:
            delay = rng.uniform(0, duration[name] * 1.1)
        proc = subprocess.Popen([slipway_bin, "--root", slipway.root, *map(str, ops[name])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if by_unlink:
            wait_stopped_or_exit(proc, duration[name] * 3 + 5)
        else:
            time.sleep(delay)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if alive:
            kills += 1
        log.append("%s %s%s" % (name, "unlink#" + env["SLIPWAY_TEST_STOP_AFTER_UNLINKS"]
                                if by_unlink else "%.3fs" % delay, " killed" if alive else ""))
        # after every kill the store is consistent and `app`, if there, has all its files
        p = slipway("fsck", check=False)
        assert p.returncode == 0, "%s: after %s\n%s%s" % (why, log[-1], p.stdout, p.stderr)
        if slipway("inspect", "app", check=False).returncode == 0:
            got = slipway("run", "--rm", "app", "sh", "-c", CHECK).stdout
            assert got == want_files, "%s: after %s: %r" % (why, log[-1], got)
    why += ": %d kills:\n  %s" % (kills, "\n  ".join(log))
    print(why)
    assert kills >= min(target, 50), why

    # the store is consistent, and the next prune leaves nothing behind
    p = slipway("fsck", check=False)
    assert p.returncode == 0 and "no problems" in p.stdout, why + "\n" + p.stdout + p.stderr
    slipway("prune")
    for sub in ("tmp", "trash", "leases", "containers"):
        assert os.listdir(os.path.join(slipway.root, sub)) == [], why + ": " + sub
    assert [f for f in os.listdir(tmp_path) if f.startswith("out.tar.tmp.")] == [], why

    # a rebuild (with what cache survived, then none) gives the clean store's image and files
    for flags in ([], ["--no-cache"]):
        slipway("build", *flags, "-t", "app", ctx, env=SDE)
        assert slipway.inspect("app")["Id"] == want_id, why
        assert slipway("run", "--rm", "app", "sh", "-c", CHECK).stdout == want_files, why
    p = slipway("fsck", check=False)
    assert p.returncode == 0, why + "\n" + p.stdout
