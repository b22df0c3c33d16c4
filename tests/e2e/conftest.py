"""Shared pytest fixtures for slipway's end-to-end tests. Add fixtures; do not rewrite others'.
Tests drive the binary named by env SLIPWAY (absolute path) with a temp store."""
import os

import pytest

# Registry fixtures (docker-registry open / htpasswd / bearer token, OCI layouts, flaky proxy).
from registry_fixtures import (  # noqa: F401
    flaky_proxy, reg_env, registry_basic, registry_open, registry_token)


@pytest.fixture(scope="session")
def slipway_bin():
    path = os.environ.get("SLIPWAY")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "slipway")
    path = os.path.abspath(path)
    assert os.access(path, os.X_OK), "build slipway first (make), or set SLIPWAY"
    return path
