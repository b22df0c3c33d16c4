"""Rootless slipway (issue 13): every command as an ordinary user, with the same images as root.

Each test run creates its own unprivileged users (useradd with a unique name: Debian gives a
regular user a /etc/subuid and /etc/subgid range; a system user, `useradd -r`, gets none, which
is how the single-id fallback is tested without touching /etc/subuid) and removes them at the
end (userdel also drops their subordinate ids). slipway runs as the user through `setpriv`, from a
0755 copy of the binary, with a store in a directory the user owns. CI runs as root."""
import functools
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest

from conftest import make_busybox_rootfs_tar
from test_django import EXAMPLE, QuietFiles, find, get, parse_plain, wait_http

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users: run as root (CI)")

EPOCH = "1700000000"
# security.capability v2, cap_net_raw+ep: what `setcap cap_net_raw+ep` writes.
CAP_NET_RAW = bytes([1, 0, 0, 2, 0, 0x20, 0, 0] + [0] * 12)


def _useradd(args):
    """useradd, retried while another run (or apt) holds /etc/passwd's lock."""
    for _ in range(60):
        p = subprocess.run(["useradd", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if p.returncode == 0:
            return
        if "lock" not in p.stderr and p.returncode not in (1, 10):
            break
        time.sleep(0.5)
    raise AssertionError("useradd %s: %s" % (" ".join(args), p.stderr))


def _kill_user_processes(uid):
    """SIGKILL what still runs as the test's own user (a failed test's slipway), so that userdel
    can remove it. Only this uid's processes: the user is this run's alone."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat("/proc/" + pid).st_uid == uid:
                    os.kill(int(pid), 9)
            except OSError:
                pass


def _userdel(name):
    import pwd
    try:
        _kill_user_processes(pwd.getpwnam(name).pw_uid)
    except KeyError:
        return
    for _ in range(60):
        p = subprocess.run(["userdel", "-r", name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode in (0, 6, 12):  # done, no such user, home not removed (we rm it)
            return
        time.sleep(0.5)


class User:
    """An unprivileged user with a home and a work dir of its own, running slipway."""

    def __init__(self, base, binary, system=False):
        self.name = "swrl" + uuid.uuid4().hex[:12]
        self.home = os.path.join(base, self.name)
        args = ["-m", "-d", self.home, "-s", "/bin/sh"]
        _useradd((["-r"] if system else []) + args + [self.name])
        import pwd
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.root = os.path.join(self.home, "store")
        self.binary = binary

    def subids(self, path):
        """(start, count) of the user's first range in /etc/subuid or /etc/subgid, or None."""
        with open(path) as f:
            for line in f:
                f3 = line.strip().split(":")
                if len(f3) == 3 and f3[0] in (self.name, str(self.uid)):
                    return int(f3[1]), int(f3[2])
        return None

    def path(self, *parts):
        return os.path.join(self.home, *parts)

    def give(self, path):
        """chown -R path to the user (files the test made as root in the user's home)."""
        for d, dirs, files in os.walk(path):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, self.uid, self.gid)

    def command(self, args, root=True, env=None, tun=None):
        """(argv, env) running slipway as the user. tun=MODE: in a mount namespace of the
        test's own whose /dev/net/tun is a node of that mode (the host's may be 0600; the
        host's own is never changed)."""
        e = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": self.home, "LANG": "C.UTF-8", "USER": self.name}
        e.update(env or {})
        cmd = ["setpriv", "--reuid", str(self.uid), "--regid", str(self.gid), "--init-groups",
               "--", self.binary] + (["--root", self.root] if root else []) + list(map(str, args))
        if tun is not None:
            cmd = ["unshare", "-m", "sh", "-c",
                   "mount -t tmpfs t /mnt && mknod -m %o /mnt/tun c 10 200 && "
                   "mount --bind /mnt/tun /dev/net/tun && exec \"$@\"" % tun, "sh"] + cmd
        return cmd, e

    def __call__(self, *args, check=True, root=True, env=None, timeout=600, tun=None):
        cmd, e = self.command(args, root=root, env=env, tun=tun)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=e, cwd=self.home, timeout=timeout)
        if check:
            assert p.returncode == 0, "slipway %s as %s exited %d:\n%s\n%s" % (
                " ".join(map(str, args)), self.name, p.returncode, p.stdout, p.stderr)
        return p


@pytest.fixture(scope="module")
def base_dir(slipway_bin):
    """A 0755 dir with a 0755 copy of the binary (the build dir may not be reachable)."""
    d = tempfile.mkdtemp(prefix="slipway-rootless-")
    os.chmod(d, 0o755)
    shutil.copy(slipway_bin, os.path.join(d, "slipway"))
    os.chmod(os.path.join(d, "slipway"), 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _make_user(request, base_dir, system=False):
    u = User(base_dir, os.path.join(base_dir, "slipway"), system=system)
    request.addfinalizer(lambda: (_userdel(u.name), shutil.rmtree(u.home, ignore_errors=True)))
    return u


@pytest.fixture(scope="module")
def user(request, base_dir):
    u = _make_user(request, base_dir)
    assert u.subids("/etc/subuid") and u.subids("/etc/subgid"), \
        "useradd gave %s no subordinate ids (SUB_UID_COUNT in /etc/login.defs?)" % u.name
    return u


def multi_owner_tar(path):
    """The busybox rootfs plus a layer's worth of files with many owners, modes and a file
    capability: what a pulled image holds."""
    make_busybox_rootfs_tar(path)
    with tarfile.open(path, "a", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=b"", uid=0, gid=0, mode=0o644, kind=tarfile.REGTYPE, pax=None):
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid, ti.mode, ti.mtime, ti.type = uid, gid, mode, 1700000000, kind
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            if pax:
                ti.pax_headers = pax
            tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("srv", uid=33, gid=33, mode=0o750, kind=tarfile.DIRTYPE)
        add("srv/www.txt", b"www\n", uid=33, gid=33, mode=0o640)
        add("srv/app.txt", b"app\n", uid=1000, gid=1000, mode=0o600)
        add("srv/nobody.txt", b"n\n", uid=65534, gid=65534)
        add("srv/suid", b"#!/bin/sh\n", uid=0, gid=0, mode=0o4755)
        add("srv/sticky", uid=100, gid=200, mode=0o1777, kind=tarfile.DIRTYPE)
        add("bin/ping", b"ping\n", mode=0o755, pax={
            "SCHILY.xattr.security.capability": CAP_NET_RAW.decode("utf-8", "surrogateescape")})
    return path


# A Dockerfile with a RUN that writes files of several owners, deletes (whiteout) and replaces a
# directory (opaque), a COPY --chown, and a COPY --from that carries a file capability: every
# step deterministic, so that under SOURCE_DATE_EPOCH root and rootless give the same digests.
DOCKERFILE = """\
FROM base:1 AS caps
FROM base:1
COPY --chown=1000:1000 a.txt /home/a.txt
COPY --from=caps /bin/ping /usr/bin/ping2
RUN mkdir -p /data/x && echo d > /data/x/f && chown -R 33:44 /data && chmod 2750 /data/x \\
 && rm /srv/nobody.txt && rm -rf /tmp && mkdir -m 1777 /tmp && echo t > /tmp/t \\
 && id -u && stat -c '%u:%g %a %n' /home/a.txt /data/x/f /srv/app.txt /srv/sticky /srv/suid
RUN --network=none cat /proc/net/dev | sed 1,2d | cut -d: -f1 | tr -d ' '
"""


def make_context(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(d, "a.txt"), "w") as f:
        f.write("hello\n")
    return d


def layer_listing(oci_dir):
    """[(name, type, mode, uid, gid, size, xattrs)] of every layer of the image in an OCI
    layout, in order."""
    with open(os.path.join(oci_dir, "index.json")) as f:
        mdesc = json.load(f)["manifests"][0]

    def blob(d):
        return os.path.join(oci_dir, "blobs", *d.split(":"))
    with open(blob(mdesc["digest"])) as f:
        manifest = json.load(f)
    out = []
    for l in manifest["layers"]:
        with tarfile.open(blob(l["digest"])) as tf:
            for m in tf.getmembers():
                x = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
                out.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, sorted(x.items())))
    return out


def step_output(progress, header):
    """The output lines of the step whose plain-progress header contains `header`."""
    step, lines = None, []
    for l in progress.splitlines():
        w = l.split(" ", 2)
        if len(w) == 3 and w[0].startswith("#") and w[1].startswith("[") and header in l:
            step = w[0]
        elif step and len(w) == 3 and w[0] == step and w[1][:1].isdigit():
            lines.append(w[2])
    return lines


def test_build_run_images_prune_as_user(user, base_dir):
    """The vertical slice: import a multi-owner base, build (RUN, COPY --chown, COPY --from with
    a capability, whiteout, opaque dir), run, images, prune, all as the user."""
    tar = multi_owner_tar(user.path("base.tar"))
    ctx = make_context(user.path("ctx"))
    user.give(tar)
    user.give(ctx)
    user("import", tar, "base:1", "-c", 'CMD ["sh"]')
    p = user("build", "--progress", "plain", "-t", "app:1", ctx)
    out = p.stdout + p.stderr
    assert "warning" not in out, out
    # Inside, the user is root; the other ids are the subordinate ones.
    assert step_output(out, "RUN mkdir") == [
        "0", "1000:1000 644 /home/a.txt", "33:44 644 /data/x/f", "1000:1000 600 /srv/app.txt",
        "100:200 1777 /srv/sticky", "0:0 4755 /srv/suid"], out
    # --network none in a RUN: a fresh netns with only lo.
    assert step_output(out, "RUN --network=none") == ["lo"], out

    # On the host, files in the store belong to the user's subordinate ids (root inside = the
    # user, id N inside = start + N - 1).
    start, _ = user.subids("/etc/subuid")
    owners = set()
    for d, dirs, files in os.walk(os.path.join(user.root, "snapshots")):
        for n in dirs + files:
            owners.add(os.lstat(os.path.join(d, n)).st_uid)
    assert user.uid in owners and start + 999 in owners and start + 32 in owners, owners
    assert os.stat(user.root).st_uid == user.uid
    assert os.stat(os.path.join(user.root, "slipway.db")).st_uid == user.uid

    r = user("run", "--rm", "--network", "host", "app:1", "sh", "-c",
             "stat -c '%u:%g %a %n' /home/a.txt /data/x /srv/www.txt; ls /tmp /srv; id -u")
    assert r.stdout.split("\n")[:3] == ["1000:1000 644 /home/a.txt", "33:44 2750 /data/x",
                                        "33:33 640 /srv/www.txt"], r.stdout
    assert "nobody.txt" not in r.stdout and "t\n" in r.stdout
    assert r.stdout.split()[-1] == "0"

    imgs = user("images").stdout
    assert "app" in imgs and "base" in imgs
    user("rmi", "app:1")
    pr = user("prune", "-a")
    assert pr.returncode == 0
    assert "app" not in user("images").stdout


def test_store_commands_stay_outside_userns(user):
    """images, inspect, history and tag read or write only what belongs to the user (the
    database, blobs): they run without entering the user namespace (no newuidmap), and leave
    files of subordinate ids in trash/ to the next command that enters it, which removes them."""
    tar = make_busybox_rootfs_tar(user.path("out.tar"))
    user.give(tar)
    user("import", tar, "out:1")
    start, _ = user.subids("/etc/subuid")
    gstart, _ = user.subids("/etc/subgid")
    junk = os.path.join(user.root, "trash", "left.1.1")
    os.makedirs(os.path.join(junk, "d"))
    with open(os.path.join(junk, "d", "f"), "w") as f:
        f.write("x")
    for n in (junk, os.path.join(junk, "d"), os.path.join(junk, "d", "f")):
        os.lchown(n, start + 999, gstart + 999)  # 1000:1000 inside: not the user's outside
    for args, want in ((["images"], "out"), (["tag", "out:1", "out:2"], ""),
                       (["inspect", "out:2"], '"out:2"'), (["history", "out:2"], "Imported")):
        p = user("-D", *args, root=False, env={"SLIPWAY_ROOT": user.root})
        assert "rootless:" not in p.stderr, (args, p.stderr)
        assert want in p.stdout, (args, p.stdout)
    assert os.path.isdir(os.path.join(junk, "d")), "left alone outside the namespace"
    p = user("-D", "rmi", "out:2", root=False, env={"SLIPWAY_ROOT": user.root})
    assert "rootless: uid %d is root in a user namespace" % user.uid in p.stderr, p.stderr
    assert not os.path.exists(junk), "cleared by a command inside it"


SPEC_DOCKERFILE = """\
FROM base:1 AS b
RUN mkdir -p /out/d /out/o && echo x > /out/d/x && chown -R 33:44 /out/d && echo y > /out/y \\
 && echo old > /out/o/old
RUN rm -rf /out/o && mkdir /out/o && echo new > /out/o/new
FROM base:1
COPY --chown=1000:1000 a.txt /home/a.txt
COPY --from=b /out /app
RUN stat -c '%u:%g %n' /home/a.txt /app/d/x /app/y /srv/www.txt > /owners && ls /app/o >> /owners
"""


def test_cached_build_as_user_needs_no_namespace(user):
    """A rootless build first runs outside its user namespace (no newuidmap/newgidmap execs):
    when every step is cached, that is the whole build, and a no-op rebuild costs what root's
    does. A step to run makes it start again inside, printing nothing of the first try. The
    COPY --from key, which hashes the owners of the other stage's files and sees through no
    opaque directory (user.overlay.opaque), is the same outside (host ids are shown as the
    namespace's)."""
    tar = multi_owner_tar(user.path("spec-base.tar"))
    ctx = user.path("spec")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(SPEC_DOCKERFILE)
    with open(os.path.join(ctx, "a.txt"), "w") as f:
        f.write("one\n")
    user.give(tar)
    user.give(ctx)
    iid = user.path("spec.iid")
    user("import", tar, "base:1")

    def build():
        p = user("-D", "build", "--progress", "plain", "--iidfile", iid, "-t", "spec:1", ctx)
        with open(iid) as f:
            return p.stderr, f.read()

    out, first = build()
    # The try outside printed its own --debug line too, but what it printed is dropped.
    assert "trying the build outside the user namespace" not in out, out
    assert "building again in the user namespace" in out, out
    out, again = build()
    assert again == first, out
    assert "trying the build outside the user namespace" in out, out
    assert "building again in the user namespace" not in out, out
    assert "is root in a user namespace" not in out, out
    assert out.count("exporting to image") == 1 and "5 cached" in out, out

    with open(os.path.join(ctx, "a.txt"), "w") as f:
        f.write("two\n")
    out, edited = build()
    assert edited != first
    # The try outside found COPY a.txt not cached; what it printed was dropped.
    assert re.search(r"Dockerfile:6: a step that is not cached needs the user namespace: "
                     r"building again in the user namespace", out), out
    assert "is root in a user namespace" in out and "from exec" not in out, out
    assert "trying the build outside" not in out, out
    assert out.count("exporting to image") == 1 and out.count("built:") == 1, out
    r = user("run", "--rm", "--network", "none", "spec:1", "cat", "/owners", "/home/a.txt")
    assert r.stdout.splitlines() == ["1000:1000 /home/a.txt", "33:44 /app/d/x", "0:0 /app/y",
                                     "33:33 /srv/www.txt", "new", "two"], r.stdout
    out, noop = build()
    assert noop == edited and "building again" not in out, out

    # The fallback when a thread is left after the try: slipway execs itself into the namespace.
    with open(os.path.join(ctx, "a.txt"), "w") as f:
        f.write("three\n")
    p = user("-D", "build", "--progress", "plain", "-t", "spec:1", ctx,
             env={"SLIPWAY_TEST_USERNS_REEXEC": "1"})
    assert "building again in the user namespace, from exec" in p.stderr, p.stderr
    assert p.stderr.count("exporting to image") == 1, p.stderr
    r = user("run", "--rm", "--network", "none", "spec:1", "cat", "/owners", "/home/a.txt")
    assert r.stdout.splitlines()[0] == "1000:1000 /home/a.txt" and r.stdout.endswith("three\n")

    # A Dockerfile on stdin is read once: that build enters at once.
    cmd, env = user.command(["-D", "build", "-f", "-", "-t", "spec:2", ctx])
    with open(os.path.join(ctx, "Dockerfile")) as f:
        p = subprocess.run(cmd, input=f.read(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, cwd=user.home, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "trying the build outside" not in p.stderr, p.stderr
    assert "is root in a user namespace" in p.stderr, p.stderr


def test_network_host_and_none_as_user(user):
    """`run --network host` reaches a listener on the host's loopback; `--network none` sees only
    lo; the store is the XDG default when no --root is given."""
    tar = make_busybox_rootfs_tar(user.path("bb.tar"))
    user.give(tar)
    xdg = user.path("xdg")
    os.makedirs(xdg)
    user.give(xdg)
    env = {"XDG_DATA_HOME": xdg}
    user("import", tar, "bb:1", root=False, env=env)
    assert os.path.isdir(os.path.join(xdg, "slipway", "blobs"))
    assert os.stat(os.path.join(xdg, "slipway")).st_mode & 0o077 == 0

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = []

    def accept():
        srv.settimeout(60)
        try:
            c, _ = srv.accept()
            got.append(c.recv(100))
            c.sendall(b"pong\n")
            c.close()
        except OSError:
            pass
    t = threading.Thread(target=accept)
    t.start()
    r = user("run", "--rm", "--network", "host", "bb:1", "sh", "-c",
             "echo ping | busybox nc 127.0.0.1 %d" % port, root=False, env=env)
    t.join(70)
    srv.close()
    assert got == [b"ping\n"], (got, r.stderr)
    assert "pong" in r.stdout

    r = user("run", "--rm", "--network", "none", "bb:1", "sh", "-c",
             "sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' '", root=False, env=env)
    assert r.stdout.split() == ["lo"], r.stdout
    r = user("run", "--rm", "--network", "host", "bb:1", "sh", "-c",
             "sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' '", root=False, env=env)
    with open("/proc/net/dev") as f:
        host = sorted(l.split(":")[0].strip() for l in f.read().splitlines()[2:])
    assert sorted(r.stdout.split()) == host


def test_run_publish_http_as_user(user):
    """`run`'s default network (own netns + slirp4netns) as the user: HTTP served by the
    container on a high port, published with -p 127.0.0.1::8080, fetched from the host. Where
    the user cannot open /dev/net/tun, the error says so and how to fix it."""
    tar = make_busybox_rootfs_tar(user.path("web.tar"),
                                  {"etc/index.html": b"served rootless\n"})
    user.give(tar)
    user("import", tar, "web:1")
    r = user("run", "--rm", "web:1", "true", check=False, tun=0o600)
    assert r.returncode != 0
    assert "/dev/net/tun" in r.stderr and "chmod 0666 /dev/net/tun" in r.stderr, r.stderr
    assert "mode 0600 here" in r.stderr and "--network host" in r.stderr, r.stderr
    assert "Permission denied" in r.stderr, r.stderr

    cmd, env = user.command(["run", "--rm", "-p", "127.0.0.1::8080", "web:1", "busybox",
                             "httpd", "-f", "-p", "8080", "-h", "/etc"], tun=0o666)
    p = subprocess.Popen(cmd, env=env, cwd=user.home, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert line.startswith("8080/tcp -> 127.0.0.1:"), line + p.stderr.read()
        port = int(line.rsplit(":", 1)[1])
        body = None
        for _ in range(100):  # httpd may not listen yet
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port,
                                            timeout=5) as resp:
                    body = resp.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"served rootless\n"
    finally:
        for _ in range(3):  # httpd as pid 1 ignores SIGTERM: the third makes slipway kill it
            if p.poll() is None:
                p.terminate()
                time.sleep(0.1)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise


def test_same_image_as_root(user, slipway_bin, tmp_path):
    """The same Dockerfile and base, built as root and rootless under SOURCE_DATE_EPOCH: the
    same layers (files, modes, owners, security.capability) and the same image digest."""
    env = {"SOURCE_DATE_EPOCH": EPOCH}
    tar = multi_owner_tar(user.path("base2.tar"))
    ctx = make_context(user.path("ctx2"))
    user.give(tar)
    user.give(ctx)
    user("import", tar, "base:1", "-c", 'CMD ["sh"]', env=env)
    rl = user("build", "-q", "-t", "same:1", ctx, env=env).stdout.strip().splitlines()[-1]
    oci_user = user.path("oci")
    user("save", "--format", "oci-dir", "-o", oci_user, "same:1")

    root_store = str(tmp_path / "root")

    def as_root(*args):
        p = subprocess.run([slipway_bin, "--root", root_store, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=dict(os.environ, **env))
        assert p.returncode == 0, p.stderr
        return p.stdout
    as_root("import", tar, "base:1", "-c", 'CMD ["sh"]')
    rt = as_root("build", "-q", "-t", "same:1", ctx).strip().splitlines()[-1]
    oci_root = str(tmp_path / "oci")
    as_root("save", "--format", "oci-dir", "-o", oci_root, "same:1")

    lu, lr = layer_listing(oci_user), layer_listing(oci_root)
    assert lu == lr
    caps = [x for x in lr if x[0] == "usr/bin/ping2"]
    assert caps and caps[0][6], caps  # the capability made it through COPY --from
    assert any(x[0].endswith(".wh..wh..opq") for x in lr)  # rm -rf /tmp && mkdir /tmp
    assert any(x[0] == "srv/.wh.nobody.txt" for x in lr)
    assert rl == rt, "rootless %s, root %s" % (rl, rt)


def test_python_base_as_user(user, python_base_tar):
    """The Debian + Python base (files of several owners, device nodes under /dev) imported and
    built on as the user: a RUN drops to `_apt` (as apt does) in a directory it was given, and
    the root file system is a real overlay mount (no copy)."""
    ctx = user.path("pyctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM py:1\n"
                "RUN mkdir /x && chown _apt:nogroup /x && setpriv --reuid=_apt --regid=nogroup "
                "--clear-groups sh -c 'id -un; touch /x/by-apt' && stat -c '%U:%G' /x/by-apt "
                "&& python3 -c 'print(\"py ok\")' && grep ' / ' /proc/mounts | cut -d' ' -f3,4\n")
    user.give(ctx)
    user("import", python_base_tar, "py:1")
    p = user("build", "--progress", "plain", "-t", "pyapp:1", ctx)
    out = step_output(p.stderr, "RUN mkdir /x")
    assert out[:3] == ["_apt", "_apt:nogroup", "py ok"], p.stderr
    fstype, opts = out[3].split(" ")
    assert fstype == "overlay" and "userxattr" in opts.split(","), p.stderr
    # The base's device nodes are not in its snapshot (no mknod in a user namespace): fsck
    # knows, and finds the store sound.
    f = user("fsck", check=False)
    assert f.returncode == 0, f.stdout + f.stderr


def test_registry_cache_push_pull_as_user(user, registry_open):
    """The registry round trip as the user: a build exports its cache records (--cache-to), a
    fresh store of the user's imports them (--cache-from) and runs no step; push, then pull into
    that store, gives the same image."""
    tar = make_busybox_rootfs_tar(user.path("rc.tar"))
    ctx = user.path("rcctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM bb:1\nCOPY a.txt /a.txt\nRUN chown 1000:1000 /a.txt && echo r > /r.txt\n")
    with open(os.path.join(ctx, "a.txt"), "w") as f:
        f.write("a\n")
    user.give(tar)
    user.give(ctx)
    store_b = user.path("store-b")
    cache = "%s/cache/rootless:%s" % (registry_open.host, user.name)
    epoch = {"SOURCE_DATE_EPOCH": EPOCH}  # the two imports of the base give the same image
    user("import", tar, "bb:1", env=epoch)
    user("build", "-t", "rc:1", "--cache-to", "type=registry,ref=%s,mode=max" % cache, ctx)
    user("--root", store_b, "import", tar, "bb:1", root=False, env=epoch)
    p = user("--root", store_b, "build", "--progress", "plain", "-t", "rc:1", "--cache-from",
             "type=registry,ref=" + cache, ctx, root=False)
    assert "COPY a.txt" in p.stderr and p.stderr.count("CACHED") == 2, p.stderr
    assert "1 step run" not in p.stderr and "0 steps run" in p.stderr, p.stderr
    ida = user("inspect", "-f", "{{.Id}}", "rc:1").stdout
    assert user("--root", store_b, "inspect", "-f", "{{.Id}}", "rc:1", root=False).stdout == ida
    ref = "%s/rootless/%s:1" % (registry_open.host, user.name)
    user("push", "-q", "rc:1", ref)
    user("--root", store_b, "pull", "-q", ref, root=False)
    assert user("--root", store_b, "inspect", "-f", "{{.Id}}", ref, root=False).stdout == ida
    r = user("--root", store_b, "run", "--rm", "--network", "host", ref, "stat", "-c", "%u %n",
             "/a.txt", "/r.txt", root=False)
    assert r.stdout == "1000 /a.txt\n0 /r.txt\n"


def test_pull_many_owners_as_user(user, slipway_bin, registry_open, tmp_path):
    """An image with files of many owners, modes and a file capability, pushed by root and
    pulled by the user: unpacked with those owners (subordinate ids on the host), and the same
    files in the image the user saves."""
    tar = multi_owner_tar(str(tmp_path / "owners.tar"))
    ref = "%s/rootless/owners-%s:1" % (registry_open.host, user.name)
    root_store = str(tmp_path / "root")
    for args in (["import", tar, "owners:1"], ["push", "-q", "owners:1", ref]):
        p = subprocess.run([slipway_bin, "--root", root_store, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        assert p.returncode == 0, p.stderr
    user("pull", "-q", ref)
    r = user("run", "--rm", "--network", "host", ref, "stat", "-c", "%u:%g %a %n", "/srv",
             "/srv/www.txt", "/srv/app.txt", "/srv/nobody.txt", "/srv/suid", "/srv/sticky")
    assert r.stdout.splitlines() == [
        "33:33 750 /srv", "33:33 640 /srv/www.txt", "1000:1000 600 /srv/app.txt",
        "65534:65534 644 /srv/nobody.txt", "0:0 4755 /srv/suid", "100:200 1777 /srv/sticky"], \
        r.stdout + r.stderr
    start, _ = user.subids("/etc/subuid")
    owners = {}
    for d, dirs, files in os.walk(os.path.join(user.root, "snapshots")):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(d, n), user.root).split(os.sep, 2)
            if len(rel) == 3 and rel[2].startswith("srv"):
                owners[rel[2]] = os.lstat(os.path.join(d, n)).st_uid
    assert owners["srv/www.txt"] == start + 32 and owners["srv/app.txt"] == start + 999, owners
    assert owners["srv/suid"] == user.uid, owners
    oci = user.path("owners-oci")
    user("save", "--format", "oci-dir", "-o", oci, ref)
    ping = [x for x in layer_listing(oci) if x[0] == "bin/ping"]
    assert ping and ping[0][6] == [("SCHILY.xattr.security.capability",
                                    CAP_NET_RAW.decode("utf-8", "surrogateescape"))], ping


@pytest.fixture(scope="module")
def wheel_index():
    """The loopback wheelhouse (scripts/wheelhouse.sh) the article's pip installs read, served
    from this process on a port the kernel picks; RUN steps share the host's network."""
    repo = os.path.dirname(os.path.dirname(EXAMPLE))
    wheelhouse = subprocess.run([os.path.join(repo, "scripts", "wheelhouse.sh")], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietFiles, directory=wheelhouse))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:%d/simple/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_article_example_as_user(user, python_base_tar, wheel_index):
    """The article's example (examples/django) built with its own Dockerfile as the user: `apt-get
    update && apt-get install build-essential` in a RUN (apt drops to `_apt`, a subordinate id,
    for its downloads), pip from the loopback wheelhouse, COPY --from between stages. Then run as
    the user on `run`'s own network: migrate, and gunicorn on the container's port 80 published
    on a high port of the host's loopback (slirp4netns), serving the page, its German
    translation and a static file; SIGTERM stops it cleanly. Needs Debian's apt mirror, as
    test_django does."""
    ctx = user.path("django")
    shutil.copytree(EXAMPLE, ctx)
    user.give(ctx)
    user("import", "--change", 'CMD ["python3"]', python_base_tar, "python:slim", timeout=900)
    p = user("build", "--progress=plain", "--build-arg", "PIP_INDEX_URL=" + wheel_index, "-t",
             "foo:final", ctx, timeout=1800)
    steps = parse_plain(p.stderr)
    assert find(steps, "apt-get install").status == "DONE", p.stderr[-3000:]
    assert "Setting up build-essential" in p.stderr, p.stderr[-3000:]
    assert "rootless:" not in p.stderr, p.stderr[-3000:]  # no single-id fallback here

    cmd, env = user.command(["run", "--rm", "-p", "127.0.0.1::80", "foo:final"], tun=0o666)
    c = subprocess.Popen(cmd, env=env, cwd=user.home, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = c.stderr.readline()
        assert line.startswith("80/tcp -> 127.0.0.1:"), line + c.stderr.read()
        url = "http://127.0.0.1:%d" % int(line.rsplit(":", 1)[1])
        logs = []
        threading.Thread(target=lambda: logs.extend(c.stderr), daemon=True).start()
        page = wait_http(url + "/", timeout=120, proc=c)
        assert "Hello from foo" in page, page
        assert "Hallo von foo" in get(url + "/", headers={"Accept-Language": "de"})
        assert "foo-static-marker" in get(url + "/static/foo/style.css")
    finally:
        if c.poll() is None:
            c.terminate()
        try:
            rc = c.wait(60)
        except subprocess.TimeoutExpired:
            c.kill()
            raise
    assert rc == 0, "".join(logs)[-3000:]


def test_single_id_fallback(request, base_dir):
    """A user without subordinate ids: slipway maps only the user's own ids, says which
    /etc/subuid line and usermod command are missing; a step that chowns then fails naming its
    Dockerfile line."""
    u = _make_user(request, base_dir, system=True)
    assert u.subids("/etc/subuid") is None
    tar = make_busybox_rootfs_tar(u.path("bb.tar"))
    ctx = u.path("ctx")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM bb:1\nRUN echo fine > /ok\nRUN touch /x && chown 1000:1000 /x\n")
    u.give(tar)
    u.give(ctx)
    with open("/etc/subuid") as f:  # before: another run's useradd may only add ranges
        ends = [int(x.split(":")[1]) + int(x.split(":")[2]) for x in f if x.count(":") == 2]
    p = u("import", tar, "bb:1")
    assert "no subordinate uids for `%s` in /etc/subuid" % u.name in p.stderr, p.stderr
    # The suggested range starts past every range in the file (it overlaps no other user's).
    m = re.search(r"`%s:(\d+):65536`.*usermod --add-subuids (\d+)-(\d+) --add-subgids "
                  r"\d+-\d+ %s" % (u.name, u.name), p.stderr)
    assert m and m.group(1) == m.group(2) and int(m.group(3)) == int(m.group(2)) + 65535, p.stderr
    assert int(m.group(2)) >= max(ends + [100000])
    p = u("build", "--progress", "plain", ctx, check=False)
    assert p.returncode != 0
    assert "Dockerfile:3" in p.stderr, p.stderr
    assert "chown" in p.stderr
    assert step_output(p.stderr, "RUN echo fine") == [] and "RUN echo fine" in p.stderr
    assert "RUN touch /x" in p.stderr


def test_context_mount_filtered_and_hostile_load_refused_as_user(user):
    """Issue 18 §3 and §4 as the user: the whiteout view that hides .dockerignore'd files from a
    RUN --mount=type=bind of the context is made in the user namespace (mknod 0/0), and a
    hostile docker-archive is refused with the store left as it was."""
    tar = user.path("bb.tar")
    make_busybox_rootfs_tar(tar)
    ctx = user.path("ctx3")
    os.makedirs(os.path.join(ctx, "sub"))
    for rel, data in ((".dockerignore", "secret.txt\nsub/*.log\n"), ("secret.txt", "hunter2\n"),
                      ("app.txt", "app\n"), ("sub/a.log", "log\n"), ("sub/ok.txt", "ok\n"),
                      ("Dockerfile", "FROM bb:ctx\nRUN --mount=type=bind,target=/ctx "
                       "find /ctx | sort > /seen; cat /ctx/secret.txt > /leak || true\n")):
        with open(os.path.join(ctx, rel), "w") as f:
            f.write(data)
    user.give(tar)
    user.give(ctx)
    user("import", tar, "bb:ctx")
    user("build", "-q", "-t", "ctxapp:1", ctx)
    seen = user("run", "--rm", "--network", "none", "ctxapp:1", "cat", "/seen",
                "/leak").stdout.split()
    assert seen == ["/ctx", "/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/app.txt", "/ctx/sub",
                    "/ctx/sub/ok.txt"], seen

    # A layer whose entry climbs out of its root, after a good one: refused, nothing stored.
    def tar_bytes(entries):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name, data in entries:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
        return buf.getvalue()

    import hashlib
    layers = [tar_bytes([("good.txt", b"good\n")]), tar_bytes([("../evil", b"x")])]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    files = {"c.json": config, "0/layer.tar": layers[0], "1/layer.tar": layers[1],
             "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"],
                                           "Layers": ["0/layer.tar", "1/layer.tar"]}]).encode()}
    archive = user.path("evil.tar")
    with tarfile.open(archive, "w") as tf:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    user.give(archive)
    blobs = sorted(os.listdir(os.path.join(user.root, "blobs", "sha256")))
    images = user("images", "-q").stdout
    p = user("load", "-i", archive, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "image `evil:1`" in p.stderr and diff_ids[1] in p.stderr, p.stderr
    assert "entry `../evil`" in p.stderr, p.stderr
    assert sorted(os.listdir(os.path.join(user.root, "blobs", "sha256"))) == blobs
    assert user("images", "-q").stdout == images


@pytest.fixture
def inner_root(tmp_path, slipway_bin, busybox_rootfs_tar):
    """A root file system holding slipway (the host's /usr is bound read-only at run time for
    its libraries), a busybox base tar and a build context."""
    r = tmp_path / "inner"
    for d in ("etc", "usr", "tmp", "ctx"):
        (r / d).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        os.symlink("usr/" + link, r / link)
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (r / "etc" / "group").write_text("root:x:0:\n")
    shutil.copy(slipway_bin, r / "slipway")
    shutil.copy(busybox_rootfs_tar, r / "bb.tar")
    (r / "ctx" / "Dockerfile").write_text(
        "FROM bb:1\nRUN echo built-inside > /x && chown 1000:1000 /x && rm -rf /tmp && mkdir /tmp"
        " && grep ' / ' /proc/mounts | cut -d' ' -f3\n")
    (tmp_path / "vol").mkdir()
    return r


def test_build_inside_unprivileged_container(inner_root, slipway_bin, tmp_path):
    """slipway builds inside a container slipway runs without --privileged (Docker's default
    capabilities, no CAP_SYS_ADMIN). The relaxations it needs, and nothing more: seccomp
    unconfined (the default filter refuses unshare without CAP_SYS_ADMIN) and unmasked /proc
    (the kernel mounts a proc in a user namespace only while a fully visible one exists); the
    store on a volume (overlayfs cannot use an overlay as its upper dir). Without either
    relaxation, the error names it."""
    outer = [slipway_bin, "--root", str(tmp_path / "outer"), "run", "--rm", "--network", "host",
             "--rootfs", str(inner_root), "-v", "/usr:/usr:ro",
             "-v", "%s:/store" % (tmp_path / "vol")]
    relax = {"seccomp": ["--security-opt", "seccomp=unconfined"],
             "systempaths": ["--security-opt", "systempaths=unconfined"]}

    def inner(opts, *args):
        return subprocess.run(outer + opts + ["/slipway", "--root", "/store", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=300)
    both = relax["seccomp"] + relax["systempaths"]
    p = inner(both, "import", "/bb.tar", "bb:1")
    assert p.returncode == 0, p.stderr
    p = inner(both, "build", "--progress", "plain", "-t", "in:1", "/ctx")
    assert p.returncode == 0, p.stderr
    assert step_output(p.stderr, "RUN echo built-inside") == ["overlay"], p.stderr
    p = inner(both, "run", "--rm", "--network", "host", "in:1", "stat", "-c", "%u:%g %n", "/x")
    assert p.stdout == "1000:1000 /x\n", p.stderr

    p = inner(relax["seccomp"], "build", "--no-cache", "/ctx")
    assert p.returncode != 0 and "systempaths=unconfined" in p.stderr, p.stderr
    p = inner(relax["systempaths"], "build", "--no-cache", "/ctx")
    assert p.returncode != 0 and "seccomp=unconfined" in p.stderr, p.stderr
