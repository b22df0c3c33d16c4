"""slipway pull / push / login against real registries (Debian's docker-registry on loopback:
open, htpasswd basic auth, bearer tokens) and checked by an independent client (skopeo)."""
import json
import os
import stat
import subprocess

import registry_fixtures as rf


def run(slipway_bin, env, *args, input=None, check=True, timeout=300):
    p = subprocess.run([slipway_bin, *args], env=env, input=input, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("slipway %s failed (%d):\n%s\n%s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def docker_config(env):
    return json.loads(open(os.path.join(env["DOCKER_CONFIG"], "config.json")).read())


# ---- login ----

def test_login_basic_writes_docker_config(slipway_bin, reg_env, registry_basic):
    r = registry_basic
    p = run(slipway_bin, reg_env, "login", "-u", r.user, "--password-stdin", r.host,
            input=r.password + "\n")
    assert "Login Succeeded" in p.stdout
    path = os.path.join(reg_env["DOCKER_CONFIG"], "config.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    auth = docker_config(reg_env)["auths"][r.host]["auth"]
    assert rf.base64.b64decode(auth).decode() == "alice:wonderland"


def test_login_keeps_other_entries(slipway_bin, reg_env, registry_basic):
    os.makedirs(reg_env["DOCKER_CONFIG"])
    with open(os.path.join(reg_env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump({"auths": {"other.example": {"auth": "eDp5"}}, "psFormat": "x"}, f)
    run(slipway_bin, reg_env, "login", "-u", "alice", "-p", "wonderland", registry_basic.host)
    cfg = docker_config(reg_env)
    assert cfg["psFormat"] == "x"
    assert cfg["auths"]["other.example"]["auth"] == "eDp5"
    assert registry_basic.host in cfg["auths"]


def test_login_bad_password_fails_and_writes_nothing(slipway_bin, reg_env, registry_basic):
    p = run(slipway_bin, reg_env, "login", "-u", "alice", "-p", "nope", registry_basic.host,
            check=False)
    assert p.returncode == 1
    assert "401" in p.stderr and registry_basic.host in p.stderr
    assert not os.path.exists(os.path.join(reg_env["DOCKER_CONFIG"], "config.json"))


def test_login_token_service(slipway_bin, reg_env, registry_token):
    r = registry_token
    run(slipway_bin, reg_env, "login", "-u", r.user, "-p", r.password, r.host)
    assert any(q["user"] == "bob" and q["status"] == 200 for q in r.tokens.requests)
    p = run(slipway_bin, reg_env, "login", "-u", r.user, "-p", "wrong", r.host, check=False)
    assert p.returncode == 1
    assert "token service refused" in p.stderr and "slipway login" in p.stderr


def test_login_usage_errors(slipway_bin, reg_env):
    p = run(slipway_bin, reg_env, "login", check=False)
    assert p.returncode == 2
    p = run(slipway_bin, reg_env, "login", "--password-stdin", "localhost:1", check=False,
            input="x\n")
    assert p.returncode == 2 and "--username" in p.stderr
    p = run(slipway_bin, reg_env, "login", "--help")
    assert "--password-stdin" in p.stdout


def test_login_unreachable_names_url(slipway_bin, reg_env):
    port = rf.free_port()
    env = dict(reg_env, SLIPWAY_RETRIES="1")
    p = run(slipway_bin, env, "login", "-u", "a", "-p", "b", "127.0.0.1:%d" % port, check=False)
    assert p.returncode == 1
    assert "http://127.0.0.1:%d/v2/" % port in p.stderr
    assert "retry 1/1" in p.stderr
