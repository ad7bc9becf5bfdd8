"""Speller word splitting, UTF-8 byte offsets, guesses and the size limit; shipped vocabularies."""

from __future__ import annotations

import pytest

from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.ops import speller, strings


def located(text: str) -> list[tuple[str, int, int]]:
    return [(w.text, w.position, w.size) for w in speller.words(text)]


def test_offsets_count_utf8_bytes_after_non_ascii_letters() -> None:
    text = "Grüße aus Köln, the qiuck brown fox jumpd"
    data = text.encode()
    found = {
        data[m.position : m.position + m.size].decode(): m for m in speller.check("English", text)
    }
    assert "qiuck" in found and "jumpd" in found
    assert found["qiuck"].position == data.index(b"qiuck") == 23  # 20 characters, 23 bytes
    assert found["jumpd"].position == data.index(b"jumpd")
    assert found["qiuck"].size == found["jumpd"].size == 5
    assert "quick" in found["qiuck"].guesses
    assert "jumped" in found["jumpd"].guesses
    assert not {"the", "brown", "fox"} & set(found)


def test_multibyte_misspelling_size_is_in_bytes() -> None:
    text = "naïve café zürichx"
    (word,) = [w for w in speller.words(text) if w.text == "zürichx"]
    assert word.size == len("zürichx".encode()) == 8
    assert text.encode()[word.position : word.position + word.size] == "zürichx".encode()


def test_words_skip_digits_urls_and_addresses() -> None:
    text = "see http://exmple.org/pth, write to jon@exmple.org or www.exmple.org; 4ever a1 b_c"
    assert [w for w, _, _ in located(text)] == ["see", "write", "to", "or"]


def test_apostrophes_stay_inside_words() -> None:
    assert [w for w, _, _ in located("don't 'quoted' l’hôtel")] == ["don't", "quoted", "l’hôtel"]
    assert speller.check("English", "I don't know, it’s fine") == []


def test_case_is_ignored_and_guesses_follow_it() -> None:
    assert speller.check("English", "The QUICK Brown") == []
    (miss,) = speller.check("English", "Qiuck")
    assert miss.guesses[0] == "Quick"


def test_guesses_are_capped() -> None:
    (miss,) = speller.check("English", "bst", max_guesses=2)
    assert len(miss.guesses) == 2


def test_oversized_text_is_refused_with_limit() -> None:
    with pytest.raises(BridgeError) as caught:
        speller.check("English", "a" * (speller.MAX_SPELL_TEXT + 1))
    assert caught.value.kind is ErrorKind.LIMIT


def test_reports_are_capped() -> None:
    assert len(speller.check("English", "zzqx " * 50, max_reports=7)) == 7


def test_speller_names() -> None:
    assert {"English", "German", "French", "Spanish"} <= set(speller.available())
    assert speller.resolve("english") == "English"
    assert speller.resolve("English-US") == "English"
    with pytest.raises(BridgeError) as caught:
        speller.resolve("Klingon")
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_other_language() -> None:
    assert speller.check("German", "Grüße aus Köln") == []


@pytest.mark.parametrize("language", sorted(strings.languages().values()))
def test_shipped_vocabularies_parse_and_agree(language: str) -> None:
    english = strings.vocabulary("English")
    other = strings.vocabulary(language)
    assert set(other) == set(english)
    assert "MonthNames" in other and len(other["MonthNames"]) == 12


def test_language_selection_falls_back_to_english() -> None:
    assert strings.select("german") == "German"
    assert strings.select("../../etc/passwd", None, "Klingon") == "English"
    assert strings.select(None, "German", "English") == "German"
