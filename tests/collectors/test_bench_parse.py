"""The parse benchmark's workload: realistic size and equal results with prometheus_client."""

from __future__ import annotations

from benchmarks.parse import build_exposition, fleetwatch_pairs, prometheus_pairs, result_multiset
from collectors.iotedge.parse import parse_exposition


def test_workload_has_5000_samples_that_both_parsers_agree_on() -> None:
    text = build_exposition(5000)
    ours = fleetwatch_pairs(text)
    assert 5000 <= len(ours) < 5200
    assert result_multiset(ours) == result_multiset(prometheus_pairs(text))
    result = parse_exposition(text, site="bench")
    assert result.errors == []
    assert (
        len({s.labels.get("module") for s in result.samples if s.name == "memory_used_bytes"}) > 50
    )


def test_the_comparison_notices_a_different_value() -> None:
    text = build_exposition(300)
    ours = fleetwatch_pairs(text)
    ours[3] = (ours[3][0], ours[3][1], ours[3][2] + 1)
    assert result_multiset(ours) != result_multiset(prometheus_pairs(text))
