"""Docker conformance: every case under tests/conformance/cases/ is built by slipway, saved as a
docker-archive and compared (tests/conformance/compare.py) with the summary of the image Docker
built from it, recorded in tests/conformance/expected/<case>.json by
tests/conformance/record.sh (CI has no dockerd). Layers, their tar entries (type, mode, owner,
size, bytes, link, xattrs, whiteouts, mtime class), config fields and history must match.

The bases (Debian's busybox-static in a rootfs of our own, and the mmdebstrap Python image) come
from the day's Debian archive, not from slipway: `compare.judge_base` compares the imported layer
with the tar slipway was given, and, when that is not the base Docker's recording was made on,
leaves out the bytes of files that RUN steps wrote with the base's own programs. So a security
update in the archive never fails the suite, and everything slipway decides is still judged."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import SlipwayRunner

HERE = os.path.dirname(os.path.abspath(__file__))
CONFORM = os.path.abspath(os.path.join(HERE, "..", "conformance"))
sys.path.insert(0, CONFORM)
import caseinfo  # noqa: E402
import compare  # noqa: E402
import rootfs  # noqa: E402

CASES = sorted(d for d in os.listdir(os.path.join(CONFORM, "cases"))
               if os.path.isfile(os.path.join(CONFORM, "cases", d, "Dockerfile")))


def uses(case, image):
    with open(os.path.join(CONFORM, "cases", case, "Dockerfile")) as f:
        return image in f.read()


@pytest.fixture(scope="module")
def conform_store(slipway_bin, tmp_path_factory):
    """One store for every case, with the bases imported as record.sh imports them in Docker."""
    s = SlipwayRunner(slipway_bin, tmp_path_factory.mktemp("conform") / "root")
    tar = str(tmp_path_factory.mktemp("conform-base") / "busybox.tar")
    rootfs.write(tar)
    s("import", tar, "conform-busybox:latest", "-c", 'CMD ["sh"]')
    s.bases = {"conform-busybox": base_of(tar)}
    return s


def base_of(tar):
    """What the comparator needs of a base tar: its clamp time and its summary as a layer."""
    t = compare.base_mtime_of(tar)
    return {"mtime": t, "summary": compare.summarise_rootfs(tar, t)}


def without(summary, ignore):
    """The summary minus what a case says Debian's Docker could not build the same way."""
    summary = dict(summary)
    if "history" in ignore:
        summary.pop("history", None)
        summary["layers"] = [dict(x, made_by="") for x in summary.get("layers", [])]
    return summary


def expect_failure(s, case, ctx, info):
    """A case whose build must fail (caseinfo.py): Docker failed too (its error recorded), or
    case.json says why only slipway does ("deliberate")."""
    with open(os.path.join(CONFORM, "expected", case + ".json")) as f:
        want = compare.json.load(f)
    assert "error" in want or info.get("deliberate"), "%s: Docker built it" % case
    p = s("build", "-q", "-t", "conform-case:" + case, *caseinfo.build_flags(str(ctx)), str(ctx),
          check=False)
    assert p.returncode == 1 and info["error"] in p.stderr, "%s: want a failure with %r:\n%s" % (
        case, info["error"], p.stderr)


@pytest.mark.parametrize("case", CASES)
def test_conformance(case, conform_store, python_base_tar_if, tmp_path):
    s = conform_store
    base = "conform-python" if uses(case, "conform-python") else "conform-busybox"
    if base == "conform-python":
        python_base_tar_if(s)
    ctx = tmp_path / "ctx"
    shutil.copytree(os.path.join(CONFORM, "cases", case), ctx, symlinks=True)
    caseinfo.prepare(str(ctx))
    info = caseinfo.load(str(ctx))
    if info.get("error"):
        expect_failure(s, case, ctx, info)
        return
    s("build", "-q", "-t", "conform-case:" + case, *caseinfo.build_flags(str(ctx)), str(ctx))
    archive = tmp_path / "image.tar"
    s("save", "--format", "docker", "-o", archive, "conform-case:" + case)
    got = compare.summarise_archive(str(archive), base_mtime=s.bases[base]["mtime"])
    with open(os.path.join(CONFORM, "expected", case + ".json")) as f:
        want = compare.json.load(f)
    if not compare.judge_base(want, got, s.bases[base]["summary"]):
        print("%s: the base is not the one Docker's recording was made on (the Debian archive "
              "moved): bytes of files written by RUN steps are not compared; "
              "tests/conformance/record.sh %s restores the strict comparison" % (case, case))
    ignore = info.get("ignore", [])
    want, got = compare.tolerate(want), compare.tolerate(got)
    lines = compare.diff(without(want, ignore), without(got, ignore), ("docker", "slipway"))
    # case.json "known": substrings of diff lines that are known, not yet fixed differences
    # (README.md lists them). Each must still show up, so a fix makes the test ask for the
    # case to be updated; anything else is a new difference.
    known = info.get("known", [])
    unexplained = [x for x in lines if not x.startswith("layer ") and
                   not any(k in x for k in known)]
    assert not unexplained, "%s differs from Docker:\n%s" % (case, "\n".join(lines))
    for k in known:
        assert any(k in x for x in lines), "%s: known difference %r is gone: update case.json" % (
            case, k)


@pytest.fixture(scope="module")
def python_base_tar_if():
    """Imports the Python base (scripts/base-image.sh) into the store the first time a case
    needs it."""
    done = []

    def need(s):
        if not done:
            p = subprocess.run([os.path.join(CONFORM, "..", "..", "scripts", "base-image.sh")],
                               stdout=subprocess.PIPE, text=True, check=True, timeout=3600)
            tar = p.stdout.strip().splitlines()[-1]
            s("import", tar, "conform-python:latest", "-c", 'CMD ["python3"]')
            s.bases["conform-python"] = base_of(tar)
            done.append(True)
    return need


def test_comparator_sees_differences(tmp_path):
    """The comparator itself: a changed mode, a missing whiteout and a changed Cmd are reported."""
    with open(os.path.join(CONFORM, "expected", "run-files.json")) as f:
        want = compare.json.load(f)
    got = compare.json.loads(compare.json.dumps(want))
    got["config"]["Cmd"] = ["other"]
    layer = got["layers"][2]
    whiteouts = [e for e in layer["entries"] if e.get("whiteout")]
    assert whiteouts, "run-files' third layer deletes files"
    layer["entries"].remove(whiteouts[0])
    layer["entries"][0]["mode"] = "0777"
    lines = compare.diff(want, got, ("docker", "slipway"))
    text = "\n".join(lines)
    assert "config.Cmd" in text
    assert whiteouts[0]["path"] + " only in docker" in text
    assert "mode" in text
