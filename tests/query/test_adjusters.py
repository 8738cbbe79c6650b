"""Adjusters: clock skew with exact offsets, id de-duplication, identical spans, SDK attributes."""

from __future__ import annotations

import copy

import pytest

from spanlake.model import Event, Link, Resource, encode_bool, encode_double, encode_int, encode_string
from spanlake.query.adjusters.base import AdjusterInput, apply_adjusters
from spanlake.query.adjusters.clock_skew import ClockSkewAdjuster, go_duration, host_key
from spanlake.query.adjusters.dedupe_spans import dedupe_spans
from spanlake.query.adjusters.ip_attributes import normalize_ip_attributes
from spanlake.query.adjusters.library_attributes import move_library_attributes
from spanlake.query.adjusters.sort_collections import sort_collections
from spanlake.query.adjusters.span_id_uniquifier import deduplicate_client_server_span_ids
from spanlake.query.adjusters.span_links import remove_empty_span_links
from spanlake.query.adjusters.standard import adjust_trace, standard_adjusters

US = 1_000
MS = 1_000_000
SERVER, CLIENT = 2, 3


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


# --- clock skew ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (-1_600, "-1.6µs"),
        (250 * MS, "250ms"),
        (1_234_567, "1.234567ms"),
        (1_500 * MS, "1.5s"),
        (3_600 * 10**9, "1h0m0s"),
        (3_723 * 10**9 + 5 * MS, "1h2m3.005s"),
        (-90 * 10**9, "-1m30s"),
    ],
)
def test_go_duration(ns, text):
    assert go_duration(ns) == text


def test_host_key_precedence():
    assert host_key(Resource({"host.name": encode_string("n"), "host.ip": encode_string("10.0.0.1")})) == "10.0.0.1"
    assert host_key(Resource({"host.id": encode_string("i"), "host.name": encode_string("n")})) == "i"
    ips = 'a{"arrayValue":{"values":[{"stringValue":"10.1.1.1"},{"stringValue":"10.2.2.2"}]}}'
    assert host_key(Resource({"host.ip": ips})) == "10.1.1.1"
    assert host_key(Resource({"host.name": encode_string("n")})) == "n"
    assert host_key(Resource({})) == ""


def skew_trace(mk):
    # Parent on host A lasts 1 ms; its child on host B claims to start 2 ms later, outside it.
    return [
        mk(1, None, start=0, dur=1000 * US, host="A", service="front"),
        mk(
            2, 1, start=2000 * US, dur=200 * US, host="B", service="back",
            events=[Event(2100 * US, "cache miss")],
        ),
        mk(3, 2, start=2050 * US, dur=100 * US, host="B", service="back"),  # same host as span 2
        mk(4, 2, start=2050 * US, dur=50 * US, host="C", service="db"),  # a third host under span 2
    ]


def test_child_from_other_host_is_centred_in_parent(mk):
    spans = skew_trace(mk)
    original = copy.deepcopy(spans)
    out = ClockSkewAdjuster(max_delta_ns=10 * MS)(AdjusterInput.of(spans))
    # delta = parent.start + (parent.dur - child.dur) // 2 - child.start = 0 + 400us - 2000us
    delta = -1600 * US
    assert out.spans[0].start_ns == 0
    assert out.spans[1].start_ns == 2000 * US + delta == 400 * US
    assert out.spans[1].duration_ns == 200 * US
    assert out.spans[1].events[0].time_ns == 2100 * US + delta
    # The same-host descendant inherits the delta.
    assert out.spans[2].start_ns == 2050 * US + delta
    # Host C does not inherit host B's delta: its own unshifted times are centred in the shifted
    # parent [400us, 600us), a delta of 400us + 75us - 2050us.
    assert out.spans[3].start_ns == 400 * US + (200 * US - 50 * US) // 2
    assert out.span_warnings[0] == []
    assert out.span_warnings[1] == ["This span's timestamps were adjusted by -1.6ms"]
    assert out.span_warnings[2] == ["This span's timestamps were adjusted by -1.6ms"]
    assert out.span_warnings[3] == ["This span's timestamps were adjusted by -1.575ms"]
    assert spans == original  # inputs are never mutated


def test_same_host_is_never_shifted(mk):
    spans = [mk(1, None, start=0, dur=100, host="A"), mk(2, 1, start=500, dur=10, host="A")]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert out.spans[1].start_ns == 500 and out.span_warnings == [[], []]


def test_unknown_host_counts_as_different(mk):
    spans = [mk(1, None, start=0, dur=100), mk(2, 1, start=500, dur=10)]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert out.spans[1].start_ns == 45


def test_child_that_fits_is_not_shifted(mk):
    spans = [mk(1, None, start=0, dur=100, host="A"), mk(2, 1, start=10, dur=10, host="B")]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert out.spans[1].start_ns == 10 and out.span_warnings[1] == []


def test_longer_child_only_kept_from_starting_early(mk):
    spans = [
        mk(1, None, start=1000, dur=100, host="A"),
        mk(2, 1, start=900, dur=500, host="B"),  # starts 100 early: moved to the parent start
        mk(3, 1, start=1050, dur=500, host="C"),  # starts inside, ends outside: left alone
    ]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert out.spans[1].start_ns == 1000
    assert out.span_warnings[1] == ["This span's timestamps were adjusted by 100ns"]
    assert out.spans[2].start_ns == 1050 and out.span_warnings[2] == []


def test_max_adjustment_is_respected(mk):
    spans = skew_trace(mk)
    out = ClockSkewAdjuster(max_delta_ns=1 * MS)(AdjusterInput.of(spans))
    assert [s.start_ns for s in out.spans] == [s.start_ns for s in spans]
    note = "max clock skew adjustment delta of 1ms exceeded; not applying calculated delta of -1.6ms"
    assert out.span_warnings[1] == [note]
    assert out.span_warnings[2] == [note]


def test_zero_max_disables_adjustment(mk):
    out = ClockSkewAdjuster(0)(AdjusterInput.of(skew_trace(mk)))
    assert out.spans[1].start_ns == 2000 * US
    assert out.span_warnings[1] == ["clock skew adjustment disabled; not applying calculated delta of -1.6ms"]


def test_missing_parent_roots_are_not_shifted(mk):
    spans = [mk(2, 99, start=5000, dur=10, host="B")]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert out.spans[0].start_ns == 5000 and out.span_warnings == [[]]


def test_deep_chain_across_hosts(mk):
    n = 10_000
    spans = [mk(i, i - 1 if i > 1 else None, start=i * 10, dur=5, host="AB"[i % 2]) for i in range(1, n + 1)]
    out = ClockSkewAdjuster(10**9)(AdjusterInput.of(spans))
    assert len(out.spans) == n
    assert all(out.spans[i].start_ns >= out.spans[i - 1].start_ns for i in range(1, n))


# --- span ids, duplicates, attributes --------------------------------------------------------


def test_server_span_sharing_client_id_gets_new_id(mk):
    spans = [
        mk(10, None, start=0, dur=100, kind=SERVER, service="front"),
        mk(7, 10, start=10, dur=80, kind=CLIENT, service="front"),
        mk(7, 10, start=15, dur=70, kind=SERVER, service="back"),  # Zipkin-style shared id
        mk(20, 7, start=20, dur=10, kind=CLIENT, service="back"),  # child of the server side
    ]
    out = deduplicate_client_server_span_ids(AdjusterInput.of(spans))
    client, server, child = out.spans[1], out.spans[2], out.spans[3]
    assert client.span_id == sid(7) and client.parent_span_id == sid(10)
    assert server.span_id == sid(1) and server.parent_span_id == sid(7)
    assert child.parent_span_id == sid(1)
    assert spans[2].span_id == sid(7)  # input untouched


def test_new_ids_skip_ids_in_use(mk):
    spans = [mk(1, None, kind=CLIENT), mk(1, None, kind=SERVER), mk(2, None, kind=CLIENT), mk(2, None, kind=SERVER)]
    out = deduplicate_client_server_span_ids(AdjusterInput.of(spans))
    assert [s.span_id for s in out.spans] == [sid(1), sid(3), sid(2), sid(4)]


def test_without_client_spans_nothing_changes(mk):
    trace = AdjusterInput.of([mk(1, kind=SERVER), mk(1, kind=SERVER)])
    assert deduplicate_client_server_span_ids(trace) is trace


def test_identical_spans_are_dropped_with_their_warnings(mk):
    a = mk(1, None, attrs={"x": encode_string("1"), "y": encode_string("2")})
    b = copy.deepcopy(a)
    b.attributes = {"y": encode_string("2"), "x": encode_string("1")}  # order does not matter
    c = mk(1, None, attrs={"x": encode_string("other")})  # same id, different content: kept
    trace = AdjusterInput([a, b, c], [["wa"], ["wb"], ["wc"]], [])
    out = dedupe_spans(trace)
    assert out.spans == [a, c]
    assert out.span_warnings == [["wa"], ["wc"]]
    assert out.warnings == ["1 identical duplicate span(s) removed"]


def test_spans_differing_only_by_resource_are_not_duplicates(mk):
    a = mk(1, None, host="A")
    b = mk(1, None, host="B")
    assert len(dedupe_spans(AdjusterInput.of([a, b])).spans) == 2


def test_library_attributes_move_to_shared_resource(mk):
    sdk = {"telemetry.sdk.language": encode_string("python"), "telemetry.sdk.version": encode_string("1.0")}
    spans = [mk(1, None, attrs={**sdk, "keep": encode_int(1)}), mk(2, 1)]
    out = move_library_attributes(AdjusterInput.of(spans))
    assert out.spans[0].attributes == {"keep": encode_int(1)}
    assert out.spans[0].resource is out.spans[1].resource
    assert out.spans[1].resource.attributes["telemetry.sdk.language"] == encode_string("python")
    assert "telemetry.sdk.language" not in spans[0].resource.attributes  # input untouched


def test_library_attribute_conflict_stays_on_span_with_warning(mk):
    s1 = mk(1, None, attrs={"telemetry.sdk.name": encode_string("a")})
    s2 = mk(2, 1, attrs={"telemetry.sdk.name": encode_string("b")})
    s3 = mk(3, 1, attrs={"telemetry.sdk.name": encode_string("a")})
    out = move_library_attributes(AdjusterInput.of([s1, s2, s3]))
    assert out.spans[0].resource.attributes["telemetry.sdk.name"] == encode_string("a")
    assert out.spans[1].attributes == {"telemetry.sdk.name": encode_string("b")}
    assert out.span_warnings[1] == ["conflicting values between Span and Resource for attribute telemetry.sdk.name"]
    assert out.spans[2].attributes == {} and out.span_warnings[2] == []


def test_sort_collections(mk):
    s = mk(1, None, attrs={"b": encode_string("2"), "a": encode_string("1")},
           events=[Event(20, "late", {"z": "s", "y": "s"}), Event(10, "early")])
    s.resource = Resource({"z": encode_string("z"), "service.name": encode_string("svc")})
    out = sort_collections(AdjusterInput.of([s]))
    t = out.spans[0]
    assert list(t.attributes) == ["a", "b"]
    assert [e.name for e in t.events] == ["early", "late"]
    assert list(t.events[1].attributes) == ["y", "z"]
    assert list(t.resource.attributes) == ["service.name", "z"]
    assert list(s.attributes) == ["b", "a"]


def test_ip_attributes_become_dotted(mk):
    s = mk(1, None, attrs={"ip": encode_int(1 << 24 | 2 << 16 | 3 << 8 | 4), "peer.ipv4": encode_double(float(1 << 26 | 2 << 16 | 3 << 8 | 4)), "a": encode_int(42)})
    out = normalize_ip_attributes(AdjusterInput.of([s]))
    assert out.spans[0].attributes == {"ip": encode_string("1.2.3.4"), "peer.ipv4": encode_string("4.2.3.4"), "a": encode_int(42)}


def test_empty_links_removed(mk):
    s = mk(1, None)
    s.links = [Link(b"", sid(1)), Link(bytes(16), sid(2)), Link((5).to_bytes(16, "big"), sid(3))]
    out = remove_empty_span_links(AdjusterInput.of([s]))
    assert [link.span_id for link in out.spans[0].links] == [sid(3)]
    assert out.span_warnings[0] == ["Invalid span link removed", "Invalid span link removed"]


def test_standard_adjusters_in_order_and_raw(mk):
    names = [getattr(a, "__name__", type(a).__name__) for a in standard_adjusters()]
    assert names == [
        "deduplicate_client_server_span_ids",
        "sort_collections",
        "dedupe_spans",
        "ClockSkewAdjuster",
        "normalize_ip_attributes",
        "move_library_attributes",
        "remove_empty_span_links",
    ]
    spans = skew_trace(mk) + [copy.deepcopy(skew_trace(mk)[0])]
    raw = adjust_trace(spans, raw=True)
    assert raw.spans == spans and all(w == [] for w in raw.span_warnings)
    adjusted = adjust_trace(spans, max_clock_skew_adjust_ns=10 * MS)
    assert len(adjusted.spans) == 4
    assert adjusted.spans[1].start_ns == 400 * US
    assert adjusted.warnings == ["1 identical duplicate span(s) removed"]


def test_apply_adjusters_keeps_warnings_aligned(mk):
    def warn_all(t: AdjusterInput) -> AdjusterInput:
        return AdjusterInput(t.spans, [w + [s.name] for s, w in zip(t.spans, t.span_warnings)], t.warnings)

    spans = [mk(1, name="a"), mk(1, name="a"), mk(2, name="b", attrs={"f": encode_bool(True)})]
    out = apply_adjusters(AdjusterInput.of(spans), [warn_all, dedupe_spans])
    assert out.warnings_by_index() == {0: ["a"], 1: ["b"]}
