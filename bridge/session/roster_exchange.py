"""Subscription stanzas between accounts of this bridge, waiting in the shared state store.

Each account's roster lives in its own IMAP METADATA, which only that account's sessions can
write (they hold its login). So a stanza for another account (a request, an answer) is left in
the state store (bridge.state: SQLite, or a store shared by replicas) until a session of that
account applies it, whichever replica it runs on, and whenever it next logs in.

Keys (account names are `name@domain`, lower case, no colons):

    ximss:roster:mail:<recipient>:<sender>  JSON {"seq": n, "ask": [[seq, stanza]...],
                                                  "answer": [[seq, stanza]...]}
    ximss:roster:senders:<recipient>        JSON list of the senders with mail waiting

"ask" holds the sender's subscribe/unsubscribe, "answer" their subscribed/unsubscribed, each
coalesced by `roster.queue` (at most two, same outcome as every stanza in order), each stanza
numbered. The recipient applies what it read, then removes exactly the stanzas it applied, by
number: whatever the sender posted meanwhile stays for next time, and nothing is applied twice.

Unlike the rest of the state store this is not a cache: losing it loses the stanzas in flight
(the rosters themselves are safe in METADATA; a lost request is asked again, as rosterSet
subscribe always sends it). The store offers get/set/delete, nothing atomic. In one process
every change to a recipient's keys holds that recipient's lock; between replicas two writes to
the same key at the same moment can lose one. The senders list is a hint: a recipient also
looks at the mail of everyone in its roster once per session, so a lost entry only delays an
answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import ANSWER, ASK, Entry, Stanza, queue
from bridge.state import Store

log = logging.getLogger("bridge.roster")

MAX_SENDERS = 200  # accounts with stanzas waiting for one recipient
MAX_LETTER_BYTES = 512
LOCKS = 64  # in-process locks, shared by recipients by hash: bounded, nothing to clean up


def mail_key(recipient: str, sender: str) -> str:
    return f"ximss:roster:mail:{recipient}:{sender}"


def senders_key(recipient: str) -> str:
    return f"ximss:roster:senders:{recipient}"


@dataclass(frozen=True, slots=True)
class Letter:
    """What one sender has left for one recipient: their ask stanzas, then their answers."""

    sender: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class _Record:
    seq: int = 0
    ask: tuple[Entry, ...] = ()
    answer: tuple[Entry, ...] = ()

    @classmethod
    def parse(cls, sender: str, raw: bytes | None) -> _Record:
        if raw is None:
            return cls()
        try:
            if len(raw) > MAX_LETTER_BYTES:
                raise ValueError("too long")
            data = json.loads(raw)
            ask = tuple((int(n), Stanza(v)) for n, v in data["ask"])
            answer = tuple((int(n), Stanza(v)) for n, v in data["answer"])
            record = cls(int(data["seq"]), ask[-2:], answer[-2:])
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("dropping a damaged roster letter from %s: %s", sender, exc)
            return cls()
        if not ({s for _, s in ask} <= set(ASK) and {s for _, s in answer} <= set(ANSWER)):
            return cls()
        return record

    def dump(self) -> bytes:
        data = {
            "seq": self.seq,
            "ask": [[n, s.value] for n, s in self.ask],
            "answer": [[n, s.value] for n, s in self.answer],
        }
        return json.dumps(data, separators=(",", ":")).encode()


def _names(raw: bytes | None) -> list[str]:
    try:
        names = json.loads(raw) if raw is not None else []
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


class Exchange:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._locks = [asyncio.Lock() for _ in range(LOCKS)]

    @asynccontextmanager
    async def _recipient(self, recipient: str) -> AsyncIterator[None]:
        """The recipient's lock, with state store failures translated (the cause is chained)."""
        async with self._locks[zlib.crc32(recipient.encode()) % LOCKS]:
            try:
                yield
            except BridgeError:
                raise
            except Exception as exc:
                raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "the state store failed") from exc

    async def _set_names(self, recipient: str, names: list[str]) -> None:
        await self.store.set(senders_key(recipient), json.dumps(names).encode())

    async def post(self, sender: str, recipient: str, stanza: Stanza) -> None:
        """Leave a stanza for the recipient. LIMIT when too many senders already wait."""
        async with self._recipient(recipient):
            names = _names(await self.store.get(senders_key(recipient)))
            if sender not in names and len(names) >= MAX_SENDERS:
                raise BridgeError(ErrorKind.LIMIT, "too many requests wait for this contact")
            key = mail_key(recipient, sender)
            record = _Record.parse(sender, await self.store.get(key))
            entry = (record.seq + 1, stanza)
            if stanza in ASK:
                record = _Record(entry[0], queue(record.ask, entry), record.answer)
            else:
                record = _Record(entry[0], record.ask, queue(record.answer, entry))
            # The letter first: a reader that finds the name always finds the letter.
            await self.store.set(key, record.dump())
            if sender not in names:
                await self._set_names(recipient, [*names, sender])

    async def letters(self, recipient: str, also: Iterable[str] = ()) -> list[Letter]:
        """The letters waiting for the recipient: from the senders list and from `also`."""
        async with self._recipient(recipient):
            names = _names(await self.store.get(senders_key(recipient)))
            found = []
            for sender in dict.fromkeys([*names, *also]):
                raw = await self.store.get(mail_key(recipient, sender))
                if raw is not None and sender != recipient:
                    record = _Record.parse(sender, raw)
                    found.append(Letter(sender, record.ask + record.answer))
            return found

    async def settle(self, recipient: str, sender: str, applied: Collection[int]) -> None:
        """Remove the stanzas the recipient has applied (by number); the letter goes when
        nothing is left of it."""
        async with self._recipient(recipient):
            key = mail_key(recipient, sender)
            raw = await self.store.get(key)
            if raw is None:
                return
            record = _Record.parse(sender, raw)
            ask = tuple(e for e in record.ask if e[0] not in applied)
            answer = tuple(e for e in record.answer if e[0] not in applied)
            if ask or answer:
                if (ask, answer) != (record.ask, record.answer):
                    await self.store.set(key, _Record(record.seq, ask, answer).dump())
                return
            await self.store.delete(key)
            names = _names(await self.store.get(senders_key(recipient)))
            if sender in names:
                names.remove(sender)
                await self._set_names(recipient, names)
