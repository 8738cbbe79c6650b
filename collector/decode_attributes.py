"""Vectorized decoding of serialized OTLP ``KeyValue`` attributes into Arrow string arrays.

The trace decoder parses spans with their attributes left as raw ``KeyValue`` bytes (one
``bytes`` object per attribute, see ``decode_traces``) and hands all attributes of a request
to :func:`decode_key_values` at once. Reading attributes field by field from Python costs about
600 ns each; here numpy walks the wire format of every attribute in lockstep instead::

    0x0A <key len> <key> 0x12 <AnyValue len> <AnyValue: one of
        0x0A <len> <string> | 0x10 <0|1> | 0x18 <varint> | 0x21 <8 bytes> | nothing>

The buffer of all attributes is then cut into consecutive pieces (header, key, middle,
encoded string value, gap to the next attribute) and Arrow's ``take`` copies keys and values
out of it in C++. :func:`decode_key_values_at` takes attributes where they lie, in a buffer of
whole records (the log decoder's); :func:`decode_key_values` packs a list of them first. A string
value is encoded in place: the byte before the string (its length) is overwritten with the
type tag ``s``. Ints and doubles are formatted by Python (they are short and few); bools and
empty values are constant pieces. Everything else (bytes, arrays, kvlists, lengths past two
varint bytes, unusual field order) is parsed by the official ``KeyValue`` class and encoded by
``spanlake.model``, behind a cache. The result is identical to ``encode_proto_any_value``.

Small requests (fewer than ``_FEW`` attributes) take the one-by-one path for everything.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spanlake.collector.wire import Reader, packed
from spanlake.model import encode_proto_any_value

_KEY_TAG = 0x0A  # KeyValue.key (field 1, length-delimited)
_VALUE_TAG = 0x12  # KeyValue.value (field 2, length-delimited)
_STRING_TAG = 0x0A  # AnyValue.string_value (field 1, length-delimited)
_BOOL_TAG = 0x10  # AnyValue.bool_value (field 2, varint)
_INT_TAG = 0x18  # AnyValue.int_value (field 3, varint)
_DOUBLE_TAG = 0x21  # AnyValue.double_value (field 4, fixed64)

#: Raw KeyValue bytes -> (key, encoded value) for attributes decoded one by one. Bounded by
#: clearing: the values that repeat come back within a few requests.
_CACHE: dict[bytes, tuple[str, str]] = {}
_CACHE_MAX = 8192

#: Below this many attributes the fixed cost of the vectorized path (some 60 numpy and Arrow
#: calls) exceeds decoding them one by one.
_FEW = 400

_CONSTANTS = ["btrue", "bfalse", "n"]  # pieces shared by every bool and empty value
_TRUE, _FALSE, _EMPTY = range(3)

EMPTY_STRINGS = pa.array([], pa.string())


class AttributeDecodeError(ValueError):
    """An attribute is not a valid serialized KeyValue (the whole request is corrupt)."""


def _decode_one(raw: bytes) -> tuple[str, str]:
    """(key, encoded value) of one serialized KeyValue, by the reference implementation."""
    hit = _CACHE.get(raw)
    if hit is not None:
        return hit
    try:
        kv = KeyValue.FromString(raw)
    except ProtoDecodeError as e:
        raise AttributeDecodeError(f"malformed attribute: {e}") from None
    out = (kv.key, encode_proto_any_value(kv.value))
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[raw] = out
    return out


def _decode_few(raws: list[bytes]) -> tuple[pa.Array, pa.Array]:
    if not raws:
        return EMPTY_STRINGS, EMPTY_STRINGS
    keys, values = zip(*map(_decode_one, raws))
    return pa.array(keys, pa.string()), pa.array(values, pa.string())


def decode_key_values(raws: list[bytes]) -> tuple[pa.Array, pa.Array]:
    """Keys and encoded values (two StringArrays, in order) of serialized KeyValue messages.

    Raises :class:`AttributeDecodeError` for bytes that are not a KeyValue, or invalid UTF-8.
    """
    if len(raws) < _FEW:
        return _decode_few(raws)
    return decode_key_values_at(*packed(raws))


def decode_key_values_at(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """:func:`decode_key_values` of the KeyValue messages at ``[starts[i], ends[i])`` of
    ``data`` (in order, not overlapping; other bytes may lie between them)."""
    n = len(starts)
    src = np.frombuffer(data, np.uint8)
    if n < _FEW or n == 0:
        return _decode_few([src[s:e].tobytes() for s, e in zip(starts.tolist(), ends.tolist())])
    total = int(ends[-1])
    rd = Reader(src)

    # The key, then the value running to the end of the attribute.
    klen, nb, fits = rd.varint2(starts + 1)
    kstart = starts + 1 + nb
    kend = kstart + klen
    ok = (starts < ends) & (rd.byte(starts) == _KEY_TAG) & fits & (kend < ends) & (rd.byte(kend) == _VALUE_TAG)
    vlen, nb, fits = rd.varint2(kend + 1)
    vstart = kend + 1 + nb
    ok &= fits & (vstart + vlen == ends)
    # The AnyValue: exactly one field, filling it.
    vtag = rd.byte(vstart)
    slen, nb, fits = rd.varint2(vstart + 1)
    sstart = vstart + 1 + nb
    is_str = ok & (vtag == _STRING_TAG) & fits & (sstart + slen == ends)
    is_empty = ok & (vlen == 0)
    is_bool = ok & (vtag == _BOOL_TAG) & (vlen == 2) & (rd.byte(vstart + 1) <= 1)
    is_double = ok & (vtag == _DOUBLE_TAG) & (vlen == 9)
    int_at = np.flatnonzero(ok & (vtag == _INT_TAG) & (vlen >= 2))
    ints, int_ok = rd.varints(vstart[int_at] + 1, vlen[int_at] - 1)
    int_at = int_at[int_ok]
    double_at = np.flatnonzero(is_double)
    is_fast = is_str | is_empty | is_bool | is_double
    is_fast[int_at] = True
    slow_at = np.flatnonzero(~is_fast)

    # Pieces appended after the attributes: constants, formatted numbers, slow attributes.
    int_text = list(map(str, ints[int_ok].view(np.int64).tolist()))
    double_text = list(map(repr, rd.doubles(vstart[double_at] + 1).tolist()))
    slow_raws = [src[starts[i] : ends[i]].tobytes() for i in slow_at.tolist()]
    slow = [text.encode() for pair in map(_decode_one, slow_raws) for text in pair]
    extra_lens = np.concatenate(
        (
            [len(c) for c in _CONSTANTS],
            np.fromiter(map(len, int_text), np.int64, len(int_text)) + 1,
            np.fromiter(map(len, double_text), np.int64, len(double_text)) + 1,
            np.fromiter(map(len, slow), np.int64, len(slow)),
        )
    )
    text = "".join(_CONSTANTS)
    if int_text:
        text += "i" + "i".join(int_text)
    if double_text:
        text += "d" + "d".join(double_text)
    extra = np.frombuffer(text.encode("ascii") + b"".join(slow), np.uint8)

    # Cut the attributes into [header, key, middle, string value, gap to the next] pieces.
    # Attributes off the fast path get empty key and value pieces; their own pieces are among
    # the extra ones.
    cuts = np.empty((n, 5), np.int64)
    cuts[:, 0] = starts
    cuts[:, 1] = np.where(is_fast, kstart, ends)
    cuts[:, 2] = np.where(is_fast, kend, ends)
    cuts[:, 3] = np.where(is_str, sstart - 1, ends)
    cuts[:, 4] = ends
    offsets = np.concatenate((cuts.ravel(), [total], total + np.cumsum(extra_lens))).astype(np.int32)
    buffer = np.concatenate((src[:total], extra))
    buffer[sstart[is_str] - 1] = ord("s")
    pieces = pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(buffer))

    base = 5 * n
    first_int = base + len(_CONSTANTS)
    first_double = first_int + len(int_at)
    first_slow = first_double + len(double_at)
    key_index = 5 * np.arange(n) + 1
    value_index = key_index + 2
    value_index[is_empty] = base + _EMPTY
    value_index[is_bool] = base + np.where(rd.byte(vstart[is_bool] + 1) == 1, _TRUE, _FALSE)
    value_index[int_at] = first_int + np.arange(len(int_at))
    value_index[double_at] = first_double + np.arange(len(double_at))
    key_index[slow_at] = first_slow + 2 * np.arange(len(slow_at))
    value_index[slow_at] = key_index[slow_at] + 1

    keys = pieces.take(pa.array(key_index))
    values = pieces.take(pa.array(value_index))
    try:
        keys.validate(full=True)
        values.validate(full=True)
    except pa.ArrowInvalid as e:
        raise AttributeDecodeError(f"attribute is not valid UTF-8: {e}") from None
    return keys, values
