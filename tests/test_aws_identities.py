"""Mutual TLS on AWS against a local moto server: ecs-envoy identities in Secrets Manager,
pushed and rotated by meshgen, and Service Connect TLS with an AWS Private CA.

moto emulates Secrets Manager, IAM, ECS (task definitions, deployments) and ACM PCA well enough
for the AWS provider; it runs no task and keeps no Service Connect settings. So what a task does
at start (its Envoy container's command) is run here, on this machine, in a private mount
namespace: the command from the task definition moto stored, the values from the secret meshgen
pushed, and the real Envoy validating the config on the files the command wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshgen.cli import main
from meshgen.deploy.aws.drift import ecs_drift
from meshgen.deploy.aws.identities import SECRET_KEYS, secret_name
from meshgen.deploy.aws.terraform import Terraform
from meshgen.durations import Duration
from meshgen.model import load_mesh
from meshgen.pki.authority import has_own_authority, own_authority
from meshgen.pki.certificates import cert_pem, create_ca, describe, key_pem, load_certs, signed_by
from meshgen.render.document import parse_config
from meshgen.render.envoy.validate import find_envoy

pytestmark = pytest.mark.terraform

TINY = """
mesh: {name: tiny}
hosts:
  a-1: {address: 127.0.70.1}
  b-1: {address: 127.0.70.2}
  b-2: {address: 127.0.70.3}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b:
    port: 8080
    versions: {v1: {instances: [b-1], image: "registry.example/b:1"}, v2: {instances: [b-2]}}
    routes: [{name: split, to: {v1: 90, v2: 10}}]
"""


@pytest.fixture
def ca_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """meshgen's own CA for these meshes: in the test's directory, never the home one."""
    directory = tmp_path / "ca"
    monkeypatch.setenv("MESHGEN_CA_DIR", str(directory))
    return directory


def _catalog(tmp_path: Path, text: str = TINY, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _meshgen(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args))


def _apply(tmp_path: Path, catalog: Path, flavor: str, terraform_env: dict[str, str]) -> tuple[Path, Result]:
    out = tmp_path / f"root-{flavor}"
    result = _meshgen(
        "aws", "apply", str(catalog), "-o", str(out), "--flavor", flavor, "--default-image", "demo:1",
        "--auto-approve", env=terraform_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output + str(result.exception)
    return out, result


def _value(secret: str) -> dict[str, str]:
    return dict(json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]))


def _assert_svid(value: dict[str, str], spiffe_id: str, ca: x509.Certificate) -> x509.Certificate:
    """An X.509-SVID for `spiffe_id` signed by `ca`, with its own key, and `ca` trusted."""
    assert sorted(value) == sorted(SECRET_KEYS)
    [leaf] = load_certs(value["cert"].encode(), "cert")
    info = describe(leaf)
    assert info.uris == (spiffe_id,) and not info.is_ca
    assert signed_by(leaf, ca)
    key = serialization.load_pem_private_key(value["key"].encode(), password=None)
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*public) == leaf.public_key().public_bytes(*public)
    assert ca in load_certs(value["ca"].encode(), "ca")
    return leaf


def _task(family: str) -> dict[str, Any]:
    return dict(boto3.client("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"])


def _container(task: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in task["containerDefinitions"] if c["name"] == name)


def test_ecs_envoy_identities_reach_each_task_through_secrets_manager(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str], ca_dir: Path
) -> None:
    path = _catalog(tmp_path)
    mesh = load_mesh(path)
    out, applied = _apply(tmp_path, path, "ecs-envoy", terraform_env)
    assert applied.output.strip().endswith("applied")
    assert "pushed a: certificate for spiffe://tiny/service/a" in applied.output
    assert "PRIVATE KEY" not in applied.output and "BEGIN" not in applied.output

    # Each service's secret: its own X.509-SVID from meshgen's CA, created on first use.
    assert has_own_authority(ca_dir)
    ca = own_authority(ca_dir, "tiny", mesh.security.ca_lifetime).cert
    leaves = {s: _assert_svid(_value(secret_name("tiny", s)), f"spiffe://tiny/service/{s}", ca) for s in ("a", "b")}

    # Terraform's state names the secrets; it holds no key material, not even a certificate.
    terraform = Terraform(out, env=terraform_env)
    state = terraform.run("state", "pull")
    assert "PRIVATE KEY" not in state and "BEGIN CERTIFICATE" not in state
    assert f"secret:{secret_name('tiny', 'b')}" in state
    assert not terraform.resources("aws_secretsmanager_secret_version", "identity")

    # The Envoy container gets each JSON key of its service's secret; only the service's own
    # execution role may read that secret; the app container gets nothing.
    iam = boto3.client("iam")
    secrets = boto3.client("secretsmanager")
    for family, service in (("a-v1", "a"), ("b-v1", "b"), ("b-v2", "b")):
        task = _task(family)
        arn = secrets.describe_secret(SecretId=secret_name("tiny", service))["ARN"]
        envoy = _container(task, "envoy")
        assert sorted(s["valueFrom"] for s in envoy["secrets"]) == sorted(f"{arn}:{key}::" for key in SECRET_KEYS)
        assert "secrets" not in _container(task, "app")
        role = task["executionRoleArn"].rsplit("/", 1)[1]
        [policy_name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        assert document["Statement"] == [
            {
                "Sid": "ReadOwnIdentitySecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": arn,
            }
        ]
    assert _task("b-v1")["executionRoleArn"] == _task("b-v2")["executionRoleArn"] != _task("a-v1")["executionRoleArn"]

    session = boto3.session.Session()
    assert ecs_drift(mesh, "ecs-envoy", "tiny.local", session) == []

    # push again: nothing to do; rotate: new certificates, a new deployment of every ECS service.
    again = _meshgen("aws", "certs", "push", str(path))
    assert again.exit_code == 0 and "2 services already hold a certificate" in again.output
    ecs = boto3.client("ecs")
    before = {d["serviceName"]: d["deployments"][0]["id"] for d in ecs.describe_services(cluster="tiny", services=["a-v1", "b-v1", "b-v2"])["services"]}  # fmt: skip
    rotated = _meshgen("aws", "certs", "rotate", str(path))
    assert rotated.exit_code == 0, rotated.output
    assert "rolling deployments started: a-v1, b-v1, b-v2" in rotated.output
    assert "rotate again within 12h (half the leaf lifetime, 24h)" in rotated.output
    after = {d["serviceName"]: d["deployments"][0]["id"] for d in ecs.describe_services(cluster="tiny", services=["a-v1", "b-v1", "b-v2"])["services"]}  # fmt: skip
    assert all(before[name] != after[name] for name in before)
    for service in ("a", "b"):
        renewed = _assert_svid(_value(secret_name("tiny", service)), f"spiffe://tiny/service/{service}", ca)
        assert renewed.serial_number != leaves[service].serial_number
    assert ecs_drift(mesh, "ecs-envoy", "tiny.local", session) == []

    # The catalog changes: mtls off. Drift names the secrets tasks still get, and the secrets left over.
    plaintext = load_mesh(_catalog(tmp_path, TINY.replace("mesh: {name: tiny}", "mesh: {name: tiny, security: {mtls: 'off'}}"), "off.yaml"))  # fmt: skip
    fields = {(d.resource, d.field) for d in ecs_drift(plaintext, "ecs-envoy", "tiny.local", session)}
    assert ("task definition b-v2", "envoy secrets") in fields
    assert ("identity secret meshgen/tiny/identity/a", "exists") in fields

    destroyed = _meshgen("aws", "destroy", "-o", str(out), "--auto-approve", env=terraform_env)
    assert destroyed.exit_code == 0, destroyed.output
    assert not secrets.list_secrets()["SecretList"]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /dev/shm"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


# A stand-in for the image's `envoy`: reports what the task's command left behind, then has the
# real Envoy validate the config on exactly those files.
STUB = """#!/bin/sh
for f in $CHECK_FILES; do stat -c '%a' "$f"; sha256sum "$f" | cut -d' ' -f1; done
env | grep -c '^MESHGEN_TLS_'
exec "$REAL_ENVOY" --mode validate "$@"
"""


def _under_tmp(*paths: str) -> list[str]:
    """The entries of /tmp these paths live in."""
    tmp = Path("/tmp").resolve()
    return sorted(
        {p.relative_to(tmp).parts[0] for p in (Path(path).resolve() for path in paths) if p.is_relative_to(tmp)}
    )


@pytest.mark.envoy
@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user and mount namespaces)")
def test_the_task_command_writes_the_pushed_identity_where_envoy_reads_it(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str], ca_dir: Path
) -> None:
    path = _catalog(tmp_path)
    _apply(tmp_path, path, "ecs-envoy", terraform_env)
    secrets = boto3.client("secretsmanager")
    for family in ("a-v1", "b-v2"):
        envoy = _container(_task(family), "envoy")
        shell, flag, command = envoy["command"]
        config_b64 = next(e["value"] for e in envoy["environment"] if e["name"] == "ENVOY_CONFIG_B64")
        # What ECS would put in the container's environment: each secret's JSON key, by name.
        env = {}
        for secret in envoy["secrets"]:
            arn, key = secret["valueFrom"].rsplit(":", 3)[0], secret["valueFrom"].rsplit(":", 3)[1]
            env[secret["name"]] = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])[key]
        # The files, derived from the config the task runs.
        config = parse_config(base64.b64decode(config_b64).decode())
        named = {s["name"]: s for s in config["static_resources"]["secrets"]}
        files = [
            named["identity"]["tls_certificate"]["certificate_chain"]["filename"],
            named["identity"]["tls_certificate"]["private_key"]["filename"],
            named["trust"]["validation_context"]["trusted_ca"]["filename"],
        ]
        service = family.split("-")[0]
        pushed = _value(secret_name("tiny", service))
        wanted = [hashlib.sha256(pushed[k].encode()).hexdigest() for k in ("cert", "key", "ca")]
        # The task's /tmp is a fresh tmpfs; what this checkout's Envoy needs from the host's /tmp (a
        # clone in `mktemp -d`, say) is bound back into it, through /dev/shm.
        wrapper = (
            "mount -t tmpfs tmpfs /dev/shm && mkdir /dev/shm/host-tmp && mount --bind /tmp /dev/shm/host-tmp && "
            "mount -t tmpfs tmpfs /tmp && "
            'for d in $KEEP; do mkdir "/tmp/$d" && mount --bind "/dev/shm/host-tmp/$d" "/tmp/$d" || exit 1; done && '
            'mkdir /tmp/bin && printf %s "$STUB" > /tmp/bin/envoy && chmod +x /tmp/bin/envoy && '
            'PATH=/tmp/bin:$PATH exec "$TASK_SHELL" -c "$TASK_COMMAND"'
        )
        result = subprocess.run(
            ["unshare", "-rm", "sh", "-c", wrapper],
            env={
                "PATH": "/usr/bin:/bin",
                "STUB": STUB,
                "TASK_SHELL": shell,
                "TASK_COMMAND": command,
                "REAL_ENVOY": find_envoy(),
                "KEEP": " ".join(_under_tmp(find_envoy(), sys.prefix)),
                "CHECK_FILES": " ".join(files),
                "ENVOY_CONFIG_B64": config_b64,
                **env,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert flag == "-c" and result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[:6] == ["600", wanted[0], "600", wanted[1], "600", wanted[2]], family  # owner-only, as pushed
        assert lines[6] == "0", "the secrets must be unset before Envoy starts"
        assert "configuration '/tmp/envoy.yaml' OK" in result.stdout + result.stderr


def test_push_needs_the_root_and_mutual_tls(tmp_path: Path, aws_env: dict[str, str], ca_dir: Path) -> None:
    path = _catalog(tmp_path)
    missing = _meshgen("aws", "certs", "push", str(path))
    assert missing.exit_code == 1
    assert "identity secret meshgen/tiny/identity/a of service a not found: apply the ecs-envoy root" in missing.output
    off = _catalog(
        tmp_path, TINY.replace("mesh: {name: tiny}", "mesh: {name: tiny, security: {mtls: 'off'}}"), "off.yaml"
    )
    refused = _meshgen("aws", "certs", "push", str(off))
    assert refused.exit_code == 2 and "mtls off" in refused.output
    short = _catalog(tmp_path, TINY.replace("mesh: {name: tiny}", "mesh: {name: tiny, security: {leaf_lifetime: 20m}}"), "s.yaml")  # fmt: skip
    too_short = _meshgen("aws", "certs", "rotate", str(short))
    assert too_short.exit_code == 2 and "mesh.security.leaf_lifetime: 20m is too short for ECS" in too_short.output


def _secret_with_empty_values(mesh: str, services: list[str]) -> None:
    client = boto3.client("secretsmanager")
    for service in services:
        client.create_secret(Name=secret_name(mesh, service))
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=mesh)
    ecs.register_task_definition(family="x", containerDefinitions=[{"name": "app", "image": "x", "memory": 64}])
    for name in ("a-v1", "b-v1", "b-v2"):
        ecs.create_service(cluster=mesh, serviceName=name, taskDefinition="x", desiredCount=1)


def test_a_new_ca_is_trusted_everywhere_before_it_signs(tmp_path: Path, aws_env: dict[str, str], ca_dir: Path) -> None:
    """The catalog moves to a CA of its own: the first rotation only widens every trust bundle (the
    running tasks keep their certificates and now trust both CAs), the second issues from the new
    CA and keeps the old one trusted, the third drops the old CA, which signs nothing in use."""
    _secret_with_empty_values("tiny", ["a", "b"])
    path = _catalog(tmp_path)
    empty = ecs_drift(load_mesh(path), "ecs-envoy", "tiny.local", boto3.session.Session())
    assert {(d.resource, d.field, d.actual) for d in empty if d.resource.startswith("identity")} == {
        ("identity secret meshgen/tiny/identity/a", "certificate", "none"),
        ("identity secret meshgen/tiny/identity/b", "certificate", "none"),
    }
    assert _meshgen("aws", "certs", "push", str(path)).exit_code == 0
    old = own_authority(ca_dir, "tiny", Duration(3_600_000 * 24 * 365)).cert
    first = {s: load_certs(_value(secret_name("tiny", s))["cert"].encode(), s)[0] for s in ("a", "b")}

    new, key = create_ca("tiny", Duration(3_600_000 * 24 * 365))
    (tmp_path / "ca.pem").write_bytes(cert_pem(new))
    (tmp_path / "ca-key.pem").write_bytes(key_pem(key))
    moved = _catalog(tmp_path, TINY.replace("mesh: {name: tiny}", "mesh: {name: tiny, security: {ca: {cert: ca.pem, key: ca-key.pem}}}"), "moved.yaml")  # fmt: skip

    refused = _meshgen("aws", "certs", "push", str(moved))
    assert refused.exit_code == 1 and "the mesh's CA changed" in refused.output

    step1 = _meshgen("aws", "certs", "rotate", str(moved))
    assert step1.exit_code == 0, step1.output
    assert "step 1 of 2" in step1.output and "a: same certificate" in step1.output
    for service in ("a", "b"):
        value = _value(secret_name("tiny", service))
        assert load_certs(value["cert"].encode(), service)[0] == first[service]
        assert load_certs(value["ca"].encode(), service) == [new, old]

    step2 = _meshgen("aws", "certs", "rotate", str(moved))
    assert step2.exit_code == 0 and "step 1 of 2" not in step2.output
    for service in ("a", "b"):
        value = _value(secret_name("tiny", service))
        _assert_svid(value, f"spiffe://tiny/service/{service}", new)
        assert load_certs(value["ca"].encode(), service) == [new, old]  # old tasks still present old certificates

    step3 = _meshgen("aws", "certs", "rotate", str(moved))
    assert step3.exit_code == 0
    assert load_certs(_value(secret_name("tiny", "a"))["ca"].encode(), "a") == [new]


def test_service_connect_tls_with_a_private_ca(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str]
) -> None:
    """moto emulates ACM PCA: the root creates, self-signs and activates a Private CA in
    short-lived mode, tagged for ECS's managed policy. (moto keeps no Service Connect settings,
    so the services' tls blocks are covered by the modules' native tests.)"""
    path = _catalog(tmp_path)
    out, applied = _apply(tmp_path, path, "service-connect", terraform_env)
    assert "mutual TLS strict: one-way TLS between Service Connect proxies" in applied.output
    assert "b: authorization not enforced" in (out / "LIMITATIONS.md").read_text()
    pca = boto3.client("acm-pca")
    [authority] = pca.list_certificate_authorities()["CertificateAuthorities"]
    assert (authority["Status"], authority["Type"], authority["UsageMode"]) == (
        "ACTIVE",
        "ROOT",
        "SHORT_LIVED_CERTIFICATE",
    )
    tags = {t["Key"]: t["Value"] for t in pca.list_tags(CertificateAuthorityArn=authority["Arn"])["Tags"]}
    assert tags["AmazonECSManaged"] == "true"
    terraform = Terraform(out, env=terraform_env)
    assert terraform.outputs()["private_ca_arn"] == authority["Arn"]
    role = next(r for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("tiny-sc-tls-"))
    attached = boto3.client("iam").list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [
        "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity"
    ]
    state = terraform.run("state", "pull")
    assert "PRIVATE KEY" not in state  # the CA's key stays in AWS Private CA
    assert not boto3.client("secretsmanager").list_secrets()["SecretList"]
