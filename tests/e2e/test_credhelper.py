"""Docker credential helpers (`credsStore`, `credHelpers`) for login, logout, push, pull, FROM
pulls and the registry build cache, against a real htpasswd-protected docker-registry. The
helper is a script in a temp PATH dir that logs each call (verb and stdin) and keeps what it is
given in a JSON file, as docker-credential-pass or -secretservice would."""
import json
import os
import stat
import subprocess

import pytest

from test_build import make_ctx

HELPER = r"""#!/usr/bin/python3
import json, os, sys
verb = sys.argv[1]
data = sys.stdin.read()
d = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(d, "calls.log"), "a") as f:
    f.write(json.dumps([verb, data]) + "\n")
db = os.path.join(d, "secrets.json")
secrets = json.load(open(db)) if os.path.exists(db) else {}
if os.environ.get("FAKE_HELPER_FAIL"):
    print("the keychain is locked")
    sys.exit(3)
if verb == "store":
    c = json.loads(data)
    secrets[c["ServerURL"]] = [c["Username"], c["Secret"]]
elif verb == "get":
    if data not in secrets:
        print("credentials not found in native keychain")
        sys.exit(1)
    u, s = secrets[data]
    print(json.dumps({"ServerURL": data, "Username": u, "Secret": s}))
elif verb == "erase":
    secrets.pop(data, None)
elif verb == "list":
    print(json.dumps({k: v[0] for k, v in secrets.items()}))
json.dump(secrets, open(db, "w"))
"""


class Helper:
    def __init__(self, tmp_path, name="fake"):
        self.dir = tmp_path / "helper-bin"
        self.dir.mkdir(exist_ok=True)
        p = self.dir / ("docker-credential-" + name)
        p.write_text(HELPER)
        p.chmod(0o755)

    def calls(self):
        log = self.dir / "calls.log"
        if not log.exists():
            return []
        return [json.loads(l) for l in log.read_text().splitlines()]

    def secrets(self):
        return json.loads((self.dir / "secrets.json").read_text())


@pytest.fixture
def env(reg_env, tmp_path):
    h = Helper(tmp_path)
    e = dict(reg_env, PATH=str(h.dir) + ":" + os.environ["PATH"])
    os.makedirs(e["DOCKER_CONFIG"])
    e["helper"] = h
    return e


def run(slipway_bin, env, *args, input=None, check=True, root=None):
    e = {k: v for k, v in env.items() if k != "helper"}
    if root:
        e["SLIPWAY_ROOT"] = str(root)
    p = subprocess.run([slipway_bin, *map(str, args)], env=e, input=input, capture_output=True,
                       encoding="utf-8", errors="replace", timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("slipway %s failed (%d):\n%s\n%s"
                             % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def write_config(env, cfg):
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump(cfg, f)


def read_config(env):
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json")) as f:
        return json.load(f)


def test_creds_store_login_push_pull_build_cache_logout(slipway_bin, env, registry_basic,
                                                        busybox_rootfs_tar, tmp_path):
    r, h = registry_basic, env["helper"]
    write_config(env, {"credsStore": "fake", "psFormat": "x"})
    p = run(slipway_bin, env, "login", "-u", r.user, "--password-stdin", r.host,
            input=r.password + "\n")
    assert "Login Succeeded" in p.stdout
    # The secret went to the helper; the file has an empty marker entry, as docker writes it.
    assert h.calls() == [["store", json.dumps({"ServerURL": r.host, "Username": "alice",
                                               "Secret": "wonderland"}, separators=(",", ":"))]]
    assert h.secrets() == {r.host: ["alice", "wonderland"]}
    cfg = read_config(env)
    assert cfg["auths"] == {r.host: {}} and cfg["credsStore"] == "fake" and cfg["psFormat"] == "x"
    assert "wonderland" not in json.dumps(cfg)
    assert stat.S_IMODE(os.stat(os.path.join(env["DOCKER_CONFIG"], "config.json")).st_mode) \
        == 0o600

    # push: credentials from `get` with the registry host on stdin.
    run(slipway_bin, env, "import", busybox_rootfs_tar, "bb:1")
    ref = r.host + "/team/bb:1"
    run(slipway_bin, env, "push", "bb:1", ref)
    assert ["get", r.host] in h.calls()

    # pull into another store, a build FROM the private image in a third, with --cache-to.
    n = len(h.calls())
    run(slipway_bin, env, "pull", ref, root=tmp_path / "pullstore")
    assert h.calls()[n:] == [["get", r.host]] * len(h.calls()[n:]) and len(h.calls()) > n
    ctx = make_ctx(tmp_path / "ctx", "FROM %s\nRUN echo hi > /hi\n" % ref)
    n = len(h.calls())
    run(slipway_bin, env, "build", "--progress=plain", "--cache-to",
        "type=registry,ref=%s/team/cache:1" % r.host, ctx, root=tmp_path / "buildstore")
    assert len(h.calls()) > n and all(c == ["get", r.host] for c in h.calls()[n:])
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                          "--creds", "alice:wonderland", "docker://%s/team/cache:1" % r.host],
                         stdout=subprocess.PIPE, check=True).stdout
    assert b"application/vnd.buildkit.cacheconfig.v0" in out

    # logout: `erase`, the entry removed; the registry then refuses the push.
    p = run(slipway_bin, env, "logout", r.host)
    assert "Removing login credentials for " + r.host in p.stdout
    assert h.calls()[-2:] == [["list", ""], ["erase", r.host]]
    assert h.secrets() == {} and read_config(env)["auths"] == {}
    p = run(slipway_bin, env, "push", "bb:1", r.host + "/team/bb:2", check=False)
    assert p.returncode == 1 and "401" in p.stderr and "slipway login" in p.stderr, p.stderr
    assert "Not logged in" in run(slipway_bin, env, "logout", r.host).stdout


def test_cred_helpers_per_registry_missing_and_failing(slipway_bin, env, registry_basic,
                                                       busybox_rootfs_tar, tmp_path):
    r, h = registry_basic, env["helper"]
    run(slipway_bin, env, "import", busybox_rootfs_tar, "bb:1")
    # credHelpers names this registry's helper; file credentials for it are not used.
    write_config(env, {"credHelpers": {r.host: "fake"}, "credsStore": "absent",
                       "auths": {r.host: {"auth": "d3Jvbmc6d3Jvbmc="}}})
    (h.dir / "secrets.json").write_text(json.dumps({r.host: ["alice", "wonderland"]}))
    run(slipway_bin, env, "push", "bb:1", r.host + "/x/bb:1")
    assert h.calls() == [["get", r.host]] * len(h.calls()) and h.calls()

    # A helper missing from PATH is named, with the config key that names it.
    write_config(env, {"credHelpers": {r.host: "nothere"}})
    p = run(slipway_bin, env, "pull", r.host + "/x/bb:1", check=False)
    assert p.returncode == 1
    assert "docker-credential-nothere" in p.stderr and "credHelpers" in p.stderr, p.stderr
    assert "not found in PATH" in p.stderr

    # A failing helper: its name, verb, exit status and message.
    write_config(env, {"credsStore": "fake"})
    e = dict(env, FAKE_HELPER_FAIL="1")
    p = run(slipway_bin, e, "pull", r.host + "/x/bb:1", check=False)
    assert p.returncode == 1
    assert "docker-credential-fake get" in p.stderr and "exit status 3" in p.stderr
    assert "the keychain is locked" in p.stderr and "credsStore" in p.stderr, p.stderr
    p = run(slipway_bin, e, "login", "-u", "alice", "-p", "wonderland", r.host, check=False)
    assert p.returncode == 1 and "docker-credential-fake store" in p.stderr, p.stderr

    # A helper without credentials for the host: anonymous, so the registry's 401 is reported.
    (h.dir / "secrets.json").write_text("{}")
    p = run(slipway_bin, env, "pull", r.host + "/x/bb:1", check=False)
    assert p.returncode == 1 and "401" in p.stderr, p.stderr
