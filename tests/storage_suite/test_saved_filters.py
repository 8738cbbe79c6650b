"""Value filters saved beside the store (``value_index.ValueIndex`` with a ``cache_dir``): a
reopened store searches with the filters an earlier one built, without building them again and
with the same answers; a saved copy that does not fit its file is ignored; the copies of files
that compaction removed are swept; a read-only store writes none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spanlake.storage.api import TraceQuery
from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

from .builders import BASE_NS, MS, SEC, BatchBuilder, sid, tid

QUERIES = [TraceQuery(attributes=(("user", "u7"),), limit=1000), TraceQuery(attributes=(("user", "nobody"),), limit=1000),
           TraceQuery(attributes=(("user", "u3"), ("plan", "gold")), limit=1000)]


def _options(root: Path, **kw: object) -> DuckLakeOptions:
    return DuckLakeOptions(data_dir=str(root), maintenance_interval_s=0, cleanup_grace_s=0, **kw)  # type: ignore[arg-type]


def _write(store: DuckLakeStore, commits: int = 3) -> None:
    for c in range(commits):
        b = BatchBuilder()
        for i in range(300):
            n = c * 300 + i
            b.span(tid(f"sf{n}"), sid(1), None, name="GET /", start_ns=BASE_NS + n * SEC, duration_ns=MS,
                   service="sf-svc", attributes={"user": f"u{n % 50}", "plan": "gold" if n % 3 else "free"})
        store.write_spans(b.build()).result(timeout=60)


def _answers(store: DuckLakeStore) -> list[list[bytes]]:
    return [sorted(t.trace_id for t in store.find_trace_ids(q)) for q in QUERIES]


def test_a_reopened_store_searches_with_the_saved_filters(tmp_path: Path) -> None:
    first = DuckLakeStore(_options(tmp_path))
    _write(first)
    expected = _answers(first)
    assert first._value_index.built_runs > 0  # noqa: SLF001
    assert expected[0] and not expected[1] and expected[2]
    first.close()
    saved = sorted((tmp_path / "filters").glob("*.npz"))
    assert len(saved) == 3  # one per commit file

    again = DuckLakeStore(_options(tmp_path))
    assert _answers(again) == expected
    assert again._value_index.built_runs == 0  # noqa: SLF001
    again.close()

    reader = DuckLakeStore(_options(tmp_path, read_only=True))
    assert _answers(reader) == expected and reader._value_index.built_runs == 0  # noqa: SLF001
    reader.close()


def test_a_saved_copy_that_does_not_fit_its_file_is_ignored(tmp_path: Path) -> None:
    first = DuckLakeStore(_options(tmp_path))
    _write(first, commits=1)
    expected = _answers(first)
    first.close()
    (saved,) = (tmp_path / "filters").glob("*.npz")
    with np.load(saved) as z:
        parts = dict(z)
    # Claim the filters of another file layout, all bits clear: trusted, they would hide every row.
    parts["rows"] = parts["rows"] + 1
    parts["packed"] = np.zeros_like(parts["packed"])
    np.savez(saved, **parts)
    again = DuckLakeStore(_options(tmp_path))
    assert _answers(again) == expected
    assert again._value_index.built_runs > 0  # noqa: SLF001
    again.close()
    saved.write_bytes(b"not a zip file")
    torn = DuckLakeStore(_options(tmp_path))
    assert _answers(torn) == expected
    torn.close()


def test_compaction_sweeps_the_copies_of_removed_files(tmp_path: Path) -> None:
    store = DuckLakeStore(_options(tmp_path))
    _write(store)
    _answers(store)
    before = {p.name for p in (tmp_path / "filters").glob("*.npz")}
    assert len(before) == 3
    store.compact()  # merges the three commit files; their copies go
    assert not before & {p.name for p in (tmp_path / "filters").glob("*.npz")}
    expected_after = _answers(store)
    assert expected_after[0]
    assert len(list((tmp_path / "filters").glob("*.npz"))) == 1  # the merged file's
    store.close()


def test_a_read_only_store_saves_nothing(tmp_path: Path) -> None:
    writer = DuckLakeStore(_options(tmp_path))
    _write(writer, commits=1)
    writer.close()
    reader = DuckLakeStore(_options(tmp_path, read_only=True))
    assert _answers(reader)[0]
    assert reader._value_index.built_runs > 0  # noqa: SLF001
    reader.close()
    assert not list((tmp_path / "filters").glob("*.npz"))
