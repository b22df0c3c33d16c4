"""End-to-end tests of build platforms (issue 16): BUILD*/TARGET* args as BuildKit sets them, the
platform a stage runs on in its cache keys (a $BUILDPLATFORM stage shares its steps across
targets, a target stage never does), and the image config's os/architecture/variant.

These builds copy files only in their target stages, so they need no emulation (test_emulation.py
runs foreign binaries)."""
import platform as pyplatform

from test_build import Builder, Image, cached, make_ctx, ran

HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(pyplatform.machine(), pyplatform.machine())
FOREIGN = "arm64" if HOST != "arm64" else "amd64"

CROSS = """FROM --platform=$BUILDPLATFORM scratch AS build
COPY busybox /bin/busybox
ARG TARGETARCH
RUN ["/bin/busybox", "sh", "-c", "echo built > /out; echo $TARGETARCH > /arch"]
RUN ["/bin/busybox", "sh", "-c", "echo native > /native"]
FROM scratch
COPY --from=build /out /arch /native /
COPY f /f
"""


def test_build_stage_shared_across_targets_target_stage_not(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    # TARGETARCH is declared before the first RUN: its steps differ per target (BuildKit's too);
    # the stage without it would not; so move the ARG after one RUN to see both at once.
    df = CROSS.replace("ARG TARGETARCH\nRUN", "RUN", 1)
    df = df.replace('RUN ["/bin/busybox", "sh", "-c", "echo native > /native"]\n',
                    'ARG TARGETARCH\nRUN ["/bin/busybox", "sh", "-c", "echo $TARGETARCH > /native"]\n')
    ctx = make_ctx(tmp_path / "ctx", df, {"f": "f"})
    img1, out1, steps1 = b.export(ctx, "--platform", "linux/" + FOREIGN)
    assert len(ran(steps1)) == 5, out1
    files = img1.files()
    assert files["native"].data == (FOREIGN + "\n").encode()
    assert img1.config["architecture"] == FOREIGN and img1.config["os"] == "linux"

    img2, out2, steps2 = b.export(ctx, "--platform", "linux/" + HOST)
    # the build stage's COPY and first RUN are the same steps on the same (build) platform
    assert [k for k in cached(steps2) if k.startswith("[build")] == [
        "[build 1/3] COPY busybox /bin/busybox",
        '[build 2/3] RUN ["/bin/busybox", "sh", "-c", "echo built > /out; echo $TARGETARCH > /arch"]',
    ], out2
    # TARGETARCH differs, so the RUN that declares it runs again; the target stage's steps run on
    # another platform: never taken from the other target
    assert '[build 3/3] RUN ["/bin/busybox", "sh", "-c", "echo $TARGETARCH > /native"]' in ran(steps2)
    assert "[stage-1 2/2] COPY f /f" in ran(steps2), out2
    assert img2.files()["native"].data == (HOST + "\n").encode()
    assert img2.config["architecture"] == HOST

    # each target again: every step cached
    _, out3, steps3 = b.build(ctx, "--platform", "linux/" + FOREIGN)
    assert ran(steps3) == [], out3


def test_platform_args(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    df = """ARG TARGETPLATFORM
FROM --platform=$BUILDPLATFORM scratch AS build
COPY busybox /bin/busybox
ARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT
RUN ["/bin/busybox", "sh", "-c", "echo $BUILDPLATFORM,$BUILDOS,$BUILDARCH,$BUILDVARIANT,$TARGETPLATFORM,$TARGETOS,$TARGETARCH,$TARGETVARIANT > /args"]
FROM scratch
COPY --from=build /args /args
"""
    ctx = make_ctx(tmp_path / "ctx", df)
    img, out, _ = b.export(ctx, "--platform", "linux/arm/v7")
    assert img.files()["args"].data.decode() == (
        "linux/%s,linux,%s,,linux/arm/v7,linux,arm,v7\n" % (HOST, HOST))
    assert (img.config["os"], img.config["architecture"], img.config["variant"]) == (
        "linux", "arm", "v7")

    # normalised as containerd does: aarch64 is arm64, arm64/v8 is arm64
    img, out, _ = b.export(ctx, "--platform", "Linux/AArch64/v8")
    assert img.files()["args"].data.decode().split(",")[4:] == ["linux/arm64", "linux", "arm64",
                                                                "\n"]
    assert img.config["architecture"] == "arm64" and "variant" not in img.config


def test_bad_platform_is_a_usage_error(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    ctx = make_ctx(tmp_path / "ctx", "FROM scratch\nCOPY busybox /b\n")
    rc, out, _ = b.build(ctx, "--platform", "arm64", check=False)
    assert rc == 2 and "invalid platform `arm64`" in out and "OS/ARCH" in out, out
    # several platforms make an image index (tests/e2e/test_platforms.py)
    ctx = make_ctx(tmp_path / "ctx2", "FROM --platform=linux scratch\nCOPY busybox /b\n")
    rc, out, _ = b.build(ctx, check=False)
    assert rc != 0 and "Dockerfile:1" in out and "invalid platform `linux`" in out, out


def test_default_platform_from_environment(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    ctx = make_ctx(tmp_path / "ctx", "FROM scratch\nCOPY busybox /b\n")
    img, out, _ = b.export(ctx)
    assert img.config["architecture"] == HOST
    rc, out, _ = b.build(ctx, "-o", "type=oci,dest=%s" % (tmp_path / "envoci"),
                         env={"DOCKER_DEFAULT_PLATFORM": "linux/riscv64"})
    assert Image(str(tmp_path / "envoci")).config["architecture"] == "riscv64", out
