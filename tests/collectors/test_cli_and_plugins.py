"""``fleetwatch collect SOURCE --once`` and the plugin contract of the six collectors."""

from __future__ import annotations

import json
import math
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from fleetwatch.cli import collect as collect_cli
from fleetwatch.plugins import Collector, PluginRegistry, Sample
from tests.collectors.conftest import FIXTURES

SOURCES = ("iotedge", "greengrass", "greengrass_cloud", "coral", "jetson", "tegrastats")

app = typer.Typer()
app.command()(collect_cli.collect)


def run(*args: str) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(app, list(args))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines, result.stderr


def values(lines: list[dict], metric: str, **labels: str) -> list[float]:
    return [
        x["value"]
        for x in lines
        if x["metric"] == metric and all(x["labels"].get(k) == v for k, v in labels.items())
    ]


# --- the command -------------------------------------------------------------------------------


def test_iotedge_from_a_file() -> None:
    code, lines, err = run(
        "iotedge",
        "--once",
        "--file",
        str(FIXTURES / "iotedge_edgehub_metrics.txt"),
        "--site",
        "muc",
    )
    assert (code, err) == (0, "")
    assert values(lines, "message_queue_length", endpoint="iothub") == [41]
    first = lines[0]
    assert set(first) == {"metric", "labels", "value", "timestamp"}
    assert first["labels"]["site"] == "muc" and first["labels"]["device"] == "orin-agx-017"
    assert first["timestamp"] > 1_700_000_000_000  # epoch ms


def test_iotedge_from_a_url_with_a_bad_line(http_server) -> None:
    url = http_server.route(
        "/metrics", (FIXTURES / "iotedge_edgeagent_metrics.txt").read_text() + "broken{ 1\n"
    )
    code, lines, err = run("iotedge", "--once", "--url", url, "--device", "gw-7")
    assert code == 0
    assert values(lines, "disk_free_bytes", disk="nvme0n1p1", device="gw-7") == [402318086144]
    assert err.count("error: ") == 1 and f"{url}:172" in err  # the fixture has 171 lines


def test_sysfs_sources() -> None:
    code, lines, _ = run(
        "coral", "--once", "--sysfs-root", str(FIXTURES / "coral_sysfs"), "--device", "coral-1"
    )
    assert code == 0
    assert values(lines, "coral_tpu_clock_hertz", sensor="apex_1") == [250e6]
    code, lines, _ = run(
        "jetson", "--once", "--sysfs-root", str(FIXTURES / "jetson_sysfs"), "--device", "orin"
    )
    assert code == 0
    assert values(lines, "temperature_celsius", sensor="gpu") == [47.625]
    assert values(lines, "temperature_celsius", sensor="cv0") == []


def test_tegrastats_log_file() -> None:
    code, lines, _ = run(
        "tegrastats",
        "--once",
        "--file",
        str(FIXTURES / "tegrastats_jp6.txt"),
        "--device",
        "orin",
        "--set",
        "timezone=Europe/Berlin",
    )
    assert code == 0
    assert values(lines, "gpu_utilization_ratio") == [0.72, 0.0, 0.93, 0.0]


@pytest.mark.parametrize(
    ("name", "metric", "expected"),
    [
        ("greengrass_fleet_status.json", "device_healthy", [0.0]),
        ("greengrass_nucleus_emitter.json", "open_file_descriptors", [5184]),
    ],
)
def test_greengrass_messages_from_files(name: str, metric: str, expected: list[float]) -> None:
    code, lines, err = run(
        "greengrass", "--once", "--file", str(FIXTURES / name), "--device", "orin-agx-017"
    )
    assert (code, err) == (0, "")
    assert values(lines, metric) == expected


def test_greengrass_cloud_responses_from_a_file(tmp_path: Path) -> None:
    bundle = [
        json.loads((FIXTURES / name).read_text())
        for name in (
            "greengrass_get_core_device.json",
            "greengrass_list_installed_components.json",
            "greengrass_list_effective_deployments.json",
        )
    ]
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(bundle))
    code, lines, err = run("greengrass_cloud", "--once", "--file", str(path))
    assert (code, err) == (0, "")
    assert values(lines, "device_healthy", device="orin-agx-017", site="muc-plant-2") == [0.0]
    assert values(
        lines,
        "component_state",
        component="com.fleetwatch.ObjectDetector",
        state="BROKEN",
        device="orin-agx-017",
    ) == [1.0]


def test_nothing_collected_exits_1_with_errors_on_stderr(tmp_path: Path) -> None:
    code, lines, err = run("iotedge", "--once", "--file", str(tmp_path / "missing.txt"))
    assert code == 1 and lines == []
    assert "cannot read" in err


def test_usage_errors_exit_2() -> None:
    assert run("nosuch", "--once")[0] == 2
    assert run("coral", "--once", "--url", "http://x")[0] == 2  # coral has no URLs
    assert run("coral", "--sysfs-root", str(FIXTURES / "coral_sysfs"))[0] == 2  # no --once
    code, _, err = run("iotedge", "--once", "--url", "ftp://nope")
    assert code == 2 and "http://" in err
    assert run("jetson", "--once", "--set", "bogus=1")[0] == 2


def test_non_finite_values_print_as_strings() -> None:
    line = collect_cli.sample_json(Sample("x", {"device": "d", "site": "s"}, math.inf, 5))
    assert json.loads(line)["value"] == "+Inf"


def test_fleetwatch_collect_runs_through_the_real_command_line() -> None:
    from fleetwatch.cli.main import app as fleetwatch_app

    result = CliRunner().invoke(
        fleetwatch_app,
        [
            "collect",
            "coral",
            "--once",
            "--sysfs-root",
            str(FIXTURES / "coral_sysfs"),
            "--device",
            "coral-1",
            "--site",
            "lab",
        ],
    )
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout.splitlines()[0])
    assert first["metric"] == "temperature_celsius" and first["value"] == 47.3
    assert first["labels"] == {"device": "coral-1", "site": "lab", "sensor": "apex_0"}


# --- the plugin contract -----------------------------------------------------------------------


def test_all_six_collectors_load_through_entry_points() -> None:
    declared = {ep.name for ep in entry_points(group="fleetwatch.collectors")}
    assert set(SOURCES) <= declared
    registry = PluginRegistry.from_entry_points(["fleetwatch.collectors"])
    for name in SOURCES:
        plugin = registry.get("fleetwatch.collectors", name)
        assert issubclass(plugin, Collector)
        assert plugin.name == name
        assert plugin.capabilities.placements
        assert issubclass(plugin.config_model, BaseModel)


@pytest.mark.parametrize("name", SOURCES)
def test_config_fields_are_described_and_secrets_are_secret(name: str) -> None:
    registry = PluginRegistry.from_entry_points(["fleetwatch.collectors"])
    model = registry.get("fleetwatch.collectors", name).config_model
    for field_name, info in model.model_fields.items():
        assert info.description, f"{name}.{field_name} has no description"
        if any(word in field_name for word in ("password", "secret", "token")) and (
            field_name != "aws_access_key_id"
        ):
            assert SecretStr in _types(info.annotation), f"{name}.{field_name} is not a SecretStr"
    assert "file" in model.model_fields or "sysfs_root" in model.model_fields


def _types(annotation: object) -> set[object]:
    return {annotation, *getattr(annotation, "__args__", ())}


def test_push_capability_only_for_mqtt() -> None:
    registry = PluginRegistry.from_entry_points(["fleetwatch.collectors"])
    push = {
        name for name in SOURCES if registry.get("fleetwatch.collectors", name).capabilities.push
    }
    assert push == {"greengrass"}


def test_secrets_do_not_leak_through_repr(tmp_path: Path) -> None:
    from collectors.iotedge.config import IoTEdgeConfig

    config = IoTEdgeConfig(bearer_token="s3cret-token")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())


def test_copy_of_fixture_tree_is_independent(tmp_path: Path) -> None:
    # guards the damaged-tree tests: they must never write into the shared fixtures
    copy = Path(shutil.copytree(FIXTURES / "coral_sysfs", tmp_path / "sys"))
    (copy / "class/apex/apex_0/temp").write_text("1\n")
    assert (FIXTURES / "coral_sysfs/class/apex/apex_0/temp").read_text() == "47300\n"
