"""docs/metrics.md is the catalogue, and every canonical name a collector emits is in it."""

from __future__ import annotations

import json
from pathlib import Path

from collectors.coral.parse import read_apex
from collectors.greengrass.parse import (
    parse_core_device,
    parse_effective_deployments,
    parse_emitter,
    parse_fleet_status,
    parse_installed_components,
)
from collectors.iotedge.exposition import tokenize
from collectors.iotedge.parse import parse_exposition
from collectors.jetson.sysfs import read_jetson
from collectors.jetson.tegrastats import parse_lines
from fleetwatch.plugins import Sample
from fleetwatch.plugins.catalogue import BY_NAME, CATALOGUE, SOURCES, render_markdown
from tests.collectors.conftest import FIXTURES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def emitted() -> dict[str, list[Sample]]:
    """Canonical samples of every collector on every fixture, by source."""
    edge = (FIXTURES / "iotedge_edgeagent_metrics.txt").read_text() + (
        FIXTURES / "iotedge_edgehub_metrics.txt"
    ).read_text()
    exposed = {s.name for s in tokenize(edge).samples()}
    tegrastats = [
        line
        for name in ("tegrastats_jp4.txt", "tegrastats_jp5.txt", "tegrastats_jp6.txt")
        for line in (FIXTURES / name).read_text().splitlines()
    ]
    core = load("greengrass_get_core_device.json")
    return {
        "iotedge": [s for s in parse_exposition(edge).samples if s.name not in exposed],
        "greengrass": parse_fleet_status(load("greengrass_fleet_status.json")).samples
        + parse_emitter(load("greengrass_nucleus_emitter.json"), device="d").samples,
        "greengrass_cloud": parse_core_device(core).samples
        + parse_installed_components(
            load("greengrass_list_installed_components.json"), device="d"
        ).samples
        + parse_effective_deployments(
            load("greengrass_list_effective_deployments.json"), device="d"
        ).samples,
        "coral": read_apex(FIXTURES / "coral_sysfs", device="d").samples,
        "jetson": read_jetson(FIXTURES / "jetson_sysfs", device="d").samples,
        "tegrastats": parse_lines(tegrastats, device="d").samples,
    }


def test_docs_are_generated_from_the_catalogue() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/metrics.md is stale: python -m fleetwatch.plugins.catalogue > docs/metrics.md"
    )


def test_every_emitted_canonical_name_is_catalogued_with_its_labels_and_source() -> None:
    by_source = emitted()
    assert set(by_source) == set(SOURCES)
    for source, samples in by_source.items():
        assert samples, source
        for sample in samples:
            spec = BY_NAME.get(sample.name)
            assert spec is not None, f"{source} emits {sample.name}, not in the catalogue"
            extra = set(sample.labels) - {"device", "site"} - set(spec.labels)
            assert not extra, f"{source}: {sample.name} carries uncatalogued labels {extra}"
            assert source in spec.sources, f"{sample.name}: source {source} not listed"


def test_every_catalogued_source_claim_is_true() -> None:
    """The other way round: a source listed for a name emits it on the fixtures, except for
    what the fixtures happen not to hold (tested on purpose-built input elsewhere)."""
    only_live = {
        ("jetson", "thermal_trip_point_celsius"),  # the Jetson fixture zones have no trip points
        ("jetson", "thermal_headroom_celsius"),
        ("greengrass", "deployment_status"),  # the FSS fixture is a CADENCE message
    }
    names = {source: {s.name for s in samples} for source, samples in emitted().items()}
    for spec in CATALOGUE:
        for source in spec.sources:
            assert spec.name in names[source] or (source, spec.name) in only_live, (
                f"{spec.name} claims {source}"
            )


def test_catalogue_entries_are_unique_and_documented() -> None:
    assert len(BY_NAME) == len(CATALOGUE)
    for spec in CATALOGUE:
        assert spec.help and spec.unit and spec.sources
        assert {source for source, _ in spec.native} <= set(spec.sources)
