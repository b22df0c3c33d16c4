"""`RUN --mount=type=bind` of the build context (no from=) shows the context as COPY sees it:
what .dockerignore excludes is not there (BuildKit sends only the filtered context), and the
step's cache key covers exactly what the mount shows."""
import os

from test_build import Builder, make_ctx, ran

DOCKERIGNORE = "secret.txt\n**/*.log\nbig\n!big/keep.txt\n"

FILES = {
    ".dockerignore": DOCKERIGNORE,
    "secret.txt": "hunter2\n",
    "app.txt": "app v1\n",
    "sub/deep/debug.log": "noise\n",
    "sub/deep/ok.txt": "ok\n",
    "big/junk.bin": "junk\n",
    "big/keep.txt": "kept by an exception\n",
}


def dockerfile(flags=""):
    return ("FROM scratch\n"
            "COPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            "RUN --mount=type=bind,target=/ctx%s "
            "find /ctx | sort > /seen && cat /ctx/app.txt > /app && "
            "(cat /ctx/secret.txt > /leak 2>/dev/null || true)\n" % flags)


def run_step(steps):
    return [k for k in steps if "--mount=type=bind" in k]


def test_dockerignored_secret_is_invisible_and_keys_follow_the_view(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    ctx = make_ctx(tmp_path / "ctx", dockerfile(), FILES)
    _, _, steps = b.build(ctx, "-t", "img")
    assert len(run_step(steps)) == 1 and steps[run_step(steps)[0]] == "DONE"
    seen = slipway("run", "--rm", "img", "cat", "/seen").stdout.split()
    assert seen == sorted(["/ctx", "/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/busybox",
                           "/ctx/app.txt", "/ctx/sub", "/ctx/sub/deep", "/ctx/sub/deep/ok.txt",
                           "/ctx/big", "/ctx/big/keep.txt"])
    # The secret never reached the image.
    assert slipway("run", "--rm", "img", "cat", "/leak").stdout == ""
    # The context itself is untouched (no whiteout, no file was added).
    assert sorted(os.listdir(ctx)) == sorted(
        [".dockerignore", "Dockerfile", "busybox", "app.txt", "secret.txt", "sub", "big"])

    # An excluded file changes: the step stays cached (it cannot see it).
    with open(os.path.join(ctx, "secret.txt"), "w") as f:
        f.write("hunter3\n")
    with open(os.path.join(ctx, "big", "junk.bin"), "w") as f:
        f.write("other junk\n")
    _, _, steps = b.build(ctx, "-t", "img")
    assert ran(steps) == [], steps

    # An included file changes: the step runs again and sees the new content.
    with open(os.path.join(ctx, "sub", "deep", "ok.txt"), "w") as f:
        f.write("changed\n")
    _, _, steps = b.build(ctx, "-t", "img")
    assert ran(steps) == run_step(steps), steps
    with open(os.path.join(ctx, "app.txt"), "w") as f:
        f.write("app v2\n")
    _, _, steps = b.build(ctx, "-t", "img")
    assert ran(steps) == run_step(steps), steps
    assert slipway("run", "--rm", "img", "cat", "/app").stdout == "app v2\n"
    # Nothing of the views is left in the store's tmp/.
    assert os.listdir(os.path.join(slipway.root, "tmp")) == []


def test_rw_context_mount_is_filtered_and_writes_are_thrown_away(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    df = dockerfile(",rw").replace(
        "(cat /ctx/secret.txt", "echo new > /ctx/new.txt && rm /ctx/app.txt && "
        "(cat /ctx/secret.txt")
    ctx = make_ctx(tmp_path / "ctx", df, FILES)
    b.build(ctx, "-t", "img")
    seen = slipway("run", "--rm", "img", "cat", "/seen").stdout.split()
    assert "/ctx/secret.txt" not in seen and "/ctx/sub/deep/debug.log" not in seen
    assert "/ctx/big/keep.txt" in seen and "/ctx/big/junk.bin" not in seen
    assert slipway("run", "--rm", "img", "cat", "/leak").stdout == ""
    assert not os.path.exists(os.path.join(ctx, "new.txt"))
    assert open(os.path.join(ctx, "app.txt")).read() == "app v1\n"


def test_subdir_source_is_filtered(slipway, tmp_path):
    b = Builder(slipway, tmp_path)
    df = ("FROM scratch\n"
          "COPY busybox /bin/busybox\n"
          'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
          "RUN --mount=type=bind,source=sub,target=/s find /s | sort > /seen\n")
    ctx = make_ctx(tmp_path / "ctx", df, FILES)
    b.build(ctx, "-t", "img")
    assert slipway("run", "--rm", "img", "cat", "/seen").stdout.split() == [
        "/s", "/s/deep", "/s/deep/ok.txt"]
