"""Property-based tests: random and mutated input never crashes a parser, and a bad line, field
or file never loses the good ones beside it."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.coral.parse import read_apex
from collectors.greengrass.fss import FleetStatusAssembler
from collectors.greengrass.parse import (
    parse_effective_deployments,
    parse_emitter,
    parse_fleet_status,
    parse_installed_components,
)
from collectors.iotedge.exposition import tokenize
from collectors.iotedge.parse import parse_exposition
from collectors.jetson.sysfs import read_jetson
from collectors.jetson.tegrastats import parse_line
from fleetwatch.plugins import CollectResult
from tests.collectors.conftest import FIXTURES

AGENT_LINES = (FIXTURES / "iotedge_edgeagent_metrics.txt").read_text().splitlines()
HUB_LINES = (FIXTURES / "iotedge_edgehub_metrics.txt").read_text().splitlines()
TEGRA_LINES = [
    line
    for name in ("tegrastats_jp4.txt", "tegrastats_jp5.txt", "tegrastats_jp6.txt")
    for line in (FIXTURES / name).read_text().splitlines()
]
FSS = json.loads((FIXTURES / "greengrass_fleet_status.json").read_text())
EMITTER = json.loads((FIXTURES / "greengrass_nucleus_emitter.json").read_text())

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Each sysfs example copies a fixture tree: fewer examples, each exercising one damaged file.
FUZZ_TREES = settings(FUZZ, max_examples=40)

prom_alphabet = st.sampled_from(
    [*list('abc_:{}="\\,# \t\n.01-+eENaIf'), "NaN", "+Inf", "le", "quantile"]
)
prom_text = st.lists(prom_alphabet, max_size=80).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def mutate(line: str, data: st.DataObject) -> str:
    """Delete, insert or replace a few characters of a good line."""
    chars = list(line)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        pos = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        char = data.draw(st.sampled_from([*list('"{}=,\\ #x9.\n\t'), "\x00", "é", "NaN"]))
        if op == "delete" and chars:
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, char)
        elif chars:
            chars[pos] = char
    return "".join(chars)


def assert_sane(result: CollectResult) -> None:
    for sample in result.samples:
        assert isinstance(sample.value, float)
        assert isinstance(sample.timestamp_ms, int)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in sample.labels.items())
    for error in result.errors:
        assert error.message


# --- Prometheus text ---------------------------------------------------------------------------


@FUZZ
@given(prom_text)
def test_tokenizer_never_raises_on_random_text(text: str) -> None:
    for openmetrics in (None, True, False):
        tokenize(text, openmetrics=openmetrics)
    assert_sane(parse_exposition(text, device="d"))


@FUZZ
@given(st.data())
def test_a_mutated_line_costs_at_most_itself(data: st.DataObject) -> None:
    """Mutate one sample line of the fixture: every sample of the other lines survives."""
    lines = list(AGENT_LINES)
    sample_rows = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    row = data.draw(st.sampled_from(sample_rows))
    mutated = mutate(lines[row], data)
    others = tokenize("\n".join(lines[:row] + lines[row + 1 :]) + "\n")
    lines[row] = mutated
    damaged = tokenize("\n".join(lines) + "\n")
    assert len(damaged.errors) <= 1 + mutated.count("\n")

    def keys(expo: Any) -> Counter[tuple[Any, ...]]:
        return Counter(
            (s.name, tuple(sorted(s.labels.items())), repr(s.value)) for s in expo.samples()
        )

    assert not keys(others) - keys(damaged)  # nothing of the untouched lines is lost


@FUZZ
@given(st.data())
def test_garbage_lines_between_good_lines(data: st.DataObject) -> None:
    garbage = data.draw(
        st.lists(
            prom_text.filter(
                lambda t: "\n" not in t and t.strip() and not t.lstrip().startswith("#")
            ),
            min_size=1,
            max_size=5,
        )
    )
    good = [line for line in HUB_LINES if line and not line.startswith("#")][:10]
    mixed: list[str] = []
    for i, line in enumerate(good):
        mixed.append(line)
        mixed.append(garbage[i % len(garbage)])
    expo = tokenize("\n".join(mixed) + "\n")
    values = [s.value for s in expo.samples()]
    expected = [s.value for s in tokenize("\n".join(good) + "\n").samples()]
    # each good line is still parsed (garbage may itself be a valid sample line)
    for value in expected:
        assert values.count(value) >= expected.count(value) or math.isnan(value)
    assert len(expo.errors) <= len(good)


# --- tegrastats ----------------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=200))
def test_tegrastats_never_raises_on_random_text(line: str) -> None:
    assert_sane(parse_line(line, device="d", timestamp_ms=1_767_262_213_742))


@FUZZ
@given(st.data())
def test_tegrastats_mutated_token_costs_at_most_its_field(data: st.DataObject) -> None:
    line = data.draw(st.sampled_from(TEGRA_LINES))
    tokens = line.split()
    index = data.draw(st.integers(0, len(tokens) - 1))
    tokens[index] = mutate(tokens[index], data).replace("\n", "").replace("\t", "") or "x"
    result = parse_line(" ".join(tokens), device="d", timestamp_ms=1_767_262_213_742)
    assert_sane(result)
    assert len(result.errors) <= 8  # at most two per mutated character (a CPU core each)
    before = parse_line(line, device="d", timestamp_ms=1_767_262_213_742)
    # fields after the damage survive: the power rails at the end of the line
    original = line.split()
    first_rail = min(
        i for i in range(len(original) - 1) if re.fullmatch(r"\d+(mW)?/\d+(mW)?", original[i + 1])
    )
    if index < first_rail:

        def rails(r: CollectResult) -> list[tuple[str, float]]:
            return [(s.labels["rail"], s.value) for s in r.samples if s.name == "power_watts"]

        assert rails(result) == rails(before)


# --- Greengrass JSON -----------------------------------------------------------------------------


@FUZZ
@given(json_values)
def test_greengrass_parsers_never_raise_on_random_json(obj: Any) -> None:
    assert_sane(parse_fleet_status(obj))
    assert_sane(parse_emitter(obj, device="d"))
    assert_sane(parse_installed_components(obj, device="d"))
    assert_sane(parse_effective_deployments(obj, device="d"))
    FleetStatusAssembler().add(obj)


@FUZZ
@given(st.data())
def test_a_damaged_component_costs_only_itself(data: st.DataObject) -> None:
    message = json.loads(json.dumps(FSS))
    index = data.draw(st.integers(0, len(message["components"]) - 1))
    message["components"][index] = data.draw(json_values)
    result = parse_fleet_status(message)
    assert_sane(result)
    names = {s.labels["component"] for s in result.samples if s.name == "component_state"}
    others = {c["componentName"] for i, c in enumerate(FSS["components"]) if i != index}
    assert others <= names


@FUZZ
@given(st.data())
def test_a_damaged_emitter_metric_costs_only_itself(data: st.DataObject) -> None:
    payload = json.loads(json.dumps(EMITTER))
    index = data.draw(st.integers(0, len(payload) - 1))
    key = data.draw(st.sampled_from(["N", "NS", "V", "TS", None]))
    if key is None:
        payload[index] = data.draw(json_values)
    else:
        payload[index][key] = data.draw(json_values)
    result = parse_emitter(payload, device="d")
    assert_sane(result)
    assert len(result.samples) >= len(EMITTER) - 1


# --- sysfs ---------------------------------------------------------------------------------------

file_contents = st.one_of(
    st.text(max_size=20),
    st.integers(-300_000, 300_000).map(str),
    st.just(""),
    st.just("-256000"),
    st.binary(max_size=10),
)


def _damage(root: Path, files: list[Path], data: st.DataObject) -> Path:
    target = data.draw(st.sampled_from(files))
    path = root / target
    action = data.draw(st.sampled_from(["write", "delete", "directory"]))
    if action == "delete":
        path.unlink()
    elif action == "directory":
        path.unlink()
        path.mkdir()
    else:
        content = data.draw(file_contents)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return target


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@FUZZ_TREES
@given(st.data())
def test_jetson_damaged_file_costs_only_its_reading(data: st.DataObject) -> None:
    source = FIXTURES / "jetson_sysfs"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(source, Path(tmp) / "sys"))
        target = _damage(root, _files(root), data)
        result = read_jetson(root, device="d", timestamp_ms=1)
        assert_sane(result)
        clean = read_jetson(source, device="d", timestamp_ms=1)
        zone = target.parts[3] if target.parts[:3] == ("devices", "virtual", "thermal") else None
        untouched_temps = [
            s for s in clean.samples if s.name == "temperature_celsius" and zone is None
        ]
        for sample in untouched_temps:
            assert sample in result.samples
        assert len(result.errors) <= 2


@FUZZ_TREES
@given(st.data())
def test_coral_damaged_file_costs_only_its_reading(data: st.DataObject) -> None:
    source = FIXTURES / "coral_sysfs"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(source, Path(tmp) / "sys"))
        target = _damage(root, _files(root), data)
        result = read_apex(root, device="d", timestamp_ms=1)
        assert_sane(result)
        other = "apex_1" if "apex_0" in target.parts else "apex_0"
        clean = read_apex(source, device="d", timestamp_ms=1)
        for sample in clean.samples:
            if sample.labels["sensor"] == other:
                assert sample in result.samples
        assert len(result.errors) <= 2
