"""End-to-end tests of foreign platforms under emulation (issue 16): Debian's qemu-user-static
through the kernel's binfmt_misc, as BuildKit uses it. `run --platform linux/arm64` of an arm64
busybox says `aarch64`, a RUN of an arm64 build runs, a foreign image run without --platform
prints docker's notice, `import --platform` records the platform, and a missing or unusable
handler gets a message naming the package and the command.

The handler checks in the last tests use fake binfmt_misc directories ($SLIPWAY_BINFMT_MISC,
$SLIPWAY_BINFMT_CONF: test hooks): the machine's real handler is never unregistered."""
import os
import re
import platform as pyplatform

import pytest

from test_build import Builder
from test_rootless import base_dir, user  # noqa: F401 (fixtures: an unprivileged user)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(pyplatform.machine() == "aarch64",
                                reason="arm64 is native here: nothing to emulate")


def test_uname_under_run_platform(slipway, arm64_busybox_image):
    p = slipway("run", "--rm", "--platform", "linux/arm64", arm64_busybox_image, "uname", "-m")
    assert p.stdout == "aarch64\n"
    # On a machine where no test registered the handler yet, this run registers it and says so
    # (not as a warning); nothing else is printed.
    err = [l for l in p.stderr.splitlines() if not re.match(
        r"slipway: registered the binfmt_misc handler of qemu-user-static for linux/arm64 "
        r"\(`/usr/lib/binfmt\.d/qemu-aarch64\.conf`\), for the whole system until reboot$", l)]
    assert err == [], p.stderr
    # the variant docker's parser accepts for arm64 is the same platform
    p = slipway("run", "--rm", "--platform", "linux/arm64/v8", arm64_busybox_image, "uname", "-m")
    assert p.stdout == "aarch64\n"


def test_foreign_image_without_platform_runs_with_a_notice(slipway, arm64_busybox_image):
    p = slipway("run", "--rm", arm64_busybox_image, "sh", "-c", "uname -m; echo $((6 * 7))")
    assert p.stdout == "aarch64\n42\n"
    assert ("the requested image's platform (linux/arm64) does not match the detected host "
            "platform (linux/amd64)") in p.stderr, p.stderr


def test_run_platform_mismatch_is_docker_error(slipway, arm64_busybox_image):
    p = slipway("run", "--rm", "--platform", "linux/amd64", arm64_busybox_image, "true",
                check=False)
    assert p.returncode != 0
    assert ("image with reference busybox:arm64 was found but does not match the specified "
            "platform: wanted linux/amd64, actual: linux/arm64") in p.stderr, p.stderr
    p = slipway("run", "--rm", "--platform", "arm64", arm64_busybox_image, "true", check=False)
    assert p.returncode == 2 and "invalid platform `arm64`" in p.stderr, p.stderr


def test_import_platform_records_it(slipway, arm64_busybox_rootfs_tar):
    slipway("import", "--platform", "linux/arm/v7", arm64_busybox_rootfs_tar, "x:v7")
    i = slipway.inspect("x:v7")
    assert (i["Os"], i["Architecture"], i["Variant"]) == ("linux", "arm", "v7")
    slipway("import", "--platform", "linux/aarch64", arm64_busybox_rootfs_tar, "x:arm64")
    i = slipway.inspect("x:arm64")
    assert (i["Os"], i["Architecture"], "Variant" in i) == ("linux", "arm64", False)
    p = slipway("import", "--platform", "bogus", arm64_busybox_rootfs_tar, "x:bad", check=False)
    assert p.returncode == 2 and "invalid platform `bogus`" in p.stderr, p.stderr


DF = """FROM busybox:arm64
ARG TARGETPLATFORM TARGETARCH
RUN uname -m > /m && echo $TARGETPLATFORM $TARGETARCH >> /m
RUN ["cat", "/m"]
"""


def test_run_step_of_an_arm64_build(slipway, arm64_busybox_image, tmp_path):
    b = Builder(slipway, tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DF)
    img, out, steps = b.export(str(ctx), "--platform", "linux/arm64", "-t", "m:arm64")
    assert img.files()["m"].data == b"aarch64\nlinux/arm64 arm64\n"
    assert (img.config["os"], img.config["architecture"]) == ("linux", "arm64")
    assert "InvalidBaseImagePlatform" not in out, out
    p = slipway("run", "--rm", "m:arm64", "cat", "/m")
    assert p.stdout == "aarch64\nlinux/arm64 arm64\n"
    # again: cached
    _, out, steps = b.build(str(ctx), "--platform", "linux/arm64")
    assert [v for k, v in steps.items() if "RUN" in k] == ["CACHED", "CACHED"], out


def test_base_of_another_platform_warns(slipway, arm64_busybox_image, tmp_path):
    """FROM an arm64 image in a build for the host: BuildKit's InvalidBaseImagePlatform warning;
    the image says the stage's platform."""
    b = Builder(slipway, tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:arm64\nLABEL a=b\n")
    img, out, _ = b.export(str(ctx))
    assert ('Dockerfile:1: InvalidBaseImagePlatform: Base image busybox:arm64 was pulled with '
            'platform "linux/arm64", expected "linux/amd64" for current build') in out, out
    assert img.config["architecture"] == "amd64"


def fake_binfmt(tmp_path, entries=None):
    """A fake binfmt_misc dir (register, status, entries) and an empty binfmt.d dir: the env."""
    misc = tmp_path / "binfmt_misc"
    conf = tmp_path / "binfmt.d"
    misc.mkdir()
    conf.mkdir()
    (misc / "register").write_text("")
    (misc / "status").write_text("enabled\n")
    for name, text in (entries or {}).items():
        (misc / name).write_text(text)
    return {"SLIPWAY_BINFMT_MISC": str(misc), "SLIPWAY_BINFMT_CONF": str(conf)}


def test_missing_handler_names_package_and_command(slipway, arm64_busybox_image, tmp_path):
    env = fake_binfmt(tmp_path)
    b = Builder(slipway, tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DF)
    rc, out, steps = b.build(str(ctx), "--platform", "linux/arm64", check=False, env=env)
    assert rc != 0
    last = out.strip().splitlines()[-1]
    assert "Dockerfile:3" in last, out
    assert "no binfmt_misc handler runs linux/arm64 binaries" in last, out
    assert "apt-get install qemu-user-static" in last, out
    assert "qemu-aarch64.conf > %s/register" % env["SLIPWAY_BINFMT_MISC"] in last, out

    p = slipway("run", "--rm", "--platform", "linux/arm64", arm64_busybox_image, "true",
                check=False, env=env)
    assert p.returncode != 0
    assert "apt-get install qemu-user-static" in p.stderr, p.stderr


def test_handler_without_f_flag_is_refused(slipway, arm64_busybox_image, tmp_path):
    entry = ("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OC\noffset 0\n"
             "magic 7f454c460201010000000000000000000200b700\n"
             "mask ffffffffffffff00fffffffffffffffffeffffff\n")
    env = fake_binfmt(tmp_path, {"qemu-aarch64": entry})
    p = slipway("run", "--rm", "--platform", "linux/arm64", arm64_busybox_image, "true",
                check=False, env=env)
    assert p.returncode != 0
    assert "registered without the F flag" in p.stderr, p.stderr
    assert "`/usr/bin/qemu-aarch64-static` inside the container's root" in p.stderr, p.stderr


def test_rootless_emulation(user, arm64_busybox_rootfs_tar):
    """As an ordinary user (slipway in its own user namespace): the machine's handler serves the
    user's containers too; one that is missing cannot be registered from there, so the message
    says to do it as root."""
    import shutil
    tar = user.path("bb-arm64.tar")
    shutil.copy(arm64_busybox_rootfs_tar, tar)
    user.give(tar)
    user("import", "--platform", "linux/arm64", tar, "bb:arm64")
    p = user("run", "--rm", "--network", "host", "--platform", "linux/arm64", "bb:arm64",
             "uname", "-m")
    assert p.stdout == "aarch64\n", p.stderr

    misc, conf = user.path("binfmt_misc"), user.path("binfmt.d")
    os.mkdir(misc)
    os.mkdir(conf)
    for path, text in ((os.path.join(misc, "register"), ""),
                       (os.path.join(misc, "status"), "enabled\n"),
                       (os.path.join(conf, "qemu-aarch64.conf"),  # Debian's, as installed
                        open("/usr/lib/binfmt.d/qemu-aarch64.conf").read())):
        with open(path, "w") as f:
            f.write(text)
    user.give(misc)
    user.give(conf)
    p = user("run", "--rm", "--network", "host", "--platform", "linux/arm64", "bb:arm64", "true",
             check=False, env={"SLIPWAY_BINFMT_MISC": misc, "SLIPWAY_BINFMT_CONF": conf})
    assert p.returncode != 0
    assert "qemu-user-static is installed but its handler is not registered" in p.stderr, p.stderr
    assert "as root, run `cat %s/qemu-aarch64.conf > %s/register`" % (conf, misc) in p.stderr
    assert open(os.path.join(misc, "register")).read() == ""  # nothing was written


@pytest.mark.slow
def test_article_example_for_arm64_serves_its_page(slipway_bin, arm64_python_base_tar,
                                                   tmp_path):
    """The article's example (examples/django, its final Dockerfile) built for linux/arm64: every
    RUN (apt-get install build-essential, pip, compilemessages, collectstatic) under emulation;
    the arm64 image then serves its page, gunicorn itself emulated. Minutes long."""
    import functools
    import http.server
    import shutil
    import subprocess
    import threading
    import time

    from test_django import EXAMPLE, QuietFiles, Slipway, parse_plain, wait_http, Image

    wheelhouse = subprocess.run([os.path.join(REPO, "scripts", "wheelhouse.sh")], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietFiles, directory=wheelhouse))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    index = "http://127.0.0.1:%d/simple/" % server.server_address[1]
    root = str(tmp_path / "store")
    sw = Slipway(slipway_bin, root, index, str(tmp_path))
    try:
        sw("import", "--platform", "linux/arm64", "--change", 'CMD ["python3"]',
           arm64_python_base_tar, "python:slim", timeout=900)
        t0 = time.monotonic()
        p = sw("build", "--progress=plain", "--platform", "linux/arm64", "--build-arg",
               "PIP_INDEX_URL=" + index, "-t", "foo:arm64", EXAMPLE, timeout=3600)
        print("\ncold build of examples/django for linux/arm64 (emulated): %.0f s"
              % (time.monotonic() - t0))
        steps = parse_plain(p.stdout)
        assert steps and not [s for s in steps if s.status == "ERROR"], p.stdout[-3000:]
        assert "InvalidBaseImagePlatform" not in p.stdout
        out = str(tmp_path / "foo-arm64.tar")
        sw("save", "-o", out, "--format", "oci", "foo:arm64")
        img = Image(out)
        assert (img.config["os"], img.config["architecture"]) == ("linux", "arm64")
        # the app's compiled translation came from an emulated RUN; the base's python is arm64
        assert img.has("usr/local/lib/python3.11/dist-packages/foo/locale/de/LC_MESSAGES/django.mo")
        p = sw("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "python3",
               "foo:arm64", "-c", "import platform; print(platform.machine())")
        assert p.stdout.splitlines()[-1] == "aarch64", p.stdout
        c = sw.start("foo:arm64")
        try:
            page = wait_http(c.url + "/", timeout=600, proc=c.proc)
            assert "Hello from foo" in page, page
        finally:
            rc = c.stop(timeout=120)
        assert rc == 0, c.output()[-3000:]
        assert "does not match the detected host platform" in c.output()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)
