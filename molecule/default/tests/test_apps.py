"""A real app, unchanged, on an on-prem host (the app role): the auditor runs Python's file server
as meshgen-app-<instance>.service, sandboxed, as the app user, with the environment meshgen gives
every app (its listener for the caller at 127.0.80.200:8080); auditor-1's hosts file names that
listener, so `curl http://caller:8080/` on the host reaches the caller through the auditor's
sidecar; the app answers through its own sidecar. Re-running the role restarts only what changed,
prunes what is no longer listed and prints no environment value; the hosts file block goes with
the host's entries."""

from __future__ import annotations

import re

from conftest import app_unit, apps, assert_listening, journal, main_pid, mesh, other_host, run_site

from meshgen.verify.http import send

testinfra_hosts = ["auditor-1"]

HOST = "auditor-1"
UNIT = "meshgen-app-auditor.v1.auditor-1.service"
ENV_FILE = "/etc/meshgen/apps/auditor.v1.auditor-1.env"
LISTEN = "127.0.80.132:8080"  # auditor-1's local address (127.0.80.4, high bit flipped), the service's port
CALLER_LISTENER = "127.0.80.200"
WORKDIR = "/usr/share/common-licenses"
HOSTS_BLOCK = (
    "# BEGIN meshgen mesh molecule: names of the sidecars' dependency listeners\n"
    "127.0.80.200 caller caller.mesh\n"
    "# END meshgen mesh molecule: names of the sidecars' dependency listeners\n"
)


def _catalog_env() -> dict[str, str]:
    instance = mesh().service("auditor").instances[0]
    return dict(instance.env)


def _properties(host, names: list[str]) -> dict[str, str]:
    command = f"systemctl show {UNIT} " + " ".join(f"--property {n}" for n in names)
    return dict(line.split("=", 1) for line in host.check_output(command).splitlines())


def _proc(host, pid: str, name: str) -> list[str]:
    """/proc/PID/<name> (environ, cmdline), NUL-separated, read as the app user: root in the
    container may not read another user's process files (no CAP_SYS_PTRACE)."""
    raw = host.run(f"runuser -u meshgen-app -- cat /proc/{pid}/{name}")
    assert raw.rc == 0, raw.stderr
    return [part for part in raw.stdout.split("\0") if part]


def _recap(output: str) -> str:
    found = re.search(rf"^{HOST}\s+: (ok=.*)$", output, re.MULTILINE)
    assert found, output
    return found[1]


def test_the_host_vars_list_the_auditor_as_a_real_app(host):
    assert [i["name"] for i in apps(host)] == ["auditor.v1.auditor-1"]
    assert app_unit(apps(host)[0]) == UNIT


def test_the_app_runs_sandboxed_as_the_app_user_in_its_workdir(host):
    sandbox = {
        "Type": "exec",
        "Restart": "on-failure",
        "User": "meshgen-app",
        "WorkingDirectory": WORKDIR,
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictNamespaces": "yes",
        "ProtectKernelTunables": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
    }
    properties = _properties(host, [*sandbox, "MainPID", "ReadWritePaths", "ActiveState", "UnitFileState"])
    assert {k: properties[k] for k in sandbox} == sandbox, properties
    assert properties["ActiveState"] == "active" and properties["UnitFileState"] == "enabled", journal(host, UNIT)
    assert properties["ReadWritePaths"] == f"-{WORKDIR}", properties
    status = host.check_output(f"cat /proc/{properties['MainPID']}/status")
    assert f"Uid:\t{host.user('meshgen-app').uid}\t" in status, status
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status, status
    assert host.user("meshgen-app").shell == "/usr/sbin/nologin"


def test_the_command_reaches_the_program_as_written(host):
    """sh got the catalog's script, `$` and `%` included (ExecStart= escapes them), and expanded
    MESHGEN_LISTEN itself: python3 runs with the address and port."""
    pid = main_pid(host, UNIT)
    assert _proc(host, pid, "cmdline") == ["python3", "-m", "http.server", "--bind", "127.0.80.132", "8080"]
    exec_start = _properties(host, ["ExecStart"])["ExecStart"]
    script = 'exec python3 -m http.server --bind "${MESHGEN_LISTEN%:*}" "${MESHGEN_LISTEN##*:}"'
    # systemctl shows argv with specifiers expanded (%% is a %) but before the environment is, at
    # exec: each `$` still written `$$`, as the unit escapes it (the cmdline above is what runs).
    shown = script.replace("$", "$$")
    assert f"argv[]=sh -c {shown} ;" in exec_start, exec_start
    assert_listening(host, LISTEN, UNIT)


def test_the_app_has_exactly_the_environment_meshgen_gives(host):
    environ = dict(v.split("=", 1) for v in _proc(host, main_pid(host, UNIT), "environ"))
    assert environ["CALLER_SERVICE_HOST"] == CALLER_LISTENER
    assert environ["CALLER_SERVICE_PORT"] == "8080"
    assert environ["CALLER_URL"] == "http://127.0.80.200:8080"
    assert environ["MESHGEN_LISTEN"] == LISTEN and environ["MESHGEN_INSTANCE"] == "auditor.v1.auditor-1"
    assert environ["MESHGEN_MESH"] == "molecule" and environ["MESHGEN_SERVICE"] == "auditor"
    # Its only dependency is dialled at its own address: no proxy to set.
    assert not {"HTTP_PROXY", "http_proxy"} & set(environ), environ
    # Quotes, backslashes, $, %, braces, non-ASCII and a newline, as the catalog has them: nothing
    # on the way (YAML, Ansible's templating, systemd's env file) changed or expanded them.
    catalog = _catalog_env()
    assert environ["MOLECULE_QUOTING"] == catalog["MOLECULE_QUOTING"]
    assert "\n" in environ["MOLECULE_QUOTING"] and "{{ not ansible }}" in environ["MOLECULE_QUOTING"]
    assert environ["MOLECULE_SECRET"] == catalog["MOLECULE_SECRET"]


def test_the_environment_file_is_for_root_and_the_app_group_only(host):
    for path, mode in ((ENV_FILE, 0o640), ("/etc/meshgen/apps", 0o750)):
        found = host.file(path)
        assert (found.user, found.group, found.mode) == ("root", "meshgen-app", mode), path


def test_the_hosts_file_names_the_callers_listener(host):
    assert HOSTS_BLOCK in host.file("/etc/hosts").content_string
    for name in ("caller", "caller.mesh"):
        address, *names = host.check_output(f"getent hosts {name}").split()
        assert address == CALLER_LISTENER and name in names, (name, address, names)
    # Only auditor-1 has hosts_file: the others' hosts files carry no block.
    for other in ("caller-1", "callee-1"):
        assert "meshgen mesh" not in other_host(host, other).file("/etc/hosts").content_string, other


def test_a_process_on_the_host_reaches_the_caller_by_its_name_through_the_sidecar(host):
    """As the app would: a plain URL, no proxy, no Host header set by hand."""
    result = host.run("curl -sS -m 10 -D - http://caller:8080/")
    assert result.rc == 0, result.stderr
    head, _, body = result.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), result.stdout
    # Through the auditor's sidecar (Envoy times the upstream) to the caller's demo app.
    assert "x-envoy-upstream-service-time" in head.lower(), head
    assert '"service": "caller"' in body or '"service":"caller"' in body, body


def test_the_app_answers_through_its_own_sidecar():
    """The auditor is an edge service: callers from outside the mesh may call it in plaintext,
    on its sidecar's inbound listener, which passes the request to the app."""
    reply = send("127.0.80.4", 15006, "/GPL-3", headers={"Host": "auditor"}, timeout=10)
    assert reply.status == 200, reply
    assert reply.from_upstream, reply.headers
    assert "GNU GENERAL PUBLIC LICENSE" in reply.body and "Version 3" in reply.body


def test_a_rerun_restarts_only_what_changed_prunes_and_prints_no_environment(host):
    sidecar = "envoy@auditor.v1.auditor-1.service"
    app_pid, sidecar_pid = main_pid(host, UNIT), main_pid(host, sidecar)
    # A changed environment file (the role puts it back), and an app no longer listed.
    host.run(f"echo 'EXTRA=1' >> {ENV_FILE}")
    stale = "meshgen-app-stale.v1.auditor-1"
    host.run(
        f"printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/{stale}.service"
        " && echo 'A=1' > /etc/meshgen/apps/stale.v1.auditor-1.env"
        f" && systemctl daemon-reload && systemctl start {stale}"
    )
    assert host.service(stale).is_running

    result = run_site("--tags", "app", "-v", "--diff", limit=HOST)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for value in _catalog_env().values():  # the secret, and the quoting test's value, never printed
        assert value not in output
    assert "molecule-secret" not in output
    assert "EXTRA=1" not in output
    assert "EXTRA" not in host.file(ENV_FILE).content_string
    new_pid = main_pid(host, UNIT)
    assert new_pid not in ("0", app_pid), journal(host, UNIT)  # its environment changed: restarted
    assert main_pid(host, sidecar) == sidecar_pid  # not the app role's
    assert_listening(host, LISTEN, UNIT)
    assert not host.service(stale).is_running
    assert not host.file(f"/etc/systemd/system/{stale}.service").exists
    assert not host.file("/etc/meshgen/apps/stale.v1.auditor-1.env").exists

    again = run_site("--tags", "app", limit=HOST)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"changed=0\b", _recap(again.stdout)), again.stdout
    assert main_pid(host, UNIT) == new_pid


def test_removing_the_hosts_file_entries_removes_the_block_and_restores_it(host):
    """What hosts_file: false (or removed) does: no entries for the host, so the block goes; the
    next run with the entries puts it back, and a run after that changes nothing."""
    try:
        removed = run_site("--tags", "envoy_config", limit=HOST, extra_vars={"envoy_hosts_file_entries": []})
        assert removed.returncode == 0, removed.stdout + removed.stderr
        hosts = host.file("/etc/hosts").content_string
        assert "meshgen mesh" not in hosts and "127.0.80.200" not in hosts, hosts
        assert host.run("getent hosts caller").rc != 0
        assert "localhost" in hosts  # nothing else of the file changed
    finally:
        restored = run_site("--tags", "envoy_config", limit=HOST)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert HOSTS_BLOCK in host.file("/etc/hosts").content_string
    assert host.file("/etc/hosts").content_string.startswith(HOSTS_BLOCK)
    again = run_site("--tags", "envoy_config", limit=HOST)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"changed=0\b", _recap(again.stdout)), again.stdout
