"""Containers in the background without a daemon (issue 17): `run -d` with a monitor process,
`ps`, `logs`, `stop`, `kill`, `rm`, `container prune`, `exec`, `--restart`. Real binary, busybox
image from conftest; every test uses its own store and container names, and looks for leftover
processes only among the ones its own container started (other tests run at the same time)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state(slipway, name):
    with open(os.path.join(slipway.root, "containers", name, "state.json")) as f:
        return json.load(f)


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def descendants(pid):
    """pid and every process under it, from /proc's children lists."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def ps_row(slipway, name, *flags):
    for line in slipway("ps", *flags).stdout.splitlines()[1:]:
        if line.split()[-1] == name:
            return line
    return None


def procs_named(name):
    """Processes whose command line mentions name (the test's unique container name)."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if name.encode() in f.read() and alive(int(p)):
                        found.append(int(p))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def uniq(prefix):
    return "%s-%d-%d" % (prefix, os.getpid(), time.monotonic_ns() % 10**9)


def test_detached_server_with_published_port(slipway, busybox_image, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    port = free_port()
    name = uniq("web")
    r = slipway("run", "-d", "--name", name, "-p", "127.0.0.1:%d:80" % port, "-v",
                "%s:/www:ro" % www, busybox_image, "sh", "-c",
                "echo starting; echo warn >&2; exec httpd -f -v -p 80 -h /www")
    cid = r.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid), r.stdout
    # the id prints once pid 1 runs: the state says so, with the monitor as owner
    st = state(slipway, name)
    assert st["Status"] == "running" and alive(st["Pid"]) and alive(st["MonitorPid"])
    tree = descendants(st["MonitorPid"])
    assert st["Pid"] in tree

    def get():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port, timeout=2) as u:
                return u.read()
        except OSError:
            return None
    assert wait_for(get, "the published port") == b"hello from the container\n"

    row = ps_row(slipway, name)
    assert row and row.startswith(cid[:12]) and "Up " in row, row
    assert "127.0.0.1:%d->80/tcp" % port in row and busybox_image in row
    assert slipway("ps", "-q").stdout.split().count(cid[:12]) == 1

    logs = slipway("logs", name)  # each stream to its own
    assert logs.stdout.startswith("starting\n") and "warn" not in logs.stdout
    assert logs.stderr.startswith("warn\n")
    with open(os.path.join(slipway.root, "containers", name, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert {"stream": "stderr", "log": "warn\n"}.items() <= records[1].items() or \
        {"stream": "stderr", "log": "warn\n"}.items() <= records[0].items()
    stamped = slipway("logs", "-t", name).stdout.splitlines()
    assert stamped[0].endswith(" starting") and stamped[0][:4].isdigit() and "T" in stamped[0]
    # by id prefix too
    assert "starting" in slipway("logs", cid[:8]).stdout

    assert slipway("stop", "-t", "1", name).stdout == name + "\n"
    assert "Exited (" in ps_row(slipway, name, "-a")
    assert ps_row(slipway, name) is None
    for p in tree:
        wait_for(lambda: not alive(p), "process %d of the container to end" % p)
    assert slipway("rm", name).stdout == name + "\n"
    assert not os.path.exists(os.path.join(slipway.root, "containers", name))
    assert procs_named(name) == []
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2)


def test_logs_follow_and_tail(slipway, busybox_image, tmp_path):
    name = uniq("log")
    slipway("run", "-d", "--name", name, "-v", "%s:/v" % tmp_path, busybox_image, "sh", "-c",
            "for i in 1 2 3 4 5; do echo line$i; done; while [ ! -e /v/go ]; do sleep 0.1; done; "
            "echo after; exit 3")
    wait_for(lambda: "line5" in slipway("logs", name).stdout, "the first lines")
    assert slipway("logs", "--tail", "2", name).stdout == "line4\nline5\n"
    assert slipway("logs", "-n", "0", name).stdout == ""
    follow = subprocess.Popen([slipway.binary, "--root", slipway.root, "logs", "-f", "--tail",
                               "1", name], stdout=subprocess.PIPE, text=True)
    assert follow.stdout.readline() == "line5\n"
    (tmp_path / "go").write_text("")
    assert follow.stdout.readline() == "after\n"
    # -f returns once the container has stopped
    assert follow.wait(timeout=30) == 0
    st = state(slipway, name)
    assert (st["Status"], st["ExitCode"]) == ("exited", 3)
    assert "Exited (3)" in ps_row(slipway, name, "-a")
    slipway("rm", name)


def test_stop_signals(slipway, busybox_rootfs_tar):
    slipway("import", busybox_rootfs_tar, "stopsig:1", "-c", 'CMD ["sh"]', "-c",
            "STOPSIGNAL SIGUSR1")
    a, b = uniq("usr1"), uniq("deaf")
    # STOPSIGNAL honoured: only USR1 ends this one, with its own status
    slipway("run", "-d", "--name", a, "stopsig:1", "sh", "-c",
            'trap "echo got usr1; exit 7" USR1; trap "" TERM; while true; do sleep 0.1; done')
    # a process that ignores SIGTERM is killed after -t
    slipway("run", "-d", "--name", b, "stopsig:1", "sh", "-c",
            'trap "" TERM USR1; while true; do sleep 0.1; done')
    time.sleep(0.3)  # the traps are set
    slipway("stop", "-t", "20", a)
    assert state(slipway, a)["ExitCode"] == 7
    assert "got usr1" in slipway("logs", a).stdout
    t0 = time.monotonic()
    slipway("stop", "-t", "1", b)
    assert time.monotonic() - t0 < 15
    assert state(slipway, b)["ExitCode"] == 137
    assert "Exited (137)" in ps_row(slipway, b, "-a")
    # stopping a stopped container succeeds; an unknown one fails and names it
    slipway("stop", a)
    r = slipway("stop", "nosuch-" + a, check=False)
    assert r.returncode == 1 and "no such container" in r.stderr
    slipway("rm", a, b)


def test_kill_signal(slipway, busybox_image):
    name = uniq("kill")
    slipway("run", "-d", "--name", name, busybox_image, "sh", "-c",
            'trap "exit 42" HUP; while true; do sleep 0.1; done')
    time.sleep(0.3)
    assert slipway("kill", "-s", "HUP", name).stdout == name + "\n"
    wait_for(lambda: state(slipway, name)["Status"] == "exited", "the exit")
    assert state(slipway, name)["ExitCode"] == 42
    r = slipway("kill", name, check=False)
    assert r.returncode == 1 and "not running" in r.stderr
    r = slipway("kill", "-s", "NOPE", name, check=False)
    assert r.returncode == 2
    slipway("rm", name)


def test_rm_running_name_reuse_and_force(slipway, busybox_image):
    name = uniq("busy")
    slipway("run", "-d", "--name", name, busybox_image, "sleep", "1000")
    st = state(slipway, name)
    tree = descendants(st["MonitorPid"])
    r = slipway("run", "-d", "--name", name, busybox_image, "true", check=False)
    assert r.returncode == 2
    assert "already in use" in r.stderr and "slipway rm %s" % name in r.stderr
    assert "rm -rf" not in r.stderr
    r = slipway("rm", name, check=False)
    assert r.returncode == 1 and "rm -f" in r.stderr
    assert state(slipway, name)["Status"] == "running"
    assert slipway("rm", "-f", name).stdout == name + "\n"
    assert not os.path.exists(os.path.join(slipway.root, "containers", name))
    for p in tree:
        wait_for(lambda: not alive(p), "process %d of the container to end" % p)
    assert procs_named(name) == []
    # -d --rm: the monitor removes the container once it exits
    gone = uniq("gone")
    slipway("run", "-d", "--rm", "--name", gone, busybox_image, "sh", "-c", "sleep 0.2")
    wait_for(lambda: not os.path.exists(os.path.join(slipway.root, "containers", gone)),
             "the -d --rm container to go")
    assert procs_named(gone) == []
    # the name is free again; an auto-generated name is the short id
    slipway("run", "-d", "--name", name, busybox_image, "true")
    cid = slipway("run", "-d", busybox_image, "true").stdout.strip()
    assert os.path.isdir(os.path.join(slipway.root, "containers", cid[:12]))


def test_killed_monitor_leaves_a_dead_container_and_nothing_running(slipway, busybox_image):
    name = uniq("dead")
    slipway("run", "-d", "--name", name, "-p", "127.0.0.1::80", busybox_image, "sleep", "1000")
    st = state(slipway, name)
    tree = descendants(st["MonitorPid"])
    assert len(tree) >= 3  # monitor, sandbox monitor, pid 1 (and slirp4netns)
    os.kill(st["MonitorPid"], signal.SIGKILL)
    for p in tree:
        wait_for(lambda: not alive(p), "process %d of the container to end" % p)
    assert "Dead" in ps_row(slipway, name, "-a")
    assert ps_row(slipway, name) is None
    slipway("rm", name)
    assert not os.path.exists(os.path.join(slipway.root, "containers", name))
    assert procs_named(name) == []


def test_killed_foreground_run_is_dead_and_removable(slipway, busybox_image):
    name = uniq("fg")
    proc = subprocess.Popen([slipway.binary, "--root", slipway.root, "run", "--name", name,
                             busybox_image, "sleep", "1000"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(os.path.join(slipway.root, "containers", name)) and
             state(slipway, name)["Status"] == "running", "the foreground container")
    assert "Up " in ps_row(slipway, name)
    st = state(slipway, name)
    assert st["MonitorPid"] == proc.pid
    tree = descendants(proc.pid)
    proc.kill()
    proc.wait()
    for p in tree:
        wait_for(lambda: not alive(p), "process %d of the container to end" % p)
    assert "Dead" in ps_row(slipway, name, "-a")
    slipway("rm", name)
    assert procs_named(name) == []


def test_container_prune_and_prune_all(slipway, busybox_image):
    up, done1, done2 = uniq("up"), uniq("done"), uniq("done")
    slipway("run", "-d", "--name", up, busybox_image, "sleep", "1000")
    slipway("run", "-d", "--name", done1, busybox_image, "sh", "-c",
            "head -c 2000000 /bin/busybox > /big")
    slipway("run", "--name", done2, busybox_image, "true")
    wait_for(lambda: state(slipway, done1)["Status"] == "exited", "the exit")
    out = slipway("container", "prune").stdout
    assert "Deleted Containers:" in out
    size = out.strip().splitlines()[-1].split(": ")[1]
    assert size.endswith("MB") and float(size[:-2]) >= 1.9, out
    containers = os.listdir(os.path.join(slipway.root, "containers"))
    assert containers == [up]
    assert ps_row(slipway, up)
    # prune -a removes stopped containers too, and says so
    slipway("exec", up, "sh", "-c", "head -c 2000000 /bin/busybox > /big")
    slipway("stop", "-t", "0", up)
    out = slipway("prune", "-a").stdout
    assert "Deleted container: " in out
    size = out.strip().splitlines()[-1].split(": ")[1]  # what the container held is counted
    assert size.endswith("MB") and float(size[:-2]) >= 1.9, out
    assert os.listdir(os.path.join(slipway.root, "containers")) == []
    assert slipway("container", "ls", "-a").stdout.splitlines()[1:] == []


def test_restart_on_failure(slipway, busybox_image):
    name = uniq("rs")
    slipway("run", "-d", "--name", name, "--restart", "on-failure:2", busybox_image, "sh", "-c",
            "echo run; exit 4")
    wait_for(lambda: state(slipway, name)["Status"] == "exited" and
             state(slipway, name)["RestartCount"] == 2, "two restarts")
    time.sleep(0.5)
    assert slipway("logs", name).stdout == "run\nrun\nrun\n"
    assert state(slipway, name)["ExitCode"] == 4
    # a stopped container is not restarted, even while its monitor waits to restart it
    loop = uniq("loop")
    slipway("run", "-d", "--name", loop, "--restart", "on-failure", busybox_image, "sh", "-c",
            "sleep 0.3; exit 1")
    wait_for(lambda: state(slipway, loop)["RestartCount"] >= 1, "a restart")
    slipway("stop", "-t", "1", loop)
    st = state(slipway, loop)
    assert st["Status"] == "exited"
    time.sleep(2)
    assert state(slipway, loop) == st
    assert procs_named(loop) == []
    # a command that cannot start is run -d's error (127, as docker), and is not restarted
    nf = uniq("nf")
    r = slipway("run", "-d", "--name", nf, "--restart", "on-failure", busybox_image, "nosuchcmd",
                check=False)
    assert r.returncode == 127 and "nosuchcmd" in r.stderr and "not found" in r.stderr
    assert r.stdout == ""
    st = state(slipway, nf)
    assert (st["Status"], st["ExitCode"], st["RestartCount"]) == ("exited", 127, 0)
    assert "not found" in slipway("logs", nf).stderr
    r = slipway("run", "--rm", "--restart", "on-failure", busybox_image, "true")
    assert "--restart applies to containers run with -d" in r.stderr
    r = slipway("run", "-d", "--restart", "always", busybox_image, "true", check=False)
    assert r.returncode == 2 and "on-failure" in r.stderr
    slipway("rm", name)
def test_exec(slipway, busybox_image):
    name = uniq("ex")
    slipway("run", "-d", "--name", name, "--hostname", "box1", busybox_image, "sh", "-c",
            "echo inside > /marker; while true; do sleep 0.1; done")
    wait_for(lambda: os.path.exists(os.path.join(slipway.root, "containers", name, "upper",
                                                 "marker")), "the marker")
    r = slipway("exec", name, "sh", "-c", "cat /marker; hostname; echo $HOSTNAME; id -u")
    assert r.stdout.split() == ["inside", "box1", "box1", "0"]
    r = slipway("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "65534", name, "sh", "-c",
                "echo $FOO $(pwd) $(id -u); exit 9", check=False)
    assert r.returncode == 9 and r.stdout.split() == ["bar", "/tmp", "65534"]
    # it sees the container's processes, not the host's: pid 1 is the container's sh
    r = slipway("exec", name, "cat", "/proc/1/cmdline")
    assert r.stdout.startswith("sh\0-c\0echo inside")
    # its network namespace: slirp4netns's eth0 at 10.0.2.100
    r = slipway("exec", name, "cat", "/proc/net/dev", "/proc/net/fib_trie")
    assert "eth0:" in r.stdout and "10.0.2.100" in r.stdout
    # run's security settings: Docker's capabilities, the seccomp filter
    r = slipway("exec", name, "grep", "-E", "^(CapEff|CapBnd|Seccomp):", "/proc/self/status")
    assert r.stdout.split() == ["CapEff:", "00000000a80425fb", "CapBnd:", "00000000a80425fb",
                                "Seccomp:", "2"]
    # -t: a pty of the container's own /dev/pts, relayed
    r = slipway("exec", "-t", name, "sh", "-c", "tty; test -t 1 && echo isatty")
    assert r.stdout.replace("\r", "").split() == ["/dev/pts/0", "isatty"]
    r = slipway("exec", "-i", name, "cat", input="piped\n")
    assert r.stdout == "piped\n"
    r = slipway("exec", name, "nosuchcmd", check=False)
    assert r.returncode == 127
    slipway("stop", "-t", "0", name)
    r = slipway("exec", name, "true", check=False)
    assert r.returncode == 1 and "not running" in r.stderr
    slipway("rm", name)




def test_run_pulls_a_missing_image(slipway, registry_open, tmp_path):
    import registry_fixtures as rf
    layout = tmp_path / "layout"
    digests = rf.write_oci_layout(layout, [{"layers": [rf.busybox_tar()], "tag": "v1",
                                            "cmd": ["cat", "/etc/hello.txt"]}])
    rf.skopeo_push_layout(layout, "v1", "%s/pulled/busybox:v1" % registry_open.host)
    ref = "%s/pulled/busybox:v1" % registry_open.host
    r = slipway("run", "--rm", "--pull", "never", ref, check=False)
    assert r.returncode == 1 and "no such image" in r.stderr
    assert slipway("images", "-q").stdout.strip() == ""
    r = slipway("run", "--rm", ref)  # --pull=missing, docker's default
    assert r.stdout == "hello from a registry\n"
    assert "Unable to find image '%s' locally" % ref in r.stderr
    assert digests["v1"] in r.stderr
    # now in the store: no pull (the registry is not asked again)
    registry_open.stop()
    r = slipway("run", "--rm", ref)
    assert r.stdout == "hello from a registry\n" and "Unable to find" not in r.stderr
    # --pull=always must reach the registry, which is gone: the error names the image
    r = slipway("run", "--rm", "--pull", "always", ref, check=False, env={"SLIPWAY_RETRIES": "0"})
    assert r.returncode != 0 and ref in r.stderr
    r = slipway("run", "--pull", "sometimes", ref, check=False)
    assert r.returncode == 2


def test_bash_completion_offers_container_names(slipway, busybox_image, tmp_path):
    name = uniq("compl")
    slipway("run", "--name", name, busybox_image, "true")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(slipway.binary, bindir / "slipway")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _slipway; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
               SLIPWAY_ROOT=slipway.root)
    for cmd in ("logs", "rm", "exec"):
        p = subprocess.run(["bash", "-c", script, "complete",
                            os.path.join(repo, "completions", "slipway.bash"), "slipway", cmd,
                            name[:6]], stdout=subprocess.PIPE, text=True, env=env, check=True)
        assert p.stdout.split() == [name]
