"""Folder views end to end on Dovecot: the spec's three Mailbox Operations examples, notify,
several folders, message operations and downloads."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.protocols import ViewQuery
from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from bridge.session.folders import Folder
from tests.conftest import devstack
from tests.e2e.folderkit import (
    BehindTheBack,
    ClientView,
    call,
    fields,
    index_range,
    message,
    names,
    request,
    uids,
)  # fmt: skip
from tests.e2e.httpcheck import curl

Filled = tuple[XimssClient, devstack.Account, BehindTheBack]


@pytest.fixture
async def filled(bridge_port: int, stack: devstack.DevStack) -> AsyncIterator[Filled]:
    account = stack.new_account("folder")
    stack.fill_maildir(account.address, "INBOX", 40)
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    await client.login(account.address, account.password)
    yield client, account, BehindTheBack(stack.ports.imap, account)
    await client.close()


async def next_notify(client: XimssClient, folder: str, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while True:
        message_ = await client.unsolicited(timeout)
        if message_.tag == "folderReport" and message_.get("folder") == folder:
            assert message_.get("mode") == "notify" and message_.get("id") is None
            return time.monotonic() - started


async def test_example_1_open_browse_notify_sync(filled: Filled) -> None:
    client, _, other = filled
    view = ClientView(client, "INBOX")
    reply = await view.open("INBOX", *fields("FLAGS", "From", "Subject"),
                            sortField="INTERNALDATE", sortOrder="asc")  # fmt: skip
    (init,) = reply.of("folderReport")
    assert init.get("messages") == "40" and init.get("UIDValidity") and init.get("UIDNext") == "41"
    assert init.get("unseen") == "20"
    browse = await call(client, "folderBrowse", {"folder": "INBOX"}, index_range(0, 3))
    reports = browse.of("folderReport")
    assert [r.get("index") for r in reports] == ["0", "1", "2", "3"]
    assert [r.get("UID") for r in reports] == ["1", "2", "3", "4"]
    assert names(browse, "Subject") == ["Message 0", "Message 1", "Message 2", "Message 3"]
    # \Recent goes to the first session that selects new messages: the folder's own here.
    assert names(browse, "FLAGS")[0] == "Seen,Flagged,Recent"
    assert names(browse, "From")[1] == "Sender 1"  # the real name, when there is one
    assert [child.tag for child in reports[0]] == ["FLAGS", "From", "Subject"]

    # Behind the bridge's back: two messages expunged, one appended.
    await other.run("INBOX", "expunge", "3,36")
    await other.run(
        "INBOX", "append", "INBOX", message("New one", "CGatePro Discussions <d@x.test>")
    )
    elapsed = await next_notify(client, "INBOX")
    assert elapsed < 5
    # Until the client syncs, the logical view is unchanged: index 2 still names UID 3.
    browse = await call(client, "folderBrowse", {"folder": "INBOX"}, index_range(2, 2))
    assert browse.of("folderReport")[0].get("UID") == "3"
    sync = await view.sync()
    modes = [
        (r.get("mode"), r.get("index"), r.get("UID"), r.get("messages"))
        for r in sync.of("folderReport")
    ]
    assert modes == [
        ("removed", "35", "36", "39"),
        ("removed", "2", "3", "38"),
        ("added", "38", "41", "39"),
    ]
    added = sync.of("folderReport")[-1]
    assert (
        added.findtext("From") == "CGatePro Discussions" and added.findtext("Subject") == "New one"
    )
    assert await view.browse_all() == [u for u in range(1, 42) if u not in (3, 36)]


async def test_example_2_copy_notifies_the_target_folder(filled: Filled) -> None:
    client, _, _ = filled
    await call(client, "mailboxCreate", {"mailbox": "Archive"})
    inbox, archive = ClientView(client, "INBOX"), ClientView(client, "Archive")
    await inbox.open("INBOX", *fields("Subject"))
    await archive.open("Archive", *fields("Subject"))
    reply = await call(
        client, "messageCopy", {"folder": "INBOX", "targetMailbox": "Archive"}, *uids(12, 5, 31)
    )
    assert reply.ok
    await next_notify(client, "Archive")
    await archive.sync()
    assert sorted(await archive.browse_all()) == [1, 2, 3]


async def test_example_3_mark_sync_expunge_sync(filled: Filled) -> None:
    client, _, _ = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("FLAGS", "Subject"), sortField="INTERNALDATE")
    await view.browse_all()
    await call(client, "messageMark", {"folder": "INBOX", "flags": "Deleted"}, *uids(12, 2, 31))
    await next_notify(client, "INBOX")
    sync = await view.sync()
    updated = [
        (r.get("mode"), r.get("index"), r.get("UID"), r.findtext("FLAGS"))
        for r in sync.of("folderReport")
    ]
    assert updated == [
        ("updated", "1", "2", "Deleted,Recent"),
        ("updated", "11", "12", "Deleted,Recent"),
        ("updated", "30", "31", "Seen,Flagged,Deleted,Recent"),
    ]
    await call(client, "folderExpunge", {"folder": "INBOX"})
    await next_notify(client, "INBOX")
    sync = await view.sync()
    removed = [(r.get("mode"), r.get("UID"), r.get("messages")) for r in sync.of("folderReport")]
    assert removed == [("removed", "31", "39"), ("removed", "12", "38"), ("removed", "2", "37")]
    assert len(view.uids) == 37


async def test_two_folders_on_one_mailbox_with_different_sorts(filled: Filled) -> None:
    client, _, _ = filled
    by_date = ClientView(client, "byDate")
    by_subject = ClientView(client, "bySubject")
    await by_date.open("INBOX", *fields("Subject"), sortField="Date", sortOrder="desc")
    await by_subject.open("INBOX", *fields("Subject"), sortField="Subject")
    assert (await by_date.browse_all())[:3] == [40, 39, 38]
    subjects = await call(client, "folderBrowse", {"folder": "bySubject"}, index_range(0, 2))
    assert names(subjects, "Subject") == ["Message 0", "Message 1", "Message 10"]
    again = await client.request("folderOpen", {"folder": "byDate", "mailbox": "INBOX"})
    assert again.error_num == "513"


async def test_filters(filled: Filled) -> None:
    client, _, _ = filled
    unseen = ClientView(client, "unseen")
    await unseen.open("INBOX", filter="Unseen", filterField="FLAGS")
    assert len(unseen.uids) == 20
    flagged_seen = ClientView(client, "flagged")
    await flagged_seen.open("INBOX", filter="Flagged,Seen", filterField="FLAGS")
    assert await flagged_seen.browse_all() == [1, 11, 21, 31]
    by_subject = ClientView(client, "subject")
    await by_subject.open("INBOX", filter="Message 3", filterField="Subject")
    assert sorted(await by_subject.browse_all()) == [4, *range(31, 41)]
    anywhere = ClientView(client, "anywhere")
    await anywhere.open("INBOX", filter="sender7@example.org")
    assert await anywhere.browse_all() == [8]


async def test_message_set_rules(filled: Filled) -> None:
    client, _, _ = filled
    await ClientView(client, "INBOX").open("INBOX")
    mixed = request("messageMark", {"id": "m", "folder": "INBOX", "flags": "Seen"},
                    *uids(1), index_range(0, 1))  # fmt: skip
    assert (await client.send(mixed)).error_num == "501"
    by_uid = request("folderBrowse", {"id": "b", "folder": "INBOX"}, *uids(1))
    assert (await client.send(by_uid)).error_num == "501"
    unknown = await client.request("folderSync", {"folder": "nope"})
    assert unknown.error_num == "512"


async def test_remove_move_and_reopen(filled: Filled, stack: devstack.DevStack) -> None:
    client, _, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("Subject"))
    # DeleteMode defaults to "Move To Trash".
    await call(client, "messageRemove", {"folder": "INBOX"}, *uids(1, 2))
    await call(client, "mailboxCreate", {"mailbox": "Kept"})
    await call(
        client, "messageMove", {"folder": "INBOX", "targetMailbox": "Kept"}, index_range(2, 4)
    )
    assert sorted(await other.run("Trash", "uids")) == [1, 2]  # type: ignore[arg-type]
    assert len(await other.run("Kept", "uids")) == 3  # type: ignore[arg-type]
    remaining = await other.run("INBOX", "uids")
    assert remaining == list(range(6, 41))
    reopened = await call(
        client, "folderReopen", {"folder": "INBOX", "sortField": "UID", "sortOrder": "desc"}
    )
    (init,) = reopened.of("folderReport")
    assert init.get("mode") == "init" and init.get("messages") == "35"
    await call(client, "folderClose", {"folder": "INBOX"})
    assert (await client.request("folderSync", {"folder": "INBOX"})).error_num == "512"


async def test_folder_open_with_mailbox_class_creates_it(filled: Filled) -> None:
    client, _, _ = filled
    missing = await client.request("folderOpen", {"folder": "n", "mailbox": "Notes"})
    assert missing.error_num == "512"
    view = ClientView(client, "n")
    await view.open("Notes", mailboxClass="IPF.StickyNote")
    listed = await call(client, "mailboxList", {"filter": "Notes"})
    assert listed.of("mailbox")[0].get("CLASS") == "IPF.StickyNote"


async def test_notify_within_a_second_of_an_external_append(filled: Filled) -> None:
    client, _, other = filled
    await ClientView(client, "INBOX").open("INBOX")
    await asyncio.sleep(0.3)  # the watcher's IDLE is up
    started = time.monotonic()
    await other.run("INBOX", "append", "INBOX", message("Ping"))
    await next_notify(client, "INBOX")
    elapsed = time.monotonic() - started
    print(f"\nnotify after external APPEND: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0


async def test_notify_once_until_sync(filled: Filled) -> None:
    client, _, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX")
    await other.run("INBOX", "append", "INBOX", message("One"))
    await next_notify(client, "INBOX")
    await other.run("INBOX", "append", "INBOX", message("Two"))
    with pytest.raises(TimeoutError):
        await next_notify(client, "INBOX", timeout=1.5)
    await view.sync()
    await other.run("INBOX", "append", "INBOX", message("Three"))
    await next_notify(client, "INBOX")


ATTACHMENT = bytes(range(256)) * 40


async def test_mime_downloads(filled: Filled, http_url: str) -> None:
    client, _, other = filled
    encoded = base64.encodebytes(ATTACHMENT).decode()
    multipart = (
        "From: a@example.org\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Gr=C3=BC=C3=9Fe, caf=C3=A9\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="blob.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{encoded}\r\n--b1--\r\n"
    ).encode()
    await other.run("INBOX", "append", "INBOX", multipart)
    view = ClientView(client, "In Box")
    await view.open("INBOX", sortField="UID")
    uid = (await view.browse_all())[-1]
    session = client.session.get("urlID") if client.session is not None else ""
    base = f"{http_url}/Session/{session}/MIME/In%20Box"
    raw = await curl(f"{base}/{uid}-P.txt")
    assert raw.status == 200 and raw.body.replace("\r\n", "\n") == multipart.decode().replace(
        "\r\n", "\n"
    )
    text = await curl(f"{base}/{uid}-1-B/note.txt")
    assert text.status == 200 and text.body.strip() == "Grüße, café"
    async with aiohttp.ClientSession() as http, http.get(f"{base}/{uid}-2-B/blob.bin") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/octet-stream")
        assert await response.read() == ATTACHMENT
    assert (await curl(f"{base}/999999-P.txt")).status == 404
    assert (await curl(f"{http_url}/Session/{session}/MIME/Closed/{uid}-P.txt")).status == 404


async def test_browse_is_served_from_the_shared_cache_and_stays_current(
    filled: Filled, bridge: Bridge
) -> None:
    client, _, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("FLAGS", "Subject"), sortField="UID")
    await call(client, "folderBrowse", {"folder": "INBOX"}, index_range(0, 9))
    cache = bridge.services.rows
    hits = cache.hits
    again = await call(client, "folderBrowse", {"folder": "INBOX"}, index_range(0, 9))
    assert cache.hits == hits + 10
    assert names(again, "FLAGS")[1] == "Recent"
    # The watcher's "maybe changed" notify as it starts must not be taken for the change's:
    # take it and sync first.
    await next_notify(client, "INBOX")
    await view.sync()
    # A change behind the bridge's back: the notify marks the cache stale, the next browse
    # brings it up to date first.
    await other.run("INBOX", "store", "2", "+FLAGS", "(\\Answered)")
    await next_notify(client, "INBOX")
    fresh = await call(client, "folderBrowse", {"folder": "INBOX"}, index_range(0, 9))
    assert names(fresh, "FLAGS")[1] == "Answered,Recent"
    # A second session of the same account shares the entries.
    second = await XimssClient.connect("127.0.0.1", bridge.tcp.port if bridge.tcp else 0)
    try:
        await second.login(filled[1].address, filled[1].password)
        other_view = ClientView(second, "Mine")
        await other_view.open("INBOX", *fields("Subject"), sortField="UID")
        hits = cache.hits
        await call(second, "folderBrowse", {"folder": "Mine"}, index_range(0, 9))
        assert cache.hits == hits + 10
    finally:
        await second.close()


async def test_restarted_bridge_reopens_from_the_stored_view(
    settings: config.Settings, stack: devstack.DevStack
) -> None:
    account = stack.new_account("warm")
    stack.fill_maildir(account.address, "INBOX", 300)
    other = BehindTheBack(stack.ports.imap, account)
    spec = {"sortField": "Date", "sortOrder": "desc"}
    async with Bridge(settings) as first:
        assert first.tcp is not None
        client = await XimssClient.connect("127.0.0.1", first.tcp.port)
        await client.login(account.address, account.password)
        first_view = ClientView(client, "INBOX")
        await first_view.open("INBOX", *fields("FLAGS", "Subject"), **spec)
        await first_view.browse_all()  # every row cached, and kept when the session ends
        await client.close()
    # While no bridge runs: new mail, an expunge and flag changes.
    await other.run("INBOX", "append", "INBOX", message("While away"))
    await other.run("INBOX", "expunge", "7")
    await other.run("INBOX", "store", "10:19", "+FLAGS", "(\\Seen)")
    async with Bridge(settings) as second:
        assert second.tcp is not None
        client = await XimssClient.connect("127.0.0.1", second.tcp.port)
        await client.login(account.address, account.password)
        misses = second.services.rows.misses
        warm = ClientView(client, "warm")
        started = time.monotonic()
        await warm.open("INBOX", *fields("FLAGS", "Subject"), **spec)
        elapsed = time.monotonic() - started
        # Only the new message and the two ends of the stored view were fetched: no SORT.
        assert second.services.rows.misses - misses <= 3
        misses = second.services.rows.misses
        reply = await call(client, "folderBrowse", {"folder": "warm"}, index_range(0, 299))
        assert second.services.rows.misses == misses  # the stored rows, brought up to date
        shown = {int(r.get("UID", "0")): r for r in reply.of("folderReport")}
        assert "Seen" in (shown[10].findtext("FLAGS") or "").split(",")
        assert "Seen" not in (shown[20].findtext("FLAGS") or "").split(",")
        warm_view = await warm.browse_all()
        assert warm_view == await other.run("INBOX", "sort", "(REVERSE DATE)")
        assert warm_view[0] == 301 and 7 not in warm_view
        print(f"\nwarm folderOpen after restart (300 messages): {elapsed * 1000:.1f} ms")
        await client.close()


async def test_each_change_is_reported_once(filled: Filled) -> None:
    """The folder's modseq advances on every sync: a flag change is reported once, not again
    at every later sync (Dovecot sends no HIGHESTMODSEQ on NOOP)."""
    client, _, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("FLAGS"), sortField="UID")
    for uid in (3, 5, 7):
        await other.run("INBOX", "store", str(uid), "+FLAGS", "(\\Answered)")
        sync = await view.sync()
        assert [(r.get("mode"), r.get("UID")) for r in sync.of("folderReport")] == [
            ("updated", str(uid))
        ]
    assert (await view.sync()).of("folderReport") == []


async def test_a_reply_of_thousands_of_rows_is_not_a_slow_client(
    bridge_port: int, stack: devstack.DevStack
) -> None:
    """A folderBrowse of 5,000 rows is one large reply, not a client that stopped reading."""
    account = stack.new_account("large")
    stack.fill_maildir(account.address, "INBOX", 5000)
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await client.login(account.address, account.password)
        view = ClientView(client, "INBOX")
        await view.open("INBOX", *fields("FLAGS", "Subject"))
        assert len(await view.browse_all()) == 5000
        assert (await call(client, "noop", {})).ok
    finally:
        await client.close()


async def test_a_message_gone_before_the_idle_push_is_still_notified(filled: Filled) -> None:
    """Added and expunged again within Dovecot's IDLE delay, the message leaves IDLE nothing to
    report; the folder that showed it in between must still be told to sync."""
    client, _, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", sortField="UID")
    await asyncio.sleep(1.0)  # the watcher is idling; its start may send one notify
    await view.sync()
    with contextlib.suppress(TimeoutError):
        while True:
            await client.unsolicited(0.05)
    await other.run("INBOX", "append", "INBOX", message("Short-lived"))
    await view.sync()
    assert view.uids[-1] == 41
    await other.run("INBOX", "expunge", "41")
    await next_notify(client, "INBOX", timeout=3.0)
    await view.sync()
    assert 41 not in view.uids


async def test_a_browse_refreshing_the_cache_leaves_the_changes_for_the_sync(
    filled: Filled,
) -> None:
    """Found by the state machine: a browse after a notify brings the shared cache up to date
    from the folder's connection; the folder's own next sync must still report those changes
    (an expunge carries no modseq, so nothing else would tell the sync it had been missed)."""
    client, _, other = filled
    view = ClientView(client, "byDate")
    await view.open("INBOX", *fields("FLAGS", "Subject"), sortField="Date")
    before = await view.browse_all()
    await other.run("INBOX", "expunge", "8")
    await next_notify(client, "byDate")
    await call(client, "folderBrowse", {"folder": "byDate"}, index_range(0, 3))
    await view.sync()
    assert [u for u in view.uids if u is not None] == [u for u in before if u != 8]
    assert await view.browse_all() == [u for u in before if u != 8]


async def test_syncs_after_the_first_use_what_the_connection_was_told(
    filled: Filled, bridge: Bridge
) -> None:
    """With QRESYNC a folder's connection hears of every change: the syncs after the first
    take a NOOP (and a FETCH of what is new), not a CHANGEDSINCE over the whole mailbox."""
    client, account, other = filled
    view = ClientView(client, "INBOX")
    await view.open("INBOX", *fields("FLAGS", "Subject"), sortField="Date")
    await view.browse_all()
    folder = only_folder(bridge, account)
    journal = folder.mailbox._journal  # type: ignore[attr-defined]
    assert journal.serves(folder.modseq)
    await other.run("INBOX", "store", "3", "+FLAGS", "(\\Flagged)")
    await other.run("INBOX", "append", "INBOX", message("journal news"))
    await other.run("INBOX", "expunge", "5")
    await next_notify(client, "INBOX")
    await asyncio.sleep(0.3)
    reply = await view.sync()
    modes = sorted(r.get("mode") or "" for r in reply.of("folderReport"))
    assert modes == ["added", "removed", "updated"]
    assert journal.serves(folder.modseq)
    truth = await other.run("INBOX", "sort", "(DATE)")
    assert await view.browse_all() == truth


def only_folder(bridge: Bridge, account: devstack.Account) -> Folder:
    """The one open folder of the account's one session, as the bridge holds it."""
    session = next(s for s in bridge.services.sessions.all() if s.account == account.address)
    (folder,) = session.folders.all()
    return folder


async def test_a_text_filtered_view_follows_changes(filled: Filled, bridge: Bridge) -> None:
    """filter="Message 1" on Subject (Dovecot's substring SEARCH): new messages are judged by
    a SEARCH of just them, flag changes never move a message across a text filter."""
    client, account, other = filled
    view = ClientView(client, "text")
    await view.open(
        "INBOX", *fields("FLAGS", "Subject"), sortField="Date", filter="Message 1",
        filterField="Subject",
    )  # fmt: skip
    await view.browse_all()
    folder = only_folder(bridge, account)
    whole_views: list[ViewQuery] = []
    build = folder.mailbox.view

    async def counted(query: ViewQuery) -> list[int]:
        whole_views.append(query)
        return await build(query)

    folder.mailbox.view = counted  # type: ignore[method-assign]
    truth_before = await other.run("INBOX", "sort", "(DATE)", "SUBJECT", '"Message 1"')
    assert [u for u in view.uids if u is not None] == truth_before
    await other.run("INBOX", "append", "INBOX", message("Message 1 again"))
    await other.run("INBOX", "append", "INBOX", message("something else"))
    await other.run("INBOX", "store", "3,12", "+FLAGS", "(\\Flagged)")  # out of / in the view
    await other.run("INBOX", "expunge", "11")
    await next_notify(client, "text")
    await asyncio.sleep(0.3)
    reply = await view.sync()
    modes = sorted(r.get("mode") or "" for r in reply.of("folderReport"))
    assert modes == ["added", "removed", "updated"]
    assert whole_views == []  # no SEARCH and SORT of the whole mailbox
    truth = await other.run("INBOX", "sort", "(DATE)", "SUBJECT", '"Message 1"')
    assert [u for u in view.uids if u is not None] == truth
    assert await view.browse_all() == truth
