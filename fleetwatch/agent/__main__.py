"""``python -m fleetwatch.agent --config agent.toml``: the agent without the rest of the CLI.

Same behaviour as ``fleetwatch agent``; this entry imports only the agent, so the process stays
as small as a gateway needs.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from fleetwatch.settings import ConfigError, Settings, load_settings


def serve(conf: Settings, *, once: bool = False) -> int:
    """Run an agent from settings until SIGTERM/SIGINT (or one round with ``once``)."""
    from fleetwatch.agent.runner import Agent, AgentConfigError
    from fleetwatch.plugins import PluginError

    logging.basicConfig(
        level=conf.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        agent = Agent(
            conf.agent,
            buffer_dir=conf.agent.buffer_dir or conf.data_dir / "agent",
            metrics_port=conf.metrics.port,
        )
    except (AgentConfigError, PluginError) as exc:
        print(f"fleetwatch agent: {exc}", file=sys.stderr)
        return 2
    if once:
        print(json.dumps(agent.run_once(), sort_keys=True))
        agent.stop()
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    logging.getLogger("fleetwatch.agent").info(
        "agent running: %d collectors, uplink %s, status port %s",
        len(agent.collectors),
        conf.agent.uplink,
        agent.status.port if agent.status else None,
    )
    stop.wait()
    agent.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetwatch.agent", description=__doc__)
    parser.add_argument("--config", "-c", type=Path, help="TOML settings file")
    parser.add_argument("--once", action="store_true", help="collect once, ship, print stats")
    args = parser.parse_args(argv)
    try:
        conf = load_settings(args.config)
    except ConfigError as exc:
        print(f"fleetwatch: {exc}", file=sys.stderr)
        return 2
    return serve(conf, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
