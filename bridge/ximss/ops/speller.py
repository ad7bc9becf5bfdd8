"""spellerList and spellerCheck, on pyspellchecker's word-frequency dictionaries.

    C:<spellerList id="A1"/>
    S:<speller id="A1" speller="English"/>   (one message per installed dictionary)
    C:<spellerCheck id="A2" speller="English">the qiuck fox</spellerCheck>
    S:<spellerReport id="A2" position="4" size="5"><guess>quick</guess></spellerReport>

`position` and `size` count bytes of the XML-decoded text in UTF-8, as the spec says, so a client
can cut the word out of its own UTF-8 buffer. Without a `speller` attribute the account's
Language preference picks the dictionary.

Words are runs of letters, with apostrophes kept inside them ("don't"); words with digits or
underscores, and whole URLs and e-mail addresses, are not checked. Matching ignores case.

Guesses come from edit distance 1 only: pyspellchecker's distance 2 costs about a second per
unknown word, which one request full of garbage would turn into minutes of CPU.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spellchecker import SpellChecker

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

# Defaults of limits.max_spell_text_bytes and limits.max_spell_reports.
MAX_SPELL_TEXT = 64 * 1024  # bytes of UTF-8 text in one spellerCheck
MAX_SPELL_REPORTS = 500  # spellerReport messages for one spellerCheck; the rest go unreported
MAX_GUESSES = 5
MAX_GUESS_WORD = 40  # longer words are reported without guesses
MAX_LOADED_SPELLERS = 3  # dictionaries kept in memory (about 20-60 MB each)

# XIMSS speller name -> pyspellchecker language code. The names are the ones the Language
# preference uses, so a missing `speller` attribute can fall back to it.
SPELLERS: dict[str, str] = {
    "English": "en", "German": "de", "French": "fr", "Spanish": "es", "Italian": "it",
    "Portuguese": "pt", "Dutch": "nl", "Russian": "ru", "Arabic": "ar", "Latvian": "lv",
    "Basque": "eu", "Persian": "fa",
}  # fmt: skip
DEFAULT_SPELLER = "English"

_CHUNK = re.compile(r"\S+")
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_SKIPPED_CHUNK = re.compile(r"://|@|^\W*www\.", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    position: int  # bytes into the UTF-8 text
    size: int  # bytes


@dataclass(frozen=True, slots=True)
class Misspelling:
    position: int
    size: int
    guesses: tuple[str, ...]


def words(text: str) -> Iterator[Word]:
    """The checkable words of `text`, with their UTF-8 byte offsets and sizes."""
    done_chars = done_bytes = 0  # byte offsets are counted incrementally: linear in the text
    for chunk in _CHUNK.finditer(text):
        if _SKIPPED_CHUNK.search(chunk.group()):
            continue
        for match in _WORD.finditer(text, chunk.start(), chunk.end()):
            word = match.group()
            if any(c.isdigit() or c == "_" for c in word):
                continue
            done_bytes += len(text[done_chars : match.start()].encode())
            done_chars = match.start()
            yield Word(word, done_bytes, len(word.encode()))


def available() -> tuple[str, ...]:
    installed = set(SpellChecker.languages())
    return tuple(name for name, code in SPELLERS.items() if code in installed)


def resolve(name: str) -> str:
    """The canonical speller name; dialects ("English-US") use their language's dictionary."""
    by_lower = {known.lower(): known for known in available()}
    for candidate in (name, name.split("-", 1)[0], name.split("_", 1)[0]):
        found = by_lower.get(candidate.strip().lower())
        if found is not None:
            return found
    raise BridgeError(ErrorKind.NOT_FOUND, "unknown speller")


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=MAX_LOADED_SPELLERS)
def _load(code: str) -> SpellChecker:
    return SpellChecker(language=code, distance=1)


def _checker(speller: str) -> SpellChecker:
    # One load at a time: two sessions asking for the same new dictionary load it once.
    with _LOAD_LOCK:
        try:
            return _load(SPELLERS[speller])
        except (OSError, ValueError) as exc:
            raise BridgeError(ErrorKind.INTERNAL, "speller dictionary unavailable") from exc


def _same_case(guess: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return guess.upper()
    if like[:1].isupper():
        return guess[:1].upper() + guess[1:]
    return guess


def _guesses(checker: SpellChecker, word: str, limit: int) -> tuple[str, ...]:
    """The `limit` most frequent dictionary words one edit away, in the word's case."""
    lookup = word.replace("’", "'").lower()
    if limit <= 0 or len(lookup) > MAX_GUESS_WORD:
        return ()
    found = checker.known(checker.edit_distance_1(lookup))
    best = sorted(found, key=lambda w: (-checker[w], w))[:limit]
    return tuple(_same_case(guess, word) for guess in best)


def check(
    speller: str,
    text: str,
    max_guesses: int = MAX_GUESSES,
    max_reports: int = MAX_SPELL_REPORTS,
    max_text: int = MAX_SPELL_TEXT,
) -> list[Misspelling]:
    """Blocking (dictionary load, edit distances): run it in a worker thread."""
    if len(text.encode()) > max_text:
        raise BridgeError(ErrorKind.LIMIT, "text too large to check")
    checker = _checker(speller)
    found: list[Misspelling] = []
    for word in words(text):
        if word.text.replace("’", "'").lower() in checker:
            continue
        guesses = _guesses(checker, word.text, max_guesses)
        found.append(Misspelling(word.position, word.size, guesses))
        if len(found) >= max_reports:
            break
    return found


async def speller_list(conv: Conversation, request: Request) -> Outcome:
    for name in available():
        conv.send(codec.data("speller", request.id, {"speller": name}))
    return Outcome.DONE


async def speller_check(conv: Conversation, request: Request) -> Outcome:
    name = request.get("speller")
    if not name:
        session = conv.require_session()
        name = session.prefs.get("Language", conv.services.settings.server.language)
        try:
            speller = resolve(name)
        except BridgeError:
            speller = DEFAULT_SPELLER
    else:
        speller = resolve(name)
    text = request.element.text or ""
    limits = conv.services.settings.limits
    found = await asyncio.to_thread(check, speller, text, MAX_GUESSES, limits.max_spell_reports,
                                    limits.max_spell_text_bytes)  # fmt: skip
    for miss in found:
        report = codec.data(
            "spellerReport", request.id, {"position": miss.position, "size": miss.size}
        )
        for guess in miss.guesses:
            xml.sub(report, "guess", text=guess)
        conv.send(report)
    return Outcome.DONE
