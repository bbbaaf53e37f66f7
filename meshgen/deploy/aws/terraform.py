"""Driving the Terraform CLI from Python.

The product owner named python-terraform. Its last release (0.10.1, 2019) predates Terraform
0.15 and breaks on Terraform 1.x: `destroy()` passes the removed `-force` flag, `output(name)`
expects a JSON shape Terraform no longer prints, and `apply()` without `skip_plan` waits for an
interactive "yes" (all three seen when choosing). So meshgen drives the CLI itself
through its documented automation interface (`-input=false`, saved plans, `show -json`,
`output -json`), which HashiCorp maintains and keeps stable, and which needs no wrapper library.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshgen.errors import UserError

PLAN_FILE = "meshgen.tfplan"
# What Terraform gets to stop cleanly after one interrupt (it finishes the calls under way, writes
# its state and releases the lock) before it is killed.
STOP_GRACE_SECONDS = 60.0


class TerraformError(UserError):
    """A Terraform command failed; the message carries its output."""


@dataclass(frozen=True)
class PlanSummary:
    add: int
    change: int
    destroy: int
    resources: list[str]  # "create aws_ecs_service.this (module.service["users-v1"])" ...

    def describe(self) -> str:
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."

    def to_json(self) -> dict[str, Any]:
        resources = [dict(zip(("action", "address"), r.split(" ", 1), strict=True)) for r in self.resources]
        return {"add": self.add, "change": self.change, "destroy": self.destroy, "resources": resources}


class Terraform:
    """The Terraform CLI in one root directory. Commands that work for long (init, plan, apply)
    hand their output to `progress` line by line as Terraform prints it; every command is stopped
    after `timeout` seconds, as on Ctrl-C: one SIGINT, then SIGKILL after STOP_GRACE_SECONDS."""

    def __init__(
        self,
        working_dir: Path,
        env: dict[str, str] | None = None,
        binary: str | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.working_dir = working_dir
        self.env = {**os.environ, **(env or {}), "TF_IN_AUTOMATION": "1"}
        found = binary or shutil.which("terraform")
        if not found:
            raise UserError("terraform not found: install Terraform 1.9 or newer and put it on PATH")
        self.binary = found
        self.progress = progress
        self.timeout = timeout

    def run(self, *args: str, stream: bool = False) -> str:
        """Run `terraform ARGS`; its stdout. With `stream` (and a `progress`), stdout and stderr go
        to `progress` as they come and the return value is both."""
        streaming = stream and self.progress is not None
        # Its own process group: Ctrl-C at the terminal reaches meshgen only, which passes exactly
        # one SIGINT on (a second one makes Terraform exit at once, without writing its state).
        process = subprocess.Popen(
            [self.binary, f"-chdir={self.working_dir}", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if streaming else subprocess.PIPE,
            text=True,
            process_group=0,
        )
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _interrupt(process)

        timer = threading.Timer(self.timeout, on_timeout) if self.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            if streaming:
                assert process.stdout is not None and self.progress is not None
                lines = []
                for line in process.stdout:
                    lines.append(line)
                    self.progress(line.rstrip("\n"))
                process.wait()
                stdout, stderr = "".join(lines), ""
            else:
                stdout, stderr = process.communicate()
        except BaseException:  # Ctrl-C above all: Terraform stops cleanly before meshgen exits
            _interrupt(process)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if timed_out.is_set():
            raise TerraformError(
                f"terraform {args[0]} did not finish within {self.timeout:.0f}s in {self.working_dir} and was stopped"
                f"{_tail(stdout + stderr)}"
            )
        if process.returncode != 0:
            output = (stdout + stderr).strip()
            where = f" in {self.working_dir}" + (" (its output is above)" if streaming else f":\n{output}")
            raise TerraformError(f"terraform {args[0]} failed{where}")
        return stdout

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color", stream=True)

    def plan(self, destroy: bool = False) -> PlanSummary:
        self.run(
            "plan",
            "-input=false",
            "-no-color",
            "-lock-timeout=30s",
            f"-out={PLAN_FILE}",
            *(["-destroy"] if destroy else []),
            stream=True,
        )
        return summarize(json.loads(self.run("show", "-json", PLAN_FILE)))

    def apply_plan(self) -> None:
        """Apply exactly the plan saved by the last `plan()`."""
        self.run("apply", "-input=false", "-no-color", "-lock-timeout=30s", PLAN_FILE, stream=True)

    def apply_targets(self, *addresses: str) -> None:
        """Apply only `addresses` (and what they need), without a saved plan: for bootstrapping
        what the rest of the configuration must find already in place."""
        targets = [f"-target={address}" for address in addresses]
        self.run("apply", "-input=false", "-no-color", "-lock-timeout=30s", "-auto-approve", *targets)

    def resources(self, type_: str, name: str) -> dict[str, dict[str, Any]]:
        """Instances of the managed resource `type_.name` in the state, in any module: index -> values."""
        state = json.loads(self.run("show", "-json")).get("values", {})
        found: dict[str, dict[str, Any]] = {}
        modules = [state.get("root_module", {})]
        while modules:
            module = modules.pop()
            modules += module.get("child_modules", [])
            for resource in module.get("resources", []):
                if (resource.get("mode"), resource["type"], resource["name"]) == ("managed", type_, name):
                    found[str(resource.get("index", ""))] = resource.get("values", {})
        return found

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json"))
        return {name: entry["value"] for name, entry in raw.items()}

    def version(self) -> str:
        return str(json.loads(self.run("version", "-json"))["terraform_version"])


def _interrupt(process: subprocess.Popen[str]) -> None:
    """Stop Terraform as Ctrl-C would: one SIGINT, time to stop cleanly, then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(output: str, lines: int = 20) -> str:
    kept = output.strip().splitlines()[-lines:]
    return ":\n" + "\n".join(kept) if kept else ""


def summarize(plan: dict[str, Any]) -> PlanSummary:
    counts = {"create": 0, "update": 0, "delete": 0}
    resources = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        for action in actions:
            if action in counts:
                counts[action] += 1
        resources.append(f"{'/'.join(actions)} {change['address']}")
    return PlanSummary(add=counts["create"], change=counts["update"], destroy=counts["delete"], resources=resources)
