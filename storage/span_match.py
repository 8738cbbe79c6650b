"""The reference semantics of one Jaeger tag condition on one span, in Python.

Stores that search in SQL push the same conditions down (``ducklake/search_sql.py``); the
memory store and query-side filters of already-read spans use this function, so all of them
agree on what ``key=value`` means.
"""

from __future__ import annotations

from spanlake.model import SPAN_KIND_NUMBERS, Span, string_form

_STATUS_NUMBERS = {"unset": 0, "ok": 1, "error": 2}


def has_attribute(attrs: dict[str, str], key: str, text: str) -> bool:
    """Whether ``attrs`` (encoded values) holds ``key`` with the string form ``text``."""
    enc = attrs.get(key)
    return enc is not None and string_form(enc) == text


def tag_matches(s: Span, key: str, text: str) -> bool:
    """Jaeger's tag semantics: special keys, ``resource.<key>``, else any attribute level."""
    if key == "error" and text in ("true", "false"):
        return (s.status_code == 2) == (text == "true")
    if key == "span.kind":
        return SPAN_KIND_NUMBERS.get(text) == s.kind
    if key == "span.status":
        return _STATUS_NUMBERS.get(text) == s.status_code
    if key == "scope.name":
        return s.scope.name == text
    if key == "scope.version":
        return s.scope.version == text
    if key.startswith("resource.") and len(key) > len("resource."):
        return has_attribute(s.resource.attributes, key[len("resource.") :], text)
    return (
        has_attribute(s.attributes, key, text)
        or any(has_attribute(e.attributes, key, text) for e in s.events)
        or any(has_attribute(link.attributes, key, text) for link in s.links)
        or has_attribute(s.scope.attributes, key, text)
        or has_attribute(s.resource.attributes, key, text)
    )
