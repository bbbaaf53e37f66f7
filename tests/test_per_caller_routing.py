"""Routes for some callers only, and dependencies of some versions only (Istio's bookinfo: reviews
v1 calls nothing, v2 and v3 call ratings), rendered into exactly the sidecars they concern and
proven on a live mesh. Hosts on 127.0.67.x."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from meshgen.deploy.local.runner import down, up
from meshgen.errors import CatalogError
from meshgen.model import load_mesh
from meshgen.render.envoy import Layout, render_envoy
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.http import send

BOOKINFO = """
mesh: {name: bookinfo}
hosts:
  page-1: {address: 127.0.67.1}
  tester-1: {address: 127.0.67.2}
  reviews-1: {address: 127.0.67.3}
  reviews-2: {address: 127.0.67.4}
  reviews-3: {address: 127.0.67.5}
  ratings-1: {address: 127.0.67.6}
services:
  productpage:
    port: 9080
    edge: true
    versions: {v1: {instances: [page-1]}}
    dependencies: [reviews]
    authorization: [{outside: true}]
  tester:
    port: 9080
    edge: true
    versions: {v1: {instances: [tester-1]}}
    dependencies: [reviews]
    authorization: [{outside: true}]
  reviews:
    port: 9080
    versions:
      v1: {instances: [reviews-1]}
      v2: {instances: [reviews-2], dependencies: [ratings]}
      v3: {instances: [reviews-3], dependencies: [ratings]}
    routes:
      - {name: jason, match: {headers: {end-user: jason}}, to: {v2: 100}}
      - {name: testers, match: {from: [tester]}, to: {v3: 100}}
      - {name: everyone, to: {v1: 100}}
  ratings:
    port: 9080
    versions: {v1: {instances: [ratings-1]}}
"""


def catalog(tmp_path: Path, text: str = BOOKINFO) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_each_sidecar_carries_only_what_its_version_calls_and_the_routes_meant_for_it(tmp_path: Path) -> None:
    mesh = load_mesh(catalog(tmp_path))
    files = render_envoy(mesh, Layout(PurePosixPath("/x")))
    assert "rds-outbound.yaml" not in {p.split("/")[1] for p in files if p.startswith("reviews.v1.")}
    assert '"name": "ratings.v1"' not in files["reviews.v1.reviews-1/cds.yaml"]
    assert '"name": "ratings.v1"' in files["reviews.v2.reviews-2/cds.yaml"]
    assert '"name": "reviews/testers"' not in files["productpage.v1.page-1/rds-outbound.yaml"]
    assert '"name": "reviews/testers"' in files["tester.v1.tester-1/rds-outbound.yaml"]
    assert [s.name for s in mesh.callers_of("ratings")] == ["reviews"]  # so ratings admits reviews


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            ("match: {from: [tester]}", "match: {from: [ratings]}"),
            "services.reviews.routes[1].match.from",
            "'ratings' does not call reviews",
        ),
        (
            (
                "v3: {instances: [reviews-3], dependencies: [ratings]}",
                "v3: {instances: [reviews-3], dependencies: [{service: ratings, rate_limit: {requests: 1, per: 1s}}]}",
            ),
            "services.reviews.versions.v3.dependencies[0]",
            "'ratings' is declared differently by version v2",
        ),
        (
            (
                "    dependencies: [reviews]\n    authorization: [{outside: true}]\n  reviews:",
                "    dependencies: [reviews]\n    authorization: [{outside: true}]\n  reviews:\n    dependencies: [ratings]",
            ),
            "services.reviews.versions.v2.dependencies[0].service",
            "duplicate dependency 'ratings'",
        ),
    ],
    ids=["from-a-non-caller", "versions-disagree", "version-repeats-the-service"],
)
def test_mistakes_are_located(tmp_path: Path, edit: tuple[str, str], path: str, message: str) -> None:
    old, new = edit
    assert BOOKINFO.count(old) == 1, old
    with pytest.raises(CatalogError) as caught:
        load_mesh(catalog(tmp_path, BOOKINFO.replace(old, new)))
    assert any(p.path == path and message in p.message for p in caught.value.problems), caught.value


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("bookinfo")
    path = catalog(directory)
    try:
        up(path, directory / "state")
        yield directory
    finally:
        down(directory / "state")


@pytest.mark.envoy
def test_routes_per_caller_and_calls_per_version_on_a_live_mesh(live: Path) -> None:
    def version(caller_local: str, **headers: str) -> str:
        reply = send(caller_local, 15001, "/", headers={"Host": "reviews", **headers})
        assert reply.status == 200, reply
        return str(reply.body["version"])

    assert version("127.0.67.129") == "v1"  # productpage: everyone's route
    assert version("127.0.67.129", **{"end-user": "jason"}) == "v2"
    assert version("127.0.67.130") == "v3"  # tester: its own route
    # v2 calls ratings through its sidecar; v1 has no way to.
    chained = send(
        "127.0.67.129", 15001, "/", headers={"Host": "reviews", "end-user": "jason", "x-demo-call": "ratings"}
    )
    assert chained.status == 200 and chained.body["calls"][0]["status"] == 200, chained
    assert send("127.0.67.131", 15001, "/", headers={"Host": "ratings"}).status == 0  # reviews-1: no outbound listener
    mesh = load_mesh(live / "catalog.yaml")
    results, _ = run_checks(mesh, ("security", "routing"), authority=find_authority(mesh, None, live / "state"))
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert {r.name for r in results} >= {"reviews/testers", "reviews/jason", "reviews/everyone", "reviews -> ratings"}
