"""Incremental output: only changed files are rewritten, unchanged ones keep their inode and mtime,
files meshgen no longer renders are removed, hand edits and stale records are handled safely,
and a run with unchanged inputs over an untouched tree stops early (issue 16).

The property at the end: generating into a tree that holds an earlier catalog's output gives
exactly the tree a fresh generate gives, for any change of catalog (seeded, bounded examples)."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshgen.cli import main
from meshgen.model import load_mesh
from meshgen.render.envoy import Layout
from meshgen.render.envoy.sidecar import render_envoy, render_envoy_sidecars
from meshgen.render.output import (
    MANIFEST,
    _record_path,
    file_statuses,
    read_manifest,
    record_run,
    unchanged_since,
    write_streamed,
    write_tree,
)
from tests.support import EXAMPLES
from tests.test_properties import catalogs

SHOP = next(p for p in EXAMPLES if p.parent.name == "shop")
CONFIG_ROOT = "/etc/meshgen/envoy"  # fixed, so trees in different directories compare byte for byte


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


def generate(catalog: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(main, ["generate", str(catalog), "-o", str(out), "--config-root", CONFIG_ROOT, *extra])
    assert result.exit_code == 0, result.output
    return result.output


# -- write_tree --------------------------------------------------------------------------------


def test_a_changed_file_is_replaced_and_an_unchanged_one_is_not_touched(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/one.yaml": "1\n", "a/two.yaml": "2\n", "b/three.yaml": "3\n"})
    before = {name: identity(tmp_path / name) for name in ("a/one.yaml", "a/two.yaml", "b/three.yaml")}
    changes = write_tree(tmp_path, {"a/one.yaml": "1\n", "a/two.yaml": "two\n", "b/three.yaml": "3\n"})
    assert (changes.added, changes.changed, changes.removed) == ([], ["a/two.yaml"], [])
    assert sorted(changes.unchanged) == ["a/one.yaml", "b/three.yaml"]
    assert identity(tmp_path / "a/one.yaml") == before["a/one.yaml"]
    assert identity(tmp_path / "b/three.yaml") == before["b/three.yaml"]
    assert (tmp_path / "a/two.yaml").stat().st_ino != before["a/two.yaml"][0]  # replaced by a rename
    assert (tmp_path / "a/two.yaml").read_text() == "two\n"
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_a_file_no_longer_rendered_is_removed_and_a_foreign_one_kept(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/one.yaml": "1\n", "gone/two.yaml": "2\n"})
    (tmp_path / "a" / "mine.txt").write_text("not meshgen's")
    changes = write_tree(tmp_path, {"a/one.yaml": "1\n"})
    assert changes.removed == ["gone/two.yaml"]
    assert not (tmp_path / "gone").exists()  # its directory went with it, once empty
    assert (tmp_path / "a" / "mine.txt").read_text() == "not meshgen's"
    assert read_manifest(tmp_path) == ["a/one.yaml"]


def test_a_hand_edited_file_is_put_back(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/one.yaml": "1\n"})
    (tmp_path / "a/one.yaml").write_text("edited by hand\n")
    changes = write_tree(tmp_path, {"a/one.yaml": "1\n"})
    assert changes.changed == ["a/one.yaml"]
    assert (tmp_path / "a/one.yaml").read_text() == "1\n"


def test_a_damaged_manifest_removes_nothing_and_is_rewritten(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/one.yaml": "1\n", "a/two.yaml": "2\n"})
    (tmp_path / MANIFEST).write_text("{not json")
    changes = write_tree(tmp_path, {"a/one.yaml": "1\n"})
    assert changes.removed == []  # without a manifest meshgen cannot know two.yaml is its own
    assert (tmp_path / "a/two.yaml").exists()
    assert read_manifest(tmp_path) == ["a/one.yaml"]


def test_a_manifest_naming_files_that_are_gone_is_harmless(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/one.yaml": "1\n", "a/two.yaml": "2\n"})
    (tmp_path / "a/two.yaml").unlink()
    changes = write_tree(tmp_path, {"a/one.yaml": "1\n"})
    assert changes.removed == ["a/two.yaml"]
    assert tree(tmp_path).keys() == {"a/one.yaml", MANIFEST}


def test_files_are_written_with_mode_0644_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        write_tree(tmp_path, {"new/one.yaml": "1\n"})  # a new directory: written in place
        write_tree(tmp_path, {"new/one.yaml": "2\n"})  # replaced through a temporary file
        write_tree(tmp_path, {"new/one.yaml": "2\n", "new/two.yaml": "3\n"})  # added to an existing one
    finally:
        os.umask(previous)
    assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "new").iterdir()} == {
        "one.yaml": 0o644,
        "two.yaml": 0o644,
    }


# -- write_streamed ----------------------------------------------------------------------------


def test_streamed_in_two_processes_writes_what_write_tree_writes(tmp_path: Path) -> None:
    mesh = load_mesh(SHOP)
    layout = Layout(PurePosixPath(CONFIG_ROOT))
    files = render_envoy(mesh, layout)
    write_tree(tmp_path / "whole", files)
    streamed = write_streamed(
        tmp_path / "streamed",
        lambda share, of: render_envoy_sidecars(mesh, layout, share, of),
        processes=2,
        statuses=True,
    )
    assert tree(tmp_path / "streamed") == tree(tmp_path / "whole")
    assert sorted(streamed.files) == sorted(files)
    assert sorted(streamed.changes.added) == sorted(files)
    assert streamed.statuses is not None and streamed.statuses.keys() == {*files, MANIFEST}
    # Again, one sidecar changed by hand: only that file is rewritten, by whichever process has it.
    victim = sorted(files)[len(files) // 2]
    (tmp_path / "streamed" / victim).write_text("edited\n")
    others = {name: identity(tmp_path / "streamed" / name) for name in files if name != victim}
    again = write_streamed(
        tmp_path / "streamed", lambda share, of: render_envoy_sidecars(mesh, layout, share, of), processes=2
    )
    assert again.changes.changed == [victim] and not again.changes.added and not again.changes.removed
    assert {name: identity(tmp_path / "streamed" / name) for name in others} == others
    assert tree(tmp_path / "streamed") == tree(tmp_path / "whole")


def test_a_failing_share_fails_the_run(tmp_path: Path) -> None:
    def shares(share: int, of: int) -> Any:
        if share == 1:
            raise ValueError("renderer broke")
        return iter([{"a/one.yaml": "1\n"}])

    try:
        write_streamed(tmp_path, shares, processes=2)
    except RuntimeError as exc:
        assert "ValueError: renderer broke" in str(exc)
    else:
        raise AssertionError("the child's failure was not reported")
    assert not (tmp_path / MANIFEST).exists()  # no manifest claims a half-written tree


# -- the record of a run and the early stop -----------------------------------------------------


def recorded(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    files = {"a/one.yaml": "1\n", "a/two.yaml": "2\n"}
    write_tree(out, files)
    record_run(out, file_statuses(out, files), "inputs-1", ["a warning"])
    return out


def test_an_untouched_tree_with_the_same_inputs_is_unchanged(tmp_path: Path) -> None:
    out = recorded(tmp_path)
    assert unchanged_since(out, "inputs-1") == (2, ["a warning"])
    assert unchanged_since(out, "inputs-2") is None  # other inputs


def test_a_hand_edit_of_the_same_size_and_mtime_is_seen(tmp_path: Path) -> None:
    out = recorded(tmp_path)
    target = out / "a/one.yaml"
    info = target.stat()
    target.write_text("9\n")  # same size
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))  # mtime put back: ctime cannot be
    assert unchanged_since(out, "inputs-1") is None


def test_a_removed_or_added_file_or_an_edited_manifest_is_seen(tmp_path: Path) -> None:
    out = recorded(tmp_path)
    (out / "a/two.yaml").unlink()
    assert unchanged_since(out, "inputs-1") is None
    out = recorded(tmp_path / "second")
    (out / MANIFEST).write_text('{"files": ["a/one.yaml"]}\n')
    assert unchanged_since(out, "inputs-1") is None


def test_a_recently_written_file_is_checked_by_content(tmp_path: Path) -> None:
    out = recorded(tmp_path)  # just written: racy, so its digest was recorded
    record = orjson.loads(_record_path(out).read_bytes())
    assert len(record["status"]["a/one.yaml"]) == 5
    # An edit within the same tick of the filesystem's clock: status alike, content not. Forged
    # here by recording the edited file's status; the digest still tells.
    target = out / "a/one.yaml"
    target.write_text("9\n")
    info = target.stat()
    record["status"]["a/one.yaml"][:4] = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
    _record_path(out).write_bytes(orjson.dumps(record))
    assert unchanged_since(out, "inputs-1") is None


def test_a_damaged_record_means_render_again(tmp_path: Path) -> None:
    out = recorded(tmp_path)
    _record_path(out).write_text("[1, 2")
    assert unchanged_since(out, "inputs-1") is None


def test_generate_stops_early_only_when_nothing_can_have_changed(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_bytes(SHOP.read_bytes())
    out = tmp_path / "out"
    generate(catalog, out)
    first = tree(out)
    assert "unchanged; 0 files added, 0 changed, 0 removed" in generate(catalog, out)
    # A hand edit: rendered again, the file put back.
    edited = next(p for p in sorted(out.rglob("rds-*.yaml")))
    edited.write_text("# edited\n")
    assert "0 files added, 1 changed, 0 removed" in generate(catalog, out)
    assert tree(out) == first
    # Other options: rendered again (the tls root is in every SDS file).
    assert "unchanged;" not in generate(catalog, out, "--tls-root", "/srv/tls")
    assert tree(out) != first
    assert "unchanged;" not in generate(catalog, out)
    assert tree(out) == first
    # A changed catalog: rendered again.
    catalog.write_text(catalog.read_text() + "\n# a comment changes the bytes, not the mesh\n")
    assert "0 files added, 0 changed, 0 removed" in generate(catalog, out)
    assert "unchanged;" not in generate(tmp_path / "catalog.yaml", tmp_path / "elsewhere")


# -- the property ------------------------------------------------------------------------------


@st.composite
def changes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A catalog and the catalog it becomes: any other catalog, or the same with one edit."""
    before = draw(catalogs())
    if draw(st.sampled_from([True, False, False])):
        return before, draw(catalogs())
    after = copy.deepcopy(before)
    service = draw(st.sampled_from(sorted(after["services"])))
    spec = after["services"][service]
    # Mostly edits of one service (rendered incrementally), some of the whole mesh (rendered anew).
    edit = draw(st.sampled_from(["timeout", "drop-dependency", "drop-service", "weights"] * 3 + ["mtls", "access-log"]))
    if edit == "timeout":
        spec["timeout"] = draw(st.sampled_from(["150ms", "3s"]))
    elif edit == "mtls":
        after["mesh"]["security"]["mtls"] = draw(st.sampled_from(["strict", "permissive", "off"]))
    elif edit == "drop-dependency" and spec["dependencies"]:
        spec["dependencies"].pop()
    elif edit == "drop-service" and len(after["services"]) > 1:
        del after["services"][service]
        for other in after["services"].values():
            other["dependencies"] = [
                d for d in other["dependencies"] if (d if isinstance(d, str) else d["service"]) != service
            ]
            for rule in other.get("authorization", []) or []:
                if service in rule.get("from", []):
                    rule["from"] = [n for n in rule["from"] if n != service] or sorted(after["services"])[:1]
    elif edit == "weights" and spec.get("routes"):
        route = spec["routes"][0]
        versions = sorted(spec["versions"])
        route["to"] = {versions[-1]: 1}
    else:
        after["mesh"]["access_log"]["format"] = "text" if after["mesh"]["access_log"]["format"] == "json" else "json"
    return before, after


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(changes())
def test_incremental_generate_gives_exactly_the_fresh_tree(change: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, after = change
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        old, new = workdir / "before.yaml", workdir / "after.yaml"
        old.write_text(yaml.safe_dump(before, sort_keys=False))
        new.write_text(yaml.safe_dump(after, sort_keys=False))
        if CliRunner().invoke(main, ["validate", str(new)]).exit_code != 0:
            return  # an edit that made the catalog invalid (a rule naming a dropped service): not a change
        out, fresh = workdir / "out", workdir / "fresh"
        generate(old, out)
        earlier = tree(out)
        kept = {name: identity(out / name) for name in read_manifest(out)}
        generate(new, out)
        generate(new, fresh)
        now = tree(out)
        assert now == tree(fresh)
        # Only what changed was written: a file whose content is the same keeps its inode and mtime.
        for name, was in kept.items():
            if name in now and now[name] == earlier[name]:
                assert identity(out / name) == was, name
            elif name in now:
                assert identity(out / name) != was, name
        # Again with nothing changed: the early stop, and the same tree.
        assert "unchanged;" in generate(new, out)
        assert tree(out) == tree(fresh)


def test_a_weight_change_renders_only_the_sidecars_it_can_affect(tmp_path: Path, monkeypatch: Any) -> None:
    """users' 90/10 split becomes 80/20: users' sidecars, their callers' and callees' (none) and
    the gateway's are rendered; only the callers' route files change; the tree is the fresh one."""
    from meshgen.render.envoy import sidecar

    catalog = tmp_path / "catalog.yaml"
    catalog.write_bytes(SHOP.read_bytes())
    out = tmp_path / "out"
    generate(catalog, out)
    before = {name: identity(out / name) for name in read_manifest(out)}
    catalog.write_text(catalog.read_text().replace("to: {v1: 90, v2: 10}", "to: {v1: 80, v2: 20}"))
    rendered: list[str] = []
    real = sidecar.render_sidecar

    def counted(mesh: Any, instance: Any, paths: Any) -> dict[str, str]:
        rendered.append(instance.id)
        return real(mesh, instance, paths)

    monkeypatch.setattr(sidecar, "render_sidecar", counted)
    output = generate(catalog, out)
    mesh = load_mesh(catalog)
    callers = {s.name for s in mesh.callers_of("users")}
    expected = {i.id for s in mesh.services if s.name == "users" or s.name in callers for i in s.instances} | {
        i.id for g in mesh.gateways for i in g.instances
    }
    assert set(rendered) == expected
    assert len(rendered) < len(mesh.proxies)
    changed = {name for name in read_manifest(out) if identity(out / name) != before.get(name)}
    assert changed and all(name.rsplit("/", 1)[-1].startswith("rds-") for name in changed)
    assert {name.partition("/")[0] for name in changed} <= {
        i.id for s in mesh.services if s.name in callers for i in s.instances
    }
    assert f"{len(changed)} changed" in output
    monkeypatch.undo()
    generate(catalog, tmp_path / "fresh")
    assert tree(out) == tree(tmp_path / "fresh")


def test_an_edited_file_of_an_unaffected_sidecar_means_render_everything(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_bytes(SHOP.read_bytes())
    out = tmp_path / "out"
    generate(catalog, out)
    # A sidecar the weight change below cannot affect, edited by hand: put back all the same.
    victim = next(p for p in sorted(out.glob("inventory*/cds.yaml")))
    victim.write_text("edited\n")
    catalog.write_text(catalog.read_text().replace("to: {v1: 90, v2: 10}", "to: {v1: 80, v2: 20}"))
    generate(catalog, out)
    generate(catalog, tmp_path / "fresh")
    assert tree(out) == tree(tmp_path / "fresh")
