"""The column-wise walk of log records against the records parsed one by one.

``decode_logs_protobuf`` reads the records of a request in one numpy walk over their bytes and
falls back to the official classes for encodings the walk does not handle. Both must give the
same columns, whatever the records hold; SDK-shaped records must take the walk.
"""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from spanlake.collector import decode_attributes, decode_logs, wire
from spanlake.collector.decode_logs import DecodeError, decode_logs_protobuf
from tests.logs.otlp_logs import make_log, make_logs_request
from tests.strategies import scalar_any_values

T = 1_700_000_000_000_000_000


def _columns(records: list[bytes]) -> tuple[dict[str, object] | None, dict[str, object]]:
    """(walked columns, or None where the walk declines; columns parsed one by one)."""

    def as_dict(c: decode_logs._RecordColumns) -> dict[str, object]:
        out = {}
        for name, value in vars(c).items():
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    parsed = as_dict(decode_logs._parsed_columns(records))
    try:
        walked = as_dict(decode_logs._walked_columns(*wire.packed(records)))
    except wire.Unusual:
        walked = None
    return walked, parsed


def _assert_same(walked: dict[str, object], parsed: dict[str, object]) -> None:
    for name, value in parsed.items():
        got = walked[name]
        if isinstance(value, pa.Array):
            assert got.type == value.type, name
            assert got.to_pylist() == value.to_pylist(), name
        else:
            assert got == value, name


def _sdk_records(n: int, seed: int = 3) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        attrs = {"code.lineno": int(rng.integers(1, 900)), "thread.name": f"worker-{i % 8}", "ratio": 0.5, "ok": True}
        body = {"event": "checkout", "n": i} if i % 50 == 0 else f"request {i} done in {rng.integers(1, 900)} ms"
        traced = i % 5 != 0
        out.append(
            make_log(
                body, time_ns=T + i, severity=9, severity_text="INFO", attrs=attrs,
                trace_id=rng.bytes(16) if traced else b"", span_id=rng.bytes(8) if traced else b"",
                flags=1 if traced else 0, event_name="checkout" if i % 7 == 0 else "",
            ).SerializeToString()
        )
    return out


def test_sdk_shaped_records_take_the_walk_and_agree() -> None:
    # Enough attributes for the vectorized attribute path as well.
    records = _sdk_records(decode_attributes._FEW)
    walked, parsed = _columns(records)
    assert walked is not None
    _assert_same(walked, parsed)


def test_the_decoder_reads_sdk_records_without_parsing_them_one_by_one() -> None:
    records = [LogRecord.FromString(r) for r in _sdk_records(50)]
    data = make_logs_request("walk", records).SerializeToString()
    with patch.object(decode_logs, "_parsed_columns", side_effect=AssertionError("parsed one by one")):
        result = decode_logs_protobuf(data)
    assert result.batch.num_logs == 50


def _unusual(record: LogRecord, extra: bytes = b"", before: bytes = b"") -> bytes:
    return before + record.SerializeToString() + extra


# Encodings the walk must decline, each valid protobuf (the one-by-one parse decides).
UNUSUAL = {
    "fields out of order": _unusual(make_log("x", time_ns=T), before=LogRecord(event_name="late").SerializeToString()),
    "a field repeated (the last wins)": _unusual(make_log("x", time_ns=T, severity=5), LogRecord(severity_number=9).SerializeToString()),
    "a body given twice (merged)": _unusual(make_log("x", time_ns=T), LogRecord(body=AnyValue(string_value="y")).SerializeToString()),
    "an unknown field": _unusual(make_log("x", time_ns=T), bytes([0xA0, 0x06, 0x01])),  # field 100, varint 1
    "severity above 127": make_log("x", time_ns=T, severity=200).SerializeToString(),
    "a negative severity": make_log("x", time_ns=T, severity=-3).SerializeToString(),
    "many dropped attributes": LogRecord(time_unix_nano=T, dropped_attributes_count=1000).SerializeToString(),
    "a body past two length bytes": make_log("b" * 20_000, time_ns=T).SerializeToString(),
}


@pytest.mark.parametrize("case", list(UNUSUAL))
def test_unusual_encodings_fall_back_to_the_official_parse(case: str) -> None:
    records = _sdk_records(5) + [UNUSUAL[case]] + _sdk_records(5, seed=4)
    walked, parsed = _columns(records)
    assert walked is None
    result = decode_logs_protobuf(_request(records))
    assert result.batch.num_logs + result.rejected == 11


def _request(records: list[bytes]) -> bytes:
    request = decode_logs._LazyLogsData()
    scope_logs = request.resource_logs.add().scope_logs.add()
    scope_logs.log_records.extend(records)
    return request.SerializeToString()


def test_a_record_running_past_its_end_fails_the_request() -> None:
    good = make_log("x", time_ns=T).SerializeToString()
    truncated = good[:-3]
    with pytest.raises(DecodeError, match="not a valid ExportLogsServiceRequest"):
        decode_logs_protobuf(_request([good, truncated, good]))


def test_a_severity_text_that_is_not_utf8_fails_the_request() -> None:
    record = LogRecord(time_unix_nano=T, severity_text="INFO").SerializeToString().replace(b"INFO", b"IN\xff\xfe")
    with pytest.raises(DecodeError):
        decode_logs_protobuf(_request([record] * 3))


def test_wrong_id_lengths_reject_their_records_with_the_same_message_both_ways() -> None:
    records = _sdk_records(6)
    records[2] = make_log("x", time_ns=T, trace_id=b"\x01" * 5).SerializeToString()
    records[4] = make_log("x", time_ns=T, trace_id=b"\x01" * 16, span_id=b"\x02" * 9).SerializeToString()
    walked, parsed = _columns(records)
    assert walked is not None
    _assert_same(walked, parsed)
    assert parsed["problems"] == {2: "traceId is 5 bytes, expected 16 or empty", 4: "spanId is 9 bytes, expected 8 or empty"}


_values = scalar_any_values(max_text=200)


@st.composite
def _records(draw: st.DrawFn) -> bytes:
    record = LogRecord(
        time_unix_nano=draw(st.sampled_from([0, T, 2**64 - 1])),
        observed_time_unix_nano=draw(st.sampled_from([0, T + 5])),
        severity_number=draw(st.sampled_from([0, 1, 9, 24, 127])),
        severity_text=draw(st.sampled_from(["", "INFO", "Warnung ⚠"])),
        dropped_attributes_count=draw(st.sampled_from([0, 1, 127])),
        flags=draw(st.sampled_from([0, 1, 2**32 - 1])),
        trace_id=draw(st.sampled_from([b"", bytes(16), b"\x07" * 16, b"\x07" * 3])),
        span_id=draw(st.sampled_from([b"", bytes(8), b"\x09" * 8, b"\x09" * 12])),
        event_name=draw(st.sampled_from(["", "click"])),
    )
    body = draw(st.one_of(st.none(), _values, st.lists(_values, max_size=3).map(
        lambda vs: AnyValue(kvlist_value={"values": [KeyValue(key=f"k{i}", value=v) for i, v in enumerate(vs)]}))))
    if body is not None:
        record.body.CopyFrom(body)
    keys = draw(st.lists(st.sampled_from(["a", "b", "ключ", ""]), max_size=6))
    record.attributes.extend(KeyValue(key=k, value=draw(_values)) for k in keys)
    return record.SerializeToString()


@settings(max_examples=150, deadline=None)
@given(st.lists(_records(), min_size=1, max_size=12))
def test_any_records_walk_to_the_columns_of_the_official_parse(records: list[bytes]) -> None:
    walked, parsed = _columns(records)
    assert walked is not None  # these are all in the encoding the walk handles
    _assert_same(walked, parsed)
