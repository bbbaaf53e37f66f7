"""`meshgen verify` output: a table by default, `{"checks": [...]}` with --json."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from meshgen.verify.checks import CheckResult, Skipped


def to_json(results: list[CheckResult], skipped: list[Skipped]) -> dict[str, Any]:
    return {"checks": [asdict(r) for r in results], "skipped": [asdict(s) for s in skipped]}


def to_table(results: list[CheckResult], skipped: list[Skipped]) -> str:
    rows = [("KIND", "NAME", "RESULT", "DETAIL")]
    rows += [(r.kind, r.name, "pass" if r.passed else "FAIL", r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{k:<{widths[0]}}  {n:<{widths[1]}}  {p:<{widths[2]}}  {d}" for k, n, p, d in rows]
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed" + (f", {len(skipped)} skipped" if skipped else ""))
    lines += [f"  skipped {s.kind} {s.name}: {s.reason}" for s in skipped]
    return "\n".join(lines)
