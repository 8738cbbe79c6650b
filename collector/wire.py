"""Vectorized reads of the protobuf wire format: many messages of one type at once, with numpy.

The decoders keep messages they read in bulk as raw bytes in one buffer (a packed Arrow binary
array) and walk all of them in lockstep: :class:`Reader` reads bytes, short varints and fixed
numbers at an array of positions; :class:`FieldWalk` steps through the fields of every message
in field-number order, the order protobuf serializers write them in; :func:`pieces` copies
byte ranges of the buffer out as an Arrow string or binary array in one ``take``.

A walk only handles the encodings it expects (known tags in order, lengths of at most two
varint bytes). Anything else raises :class:`Unusual`, and the caller decodes that input with
the official classes instead, so unusual but valid input is decoded exactly as protobuf would.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["FieldWalk", "Reader", "Unusual", "all_zero", "packed", "pieces", "strings", "varint"]


class Unusual(Exception):
    """The input is not in the encoding the vectorized walk handles (it may still be valid)."""


class Reader:
    """Vectorized reads from a byte buffer; positions past the end read the last byte.

    Such reads only happen for malformed input, whose checks fail anyway.
    """

    def __init__(self, buf: np.ndarray) -> None:
        self.buf = buf if len(buf) else np.zeros(1, np.uint8)
        self.last = len(self.buf) - 1

    def byte(self, pos: np.ndarray) -> np.ndarray:
        return self.buf[np.minimum(pos, self.last)]

    def varint2(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray | int, np.ndarray]:
        """Varints of at most two bytes at ``pos``: (value, byte count, fits in two bytes)."""
        b0 = self.byte(pos).astype(np.int64)
        one = b0 < 0x80
        if one.all():  # the usual case: every length below 128
            return b0, 1, one
        b1 = self.byte(pos + 1).astype(np.int64)
        return np.where(one, b0, (b0 & 0x7F) | (b1 << 7)), np.where(one, 1, 2), one | (b1 < 0x80)

    def varints(self, pos: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Varints of exactly ``size`` bytes (1..10) at ``pos``: (uint64 value, well formed)."""
        value = np.zeros(len(pos), np.uint64)
        ok = (size >= 1) & (size <= 10)
        for k in range(int(size.max(initial=0))):
            b = self.byte(pos + k)
            inside = k < size
            value |= np.where(inside, b & 0x7F, 0).astype(np.uint64) << np.uint64(7 * k)
            ok &= np.where(k < size - 1, b >= 0x80, True) & np.where(k == size - 1, b < 0x80, True)
        return value, ok

    def fixed(self, pos: np.ndarray, size: int) -> np.ndarray:
        """Little-endian fixed64 (``size`` 8, as uint64) or fixed32 (4, as uint32) at ``pos``."""
        raw = self.byte(pos[:, None] + np.arange(size))
        return np.ascontiguousarray(raw).view("<u8" if size == 8 else "<u4").ravel()

    def doubles(self, pos: np.ndarray) -> np.ndarray:
        return self.fixed(pos, 8).view("<f8")


def packed(raws: list[bytes]) -> tuple[pa.Buffer, np.ndarray, np.ndarray]:
    """Byte strings in one buffer: (buffer, start of each, end of each)."""
    array = pa.array(raws, pa.binary())
    bounds = np.frombuffer(array.buffers()[1], np.int32, len(raws) + 1).astype(np.int64)
    return array.buffers()[2] or pa.py_buffer(b""), bounds[:-1], bounds[1:]


def pieces(
    data: pa.Buffer, starts: np.ndarray, ends: np.ndarray, type_: pa.DataType = pa.string(),
    null: np.ndarray | None = None,
) -> pa.Array:
    """The ranges ``[starts[i], ends[i])`` of ``data`` as an Arrow array of ``type_`` (string or
    binary), null where ``null`` is set. The ranges must be in order and not overlap.

    Strings are not checked here: call ``validate(full=True)`` for UTF-8.
    """
    n = len(starts)
    offsets = np.empty(2 * n + 1, np.int32)
    offsets[0] = 0
    offsets[1::2] = starts
    offsets[2::2] = ends
    # Gaps and ranges alternate; the ranges are the odd pieces.
    whole = pa.Array.from_buffers(type_, 2 * n, [None, pa.py_buffer(offsets), data])
    return whole.take(pa.array(np.arange(1, 2 * n, 2), mask=null))


def varint(value: int) -> bytes:
    """The varint encoding of a non-negative ``value``."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_TAG_BYTES = {tag: bytes([tag]) for tag in range(0x80)}


def strings(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """:func:`pieces` as a string array; raises :class:`Unusual` for one that is not UTF-8
    (the official parse then reports it)."""
    if not (ends > starts).any():
        return pa.repeat(pa.scalar("", pa.string()), len(starts))
    out = pieces(data, starts, ends)
    try:
        out.validate(full=True)
    except pa.ArrowInvalid:
        raise Unusual("a string that is not UTF-8") from None
    return out


def all_zero(rd: Reader, starts: np.ndarray, size: int) -> np.ndarray:
    """Whether the ``size`` bytes at each of ``starts`` are all zero (ids that mean "none")."""
    return ~rd.byte(starts[:, None] + np.arange(size)).any(axis=1)


class FieldWalk:
    """A cursor in every message of a buffer, moved field by field in field-number order.

    Each read consumes the field at the cursor of the messages that have it there and leaves
    the others where they are (proto3 leaves default values out). :meth:`finish` checks that
    every message was read to its end: a field out of order, repeated, unknown or past the end
    raises :class:`Unusual`.
    """

    def __init__(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.rd = Reader(buf)
        self.pos = starts.copy()
        self.ends = ends

    def _at(self, tag: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Messages (of ``rows``, or all) whose next field has ``tag`` (``field << 3 | wire
        type``), and the tag's length in bytes."""
        pos = self.pos if rows is None else self.pos[rows]
        here = pos < (self.ends if rows is None else self.ends[rows])
        tag_bytes = _TAG_BYTES.get(tag) or varint(tag)
        for i, b in enumerate(tag_bytes):
            here &= self.rd.byte(pos + i) == b
        return (np.flatnonzero(here) if rows is None else rows[here]), len(tag_bytes)

    def fixed(self, tag: int, size: int) -> np.ndarray:
        """A fixed64 (``size`` 8) or fixed32 (4) field; 0 where absent."""
        out = np.zeros(len(self.pos), np.uint64 if size == 8 else np.uint32)
        at, skip = self._at(tag)
        if len(at):
            out[at] = self.rd.fixed(self.pos[at] + skip, size)
            self.pos[at] += skip + size
        return out

    def small_varint(self, tag: int) -> np.ndarray:
        """A varint field holding 0..127 (one byte); 0 where absent."""
        out = np.zeros(len(self.pos), np.uint8)
        at, skip = self._at(tag)
        if len(at):
            value = self.rd.byte(self.pos[at] + skip)
            if (value >= 0x80).any():
                raise Unusual(f"varint field {tag >> 3} above 127")
            out[at] = value
            self.pos[at] += skip + 1
        return out

    def _lengths(self, at: np.ndarray, skip: int) -> tuple[np.ndarray, np.ndarray]:
        length, size, fits = self.rd.varint2(self.pos[at] + skip)
        if not fits.all():
            raise Unusual("length of more than two varint bytes")
        start = self.pos[at] + skip + size
        end = start + length
        self.pos[at] = end
        return start, end

    def length_delimited(self, tag: int) -> tuple[np.ndarray, np.ndarray]:
        """A bytes, string or message field: (start, end) of its payload in the buffer; an
        empty range at the cursor where absent."""
        start, end = self.pos.copy(), self.pos.copy()
        at, skip = self._at(tag)
        if len(at):
            start[at], end[at] = self._lengths(at, skip)
        return start, end

    def repeated(self, tag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A repeated length-delimited field: (message index, start, end) of every element,
        by message, then in order within a message."""
        rows, starts, ends = [], [], []
        at, skip = self._at(tag)
        while len(at):
            start, end = self._lengths(at, skip)
            rows.append(at)
            starts.append(start)
            ends.append(end)
            at, skip = self._at(tag, at)
        if not rows:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        row = np.concatenate(rows)
        order = np.argsort(row, kind="stable")
        return row[order], np.concatenate(starts)[order], np.concatenate(ends)[order]

    def finish(self) -> None:
        if not np.array_equal(self.pos, self.ends):
            raise Unusual("fields out of order, repeated, unknown or past the end")
