"""The shared row cache: hits and misses, change reports, eviction, memory; and a model test."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocols import FlagChanges
from bridge.views import rows as rows_module
from bridge.views.rows import PAGE, Row, RowCache

KEY = ("a@x.test", "INBOX", 7)
SEEN = frozenset({"\\Seen"})


def row(uid: int, flags: frozenset[str] = frozenset(), **cells: str) -> Row:
    return Row(uid, flags, 100 + uid, 1_700_000_000 + uid, cells)


def test_hits_after_store_and_a_column_never_fetched_is_a_miss() -> None:
    cache = RowCache(1000)
    assert cache.columns_for(KEY, ["subject", "from"]) == ["subject", "from"]
    cache.store(
        KEY, 5, {1: row(1, subject="hi", **{"from": "Ann"}), 2: row(2, subject="", **{"from": ""})}
    )
    found, missing = cache.lookup(KEY, [1, 2, 3], ["subject"])
    assert missing == [3]
    assert found[1] == row(1, subject="hi") and found[2].cells == {"subject": ""}
    assert found[1].size == 101 and found[1].internal == 1_700_000_001
    assert cache.lookup(KEY, [1], ["to"])[1] == [1]
    # A row stored before a column was added is a miss for that column only.
    assert cache.columns_for(KEY, ["to"]) == ["subject", "from", "to"]
    found, missing = cache.lookup(KEY, [1], ["to"])
    assert missing == [1]
    assert cache.lookup(KEY, [1], ["from", "subject"])[0][1].cells == {
        "from": "Ann",
        "subject": "hi",
    }


def test_changes_update_flags_and_drop_vanished() -> None:
    cache = RowCache(1000)
    cache.store(KEY, 5, {1: row(1), 2: row(2)})
    cache.mark_dirty(KEY)
    assert cache.needs_refresh(KEY) == (True, 5)
    cache.apply(KEY, FlagChanges({1: SEEN}, frozenset({2}), 9))
    assert cache.needs_refresh(KEY) == (False, 9)
    found, missing = cache.lookup(KEY, [1, 2], [])
    assert found[1].flags == SEEN and missing == [2]
    assert len(cache) == 1


def test_changes_with_a_gap_leave_the_mailbox_dirty() -> None:
    cache = RowCache(1000)
    cache.store(KEY, 5, {1: row(1)})
    cache.apply(KEY, FlagChanges({1: SEEN}, frozenset(), 12), since=8)
    assert cache.needs_refresh(KEY) == (True, 5)
    assert cache.lookup(KEY, [1], [])[0][1].flags == frozenset()


def test_the_least_recently_read_pages_go_first() -> None:
    cache = RowCache(4 * PAGE)  # four pages
    for page in range(4):
        cache.store(KEY, 1, {page * PAGE + 1: row(page * PAGE + 1)})
    cache.lookup(KEY, [1], [])  # page 0 is read again: pages 1 and 2 are now the coldest
    cache.store(KEY, 1, {4 * PAGE + 1: row(4 * PAGE + 1)})
    # Over the bound, eviction frees a tenth of it at once: down to three pages.
    assert cache.lookup(KEY, [PAGE + 1, 2 * PAGE + 1], [])[1] == [PAGE + 1, 2 * PAGE + 1]
    assert cache.lookup(KEY, [1, 3 * PAGE + 1, 4 * PAGE + 1], [])[1] == []
    assert len(cache) == 3


def test_uidvalidity_is_part_of_the_key() -> None:
    cache = RowCache(1000)
    cache.store(KEY, 1, {1: row(1)})
    assert cache.lookup(("a@x.test", "INBOX", 8), [1], [])[1] == [1]


def test_too_many_flag_sets_start_the_cache_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows_module, "MAX_FLAG_SETS", 3)
    cache = RowCache(1000)
    cache.store(KEY, 1, {u: row(u, frozenset({f"k{u}"})) for u in (1, 2, 3)})
    assert cache.lookup(KEY, [1, 2, 3], [])[1] == []
    cache.store(KEY, 1, {4: row(4, frozenset({"k4"}))})
    assert cache.lookup(KEY, [1, 2, 3, 4], [])[1] == [1, 2, 3, 4]
    cache.store(KEY, 1, {5: row(5, frozenset({"k5"}))})
    assert cache.lookup(KEY, [5], [])[0][5].flags == {"k5"}


def test_too_many_columns_start_the_mailbox_over() -> None:
    cache = RowCache(1000)
    wide = [f"x-{n}" for n in range(rows_module.MAX_COLUMNS)]
    cache.columns_for(KEY, wide)
    cache.store(KEY, 1, {1: row(1, **dict.fromkeys(wide, "v"))})
    assert cache.columns_for(KEY, ["subject"]) == ["subject"]
    assert cache.lookup(KEY, [1], [])[1] == [1]


def test_cells_with_any_text_come_back_as_stored() -> None:
    cache = RowCache(1000)
    cache.columns_for(KEY, ["subject", "from"])
    text = "Grüße &amp; 日本 \u2028 end"
    cache.store(KEY, 1, {9: row(9, subject=text, **{"from": ""})})
    assert cache.lookup(KEY, [9], ["from", "subject"])[0][9].cells == {"from": "", "subject": text}


def test_memory_per_cached_message_is_under_150_bytes() -> None:
    """The issue's target, with three shown columns of typical length (measured: ~70 B)."""
    count = 100_000
    columns = ["date", "from", "subject"]
    gc.collect()
    tracemalloc.start()
    try:
        cache = RowCache(count * 2)
        cache.columns_for(KEY, columns)
        for start in range(1, count + 1, 50):
            batch = {
                uid: Row(
                    uid,
                    SEEN if uid % 2 else frozenset(),
                    4000 + uid,
                    1_700_000_000 + uid,
                    {
                        "date": str(1_700_000_000 + uid),
                        "from": f"Sender {uid % 100}",
                        "subject": f"Message {uid}",
                    },
                )
                for uid in range(start, start + 50)
            }
            cache.store(KEY, 1, batch)
            del batch
        gc.collect()
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(cache) == count
    assert used / count < 150, f"{used / count:.0f} bytes per cached message"


# --------------------------------------------------------------------------- model test

uids = st.integers(1, 300)
flag_sets = st.sampled_from([frozenset(), SEEN, frozenset({"\\Flagged", "$Junk"})])
texts = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("store"), st.dictionaries(uids, st.tuples(flag_sets, texts), max_size=20)
            ),
            st.tuples(st.just("flags"), st.dictionaries(uids, flag_sets, max_size=10)),
            st.tuples(st.just("vanish"), st.sets(uids, max_size=10)),
        ),
        max_size=25,
    )
)
def test_the_cache_agrees_with_a_dictionary(steps: list[tuple[str, object]]) -> None:
    """Without eviction, the cache holds exactly what a plain dict of rows would."""
    cache = RowCache(10_000)
    model: dict[int, Row] = {}
    cache.columns_for(KEY, ["subject"])
    modseq = 1
    for kind, data in steps:
        modseq += 1
        if kind == "store":
            stored = {u: row(u, f, subject=t) for u, (f, t) in data.items()}  # type: ignore[attr-defined]
            cache.store(KEY, modseq, stored)
            model.update(stored)
        elif kind == "flags":
            changes = {u: f for u, f in data.items()}  # type: ignore[attr-defined]
            cache.apply(KEY, FlagChanges(changes, frozenset(), modseq))
            for u, f in changes.items():
                if u in model:
                    model[u] = model[u]._replace(flags=f)
        else:
            cache.apply(KEY, FlagChanges({}, frozenset(data), modseq))  # type: ignore[arg-type]
            for u in data:  # type: ignore[attr-defined]
                model.pop(u, None)
        found, missing = cache.lookup(KEY, range(1, 301), ["subject"])
        assert found == model
        assert sorted(missing) == sorted(set(range(1, 301)) - set(model))
        assert len(cache) == len(model)


def test_rows_survive_export_and_load_in_another_cache() -> None:
    cache = RowCache(10_000)
    cache.columns_for(KEY, ["subject", "date"])
    stored = {u: row(u, SEEN if u % 3 else frozenset({"$Junk"}), subject=f"s{u}", date=str(u))
              for u in (*range(1, 150), 1000)}  # fmt: skip
    cache.store(KEY, 42, stored)
    cache.apply(KEY, FlagChanges({}, frozenset({5}), 43))
    blob = cache.export(KEY)
    assert blob is not None
    other = RowCache(10_000)
    other.store(("b@x.test", "INBOX", 1), 1, {1: row(1, frozenset({"x"}))})  # other numbering
    assert other.load(KEY, blob)
    assert other.needs_refresh(KEY) == (True, 43)  # to be brought up to date before use
    found, missing = other.lookup(KEY, range(1, 1001), ["date", "subject"])
    assert missing == [5, *range(150, 1000)]
    assert found == {u: r for u, r in stored.items() if u != 5}
    assert len(other) == (len(stored) - 1) + 1  # less the vanished one, plus the other mailbox


def test_damaged_exports_are_ignored() -> None:
    cache = RowCache(10_000)
    cache.store(KEY, 42, {1: row(1)})
    blob = cache.export(KEY)
    assert blob is not None
    other = RowCache(10_000)
    for damaged in (b"", b"nonsense", blob[:-1], blob[:30], b"XBR1" + blob[4:40]):
        assert not other.load(KEY, damaged)
    assert other.lookup(KEY, [1], [])[1] == [1]
    assert RowCache(10).export(KEY) is None
