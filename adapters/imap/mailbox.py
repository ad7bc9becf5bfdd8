"""A mailbox opened for folders: views by SORT/SEARCH, summaries by FETCH, CONDSTORE changes,
and the message operations, on a connection that has the mailbox selected.

Each open mailbox gets a connection of its own when the session can open more (password logins),
so folders on different mailboxes never make each other re-SELECT; otherwise the session's one
connection is shared and re-selects as needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.parser
import email.policy
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from adapters.imap.bodystructure import parse_bodystructure
from adapters.imap.client import ImapClient, Result
from adapters.imap.fields import header_values, internal_date
from adapters.imap.journal import ChangeJournal
from adapters.imap.wire import Arg, Atom, Raw, Value, parse_sequence_set, sequence_set
from adapters.protocols import (
    FlagChanges,
    Located,
    MailboxStatus,
    MessageSummary,
    MimePart,
    ViewQuery,
)
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.imap")

# XIMSS sort fields the server sorts itself (RFC 5256, RFC 5957 display forms preferred).
SORT_KEYS: dict[str, str] = {
    "date": "DATE",
    "internaldate": "ARRIVAL",
    "subject": "SUBJECT",
    "size": "SIZE",
    "cc": "CC",
    "from": "DISPLAYFROM",
    "to": "DISPLAYTO",
    "e-from": "FROM",
    "e-to": "TO",
}
DISPLAY_FALLBACK = {"DISPLAYFROM": "FROM", "DISPLAYTO": "TO"}
# System flags have their own SEARCH keys; keywords use KEYWORD/UNKEYWORD.
SEARCH_SET = {"\\SEEN": "SEEN", "\\ANSWERED": "ANSWERED", "\\FLAGGED": "FLAGGED",
              "\\DELETED": "DELETED", "\\DRAFT": "DRAFT", "\\RECENT": "RECENT"}  # fmt: skip
SEARCH_UNSET = {"\\SEEN": "UNSEEN", "\\ANSWERED": "UNANSWERED", "\\FLAGGED": "UNFLAGGED",
                "\\DELETED": "UNDELETED", "\\DRAFT": "UNDRAFT", "\\RECENT": "OLD"}  # fmt: skip
FETCH_CHUNK = 5000
# IMAP section numbers with an optional MIME/HEADER/TEXT suffix; nothing else reaches the wire.
_SECTION = re.compile(
    r"^(?:[1-9][0-9]{0,4}(?:\.[1-9][0-9]{0,4}){0,19}(?:\.(?:MIME|HEADER|TEXT))?|HEADER|TEXT|)$"
)
_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# Subscribe (server mailbox name, callback) to change events; returns the unsubscriber.
Watch = Callable[[str, Callable[[], None]], Callable[[], None]]
# Opens a fresh, authenticated connection for the mailbox's own use (password logins).
Connect = Callable[[], Awaitable[ImapClient]]


class ImapOpenMailbox:
    def __init__(self, name: str, server_name: str, client: ImapClient, shared: bool,
                 to_server: Callable[[str], str], watch: Watch | None,
                 connect: Connect | None = None) -> None:  # fmt: skip
        self.name = name
        self._server_name = server_name
        self._client = client
        # A shared connection may have another mailbox selected: re-select before each use.
        self._shared = shared
        self._to_server = to_server
        self._watch = watch
        self._unwatch: Callable[[], None] | None = None
        self._closed = False
        # A connection of its own that was lost (a server restart) is opened again with this.
        self._connect = None if shared else connect
        self._reconnect_lock = asyncio.Lock()
        # On a connection of its own, what the server says of changes between syncs.
        self._journal = ChangeJournal()
        if not shared:
            client.on_untagged = self._journal.observe

    @classmethod
    async def open(
        cls,
        name: str,
        server_name: str,
        client: ImapClient,
        shared: bool,
        to_server: Callable[[str], str],
        watch: Watch | None,
        connect: Connect | None = None,
    ) -> ImapOpenMailbox:
        mailbox = cls(name, server_name, client, shared, to_server, watch, connect)
        await _enable_qresync(client)
        await mailbox._select()
        return mailbox

    async def _reopen(self) -> None:
        """The folder's own connection was lost: log in and select again. What changed
        meanwhile is not in the journal (it had a gap), so the next sync asks CHANGEDSINCE."""
        assert self._connect is not None
        async with self._reconnect_lock:
            if not self._client.closed:
                return
            log.info("reopening a mailbox whose IMAP connection was lost")
            client = await self._connect()
            if self._closed:  # closed while logging in: its close() did not see this one
                await client.close()
                raise BridgeError(ErrorKind.NOT_FOUND, "folder is closed")
            try:
                await _enable_qresync(client)
                self._journal.drop()
                client.on_untagged = self._journal.observe
                self._client = client
                await self._select()
            except BaseException:
                await client.close()
                raise

    async def _select(self) -> Result:
        args: list[Arg] = [self._server_name]
        if self._client.has("CONDSTORE"):
            args.append([Atom("CONDSTORE")])
        try:
            result = await self._client.execute("SELECT", *args)
        except BridgeError as exc:
            if exc.kind is ErrorKind.BACKEND_REFUSED:
                raise BridgeError(ErrorKind.NOT_FOUND) from exc
            raise
        self._client.selected = self._server_name
        return result

    async def _current(self) -> ImapClient:
        """The connection, caught up with what other clients did (a NOOP): Dovecot judges
        EXPUNGE and UID COPY/MOVE by the connection's view, so a message expunged or marked
        Deleted elsewhere would otherwise be refused (EXPUNGEISSUED) or missed."""
        client = await self._ready()
        await client.execute("NOOP")
        return client

    async def _ready(self) -> ImapClient:
        if self._closed:
            raise BridgeError(ErrorKind.NOT_FOUND, "folder is closed")
        if self._client.closed:
            if self._connect is None:
                raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "IMAP connection lost")
            await self._reopen()
        if self._shared and self._client.selected != self._server_name:
            await self._select()
        return self._client

    @property
    def closed(self) -> bool:
        return self._closed

    def on_change(self, callback: Callable[[], None] | None) -> None:
        """Changes reach us from the account's watcher of this mailbox (IDLE), shared by every
        folder of every session showing it."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if callback is not None and self._watch is not None:
            self._unwatch = self._watch(self._server_name, callback)

    # -- reading ------------------------------------------------------------------------

    async def status(self) -> MailboxStatus:
        client = await self._ready()
        items = "MESSAGES UIDNEXT UIDVALIDITY UNSEEN" + (
            " HIGHESTMODSEQ" if client.has("CONDSTORE") else ""
        )
        await client.execute("NOOP")
        result = await client.execute("STATUS", self._server_name, Raw(f"({items})"),
                                      wants=("STATUS",))  # fmt: skip
        found = result.of("STATUS")
        values: dict[str, int] = {}
        if found and isinstance(found[0].values[1], list):
            pairs = found[0].values[1]
            values = {
                str(k).upper(): int(str(v)) for k, v in zip(pairs[::2], pairs[1::2], strict=False)
            }
        status = MailboxStatus(
            uidvalidity=values.get("UIDVALIDITY", 0), uidnext=values.get("UIDNEXT", 0),
            messages=values.get("MESSAGES", 0), unseen=values.get("UNSEEN", 0),
            highestmodseq=values.get("HIGHESTMODSEQ", 0),
        )  # fmt: skip
        # A view built from here on knows everything up to this point.
        self._anchor(client, status.highestmodseq, status.uidnext)
        return status

    def _anchor(self, client: ImapClient, modseq: int, uidnext: int) -> None:
        if self._journals(client) and modseq and uidnext:
            self._journal.anchor(modseq, uidnext)
        else:
            self._journal.drop()

    def _journals(self, client: ImapClient) -> bool:
        return not self._shared and "QRESYNC" in client.enabled

    def _criteria(self, query: ViewQuery) -> list[Arg]:
        criteria: list[Arg] = []
        for flag in query.flags_set:
            key = SEARCH_SET.get(flag.upper())
            criteria += [Atom(key)] if key else [Atom("KEYWORD"), Atom(flag)]
        for flag in query.flags_unset:
            key = SEARCH_UNSET.get(flag.upper())
            criteria += [Atom(key)] if key else [Atom("UNKEYWORD"), Atom(flag)]
        if query.text is not None:
            field = (query.text_field or "").lower()
            if not field:
                criteria += [Atom("TEXT"), query.text]
            elif field == "body":
                criteria += [Atom("BODY"), query.text]
            else:
                criteria += [Atom("HEADER"), query.text_field, query.text]
        return criteria or [Atom("ALL")]

    async def view(self, query: ViewQuery) -> list[int]:
        client = await self._ready()
        # A NOOP first lets the server report expunges it holds back during UID commands.
        await client.execute("NOOP")
        criteria = self._criteria(query)
        field = (query.sort_field or "").lower()
        key = SORT_KEYS.get(field)
        if key in DISPLAY_FALLBACK and not client.has("SORT=DISPLAY"):
            key = DISPLAY_FALLBACK[key]
        if key is not None and client.has("SORT"):
            program = f"(REVERSE {key})" if query.descending else f"({key})"
            return await self._sorted(client, program, criteria)
        uids = await self._search(client, criteria)
        if field in ("", "uid"):
            return uids[::-1] if query.descending else uids
        return await self._sorted_here(uids, query.sort_field or "", query.descending)

    async def matching(self, query: ViewQuery, uids: Sequence[int]) -> set[int]:
        if not uids:
            return set()
        client = await self._ready()
        criteria: list[Arg] = [Atom("UID"), Raw(sequence_set(uids)), *self._criteria(query)]
        return set(await self._search(client, criteria))

    async def _sorted(self, client: ImapClient, program: str, criteria: list[Arg]) -> list[int]:
        charset = Atom("UTF-8")
        if client.has("ESORT"):
            result = await client.execute("UID SORT", Raw("RETURN (ALL)"), Raw(program), charset,
                                          *criteria, wants=("ESEARCH",))  # fmt: skip
            return _esearch_all(result)
        result = await client.execute("UID SORT", Raw(program), charset, *criteria,
                                      wants=("SORT",))  # fmt: skip
        return [int(str(v)) for item in result.of("SORT") for v in item.values]

    async def _search(self, client: ImapClient, criteria: list[Arg]) -> list[int]:
        if client.has("ESEARCH"):
            result = await client.execute("UID SEARCH", Raw("RETURN (ALL)"), Raw("CHARSET UTF-8"),
                                          *criteria, wants=("ESEARCH",))  # fmt: skip
            return sorted(_esearch_all(result))
        result = await client.execute("UID SEARCH", Raw("CHARSET UTF-8"), *criteria,
                                      wants=("SEARCH",))  # fmt: skip
        return sorted(int(str(v)) for item in result.of("SEARCH") for v in item.values)

    async def _sorted_here(self, uids: list[int], field: str, descending: bool) -> list[int]:
        """Fields IMAP cannot sort by (Reply-To, X-Mailer, Pty...): sort on their raw values."""
        summaries = await self.summaries(uids, [field])

        def key(uid: int) -> str:
            summary = summaries.get(uid)
            return (summary.headers.get(field, "") if summary else "").lower()

        # IMAP SORT keeps ties in ascending UID order even when reversed; a stable sort of
        # the ascending UIDs with reverse=True does the same.
        return sorted(uids, key=key, reverse=descending)

    async def summaries(
        self, uids: Sequence[int], header_fields: Sequence[str], *, with_structure: bool = False
    ) -> dict[int, MessageSummary]:
        if not uids:
            return {}
        client = await self._ready()
        fields = sorted({f for f in header_fields if f})
        items = "UID FLAGS RFC822.SIZE INTERNALDATE"
        if with_structure:
            items += " BODYSTRUCTURE"
        if fields:
            items += f" BODY.PEEK[HEADER.FIELDS ({' '.join(fields)})]"
        found: dict[int, MessageSummary] = {}
        ordered = sorted(set(uids))
        for start in range(0, len(ordered), FETCH_CHUNK):
            chunk = ordered[start : start + FETCH_CHUNK]
            result = await client.execute("UID FETCH", Raw(sequence_set(chunk)), Raw(f"({items})"),
                                          wants=("FETCH",))  # fmt: skip
            wanted = set(chunk)
            for item in result.of("FETCH"):
                summary = _summary(item.values[0] if item.values else None, fields)
                # The server may push a flags-only FETCH for a change made elsewhere: it is no
                # summary, and must not replace one.
                if summary is not None and summary.uid in wanted:
                    found[summary.uid] = summary
        return found

    async def changes_since(self, modseq: int, *, keep: bool = False) -> FlagChanges:
        client = await self._ready()
        if not modseq or not client.has("CONDSTORE"):
            status = await self.status()
            result = await client.execute("UID FETCH", Raw("1:*"), Raw("(UID FLAGS)"),
                                          wants=("FETCH",))  # fmt: skip
            return FlagChanges(_flags_of(result), frozenset(), status.highestmodseq, complete=False)
        # Only the folder's own syncs move the journal on; other readers leave it as it is.
        if self._journal.serves(modseq):
            return await self._journal_changes(client, keep)
        own = not keep and self._journals(client)
        if own:
            self._journal.restart()
        # NOOP first, and not pipelined: "1:*" only reaches messages the server has announced
        # to this connection, and Dovecot defers announcing while pipelined commands wait.
        await client.execute("NOOP")
        if own:
            # What arrived until now, the FETCH below sees; what arrives while it runs, not.
            self._journal.arrived = False
        qresync = client.has("QRESYNC")
        modifier = f"(CHANGEDSINCE {modseq}" + (" VANISHED)" if qresync else ")")
        result = await client.execute(
            "UID FETCH", Raw("1:*"), Raw("(UID FLAGS MODSEQ)"), Raw(modifier),
            wants=("FETCH", "VANISHED", "EXISTS"),
        )  # fmt: skip
        # Where we now stand. Modseqs grow with time, and the FETCH saw every change up to
        # its start, so the highest modseq among its items is a safe next base, unless a
        # message arrived after the NOOP: then "1:*" missed it although its modseq may be lower
        # than an item's, and the old base stays (the server announces such a message with
        # EXISTS by the end of the FETCH). Dovecot sends no HIGHESTMODSEQ on NOOP to use instead.
        arrived = bool(result.of("EXISTS"))
        highest = modseq if arrived else max([modseq, *_modseqs(result)])
        vanished: set[int] = set()
        for item in result.of("VANISHED"):
            ranges = item.values[-1] if item.values else ""
            for low, high in parse_sequence_set(str(ranges)):
                vanished.update(range(low, (high or low) + 1))
        flags = _flags_of(result)
        if own:
            self._journal.settle(highest, max([self._journal.uidnext, *(u + 1 for u in flags)]))
        elif not keep:
            self._journal.drop()
        return FlagChanges(flags, frozenset(vanished), highest, complete=qresync)

    async def _journal_changes(self, client: ImapClient, keep: bool) -> FlagChanges:
        """Changes from what the connection was told (see journal.py): a NOOP for the latest
        news, then the flags of new messages and of those changed by our own STOREs. With
        `keep`, the journal is only read: the folder's next sync is told the same again."""
        journal = self._journal
        base = journal.base
        assert base is not None
        await client.execute("NOOP")
        fetches = []
        if journal.arrived:
            journal.arrived = False
            fetches.append(f"{journal.uidnext}:*")
        if journal.unknown:
            fetches.append(sequence_set(sorted(journal.unknown)))
            journal.unknown.clear()
        # Pipelined: both come after the NOOP, so Dovecot has announced what they ask for.
        await asyncio.gather(*(
            client.execute("UID FETCH", Raw(uids), Raw("(UID FLAGS MODSEQ)"), wants=("FETCH",))
            for uids in fetches
        ))  # fmt: skip
        if journal.base != base:  # dropped meanwhile (an expunge by sequence number)
            return await self.changes_since(base, keep=keep)
        if keep:
            flags, vanished, highest = journal.read()
            return FlagChanges(flags, vanished, base if journal.arrived else highest)
        flags, vanished, highest = journal.take()
        if journal.arrived:
            # Arrived after the FETCH began: its modseq may be below one heard (module doc of
            # journal.py), so the base stays where it was until the next sync has fetched it.
            highest = base
        journal.base = highest
        return FlagChanges(flags, vanished, highest, complete=True)

    async def structure(self, uid: int) -> tuple[bytes, MimePart] | None:
        client = await self._ready()
        result = await client.execute("UID FETCH", Raw(str(uid)),
                                      Raw("(UID BODYSTRUCTURE BODY.PEEK[HEADER])"),
                                      wants=("FETCH",))  # fmt: skip
        for item in result.of("FETCH"):
            pairs = item.values[0] if item.values else None
            if not isinstance(pairs, list):
                continue
            found: dict[str, Value] = {}
            for key, value in zip(pairs[::2], pairs[1::2], strict=False):
                found[str(key).upper()] = value
            header, shape = found.get("BODY[HEADER]"), found.get("BODYSTRUCTURE")
            if str(found.get("UID")) == str(uid) and shape is not None:
                return (header if isinstance(header, bytes) else b""), parse_bodystructure(shape)
        return None

    async def fetch_section(
        self, uid: int, section: str, offset: int = 0, length: int | None = None
    ) -> bytes | None:
        if not _SECTION.match(section):
            raise BridgeError(ErrorKind.BAD_REQUEST, "invalid part")
        client = await self._ready()
        partial = f"<{offset}.{length}>" if length is not None else ""
        result = await client.execute("UID FETCH", Raw(str(uid)),
                                      Raw(f"(UID BODY.PEEK[{section}]{partial})"),
                                      wants=("FETCH",))  # fmt: skip
        for item in result.of("FETCH"):
            pairs = item.values[0] if item.values else None
            if isinstance(pairs, list):
                for key, value in zip(pairs[::2], pairs[1::2], strict=False):
                    if str(key).upper().startswith("BODY[") and isinstance(value, bytes):
                        return value
                    if str(key).upper().startswith("BODY[") and value is None:
                        return b""
        return None

    # -- changing -----------------------------------------------------------------------

    async def mark(self, uids: Sequence[int], add: Sequence[str], remove: Sequence[str]) -> None:
        if not uids:
            return
        # Caught up first: a message appended by another connection moments ago (a draft saved
        # again with replacesUID) is unknown here until then, and STORE would skip it silently.
        client = await self._current()
        target = Raw(sequence_set(uids))
        if add:
            await client.execute("UID STORE", target, Raw("+FLAGS.SILENT"), [Atom(f) for f in add])
        if remove:
            await client.execute(
                "UID STORE", target, Raw("-FLAGS.SILENT"), [Atom(f) for f in remove]
            )

    async def copy(self, uids: Sequence[int], target: str) -> dict[int, Located]:
        if not uids:
            return {}
        client = await self._current()
        result = await client.execute("UID COPY", Raw(sequence_set(uids)), self._to_server(target))
        return copied_to(result, len(uids))

    async def move(self, uids: Sequence[int], target: str) -> dict[int, Located]:
        if not uids:
            return {}
        client = await self._current()
        if client.has("MOVE"):
            # RFC 6851: COPYUID comes in an untagged OK before the EXPUNGEs.
            result = await client.execute("UID MOVE", Raw(sequence_set(uids)),
                                          self._to_server(target), wants=("OK",))  # fmt: skip
            return copied_to(result, len(uids))
        placed = await self.copy(uids, target)
        await self.mark(uids, ["\\Deleted"], [])
        await self.expunge(uids)
        return placed

    async def expunge(self, uids: Sequence[int] | None = None) -> None:
        client = await self._current()
        if uids is None:
            await client.execute("EXPUNGE")
        elif uids:
            if not client.has("UIDPLUS"):
                raise BridgeError(ErrorKind.NOT_SUPPORTED, "the IMAP server has no UID EXPUNGE")
            await client.execute("UID EXPUNGE", Raw(sequence_set(uids)))

    async def close(self) -> None:
        self._closed = True
        self.on_change(None)
        if not self._shared:
            with contextlib.suppress(Exception):
                await self._client.close()


async def _enable_qresync(client: ImapClient) -> None:
    if client.has("QRESYNC") and "QRESYNC" not in client.enabled:
        await client.execute("ENABLE", Atom("QRESYNC"), wants=("ENABLED",))
        client.enabled.add("QRESYNC")


def _esearch_all(result: Result) -> list[int]:
    uids: list[int] = []
    for item in result.of("ESEARCH"):
        values = item.values
        for index, value in enumerate(values):
            if isinstance(value, str) and value.upper() == "ALL" and index + 1 < len(values):
                uids.extend(_expand(str(values[index + 1])))
    return uids


def _expand(sequence: str, limit: int | None = None) -> list[int]:
    """A UID set as the server sends it ("1:5,9,12:14"), expanded; plain string splitting, as
    a SORT of 100,000 messages sends tens of thousands of pieces. With `limit`, a set of more
    UIDs is a ValueError before anything is expanded (a range costs nothing to send)."""
    uids: list[int] = []
    for piece in sequence.split(","):
        low, _, high = piece.partition(":")
        if high:
            a, b = int(low), int(high)
            if limit is not None and len(uids) + abs(a - b) + 1 > limit:
                raise ValueError("more UIDs than asked for")
            uids.extend(range(min(a, b), max(a, b) + 1))
        else:
            uids.append(int(low))
    return uids


# Most messages share a handful of flag combinations: one frozenset object each, not one per
# message (a frozenset costs over 200 bytes; summaries and changes hold one per message).
_FLAG_SETS: dict[frozenset[str], frozenset[str]] = {}
MAX_FLAG_SETS = 4096


def _flag_set(values: list[Value]) -> frozenset[str]:
    flags = frozenset(str(f) for f in values)
    shared = _FLAG_SETS.get(flags)
    if shared is not None:
        return shared
    if len(_FLAG_SETS) < MAX_FLAG_SETS:
        _FLAG_SETS[flags] = flags
    return flags


def _modseqs(result: Result) -> list[int]:
    found = []
    for item in result.of("FETCH"):
        pairs = item.values[0] if item.values else None
        if isinstance(pairs, list):
            for key, value in zip(pairs[::2], pairs[1::2], strict=False):
                if str(key).upper() == "MODSEQ" and isinstance(value, list) and value:
                    with contextlib.suppress(ValueError):
                        found.append(int(str(value[0])))
    return found


def _flags_of(result: Result) -> dict[int, frozenset[str]]:
    flags: dict[int, frozenset[str]] = {}
    for item in result.of("FETCH"):
        pairs = item.values[0] if item.values else None
        if not isinstance(pairs, list):
            continue
        data = dict(zip((str(k).upper() for k in pairs[::2]), pairs[1::2], strict=False))
        uid, found = data.get("UID"), data.get("FLAGS")
        if uid is not None and isinstance(found, list):
            flags[int(str(uid))] = _flag_set(found)
    return flags


def _summary(pairs: Value, fields: list[str]) -> MessageSummary | None:
    if not isinstance(pairs, list):
        return None
    uid = size = None
    flags: frozenset[str] = frozenset()
    internaldate = dt.datetime.fromtimestamp(0, dt.UTC)
    headers: dict[str, str] = {}
    structure: MimePart | None = None
    for key, value in zip(pairs[::2], pairs[1::2], strict=False):
        name = str(key).upper()
        if name == "BODYSTRUCTURE" and value is not None:
            structure = parse_bodystructure(value)
        elif name == "UID":
            uid = int(str(value))
        elif name == "FLAGS" and isinstance(value, list):
            flags = _flag_set(value)
        elif name == "RFC822.SIZE":
            size = int(str(value))
        elif name == "INTERNALDATE" and isinstance(value, bytes):
            internaldate = internal_date(value.decode("ascii", "replace")) or internaldate
        elif name.startswith("BODY[HEADER.FIELDS") and isinstance(value, bytes):
            for field, text in header_values(value, fields).items():
                headers.setdefault(field, text)
    if uid is None or size is None:
        return None
    return MessageSummary(uid, flags, size, internaldate, headers, structure)


def copied_to(result: Result, asked: int = 1 << 20) -> dict[int, Located]:
    """Source UID -> where its copy went, from a COPYUID code (tagged, or untagged for MOVE);
    empty when the server sent none (no UIDPLUS) or named more than the `asked` UIDs."""
    codes = [result.tagged.code] + [item.code for item in result.of("OK")]
    for code in codes:
        if code is None or code.name != "COPYUID" or len(code.args) < 3:
            continue
        try:
            uidvalidity = int(str(code.args[0]))
            sources = _expand(str(code.args[1]), asked)
            targets = _expand(str(code.args[2]), asked)
        except ValueError:
            return {}
        if len(sources) != len(targets):
            return {}
        return {src: Located(uidvalidity, dst) for src, dst in zip(sources, targets, strict=True)}
    return {}
