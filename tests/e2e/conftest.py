"""Shared pytest fixtures for slipway's end-to-end tests. Add fixtures; do not rewrite others'.
Tests drive the binary named by env SLIPWAY (absolute path) with a temp store."""
import os

import pytest

# Registry fixtures (docker-registry open / htpasswd / bearer token, OCI layouts, flaky proxy).
from registry_fixtures import (  # noqa: F401
    flaky_proxy, reg_env, registry_basic, registry_open, registry_token)


@pytest.fixture(scope="session")
def slipway_bin():
    path = os.environ.get("SLIPWAY")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "slipway")
    path = os.path.abspath(path)
    assert os.access(path, os.X_OK), "build slipway first (make), or set SLIPWAY"
    return path


# ---- store fixtures: a runner with its own temp store, and base rootfs tarballs ----

import io
import json as _json
import subprocess
import tarfile

BUSYBOX_BIN = "/bin/busybox"
_REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class SlipwayRunner:
    """Runs build/slipway with `--root ROOT` (a fresh temp store per test).
    s("images") -> CompletedProcess (text); check=True asserts exit 0 and shows the output;
    s.json("inspect", "img") -> parsed stdout; s.inspect("img") -> the first inspect object."""

    def __init__(self, binary, root):
        self.binary = binary
        self.root = str(root)

    def __call__(self, *args, check=True, timeout=600, input=None, env=None):
        p = subprocess.run([self.binary, "--root", self.root, *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=input is None
                           or isinstance(input, str), input=input, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
        if check:
            assert p.returncode == 0, "slipway %s exited %d:\n%s\n%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args):
        return _json.loads(self(*args).stdout)

    def inspect(self, image):
        return self.json("inspect", image)[0]


@pytest.fixture
def slipway(slipway_bin, tmp_path):
    return SlipwayRunner(slipway_bin, tmp_path / "root")


def make_busybox_rootfs_tar(path, extra_files=None, busybox_bin=BUSYBOX_BIN, applets=()):
    """A tiny rootfs: /bin/busybox (Debian's busybox-static) + applet symlinks, /etc/passwd,
    /etc/group, /tmp. extra_files: {"etc/x": b"..."}; busybox_bin: another architecture's
    busybox (scripts/busybox-arch.sh); applets: more applet links."""
    entries = []

    def add(name, kind, data=b"", mode=0o755, link=""):
        ti = tarfile.TarInfo(name)
        ti.mtime = 1700000000
        ti.mode = mode
        if kind == "dir":
            ti.type = tarfile.DIRTYPE
        elif kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, link
        else:
            ti.size = len(data)
        entries.append((ti, data))

    for d in ("bin", "etc", "tmp", "root", "usr", "usr/bin"):
        add(d, "dir", mode=0o1777 if d == "tmp" else 0o755)
    with open(busybox_bin, "rb") as f:
        add("bin/busybox", "file", f.read())
    for applet in ("sh", "ls", "cat", "echo", "env", "id", "mkdir", "rm", "touch", "sleep",
                   "true", "false", "wc", "grep", "sed", "stat", "test", "pwd", "whoami",
                   *applets):
        add("bin/" + applet, "symlink", link="busybox")
    add("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", mode=0o644)
    add("etc/group", "file", b"root:x:0:\nnogroup:x:65534:\n", mode=0o644)
    for name, data in (extra_files or {}).items():
        add(name, "file", data, mode=0o644)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.isfile() else None)
    return str(path)


@pytest.fixture(scope="session")
def busybox_rootfs_tar(tmp_path_factory):
    """Path of a busybox rootfs tar (see make_busybox_rootfs_tar)."""
    return make_busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "busybox-rootfs.tar")


@pytest.fixture(scope="session")
def python_base_tar():
    """Path of the Debian + Python base rootfs tar (scripts/base-image.sh; cached)."""
    p = subprocess.run([os.path.join(_REPO, "scripts", "base-image.sh")], stdout=subprocess.PIPE,
                       text=True, check=True, timeout=3600)
    path = p.stdout.strip().splitlines()[-1]
    assert os.path.getsize(path) > 0
    return path


@pytest.fixture(scope="session")
def arm64_busybox_rootfs_tar(tmp_path_factory):
    """The busybox rootfs with Debian's arm64 busybox-static (scripts/busybox-arch.sh: extracted
    from the package, cached in /var/cache/slipway) and `uname`: a small foreign base."""
    p = subprocess.run([os.path.join(_REPO, "scripts", "busybox-arch.sh"), "arm64"],
                       stdout=subprocess.PIPE, text=True, check=True, timeout=900)
    binary = p.stdout.strip().splitlines()[-1]
    return make_busybox_rootfs_tar(tmp_path_factory.mktemp("busybox-arm64") / "rootfs.tar",
                                   busybox_bin=binary, applets=("uname",))


@pytest.fixture
def arm64_busybox_image(slipway, arm64_busybox_rootfs_tar):
    """`busybox:arm64` imported with --platform linux/arm64 (CMD ["sh"]); returns the name.
    Running it needs emulation (qemu-user-static; slipway registers its handler as root)."""
    slipway("import", "--platform", "linux/arm64", arm64_busybox_rootfs_tar, "busybox:arm64",
            "-c", 'CMD ["sh"]')
    return "busybox:arm64"


@pytest.fixture(scope="session")
def arm64_python_base_tar():
    """The Debian + Python base for arm64 (`ARCH=arm64 scripts/base-image.sh`; cached; the first
    build runs Debian's package scripts under emulation: many minutes)."""
    p = subprocess.run([os.path.join(_REPO, "scripts", "base-image.sh")], stdout=subprocess.PIPE,
                       text=True, check=True, timeout=7200, env=dict(os.environ, ARCH="arm64"))
    path = p.stdout.strip().splitlines()[-1]
    assert os.path.getsize(path) > 0
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes long (emulated builds); the quick path "
                            "skips them with -m 'not slow', make test runs them")


@pytest.fixture
def busybox_image(slipway, busybox_rootfs_tar):
    """`busybox:latest` imported into the test's store (CMD ["sh"]); returns the name."""
    slipway("import", busybox_rootfs_tar, "busybox:latest", "-c", 'CMD ["sh"]')
    return "busybox:latest"
