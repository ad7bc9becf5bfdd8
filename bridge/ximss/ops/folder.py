"""Folder operations: folderOpen, folderBrowse, folderSync, folderReopen, folderClose,
folderExpunge. A folder's logical view changes only through init and folderSync reports."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from adapters.protocols import MessageSummary, OpenMailbox, ViewQuery
from bridge import metrics
from bridge.errors import BridgeError, ErrorKind
from bridge.session import incremental, persist
from bridge.session.folders import MAX_FOLDERS_PER_SESSION, Folder
from bridge.views import flags as flag_names
from bridge.views.diff import Report, diff
from bridge.views.messageset import parse_message_set, resolve_indexes
from bridge.views.rows import Row
from bridge.ximss import codec, fields
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.service import user_zone
from bridge.ximss.reports import ReportWriter

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

FLAGS_FIELD = "FLAGS"
# Seconds after a sync to look again at what it showed: past Dovecot's IDLE push delay (0.5 s).
RECHECK_DELAY = 1.2


def query_of(request: Request) -> ViewQuery:
    """sortField, sortOrder, filter, filterField -> a backend-neutral query."""
    sort_field = request.get("sortField") or None
    descending = (request.get("sortOrder") or "").lower() == "desc"
    text = request.get("filter")
    text_field = request.get("filterField")
    if not text:
        return ViewQuery(sort_field, descending)
    if (text_field or "").upper() == FLAGS_FIELD:
        must, must_not = flag_names.parse_flag_filter(text)
        return ViewQuery(sort_field, descending, tuple(must), tuple(must_not))
    return ViewQuery(sort_field, descending, text=text, text_field=text_field or None)


def fields_of(request: Request) -> tuple[str, ...]:
    return fields.check_fields(
        (child.text or "") for child in request.element if child.tag == "field"
    )


def folder_of(conv: Conversation, request: Request) -> Folder:
    name = request.require("folder")
    folder = conv.require_session().folders.get(name)
    if folder is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown folder")
    return folder


def _notify(conv: Conversation, folder: Folder) -> None:
    """Changes in the mailbox: one asynchronous notify report until the client syncs."""
    if folder.cache_key is not None:
        conv.services.rows.mark_dirty(folder.cache_key)
    if folder.notified:
        return
    folder.notified = True
    conv.unsolicited(codec.data("folderReport", None, {"folder": folder.name, "mode": "notify"}))


async def _open_mailbox(conv: Conversation, mailbox: str, mailbox_class: str | None) -> OpenMailbox:
    store = conv.require_session().mail
    try:
        return await store.open_mailbox(mailbox)
    except BridgeError as exc:
        if exc.kind is not ErrorKind.NOT_FOUND or mailbox_class is None:
            raise
    await store.create_mailbox(mailbox, mailbox_class or None)
    return await store.open_mailbox(mailbox)


async def _init(conv: Conversation, request: Request, folder: Folder) -> None:
    """Build the view and send the init report (folderOpen, folderReopen)."""
    status = await folder.mailbox.status()
    account = conv.require_session().account
    folder.cache_key = None
    if status.highestmodseq:
        folder.cache_key = (account, folder.mailbox.name, status.uidvalidity)
    folder.state_key = persist.view_key(account, folder.mailbox.name, status.uidvalidity,
                                        folder.query) if status.highestmodseq else None  # fmt: skip
    warm = await _stored_view(conv, folder)
    if warm is None:
        folder.modseq = status.highestmodseq
        folder.set_view(await folder.mailbox.view(folder.query))
        await save(conv, folder)
    folder.notified = False
    conv.send(codec.data("folderReport", request.id, {
        "folder": folder.name, "mode": "init", "messages": len(folder.view),
        "unseen": status.unseen, "UIDNext": status.uidnext, "UIDValidity": status.uidvalidity,
    }))  # fmt: skip


async def _stored_view(conv: Conversation, folder: Folder) -> Sequence[int] | None:
    """The view kept by an earlier run, brought up to date; None when it must be built anew."""
    if folder.state_key is None:
        return None
    blob = await conv.services.state.get(folder.state_key)
    stored = persist.decode(blob) if blob is not None else None
    if stored is None or not stored[0]:
        return None
    modseq, view = stored
    changes = await folder.mailbox.changes_since(modseq)
    if not incremental.supports(folder.query, changes):
        return None

    async def fetch(uids: Sequence[int]) -> dict[int, Row]:
        return await _rows(conv, folder, uids, extra=(incremental.DATE_COLUMN,))

    async def matching(uids: Sequence[int]) -> set[int]:
        return await folder.mailbox.matching(folder.query, uids)

    # Every message below the stored view's highest UID was judged when it was stored.
    known_below = max(view, default=0) + 1
    moved = await incremental.apply_changes(
        view, folder.query, changes, fetch, known_below, matching
    )
    if moved is None:
        return None
    folder.set_view(moved.view)
    folder.modseq = changes.highestmodseq
    return moved.view


async def save(conv: Conversation, folder: Folder, rows: bool = False) -> None:
    """Keep the logical view (exact as of folder.modseq) for the next open, even after restart;
    with `rows`, the mailbox's cached rows as well (when the folder is done with)."""
    if folder.state_key is not None and folder.modseq:
        await conv.services.state.set(folder.state_key, persist.encode(folder.modseq, folder.view))
    if rows and folder.cache_key is not None:
        exported = conv.services.rows.export(folder.cache_key)
        if exported is not None:
            await conv.services.state.set(persist.rows_key(*folder.cache_key), exported)


async def folder_open(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    name = request.require("folder")
    if session.folders.get(name) is not None:
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "a folder with this name is open")
    if len(session.folders) >= MAX_FOLDERS_PER_SESSION:
        raise BridgeError(ErrorKind.LIMIT, "too many open folders")
    query, viewer = query_of(request), fields_of(request)
    mailbox = await _open_mailbox(conv, request.get("mailbox") or name, request.get("mailboxClass"))
    folder = Folder(name, mailbox, query, viewer, array("I"), 0)
    try:
        await _init(conv, request, folder)
    except BaseException:
        await mailbox.close()
        raise
    session.folders.add(folder)
    mailbox.on_change(lambda: _notify(conv, folder))
    return Outcome.DONE


async def folder_reopen(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    folder.query = query_of(request)
    folder.fields = fields_of(request) or folder.fields
    await _init(conv, request, folder)
    return Outcome.DONE


async def folder_close(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    conv.require_session().folders.pop(folder.name)
    folder.cancel_recheck()
    folder.mailbox.on_change(None)
    await save(conv, folder, rows=True)
    await folder.mailbox.close()
    return Outcome.DONE


async def folder_expunge(conv: Conversation, request: Request) -> Outcome:
    await folder_of(conv, request).mailbox.expunge()
    return Outcome.DONE


def writer(conv: Conversation, request: Request, folder: Folder) -> ReportWriter:
    return ReportWriter(request.id, folder.name, folder.fields, user_zone(conv))


async def _rows(
    conv: Conversation, folder: Folder, uids: Sequence[int], extra: Sequence[str] = ()
) -> dict[int, Row]:
    """From the shared cache where it can, brought up to date first when a change was seen."""
    columns = sorted({*fields.columns_of(folder.fields), *extra})
    key = folder.cache_key
    if key is None:
        return _rows_of(await folder.mailbox.summaries(uids, _headers(columns)), columns)
    cache = conv.services.rows
    if cache.claim(key):
        stored = await conv.services.state.get(persist.rows_key(*key))
        if stored is not None:
            cache.load(key, stored)
    refresh, since = cache.needs_refresh(key)
    if refresh:
        cache.apply(key, await folder.mailbox.changes_since(since, keep=True))
    found, missing = cache.lookup(key, uids, columns)
    metrics.CACHE_LOOKUPS.labels("summaries", "hit").inc(len(found))
    if missing:
        metrics.CACHE_LOOKUPS.labels("summaries", "miss").inc(len(missing))
        # A miss fetches every column the mailbox's folders show, so one row serves them all.
        wide = cache.columns_for(key, columns)
        fetched = _rows_of(await folder.mailbox.summaries(missing, _headers(wide)), wide)
        cache.store(key, folder.modseq, fetched)
        found.update(fetched)
    return found


def _headers(columns: Sequence[str]) -> list[str]:
    return sorted({fields.header_of(column) for column in columns})


def _rows_of(summaries: Mapping[int, MessageSummary], columns: Sequence[str]) -> dict[int, Row]:
    return {uid: fields.row_of(summary, columns) for uid, summary in summaries.items()}


async def folder_browse(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    message_set = parse_message_set(request.element)
    if message_set.by_uid:
        raise BridgeError(ErrorKind.BAD_REQUEST, "folderBrowse takes index elements only")
    indexes = resolve_indexes(message_set, len(folder.view))
    uids = [folder.view[i] for i in indexes]
    rows = await _rows(conv, folder, uids)
    out = writer(conv, request, folder)
    conv.send(
        codec.Batch(out.row(i, uid, rows.get(uid)) for i, uid in zip(indexes, uids, strict=True))
    )
    return Outcome.DONE


async def folder_sync(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    await sync(conv, request, folder)
    return Outcome.DONE


async def sync(conv: Conversation, request: Request, folder: Folder) -> list[Report]:
    folder.notified = False
    changes = await folder.mailbox.changes_since(folder.modseq)
    if folder.cache_key is not None:
        conv.services.rows.apply(folder.cache_key, changes, since=folder.modseq)
    # Headers never change; what a row shows changes only through its flags.
    shows_flags = any(f.upper() == FLAGS_FIELD for f in folder.fields)
    reports: list[Report] | None = None
    moved = None
    if incremental.supports(folder.query, changes):

        async def fetch(uids: Sequence[int]) -> dict[int, Row]:
            return await _rows(conv, folder, uids, extra=(incremental.DATE_COLUMN,))

        async def matching(uids: Sequence[int]) -> set[int]:
            return await folder.mailbox.matching(folder.query, uids)

        moved = await incremental.apply_changes(
            folder.view, folder.query, changes, fetch, folder.all_below, matching
        )
    new_view: Sequence[int]
    all_below = None
    if moved is not None:
        new_view = moved.view
        reports = moved.reports(folder.view, shows_flags)
        all_below = max([folder.all_below, *(uid + 1 for uid in changes.flags)])
    else:
        new_view = await folder.mailbox.view(folder.query)
    if reports is None:
        # New messages show up in CHANGEDSINCE too; they are reported as added, not updated.
        changed = set(changes.flags).intersection(folder.view) if shows_flags else set()
        reports = diff(folder.view, new_view, changed)
    needed = [r.uid for r in reports if r.mode != "removed"]
    rows = await _rows(conv, folder, needed) if needed and folder.fields else {}
    out = writer(conv, request, folder)
    conv.send(codec.Batch(
        out.row(item.index, item.uid, rows.get(item.uid), item.mode,
                None if item.mode == "updated" else item.messages,
                with_fields=item.mode != "removed")
        for item in reports
    ))  # fmt: skip
    folder.set_view(new_view, all_below)
    folder.modseq = changes.highestmodseq
    shown: dict[int, frozenset[str]] = {}
    for item in reports:
        if item.mode != "removed":
            if item.uid in changes.flags:
                shown[item.uid] = changes.flags[item.uid]
            elif item.uid in rows:
                shown[item.uid] = rows[item.uid].flags
    if shown:
        folder.recheck_later(RECHECK_DELAY, lambda: _recheck(conv, folder, shown))
    return reports


async def _recheck(conv: Conversation, folder: Folder, shown: dict[int, frozenset[str]]) -> None:
    """Still there, with the flags the sync showed? If not, the client is told to sync."""
    if (
        folder.notified
        or conv.session is None
        or conv.session.folders.get(folder.name) is not folder
    ):
        return
    try:
        now = await folder.mailbox.summaries(list(shown), [])
    except BridgeError:
        return
    if any(uid not in now or now[uid].flags != flags for uid, flags in shown.items()):
        _notify(conv, folder)
