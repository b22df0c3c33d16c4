"""A registry fault proxy for the end-to-end tests (issue 18 §5).

FaultProxy listens on 127.0.0.1, port 0 (the kernel picks), and forwards to a real
docker-registry (registry_fixtures.Registry), injecting one fault into the requests it targets:

  drip         a layer blob GET: the headers, then one byte every 0.5 s (2 B/s)
  stall        a layer blob GET: the headers and half the body, then silence; an upload PUT/PATCH:
               the body is read (and dropped), no answer comes
  reset        a layer blob GET: half the body, then a TCP reset; an upload PUT/PATCH: the body is
               read (and dropped), then a reset instead of the answer
  retry_after  `status` (429 or 503) with `Retry-After: retry_after` instead of the answer, on a
               layer blob GET (pull) or an upload POST (push)
  wrong_size   manifests are rewritten so that their last layer's size is off by `size_delta`
               (Docker-Content-Digest follows the new bytes, so only the size is wrong)

`times` is how many targeted requests get the fault (-1: all). Layer digests are learnt from
the manifests that pass through. `events` records (time, method, path, what) for assertions.
"""
import hashlib
import http.client
import http.server
import json
import socket
import socketserver
import struct
import threading
import time

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


class FaultProxy:
    def __init__(self, registry, fault, times=-1, retry_after="2", status=429, size_delta=0):
        self.target = registry.port
        self.fault = fault
        self.times = times
        self.retry_after = retry_after
        self.status = status
        self.size_delta = size_delta
        self.layers = set()
        self.events = []
        self.faults = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        px = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self):
                px.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    # ---- bookkeeping ----

    def note(self, h, what):
        with self.lock:
            self.events.append((time.monotonic(), h.command, h.path, what))

    def take_fault(self):
        with self.lock:
            if self.times >= 0 and self.faults >= self.times:
                return False
            self.faults += 1
            return True

    def targeted(self, h):
        path = h.path.split("?")[0]
        if h.command == "GET" and "/blobs/sha256:" in path:
            return "pull" if path.rsplit("/", 1)[1] in self.layers else None
        if "/blobs/uploads/" in path:
            if h.command == "POST" and self.fault == "retry_after":
                return "push"
            if h.command in ("PUT", "PATCH") and self.fault in ("stall", "reset"):
                return "push"
        return None

    # ---- forwarding ----

    def forward(self, h, body):
        c = http.client.HTTPConnection("127.0.0.1", self.target, timeout=60)
        # Host is kept, so the registry's Location headers point back at the proxy.
        c.request(h.command, h.path, body=body, headers=dict(h.headers.items()))
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, [(k, v) for k, v in r.getheaders()
                          if k.lower() not in ("transfer-encoding", "connection",
                                               "content-length")], data

    def learn_layers(self, headers, data):
        ctype = dict((k.lower(), v) for k, v in headers).get("content-type", "")
        if ctype not in MANIFEST_TYPES:
            return data, headers
        m = json.loads(data)
        with self.lock:
            self.layers.update(layer["digest"] for layer in m.get("layers", []))
        if self.fault != "wrong_size" or not m.get("layers"):
            return data, headers
        m["layers"][-1]["size"] += self.size_delta
        data = json.dumps(m).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        headers = [(k, digest if k.lower() == "docker-content-digest" else v)
                   for k, v in headers]
        return data, headers

    def send_head(self, h, status, headers, length):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.flush()

    def reset(self, h):
        h.close_connection = True
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    def wait(self, seconds):
        self.stopping.wait(seconds)

    def handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else None
        side = self.targeted(h)
        fault = side and self.take_fault()
        self.note(h, self.fault if fault else "forward")
        if fault and self.fault == "retry_after":
            err = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]})
            self.send_head(h, self.status, [("Content-Type", "application/json"),
                                            ("Retry-After", self.retry_after)], len(err))
            h.wfile.write(err.encode())
            return
        if fault and side == "push":  # the upload is swallowed: it never lands
            if self.fault == "stall":
                self.wait(30)
            self.reset(h)
            return
        status, headers, data = self.forward(h, body)
        if h.command == "GET" and "/manifests/" in h.path and status == 200:
            data, headers = self.learn_layers(headers, data)
        if not fault or self.fault == "wrong_size":
            self.send_head(h, status, headers, len(data))
            if h.command != "HEAD":
                h.wfile.write(data)
            return
        self.send_head(h, status, headers, len(data))
        try:
            if self.fault == "drip":
                for i in range(len(data)):
                    h.wfile.write(data[i:i + 1])
                    h.wfile.flush()
                    self.wait(0.5)
                    if self.stopping.is_set():
                        break
            elif self.fault in ("stall", "reset"):
                h.wfile.write(data[:len(data) // 2])
                h.wfile.flush()
                if self.fault == "stall":
                    self.wait(30)
        except OSError:
            pass  # the client gave up: what the fault is for
        self.reset(h)

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
