"""``fleetwatch bench NAME``: run one benchmark from ``benchmarks/``.

Every benchmark prints one JSON object as the last line of its output, including ``machine``.
"""

from __future__ import annotations

import importlib

import typer

# name -> module under benchmarks/ exposing ``main(args: list[str]) -> dict``
BENCHMARKS: dict[str, str] = {
    "store": "benchmarks.store",
    "analyze": "benchmarks.analyze",
    "api": "benchmarks.api",
    "agent": "benchmarks.agent",
    "parse": "benchmarks.parse",
    "models": "benchmarks.models",
    "simulate": "benchmarks.simulate",
    "dashboard": "benchmarks.dashboard",
    "alerts": "benchmarks.alerts",
}


def bench(
    name: str = typer.Argument(..., help=f"benchmark to run: {', '.join(sorted(BENCHMARKS))}"),
    args: list[str] | None = typer.Argument(None, help="options passed to the benchmark"),
) -> None:
    """Run a benchmark and print its figures as JSON (last line)."""
    if name not in BENCHMARKS:
        typer.echo(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}", err=True)
        raise typer.Exit(2)
    module = importlib.import_module(BENCHMARKS[name])
    module.main(list(args or []))
