"""End-to-end tests of the frontend commands: `slipway parse [--dump]` and `slipway debug expand`.

The parse vectors (tests/e2e/parse_vectors/*/{Dockerfile,result}) pin down BuildKit's parser
behaviour; tests/e2e/dockerfiles/ holds real Dockerfiles from open-source Python/Django projects
that must parse without error."""
import glob
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = sorted(glob.glob(os.path.join(HERE, "parse_vectors", "*", "Dockerfile")))
REAL = sorted(glob.glob(os.path.join(HERE, "dockerfiles", "*.Dockerfile")))


def run(slipway_bin, *args, stdin=None):
    return subprocess.run([slipway_bin, *args], input=stdin, capture_output=True, timeout=60)


@pytest.mark.parametrize("dockerfile", VECTORS, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_parse_dump_vectors(slipway_bin, dockerfile):
    with open(os.path.join(os.path.dirname(dockerfile), "result"), "rb") as f:
        want = f.read()
    r = run(slipway_bin, "parse", "--dump", dockerfile)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == want


def test_vectors_present():
    assert len(VECTORS) >= 10
    assert len(REAL) >= 6


@pytest.mark.parametrize("dockerfile", REAL, ids=os.path.basename)
def test_real_dockerfiles_parse(slipway_bin, dockerfile):
    r = run(slipway_bin, "parse", "--dump", dockerfile)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines and all(line.startswith("(") and line.endswith(")") for line in lines)
    assert any(line.startswith("(from ") for line in lines)
    # the summary form works on the same files
    r = run(slipway_bin, "parse", dockerfile)
    assert r.returncode == 0 and b"instruction" in r.stdout


def test_parse_known_dump_details(slipway_bin, tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text('FROM python:3.12-slim AS base\nENV A 1 B "x"\nONBUILD RUN echo x\nNOPE a\n'
                  'RUN <<EOF\nbody not printed\nEOF\n')
    r = run(slipway_bin, "parse", "--dump", str(df))
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert out[0] == '(from "python:3.12-slim" "AS" "base")'
    assert out[1] == '(env "A" "1 B \\"x\\"" "")'
    assert out[2] == '(onbuild (run "echo x"))'
    assert out[3] == '(nope "")'
    assert out[4] == '(run "<<EOF")'
    assert len(out) == 5


def test_parse_stdin(slipway_bin):
    r = run(slipway_bin, "parse", "--dump", "-", stdin=b"FROM scratch\nCMD [\"/app\"]\n")
    assert r.returncode == 0
    assert r.stdout == b'(from "scratch")\n(cmd "/app")\n'


@pytest.mark.parametrize("text,line,col,needle", [
    ("FROM x\n\n  ENV a=b c\n", 3, 3, "can't find = in \"c\""),
    ("# escape=x\nFROM x\n", 1, 1, "invalid escape token"),
    ("FROM x\nRUN <<EOF\nnever ends\n", 2, 1, "unterminated heredoc"),
    ("FROM x\nCMD [\"a\", 1]\n", 2, 1, "arrays must be comprised of strings only"),
    ("# just a comment\n", 1, 1, "file with no instructions"),
])
def test_parse_errors(slipway_bin, tmp_path, text, line, col, needle):
    df = tmp_path / "Dockerfile"
    df.write_text(text)
    r = run(slipway_bin, "parse", "--dump", str(df))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert f"{df}:{line}:{col}: " in err
    assert needle in err
    assert r.stdout == b""
    if "no instructions" not in needle:
        src_line = text.splitlines()[line - 1]
        assert f"{line} | {src_line}" in err


def test_parse_line_too_long(slipway_bin, tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text("FROM x\nRUN " + "a" * 70000 + "\n")
    r = run(slipway_bin, "parse", str(df))
    assert r.returncode == 2
    assert b":2:1: dockerfile line greater than max allowed size of 65535" in r.stderr


def test_parse_missing_file_and_usage(slipway_bin, tmp_path):
    r = run(slipway_bin, "parse", str(tmp_path / "nope"))
    assert r.returncode == 2 and b"nope" in r.stderr
    r = run(slipway_bin, "parse")
    assert r.returncode == 2
    r = run(slipway_bin, "parse", "--help")
    assert r.returncode == 0 and b"--dump" in r.stdout and b"strconv" not in r.stderr


@pytest.mark.parametrize("args,want", [
    (["--env", "A=hello", "${A}-$A"], "hello-hello"),
    (["${UNSET:-default}"], "default"),
    (["--env", "E=", "${E-set}|${E:-empty}"], "|empty"),
    (["--env", "V=foo/bar/baz", "${V#*/} ${V##*/} ${V%/*} ${V%%/*}"], "bar/baz baz foo/bar foo"),
    (["--env", "V=a.b.c", "${V/./_} ${V//./_}"], "a_b.c a_b_c"),
    (["--env", "A=x", "${A:+alt} ${A+alt} ${NO+alt}|"], "alt alt |"),
    (["'$A' \"$A\" \\$A", "--env", "A=1"], None),
    (["--env", "A=1", "'$A' \"$A\" \\$A"], "$A 1 $A"),
    (["--escape", "`", "--env", "A=1", "`$A\\n"], "$A\\n"),
])
def test_debug_expand(slipway_bin, args, want):
    r = run(slipway_bin, "debug", "expand", *args)
    if want is None:
        assert r.returncode == 2  # an option after WORD is a usage error
        return
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == want + "\n"


def test_debug_expand_words(slipway_bin):
    r = run(slipway_bin, "debug", "expand", "--words", "--env", "L=a  b", "x$L 'c d' \"e $L\"")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().splitlines() == ["xa", "b", "c d", "e a  b"]


@pytest.mark.parametrize("word,needle", [
    ("${A", "missing '}'"),
    ("${}", "bad substitution"),
    ("${A?must be set}", "A: must be set"),
    ("'open", "single-quote"),
])
def test_debug_expand_errors(slipway_bin, word, needle):
    r = run(slipway_bin, "debug", "expand", word)
    assert r.returncode == 1
    assert needle.encode() in r.stderr
    assert r.stdout == b""


def test_debug_help(slipway_bin):
    r = run(slipway_bin, "debug", "--help")
    assert r.returncode == 0 and b"expand" in r.stdout
    r = run(slipway_bin, "debug", "expand", "--help")
    assert r.returncode == 0 and b"--words" in r.stdout
    r = run(slipway_bin, "debug", "nope")
    assert r.returncode == 2


def test_unknown_instruction_suggests_nearest(slipway_bin, tmp_path):
    """`parse` warns about an unknown keyword, with the nearest instruction, and the build fails
    on it with the same suggestion, naming file, line and column."""
    df = tmp_path / "Dockerfile"
    df.write_text("FROM scratch\nRUNN echo hi\n")
    p = run(slipway_bin, "parse", str(df))
    assert p.returncode == 0
    assert b"%s:2:1: unknown instruction: RUNN (did you mean RUN?)" % str(df).encode() in p.stderr
    p = run(slipway_bin, "--root", str(tmp_path / "store"), "build", str(tmp_path))
    assert p.returncode == 2
    assert b"Dockerfile:2:1: unknown instruction: RUNN (did you mean RUN?)" in p.stderr, p.stderr
