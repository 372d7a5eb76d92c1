"""The agent runs on small gateways: its process never imports the analysis stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetwatch.agent.workload import GatewayWorkload
from tests.agent.conftest import REPO, Receiver, write_spool

ANALYSIS_STACK = ("pandas", "sklearn", "statsmodels", "scipy", "dash", "plotly", "models")

# The agent's own entry point (python -m fleetwatch.agent) and the full CLI (fleetwatch agent).
# The agent's entry must not even import numpy; the CLI also loads other commands' modules.
PROBES = {
    "module": (
        "from fleetwatch.agent.__main__ import main\n"
        "code = main(['--config', sys.argv[1], '--once'])\n",
        (*ANALYSIS_STACK, "numpy"),
    ),
    "cli": (
        "from fleetwatch.cli.main import app\n"
        "app(['agent', '--config', sys.argv[1], '--once'], standalone_mode=False)\n",
        ANALYSIS_STACK,
    ),
}
WRAPPER = textwrap.dedent(
    """
    import json, sys
    try:
        exec(sys.argv[2])
    finally:
        print("HEAVY=" + json.dumps([m for m in sys.argv[3:] if m in sys.modules]))
    """
)


@pytest.mark.parametrize("entry", sorted(PROBES))
def test_a_running_agent_imports_no_analysis_stack(
    entry: str, receiver: Receiver, spool_dir: Path, tmp_path: Path
) -> None:
    code, forbidden = PROBES[entry]
    write_spool(spool_dir, "a", GatewayWorkload(2).tick())
    config = tmp_path / "agent.toml"
    config.write_text(
        f"data_dir = '{tmp_path}'\n[agent]\nuplink = 'ingest'\nuplink_url = '{receiver.url}'\n"
        f"[[agent.collectors]]\nplugin = 'spool'\nconfig = {{ directory = '{spool_dir}' }}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(config), code, *forbidden],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    heavy = json.loads(result.stdout.split("HEAVY=")[-1])
    assert heavy == []
    assert len(receiver.samples()) == 120  # it really ran: collected and shipped
