"""End-to-end tests for `slipway run`'s networks: the default one (a network namespace of its own,
NATed by slirp4netns, the host's loopback out of reach), `-p`/`-P` publishing, `--network host`
and `--network none`, the container's resolv.conf and hosts, and that the NAT helper never
outlives the run (normal exit, Ctrl-C, SIGKILL of slipway). Traffic goes only to loopback
services this test starts and to the containers' own namespaces."""
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

BUSYBOX = "/bin/busybox"


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    """busybox with every applet (nc, httpd, ip, ...), and a /www page for httpd."""
    r = tmp_path_factory.mktemp("netroot")
    (r / "bin").mkdir()
    shutil.copy2(BUSYBOX, r / "bin" / "busybox")
    for a in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                            check=True).stdout.split():
        if a != "busybox":
            os.symlink("busybox", r / "bin" / a)
    (r / "etc").mkdir()
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (r / "etc" / "group").write_text("root:x:0:\n")
    (r / "www").mkdir()
    (r / "www" / "index.html").write_text("served from the container\n")
    return r


@pytest.fixture(scope="module")
def pyroot(tmp_path_factory):
    """A rootfs whose /usr is the host's (bound read-only with -v): Debian's python3 inside."""
    r = tmp_path_factory.mktemp("pyroot")
    for d in ("etc", "usr", "tmp"):
        (r / d).mkdir()
    for link in ("bin", "lib", "lib64", "sbin"):
        os.symlink("usr/" + link, r / link)
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (r / "etc" / "group").write_text("root:x:0:\n")
    return r


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def _split(args):
    """The leading flags (a flag's value included) and the command after them."""
    flags, cmd = [], list(args)
    while cmd and cmd[0].startswith("-"):
        flags.append(cmd.pop(0))
        if flags[-1] in ("-e", "-p", "-v", "--network", "--hostname"):
            flags.append(cmd.pop(0))
    return flags, cmd


def run(slipway_bin, store, root, *args, timeout=60):
    """slipway run --rm [flags...] --rootfs ROOT cmd..."""
    flags, cmd = _split(args)
    return subprocess.run([slipway_bin, "--root", str(store), "run", "--rm", *flags, "--rootfs",
                           str(root), *cmd], capture_output=True, text=True, timeout=timeout)


def popen(slipway_bin, store, root, *args):
    flags, cmd = _split(args)
    return subprocess.Popen([slipway_bin, "--root", str(store), "run", "--rm", *flags, "--rootfs",
                             str(root), *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class HostService:
    """An HTTP server on the host's 127.0.0.1 (port bound to 0), recording request headers."""

    def __init__(self):
        self.headers = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.headers.append(dict(self.headers))
                body = b"host-secret-page\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host_service():
    s = HostService()
    yield s
    s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, deadline=10.0):
    """GET url, retrying while the container's server starts; returns the body."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


# nc prints the status line if it connected; `|| echo refused` marks a failed connection.
PROBE = ("for a in {addrs}; do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $a {port} "
         "2>/dev/null | head -1); echo \"$a ${{r:-refused}}\"; done")


def test_default_network_cannot_reach_host_loopback(slipway_bin, store, rootfs, host_service):
    """The escape this closes: a default `run` shared the host's loopback. Now neither
    127.0.0.1 (its own loopback) nor slirp's host alias 10.0.2.2 reaches the host's service;
    `--network host` still does (the control: the probe works)."""
    probe = PROBE.format(addrs="127.0.0.1 10.0.2.2", port=host_service.port)
    r = run(slipway_bin, store, rootfs, "sh", "-c", probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["127.0.0.1 refused", "10.0.2.2 refused"], r.stdout
    assert host_service.headers == []
    r = run(slipway_bin, store, rootfs, "--network", "host", "sh", "-c",
            PROBE.format(addrs="127.0.0.1", port=host_service.port))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["127.0.0.1 HTTP/1.0 200 OK"], r.stdout
    assert len(host_service.headers) == 1


def test_default_network_has_eth0(slipway_bin, store, rootfs):
    r = run(slipway_bin, store, rootfs, "sh", "-c",
            "ls /sys/class/net; ip -o -4 addr show eth0; ip route; ip -o link show lo")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["eth0", "lo"], r.stdout
    assert "inet 10.0.2.100/24" in lines[2], r.stdout
    assert any(re.match(r"default via 10\.0\.2\.2 dev eth0", ln) for ln in lines), r.stdout
    assert "UP" in lines[-1], r.stdout


def test_network_none_and_host(slipway_bin, store, rootfs):
    r = run(slipway_bin, store, rootfs, "--network", "none", "ls", "/sys/class/net")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lo"]
    r = run(slipway_bin, store, rootfs, "--network", "host", "ls", "/sys/class/net")
    assert r.stdout.split() == sorted(os.listdir("/sys/class/net"))


def test_resolv_conf_and_hosts(slipway_bin, store, rootfs):
    """The default network writes its own files: slirp4netns's DNS forwarder first (it reaches
    the host's resolver, loopback ones like 127.0.0.53 included), no loopback nameserver (it
    would be the container's own loopback), the container's name on its address; writable,
    as Docker's."""
    r = run(slipway_bin, store, rootfs, "--hostname", "web1", "sh", "-c",
            "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo '10.9.9.9 extra' >> /etc/hosts"
            " && echo writable")
    assert r.returncode == 0, r.stderr
    resolv, hosts = r.stdout.split("---\n")
    servers = re.findall(r"^nameserver\s+(\S+)", resolv, re.M)
    assert servers[0] == "10.0.2.3", resolv
    assert not [s for s in servers if s.startswith("127.") or ":" in s], resolv
    assert "127.0.0.1\tlocalhost\n" in hosts
    assert "10.0.2.100\tweb1\n" in hosts
    assert hosts.endswith("writable\n")


def _published(slipway_bin, store, rootfs, spec_for_port, attempts=5):
    """Start httpd on port 8080 inside the container, published with spec_for_port(host_port)
    for a free host port (bound to 0 and released; retried if another program took it)."""
    for _ in range(attempts):
        port = free_port()
        p = popen(slipway_bin, store, rootfs, "-p", spec_for_port(port), "httpd", "-f", "-p",
                  "8080", "-h", "/www")
        try:
            return port, p, fetch(f"http://127.0.0.1:{port}/", deadline=10)
        except OSError:
            _stop(p)
            err = p.stderr.read()
            if "already in use" not in err:
                raise AssertionError(f"-p {spec_for_port(port)}: {err}")
    raise AssertionError("no free port after retries")


def _stop(p):
    """httpd as pid 1 has no SIGTERM handler: the third SIGTERM makes slipway kill it."""
    for _ in range(3):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            time.sleep(0.1)
    p.wait(timeout=10)


def test_publish_host_port(slipway_bin, store, rootfs):
    port, p, body = _published(slipway_bin, store, rootfs, lambda port: f"{port}:8080")
    try:
        assert body == "served from the container\n"
    finally:
        _stop(p)
    # The listener went with the container.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_publish_ip_and_random_port(slipway_bin, store, rootfs):
    """`-p IP::CONTAINER` takes a free host port and prints it as `docker port` does."""
    p = popen(slipway_bin, store, rootfs, "-p", "127.0.0.1::8080", "httpd", "-f", "-p", "8080",
              "-h", "/www")
    try:
        line = p.stderr.readline()
        m = re.fullmatch(r"8080/tcp -> 127\.0\.0\.1:(\d+)\n", line)
        assert m, line
        assert fetch(f"http://127.0.0.1:{m.group(1)}/") == "served from the container\n"
    finally:
        _stop(p)


UDP_ECHO = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.bind(('0.0.0.0', 5353)); print('ready', flush=True); d, a = s.recvfrom(100); "
            "s.sendto(d.upper(), a)")


def _host_address():
    """One of the host's own non-loopback IPv4 addresses (traffic to it stays on the host)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else None


def test_publish_udp(slipway_bin, store, pyroot):
    """A UDP round trip through `-p HOST:CONTAINER/udp`. The client uses the host's own
    non-loopback address: slirp4netns drops replies to clients on the host's loopback
    (--disable-host-loopback covers UDP replies too; README, deliberate differences)."""
    addr = _host_address()
    if addr is None:
        pytest.skip("the host has no non-loopback IPv4 address")
    port = free_port()
    p = popen(slipway_bin, store, pyroot, "-p", f"{addr}:{port}:5353/udp", "-v",
              "/usr:/usr:ro", "python3", "-c", UDP_ECHO)
    try:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((addr, 0))
            s.settimeout(0.5)
            reply = None
            # UDP may lose a datagram (slirp's first frame to the container waits for ARP):
            # resend, as a UDP client does.
            for _ in range(20):
                s.sendto(b"ping-udp", (addr, port))
                try:
                    reply = s.recvfrom(100)[0]
                    break
                except socket.timeout:
                    pass
            assert reply == b"PING-UDP"
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_publish_all_exposed(slipway_bin, tmp_path, busybox_rootfs_tar, rootfs):
    """EXPOSE publishes nothing by itself (as Docker); -P publishes each EXPOSEd port on a free
    host port, printed."""
    store = tmp_path / "store"
    subprocess.run([slipway_bin, "--root", str(store), "import", "-c", "EXPOSE 8080/tcp",
                    busybox_rootfs_tar, "exp:1"], check=True, capture_output=True)
    r = subprocess.run([slipway_bin, "--root", str(store), "run", "--rm", "exp:1", "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "->" not in r.stderr, r.stderr
    # The busybox image has no httpd applet: serve with the full rootfs, mounted over /bin.
    p = subprocess.Popen([slipway_bin, "--root", str(store), "run", "--rm", "-P", "-v",
                          f"{rootfs}/bin:/bin:ro", "-v", f"{rootfs}/www:/www:ro", "exp:1",
                          "httpd", "-f", "-p", "8080", "-h", "/www"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        m = re.fullmatch(r"8080/tcp -> 0\.0\.0\.0:(\d+)\n", line)
        assert m, line
        assert fetch(f"http://127.0.0.1:{m.group(1)}/") == "served from the container\n"
    finally:
        _stop(p)


def test_publish_errors(slipway_bin, store, rootfs):
    r = run(slipway_bin, store, rootfs, "-p", "80", "--network", "none", "true")
    assert r.returncode == 2 and "--network none" in r.stderr, r.stderr
    r = run(slipway_bin, store, rootfs, "-p", "8000-8010:80", "true")
    assert r.returncode == 2 and "ranges" in r.stderr, r.stderr
    r = run(slipway_bin, store, rootfs, "-p", "80/sctp", "true")
    assert r.returncode == 2 and "sctp" in r.stderr, r.stderr
    r = run(slipway_bin, store, rootfs, "-p", "80", "--network", "host", "echo", "ran")
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr
    assert "discarded" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(slipway_bin, store, rootfs, "-p", f"127.0.0.1:{port}:80", "echo", "ran")
        assert r.returncode != 0 and r.stdout == "", r.stdout
        assert f"127.0.0.1:{port}/tcp: the port is already in use" in r.stderr, r.stderr


CAPTURE = r"""
import os, select, socket, sys
tok = os.environ["TOKEN"].encode()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL: every frame
print("ready", flush=True)
seen = done = False
while not seen and not done:  # until the test closes stdin (its requests are all sent)
    r = select.select([s, sys.stdin], [], [])[0]
    done = sys.stdin in r and sys.stdin.read() == ""
    s.setblocking(False)
    try:  # drain what is queued (frames on lo are queued as they are sent)
        while not seen:
            seen = tok in s.recv(65535)
    except BlockingIOError:
        pass
    s.setblocking(True)
print("SEEN" if seen else "NOT SEEN", flush=True)
"""


def _capture(slipway_bin, store, pyroot, host_service, *flags):
    """A container with NET_RAW (Docker's default set) captures every frame it can see while
    the host sends an Authorization header to its loopback service."""
    (pyroot / "capture.py").write_text(CAPTURE)
    token = "Bearer " + uuid.uuid4().hex
    p = subprocess.Popen([slipway_bin, "--root", str(store), "run", "--rm", "-i", *flags, "-v",
                          "/usr:/usr:ro", "-e", f"TOKEN={token}", "--rootfs", str(pyroot),
                          "python3", "/capture.py"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
        for _ in range(5):
            req = urllib.request.Request(f"http://127.0.0.1:{host_service.port}/",
                                         headers={"Authorization": token})
            urllib.request.urlopen(req, timeout=5).read()
        p.stdin.close()
        out = p.stdout.read()
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert [h.get("Authorization") for h in host_service.headers] == [token] * 5
    return out.strip()


def test_net_raw_capture_sees_no_host_traffic(slipway_bin, store, pyroot, host_service):
    assert _capture(slipway_bin, store, pyroot, host_service) == "NOT SEEN"
    # The control: on the host's network the same capture sees the header (so it can).
    host_service.headers.clear()
    assert _capture(slipway_bin, store, pyroot, host_service, "--network", "host") == "SEEN"


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _alive(pid):
    """Running, not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_and_find_nat(slipway_bin, store, rootfs, *cmd):
    """Start a default-network run; return (process, slirp4netns pid, monitor pid)."""
    p = popen(slipway_bin, store, rootfs, *cmd)
    end = time.monotonic() + 15
    while time.monotonic() < end:
        for monitor in _children(p.pid):
            for c in _children(monitor):
                if _cmdline(c)[:1] == [b"slirp4netns"]:
                    if p.stdout.readline() == "up\n":  # the container runs: eth0 is there
                        return p, c, monitor
        time.sleep(0.05)
    p.kill()
    raise AssertionError("no slirp4netns under slipway run: " + p.stderr.read())


def _gone(pid, monitor, timeout=10):
    end = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(pid), f"slirp4netns {pid} outlived the run"
    assert not os.path.exists(f"/run/slipway/net-{monitor}.sock")


@pytest.mark.parametrize("how", ["exit", "ctrl-c", "sigkill"])
def test_nat_helper_never_outlives_the_run(slipway_bin, store, rootfs, how):
    """slirp4netns is reaped when the container exits, when Ctrl-C stops it, and when slipway
    itself is SIGKILLed (PR_SET_PDEATHSIG / --exit-fd): nothing is left behind, not even its
    API socket (-p makes one)."""
    script = "trap 'exit 3' INT; echo up; sleep 30 & wait"  # the trap is set before `up`
    if how == "exit":
        script = "echo up; sleep 1"
    p, nat, monitor = _start_and_find_nat(slipway_bin, store, rootfs, "-p", "127.0.0.1::80",
                                          "sh", "-c", script)
    try:
        if how == "ctrl-c":
            p.send_signal(signal.SIGINT)
        elif how == "sigkill":
            p.kill()
        rc = p.wait(timeout=20)
        assert rc == {"exit": 0, "ctrl-c": 3, "sigkill": -9}[how]
        _gone(nat, monitor)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_stale_api_socket_is_swept(slipway_bin, store, rootfs):
    """A run killed between slirp4netns's start and the removal of its API socket leaves
    /run/slipway/net-<monitor pid>.sock; the next run with -p removes it (its pid is gone)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    os.makedirs("/run/slipway", mode=0o700, exist_ok=True)
    stale = f"/run/slipway/net-{gone.pid}.sock"
    with open(stale, "w"):
        pass
    try:
        r = run(slipway_bin, store, rootfs, "-p", "127.0.0.1::80", "true")
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(stale)
    finally:
        if os.path.exists(stale):
            os.unlink(stale)
