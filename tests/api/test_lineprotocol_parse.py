"""The tolerant line protocol parser: real-world shapes, escapes, bad lines, and round trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetwatch.api.lineprotocol_parse import parse
from fleetwatch.lineprotocol import encode
from fleetwatch.telemetry import LABEL_NAME_RE, Sample, check_sample


def test_fields_types_and_derived_metric_names() -> None:
    text = "gpu,device=d,site=s value=1.5,mem_bytes=1024i,busy=true,idle=F,count=7u 1000\n"
    result = parse(text, now_ms=0)
    assert result.errors == []
    got = {(s.name, s.value) for s in result.samples}
    assert got == {
        ("gpu", 1.5),
        ("gpu_mem_bytes", 1024.0),
        ("gpu_busy", 1.0),
        ("gpu_idle", 0.0),
        ("gpu_count", 7.0),
    }
    assert result.lines == [1] * 5


def test_escapes_in_measurement_tags_and_quoted_strings() -> None:
    text = 'm\\,x,device=a\\ b,site=c\\=d,path=C:\\dir value=2 5\nm2,device=d,site=s note="a b",value=1 6'
    result = parse(text, now_ms=0)
    first = result.samples[0]
    assert first.name == "m,x"
    assert dict(first.labels) == {"device": "a b", "site": "c=d", "path": "C:\\dir"}
    assert [e.line for e in result.errors] == [2]
    assert "string" in result.errors[0].message


def test_missing_timestamp_takes_receive_time_and_precisions_convert() -> None:
    assert parse("m,device=d,site=s value=1", now_ms=42).samples[0].timestamp_ms == 42
    assert parse("m value=1 3", precision="s", now_ms=0).samples[0].timestamp_ms == 3000
    assert parse("m value=1 3999", precision="us", now_ms=0).samples[0].timestamp_ms == 3
    assert parse("m value=1 3999999", precision="ns", now_ms=0).samples[0].timestamp_ms == 3


def test_a_bad_field_drops_its_whole_line_only() -> None:
    text = (
        "m,device=d,site=s value=1,other=x 1\nm,device=d,site=s value=2 2\r\n  \n#c\nm,=x value=1"
    )
    result = parse(text, now_ms=0)
    assert [s.value for s in result.samples] == [2.0]
    assert result.lines == [2]
    assert [e.line for e in result.errors] == [1, 5]
    assert "tag '=x'" in result.errors[1].message


def test_malformed_shapes_are_each_reported() -> None:
    bad = [
        "m",
        "m value",
        "m value= 1",
        "m value=1 1 extra",
        "m,device value=1",
        "m,device=a,device=b value=1",
        'm value="open',
        "m value=1 -5",
        "m value=1 1.5",
        ",device=a value=1",
        "m value=1_0 5",
        "m value=1 1_000",
        "m value=1 ٣",
    ]
    result = parse("\n".join(bad), now_ms=0)
    assert result.samples == []
    assert [e.line for e in result.errors] == list(range(1, len(bad) + 1))
    assert all(e.message for e in result.errors)


_label_value = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00\\"), min_size=1
).filter(lambda v: v.strip() == v)
_samples = st.builds(
    Sample,
    name=st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True),
    labels=st.dictionaries(
        st.from_regex(LABEL_NAME_RE.pattern.replace("$", ""), fullmatch=True).filter(
            lambda k: not k.startswith("__") and k not in ("time", "value")
        ),
        _label_value,
        max_size=4,
    ).map(lambda d: {**d, "device": "dev 1", "site": "s,1=x"}),
    value=st.floats(allow_nan=False, allow_infinity=False),
    timestamp_ms=st.integers(min_value=0, max_value=2**52),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_samples, max_size=20))
def test_round_trip_with_the_encoder(samples: list[Sample]) -> None:
    for sample in samples:
        check_sample(sample)
    result = parse(encode(samples).decode(), now_ms=0)
    assert result.errors == []
    assert [(s.name, dict(s.labels), s.value, s.timestamp_ms) for s in result.samples] == [
        (s.name, dict(s.labels), s.value, s.timestamp_ms) for s in samples
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = parse(text, now_ms=0)
    assert len(result.samples) == len(result.lines)
