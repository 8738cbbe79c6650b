"""Hypothesis strategies shared by the decoder tests."""

from __future__ import annotations

from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def scalar_any_values(max_text: int = 300, max_bytes: int = 20) -> st.SearchStrategy[AnyValue]:
    """Every scalar kind of ``AnyValue``, and the empty one, with edge values (NaN, the int64
    bounds, any Unicode)."""
    return st.one_of(
        st.text(max_size=max_text).map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        st.floats(allow_nan=True).map(lambda f: AnyValue(double_value=f)),
        st.binary(max_size=max_bytes).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    )
