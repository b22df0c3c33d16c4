"""Multi-platform images: `build --platform A,B` makes one image index (one image per platform)
under the -t names; images / inspect / tag / rmi / prune / fsck / run know indexes."""
import json
import os

import pytest

HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
OTHER = "arm64" if HOST == "amd64" else "amd64"
PLATFORMS = "linux/%s,linux/%s" % (HOST, OTHER)


def write_context(tmp_path, dockerfile, files=None):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).write_text(text)
    return ctx


# COPY-only stages: nothing of them runs, so no emulation is needed for the foreign platform.
COPY_ONLY = """\
FROM scratch AS files
COPY a.txt /a.txt
FROM busybox
COPY --from=files /a.txt /b.txt
COPY c.txt /c.txt
"""


def build_multi(slipway, tmp_path, busybox_image, tag="multi:1"):
    ctx = write_context(tmp_path, COPY_ONLY, {"a.txt": "a\n", "c.txt": "c\n"})
    return slipway("build", "--progress", "plain", "--platform", PLATFORMS, "-t", tag, ctx)


def test_two_platforms_make_one_index(slipway, tmp_path, busybox_image):
    p = build_multi(slipway, tmp_path, busybox_image)
    # progress names carry the platform, as BuildKit's
    assert "[linux/%s stage-1 3/3] COPY c.txt /c.txt" % HOST in p.stderr
    assert "[linux/%s stage-1 3/3] COPY c.txt /c.txt" % OTHER in p.stderr
    assert "exporting manifest list sha256:" in p.stderr

    info = slipway.inspect("multi:1")
    assert info["Descriptor"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert info["Id"] == info["Descriptor"]["digest"]
    assert info["RepoTags"] == ["multi:1"]
    assert [m["platform"] for m in info["Manifests"]] == ["linux/" + HOST, "linux/" + OTHER]
    assert info["Architecture"] == HOST  # the host's image by default
    other = slipway.json("inspect", "--platform", "linux/" + OTHER, "multi:1")[0]
    assert other["Architecture"] == OTHER and other["Id"] == info["Id"]
    # the two images have the same layers (COPY only), their configs differ by architecture
    assert other["RootFS"] == info["RootFS"]

    # the index blob, byte for byte: an OCI index of the two manifests with their platforms
    raw = json.loads(slipway("inspect", "--raw", "index", "multi:1").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == [HOST, OTHER]
    assert [m["digest"] for m in raw["manifests"]] == [m["digest"] for m in info["Manifests"]]
    for m in raw["manifests"]:
        manifest = json.loads(slipway("inspect", "--raw", "manifest", m["digest"]).stdout)
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"

    # a platform the index lacks: the error lists what it has
    p = slipway("inspect", "--platform", "linux/s390x", "multi:1", check=False)
    assert p.returncode == 1
    assert "linux/%s, linux/%s" % (HOST, OTHER) in p.stderr and "--platform" in p.stderr

    # run of the index's name runs the host's image
    p = slipway("run", "--rm", "multi:1", "cat", "/b.txt", "/c.txt")
    assert p.stdout == "a\nc\n"


def test_images_lists_an_index_once(slipway, tmp_path, busybox_image):
    build_multi(slipway, tmp_path, busybox_image)
    out = slipway("images").stdout.splitlines()
    rows = [line for line in out if line.startswith("multi ")]
    assert len(rows) == 1
    assert rows[0].rstrip().endswith("linux/%s,linux/%s" % (HOST, OTHER))
    index_id = slipway.inspect("multi:1")["Id"]
    assert index_id[7:19] in rows[0]
    # its two images are not listed again, except with -a
    assert not any(line.startswith("<none>") for line in out)
    assert sum(line.startswith("<none>") for line in slipway("images", "-a").stdout.splitlines()) == 2
    assert index_id[7:19] in slipway("images", "-q").stdout.split()


def test_tag_rmi_prune_fsck(slipway, tmp_path, busybox_image):
    build_multi(slipway, tmp_path, busybox_image)
    info = slipway.inspect("multi:1")
    entries = [m["digest"] for m in info["Manifests"]]
    slipway("tag", "multi:1", "multi:2")
    assert slipway.inspect("multi:2")["Id"] == info["Id"]

    # an index keeps its images: prune -a leaves them, rmi of one of them is refused
    slipway("prune", "-a")
    for d in entries:
        slipway("inspect", d)
    p = slipway("rmi", entries[1], check=False)
    assert p.returncode == 1 and "image index" in p.stderr
    assert "no problems" in slipway("fsck").stdout

    # an image taking a name takes it from the index
    slipway("tag", "busybox", "multi:2")
    assert slipway.inspect("multi:2")["Descriptor"]["mediaType"].endswith("manifest.v1+json")

    # rmi of the last name: the index and its images go; prune then frees their blobs
    p = slipway("rmi", "multi:1")
    assert "Untagged: multi:1" in p.stdout and "Deleted: " + info["Id"] in p.stdout
    for d in entries:
        assert slipway("inspect", d, check=False).returncode == 1
    blob = os.path.join(slipway.root, "blobs", "sha256", info["Id"][7:])
    assert os.path.exists(blob)
    slipway("prune")
    assert not os.path.exists(blob)


def test_fsck_finds_a_missing_index_blob(slipway, tmp_path, busybox_image):
    build_multi(slipway, tmp_path, busybox_image)
    digest = slipway.inspect("multi:1")["Id"]
    os.unlink(os.path.join(slipway.root, "blobs", "sha256", digest[7:]))
    p = slipway("fsck", check=False)
    assert p.returncode == 1
    assert "image index docker.io/library/multi:1: its blob %s is not in the store" % digest \
        in p.stdout
    p = slipway("fsck", "--repair")
    assert "image index docker.io/library/multi:1 removed" in p.stdout
    assert slipway("inspect", "multi:1", check=False).returncode == 1
    assert "no problems" in slipway("fsck").stdout


def test_one_platform_is_a_plain_image(slipway, tmp_path, busybox_image):
    ctx = write_context(tmp_path, COPY_ONLY, {"a.txt": "a\n", "c.txt": "c\n"})
    slipway("build", "--platform", "linux/" + HOST, "-t", "single", ctx)
    info = slipway.inspect("single")
    assert info["Descriptor"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert "Manifests" not in info
    p = slipway("inspect", "--raw", "index", "single", check=False)
    assert p.returncode == 1 and "not an image index" in p.stderr


def test_platform_flag_errors(slipway, tmp_path, busybox_image):
    ctx = write_context(tmp_path, COPY_ONLY, {"a.txt": "a\n", "c.txt": "c\n"})
    p = slipway("build", "--platform", "arm64", ctx, check=False)
    assert p.returncode == 2 and "OS/ARCH" in p.stderr
    p = slipway("build", "--platform", PLATFORMS, "--recipe", "python", "-t", "x", ctx,
                check=False)
    assert p.returncode == 2 and "image index" in p.stderr
    # the same platform twice (two spellings) is one platform: a plain image
    slipway("build", "--platform", "linux/arm64,linux/aarch64", "-t", "one", ctx)
    assert slipway.inspect("one")["Descriptor"]["mediaType"].endswith("manifest.v1+json")


def test_one_platform_build_takes_the_name_of_an_index(slipway, tmp_path, busybox_image):
    """The host's image of the index, built again alone under its name, is the same image: the
    name still moves from the index to it (the rebuild is not 'unchanged')."""
    build_multi(slipway, tmp_path, busybox_image)
    index = slipway.inspect("multi:1")
    ctx = tmp_path / "ctx"
    slipway("build", "--platform", "linux/" + HOST, "-t", "multi:1", ctx)
    info = slipway.inspect("multi:1")
    assert info["Descriptor"]["mediaType"].endswith("manifest.v1+json")
    assert info["Descriptor"]["digest"] == index["Manifests"][0]["digest"]
    # the index stays, without a name
    assert slipway("inspect", index["Id"]).returncode == 0


def test_build_args_reach_every_platform(slipway, tmp_path, busybox_image):
    """--build-arg and the TARGET* args in each platform's stages; a used arg is not reported
    unused."""
    ctx = write_context(tmp_path, """\
FROM scratch AS files
ARG WHO
ARG TARGETARCH
COPY a.txt /$WHO-$TARGETARCH.txt
FROM busybox
COPY --from=files / /out/
""", {"a.txt": "a\\n"})
    p = slipway("build", "--platform", PLATFORMS, "--build-arg", "WHO=me", "-t", "args", ctx)
    assert "not consumed" not in p.stderr
    host = slipway("run", "--rm", "args", "ls", "/out").stdout.split()
    assert host == ["me-%s.txt" % HOST]
    # the other platform's image has its own file: TARGETARCH differs, so the keys do
    other = slipway.json("inspect", "--platform", "linux/" + OTHER, "args")[0]
    mine = slipway.inspect("args")
    assert other["RootFS"]["Layers"][:-1] == mine["RootFS"]["Layers"][:-1]
    assert other["RootFS"]["Layers"][-1] != mine["RootFS"]["Layers"][-1]


def progress_steps(stderr):
    """{name: [statuses]} from plain progress: '#3 [name] ...' then '#3 DONE 0.1s' or '#3
    CACHED'."""
    names, steps = {}, {}
    for line in stderr.splitlines():
        head, _, rest = line.partition(" ")
        if not head.startswith("#") or not rest:
            continue
        if rest.startswith("["):
            names[head] = rest
            steps.setdefault(rest, [])
        elif head in names and (rest.startswith("DONE") or rest == "CACHED"):
            steps[names[head]].append(rest.split()[0])
    return steps


CROSS = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN cat /proc/sys/kernel/random/uuid > /stamp
ARG TARGETARCH
RUN echo "$TARGETARCH" > /arch
FROM busybox
COPY --from=build /stamp /
COPY --from=build /arch /
"""


def test_cross_compilation_builder_runs_once(slipway, tmp_path, busybox_image):
    """The builder stage (FROM --platform=$BUILDPLATFORM) runs once, natively, for both targets:
    its steps before ARG TARGETARCH have the same keys for both, so one target runs them and the
    other waits for its records; the steps after it see each target's TARGETARCH."""
    ctx = write_context(tmp_path, CROSS)
    p = slipway("build", "--progress", "plain", "--platform", PLATFORMS, "-t", "cross", ctx)
    steps = progress_steps(p.stderr)
    shared = "[linux/%s build 2/3] RUN cat /proc/sys/kernel/random/uuid > /stamp" % HOST
    assert sorted(steps[shared]) == ["CACHED", "DONE"], p.stderr  # run once, a hit once
    # after ARG TARGETARCH: one RUN per target, labelled as BuildKit does when cross-compiling
    per_host = '[linux/%s build 3/3] RUN echo "$TARGETARCH" > /arch' % HOST
    per_other = '[linux/%s->%s build 3/3] RUN echo "$TARGETARCH" > /arch' % (HOST, OTHER)
    assert steps[per_host] == ["DONE"] and steps[per_other] == ["DONE"], p.stderr

    host = slipway.inspect("cross")
    other = slipway.json("inspect", "--platform", "linux/" + OTHER, "cross")[0]
    # the same /stamp layer (one run of the builder), another /arch layer (each TARGETARCH)
    assert host["RootFS"]["Layers"][-2] == other["RootFS"]["Layers"][-2]
    assert host["RootFS"]["Layers"][-1] != other["RootFS"]["Layers"][-1]
    assert slipway("run", "--rm", "cross", "cat", "/arch").stdout == HOST + "\n"
    # the other target's files, by a one-platform build of it from the same records
    out = tmp_path / "out"
    p = slipway("build", "--progress", "plain", "--platform", "linux/" + OTHER,
                "-o", "type=local,dest=%s" % out, ctx)
    runs = {k: v for k, v in progress_steps(p.stderr).items() if "] RUN " in k}
    assert len(runs) == 2 and all(v == ["CACHED"] for v in runs.values()), p.stderr
    assert (out / "arch").read_text() == OTHER + "\n"
    assert (out / "stamp").read_text() == slipway("run", "--rm", "cross", "cat", "/stamp").stdout

    # --no-cache runs every step again, the shared one still once (BuildKit merges it too)
    p = slipway("build", "--progress", "plain", "--no-cache", "--platform", PLATFORMS,
                "-t", "cross", ctx)
    steps = progress_steps(p.stderr)
    assert sorted(steps[shared]) == ["CACHED", "DONE"], p.stderr
    assert steps[per_host] == ["DONE"] and steps[per_other] == ["DONE"], p.stderr
    again = slipway.inspect("cross")
    assert again["RootFS"]["Layers"][-2] != host["RootFS"]["Layers"][-2]  # a new /stamp
    other = slipway.json("inspect", "--platform", "linux/" + OTHER, "cross")[0]
    assert again["RootFS"]["Layers"][-2] == other["RootFS"]["Layers"][-2]


def test_index_says_the_platform_built_for(slipway, tmp_path, busybox_image):
    """A final stage on $BUILDPLATFORM is the same image for both targets: the index lists it
    under each target platform, as BuildKit's does."""
    ctx = write_context(tmp_path, "FROM --platform=$BUILDPLATFORM busybox\nCOPY a.txt /\n",
                        {"a.txt": "a\n"})
    slipway("build", "--platform", PLATFORMS, "-t", "same", ctx)
    info = slipway.inspect("same")
    assert [m["platform"] for m in info["Manifests"]] == ["linux/" + HOST, "linux/" + OTHER]
    assert info["Manifests"][0]["digest"] == info["Manifests"][1]["digest"]


UNAME = {"amd64": "x86_64", "arm64": "aarch64"}


def test_two_platforms_run_steps_under_emulation(slipway, tmp_path, busybox_image,
                                                 arm64_busybox_image):
    """A multi-stage Dockerfile with RUN steps in the target stages, for the host and arm64 (RUN
    under qemu-user): the base is itself an index, resolved for each stage's platform; `run
    --platform` picks an image of the index."""
    if HOST != "amd64":
        pytest.skip("the foreign fixture is arm64")
    slipway("tag", busybox_image, "busybox:amd64")
    base = tmp_path / "base"
    base.mkdir()
    (base / "Dockerfile").write_text("ARG TARGETARCH\nFROM busybox:${TARGETARCH}\n")
    slipway("build", "--platform", PLATFORMS, "-t", "bb", base)
    assert [m["platform"] for m in slipway.inspect("bb")["Manifests"]] == [
        "linux/amd64", "linux/arm64"]

    ctx = write_context(tmp_path, """\
FROM bb AS base
RUN uname -m > /m
FROM scratch AS files
COPY a.txt /a.txt
FROM base
COPY --from=files /a.txt /a.txt
RUN cat /m /a.txt > /out
""", {"a.txt": "a\n"})
    p = slipway("build", "--progress", "plain", "--platform", PLATFORMS, "-t", "app", ctx)
    assert "InvalidBaseImagePlatform" not in p.stderr  # each stage got the base for its platform
    steps = progress_steps(p.stderr)
    assert steps["[linux/arm64 base 2/2] RUN uname -m > /m"] == ["DONE"]
    assert steps["[linux/amd64 base 2/2] RUN uname -m > /m"] == ["DONE"]
    for arch in ("amd64", "arm64"):
        out = slipway("run", "--rm", "--platform", "linux/" + arch, "app", "cat", "/out").stdout
        assert out == UNAME[arch] + "\na\n"
        info = slipway.json("inspect", "--platform", "linux/" + arch, "app")[0]
        assert info["Architecture"] == arch
    # the same build again: every step of both platforms is a cache hit, the index the same
    digest = slipway.inspect("app")["Id"]
    p = slipway("build", "--progress", "plain", "--platform", PLATFORMS, "-t", "app", ctx)
    ends = [s for k, v in progress_steps(p.stderr).items() if "] RUN " in k for s in v]
    assert ends == ["CACHED"] * 4, p.stderr
    assert slipway.inspect("app")["Id"] == digest
