"""`make demo` (scripts/demo.sh) leaves a usable store and says how to reach it (issue 17): after it,
the store it names holds python:slim, foo:demo and foo:recipe, and the next steps it prints work
there: `images`, a build of examples/django (its dependency install cached by the demo), a
background run with a published port that serves the page, then stop and rm.

Runs the whole demo (a cold build with apt from Debian's mirror, the recipe builds): minutes.
Needs root, the base image and the wheelhouse (cached in /var/cache/slipway)."""
import functools
import http.server
import os
import re
import subprocess
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_leaves_a_usable_store(slipway_bin, tmp_path):
    store = str(tmp_path / "demo-store")
    env = dict(os.environ, SLIPWAY=slipway_bin, SLIPWAY_ROOT=store)
    p = subprocess.run([os.path.join(REPO, "scripts", "demo.sh")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=env, timeout=3600)
    assert p.returncode == 0, p.stdout[-4000:]
    # it says where its images are and how to go on with them
    assert "export SLIPWAY_ROOT=%s\n" % store in p.stdout, p.stdout[-2000:]
    index = re.search(r"^index: (http://127\.0\.0\.1:(\d+)/simple/)$", p.stdout, re.M)
    assert index, p.stdout[-4000:]
    index, port = index.group(1), int(index.group(2))
    assert "scripts/wheelhouse.sh serve %d &" % port in p.stdout
    build_arg = "" if port == 3141 else "--build-arg PIP_INDEX_URL=%s " % index
    assert re.search(r"^  \S*slipway build %s-t foo examples/django$" % re.escape(build_arg),
                     p.stdout, re.M), p.stdout[-2000:]

    def sw(*args, **kw):
        return subprocess.run([slipway_bin, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=1800,
                              env=dict(os.environ, SLIPWAY_ROOT=store), **kw)

    images = sw("images").stdout
    for repo, tag in (("python", "slim"), ("foo", "demo"), ("foo", "recipe")):
        assert re.search(r"^%s\s+%s\s" % (repo, tag), images, re.M), images
    # the next steps: the example builds on that store (the demo's cache serves it), runs, stops
    wheels = subprocess.run([os.path.join(REPO, "scripts", "wheelhouse.sh")], check=True,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    # The index at the demo's address, as its last lines say (the URL is in the steps' cache
    # keys); should another process hold that port now, at one of the kernel's choosing.
    handler = functools.partial(QuietFiles, directory=wheels)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        same = server.server_address[1] == port
        url = "http://127.0.0.1:%d/simple/" % server.server_address[1]
        b = sw("build", "--progress=plain", "--build-arg", "PIP_INDEX_URL=" + url, "-t", "foo",
               os.path.join(REPO, "examples", "django"))
        assert b.returncode == 0, b.stdout[-4000:]
        # the demo's cache serves it: the dependency install (and all before) is not run again
        deps = re.search(r"^#(\d+) \[builder 4/7\] RUN .*pip install", b.stdout, re.M)
        assert deps, b.stdout
        if same:
            assert re.search(r"^#%s CACHED$" % deps.group(1), b.stdout, re.M), b.stdout
    finally:
        server.shutdown()
        server.server_close()
    port = free_port()
    r = sw("run", "-d", "--name", "foo", "-e", "GUNICORN_WORKERS=1", "-p",
           "127.0.0.1:%d:80" % port, "foo")
    assert r.returncode == 0, r.stdout
    try:
        deadline, body = time.monotonic() + 120, None
        while body is None and time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
            except OSError:
                time.sleep(0.5)
        assert body and b"<h1>" in body, sw("logs", "foo").stdout
        assert sw("stop", "foo").returncode == 0
    finally:
        assert sw("rm", "-f", "foo").returncode == 0
    assert "foo" not in sw("ps", "-a").stdout.split()
