"""Installing slipway (issue 17): `make install` into a DESTDIR (binary, a man page for slipway
and each command, bash/zsh/fish completions), `make uninstall`, the man pages' markdown sources
kept equal to the binary's --help texts, and the Debian package built from the tree
(`dpkg-buildpackage -b`), installed into a root of its own, running `slipway --version`; the zsh
and fish completions loaded by the real shells (`zsh`, `fish`: `make deps`)."""
import filecmp
import os
import re
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def version():
    with open(os.path.join(REPO, "VERSION")) as f:
        return f.read().strip()


def commands(slipway_bin):
    out = subprocess.run([slipway_bin, "--help"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    block = out.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in block.splitlines() if line.startswith("  ")]


def test_man_sources_match_the_help(slipway_bin, tmp_path):
    """docs/man/*.md are what scripts/man-md.py writes for this binary: the manual never says
    other than --help (run `make man-md` after changing a help text or adding a command)."""
    out = tmp_path / "man"
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "man-md.py"), slipway_bin,
                    str(out)], check=True)
    names = sorted(os.listdir(out))
    assert names == sorted(["slipway.1.md"] + ["slipway-%s.1.md" % c
                                               for c in commands(slipway_bin)])
    committed = sorted(n for n in os.listdir(os.path.join(REPO, "docs", "man"))
                       if n.endswith(".1.md"))
    assert committed == names, "run `make man-md`"
    _, mismatch, errors = filecmp.cmpfiles(out, os.path.join(REPO, "docs", "man"), names,
                                           shallow=False)
    assert not mismatch and not errors, "docs/man differs from --help: run `make man-md` (%s)" % (
        mismatch + errors)


def make(*args, **kw):
    return subprocess.run(["make", "-C", REPO, "--no-print-directory", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def complete(bash_file, bindir, *words):
    """COMPREPLY of the installed bash completion for the command line `words` (the last one
    being the word under the cursor)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _slipway; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
    p = subprocess.run(["bash", "-c", script, "complete", bash_file, *words],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       check=True)
    return p.stdout.split()


def test_make_install_into_destdir_and_uninstall(slipway_bin, tmp_path):
    dest = tmp_path / "dest"
    p = make("install", "DESTDIR=%s" % dest, "PREFIX=/usr")
    assert p.returncode == 0, p.stdout
    usr = dest / "usr"
    binary = usr / "bin" / "slipway"
    assert os.access(binary, os.X_OK)
    v = subprocess.run([str(binary), "--version"], stdout=subprocess.PIPE, text=True, check=True)
    assert v.stdout.strip() == "slipway version " + version()
    man1 = usr / "share" / "man" / "man1"
    for name in ["slipway"] + ["slipway-" + c for c in commands(slipway_bin)]:
        roff = (man1 / (name + ".1")).read_text()
        assert ".TH %s 1 " % name.upper() in roff, roff[:200]
        assert re.search(r"^\.SH NAME\n(?:\.PP\n)?%s \\?- \S" % re.escape(name), roff, re.M), \
            roff[:400]
    assert ".SH OPTIONS" in (man1 / "slipway-build.1").read_text()
    assert "--no-cache" in (man1 / "slipway-build.1").read_text()
    share = usr / "share"
    bash = share / "bash-completion" / "completions" / "slipway"
    assert (share / "zsh" / "vendor-completions" / "_slipway").is_file()
    assert (share / "fish" / "vendor_completions.d" / "slipway.fish").is_file()
    bindir = str(usr / "bin")
    assert complete(str(bash), bindir, "slipway", "bu") == ["build"]
    assert "fsck" in complete(str(bash), bindir, "slipway", "")
    assert complete(str(bash), bindir, "slipway", "build", "--no-c") == ["--no-cache"]
    assert "--rm" in complete(str(bash), bindir, "slipway", "--root", "/x", "run", "--r")
    p = make("uninstall", "DESTDIR=%s" % dest, "PREFIX=/usr")
    assert p.returncode == 0, p.stdout
    left = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs]
    assert left == []


def test_debian_package_builds_installs_and_runs(tmp_path):
    """`make deb` (dpkg-buildpackage -b) on a copy of the tree; the package is installed with
    dpkg into a root of its own (its own dpkg database) and the installed slipway runs."""
    src = tmp_path / "slipway"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "build", "build-*", "corpus-*", "__pycache__", ".pytest_cache", ".debhelper"))
    p = subprocess.run(["make", "-C", str(src), "deb"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout[-4000:]
    deb = tmp_path / ("slipway_%s_%s.deb" % (version(), subprocess.run(
        ["dpkg", "--print-architecture"], stdout=subprocess.PIPE, text=True).stdout.strip()))
    assert deb.is_file(), os.listdir(tmp_path)
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"],
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "Package: slipway" in info and "Version: " + version() in info
    assert "libcurl4" in info  # dlopened: shlibs cannot see it
    assert "slirp4netns" in info  # exec'd by `run`'s default network
    root = tmp_path / "root"
    admin = root / "var" / "lib" / "dpkg"
    for d in ("info", "updates", "triggers"):
        (admin / d).mkdir(parents=True)
    (admin / "status").write_text("")
    p = subprocess.run(["dpkg", "--root=%s" % root, "--admindir=%s" % admin, "--force-depends",
                        "--force-not-root", "--log=/dev/null", "-i", str(deb)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    listed = subprocess.run(["dpkg", "--root=%s" % root, "--admindir=%s" % admin, "-L",
                             "slipway"], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "/usr/share/man/man1/slipway-build.1.gz" in listed
    assert "/usr/share/bash-completion/completions/slipway" in listed
    v = subprocess.run([str(root / "usr" / "bin" / "slipway"), "--version"],
                       stdout=subprocess.PIPE, text=True, check=True)
    assert v.stdout.strip() == "slipway version " + version()


def test_debian_changelog_version_is_the_version():
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        first = f.readline()
    assert first.startswith("slipway (%s) " % version()), first



# ---- zsh and fish completions, loaded by the real shells from their completion paths ----

ZSH_DRIVER = r'''
# zsh -f DRIVER COMPLETIONS_DIR WORD...: load _slipway as compinit does (fpath, #compdef), then
# run it for the command line WORD... (the last word under the cursor) and print the candidates
# it offers (compadd's and _describe's words; filtering by prefix is zsh's, not the function's).
fpath=($1 $fpath); shift
autoload -Uz compinit && compinit -u -D
[[ $_comps[slipway] == _slipway ]] || { print -u2 "compinit did not register _slipway"; exit 1; }
compadd() { local -a a; a=("$@"); print -rl -- "${(@)a[${a[(i)--]}+1,-1]}"; }
_describe() { local -a c; c=("${(@P)2}"); print -rl -- "${(@)c%%:*}"; }
_files() { print -r -- "<files>"; }
words=("$@"); CURRENT=$#
_slipway
'''


def shell_env(slipway_bin, store, tmp_path):
    """PATH with `slipway` (the binary under test) first, and the store the completions read."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "slipway").exists():
        os.symlink(slipway_bin, bindir / "slipway")
    return dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), SLIPWAY_ROOT=store)


def zsh_complete(env, tmp_path, *words):
    driver = tmp_path / "driver.zsh"
    driver.write_text(ZSH_DRIVER)
    p = subprocess.run(["zsh", "-f", str(driver), os.path.join(REPO, "completions"), "slipway",
                        *words], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(env, HOME=str(tmp_path)), timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout.split("\n")[:-1]


def fish_complete(env, tmp_path, line):
    """Candidates fish offers for `line`, the completion found in fish_complete_path as fish
    finds any command's."""
    p = subprocess.run(["fish", "--no-config", "-c",
                        "set -p fish_complete_path $argv[1]; complete -C $argv[2]",
                        os.path.join(REPO, "completions"), line], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True,
                       env=dict(env, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path)),
                       timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return [c.split("\t")[0] for c in p.stdout.splitlines()]


def store_with_image_and_container(slipway, busybox_image):
    slipway("tag", busybox_image, "localhost:5000/compl/app:v1")
    slipway("run", "--name", "compl-ctr", busybox_image, "true")


def test_zsh_completion(slipway, busybox_image, tmp_path):
    """zsh (compinit, fpath) completes commands, a command's flags, image names after run/rmi,
    container names after logs."""
    store_with_image_and_container(slipway, busybox_image)
    env = shell_env(slipway.binary, slipway.root, tmp_path)
    cmds = zsh_complete(env, tmp_path, "r")
    assert {"build", "run", "rmi", "ps", "logs", "container"} <= set(cmds), cmds
    assert zsh_complete(env, tmp_path, "--") == ["--root", "--debug", "--help", "--version"]
    flags = zsh_complete(env, tmp_path, "build", "--no")
    assert {"--no-cache", "--build-arg", "--target", "-t", "--tag"} <= set(flags), flags
    assert "--detach" in zsh_complete(env, tmp_path, "run", "-")
    for cmd in ("run", "rmi"):
        assert sorted(zsh_complete(env, tmp_path, cmd, "")) == [
            "busybox:latest", "localhost:5000/compl/app:v1"]
    assert zsh_complete(env, tmp_path, "logs", "") == ["compl-ctr"]
    assert zsh_complete(env, tmp_path, "build", "") == ["<files>"]


def test_fish_completion(slipway, busybox_image, tmp_path):
    """fish (its completion path) completes commands, a command's flags, image names after
    run/rmi, container names after logs, each filtered by the word typed."""
    store_with_image_and_container(slipway, busybox_image)
    env = shell_env(slipway.binary, slipway.root, tmp_path)
    cmds = fish_complete(env, tmp_path, "slipway r")
    assert {"recipe", "rm", "rmi", "run"} <= set(cmds), cmds
    assert all(c.startswith("r") for c in cmds), cmds  # filtered by what was typed
    cmds = fish_complete(env, tmp_path, "slipway ")
    assert {"build", "run", "images", "ps", "logs"} <= set(cmds), cmds
    assert fish_complete(env, tmp_path, "slipway build --no-") == ["--no-cache"]
    assert "--detach" in fish_complete(env, tmp_path, "slipway run --d")
    for cmd in ("run", "rmi"):
        assert sorted(fish_complete(env, tmp_path, "slipway %s " % cmd)) == [
            "busybox:latest", "localhost:5000/compl/app:v1"]
    assert fish_complete(env, tmp_path, "slipway rmi local") == ["localhost:5000/compl/app:v1"]
    assert fish_complete(env, tmp_path, "slipway logs ") == ["compl-ctr"]
