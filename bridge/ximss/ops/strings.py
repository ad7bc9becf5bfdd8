"""readStrings: the client vocabulary shipped in bridge/data/strings/<Language>.json.

    C:<readStrings id="A1"/>
    S:<strings id="A1" language="English">
        <string name="AppendButton">Append</string>
        <strings name="AppendModes"><string name="simple">Simple Mode</string>...</strings>
      </strings>

Each file maps a name either to a string (a `string` element) or to an object of strings (a
`strings` element, the spec's dictionary-type element). The language is the `language` attribute,
else the account's Language preference, else the configured default; a language without a file
gets English, and the `language` attribute of the answer says which one was sent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

FALLBACK_LANGUAGE = "English"
SUFFIX = ".json"

Entry = str | Mapping[str, str]
Vocabulary = Mapping[str, Entry]


def _folder() -> Traversable:
    return resources.files("bridge").joinpath("data", "strings")


@functools.cache
def languages() -> Mapping[str, str]:
    """Lower-cased language name -> the name as its file spells it. Only these names are ever
    opened, so a client's `language` never becomes a path."""
    return MappingProxyType(
        {
            item.name[: -len(SUFFIX)].lower(): item.name[: -len(SUFFIX)]
            for item in _folder().iterdir()
            if item.name.endswith(SUFFIX) and item.is_file()
        }
    )


def _parse(raw: object) -> Vocabulary:
    if not isinstance(raw, dict):
        raise ValueError("a vocabulary is an object")
    entries: dict[str, Entry] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            entries[name] = value
        elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            entries[name] = MappingProxyType(dict(value))
        else:
            raise ValueError(f"{name}: a vocabulary entry is a string or an object of strings")
    return MappingProxyType(entries)


@functools.lru_cache(maxsize=8)
def vocabulary(language: str) -> Vocabulary:
    """The parsed vocabulary of a language listed by `languages()`."""
    try:
        with _folder().joinpath(language + SUFFIX).open("rb") as data:
            return _parse(json.load(data))
    except (OSError, ValueError) as exc:
        raise BridgeError(ErrorKind.INTERNAL, "vocabulary unavailable") from exc


def select(*wanted: str | None) -> str:
    """The first wanted language that has a vocabulary, else English."""
    known = languages()
    for name in wanted:
        if name and name.strip().lower() in known:
            return known[name.strip().lower()]
    return FALLBACK_LANGUAGE


async def read_strings(conv: Conversation, request: Request) -> Outcome:
    preference = conv.session.prefs.get("Language") if conv.session is not None else None
    language = select(request.get("language"), preference, conv.services.settings.server.language)
    answer = codec.data("strings", request.id, {"language": language})
    for name, value in vocabulary(language).items():
        if isinstance(value, str):
            xml.sub(answer, "string", {"name": name}, value)
        else:
            group = xml.sub(answer, "strings", {"name": name})
            for key, text in value.items():
                xml.sub(group, "string", {"name": key}, text)
    conv.send(answer)
    return Outcome.DONE
