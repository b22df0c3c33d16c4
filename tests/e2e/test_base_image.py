"""scripts/base-image.sh, the python:slim stand-in, with a stand-in mmdebstrap on PATH (the real one
takes minutes and the Debian mirror): it says what it makes and lets mmdebstrap report each phase
(no --quiet), caches the tarball by what it is made of, and makes it once when two callers
start together."""
import os
import subprocess
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "base-image.sh")

STUB = textwrap.dedent("""\
    #!/bin/sh
    # records its arguments, reports two phases as mmdebstrap does, writes TARGET (after the suite)
    echo "$*" >> "$STUB_LOG"
    echo "I: downloading packages with apt..." >&2
    while [ ! -e "$STUB_LOG.go" ]; do sleep 0.05; done
    echo "I: creating tarball..." >&2
    while [ "$1" != bookworm ]; do shift; done
    echo rootfs > "$2"
    """)


def run_script(tmp_path, stub_log, **kw):
    env = dict(os.environ, SLIPWAY_CACHE=str(tmp_path / "cache"), STUB_LOG=str(stub_log),
               PATH="%s:%s" % (tmp_path / "bin", os.environ["PATH"]))
    return subprocess.Popen([SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kw)


def test_base_image_reports_progress_and_builds_once(tmp_path):
    (tmp_path / "bin").mkdir()
    stub = tmp_path / "bin" / "mmdebstrap"
    stub.write_text(STUB)
    stub.chmod(0o755)
    log = tmp_path / "calls"
    a = run_script(tmp_path, log)
    first = a.stderr.readline()  # a holds the lock and its mmdebstrap waits for the go
    b = run_script(tmp_path, log)
    assert "waiting for it" in b.stderr.readline()
    (tmp_path / "calls.go").touch()
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=60), b.communicate(timeout=60)
    err_a = first + err_a
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    path = out_a.strip()
    assert out_b.strip() == path and path.startswith(str(tmp_path / "cache" / "python-slim-"))
    assert open(path).read() == "rootfs\n"
    calls = log.read_text().splitlines()
    assert len(calls) == 1, calls  # made once: the second caller waited for the first
    assert "--quiet" not in calls[0].split() and "--format=tar" in calls[0].split()
    # a line per phase: its own, then mmdebstrap's, then the time it took
    lines = err_a.splitlines()
    assert lines[0].startswith("base image: mmdebstrap bookworm + python3,"), err_a
    assert "I: downloading packages with apt..." in lines and "I: creating tarball..." in lines
    assert lines[-1].startswith("base image: done in "), err_a
    assert "I: " not in err_b, err_b
    # cached: a third run prints the path and runs nothing
    c = run_script(tmp_path, log)
    out_c, err_c = c.communicate(timeout=60)
    assert out_c.strip() == path and err_c == "" and len(log.read_text().splitlines()) == 1
