"""Top-level typer app. Each command group lives in its own module and is added here."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetwatch.cli import agent, api, bench, collect, dashboard, db, demo, evaluate, worker
from fleetwatch.cli.common import state

app = typer.Typer(
    name="fleetwatch",
    help="Fleet observability and predictive maintenance for edge AI devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML settings file (default: $FLEETWATCH_CONFIG, if set)."
    ),
) -> None:
    state.config_file = config


app.add_typer(db.app, name="db")
app.command("worker")(worker.worker)
app.command("beat")(worker.beat)
app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    bench.bench
)
app.command("collect")(collect.collect)
app.command("agent")(agent.agent)
app.command("api")(api.serve)
app.add_typer(api.token_app, name="token")
app.command("demo")(demo.demo)
app.command("dashboard")(dashboard.dashboard)
app.command("evaluate")(evaluate.evaluate)


def main() -> None:
    app(prog_name="fleetwatch")


if __name__ == "__main__":
    main()
