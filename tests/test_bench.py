"""The benchmark suite's pure parts: catalog builders, statistics, analysis and the result writers.

Nothing here starts a server or measures performance (only `timed_command`'s bounds are checked, on
`true`, `false` and `sleep`): the benchmarks themselves run with `python -m bench`.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bench import convergence, dataplane, generation, handshakes, instructions, localmesh, provisioning, report
from bench.__main__ import parse_args
from bench.convergence import Sample, analyze_shift
from bench.processes import require_loopback
from bench.stats import median, median_interval, percentile, ratio, rounded
from meshgen.model import load_mesh
from meshgen.render.envoy import Layout, render_envoy

# -- synthetic catalogs --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 23])
def test_synthetic_catalog_is_valid_with_the_requested_fanout(tmp_path: Path, size: int) -> None:
    path = generation.write_catalog(generation.synthetic_catalog(size, fanout=5), tmp_path / "catalog.yaml")
    mesh = load_mesh(path)
    assert len(mesh.services) == size
    addresses = [h.address for h in mesh.hosts]
    assert len(addresses) == len(set(addresses))
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    for service in mesh.services:
        targets = [d.target for d in service.dependencies]
        assert len(targets) == len(set(targets)) == 5
        assert service.name not in targets
        assert [v.name for v in service.versions] == ["v1", "v2"]
        assert all(len(v.instances) == 1 for v in service.versions)
        assert [r.weights for r in service.routes] == [(("v1", 90), ("v2", 10))]
    # Every service is called by exactly `fanout` others: a ring, uniform load on every sidecar.
    assert all(len(mesh.callers_of(s.name)) == 5 for s in mesh.services)


def test_fanout_is_capped_for_tiny_catalogs(tmp_path: Path) -> None:
    mesh = load_mesh(generation.write_catalog(generation.synthetic_catalog(3, fanout=5), tmp_path / "c.yaml"))
    assert all(len(s.dependencies) == 2 for s in mesh.services)


def test_probe_catalog_has_one_service_calling_every_other(tmp_path: Path) -> None:
    catalog = generation.synthetic_catalog(12, probe=True)
    mesh = load_mesh(generation.write_catalog(catalog, tmp_path / "catalog.yaml"))
    probe = mesh.service(generation.PROBE)
    assert len(probe.dependencies) == 12
    assert len(mesh.services) == 13


def test_service_names_have_one_width_at_every_size() -> None:
    assert {len(generation.service_name(i)) for i in (0, 9, 99, 4_999)} == {6}


def test_sidecar_sizes_group_files_by_sidecar_directory() -> None:
    files = {"a.v1.h1/envoy.yaml": "abc", "a.v1.h1/cds.yaml": "de", "b.v1.h2/envoy.yaml": "é"}
    assert generation.sidecar_sizes(files) == {"a.v1.h1": 5, "b.v1.h2": 2}


def _cli_sample(seconds: float, copy: float = 0.5, rss: float = 60.0) -> dict[str, Any]:
    return {
        "new": {"seconds": seconds, "peak_rss_mib": rss},
        "copy": {"seconds": copy, "peak_rss_mib": 2.0},
        "unchanged": {"seconds": seconds / 2, "peak_rss_mib": rss},
        "one_route_change": {"seconds": seconds / 2 + 0.1, "peak_rss_mib": rss + 1},
        "files": 10,
        "bytes": 1000,
    }


def _in_memory(seconds: float, sidecar_bytes: float = 20_000.0) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "load_seconds": 0.1,
        "render_seconds": seconds - 0.1,
        "peak_rss_mib": 50.0,
        "rss_growth_mib": 10.0,
        "files": 10,
        "bytes": 1000,
        "sidecar_bytes_mean": sidecar_bytes,
    }


def test_generation_summary_layout_and_targets() -> None:
    config = generation.GenerationConfig(sizes=(100, 1_000, 5_000), rounds=3)
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    breakdown: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for target in generation.TARGETS:
        for size in config.sizes:
            seconds = 0.001 * size if target != "aws" else 0.004 * size
            runs[(target, size)] = [_cli_sample(seconds), _cli_sample(seconds * 3, copy=1.5)]
            breakdown[(target, size)] = [_in_memory(seconds / 2, 20_000.0 if size < 5_000 else 21_000.0)]
    validates = {1_000: [{"seconds": 0.8, "peak_rss_mib": 70.0}, {"seconds": 1.0, "peak_rss_mib": 72.0}]}
    result = generation.summarize(config, runs, breakdown, validates, {100: 300_000.0, 5_000: 15_000_000.0})
    assert set(result["generate_seconds"]["1000"]) == {"envoy", "onprem", "aws"}
    # generate_seconds is the end-to-end figure: the median of the rounds of `generate` into a new directory
    assert result["generate_seconds"]["1000"]["envoy"] == pytest.approx(2.0)  # median of 1 s and 3 s
    detail = result["generate_details"]["1000"]["envoy"]
    assert detail["copy_seconds"] == 1.0
    assert detail["new_vs_copy"] == 2.0
    assert detail["unchanged"]["seconds"] == 1.0
    assert detail["one_route_change"]["seconds_per_round"] == [0.6, 1.6]
    assert detail["peak_rss_mib"] == 61.0  # the largest of the modes
    assert detail["in_memory"]["seconds"] == 0.5
    assert result["validate_seconds"] == {"1000": 0.9}
    assert result["validate_details"]["1000"]["peak_rss_mib"] == 72.0
    assert result["sidecar_config_bytes"] == {"100": 20_000.0, "1000": 20_000.0, "5000": 21_000.0}
    assert result["unscoped_sidecar_config_bytes"] == {"100": 300_000.0, "5000": 15_000_000.0}
    at_1000 = result["generation_targets"]["all_targets_under_3s_at_1000"]
    assert at_1000["seconds"] == 8.0 and at_1000["met"] is False
    assert at_1000["in_memory_seconds"] == 2.0
    assert result["generation_targets"]["sidecar_bytes_5000_vs_100"] == {"ratio": 1.05, "met": True}


def test_one_route_change_changes_one_route_only() -> None:
    catalog = generation.synthetic_catalog(12)
    changed = generation.one_route_change(catalog)
    assert changed["services"]["s00000"]["routes"][0]["to"] == {"v1": 80, "v2": 20}
    assert catalog["services"]["s00000"]["routes"][0]["to"] == {"v1": 90, "v2": 10}  # a copy
    changed["services"]["s00000"]["routes"] = catalog["services"]["s00000"]["routes"]
    assert changed == catalog


def test_host_addresses_never_collide_with_a_local_address() -> None:
    addresses = [ipaddress.ip_address(generation.host_address(i)) for i in range(20_001)]
    assert len(set(addresses)) == len(addresses)
    assert all(a.is_loopback and 1 <= a.packed[3] <= 127 for a in addresses)


def test_timed_command_reports_exit_peak_memory_and_timeouts(tmp_path: Path) -> None:
    done = generation.timed_command(["true"], 30, tmp_path / "true.log")
    assert done.ok and done.peak_rss_mib > 0
    failed = generation.timed_command(["false"], 30, tmp_path / "false.log")
    assert failed.returncode == 1 and not failed.ok
    killed = generation.timed_command(["sleep", "30"], 0.2, tmp_path / "sleep.log")
    assert killed.returncode is None and killed.seconds < 10


def test_large_sizes_run_fewer_rounds() -> None:
    config = generation.GenerationConfig.for_run(quick=False)
    assert [config.rounds_for(s) for s in config.sizes] == [3, 3, 1, 1]  # 1,000 is where the 3 s target is judged
    assert config.sizes == (100, 1_000, 5_000, 10_000)
    assert generation.GenerationConfig.for_run(quick=True).sizes == (10, 100)


# -- statistics ----------------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_ratio_and_rounding() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(2.0, None) is None
    assert rounded(1.23456, 2) == 1.23
    assert rounded(None) is None


# -- data plane ----------------------------------------------------------------------------------------


def _round(p50: float, p99: float, rps: float) -> dict[str, Any]:
    return {"p50_ms": p50, "p90_ms": p99, "p99_ms": p99, "mean_ms": p50, "rps": rps, "requests": 100, "errors": 0}


def test_overhead_summary_has_ratios_to_direct_floor_and_features() -> None:
    samples = {
        "direct": [_round(0.2, 1.0, 40_000.0)],
        "floor": [_round(1.0, 2.0, 10_000.0), _round(1.2, 2.4, 9_000.0), _round(0.8, 1.6, 11_000.0)],
        "meshgen": [_round(1.5, 3.0, 8_000.0)],
        "tracing_100pct": [_round(3.0, 6.0, 4_000.0)],
    }
    overhead = dataplane.summarize(samples)
    assert overhead["configs"]["floor"]["p50_ms"] == 1.0  # median over rounds
    assert overhead["p50_vs_floor"] == 1.5
    assert overhead["p99_vs_floor"] == 1.5
    assert overhead["rps_vs_floor"] == 0.8
    assert overhead["p50_vs_direct"] == 7.5
    assert overhead["p99_vs_direct"] == 3.0
    tracing = overhead["features"]["tracing_100pct"]
    assert tracing["p50_vs_meshgen"] == 2.0
    assert tracing["p50_delta_ms"] == 1.5
    assert tracing["rps_vs_meshgen"] == 0.5
    assert overhead["features"]["mtls"] == "not measured in this run"


def test_median_interval_is_reproducible_and_holds_the_median() -> None:
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 0.8, 1.02, 0.98, 1.01]
    interval = median_interval(values)
    assert interval is not None and interval == median_interval(values)
    assert interval[0] <= median(values) <= interval[1]
    assert 0.8 <= interval[0] < interval[1] <= 1.2
    assert median_interval([1.0, 2.0]) is None
    assert median_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_every_configuration_is_measured_between_two_floor_measurements() -> None:
    names = ["direct", "floor", "floor_again", "meshgen"]
    first, second = dataplane.schedule(names, 0), dataplane.schedule(names, 1)
    assert first == ["floor", "direct", "floor", "floor_again", "floor", "meshgen", "floor"]
    assert second == ["floor", "floor_again", "floor", "meshgen", "floor", "direct", "floor"]


def test_bracketed_ratios_compare_each_sample_with_its_own_floor() -> None:
    # The machine slows down by half between rounds; meshgen is 5% slower than the floor each time.
    samples: dict[str, list[dict[str, Any]]] = {"floor": [], "meshgen": []}
    for round_index, speed in enumerate((1.0, 2.0, 2.0)):
        sequence = dataplane.schedule(["floor", "meshgen"], round_index)
        measured = [
            _round(speed * (1.05 if name == "meshgen" else 1.0), 2 * speed, 10_000 / speed) for name in sequence
        ]
        dataplane.attach_brackets(sequence, measured)
        for name, sample in zip(sequence, measured, strict=True):
            samples[name].append(sample)
    overhead = dataplane.summarize(samples)
    assert overhead["p50_vs_floor"] == 1.05
    assert overhead["p99_vs_floor"] == 1.0
    assert overhead["configs"]["meshgen"]["vs_floor"]["p50_rounds"] == [1.05, 1.05, 1.05]
    assert {r["floor"]["p50_ms"] for r in samples["meshgen"]} == {1.0, 2.0}  # each against its own floor


def test_pair_catalog_renders_a_caller_that_reaches_the_callee_by_host(tmp_path: Path) -> None:
    ports = {"inbound": 15006, "outbound": 15001, "admin": 15000, "caller_app": 18081, "app": 18080}
    variant = dataplane.FEATURES[1]  # tracing at 100%
    catalog = dataplane.pair_catalog(variant, "127.0.90.10", "127.0.90.11", ports, ("127.0.90.1", 9411))
    path = tmp_path / "pair.yaml"
    path.write_text(yaml.safe_dump(catalog), encoding="utf-8")
    mesh = load_mesh(path)
    assert mesh.tracing is not None and mesh.tracing.sample_percent == 100
    files = render_envoy(mesh, Layout(PurePosixPath("/bench")))
    routes = yaml.safe_load(files["caller.v1.caller-1/rds-outbound.yaml"])
    assert routes["resources"][0]["virtual_hosts"][0]["domains"][0] == "callee"
    cds = yaml.safe_load(files["callee.v1.callee-1/cds.yaml"])
    app = cds["resources"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert app["socket_address"] == {"address": "127.0.90.11", "port_value": 18080}
    assert not mesh.security.enabled  # compared with plaintext floors
    assert not any(name.endswith("sds-identity.yaml") for name in files)


def test_retries_variant_sets_attempts() -> None:
    ports = {"inbound": 1, "outbound": 2, "admin": 3, "caller_app": 4, "app": 5}
    on = dataplane.pair_catalog(dataplane.FEATURES[3], "127.0.0.2", "127.0.0.3", ports, None)
    off = dataplane.pair_catalog(dataplane.MESHGEN, "127.0.0.2", "127.0.0.3", ports, None)
    assert on["mesh"]["defaults"]["retries"]["attempts"] == 3
    assert off["mesh"]["defaults"]["retries"]["attempts"] == 1
    assert "tracing" not in off["mesh"]


def test_strip_access_logs_removes_only_access_logs() -> None:
    listener = {"filters": [{"typed_config": {"stat_prefix": "x", "access_log": [{"name": "file"}]}}], "n": 1}
    assert dataplane.strip_access_logs(listener) == {"filters": [{"typed_config": {"stat_prefix": "x"}}], "n": 1}


def test_floor_config_is_one_listener_and_one_static_cluster() -> None:
    config = dataplane.floor_envoy_config(("127.0.90.3", 15001), ("127.0.90.4", 15001))
    resources = config["static_resources"]
    assert len(resources["listeners"]) == 1
    assert len(resources["clusters"]) == 1
    assert resources["clusters"][0]["type"] == "STATIC"
    hcm = resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.router"]
    assert "access_log" not in hcm
    assert "tracing" not in hcm
    assert "admin" not in config


def test_nginx_config_answers_fixed_bodies_on_loopback_only(tmp_path: Path) -> None:
    text = dataplane.nginx_config(tmp_path, [("127.0.91.2", 18080, "v1"), ("127.0.91.3", 18080, "v2")])
    assert 'listen 127.0.91.2:18080; location / { return 200 "v1\\n"; }' in text
    assert "access_log off;" in text
    with pytest.raises(ValueError):
        dataplane.nginx_config(tmp_path, [("10.0.0.1", 80, "x")])


def test_require_loopback() -> None:
    assert require_loopback("127.0.90.4") == "127.0.90.4"
    for address in ("10.1.2.3", "192.168.0.1", "8.8.8.8"):
        with pytest.raises(ValueError):
            require_loopback(address)


# -- mutual TLS ----------------------------------------------------------------------------------------


def test_mtls_configurations_are_measured_between_mtls_floors_and_the_mtls_floor_between_floors() -> None:
    names = ["floor", "meshgen", "mtls_floor", "meshgen_mtls", "meshgen_production"]
    first = dataplane.schedule(names, 0)
    assert first == [
        *["floor", "meshgen", "floor", "mtls_floor", "floor"],
        *["mtls_floor", "meshgen_mtls", "mtls_floor", "meshgen_production", "mtls_floor"],
    ]
    second = dataplane.schedule(names, 1)  # members and blocks rotate
    assert second == [
        *["mtls_floor", "meshgen_production", "mtls_floor", "meshgen_mtls", "mtls_floor"],
        *["floor", "mtls_floor", "floor", "meshgen", "floor"],
    ]
    samples = [_round(float(i + 1), 2.0, 1000.0) for i in range(len(first))]
    dataplane.attach_brackets(first, samples)
    assert samples[3]["floor"]["p50_ms"] == 4.0  # the mTLS floor between plaintext floors 3 and 5
    assert "mtls_floor" not in samples[3]
    assert samples[6]["mtls_floor"]["p50_ms"] == 7.0  # meshgen's mTLS pair between mTLS floors 6 and 8
    assert "floor" not in samples[6]
    assert not any(k in samples[5] for k in ("floor", "mtls_floor"))  # a reference in its own block
    with pytest.raises(ValueError):
        dataplane.schedule(["floor", "meshgen_mtls"], 0)  # its reference is not measured


def _mtls_samples(rounds: int = 3) -> dict[str, list[dict[str, Any]]]:
    """The machine's speed changes from round to round; TLS costs 1.2x, meshgen's mTLS pair 1.05x on top,
    the production defaults 1.3x on top of the mTLS floor."""
    names = ["floor", "meshgen", "mtls_floor", "meshgen_mtls", "meshgen_production"]
    factor = {"floor": 1.0, "meshgen": 1.0, "mtls_floor": 1.2, "meshgen_mtls": 1.26, "meshgen_production": 1.56}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_index, speed in zip(range(rounds), (1.0, 2.0, 1.5, 1.0, 3.0), strict=False):
        sequence = dataplane.schedule(names, round_index)
        measured = [_round(speed * factor[n], 2 * speed * factor[n], 10_000 / (speed * factor[n])) for n in sequence]
        for sample in measured:
            sample["round"] = round_index
        dataplane.attach_brackets(sequence, measured)
        for name, sample in zip(sequence, measured, strict=True):
            samples[name].append(sample)
    return samples


def test_mtls_summary_against_both_floors() -> None:
    overhead = dataplane.summarize(_mtls_samples())
    mtls = overhead["mtls"]
    assert mtls["meshgen_vs_mtls_floor"]["p50"] == 1.05
    assert mtls["meshgen_vs_mtls_floor"]["p99"] == 1.05
    assert mtls["meshgen_vs_mtls_floor"]["rps"] == pytest.approx(0.952, abs=0.001)
    assert mtls["meshgen_vs_mtls_floor"]["p50_ci95"] == [1.05, 1.05]
    assert "p50_rounds" not in mtls["meshgen_vs_mtls_floor"]
    assert mtls["mtls_floor_vs_floor"]["p50"] == 1.2  # the cost of TLS itself
    assert mtls["meshgen_vs_floor"]["p50"] == 1.26  # chained through the mTLS floor, round by round
    assert mtls["production_vs_mtls_floor"]["p50"] == 1.3
    assert mtls["production_vs_floor"]["p50"] == 1.56
    configs = overhead["configs"]
    assert configs["meshgen_mtls"]["vs_mtls_floor"]["p50_rounds"] == [1.05, 1.05, 1.05]
    assert configs["meshgen_mtls"]["vs_floor"]["p50"] == 1.26
    feature = overhead["features"]["mtls"]
    assert feature["p50_vs_meshgen"] == 1.26  # meshgen's pair is at the floor in this sample
    assert overhead["features"]["meshgen_production"]["p50_vs_meshgen"] == 1.56


def test_mtls_target_and_tables() -> None:
    overhead = dataplane.summarize(_mtls_samples())
    overhead["mtls"]["handshakes"] = handshakes.summarize(
        {
            "mtls_floor": [{"connections": 500, "errors": 0, "connections_per_s": 500.0, "p50_ms": 3.0}],
            "meshgen_mtls": [
                {
                    "connections": 450,
                    "errors": 0,
                    "connections_per_s": 450.0,
                    "p50_ms": 3.3,
                    "mtls_floor": {"connections_per_s": 500.0, "p50_ms": 3.0},
                }
            ],
        },
        {"mtls_floor": "the mTLS floor's callee", "meshgen_mtls": "meshgen's callee"},
        "mtls_floor",
        {"client": "python"},
    )
    document = report.build_document(
        mode="quick",
        sections={"dataplane": "ran"},
        generation=None,
        overhead=overhead,
        instructions=instructions.empty(),
        convergence=convergence.empty(),
        provisioning=provisioning.not_run("x"),
        machine={},
        conditions={},
    )
    target = document["targets"]["meshgen_mtls_within_1_10x_of_mtls_floor"]
    assert target["p50_vs_mtls_floor"] == 1.05 and target["met"] is True
    text = report.markdown(document)
    assert "| meshgen mTLS pair vs the mTLS floor | 1.05x (1.05–1.05) | 1.05x (1.05–1.05) | 0.95x (0.95–0.95) |" in text
    assert "| mTLS floor vs plaintext floor (the cost of TLS itself) | 1.20x" in text
    assert "| meshgen's callee | 450 | 0.90x | 3.30 |" in text
    assert "meshgen mTLS pair within 1.10x of the mTLS floor at p50 and p99" in text


def test_handshake_samples_and_ratios() -> None:
    raw = {"connections": 1000, "errors": 2, "seconds": 2.0, "latencies": [0.001] * 98 + [0.005, 0.010]}
    sample = handshakes.sample_of(raw, 0.8)
    assert sample["connections_per_s"] == 500.0
    assert sample["envoy_cpu_us_per_connection"] == pytest.approx(800.0)
    assert sample["p50_ms"] == pytest.approx(1.0)
    assert sample["errors"] == 2
    assert "p50_ms" not in handshakes.sample_of({**raw, "latencies": []}, None)
    names = list(dataplane.HANDSHAKE_REFERENCES)
    assert dataplane.schedule(names, 0, dataplane.HANDSHAKE_REFERENCES) == [
        "mtls_floor",
        "meshgen_mtls",
        "mtls_floor",
        "floor",
        "mtls_floor",
    ]


def test_mtls_floor_config_requires_client_certificates_with_tls_1_3(tmp_path: Path) -> None:
    files = dataplane.TlsFiles(tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem")
    callee = dataplane.floor_envoy_config(("127.0.90.3", 15001), ("127.0.90.2", 18080), downstream_tls=files)
    socket = callee["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]
    assert socket["require_client_certificate"] is True
    common = socket["common_tls_context"]
    assert common["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_3"
    assert common["validation_context"]["trusted_ca"]["filename"] == str(files.ca)
    assert "transport_socket" not in callee["static_resources"]["clusters"][0]
    caller = dataplane.floor_envoy_config(("127.0.90.4", 15001), ("127.0.90.3", 15001), upstream_tls=files)
    upstream = caller["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    assert upstream["@type"].endswith("UpstreamTlsContext")
    assert upstream["common_tls_context"]["tls_certificates"][0]["private_key"]["filename"] == str(files.key)
    assert "transport_socket" not in caller["static_resources"]["listeners"][0]["filter_chains"][0]


def test_meshgen_mtls_pair_uses_the_certificates_meshgen_issued(tmp_path: Path) -> None:
    ports = {"inbound": 15006, "outbound": 15001, "admin": 15000, "caller_app": 18081, "app": 18080}
    catalog = dataplane.pair_catalog(dataplane.MESHGEN_MTLS, "127.0.90.10", "127.0.90.11", ports, None)
    assert catalog["mesh"]["security"] == {"mtls": "strict", "trust_domain": dataplane.TRUST_DOMAIN}
    tls_root = tmp_path / "identities" / "tls"
    dataplane.provision_identities(catalog, tls_root)
    for instance in (dataplane.CALLER_INSTANCE, dataplane.CALLEE_INSTANCE):
        files = dataplane.TlsFiles.of(tls_root, instance)
        assert files.cert.is_file() and files.key.is_file() and files.ca.is_file()
    rendered = dataplane.render_pair(catalog, tmp_path / "config", access_log=False, tls_root=tls_root)
    identity = yaml.safe_load(rendered[f"{dataplane.CALLEE_INSTANCE}/sds-identity.yaml"])
    chain = identity["resources"][0]["tls_certificate"]["certificate_chain"]["filename"]
    assert chain == str(dataplane.TlsFiles.of(tls_root, dataplane.CALLEE_INSTANCE).cert)


# -- convergence ---------------------------------------------------------------------------------------


def _samples(spec: list[tuple[float, str | None]]) -> list[Sample]:
    return [Sample(sent, sent + 0.001, version) for sent, version in spec]


def test_shift_converges_after_the_last_stale_answer() -> None:
    samples = _samples([(0.9, "v1"), (1.001, "v1"), (1.004, "v2"), (1.010, "v1"), (1.020, "v2"), (1.5, "v2")])
    result = analyze_shift(samples, shifted_at=1.0, window_end=2.0, new="v2")
    assert result.seconds == pytest.approx(0.020)
    assert result.failed == 0
    assert result.requests == 5
    assert result.old_after_shift == 2


def test_shift_without_stale_answers_and_with_failures() -> None:
    samples = _samples([(0.5, "v1"), (0.9995, None), (1.002, "v2"), (1.1, None), (1.2, "v2"), (2.5, None)])
    result = analyze_shift(samples, shifted_at=1.0, window_end=2.0, new="v2")
    assert result.seconds == pytest.approx(0.002)
    # in flight at the swap, and sent within the window; not the one after the window
    assert result.failed == 2


def test_an_answer_that_comes_after_the_next_swap_is_not_counted_against_this_one() -> None:
    # Sent just before the next swap (at 2.0) but answered after it, by the next shift's route.
    samples = [*_samples([(1.1, "v2"), (1.5, "v2")]), Sample(1.9999, 2.003, "v1")]
    result = analyze_shift(samples, 1.0, 2.0, "v2")
    assert result.seconds == pytest.approx(0.1)
    assert result.old_after_shift == 0


def test_shift_that_never_converges() -> None:
    samples = _samples([(1.1, "v2"), (1.2, "v1")])
    assert analyze_shift(samples, 1.0, 2.0, "v2").seconds is None
    assert analyze_shift([], 1.0, 2.0, "v2").seconds is None


def test_convergence_summary() -> None:
    results = [
        convergence.ShiftResult("v2", 0.010, 0, 1000, 3),
        convergence.ShiftResult("v1", 0.030, 0, 1000, 5),
        convergence.ShiftResult("v2", 0.020, 1, 1000, 0),
    ]
    config = convergence.ConvergenceConfig.for_run(quick=True)
    summary = convergence.summarize(results, ["caller/rds-outbound.yaml"], 1500.0, config)
    assert summary["seconds"] == {"median": 0.02, "max": 0.03}
    assert summary["failed_requests"] == 1
    assert summary["target"]["met"] is False  # one failed request
    missing = convergence.summarize([*results[:2], convergence.ShiftResult("v2", None, 0, 10, 10)], [], 1.0, config)
    assert missing["all_converged"] is False
    assert missing["seconds"]["max"] is None


# -- local mesh ----------------------------------------------------------------------------------------


def test_local_mesh_catalog_has_50_instances_on_the_bench_block(tmp_path: Path) -> None:
    config = localmesh.LocalMeshConfig.for_run(quick=False)
    assert config.instances == 50
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(localmesh.mesh_catalog(config.services, {"v1": 100})), encoding="utf-8")
    mesh = load_mesh(path)
    assert len(mesh.instances) == 50
    assert mesh.security.mtls == "strict"
    for host in mesh.hosts:
        assert host.address.startswith("127.0.91.") and host.local_address.startswith("127.0.91.")
    first = mesh.service("m00")
    assert [r.weights for r in first.routes] == [(("v1", 100),)]
    assert "m00" in [d.target for d in mesh.service("m24").dependencies]
    assert localmesh.caller_of_first(config.services) == {h.name: h for h in mesh.hosts}["m24-v1"].local_address
    with pytest.raises(ValueError):
        localmesh.host_address(118)


def test_local_mesh_reports_why_it_cannot_start() -> None:
    assert localmesh.inotify_shortage(6, 128, 20) is None
    reason = localmesh.inotify_shortage(50, 128, 20)
    assert reason is not None and "fs.inotify.max_user_instances" in reason and "400" in reason
    assert localmesh.inotify_shortage(50, None, 0) is None
    assert localmesh.version_of('{"service": "m00", "version": "v2"}') == "v2"
    assert localmesh.version_of("not json") is None
    change = localmesh.summarize_change(1.5, 0.4, 0, 1000, 900.0)
    assert change["met"] is True
    assert localmesh.summarize_change(1.5, None, 0, 1000, 900.0)["met"] is False
    assert localmesh.summarize_change(1.5, 0.4, 1, 1000, 900.0)["met"] is False


# -- provisioning ----------------------------------------------------------------------------------------


def test_provisioning_is_not_run_without_the_flag(tmp_path: Path) -> None:
    result = provisioning.run(False, tmp_path)
    assert result["status"] == "not run"
    assert "--provisioning" in result["reason"]
    assert "ansible/site.yml does not exist yet" in result["reason"]
    assert provisioning.run(True, tmp_path)["status"] == "not run"  # prerequisites missing


def test_changed_count_sums_the_play_recap() -> None:
    recap = (
        "PLAY RECAP ****\n"
        "mesh-1 : ok=20 changed=3 unreachable=0 failed=0\n"
        "mesh-2 : ok=20 changed=0 unreachable=0 failed=0\n"
    )
    assert provisioning.changed_count(recap) == 3
    assert provisioning.changed_count("no recap") is None


# -- results -------------------------------------------------------------------------------------------


def _document(mode: str = "quick") -> dict[str, Any]:
    overhead = dataplane.summarize(
        {
            "direct": [_round(0.2, 1.0, 40_000.0)],
            "floor": [_round(1.0, 2.0, 10_000.0)],
            "meshgen": [_round(1.5, 3.0, 8_000.0)],
            "access_log": [_round(1.6, 3.3, 7_500.0)],
        }
    )
    config = convergence.ConvergenceConfig.for_run(quick=True)
    conv = convergence.summarize([convergence.ShiftResult("v2", 0.01, 0, 100, 1)], ["x/rds-outbound.yaml"], 1.0, config)
    gen = generation.summarize(
        generation.GenerationConfig(sizes=(10,), rounds=1),
        {(t, 10): [_cli_sample(0.5)] for t in generation.TARGETS},
        {(t, 10): [_in_memory(0.3, 24_000.0)] for t in generation.TARGETS},
        {10: [{"seconds": 0.3, "peak_rss_mib": 40.0}]},
        {10: 38_000.0},
    )
    return report.build_document(
        mode=mode,
        sections={"generation": "ran", "dataplane": "ran", "convergence": "ran", "provisioning": "not run"},
        generation=gen,
        overhead=overhead,
        instructions=instructions.summarize(
            {
                "floor": [{"per_request": 300_000.0, "requests": 500, "errors": 0}],
                "meshgen": [
                    {"per_request": 303_000.0, "requests": 500, "errors": 0},
                    {"per_request": 306_000.0, "requests": 500, "errors": 0},
                    {"per_request": 309_000.0, "requests": 500, "errors": 0},
                ],
            },
            {"floor": "the floor", "meshgen": "meshgen pair, optional features off"},
        ),
        convergence=conv,
        provisioning=provisioning.not_run("runs only with --provisioning"),
        machine={"cores": 2, "cpu_model": "test", "date": "2026-01-01T00:00:00+00:00"},
        conditions={"versions": {"envoy": "1.40.0", "wrk": "wrk 4.1.0", "nginx": "nginx 1.22.1"}},
    )


def test_json_writer_has_the_required_keys(tmp_path: Path) -> None:
    json_path, md_path = report.write_results(_document(), tmp_path)
    document = json.loads(json_path.read_text())
    for key in report.REQUIRED_KEYS:
        assert key in document
    for key in report.OVERHEAD_KEYS:
        assert key in document["overhead"]
    for key in report.CONVERGENCE_KEYS:
        assert key in document["convergence"]
    assert document["generate_seconds"]["10"]["envoy"] == 0.5
    assert document["sidecar_config_bytes"] == {"10": 24_000.0}
    assert document["unscoped_sidecar_config_bytes"] == {"10": 38_000.0}
    assert document["conditions"]["mode"] == "quick"
    assert {"cores", "cpu_model", "date"} <= set(document["machine"])
    assert not list(tmp_path.glob("*.tmp"))
    text = md_path.read_text()
    assert "QUICK" in text
    assert "| 10 | 0.50 | 1.0x | 0.50 | 1.0x | 0.50 | 1.0x | 0.30 |" in text
    assert "meshgen pair, optional features off" in text
    assert "| meshgen pair, optional features off | 306,000 | 303,000, 306,000, 309,000 | 1.020x |" in text
    assert document["instructions"]["meshgen_vs_floor"] == 1.02
    target = document["targets"]["meshgen_within_1_10x_of_floor"]
    assert target["met"] is False and target["instructions_vs_floor"] == 1.02


def test_quick_and_partial_runs_write_their_own_result_files(tmp_path: Path) -> None:
    assert report.results_name("full", partial=False) == "latest"
    assert report.results_name("quick", partial=False) == "quick"
    assert report.results_name("full", partial=True) == "partial"
    report.write_results(_document("quick"), tmp_path, report.results_name("quick", partial=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick.json", "quick.md"]


def test_required_keys_are_there_when_no_section_ran() -> None:
    document = report.build_document(
        mode="full",
        sections=dict.fromkeys(
            ("generation", "dataplane", "instructions", "convergence", "provisioning"), "not run (--only)"
        ),
        generation=None,
        overhead=dataplane.empty(),
        instructions=instructions.empty(),
        convergence=convergence.empty(),
        provisioning=provisioning.not_run("not selected"),
        machine={},
        conditions={},
    )
    for key in report.REQUIRED_KEYS:
        assert key in document
    for key in report.OVERHEAD_KEYS:
        assert key in document["overhead"]
    assert "Not run" in report.markdown(document)


def test_a_quick_run_never_replaces_published_full_results() -> None:
    quick, full = _document("quick"), _document("full")
    published = report.performance_doc(full)
    assert published.startswith("<!-- bench-mode: full -->")
    assert report.should_publish(quick, published)[0] is False
    assert report.should_publish(quick, None)[0] is True
    assert report.should_publish(quick, report.performance_doc(quick))[0] is True
    assert report.should_publish(full, published)[0] is True
    assert "quick smoke run" in report.performance_doc(quick)


def test_callgrind_dump_totals() -> None:
    dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 211\ntotals: 212\n"
    assert instructions.dump_totals(dump) == 212
    assert instructions.dump_totals("events: Ir\nsummary: 99\n") == 99
    with pytest.raises(ValueError):
        instructions.dump_totals("events: Ir\n")


def test_latest_callgrind_dump_is_the_highest_numbered(tmp_path: Path) -> None:
    for name in ("callgrind.42", "callgrind.42.1", "callgrind.42.10", "callgrind.42.2", "callgrind.7.11"):
        (tmp_path / name).write_text("")
    assert instructions.latest_dump(tmp_path, 42).name == "callgrind.42.10"
    with pytest.raises(RuntimeError):
        instructions.latest_dump(tmp_path, 5)


def test_instruction_counting_waits_for_steady_requests() -> None:
    assert not instructions.steady(None, 100)  # one second of warm-up says nothing yet
    assert not instructions.steady(0, 0)  # handshakes under valgrind, no request yet
    assert not instructions.steady(0, 60)  # the first second with requests
    assert instructions.steady(60, 55)
    assert instructions.dataplane.MTLS_FLOOR in instructions.InstructionsConfig.for_run(quick=True).variants
    # A measurement's request budget fills about half its time at the rate seen before it.
    assert instructions.budget_for(rate=100.0, seconds=4, connections=4) == 50
    assert instructions.budget_for(rate=0.5, seconds=2, connections=4) == 2  # never less than 2 each
    assert "wrk.thread:stop()" in instructions.BUDGET_SCRIPT


def test_cli_arguments() -> None:
    args = parse_args(["--quick", "--only", "dataplane", "--only", "localmesh", "--sizes", "10,50"])
    assert args.quick and args.only == ["dataplane", "localmesh"] and args.sizes == (10, 50)
    with pytest.raises(SystemExit):
        parse_args(["--only", "everything"])


def test_skipped_measurements_are_reported_not_guessed() -> None:
    config = generation.GenerationConfig(sizes=(10, 1_000), rounds=1, budget_s=15.0)
    runs = {(t, s): [_cli_sample(1.0)] for t in generation.TARGETS for s in (10, 1_000) if (t, s) != ("aws", 1_000)}
    result = generation.summarize(config, runs, {}, {}, {}, skipped={("aws", 1_000): "skipped in the quick run"})
    assert result["generate_seconds"]["1000"]["aws"] is None
    assert result["generate_details"]["1000"]["aws"] == {"skipped": "skipped in the quick run"}
    assert result["generation_targets"]["all_targets_under_3s_at_1000"]["met"] is None
    assert generation.GenerationConfig.for_run(quick=True).budget_s == generation.QUICK_BUDGET_SECONDS
    assert generation.GenerationConfig.for_run(quick=False).budget_s is None
