"""`python -m bench`: run the benchmark sections side by side and write the results."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import convergence, dataplane, generation, instructions, localmesh, provisioning, report

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("generation", "dataplane", "instructions", "convergence", "localmesh", "provisioning")


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="meshgen's benchmarks: generator scaling, data-plane overhead (wall clock and instructions), "
        "route convergence, a local mesh (meshgen up), provisioning.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run in about a minute: 10 and 100 services, short measurements"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--provisioning", action="store_true", help="also time Molecule provisioning (Docker, root, minutes)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results", help="directory for latest.json and latest.md"
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        help="generator catalog sizes, comma-separated (default: 100,1000,5000,10000; quick 10,100)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/PERFORMANCE.md")
    return parser.parse_args(argv)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated service counts, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("each size must be at least 2 services")
    return sizes


def _versions() -> dict[str, str | None]:
    try:
        envoy: str | None = dataplane.find_envoy()
    except Exception:
        envoy = None
    return dataplane.tool_versions(envoy, dataplane.which_tool("wrk"), dataplane.which_tool("nginx"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    selected = set(args.only or SECTIONS)
    mode = "quick" if args.quick else "full"
    machine = report.machine_info()
    sections: dict[str, str] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    results: dict[str, Any] = {}
    began = time.monotonic()
    log(f"meshgen bench ({mode}), {machine['cores']} cores, load average {machine['load_average_at_start']}")
    with tempfile.TemporaryDirectory(prefix="meshgen-bench-") as scratch:
        workdir = Path(scratch)
        runners = {
            "generation": lambda: generation.run(
                generation.GenerationConfig.for_run(args.quick, args.sizes), workdir / "generation", log
            ),
            "dataplane": lambda: dataplane.run(
                dataplane.DataplaneConfig.for_run(args.quick), workdir / "dataplane", log
            ),
            "instructions": lambda: instructions.run(
                instructions.InstructionsConfig.for_run(args.quick), workdir / "instructions", log
            ),
            "convergence": lambda: convergence.run(
                convergence.ConvergenceConfig.for_run(args.quick), workdir / "convergence", log
            ),
            "localmesh": lambda: localmesh.run(
                localmesh.LocalMeshConfig.for_run(args.quick), workdir / "localmesh", log
            ),
            "provisioning": lambda: provisioning.run(args.provisioning, REPO, log),
        }
        for section in SECTIONS:
            if section not in selected:
                sections[section] = "not run (--only)"
                continue
            log(f"== {section}")
            start = time.monotonic()
            try:
                results[section] = runners[section]()
                sections[section] = "ran"
            except Exception as exc:  # one failed section is reported; the others still run
                sections[section] = f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                errors[section] = "".join(traceback.format_exception(exc))[-6000:]
                log(f"  {section} FAILED: {exc}")
            seconds[section] = round(time.monotonic() - start, 1)
            log(f"  ({seconds[section]:.1f} s)")
    if results.get("localmesh", {}).get("status") == "not run":
        sections["localmesh"] = f"not run: {results['localmesh']['reason']}"
    if "provisioning" in results:
        status = results["provisioning"]["status"]
        sections["provisioning"] = "ran" if status == "ran" else f"{status}: {results['provisioning']['reason']}"
    prov = results.get("provisioning") or provisioning.not_run(sections["provisioning"])
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    document = report.build_document(
        mode=mode,
        sections=sections,
        generation=results.get("generation"),
        overhead=results.get("dataplane") or dataplane.empty(),
        instructions=results.get("instructions") or instructions.empty(),
        convergence=results.get("convergence") or convergence.empty(),
        localmesh=results.get("localmesh") or localmesh.empty(),
        provisioning=prov,
        machine=machine,
        conditions={
            "command": "python -m bench " + shlex.join(argv),
            "versions": (results.get("dataplane") or {}).get("versions") or _versions(),
            "section_seconds": seconds,
            "total_seconds": round(time.monotonic() - began, 1),
        },
    )
    if errors:
        document["errors"] = errors
    json_path, md_path = report.write_results(document, args.out, report.results_name(mode, bool(args.only)))
    log(f"wrote {json_path} and {md_path}")
    if not args.no_docs:
        doc_path = REPO / "docs" / "PERFORMANCE.md"
        existing = doc_path.read_text(encoding="utf-8") if doc_path.exists() else None
        publish, why = report.should_publish(document, existing)
        if publish:
            doc_path.parent.mkdir(parents=True, exist_ok=True)
            doc_path.write_text(report.performance_doc(document), encoding="utf-8")
            log(f"wrote {doc_path} ({why})")
        else:
            log(f"left {doc_path} as it is: {why}")
    log(f"done in {time.monotonic() - began:.1f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
