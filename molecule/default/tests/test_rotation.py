"""Certificate rotation on the running mesh, by re-running site.yml: check mode lists what would
be renewed and changes nothing; a rotation gives every sidecar a new certificate while the same
Envoy processes keep running; a CA rotation (the new CA trusted everywhere first, then new
certificates) loses no request. No run prints key material, even with --diff and -v."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import (
    CATALOG,
    authority,
    ca_dir,
    journal,
    main_pid,
    mesh,
    other_host,
    run_site,
    serials_in_use,
    sidecar_admins,
)

from meshgen.pki.certificates import load_certs, signed_by
from meshgen.verify import run_checks
from meshgen.verify.http import send
from meshgen.verify.targets import Caller

testinfra_hosts = ["caller-1"]

TLS_ROOT = "/etc/meshgen/tls"
KEY_MARKER = "PRIVATE KEY"  # in every PEM private key's armour, whatever its kind
ROTATE = {"envoy_tls_rotate": True}


def _hosts(host) -> dict[str, object]:
    """Sidecar -> the testinfra host it runs on."""
    return {i.id: other_host(host, i.host.name) for i in mesh().proxies}


def _pids(host) -> dict[str, str]:
    return {name: main_pid(on, f"envoy@{name}.service") for name, on in _hosts(host).items()}


def _generations(host) -> dict[str, list[str]]:
    found = {}
    for name, on in _hosts(host).items():
        for directory in (f"{TLS_ROOT}/{name}", f"{TLS_ROOT}/trust"):
            found[f"{name}:{directory}"] = sorted(on.check_output(f"ls -1 {directory}").split())
    return found


def _journals(host) -> str:
    return "\n".join(
        f"--- journalctl -u envoy@{name}.service\n{journal(on, f'envoy@{name}.service', 20)}"
        for name, on in _hosts(host).items()
    )


def _security_passes(report_authority) -> None:
    results, _ = run_checks(mesh(), ("security",), authority=report_authority)
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert results and not failed, "\n".join(failed)


def test_check_mode_lists_the_renewals_changes_nothing_and_prints_no_key(host):
    before, generations = serials_in_use(), _generations(host)

    result = run_site("--check", "--diff", extra_vars=ROTATE)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert KEY_MARKER not in output
    for name in sidecar_admins():
        assert f"{name}: new key and certificate (rotation asked for)" in output, output
    assert serials_in_use() == before
    assert _generations(host) == generations


def test_rotation_renews_every_certificate_live_and_prints_no_key(host):
    before, pids = serials_in_use(), _pids(host)

    result = run_site("--tags", "envoy_certs", "--diff", "-v", extra_vars=ROTATE)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert KEY_MARKER not in output
    after = serials_in_use()
    for name, (leaves, authorities) in after.items():
        assert leaves and leaves.isdisjoint(before[name][0]), f"{name}: {before[name][0]} -> {leaves}"
        assert authorities == before[name][1], name
    assert _pids(host) == pids, _journals(host)
    _security_passes(authority())


class _Traffic:
    """Requests through every declared edge, one after another, until stopped (at most 3,000)."""

    def __init__(self) -> None:
        model = mesh()
        self.edges = [
            (Caller(s.instances[0]).outbound, d.target) for s in model.services for d in s.dependencies if s.instances
        ]
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < 3_000:
            (address, port), callee = self.edges[self.sent % len(self.edges)]
            reply = send(address, port, "/", headers={"Host": callee}, timeout=5)
            self.sent += 1
            if reply.status != 200:
                self.failures.append(f"-> {callee} through {address}:{port}: {reply.status}")
            time.sleep(0.02)

    def __enter__(self) -> _Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _handshakes(admin: str, cluster_prefix: str) -> int:
    with urllib.request.urlopen(f"http://{admin}/stats?filter=ssl.handshake$", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(int(line.rsplit(":", 1)[1]) for line in lines if line.startswith(f"cluster.{cluster_prefix}"))


def test_ca_rotation_trusts_both_cas_first_and_loses_no_request(host):
    old = authority()
    meshgen = Path(sys.executable).with_name("meshgen")
    rotate = [str(meshgen), "certs", "rotate", "--ca", "--catalog", str(CATALOG), "--ca-dir", str(ca_dir())]

    with _Traffic() as traffic:
        rotated = subprocess.run(rotate, capture_output=True, text=True, timeout=60, check=False)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        result = run_site("--tags", "envoy_certs")
        time.sleep(1)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert KEY_MARKER not in output
    # One play, tasks in order across hosts: every host swapped its trust bundle before any host
    # swapped a certificate.
    trust_at = output.index("TASK [meshgen.mesh.envoy : Swap the trust bundle live]")
    trust_task = output[trust_at : output.index("TASK [", trust_at + 1)]
    assert trust_task.count("changed: [") == len({i.host.name for i in mesh().proxies}), trust_task
    assert trust_at < output.index("TASK [meshgen.mesh.envoy : Swap each renewed certificate and key live]")
    assert traffic.sent >= 50 and not traffic.failures, (
        f"{len(traffic.failures)} of {traffic.sent}: {traffic.failures[:5]}"
    )

    new = authority()
    assert new.cert != old.cert
    both = {old.cert.serial_number, new.cert.serial_number}
    for name, (leaves, authorities) in serials_in_use().items():
        assert both <= authorities, f"{name} trusts {authorities}, expected both {both}"
        on = _hosts(host)[name]
        path = f"{TLS_ROOT}/{name}/current/cert.pem"
        certificate = load_certs(on.file(path).content, path)[0]
        assert signed_by(certificate, new.cert) and leaves == {certificate.serial_number}, name
    for directory, generations in _generations(host).items():
        assert len(generations) == 3, f"{directory}: {generations}"  # current, the one before, the link

    # New connections, which need the new certificates on both ends: parallel slow requests make
    # the caller's sidecar open more of them than it holds.
    admin = sidecar_admins()["caller.v1.caller-1"]
    (address, port), _ = next(e for e in _Traffic().edges if e[1] == "callee")
    before = _handshakes(admin, "callee.")
    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(
            pool.map(
                lambda _: send(address, port, "/", headers={"Host": "callee", "x-demo-delay": "300ms"}, timeout=10),
                range(12),
            )
        )
    assert [r.status for r in replies] == [200] * 12, replies
    assert _handshakes(admin, "callee.") > before
    _security_passes(new)
