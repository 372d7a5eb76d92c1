"""``fleetwatch bench parse``: IoT Edge exposition and tegrastats parsing throughput.

The exposition is realistic: the edgeAgent and edgeHub fixture families replicated over many
modules (new module names, values varied per copy) until it holds ``--samples`` samples. In the
same run it is parsed by fleetwatch and by ``prometheus_client.parser.text_string_to_metric_families``,
rounds interleaved so both see the same machine load, and the two results are compared as
multisets of (name without ``_total``, labels, value): prometheus_client renames ``_total``
families and fleetwatch does not.

Figures: ``fleetwatch_samples_per_s`` is the whole path a collector runs (tokenize, relabel,
fleetwatch ``Sample`` objects, canonical series) at steady state, when the line shapes of the
target are known from the previous scrape; ``fleetwatch_cold_samples_per_s`` is a first scrape;
``fleetwatch_tokenizer_samples_per_s`` is the tokenizer alone, the like-for-like counterpart of
prometheus_client. ``speedup`` = fleetwatch_samples_per_s / prometheus_client_samples_per_s.
Each figure is the fastest of ``--rounds`` rounds in CPU time of this process (other load on a
small shared machine only ever adds time).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks._common import emit
from collectors.iotedge import _shapes
from collectors.iotedge.exposition import tokenize
from collectors.iotedge.parse import parse_exposition
from collectors.jetson.tegrastats import parse_lines

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
_MODULES = re.compile(r"objectDetector|telemetryForwarder")
_VALUE = re.compile(r"(\} )(-?[0-9][0-9.eE+-]*)$")


def build_exposition(samples: int = 5000) -> str:
    """The fixture families over as many module copies as it takes to reach ``samples``."""
    blocks: list[tuple[list[str], list[str]]] = []
    for name in ("iotedge_edgeagent_metrics.txt", "iotedge_edgehub_metrics.txt"):
        current: tuple[list[str], list[str]] | None = None
        for line in (FIXTURES / name).read_text().splitlines():
            if line.startswith("#"):
                if current is None or current[1]:
                    current = ([], [])
                    blocks.append(current)
                current[0].append(line)
            elif line.strip() and current is not None:
                current[1].append(line)
    base = sum(len(lines) for _, lines in blocks)
    per_copy = sum(1 for _, lines in blocks for line in lines if _MODULES.search(line))
    copies = 1 + max(0, math.ceil((samples - base) / per_copy))
    out: list[str] = []
    for head, lines in blocks:
        out.extend(head)
        for copy in range(copies):
            for line in lines:
                if copy == 0:
                    out.append(line)
                elif _MODULES.search(line):
                    line = _MODULES.sub(lambda m, c=copy: f"{m.group(0)}{c}", line)
                    out.append(
                        _VALUE.sub(lambda m, c=copy: m.group(1) + _vary(m.group(2), c), line)
                    )
    return "\n".join(out) + "\n"


def _vary(text: str, copy: int) -> str:
    value = float(text)
    if value != value:
        return text
    varied = value * (1 + 0.0137 * copy)
    return str(round(varied)) if value.is_integer() else repr(varied)


def result_multiset(pairs: list[tuple[str, dict[str, str], float]]) -> Counter[tuple[Any, ...]]:
    def norm(name: str) -> str:
        return name[: -len("_total")] if name.endswith("_total") else name

    return Counter(
        (norm(name), frozenset(labels.items()), "nan" if value != value else value)
        for name, labels, value in pairs
    )


def fleetwatch_pairs(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in tokenize(text).samples()]


def prometheus_pairs(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _rate(count: int, run: Callable[[], object], repeat: int) -> float:
    # CPU time of this process: other work on a small shared machine skews wall time, and
    # would skew the two parsers differently since their rounds run at different moments
    start = time.process_time()
    for _ in range(repeat):
        run()
    return count * repeat / (time.process_time() - start)


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench parse")
    parser.add_argument("--samples", type=int, default=5000, help="samples in the exposition")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--tegrastats-lines", type=int, default=2000)
    opts = parser.parse_args(args)

    text = build_exposition(opts.samples)
    ours, theirs = fleetwatch_pairs(text), prometheus_pairs(text)
    equal = result_multiset(ours) == result_multiset(theirs)
    count = len(ours)

    def steady() -> object:
        return parse_exposition(text, site="bench", timestamp_ms=0)

    def cold() -> object:
        _shapes.clear()
        return parse_exposition(text, site="bench", timestamp_ms=0)

    def tokenizer() -> object:
        return tokenize(text, timestamp_ms=0)

    rates: dict[str, list[float]] = {"steady": [], "cold": [], "tokenizer": [], "prometheus": []}
    for _ in range(opts.rounds):
        steady()  # the previous scrape (the cold runs below forget every shape)
        rates["steady"].append(_rate(count, steady, 5))
        rates["cold"].append(_rate(count, cold, 2))
        tokenizer()
        rates["tokenizer"].append(_rate(count, tokenizer, 5))
        rates["prometheus"].append(_rate(count, lambda: prometheus_pairs(text), 1))
    # the fastest round of each, as timeit advises: other load only ever adds time
    fastest = {key: max(values) for key, values in rates.items()}

    lines = [
        line
        for name in ("tegrastats_jp4.txt", "tegrastats_jp5.txt", "tegrastats_jp6.txt")
        for line in (FIXTURES / name).read_text().splitlines()
        if line.strip()
    ]
    lines = (lines * (opts.tegrastats_lines // len(lines) + 1))[: opts.tegrastats_lines]
    tegrastats = max(
        _rate(len(lines), lambda: parse_lines(lines, device="bench", timestamp_ms=0), 1)
        for _ in range(opts.rounds)
    )
    return emit(
        {
            "benchmark": "parse",
            "samples": count,
            "equal_results": equal,
            "fleetwatch_samples_per_s": round(fastest["steady"]),
            "fleetwatch_cold_samples_per_s": round(fastest["cold"]),
            "fleetwatch_tokenizer_samples_per_s": round(fastest["tokenizer"]),
            "prometheus_client_samples_per_s": round(fastest["prometheus"]),
            "speedup": round(fastest["steady"] / fastest["prometheus"], 1),
            "speedup_cold": round(fastest["cold"] / fastest["prometheus"], 1),
            "speedup_tokenizer": round(fastest["tokenizer"] / fastest["prometheus"], 1),
            "tegrastats_lines": len(lines),
            "tegrastats_lines_per_s": round(tegrastats),
        }
    )
