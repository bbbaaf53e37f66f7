"""Fixtures shared by the test modules: Terraform's CLI configuration and a local moto server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support import REPO, need_tool


@pytest.fixture(scope="session")
def terraform_installed() -> None:
    """Skips (fails in CI) a test that needs the Terraform CLI where it is missing."""
    need_tool("terraform")


@pytest.fixture(scope="session")
def terraform_env() -> dict[str, str]:
    """Environment for running terraform: the provider mirror's CLI config when this machine has one."""
    need_tool("terraform")
    found = subprocess.run(
        ["bash", str(REPO / "scripts/terraform-env"), "printenv", "TF_CLI_CONFIG_FILE"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {"TF_CLI_CONFIG_FILE": found} if found else {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server (AWS emulator) on loopback; nothing here ever reaches real AWS."""
    port = _free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("moto server did not start")
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """AWS SDK and provider settings pointing at a freshly reset moto server."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`generate` records each run in meshgen's cache directory: a scratch one for the whole run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHGEN_CACHE_DIR", str(tmp_path_factory.mktemp("meshgen-cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _isolated_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`generate --target onprem` creates meshgen's CA of a mesh where none is: in a scratch
    directory for the whole run, never in the home directory of whoever runs the tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHGEN_CA_DIR", str(tmp_path_factory.mktemp("meshgen-ca")))
        yield
